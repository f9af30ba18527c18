//! Scratch timing probe for the warp stage (development aid): `cargo run --release --example warp_probe`.
use bianmin_scan::{decode, geom, CancelToken, Point};
fn main() {
    let p = bianmin_scan::synth::render(&bianmin_scan::synth::corpus()[5]);
    let h = decode::probe(&p.jpeg).unwrap();
    let r = decode::decode(&p.jpeg, &h, false).unwrap();
    let rect = bianmin_scan::detect::frame_corners(1654, 2339);
    let m = geom::Mat3::from_quads(&rect, &p.corners).unwrap();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let out = bianmin_scan::warp_for_probe(&r, &m, 1654, 2339, 1, 1, &CancelToken::new());
        println!("warp {:?} {}", t.elapsed(), out.unwrap().len());
    }
    let small = decode::Raster { w: 300, h: 300, ch: 1, data: vec![7; 90000] };
    let q = [Point::new(10.0, 10.0), Point::new(280.0, 12.0), Point::new(285.0, 290.0), Point::new(5.0, 280.0)];
    let m = geom::Mat3::from_quads(&rect, &q).unwrap();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let out = bianmin_scan::warp_for_probe(&small, &m, 1654, 2339, 1, 1, &CancelToken::new());
        println!("small-source warp {:?} {}", t.elapsed(), out.unwrap().len());
    }
}
