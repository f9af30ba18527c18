//! The county side of a forwarded case on the tablet (转县): which office has it, since when,
//! 县受理 with its deadline, the county's 要求补正 (what it asks for, who, when) and its decision,
//! read from `GET /v1/cases/{id}/county`. An open request is answered here: the town writes what
//! it supplied and 重新报送县里 sends the case up again (the town centre refuses an empty reply).

use bianmin_engine::transport::TransportError;
use bianmin_protocol::county::{CountyStepView, CountyView};
use bianmin_protocol::sync::{ActionRequest, TownAction};
use dioxus::prelude::*;

use super::staff_transport;
use crate::services::use_enrolment;

/// The refusals of 重新报送县里 in the words staff need; anything else as any other action's.
fn refusal(e: &TransportError) -> String {
    let code = match e {
        TransportError::Rejected { code, .. } => code.as_str(),
        _ => "",
    };
    match code {
        "empty_reply" => "请写明补正了什么，县里据此核对。".to_string(),
        "already_forwarded" => "县里没有要求补正，无需重新报送。".to_string(),
        "not_forwarded" => "这个办件没有转县。".to_string(),
        _ => e.staff_message(),
    }
}

/// A step's time as the county and the town read it (China time).
fn when(s: &CountyStepView) -> String {
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    s.at.with_timezone(&china)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The county box of a case that was forwarded: reads the county side whenever `stage` (the
/// case's state and version) changes, and after each reply sent from here.
#[component]
pub fn CountyPanel(case_id: String, version: u32, stage: ReadSignal<String>) -> Element {
    let enrolment = use_enrolment();
    let operator = super::operator::use_operator();
    let mut refresh = use_signal(|| 0u32);
    let mut busy = use_signal(|| false);
    let mut message = use_signal(|| None::<(bool, String)>);
    let id = case_id.clone();
    let shown = use_resource(move || {
        let id = id.clone();
        async move {
            let _ = (refresh(), stage());
            // Released before the await: the sync loop may write the enrolment meanwhile.
            let t = staff_transport(&enrolment.read())?;
            t.county(&id).await.map_err(|e| refusal(&e))
        }
    });
    let send = move |reply: String| {
        if busy() {
            return;
        }
        busy.set(true);
        let id = case_id.clone();
        spawn(async move {
            let (staff, pin) = super::operator::credentials(&operator.read());
            let req = ActionRequest {
                action: TownAction::Forward { note: reply },
                staff,
                expected_version: Some(version),
                pin,
            };
            let t = staff_transport(&enrolment.read());
            let r = match t {
                Ok(t) => t.act(&id, &req).await.map_err(|e| refusal(&e)),
                Err(e) => Err(e),
            };
            message.set(Some(match r {
                Ok(_) => (true, "已重新报送县里".to_string()),
                Err(e) => (false, format!("操作失败：{e}")),
            }));
            busy.set(false);
            refresh += 1;
        });
    };
    let view: Option<Result<CountyView, String>> = shown.read().clone();
    match view {
        None => {
            rsx! { section { class: "county", id: "county", p { class: "muted", "正在读取县级办理情况…" } } }
        }
        Some(Err(e)) => rsx! {
            section { class: "county", id: "county",
                p { class: "error", "{e}" }
                button { class: "btn", onclick: move |_| refresh += 1, "重试" }
            }
        },
        Some(Ok(v)) => rsx! { CountyBox { view: v, busy: busy(), message: message(), send } },
    }
}

/// What the county did with the case, and the reply to its 要求补正 (asked once more before it
/// is sent, as decisions are).
#[component]
pub fn CountyBox(
    view: CountyView,
    busy: bool,
    message: Option<(bool, String)>,
    send: Callback<String>,
) -> Element {
    let mut reply = use_signal(String::new);
    let mut confirming = use_signal(|| false);
    let mut said_nothing = use_signal(|| false);
    let v = view;
    let open_request = v.request.clone().filter(|_| v.decided.is_none());
    rsx! {
        section { class: "county", id: "county", "data-status": "{v.status}",
            h3 { "县级办理" }
            p { id: "county-office", "转至" strong { "{v.office_name}" } " · " strong { id: "county-status", "{v.status}" } }
            p { class: "muted", "转县：{v.forwarded.by}，{when(&v.forwarded)}"
                if !v.forwarded.note.is_empty() { "；说明：{v.forwarded.note}" } }
            if let Some(a) = &v.accepted {
                p { id: "county-accepted", "县受理：{a.by}，{when(a)}"
                    if let Some(d) = v.deadline { "；办结期限 {d}" } }
            }
            if let Some(r) = &open_request {
                div { class: "correction", id: "county-request", role: "alert",
                    p { strong { "县要求补正" } "（{r.by}，{when(r)}）：" }
                    p { id: "county-request-note", "{r.note}" }
                    label { class: "field", span { "回复县里：补正了什么（必填）" }
                        textarea { id: "county-reply", value: "{reply}",
                            oninput: move |e| { said_nothing.set(false); reply.set(e.value()); } } }
                    if said_nothing() {
                        p { class: "error", id: "county-reply-empty", "请写明补正了什么，县里据此核对。" }
                    }
                    if confirming() {
                        div { class: "confirm-bar", id: "county-confirm", role: "alertdialog", "aria-label": "确认重新报送县里",
                            p { strong { "确认重新报送县里？" } }
                            div { class: "actions town-actions",
                                button { class: "btn primary", id: "county-confirm-ok", disabled: busy,
                                    onclick: move |_| {
                                        confirming.set(false);
                                        send.call(reply.peek().trim().to_string());
                                        reply.set(String::new());
                                    }, "确认重新报送县里" }
                                button { class: "btn", id: "county-confirm-cancel", onclick: move |_| confirming.set(false), "取消" }
                            }
                        }
                    } else {
                        div { class: "actions town-actions",
                            button { class: "btn primary", id: "county-resend", disabled: busy,
                                onclick: move |_| {
                                    if reply.read().trim().is_empty() {
                                        said_nothing.set(true);
                                    } else {
                                        confirming.set(true);
                                    }
                                }, "重新报送县里" }
                        }
                    }
                }
            }
            if let Some(d) = &v.decided {
                p { id: "county-decided", "县里的决定：{d.by}，{when(d)}"
                    if !d.note.is_empty() { "：{d.note}" } }
            }
            if let Some((ok, msg)) = message {
                p { id: "county-message", class: if ok { "ok" } else { "error" }, role: "status", "{msg}" }
            }
        }
    }
}
