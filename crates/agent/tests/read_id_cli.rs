//! `bianmin-agent read-id`: one line per photo, the number or `-`, over generated card photos.

use std::process::Command;

use bianmin_scan::idsynth::{self, FontFace};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";

#[test]
fn prints_one_line_per_photo_with_the_number_or_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let font = FontFace::open(std::path::Path::new(FONT)).expect("fonts-dejavu-core installed");
    let mut paths = Vec::new();
    let mut truth = Vec::new();
    for (i, f) in idsynth::id_tuning_set(4, (2000, 1500)).iter().enumerate() {
        let p = dir.path().join(format!("card{i}.jpg"));
        std::fs::write(&p, idsynth::render_id_front(f, &font).jpeg).unwrap();
        paths.push(p);
        truth.push(f.number.clone());
    }
    // A photo of a page, not a card: read as `-`.
    let page = bianmin_scan::synth::render(&bianmin_scan::synth::Spec {
        raw_size: (1200, 900),
        ..bianmin_scan::synth::Spec::plain("page", bianmin_scan::synth::Kind::TextPage, 5)
    });
    let page_path = dir.path().join("page.jpg");
    std::fs::write(&page_path, &page.jpeg).unwrap();

    let run = Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
        .arg("read-id")
        .args(&paths)
        .arg(&page_path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let stdout = String::from_utf8(run.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    let mut read = 0;
    for (i, line) in lines[..4].iter().enumerate() {
        let (photo, number) = line.split_once('\t').expect("PHOTO<TAB>NUMBER");
        assert_eq!(photo, paths[i].display().to_string());
        assert!(
            number == "-" || number == truth[i],
            "{line} (truth {})",
            truth[i]
        );
        read += usize::from(number == truth[i]);
    }
    assert!(read >= 2, "{stdout}");
    assert_eq!(lines[4], format!("{}\t-", page_path.display()));
}

#[test]
fn an_unreadable_file_gets_a_dash_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"not a photo").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
        .arg("read-id")
        .arg(&bad)
        .arg(dir.path().join("missing.jpg"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert_eq!(
        stdout,
        format!(
            "{}\t-\n{}\t-\n",
            bad.display(),
            dir.path().join("missing.jpg").display()
        )
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("not a JPEG or PNG"));
}
