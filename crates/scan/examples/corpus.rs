//! Writes the synthetic corpus photos and their scans to a directory, for looking at by eye:
//! `cargo run -p bianmin-scan --release --example corpus -- OUT_DIR`.

use bianmin_scan::{scan, synth, CancelToken, ColorMode, ScanOptions};

fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "scan-corpus".into()),
    );
    std::fs::create_dir_all(&out).expect("create output dir");
    for p in synth::render_corpus() {
        let name = p.spec.name;
        std::fs::write(out.join(format!("{name}.photo.jpg")), &p.jpeg).expect("write photo");
        let mut opts = if p.mode == bianmin_scan::Mode::Card {
            ScanOptions::card()
        } else {
            ScanOptions::default()
        };
        if p.spec.kind == synth::Kind::Certificate {
            opts.color = ColorMode::Color;
        }
        match scan(&p.jpeg, &opts, &CancelToken::new()) {
            Ok(s) => {
                let err = s
                    .corners
                    .iter()
                    .zip(p.corners.iter())
                    .map(|(a, b)| a.dist(*b))
                    .fold(0f32, f32::max);
                println!(
                    "{name}: detected={} max corner error {err:.2} px, {}x{}, {} KB, q{}, {:?}",
                    s.detected,
                    s.width,
                    s.height,
                    s.data.len() / 1024,
                    s.quality,
                    s.timings
                );
                println!("  found {:?}\n  truth {:?}", s.corners, p.corners);
                std::fs::write(
                    out.join(format!("{name}.scan.{}", s.format.extension())),
                    &s.data,
                )
                .expect("write scan");
            }
            Err(e) => println!("{name}: error {e}"),
        }
    }
}
