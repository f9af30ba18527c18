//! `bianmin-agent scan`: several photos in one process, a good page and a bad file reported apart.

use std::process::Command;

use bianmin_scan::synth;

#[test]
fn scans_many_photos_and_reports_a_broken_one_without_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let spec = &synth::corpus()[0];
    let photo = synth::render(spec);
    let good = dir.path().join("page.jpg");
    std::fs::write(&good, &photo.jpeg).unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, &photo.jpeg[..2000]).unwrap();
    let out = dir.path().join("out");

    let run = Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
        .args(["scan", "--mode", "page", "--out"])
        .arg(&out)
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "one photo failed, so the exit code says so"
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("1654x2339"), "{stdout}");
    assert!(
        stdout.contains("confidence 0.") || stdout.contains("confidence 1."),
        "{stdout}"
    );
    assert!(
        stdout.contains("contour and line detection agree"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let scanned = std::fs::read(out.join("page.jpg")).unwrap();
    let img = image::load_from_memory(&scanned).unwrap();
    assert_eq!((img.width(), img.height()), (1654, 2339));
    assert!(
        scanned.len() <= 300 * 1024 + 64 * 1024,
        "{} bytes",
        scanned.len()
    );
}

#[test]
fn a_page_it_could_not_find_is_flagged_for_checking() {
    let dir = tempfile::tempdir().unwrap();
    let spec = synth::corpus()
        .into_iter()
        .find(|s| s.kind == synth::Kind::FullFrame)
        .unwrap();
    let photo = synth::render(&spec);
    let path = dir.path().join("close.jpg");
    std::fs::write(&path, &photo.jpeg).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
        .args(["scan", "--out"])
        .arg(dir.path().join("out"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("whole frame") && stdout.contains("CHECK THIS PAGE"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("1 page(s) need checking"));
}
