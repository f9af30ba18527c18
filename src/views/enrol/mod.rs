//! Enrolment (设备登记): the role, the town centre's address and the enrolment code.
//!
//! The normal way is the one-time enrolment code from the town centre (`bianmin-town enroll`): the
//! app sends it with the device's public key, and the town's answer fixes the role (village agent
//! or town staff), the village and the server's receipt key. Where there is no signal at all, a
//! village phone can start with its 12-digit village code offline and is confirmed by the town
//! later. The code can be typed, or read from the enrolment sheet's `bianmin:enrol?...` QR text.

use bianmin_protocol::sync::DeviceRole;
use dioxus::prelude::*;

use crate::capture::{CaptureButton, Photo};
use crate::route::Route;
use crate::services::{use_book, use_enrolment, use_sync};

pub mod form;
pub mod qr;

use form::{check, enrol, EnrolForm};
use qr::{parse_enrol_qr, read_enrol_qr};

#[component]
pub fn Enrol() -> Element {
    let book = use_book();
    let mut enrolment = use_enrolment();
    let sync = use_sync();
    let role = use_signal(|| DeviceRole::Agent);
    let mut form = use_signal(|| EnrolForm {
        server: std::env::var("BIANMIN_SERVER").unwrap_or_default(),
        code: std::env::var("BIANMIN_ENROLL_CODE").unwrap_or_default(),
        ..Default::default()
    });
    let mut problems = use_signal(Vec::<String>::new);
    let mut busy = use_signal(|| false);
    let nav = navigator();
    let submit = move |_| {
        let f = form.read().clone();
        let p = check(role(), &f);
        if !p.is_empty() {
            return problems.set(p);
        }
        let book = book.clone();
        busy.set(true);
        spawn(async move {
            let result = enrol(book.outbox(), &f).await;
            busy.set(false);
            let e = match result.and_then(|e| book.save_enrolment(&e).map(|()| e)) {
                Ok(e) => e,
                Err(msg) => return problems.set(vec![msg]),
            };
            let start = Route::start(Some(&e));
            enrolment.set(Some(e));
            sync.poke();
            nav.replace(start);
        });
    };
    let r = role();
    rsx! {
        header { class: "bar", h1 { "设备登记" } }
        main { class: "page enrol",
            p { "首次使用请登记本设备。登记信息由镇综合便民服务中心提供。" }
            RoleChoice { role }
            EnrolQr { form, problems }
            label { class: "field",
                span { "镇中心地址" }
                input { id: "enrol-server", r#type: "url", inputmode: "url", value: "{form.read().server}",
                    placeholder: "https://…",
                    oninput: move |e| form.write().server = e.value() }
            }
            label { class: "field",
                span { if r == DeviceRole::Agent { "村登记码（12位）" } else { "镇登记码" } }
                input { id: "enrol-code", inputmode: "numeric", value: "{form.read().code}",
                    oninput: move |e| {
                        let v = e.value();
                        // A scanned enrolment QR pasted or read by a scanner fills both fields.
                        let mut f = form.write();
                        match parse_enrol_qr(&v) {
                            Some((server, code)) => {
                                if let Some(server) = server { f.server = server; }
                                f.code = code;
                            }
                            None => f.code = v,
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

/// 村代办员（手机） or 镇代办员（平板）.
#[component]
fn RoleChoice(role: Signal<DeviceRole>) -> Element {
    let r = role();
    let class = |on: bool| if on { "btn toggle on" } else { "btn toggle" };
    rsx! {
        div { class: "choice",
            button { class: class(r == DeviceRole::Agent), id: "role-village",
                onclick: move |_| role.set(DeviceRole::Agent), "村代办员（手机）" }
            button { class: class(r == DeviceRole::Staff), id: "role-town",
                onclick: move |_| role.set(DeviceRole::Staff), "镇代办员（平板）" }
        }
    }
}

/// 扫登记二维码: the photo is decoded and searched off the UI thread (a 12 MP decode takes a
/// while on a phone), then fills the address and the code.
#[component]
fn EnrolQr(form: Signal<EnrolForm>, problems: Signal<Vec<String>>) -> Element {
    let mut scanning = use_signal(|| false);
    let on_photo = move |photo: Result<Photo, String>| {
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
    let label = if scanning() {
        "正在识别二维码…"
    } else {
        "扫登记二维码"
    };
    rsx! {
        div { class: "scan-code",
            CaptureButton { label, tag: "enrol-qr", on_photo }
            small { class: "muted", "拍镇中心登记单上的二维码，地址和登记码会自动填好；也可以手工填写。" }
        }
    }
}
