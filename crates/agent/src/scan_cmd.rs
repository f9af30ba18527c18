//! `scan`: turns phone photos into clean page or ID-card scans with the scan crate, many per process.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use bianmin_scan::{scan_files, CancelToken, ColorMode, Mode, ScanOptions};
use clap::Args;

#[derive(Args)]
pub struct ScanArgs {
    /// Where the scans are written (`<photo stem>.jpg`, or `.png` with --bilevel).
    #[arg(long)]
    pub out: PathBuf,
    /// `page` (A4, 200 DPI) or `card` (ID-card size, 300 DPI).
    #[arg(long, default_value = "page")]
    pub mode: Mode,
    /// Keep colour (red seals) instead of grayscale.
    #[arg(long)]
    pub color: bool,
    /// A 1-bit PNG instead of a JPEG.
    #[arg(long)]
    pub bilevel: bool,
    /// The photos.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
}

pub fn scan(args: &ScanArgs) -> Result<ExitCode> {
    let mut opts = match args.mode {
        Mode::Card => ScanOptions::card(),
        Mode::Page => ScanOptions::default(),
    };
    if args.color {
        opts.color = ColorMode::Color;
    }
    opts.bilevel = args.bilevel;
    let mut failed = 0;
    let mut checks = 0;
    for r in scan_files(&args.photos, &args.out, &opts, &CancelToken::new()) {
        match r.result {
            Ok((path, s)) => {
                // Confidence and reason on every line: a crop the scanner was not sure of must
                // be looked at, and a whole-frame fallback must never pass for a found page.
                println!(
                    "{}\t{}\t{}x{}\t{} bytes\t{}\tconfidence {:.2}\t{}{}",
                    r.input.display(),
                    path.display(),
                    s.width,
                    s.height,
                    s.data.len(),
                    if s.detected {
                        "page found"
                    } else {
                        "whole frame"
                    },
                    s.confidence,
                    s.reason.describe(),
                    if s.needs_check() {
                        "\tCHECK THIS PAGE"
                    } else {
                        ""
                    }
                );
                checks += s.needs_check() as usize;
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", r.input.display());
            }
        }
    }
    if checks > 0 {
        eprintln!(
            "{checks} page(s) need checking: the scanner was not sure it found the whole page"
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
