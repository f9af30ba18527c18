//! End-to-end scenario in the real webview: starts the app in its test mode on a private X screen
//! (the driver lives in `src/e2e.rs`), waits for its verdict, then decodes the receipt's QR code
//! from the screenshot and checks it is the resident URL the app printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A page-like JPEG: white paper with dark text lines, like a photographed form.
fn sample_photo(dir: &Path) -> PathBuf {
    let mut img = image::GrayImage::from_pixel(800, 1100, image::Luma([235]));
    for line in 0..30 {
        let y = 80 + line * 32;
        for x in 60..(740 - (line % 5) * 60) {
            for dy in 0..6 {
                img.put_pixel(x, y + dy, image::Luma([40]));
            }
        }
    }
    let path = dir.join("page.jpg");
    img.save(&path).expect("write sample photo");
    path
}

#[test]
fn village_case_from_form_to_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = sample_photo(tmp.path());
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&out).unwrap();
    let _ = std::fs::remove_file(out.join("receipt-url.txt"));
    // A private X server large enough for the tablet size; the window sits at its origin.
    let mut child = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1400x900x24", env!("CARGO_BIN_EXE_bianmin")])
        .env("BIANMIN_E2E", "1")
        .env("BIANMIN_DATA", tmp.path().join("data"))
        .env("BIANMIN_E2E_OUT", &out)
        .env("BIANMIN_E2E_PHOTO", &photo)
        .env("BIANMIN_SERVER", "http://127.0.0.1:9")
        .spawn()
        .expect("xvfb-run and the app start");
    // Bounded wait for the app's own verdict; every step inside has its own bounded wait.
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("the app did not finish the scenario within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "scenario failed (see E2E FAIL above); screenshots in {}", out.display());

    for name in ["home", "items", "guide", "case-form-error", "case-form", "outbox"] {
        for size in ["phone", "tablet"] {
            let p = out.join(format!("{name}-{size}.png"));
            assert!(p.exists(), "missing screenshot {}", p.display());
        }
    }

    let url = std::fs::read_to_string(out.join("receipt-url.txt")).unwrap();
    assert!(url.starts_with("http://127.0.0.1:9/r/140423101201-"), "{url}");
    let shot = image::open(out.join("receipt-tablet.png")).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(shot);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code on the receipt");
    let (_, decoded) = grids[0].decode().expect("QR decodes");
    assert_eq!(decoded, url, "the receipt QR is the resident URL");
}
