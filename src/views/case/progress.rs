//! The case after it left the phone: its timeline with the town's decisions, and 已送达 when
//! the agent brings the result to the resident.

use bianmin_engine::case::Case;
use bianmin_protocol::Decision;
use dioxus::prelude::*;

use crate::services::{use_book, use_enrolment, use_revision, use_sync};

/// What happened to the case, newest last, with the town's decisions spelled out.
#[component]
pub fn Timeline(case: Case) -> Element {
    let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    rsx! {
        section { class: "timeline", id: "timeline",
            h2 { "办理进度" }
            ol {
                for (i, h) in case.history.iter().enumerate() {
                    li { key: "{i}",
                        span { class: "when", {h.at.with_timezone(&tz).format("%m-%d %H:%M").to_string()} }
                        " {h.to.label()}"
                        if !h.note.is_empty() { span { class: "muted", "：{h.note}" } }
                    }
                }
            }
            if let Some(d) = case.deadline { p { "承诺办结日期：{d}" } }
        }
    }
}

/// The outcome of a finished case (办结 or 不予受理), shown first when the case opens: it is
/// what the agent opened it for; the form below is only the record of what was sent.
#[component]
pub fn Outcome(case: Case) -> Element {
    rsx! {
        match &case.last_decision {
            Some(Decision::Completed { result, delivery }) => rsx! {
                section { class: "outcome done", id: "outcome",
                    h2 { "已办结" }
                    p { id: "completed", "办理结果：{result}；送达方式：{delivery.label()}" }
                }
            },
            Some(Decision::Refused { reason }) => rsx! {
                section { class: "outcome refused", id: "outcome",
                    h2 { "不予受理" }
                    p { id: "refused", "理由：{reason}" }
                }
            },
            _ => rsx! {},
        }
    }
}

/// 已送达: the agent confirms the result reached the resident. The mark is stored on the phone at
/// once, so it works in a house without signal, and the sync loop reports it to the town.
#[component]
pub fn DeliverButton(case_id: String) -> Element {
    let book = use_book();
    let enrolment = use_enrolment();
    let sync = use_sync();
    let revision = use_revision();
    // Re-read on every book write: the sync loop settles the mark in the background.
    let mark = use_memo({
        let (book, id) = (book.clone(), case_id.clone());
        move || {
            revision.read();
            book.delivery(&id)
        }
    });
    let mut error = use_signal(|| None::<String>);
    let deliver = move |_| {
        let person = enrolment
            .read()
            .as_ref()
            .map(|e| e.person.clone())
            .unwrap_or_default();
        match book.record_delivery(&case_id, &person) {
            Ok(_) => {
                error.set(None);
                sync.poke();
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let recorded = mark().filter(|m| m.refused.is_none());
    let refused = mark().and_then(|m| m.refused);
    rsx! {
        div { class: "actions deliver", id: "agent-delivery",
            if let Some(m) = recorded {
                p { class: "ok", id: "delivery-recorded",
                    {format!("已记录送达（{}）。", m.at.with_timezone(&china).format("%m-%d %H:%M"))}
                    if m.sent { "镇中心已收到，进度稍后更新。" } else { "有信号时会自动报给镇中心，不用再按。" }
                }
            } else {
                p { class: "muted", "镇中心已办结，结果由您送达申请人。送到后请点下面的按钮，没有信号也可以点。" }
                if let Some(r) = refused { p { class: "error", "{r}" } }
                button { class: "btn primary big", id: "mark-delivered", onclick: deliver, "已送达申请人" }
            }
            if let Some(e) = error() { p { class: "error", "{e}" } }
        }
    }
}
