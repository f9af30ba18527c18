//! Tuning report: scans the seeded tuning set (never the held-out set) and prints, per photo,
//! what made it hard, the confidence, corner error and lost area, then a summary.
//!
//! Run: `cargo run -p bianmin-scan --release --example tune -- [N] [WIDTH] [OUT_DIR]`
//! (defaults 120 photos at 1600x1200; `TUNE_SEEDS` and `TUNE_ONLY` below narrow the draw). With OUT_DIR the photos and scans of every photo that
//! lost area or was flagged are written there for looking at.

use bianmin_scan::synth::{self, SynthPhoto};
use bianmin_scan::{scan, CancelToken, Mode, ScanOptions};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(120);
    let width: u32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1600);
    let out = args.get(3).map(PathBuf::from);
    if let Some(o) = &out {
        std::fs::create_dir_all(o).expect("mkdir");
    }
    let mut specs = synth::tuning_set(n, (width, width * 3 / 4));
    // TUNE_SEEDS=10002,10010 looks at a few photos only.
    if let Ok(only) = std::env::var("TUNE_SEEDS") {
        let only: Vec<u64> = only
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        specs.retain(|s| only.contains(&s.seed));
    }
    // TUNE_ONLY=id_card or TUNE_ONLY=id_card:LightTable keeps one kind (and background) of a
    // larger draw: enough photos of a rare failure class without rendering all the others.
    if let Ok(only) = std::env::var("TUNE_ONLY") {
        let mut parts = only.split(':');
        let kind = parts.next().unwrap_or("").to_string();
        let bg = parts.next().map(str::to_string);
        specs.retain(|s| {
            s.kind.label() == kind
                && bg
                    .as_ref()
                    .is_none_or(|b| format!("{:?}", s.background) == *b)
        });
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rows: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<_> = (0..threads)
            .map(|t| {
                let specs = &specs;
                let out = &out;
                s.spawn(move || {
                    let mut rows = Vec::new();
                    for spec in specs.iter().skip(t).step_by(threads) {
                        let p = synth::render(spec);
                        rows.push(row(&p, out.as_deref()));
                    }
                    rows
                })
            })
            .collect();
        chunks
            .into_iter()
            .flat_map(|c| c.join().expect("worker"))
            .collect()
    });
    let mut lost = 0;
    let mut silent = 0;
    let mut flagged = 0;
    for r in &rows {
        println!("{r}");
        lost += r.contains("LOST") as usize;
        silent += r.contains("SILENT") as usize;
        flagged += r.contains("flagged") as usize;
    }
    println!(
        "{} photos: {lost} lost area, {silent} of them silently, {flagged} flagged",
        rows.len()
    );
}

fn row(p: &SynthPhoto, out: Option<&std::path::Path>) -> String {
    let opts = if p.mode == Mode::Card {
        ScanOptions::card()
    } else {
        ScanOptions::default()
    };
    let s = scan(&p.jpeg, &opts, &CancelToken::new()).expect("scan");
    let lost = p.lost_area(&s.corners);
    let err = if p.spec.page_in_frame() {
        s.corners
            .iter()
            .zip(&p.corners)
            .map(|(a, b)| a.dist(*b))
            .fold(0.0, f32::max)
    } else {
        0.0
    };
    let flagged = s.needs_check();
    let mut r = format!(
        "{:<70} conf {:.2} {:<28} err {:>6.1} lost {:.4} detect {:.1} ms{}{}",
        p.spec.describe(),
        s.confidence,
        s.reason.code(),
        err,
        lost,
        s.timings.detect.as_secs_f64() * 1000.0,
        if flagged { " flagged" } else { "" },
        if lost > 0.002 {
            if flagged {
                " LOST"
            } else {
                " LOST SILENT"
            }
        } else {
            ""
        }
    );
    if let Some(o) = out {
        if lost > 0.002 || flagged || (p.spec.page_in_frame() && err > 8.0) {
            let name = format!("{}_{}", p.spec.seed, p.spec.kind.label());
            std::fs::write(o.join(format!("{name}.photo.jpg")), &p.jpeg).expect("write");
            std::fs::write(o.join(format!("{name}.scan.jpg")), &s.data).expect("write");
            r += &format!("  -> {name}");
        }
    }
    r
}
