//! The receipt (回执) for the resident: case number, materials received, promised date and the QR link.

use bianmin_engine::receipt;
use bianmin_engine::validate::mask_name;
use chrono::Local;
use dioxus::prelude::*;

use crate::components::qr::Qr;
use crate::components::top_bar::TopBar;
use crate::route::Route;
use crate::services::{use_book, use_catalog, use_catalog_for, use_enrolment, use_revision};

#[component]
pub fn ReceiptScreen(id: String) -> Element {
    let _ = use_revision().read();
    let Some(case) = use_book().get(&id) else {
        return rsx! { TopBar { title: "回执" } p { class: "error", "找不到这个办件。" } };
    };
    let Some(enrolment) = use_enrolment().read().clone() else {
        return rsx! {};
    };
    // The definition the case was made under when this device holds it, else the newest.
    let current = use_catalog();
    let item = use_catalog_for(case.catalog_version)
        .unwrap_or(current)
        .item(&case.item)
        .cloned();
    let name = item
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or_else(|| case.item.clone());
    let days = item
        .as_ref()
        .and_then(|i| i.guide.as_ref())
        .map(|g| g.promised_days)
        .unwrap_or(0);
    // The link is signed on the phone, so the receipt works before the case is synced.
    let url = receipt::url(
        &enrolment.server,
        &case.id,
        &receipt::mint(&enrolment.signing_key, &case.id, Local::now().date_naive()),
    );
    let promised = match case.deadline {
        Some(d) => format!("{d} 前办结"),
        None => format!("镇中心受理后 {days} 个工作日内办结"),
    };
    let materials: Vec<(String, usize)> = item
        .as_ref()
        .and_then(|i| i.guide.as_ref())
        .map(|g| {
            g.materials
                .iter()
                .filter_map(|m| {
                    let n = case
                        .materials
                        .iter()
                        .find(|p| p.key == m.key)
                        .map(|p| p.pages.len())
                        .unwrap_or(0);
                    (n > 0).then(|| (m.name.clone(), n))
                })
                .collect()
        })
        .unwrap_or_default();
    // A village report (到龄死亡月报表) has no resident: nothing to follow or rate.
    let resident = item.as_ref().is_none_or(|i| i.applicant.is_resident());
    if !resident {
        return rsx! {
            TopBar { title: "已提交" }
            main { class: "page receipt", id: "receipt",
                h2 { "村级报表已封存" }
                dl { class: "facts",
                    dt { "办件编号" } dd { code { id: "receipt-case", "{case.id}" } }
                    dt { "事项" } dd { "{name}" }
                    dt { "状态" } dd { "{case.state.label()}" }
                }
                p { id: "no-receipt", "本事项是村里的报表，没有居民申请人，不出具回执、不参加好差评。有信号时会自动上传镇中心。" }
                div { class: "actions no-print",
                    button { class: "btn primary", id: "receipt-done", onclick: move |_| { navigator().replace(Route::Home {}); }, "完成" }
                }
            }
        };
    }
    rsx! {
        TopBar { title: "回执" }
        main { class: "page receipt", id: "receipt",
            h2 { "便民服务回执" }
            dl { class: "facts",
                dt { "办件编号" } dd { code { id: "receipt-case", "{case.id}" } }
                dt { "事项" } dd { "{name}" }
                dt { "申请人" } dd { "{mask_name(&case.applicant.name)}" }
                dt { "状态" } dd { "{case.state.label()}" }
                dt { "承诺时限" } dd { "{promised}" }
                dt { "首问负责人" } dd { "{case.responsible.name}" }
            }
            h3 { "已收材料" }
            ul { for (n, k) in materials { li { "{n}：{k} 张" } } }
            Qr { data: url.clone() }
            p { class: "muted", "请申请人用微信或相机扫码，随时查看办理进度，办结后可以评价。" }
            div { class: "actions no-print",
                button { class: "btn", onclick: move |_| { document::eval("window.print()"); }, "打印回执" }
                button { class: "btn primary", id: "receipt-done", onclick: move |_| { navigator().replace(Route::Home {}); }, "完成" }
            }
        }
    }
}
