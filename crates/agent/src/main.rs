//! `bianmin-agent`: parses the command line and hands each command to its module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bianmin_agent::{cases, read_id_cmd, receipt_cmd, scan_cmd, sync_cmd};

#[derive(Parser)]
#[command(
    name = "bianmin-agent",
    version,
    about = "Headless village-agent client over the Bianmin engine"
)]
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
    /// Enrols this device with the town centre using a one-time code.
    Enroll(sync_cmd::EnrollArgs),
    /// Sends every queued case and fetches the town's decisions; exit 0 only when all are acknowledged.
    Sync(sync_cmd::SyncArgs),
    /// Enrolment, queue and the state of every case.
    Status(sync_cmd::StatusArgs),
    /// Adds what the town asked for (补正) and reseals the case as its next version.
    Correct(sync_cmd::CorrectArgs),
    /// Records that a result the town gave this agent to bring (代办员送达) reached the resident.
    Deliver(sync_cmd::DeliverArgs),
    /// Prints the resident's receipt link (QR content) for a case, minted offline with the device key.
    Receipt(receipt_cmd::ReceiptArgs),
    /// Turns phone photos into clean page or ID-card scans (perspective, shadows, size).
    Scan(scan_cmd::ScanArgs),
    /// Reads the ID number from photos of ID-card fronts: `PHOTO<TAB>NUMBER`, or `-` when unsure.
    ReadId(read_id_cmd::ReadIdArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Items(a) => cases::items(&cli.data, &a),
        Command::New(a) => cases::new(&cli.data, &a),
        Command::List(a) => cases::list(&cli.data, &a),
        Command::CrashLoop(a) => cases::crash_loop(&cli.data, &a),
        Command::Enroll(a) => sync_cmd::enroll(&cli.data, &a),
        Command::Sync(a) => sync_cmd::sync(&cli.data, &a),
        Command::Status(a) => sync_cmd::status(&cli.data, &a),
        Command::Deliver(a) => sync_cmd::deliver(&cli.data, &a),
        Command::Correct(a) => sync_cmd::correct(&cli.data, &a),
        Command::Receipt(a) => receipt_cmd::receipt(&cli.data, &a),
        Command::Scan(a) => scan_cmd::scan(&a),
        Command::ReadId(a) => read_id_cmd::read_id(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
