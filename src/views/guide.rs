//! The item's service guide (办事指南) with the printable 一次性告知 notice, and "start a case".
//! The village phone and the town window (`views/town/window.rs`) show the same guide; only what
//! 开始办理 does differs.

use dioxus::prelude::*;

use crate::components::top_bar::TopBar;
use crate::route::Route;
use crate::services::{use_book, use_catalog, use_enrolment};
use bianmin_engine::catalog::{contact_text, Item};

#[component]
pub fn GuideScreen(code: String) -> Element {
    let book = use_book();
    let catalog = use_catalog();
    let enrolment = use_enrolment();
    let mut error = use_signal(|| None::<String>);
    let start = {
        let (code, catalog) = (code.clone(), catalog.clone());
        move |_| {
            let Some(e) = enrolment.read().clone() else {
                return;
            };
            // What the phone knows (the village) is written in as the case starts.
            match crate::views::case::known::start_case(&book, &catalog, &code, &e) {
                // The guide is not a step to go back to once the case exists.
                Ok(case) => {
                    navigator().replace(Route::CaseScreen { id: case.id });
                }
                Err(e) => error.set(Some(e)),
            }
        }
    };
    rsx! { GuideView { code, on_start: start, error: error() } }
}

/// The guide of item `code`, with 开始办理 calling `on_start`.
#[component]
pub fn GuideView(code: String, on_start: EventHandler<()>, error: Option<String>) -> Element {
    let catalog = use_catalog();
    let Some(item) = catalog.item(&code).cloned() else {
        return rsx! { TopBar { title: "事项" } p { class: "error", "找不到事项 {code}，请返回重新选择。" } };
    };
    let Some(guide) = item.guide.clone() else {
        return rsx! {
            TopBar { title: "{item.name}" }
            GuideMissing { item }
        };
    };
    let contact = catalog.contact(&guide.contact).cloned();
    let notice = guide.notice(&item, contact.as_ref());
    let phone = contact_text(contact.as_ref());
    rsx! {
        TopBar { title: "{item.name}" }
        main { class: "page guide",
            if guide.draft { p { class: "draft", "本指南为草稿，以县行政审批局发布为准。" } }
            if !guide.to_confirm.is_empty() {
                section { class: "to-confirm", id: "to-confirm",
                    h2 { "待县里确认" }
                    ul { for (i, c) in guide.to_confirm.iter().enumerate() { li { key: "{i}", "{c}" } } }
                }
            }
            p { class: "summary", "{guide.summary}" }
            h2 { "申请条件" }
            ul { class: "conditions", id: "conditions",
                for (i, c) in guide.conditions.iter().enumerate() { li { key: "{i}", "{c}" } }
                for (i, c) in guide.checks.iter().enumerate() { li { key: "check-{i}", class: "checked", "{c.message}（初审时核对）" } }
            }
            dl { class: "facts",
                dt { "承诺时限" } dd { "{guide.promised_days} 个工作日" }
                dt { "收费" } dd { "{guide.fee}" }
                dt { "办理层级" } dd { "{guide.handling_level}" }
                dt { "监督电话" } dd { "{phone}" }
            }
            h2 { "需要的材料" }
            ol { class: "materials",
                for m in guide.materials.iter() {
                    li { key: "{m.key}",
                        strong { "{m.name}" }
                        " {m.form.label()}，拍：{m.pages_text()}"
                        span { class: if m.required { "need" } else { "muted" }, "（{m.need_text()}）" }
                        if !m.note.is_empty() { p { class: "instruction", "{m.note}" } }
                    }
                }
            }
            h2 { "办理流程" }
            ol { for (i, p) in guide.procedure.iter().enumerate() { li { key: "{i}", "{p}" } } }
            if let Some(e) = error { p { class: "error", "{e}" } }
            div { class: "actions",
                button { class: "btn primary big", id: "start-case", onclick: move |_| on_start.call(()), "开始办理" }
                button { class: "btn", id: "print-notice",
                    onclick: move |_| { document::eval("window.print()"); },
                    "打印一次性告知书"
                }
            }
            details { class: "sample", id: "sample-form",
                summary { "示范文本（申请书怎么写）" }
                pre { "{guide.sample_form}" }
            }
            h2 { "一次性告知书" }
            pre { class: "notice", id: "notice", "{notice}" }
        }
    }
}

/// An item whose guide is not written yet (most town items, see `assets/catalog/town.toml`):
/// marked as a draft awaiting the county, and no case can be started from it.
#[component]
fn GuideMissing(item: Item) -> Element {
    rsx! {
        main { class: "page guide",
            p { class: "draft", id: "guide-missing", "办事指南草稿，待县级确认：该事项的材料清单和办理要求尚未发布，暂不能在系统中办理，请联系镇中心。" }
            dl { class: "facts",
                dt { "事项类型" } dd { "{item.kind}" }
                if !item.method.is_empty() { dt { "办理方式" } dd { "{item.method}" } }
            }
        }
    }
}
