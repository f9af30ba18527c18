//! Development probe for detection alone, so a profiler counts detection and nothing else:
//! `detect_probe write DIR N` writes the first N A4 photos of the first held-out range at 12 MP
//! (4000×3000) as JPEG files; `detect_probe DIR` decodes each (luma) and runs page detection
//! (MODE=card: card detection) on it RUNS times (default 1), printing reason, corners and the
//! median detection time. Under `valgrind --tool=callgrind
//! --toggle-collect='bianmin_scan::detect::detect'` the instruction count is detection's own,
//! repeatable on a busy machine.
use bianmin_scan::detect::detect;
use bianmin_scan::synth::{self, Kind};
use bianmin_scan::{decode, Mode};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("write") {
        let dir = Path::new(&args[1]);
        let n: usize = args[2].parse().expect("N");
        std::fs::create_dir_all(dir).expect("dir");
        // The benchmark's timing photos: held-out A4 pages in order, ID cards left out.
        let specs: Vec<_> = synth::held_out_set(4 * n, (4000, 3000))
            .into_iter()
            .filter(|s| s.kind != Kind::IdCard)
            .take(n)
            .collect();
        for (i, spec) in specs.iter().enumerate() {
            let p = synth::render(spec);
            std::fs::write(dir.join(format!("{i:03}.jpg")), &p.jpeg).expect("write");
        }
        return;
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut files: Vec<_> = std::fs::read_dir(&args[0])
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    // MODE=card detects ID cards.
    let mode = if std::env::var("MODE").as_deref() == Ok("card") {
        Mode::Card
    } else {
        Mode::Page
    };
    let mut total = 0.0;
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let header = decode::probe(&bytes).expect("probe");
        let raster = decode::decode(&bytes, &header, false).expect("decode");
        let mut t = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let t0 = Instant::now();
            last = Some(detect(&raster, header.orientation, mode));
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(f64::total_cmp);
        let d = last.expect("a run");
        total += t[t.len() / 2];
        let c: Vec<String> = d
            .corners
            .iter()
            .map(|p| format!("{:.1},{:.1}", p.x, p.y))
            .collect();
        println!(
            "{} {} {:.3} {} {:.2} ms",
            f.file_name().expect("name").to_string_lossy(),
            d.reason.code(),
            d.confidence,
            c.join(" "),
            t[t.len() / 2]
        );
    }
    println!("total {total:.2} ms");
}
