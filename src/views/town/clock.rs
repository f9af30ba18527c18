//! The working-day clock of a case on the tablet: the countdown in words, the stop in progress,
//! the county's 催办, and the staff's 暂停计时 (公示, 鉴定, 听证, a county step), 恢复计时 and
//! 申请延期. The rules (行政许可法 第四十二条, 第四十五条) are the town centre's to apply; each
//! change asks once more before it is sent, as decisions do.

use bianmin_engine::deadline::clock::PauseReason;
use bianmin_engine::transport::TransportError;
use bianmin_protocol::clock::{ClockAction, ClockRequest, ClockView};
use dioxus::prelude::*;

use super::staff_transport;
use crate::services::use_enrolment;

/// The clock's refusals in the words staff need; anything else as any other action's.
fn refusal(e: &TransportError) -> String {
    let code = match e {
        TransportError::Rejected { code, .. } => code.as_str(),
        _ => "",
    };
    match code {
        "already_paused" => "计时已经暂停，请先恢复计时。".to_string(),
        "not_paused" => "计时没有暂停，无需恢复。".to_string(),
        "clock_not_running" => "这个办件没有在计时（尚未受理、补正中或已办结）。".to_string(),
        "empty_reason" => "请写明暂停或延期的理由。".to_string(),
        "extension_days" => "延期天数为1到10个工作日。".to_string(),
        "extension_pending" => "已有延期申请在等县里审批。".to_string(),
        "already_extended" => "这个办件已经延期过一次。".to_string(),
        _ => e.staff_message(),
    }
}

