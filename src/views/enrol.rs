//! Enrolment (设备登记): the role, the town centre's address and the enrolment code.
//!
//! The normal way is the one-time enrolment code from the town centre (`bianmin-town enroll`): the
//! app sends it with the device's public key, and the town's answer fixes the role (village agent
//! or town staff), the village and the server's receipt key. Where there is no signal at all, a
//! village phone can start with its 12-digit village code offline and is confirmed by the town
//! later. The code can be typed, or read from the enrolment sheet's `bianmin:enrol?...` QR text.

use chrono::Utc;
use dioxus::prelude::*;

use crate::app::{start_screen, Nav, Services};
use crate::capture::{CaptureButton, Photo};
use crate::services::book::{Book, Device, Role};

/// What an enrolment form holds, checked before anything is saved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnrolForm {
    pub server: String,
    pub code: String,
    pub person: String,
}

/// Every problem with the form, in plain Chinese.
pub fn check(role: Role, f: &EnrolForm) -> Vec<String> {
    let mut out = Vec::new();
    let s = f.server.trim();
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.len() < 10 {
        out.push(
            "镇中心地址要以 https:// 开头，例如 https://bm.xiangyuan.gov.cn，请向镇中心索取。"
                .to_string(),
        );
    }
    let code = f.code.trim();
    let digits = code.chars().all(|c| c.is_ascii_digit());
    if code.is_empty() {
        out.push("请填写登记码（镇中心发的一次性登记码）。".to_string());
    } else if digits && code.len() != 12 {
        out.push("村登记码是12位数字（本村统计区划代码），请核对镇中心发的登记单。".to_string());
    } else if digits && role == Role::Town {
        out.push("平板请使用镇中心发的一次性登记码，不能用村代码登记。".to_string());
    }
    if f.person.trim().is_empty() {
        out.push("请填写您的姓名，办件上会记录首问负责人。".to_string());
    }
    out
}

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

