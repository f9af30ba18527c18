//! `bianmin-agent`: parses the command line and hands each command to its module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bianmin_agent::cases;

#[derive(Parser)]
#[command(name = "bianmin-agent", version, about = "Headless village-agent client over the Bianmin engine")]
struct Cli {
    /// The device's data directory (outbox, photos, keys).
    #[arg(long, global = true, default_value = "bianmin-data")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The item catalog.
    Items(cases::ItemsArgs),
    /// Creates a case; seals it into the outbox when 初审 passes, otherwise keeps a draft.
    New(cases::NewArgs),
    /// Every case on this device.
    List(cases::ListArgs),
    /// Creates sealed cases in a loop, printing each id once durable (for the crash test).
    #[command(hide = true)]
    CrashLoop(cases::CrashLoopArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Items(a) => cases::items(&a),
        Command::New(a) => cases::new(&cli.data, &a),
        Command::List(a) => cases::list(&cli.data, &a),
        Command::CrashLoop(a) => cases::crash_loop(&cli.data, &a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
