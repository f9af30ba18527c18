//! `read-id`: reads the 18-character ID number from photos of ID-card fronts, one line per
//! photo (`PHOTO<TAB>NUMBER`, or `PHOTO<TAB>-` when it cannot be read with confidence).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use bianmin_engine::validate::IdNumber;
use bianmin_scan::idread::read_id_with;
use bianmin_scan::CancelToken;
use clap::Args;

#[derive(Args)]
pub struct ReadIdArgs {
    /// Photos of the front (portrait side) of resident ID cards.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
}

/// Exit 0 when every photo could be opened (read or not), 1 when a file was unreadable (its
/// line still says `-` and the error goes to stderr).
pub fn read_id(args: &ReadIdArgs) -> Result<ExitCode> {
    let today = chrono::Local::now().date_naive();
    // The engine's own validator has the last word (also refuses birth dates in the future).
    let verify = |s: &str| IdNumber::parse(s, today).is_ok();
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for p in &args.photos {
        let number = match std::fs::read(p) {
            Ok(bytes) => match read_id_with(&bytes, &verify, &CancelToken::new()) {
                Ok(r) => r.number,
                Err(e) => {
                    eprintln!("{}: {e}", p.display());
                    failed = true;
                    None
                }
            },
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                failed = true;
                None
            }
        };
        writeln!(out, "{}\t{}", p.display(), number.as_deref().unwrap_or("-"))?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
