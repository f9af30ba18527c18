//! The town centre's own printers (`DATA/printers.toml`): a printed notice goes from the server
//! to its town's print command, so no PDF naming a resident is ever handed to a viewer or printer
//! on a tablet (the device invariants keep case data inside the app's encrypted store).
//!
//! ```toml
//! [towns]
//! "140423100" = ["lp", "-d", "guhan-front-desk"]
//! ```
//!
//! Each town code maps to a command and its arguments, run directly (never through a shell, so
//! nothing in a case can become part of a command line) with the PDF on its standard input. A
//! command that has not finished after [`PRINT_TIMEOUT`] is killed: a stuck CUPS queue must not
//! keep a request (and the tablet's 打印 button) waiting for ever.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use tokio::io::AsyncWriteExt;

/// How long a print command may take before it is killed. `lp` hands the job to CUPS and
/// returns within a second; anything slower is stuck. Below the tablet's 30 s wait for an
/// answer (`Timeouts::stall` of the engine's transport), so the tablet hears 打印失败 from the
/// server rather than a network timeout.
pub const PRINT_TIMEOUT: Duration = Duration::from_secs(20);

/// Most bytes of a failed command's standard error kept for the log.
const STDERR_KEPT: usize = 2000;

/// The print command of each town this server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printers {
    towns: BTreeMap<String, Vec<String>>,
    timeout: Duration,
}

