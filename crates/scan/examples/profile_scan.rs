//! Development probe: scans one synthetic photo repeatedly so a profiler sees the pipeline, not
//! the corpus renderer: `cargo run -p bianmin-scan --release --example profile_scan`.
use bianmin_scan::{scan, synth, CancelToken, ScanOptions};
fn main() {
    let p = synth::render(&synth::corpus()[5]);
    for _ in 0..30 {
        let s = scan(&p.jpeg, &ScanOptions::default(), &CancelToken::new()).unwrap();
        println!("{:?} {} KB q{}", s.timings, s.data.len() / 1024, s.quality);
    }
}
