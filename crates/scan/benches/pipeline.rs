//! Benchmark (not a test): per-stage median times of the Rust pipeline beside the reference
//! OpenCV pipeline (`opencv_reference.py`) on the same synthetic photos, one thread and all cores.
//!
//! Run: `cargo bench -p bianmin-scan --bench pipeline` (after `bash crates/scan/benches/setup_venv.sh`).
//! Env: SCAN_BENCH_REPS (default 5), SCAN_BENCH_ROUNDS (default 3), SCAN_BENCH_PYTHON (default /work/main/.bench-venv/bin/python
//! relative to the workspace), SCAN_BENCH_KEEP=DIR to keep photos and outputs for inspection.

use bianmin_scan::{scan, synth, CancelToken, Mode, ScanOptions, StageTimings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STAGES: [&str; 6] = ["decode", "detect", "warp", "normalise", "encode", "total"];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stage(t: &StageTimings, s: &str) -> f64 {
    match s {
        "decode" => ms(t.decode),
        "detect" => ms(t.detect),
        "warp" => ms(t.warp),
        "normalise" => ms(t.normalize),
        "encode" => ms(t.encode),
        _ => ms(t.total()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per photo: stage -> median ms, plus output bytes.
type Table = BTreeMap<String, (BTreeMap<String, f64>, usize)>;

fn run_rust(
    photos: &[(String, Vec<u8>)],
    reps: usize,
    threads: usize,
    keep: Option<&Path>,
) -> Table {
    let mut out = Table::new();
    let opts = ScanOptions {
        threads,
        ..ScanOptions::default()
    };
    let cancel = CancelToken::new();
    for (name, bytes) in photos {
        // Warm-up run (first-touch page faults, CPU feature detection).
        let first = scan(bytes, &opts, &cancel).expect("scan");
        if let Some(k) = keep {
            std::fs::write(k.join(format!("{name}.rust.jpg")), &first.data).expect("write");
        }
        let runs: Vec<StageTimings> = (0..reps)
            .map(|_| scan(bytes, &opts, &cancel).expect("scan").timings)
            .collect();
        let med = STAGES
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    median(runs.iter().map(|t| stage(t, s)).collect()),
                )
            })
            .collect();
        out.insert(name.clone(), (med, first.data.len()));
    }
    out
}

fn run_opencv(
    python: &Path,
    script: &Path,
    dir: &Path,
    reps: usize,
    threads: usize,
    keep: Option<&Path>,
) -> Option<Table> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(dir)
        .arg(reps.to_string())
        .arg(threads.to_string());
    if let Some(k) = keep {
        cmd.arg(k);
    }
    let o = cmd.output().ok()?;
    if !o.status.success() {
        eprintln!(
            "opencv reference failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    // Minimal parsing of the script's flat JSON: "name": {"decode": x, ..., "bytes": n, ...}.
    let photos = text.split("\"photos\": {").nth(1)?;
    let mut out = Table::new();
    for chunk in photos.split("}, ").map(|c| c.trim_end_matches('}')) {
        let (name, body) = chunk.split_once(": {")?;
        let name = name.trim().trim_matches('"').to_string();
        let mut med = BTreeMap::new();
        let mut bytes = 0;
        for kv in body.split(", ") {
            let (k, v) = kv.split_once(": ")?;
            let k = k.trim_matches('"');
            if k == "bytes" {
                bytes = v.parse().ok()?;
            } else if let Ok(x) = v.parse::<f64>() {
                med.insert(
                    if k == "normalise" {
                        "normalise".into()
                    } else {
                        k.to_string()
                    },
                    x,
                );
            }
        }
        out.insert(name, (med, bytes));
    }
    Some(out)
}

/// Per photo and stage, the median over rounds.
fn merge(rounds: &[Table]) -> Table {
    let mut out = Table::new();
    for (name, (_, bytes)) in &rounds[0] {
        let med = STAGES
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    median(rounds.iter().map(|t| t[name].0[*s]).collect()),
                )
            })
            .collect();
        out.insert(name.clone(), (med, *bytes));
    }
    out
}

/// Mean over photos of the per-photo medians.
fn avg(t: &Table, s: &str) -> f64 {
    t.values().map(|(m, _)| m[s]).sum::<f64>() / t.len() as f64
}

fn avg_kb(t: &Table) -> f64 {
    t.values().map(|(_, b)| *b as f64 / 1024.0).sum::<f64>() / t.len() as f64
}

