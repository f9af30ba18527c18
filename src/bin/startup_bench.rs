//! Startup benchmark (not a test): launches the app in bench mode several times and reports the
//! time from process start to the first screen painted in the webview.
//!
//! Usage (release build, under an X server):
//!
//! ```text
//! cargo build --release -p bianmin --features e2e --bin bianmin
//! xvfb-run -a cargo run --release -p bianmin --features e2e --bin startup_bench -- [path/to/bianmin] [runs]
//! ```
//! The app prints `BIANMIN_FIRST_SCREEN` after two animation frames of its first screen
//! (`BIANMIN_BENCH=1`, see `src/e2e.rs`) and exits.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use bianmin::services::book::Book;
use bianmin_engine::enrolment::Enrolment;

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let me = std::env::current_exe().expect("own path");
        me.with_file_name("bianmin")
    });
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(7);
    if std::env::var_os("DISPLAY").is_none() {
        eprintln!("no X display: run under `xvfb-run -a`");
        std::process::exit(2);
    }
    // An enrolled device, so the first screen is the agent's home (outbox counts read from disk).
    let data = std::env::temp_dir().join(format!("bianmin-bench-{}", std::process::id()));
    let book = Book::open(&data).expect("data dir");
    let device = Enrolment::offline(
        book.outbox(),
        "http://127.0.0.1:9",
        "140423101201",
        "基准",
        chrono::Utc::now(),
    )
    .expect("enrol");
    book.save_enrolment(&device).expect("enrol");
    // The app opens the same outbox; release it first.
    drop(book);
    let mut times = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        let mut child = Command::new(&bin)
            .env("BIANMIN_BENCH", "1")
            .env("BIANMIN_DATA", &data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let out = BufReader::new(child.stdout.take().expect("piped"));
        let mut seen = None;
        for line in out.lines().map_while(Result::ok) {
            if line.contains("BIANMIN_FIRST_SCREEN") {
                seen = Some(start.elapsed());
                break;
            }
        }
        let _ = child.wait();
        match seen {
            Some(t) => {
                println!("run {run}: first screen after {} ms", t.as_millis());
                times.push(t);
            }
            None => eprintln!("run {run}: the app exited without rendering"),
        }
    }
    let _ = std::fs::remove_dir_all(&data);
    if times.is_empty() {
        std::process::exit(1);
    }
    times.sort();
    let median = times[times.len() / 2];
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "median {} ms, best {} ms, worst {} ms over {} runs; binary {} ({:.1} MiB)",
        median.as_millis(),
        times[0].as_millis(),
        times[times.len() - 1].as_millis(),
        times.len(),
        bin.display(),
        size as f64 / 1048576.0
    );
}
