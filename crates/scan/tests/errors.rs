//! Hostile and broken inputs: non-images, truncated files, headers claiming huge sizes, corrupt
//! data. Each must give its precise error (never a panic) before any large allocation.

use bianmin_scan::{probe, scan, CancelToken, ScanError, ScanOptions};

fn png_header(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[depth, color, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0]); // CRC (never reached: the probe rejects first)
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(b"IEND");
    v.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
    v
}

fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8];
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[1, 1, 0x11, 0]);
    v.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0x34, 0xFF, 0xD9]);
    v
}

/// A small real photo-like JPEG (grey page on a dark background).
fn small_jpeg() -> Vec<u8> {
    // A landscape A4-shaped page (400 x 283, aspect 1.41: detection checks the aspect).
    let img = image::GrayImage::from_fn(640, 480, |x, y| {
        let inside = (120..520).contains(&x) && (100..383).contains(&y);
        let text = inside
            && (y / 12) % 2 == 0
            && (x / 6) % 3 == 0
            && (130..350).contains(&y)
            && (160..480).contains(&x);
        image::Luma([if text {
            30
        } else if inside {
            230
        } else {
            60
        }])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encode");
    out
}

fn err(bytes: &[u8]) -> ScanError {
    scan(bytes, &ScanOptions::default(), &CancelToken::new()).expect_err("must fail")
}

#[test]
fn non_images_are_rejected() {
    assert_eq!(err(b""), ScanError::NotAnImage);
    assert_eq!(err(b"hello, this is a text file"), ScanError::NotAnImage);
    assert_eq!(err(b"GIF89a........"), ScanError::NotAnImage);
    assert_eq!(err(&[0u8; 4096]), ScanError::NotAnImage);
}

#[test]
fn huge_png_header_is_rejected_from_the_header() {
    // 100000 x 100000 = 10 gigapixels: rejected by the probe, which allocates nothing.
    let e = err(&png_header(100_000, 100_000, 8, 2));
    assert!(
        matches!(e, ScanError::TooLarge { megapixels } if megapixels > 9_000.0),
        "{e:?}"
    );
    assert_eq!(e.user_message(), "照片过大，请降低相机分辨率后重拍");
    assert!(matches!(
        probe(&png_header(100_000, 100_000, 8, 2)),
        Err(ScanError::TooLarge { .. })
    ));
}

#[test]
fn huge_jpeg_header_is_rejected_from_the_header() {
    assert!(matches!(
        err(&jpeg_header(60_000, 60_000)),
        ScanError::TooLarge { .. }
    ));
    // Just over 50 MP.
    assert!(matches!(
        err(&jpeg_header(8_200, 6_200)),
        ScanError::TooLarge { .. }
    ));
}

#[test]
fn decode_over_256_mib_is_rejected_even_under_50_megapixels() {
    // 45 MP of 16-bit RGBA would take 360 MB.
    assert!(
        matches!(err(&png_header(9_000, 5_000, 16, 6)), ScanError::TooMuchMemory { mib } if mib > 256)
    );
}

#[test]
fn truncated_files_are_reported_as_truncated() {
    let j = small_jpeg();
    for cut in [3, 20, j.len() / 2, j.len() - 2] {
        assert_eq!(err(&j[..cut]), ScanError::Truncated, "cut at {cut}");
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::new(300, 200))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    assert_eq!(err(&png[..png.len() / 2]), ScanError::Truncated);
    assert_eq!(err(&png[..12]), ScanError::Truncated);
}

#[test]
fn corrupt_data_never_panics() {
    let j = small_jpeg();
    // Deterministic byte flips across the whole file, headers included.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..60 {
        let mut b = j.clone();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % b.len() as u64) as usize;
            b[i] = (state >> 32) as u8;
        }
        // Any outcome but a panic is acceptable: a damaged but decodable scan, or an error.
        let _ = scan(&b, &ScanOptions::default(), &CancelToken::new());
    }
}

#[test]
fn small_and_png_inputs_work() {
    let j = small_jpeg();
    let s = scan(&j, &ScanOptions::default(), &CancelToken::new()).expect("small jpeg");
    assert_eq!(
        (s.width, s.height),
        (2339, 1654),
        "landscape page in a landscape photo"
    );
    assert!(s.detected);
    let img = image::load_from_memory(&j).expect("decode");
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let p = scan(&png, &ScanOptions::default(), &CancelToken::new()).expect("png input");
    assert!(p.detected);
    for (a, b) in s.corners.iter().zip(p.corners.iter()) {
        assert!(a.dist(*b) < 3.0);
    }
}

#[test]
fn every_error_has_a_chinese_user_message() {
    let all = [
        ScanError::NotAnImage,
        ScanError::Truncated,
        ScanError::Corrupt("x".into()),
        ScanError::Unsupported("x".into()),
        ScanError::TooLarge { megapixels: 60.0 },
        ScanError::TooMuchMemory { mib: 300 },
        ScanError::InvalidCorners,
        ScanError::Cancelled,
        ScanError::Encode("x".into()),
        ScanError::OutputTooLarge { bytes: 3_000_000 },
        ScanError::Io("x".into()),
        ScanError::Internal("x".into()),
    ];
    for e in all {
        let m = e.user_message();
        assert!(
            m.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{e:?}: {m}"
        );
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn tiny_images_are_rejected_not_warped() {
    for (w, h) in [(1, 1), (1, 500), (15, 15)] {
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(image::GrayImage::new(w, h))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        assert!(matches!(err(&png), ScanError::Unsupported(_)), "{w}x{h}");
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(16, 16, image::Luma([200])))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let s = scan(&png, &ScanOptions::default(), &CancelToken::new()).expect("16x16 is enough");
    assert!(!s.detected);
}