impl Default for Printers {
    fn default() -> Printers {
        Printers {
            towns: BTreeMap::new(),
            timeout: PRINT_TIMEOUT,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrintersFile {
    #[serde(default)]
    towns: BTreeMap<String, Vec<String>>,
}

/// `printers.toml` could not be read or says something that cannot be run.
#[derive(Debug, Error)]
pub enum PrintersError {
    #[error("printers.toml: {0}")]
    Read(#[from] std::io::Error),
    #[error("printers.toml: {0}")]
    Parse(String),
    #[error("printers.toml: town \"{town}\": {why}")]
    Town { town: String, why: &'static str },
}

/// Why a notice did not reach the printer.
#[derive(Debug, Error)]
pub enum PrintError {
    #[error("no printer is configured for town {0} (printers.toml)")]
    NotConfigured(String),
    #[error("could not start the print command {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the print command {program} did not take the whole document: {source}")]
    Write {
        program: String,
        source: std::io::Error,
    },
    #[error("the print command {program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("the print command {program} did not finish within {secs} s and was killed")]
    TimedOut { program: String, secs: u64 },
}

impl Printers {
    /// Parses the text of a `printers.toml`.
    pub fn parse(text: &str) -> Result<Printers, PrintersError> {
        let file: PrintersFile =
            toml::from_str(text).map_err(|e| PrintersError::Parse(e.to_string()))?;
        for (town, command) in &file.towns {
            let bad = |why| {
                Err(PrintersError::Town {
                    town: town.clone(),
                    why,
                })
            };
            if town.len() != 9 || !town.bytes().all(|b| b.is_ascii_digit()) {
                return bad("a town code has nine digits");
            }
            match command.first() {
                None => return bad("the command is empty"),
                Some(p) if p.trim().is_empty() => return bad("the program name is empty"),
                Some(_) => {}
            }
            if command.iter().any(|a| a.contains('\0')) {
                return bad("an argument holds a NUL character");
            }
        }
        Ok(Printers {
            towns: file.towns,
            ..Printers::default()
        })
    }

    /// Reads the optional `DATA/printers.toml`; without it no town has a printer.
    pub fn open(data: &Path) -> Result<Printers, PrintersError> {
        match std::fs::read_to_string(data.join("printers.toml")) {
            Ok(text) => Printers::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Printers::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// The same printers with another time limit (tests of a stuck command).
    pub fn with_timeout(self, timeout: Duration) -> Printers {
        Printers { timeout, ..self }
    }

    /// The print command of `town`, if it has one.
    pub fn command(&self, town: &str) -> Option<&[String]> {
        self.towns.get(town).map(Vec::as_slice)
    }

    /// Sends `pdf` to `town`'s print command on its standard input and waits for it to finish.
    pub async fn print(&self, town: &str, pdf: &[u8]) -> Result<(), PrintError> {
        let command = self
            .command(town)
            .ok_or_else(|| PrintError::NotConfigured(town.to_string()))?;
        let program = command[0].clone();
        let mut child = tokio::process::Command::new(&program)
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Dropped on the time limit below (or with the request): the command is killed,
            // not left holding the queue.
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PrintError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // Written while the command runs: one that reports on stderr before reading its input
        // would otherwise wait on a full pipe while we wait on its input.
        let write = async move {
            let r = stdin.write_all(pdf).await;
            // Closing stdin is the end of the document.
            drop(stdin);
            r
        };
        let run = async { tokio::join!(write, child.wait_with_output()) };
        let (written, output) =
            tokio::time::timeout(self.timeout, run)
                .await
                .map_err(|_| PrintError::TimedOut {
                    program: program.clone(),
                    secs: self.timeout.as_secs(),
                })?;
        let output = output.map_err(|source| PrintError::Spawn {
            program: program.clone(),
            source,
        })?;
        if !output.status.success() {
            let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if stderr.len() > STDERR_KEPT {
                let mut cut = STDERR_KEPT;
                while !stderr.is_char_boundary(cut) {
                    cut -= 1;
                }
                stderr.truncate(cut);
            }
            return Err(PrintError::Failed {
                program,
                status: output.status.to_string(),
                stderr,
            });
        }
        // A command that exits 0 without reading the whole document did not print it.
        written.map_err(|source| PrintError::Write { program, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_town_maps_to_a_command_with_its_arguments() {
        let p = Printers::parse(
            r#"
            [towns]
            "140423100" = ["lp", "-d", "guhan-front-desk", "-o", "media=A4"]
            "140423101" = ["/usr/local/bin/print-notice"]
            "#,
        )
        .unwrap();
        assert_eq!(
            p.command("140423100").unwrap(),
            ["lp", "-d", "guhan-front-desk", "-o", "media=A4"]
        );
        assert_eq!(
            p.command("140423101").unwrap(),
            ["/usr/local/bin/print-notice"]
        );
        assert_eq!(p.command("140423102"), None);
        // An empty file, or none at all, means no printers.
        assert_eq!(Printers::parse("").unwrap(), Printers::default());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Printers::open(dir.path()).unwrap(), Printers::default());
        std::fs::write(
            dir.path().join("printers.toml"),
            "[towns]\n\"140423100\" = [\"lp\"]\n",
        )
        .unwrap();
        assert_eq!(
            Printers::open(dir.path()).unwrap().command("140423100"),
            Some(&["lp".to_string()][..])
        );
    }

    #[test]
    fn a_file_that_cannot_be_run_is_refused_at_start() {
        for (text, says) in [
            ("[towns]\n\"140423100\" = []", "the command is empty"),
            (
                "[towns]\n\"140423100\" = [\" \"]",
                "the program name is empty",
            ),
            ("[towns]\n\"guhan\" = [\"lp\"]", "nine digits"),
            ("[towns]\n\"14042310\" = [\"lp\"]", "nine digits"),
            // A shell line in one string is not split (nothing runs through a shell).
            ("[towns]\n\"140423100\" = \"lp -d desk\"", "printers.toml"),
            ("[printers]\n\"140423100\" = [\"lp\"]", "unknown field"),
            ("[towns]\n\"140423100\" = [\"lp\", \"a\\u0000b\"]", "NUL"),
        ] {
            let e = Printers::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[tokio::test]
    async fn the_command_gets_the_document_and_its_failures_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("printed");
        let toml = format!(
            "[towns]\n\"140423100\" = [\"sh\", \"-c\", \"cat > \\\"$0\\\"\", {:?}]\n\
             \"140423101\" = [\"sh\", \"-c\", \"echo 'lp: No such queue' >&2; exit 3\"]\n\
             \"140423102\" = [\"{}\"]\n\
             \"140423103\" = [\"sleep\", \"600\"]\n",
            out.to_str().unwrap(),
            dir.path().join("no-such-program").display()
        );
        let p = Printers::parse(&toml).unwrap();
        // Larger than a pipe's buffer: the whole document arrives.
        let doc: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        p.print("140423100", &doc).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), doc);

        match p.print("140423101", &doc).await {
            Err(PrintError::Failed { status, stderr, .. }) => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr, "lp: No such queue");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p.print("140423102", &doc).await,
            Err(PrintError::Spawn { .. })
        ));
        // A stuck command is killed at the limit (short here, 30 s in service).
        let hung = p.clone().with_timeout(Duration::from_millis(300));
        assert!(matches!(
            hung.print("140423103", b"%PDF-").await,
            Err(PrintError::TimedOut { .. })
        ));
        assert!(matches!(
            p.print("140423104", b"%PDF-").await,
            Err(PrintError::NotConfigured(t)) if t == "140423104"
        ));
    }
}
