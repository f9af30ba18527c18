//! Development probe: scans synthetic photos repeatedly and prints per-stage medians, so a
//! profiler (or a quick A/B) sees the pipeline, not the corpus renderer:
//! `cargo run -p bianmin-scan --release --example profile_scan [PHOTO_INDEX...]`
//! (env RUNS, THREADS, STAT=min, DUMP=DIR).
use bianmin_scan::{scan, synth, CancelToken, ScanOptions};
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let idx: Vec<usize> = if args.is_empty() {
        vec![0, 1, 2, 3, 5]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    let corpus = synth::corpus();
    let opts = ScanOptions {
        threads,
        ..ScanOptions::default()
    };
    let mut sum = [0f64; 6];
    for &i in &idx {
        let p = synth::render(&corpus[i]);
        // DUMP=DIR writes the photo, e.g. to run `benches/opencv_reference.py DIR 15 1` beside it.
        if let Some(d) = std::env::var_os("DUMP") {
            std::fs::write(
                std::path::Path::new(&d).join(format!("{}.jpg", corpus[i].name)),
                &p.jpeg,
            )
            .unwrap();
        }
        let mut t: Vec<[f64; 6]> = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let s = scan(&p.jpeg, &opts, &CancelToken::new()).unwrap();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            let tm = s.timings;
            t.push([
                ms(tm.decode),
                ms(tm.detect),
                ms(tm.warp),
                ms(tm.normalize),
                ms(tm.encode),
                ms(tm.total()),
            ]);
            last = Some(s);
        }
        let s = last.unwrap();
        let med: Vec<f64> = (0..6)
            .map(|k| {
                let mut v: Vec<f64> = t.iter().map(|r| r[k]).collect();
                v.sort_by(f64::total_cmp);
                // STAT=min prints the fastest run, which is steadier than the median when other
                // work shares the machine.
                if std::env::var("STAT").as_deref() == Ok("min") {
                    v[0]
                } else {
                    v[v.len() / 2]
                }
            })
            .collect();
        for k in 0..6 {
            sum[k] += med[k];
        }
        println!(
            "{:<20} decode {:5.1} detect {:4.1} warp {:4.1} norm {:4.1} enc {:4.1} total {:5.1}  {} KB q{}",
            corpus[i].name, med[0], med[1], med[2], med[3], med[4], med[5], s.data.len() / 1024, s.quality
        );
    }
    let n = idx.len() as f64;
    println!(
        "{:<20} decode {:5.1} detect {:4.1} warp {:4.1} norm {:4.1} enc {:4.1} total {:5.1}",
        "mean",
        sum[0] / n,
        sum[1] / n,
        sum[2] / n,
        sum[3] / n,
        sum[4] / n,
        sum[5] / n
    );
}
