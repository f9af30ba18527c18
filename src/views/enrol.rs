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
        out.push("镇中心地址要以 https:// 开头，例如 https://bm.xiangyuan.gov.cn，请向镇中心索取。".to_string());
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

/// Parses an enrolment QR payload: `bianmin:enrol?server=...&code=...`.
pub fn parse_enrol_qr(text: &str) -> Option<(String, String)> {
    let query = text.strip_prefix("bianmin:enrol?")?;
    let mut server = None;
    let mut code = None;
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("server", v) => server = Some(v.to_string()),
            ("code", v) => code = Some(v.to_string()),
            _ => {}
        }
    }
    Some((server?, code?))
}

/// Enrols the device: online with a one-time code, or offline with a 12-digit village code.
pub async fn enrol(book: &Book, role: Role, f: &EnrolForm) -> Result<Device, String> {
    use bianmin_engine::transport::Transport;
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
    let resp = transport.enrol(&req).await.map_err(|e| format!("登记失败：{}", e.user_message()))?;
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
                        services.sync_now.send(crate::services::sync::SyncTrigger::Button);
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
                            f.server = server;
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
        let f = EnrolForm { server: "bm".into(), code: "1404".into(), person: " ".into() };
        assert_eq!(check(Role::Village, &f).len(), 3);
        let ok = EnrolForm { server: "http://127.0.0.1:8080".into(), code: "140423101201".into(), person: "李".into() };
        assert!(check(Role::Village, &ok).is_empty());
        assert_eq!(check(Role::Town, &ok).len(), 1, "a tablet needs the town's one-time code");
        assert!(check(Role::Town, &EnrolForm { code: "K7Q2-MX4P".into(), ..ok }).is_empty());
    }

    #[test]
    fn enrol_qr_fills_server_and_code() {
        assert_eq!(
            parse_enrol_qr("bianmin:enrol?server=https://bm.x.cn&code=140423101201"),
            Some(("https://bm.x.cn".into(), "140423101201".into()))
        );
        assert_eq!(parse_enrol_qr("140423101201"), None);
    }
}