fn main() {
    let reps: usize = std::env::var("SCAN_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("SCAN_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../../.bench-venv/bin/python"));
    let script = root.join("benches/opencv_reference.py");
    let keep = std::env::var_os("SCAN_BENCH_KEEP").map(PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("photos");
    std::fs::create_dir_all(&dir).expect("mkdir");
    if let Some(k) = &keep {
        std::fs::create_dir_all(k).expect("mkdir keep");
    }

    eprintln!("rendering synthetic corpus (A4 pages only; 4000x3000 photos)...");
    let mut photos = Vec::new();
    for spec in synth::corpus() {
        let p = synth::render(&spec);
        if p.mode != Mode::Page {
            continue;
        }
        std::fs::write(dir.join(format!("{}.jpg", spec.name)), &p.jpeg).expect("write photo");
        photos.push((spec.name.to_string(), p.jpeg));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    // The machine is shared, so load drifts: Rust and OpenCV runs alternate in rounds and each
    // photo's figure is the median over the rounds' medians, so both see the same conditions.
    let rounds: usize = std::env::var("SCAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut r1s = Vec::new();
    let mut c1s = Vec::new();
    let mut rns = Vec::new();
    let mut cns = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}: Rust 1 thread, OpenCV 1 thread, Rust {cores} threads, OpenCV all threads ({reps} reps per photo)", round + 1);
        r1s.push(run_rust(
            &photos,
            reps,
            1,
            if round == 0 { keep.as_deref() } else { None },
        ));
        c1s.extend(run_opencv(
            &python,
            &script,
            &dir,
            reps,
            1,
            if round == 0 { keep.as_deref() } else { None },
        ));
        rns.push(run_rust(&photos, reps, cores, None));
        cns.extend(run_opencv(&python, &script, &dir, reps, 0, None));
    }
    let rust1 = merge(&r1s);
    let rust_n = merge(&rns);
    let cv1 = if c1s.is_empty() {
        None
    } else {
        Some(merge(&c1s))
    };
    let cv_n = if cns.is_empty() {
        None
    } else {
        Some(merge(&cns))
    };

    println!(
        "\nbianmin-scan pipeline vs OpenCV reference — {} synthetic 12 MP photos of A4 pages; per photo the median of {rounds} alternating rounds x {reps} runs; mean over photos (ms)\n",
        photos.len()
    );
    println!("| stage | Rust 1T | OpenCV 1T | Rust/OpenCV 1T | Rust {cores}T | OpenCV {cores}T | Rust/OpenCV {cores}T |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for s in STAGES {
        let (r1, rn) = (avg(&rust1, s), avg(&rust_n, s));
        let c1 = cv1.as_ref().map(|t| avg(t, s));
        let cn = cv_n.as_ref().map(|t| avg(t, s));
        let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "n/a".into());
        let ratio = |a: f64, b: Option<f64>| {
            b.map(|b| format!("{:.2}", a / b))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "| {s} | {r1:.1} | {} | {} | {rn:.1} | {} | {} |",
            f(c1),
            ratio(r1, c1),
            f(cn),
            ratio(rn, cn)
        );
    }
    let kb_cv = cv1.as_ref().map(avg_kb);
    println!(
        "| KB per page | {:.0} | {} | {} | | | |",
        avg_kb(&rust1),
        kb_cv
            .map(|k| format!("{k:.0}"))
            .unwrap_or_else(|| "n/a".into()),
        kb_cv
            .map(|k| format!("{:.2}", avg_kb(&rust1) / k))
            .unwrap_or_else(|| "n/a".into())
    );
    println!("\nper photo (1 thread): total ms Rust / OpenCV, KB Rust / OpenCV");
    for (name, (m, b)) in &rust1 {
        let cv = cv1.as_ref().and_then(|t| t.get(name));
        println!(
            "  {name:<20} {:>6.1} / {:>6}   {:>4} / {:>4}",
            m["total"],
            cv.map(|c| format!("{:.1}", c.0["total"]))
                .unwrap_or_default(),
            b / 1024,
            cv.map(|c| (c.1 / 1024).to_string()).unwrap_or_default()
        );
    }
    if cv1.is_none() {
        println!("\nOpenCV reference not run: create the venv with `bash crates/scan/benches/setup_venv.sh`.");
    }
}