/// The clock box of a case. `stage` is the case's state and version as the case view last read
/// them: a decision (受理 starts the clock, 补正 stops it) changes it, and the clock is read again.
#[component]
pub fn ClockPanel(case_id: String, stage: ReadSignal<String>) -> Element {
    let enrolment = use_enrolment();
    let operator = super::operator::use_operator();
    let mut refresh = use_signal(|| 0u32);
    let id = case_id.clone();
    let shown = use_resource(move || {
        let id = id.clone();
        async move {
            let _ = (refresh(), stage());
            // Released before the await: the sync loop may write the enrolment meanwhile.
            let t = staff_transport(&enrolment.read())?;
            t.clock(&id).await.map_err(|e| refusal(&e))
        }
    });
    let mut reason = use_signal(|| PauseReason::Publicity.as_str().to_string());
    let mut note = use_signal(String::new);
    let mut days = use_signal(|| "5".to_string());
    let mut pending = use_signal(|| None::<(ClockAction, String)>);
    let mut busy = use_signal(|| false);
    let mut message = use_signal(|| None::<(bool, String)>);
    let send = {
        let id = case_id.clone();
        move |action: ClockAction| {
            if busy() {
                return;
            }
            busy.set(true);
            let id = id.clone();
            spawn(async move {
                let (staff, pin) = super::operator::credentials(&operator.read());
                let req = ClockRequest { action, staff, pin };
                let t = staff_transport(&enrolment.read());
                let r = match t {
                    Ok(t) => t.clock_action(&id, &req).await.map_err(|e| refusal(&e)),
                    Err(e) => Err(e),
                };
                message.set(Some(match r {
                    Ok(v) => (true, format!("已完成：{}", v.label)),
                    Err(e) => (false, format!("操作失败：{e}")),
                }));
                note.set(String::new());
                busy.set(false);
                refresh += 1;
            });
        }
    };
    let view: Option<Result<ClockView, String>> = shown.read().clone();
    let v = match view {
        None => {
            return rsx! { section { class: "clock", id: "clock", p { class: "muted", "正在读取计时…" } } }
        }
        Some(Err(e)) => {
            return rsx! {
                section { class: "clock", id: "clock",
                    p { class: "error", "{e}" }
                    button { class: "btn", onclick: move |_| refresh += 1, "重试" }
                }
            }
        }
        Some(Ok(v)) => v,
    };
    let running = v.working_days_left.is_some();
    let overdue = v.working_days_left.is_some_and(|d| d < 0) && v.paused.is_none();
    let said = move || note.read().trim().to_string();
    let ask_pause = move |_| {
        let r = reason();
        let label = PauseReason::parse(&r).map(|p| p.label()).unwrap_or("暂停");
        if said().is_empty() {
            return message.set(Some((false, "请写明暂停计时的原因。".into())));
        }
        pending.set(Some((
            ClockAction::Pause {
                reason: r.clone(),
                note: said(),
            },
            format!("暂停计时（{label}）"),
        )));
    };
    let ask_resume = move |_| {
        pending.set(Some((
            ClockAction::Resume { note: said() },
            "恢复计时".into(),
        )));
    };
    let ask_extension = move |_| {
        let Ok(n) = days.read().trim().parse::<u32>() else {
            return message.set(Some((false, "延期天数请填写数字（1到10）。".into())));
        };
        if said().is_empty() {
            return message.set(Some((false, "请写明申请延期的理由。".into())));
        }
        pending.set(Some((
            ClockAction::RequestExtension {
                days: n,
                reason: said(),
            },
            format!("申请延期{n}个工作日"),
        )));
    };
    rsx! {
        section { class: "clock", id: "clock", "data-paused": "{v.paused.is_some()}",
            h3 { "办理时限" }
            // The promised date is on the case view just above; this says where the count stands.
            p { id: "clock-label", class: if overdue { "error" } else { "" }, strong { "{v.label}" } }
            if let Some(p) = &v.paused {
                p { id: "clock-paused", "自{p.since}起暂停计时（{p.label}），经办人：{p.by}" }
            }
            if v.extension_pending {
                p { id: "clock-extension-pending", class: "muted", "延期申请已提交，等待县里审批。" }
            }
            if let Some(p) = &v.pressed {
                p { id: "clock-pressed", class: "error", "县级催办（{p.by}）：{p.note}" }
            }
            if !v.entries.is_empty() {
                ul { class: "clock-entries",
                    for (i, e) in v.entries.iter().enumerate() {
                        li { key: "{i}", "{e.at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect(\"UTC+8\")).format(\"%Y-%m-%d\")} {e.by}：{e.text}" }
                    }
                }
            }
            if running {
                label { class: "field", span { "原因（暂停、恢复或延期时写明）" }
                    textarea { id: "clock-note", value: "{note}", oninput: move |e| note.set(e.value()) } }
                if v.paused.is_some() {
                    div { class: "actions town-actions",
                        button { class: "btn", id: "clock-resume", disabled: busy(), onclick: ask_resume, "恢复计时" }
                    }
                } else {
                    div { class: "actions town-actions",
                        select { id: "clock-reason", "aria-label": "暂停原因", onchange: move |e| reason.set(e.value()),
                            for r in PauseReason::OUTSIDE_STEPS {
                                option { value: "{r.as_str()}", selected: reason() == r.as_str(), "{r.label()}" }
                            }
                        }
                        button { class: "btn", id: "clock-pause", disabled: busy(), onclick: ask_pause, "暂停计时" }
                    }
                    if !v.extension_pending {
                        div { class: "actions town-actions",
                            label { class: "inline", span { "延期工作日" }
                                input { id: "clock-days", r#type: "number", min: "1", max: "10", inputmode: "numeric",
                                    value: "{days}", oninput: move |e| days.set(e.value()) } }
                            button { class: "btn", id: "clock-extend", disabled: busy(), onclick: ask_extension, "申请延期" }
                        }
                    }
                }
            }
            if let Some((action, label)) = pending() {
                div { class: "confirm-bar", id: "clock-confirm", role: "alertdialog", "aria-label": "确认{label}",
                    p { strong { "确认{label}？" } }
                    div { class: "actions town-actions",
                        button { class: "btn primary", id: "clock-confirm-ok", disabled: busy(),
                            onclick: {
                                let mut send = send.clone();
                                move |_| { pending.set(None); send(action.clone()); }
                            }, "确认{label}" }
                        button { class: "btn", id: "clock-confirm-cancel", onclick: move |_| pending.set(None), "取消" }
                    }
                }
            }
            if let Some((ok, msg)) = message() {
                p { id: "clock-message", class: if ok { "ok" } else { "error" }, role: "status", "{msg}" }
            }
        }
    }
}