/// Enrols the device: online with a one-time code, or offline with a 12-digit village code.
pub async fn enrol(book: &Book, role: Role, f: &EnrolForm) -> Result<Device, String> {
    use bianmin_engine::transport::{Credential, Transport, TransportError};
    use bianmin_protocol::sync::{DeviceRole, EnrolRequest};
    let code = f.code.trim();
    let mut d = book.new_device(role, &f.server, code, &f.person, Utc::now())?;
    if code.len() == 12 && code.chars().all(|c| c.is_ascii_digit()) {
        // Offline start for a village with no signal; the first sync registers the device.
        return Ok(d);
    }
    let key = d.key()?;
    let req = EnrolRequest {
        code: code.to_string(),
        device_id: d.device_code.clone(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        person: d.person.clone(),
    };
    let transport = Transport::new(&d.server, None).map_err(|e| e.user_message())?;
    let signed = Transport::new(
        &d.server,
        Some(Credential {
            device_id: d.device_code.clone(),
            key,
        }),
    )
    .map_err(|e| e.user_message())?;
    let resp = match transport.enrol(&req).await {
        Ok(r) => r,
        // The town may have registered this key and the answer got lost on the way (the code is
        // then used up, 401): the same key, kept in the outbox, asks who it is instead.
        Err(
            e @ (TransportError::Retryable(_)
            | TransportError::Rejected {
                status: 401 | 409, ..
            }),
        ) => signed
            .me()
            .await
            .map_err(|_| format!("登记失败：{}", e.user_message()))?,
        Err(e) => return Err(format!("登记失败：{}", e.user_message())),
    };
    d.role = match resp.role {
        DeviceRole::Agent => Role::Village,
        DeviceRole::Staff => Role::Town,
    };
    d.place = resp.village.clone().unwrap_or(resp.town.clone());
    d.place_name = resp.scope_name;
    d.server_key = Some(resp.server_key);
    Ok(d)
}

#[component]
pub fn Enrol() -> Element {
    let services = use_context::<Services>();
    let nav = use_context::<Nav>();
    let mut role = use_signal(|| Role::Village);
    let mut form = use_signal(|| EnrolForm {
        server: std::env::var("BIANMIN_SERVER").unwrap_or_default(),
        code: std::env::var("BIANMIN_ENROLL_CODE").unwrap_or_default(),
        ..Default::default()
    });
    let mut problems = use_signal(Vec::<String>::new);
    let r = role();
    let mut busy = use_signal(|| false);
    let mut scanning = use_signal(|| false);
    // The photo is decoded and searched on a blocking thread: a 12 MP decode takes a while on a phone.
    let on_qr_photo = move |photo: Result<Photo, String>| {
        let photo = match photo {
            Ok(p) => p,
            Err(e) => return problems.set(vec![e]),
        };
        scanning.set(true);
        spawn(async move {
            let read = tokio::task::spawn_blocking(move || read_enrol_qr(&photo.bytes))
                .await
                .unwrap_or_else(|_| Err("识别二维码时出错，请重新拍一次。".to_string()));
            scanning.set(false);
            match read {
                Ok((server, code)) => {
                    let mut f = form.write();
                    if let Some(server) = server {
                        f.server = server;
                    }
                    f.code = code;
                    problems.set(Vec::new());
                }
                Err(e) => problems.set(vec![e]),
            }
        });
    };
    let submit = {
        let services = services.clone();
        move |_| {
            let f = form.read().clone();
            let p = check(role(), &f);
            if !p.is_empty() {
                problems.set(p);
                return;
            }
            let services = services.clone();
            busy.set(true);
            spawn(async move {
                let result = enrol(&services.book, role(), &f).await;
                busy.set(false);
                let d = match result {
                    Ok(d) => d,
                    Err(e) => return problems.set(vec![e]),
                };
                match services.book.save_device(&d) {
                    Ok(()) => {
                        let mut dev = services.device;
                        let first = start_screen(&Some(d.clone()));
                        dev.set(Some(d));
                        services
                            .sync_now
                            .send(crate::services::sync::SyncTrigger::Button);
                        nav.home(first);
                    }
                    Err(e) => problems.set(vec![e]),
                }
            });
        }
    };
    rsx! {
        header { class: "bar", h1 { "设备登记" } }
        main { class: "page enrol",
            p { "首次使用请登记本设备。登记信息由镇综合便民服务中心提供。" }
            div { class: "choice",
                button {
                    class: if r == Role::Village { "btn toggle on" } else { "btn toggle" },
                    id: "role-village",
                    onclick: move |_| role.set(Role::Village),
                    "村代办员（手机）"
                }
                button {
                    class: if r == Role::Town { "btn toggle on" } else { "btn toggle" },
                    id: "role-town",
                    onclick: move |_| role.set(Role::Town),
                    "镇代办员（平板）"
                }
            }
            div { class: "scan-code",
                CaptureButton { label: if scanning() { "正在识别二维码…".to_string() } else { "扫登记二维码".to_string() }, tag: "enrol-qr", on_photo: on_qr_photo }
                small { class: "muted", "拍镇中心登记单上的二维码，地址和登记码会自动填好；也可以手工填写。" }
            }
            label { class: "field",
                span { "镇中心地址" }
                input { id: "enrol-server", r#type: "url", inputmode: "url", value: "{form.read().server}",
                    placeholder: "https://…",
                    oninput: move |e| form.write().server = e.value() }
            }
            label { class: "field",
                span { if r == Role::Village { "村登记码（12位）" } else { "镇登记码" } }
                input { id: "enrol-code", inputmode: "numeric", value: "{form.read().code}",
                    oninput: move |e| {
                        let v = e.value();
                        // A scanned enrolment QR pasted or read by a scanner fills both fields.
                        if let Some((server, code)) = parse_enrol_qr(&v) {
                            let mut f = form.write();
                            if let Some(server) = server { f.server = server; }
                            f.code = code;
                        } else {
                            form.write().code = v;
                        }
                    } }
            }
            label { class: "field",
                span { "您的姓名" }
                input { id: "enrol-person", value: "{form.read().person}", oninput: move |e| form.write().person = e.value() }
            }
            if !problems.read().is_empty() {
                ul { class: "errors",
                    for p in problems.read().iter() { li { "{p}" } }
                }
            }
            button { class: "btn primary", id: "enrol-submit", disabled: busy(), onclick: submit,
                if busy() { "正在向镇中心登记…" } else { "登记本设备" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_explains_every_problem() {
        let f = EnrolForm {
            server: "bm".into(),
            code: "1404".into(),
            person: " ".into(),
        };
        assert_eq!(check(Role::Village, &f).len(), 3);
        let ok = EnrolForm {
            server: "http://127.0.0.1:8080".into(),
            code: "140423101201".into(),
            person: "李".into(),
        };
        assert!(check(Role::Village, &ok).is_empty());
        assert_eq!(
            check(Role::Town, &ok).len(),
            1,
            "a tablet needs the town's one-time code"
        );
        assert!(check(
            Role::Town,
            &EnrolForm {
                code: "K7Q2-MX4P".into(),
                ..ok
            }
        )
        .is_empty());
    }

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
