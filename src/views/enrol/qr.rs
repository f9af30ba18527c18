//! The enrolment sheet's QR code (`bianmin:enrol?server=…&code=…`), read from a photo.

/// Parses an enrolment QR payload: `bianmin:enrol?server=...&code=...` (the server may be
/// missing when the town centre did not know its public address; the typed one is kept then).
pub fn parse_enrol_qr(text: &str) -> Option<(Option<String>, String)> {
    let query = text.trim().strip_prefix("bianmin:enrol?")?;
    let mut server = None;
    let mut code = None;
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("server", v) if !v.is_empty() => server = Some(v.to_string()),
            ("code", v) if !v.is_empty() => code = Some(v.to_string()),
            _ => {}
        }
    }
    Some((server, code?))
}

/// The longest side a photo is shrunk to before looking for the QR code: a code filling a
/// tenth of the frame still has ~5 px modules there, and rqrr on a 12 MP photo takes seconds.
const QR_SEARCH_SIDE: u32 = 1600;

/// Reads the enrolment QR code from a photo of the enrolment sheet (or of the town centre's
/// screen). Runs off the UI thread; errors say what to do.
pub fn read_enrol_qr(photo: &[u8]) -> Result<(Option<String>, String), String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(photo))
        .with_guessed_format()
        .map_err(|_| "无法读取照片，请重新拍一次。".to_string())?;
    // Same limits as document photos: a broken or hostile file must not exhaust the phone.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(256 << 20);
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        tracing::warn!(error = %e, "enrolment photo does not decode");
        "这不是一张能识别的照片，请对准登记单上的二维码重新拍。".to_string()
    })?;
    let gray = img.to_luma8();
    let (w, h) = gray.dimensions();
    let side = w.max(h);
    let find = |img: image::GrayImage| {
        let mut prepared = rqrr::PreparedImage::prepare(img);
        prepared
            .detect_grids()
            .into_iter()
            .find_map(|g| g.decode().ok().map(|(_, text)| text))
    };
    let found = if side > QR_SEARCH_SIDE {
        let k = QR_SEARCH_SIDE as f32 / side as f32;
        let small = image::imageops::resize(
            &gray,
            (w as f32 * k) as u32,
            (h as f32 * k) as u32,
            image::imageops::FilterType::Triangle,
        );
        // A small code far away only shows at full resolution: slower, so only as a second try.
        find(small).or_else(|| find(gray))
    } else {
        find(gray)
    };
    let Some(text) = found else {
        return Err(
            "照片里没有找到二维码：请让二维码占满取景框的一半左右，对准后保持手机不动再拍。"
                .to_string(),
        );
    };
    parse_enrol_qr(&text)
        .ok_or_else(|| "这不是便民设备登记二维码，请拍镇中心发的登记单上的二维码。".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrol_qr_fills_server_and_code() {
        assert_eq!(
            parse_enrol_qr("bianmin:enrol?server=https://bm.x.cn&code=140423101201"),
            Some((Some("https://bm.x.cn".into()), "140423101201".into()))
        );
        assert_eq!(
            parse_enrol_qr("bianmin:enrol?code=K7Q2-MX4P"),
            Some((None, "K7Q2-MX4P".into()))
        );
        assert_eq!(parse_enrol_qr("bianmin:enrol?server=http://x"), None);
        assert_eq!(parse_enrol_qr("140423101201"), None);
    }

    /// A phone-sized photo of a sheet with the code in one corner, on a grey desk.
    fn photo_of_code(payload: &str, module_px: u32) -> Vec<u8> {
        let qr = qrcode::QrCode::new(payload.as_bytes()).unwrap();
        let n = qr.width() as u32;
        let colors = qr.to_colors();
        let mut img = image::GrayImage::from_pixel(4000, 3000, image::Luma([120]));
        // White sheet with a 4-module quiet zone around the code.
        let (x0, y0) = (2400u32, 900u32);
        let sheet = (n + 8) * module_px;
        for y in 0..sheet {
            for x in 0..sheet {
                img.put_pixel(x0 + x, y0 + y, image::Luma([235]));
            }
        }
        for (i, c) in colors.iter().enumerate() {
            if *c == qrcode::Color::Dark {
                let (mx, my) = (i as u32 % n, i as u32 / n);
                for y in 0..module_px {
                    for x in 0..module_px {
                        img.put_pixel(
                            x0 + (mx + 4) * module_px + x,
                            y0 + (my + 4) * module_px + y,
                            image::Luma([30]),
                        );
                    }
                }
            }
        }
        let mut out = Vec::new();
        image::DynamicImage::ImageLuma8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut out),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        out
    }

    #[test]
    fn the_enrolment_qr_is_read_from_a_phone_photo() {
        let payload = "bianmin:enrol?server=http://192.168.1.20:8714&code=K7Q2-MX4P";
        let expected = (
            Some("http://192.168.1.20:8714".into()),
            "K7Q2-MX4P".to_string(),
        );
        assert_eq!(
            read_enrol_qr(&photo_of_code(payload, 24)).unwrap(),
            expected
        );
        // A code photographed from further away is found by the full-resolution second try.
        assert_eq!(read_enrol_qr(&photo_of_code(payload, 5)).unwrap(), expected);
    }

    #[test]
    fn photos_without_an_enrolment_code_say_what_to_do() {
        let other = read_enrol_qr(&photo_of_code("https://example.cn/", 24)).unwrap_err();
        assert!(other.contains("不是便民设备登记二维码"), "{other}");
        let blank = {
            let mut out = Vec::new();
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(
                800,
                600,
                image::Luma([200]),
            ))
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
            out
        };
        assert!(read_enrol_qr(&blank)
            .unwrap_err()
            .contains("没有找到二维码"));
        assert!(read_enrol_qr(b"not an image")
            .unwrap_err()
            .contains("重新拍"));
    }
}
