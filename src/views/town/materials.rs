//! The materials of a case on the tablet: each material's page thumbnails, and the 需补正 pick
//! with its note while a correction may be asked.

use std::collections::HashMap;

use bianmin_engine::case::allowed;
use bianmin_protocol::{CaseState, MissingItem};
use dioxus::prelude::*;

use super::pages::{load_pages, PageRef, PageView, ReviewMaterial};
use crate::services::use_enrolment;

#[component]
pub fn TownMaterials(
    case_id: String,
    state: CaseState,
    order: Vec<PageRef>,
    rows: Vec<ReviewMaterial>,
    pages: Signal<HashMap<String, PageView>>,
    missing: Signal<Vec<MissingItem>>,
    on_open: EventHandler<usize>,
) -> Element {
    let can_pick = allowed(state, CaseState::CorrectionRequested);
    rsx! {
        h2 { id: "materials", "材料" }
        p { class: "muted", "共{order.len()}页，点页面放大查看。" if can_pick { "需要补正的材料请勾选“需补正”并写明问题。" } }
        div { class: "town-mats",
            for row in rows.iter().cloned() {
                div { key: "{row.key}", class: if missing.read().iter().any(|m| m.key == row.key) { "town-mat picked" } else { "town-mat" }, "data-key": "{row.key}",
                    div { class: "mat-head",
                        strong { "{row.name}" }
                        if row.required { span { class: "req", "（必交）" } }
                        span { class: "have", if row.pages.is_empty() { "未提交" } else { "{row.pages.len()}页" } }
                    }
                    if !row.pages.is_empty() {
                        Thumbs { case_id: case_id.clone(), shown: row.pages.iter().map(|&i| (i, order[i].clone())).collect::<Vec<_>>(), pages, on_open }
                    }
                    if can_pick {
                        CorrectionPick { material: row.key.clone(), missing }
                    }
                }
            }
        }
    }
}

/// A material's pages as thumbnails: loading, ready (opens the viewer) or failed (retries).
#[component]
fn Thumbs(
    case_id: String,
    shown: Vec<(usize, PageRef)>,
    pages: Signal<HashMap<String, PageView>>,
    on_open: EventHandler<usize>,
) -> Element {
    let enrolment = use_enrolment();
    let failure = shown
        .iter()
        .find_map(|(_, p)| match pages.read().get(&p.page.sha256) {
            Some(PageView::Failed(e)) => Some(e.clone()),
            _ => None,
        });
    rsx! {
        div { class: "thumbs",
            for (i, p) in shown {
                {
                    let state = pages.read().get(&p.page.sha256).cloned().unwrap_or(PageView::Loading);
                    let sha = p.page.sha256.clone();
                    let label = format!("{} 第{}/{}页", p.material, p.n, p.of);
                    match state {
                        PageView::Ready(url) => rsx! {
                            button { key: "{sha}", class: "thumb", "data-sha": "{sha}", "data-state": "ready", title: "{label}", "aria-label": "放大查看{label}",
                                onclick: move |_| on_open.call(i),
                                img { src: "{url}", alt: "{label}" }
                                span { class: "pg", "{p.n}/{p.of}" }
                            }
                        },
                        PageView::Loading => rsx! {
                            button { key: "{sha}", class: "thumb loading", "data-sha": "{sha}", "data-state": "loading", title: "{label}",
                                onclick: move |_| on_open.call(i),
                                span { "正在载入…" }
                                span { class: "pg", "{p.n}/{p.of}" }
                            }
                        },
                        PageView::Failed(e) => rsx! {
                            button { key: "{sha}", class: "thumb failed", "data-sha": "{sha}", "data-state": "failed", title: "{e}",
                                onclick: { let pr = p.page.clone(); let cid = case_id.clone(); move |_| {
                                    load_pages(enrolment, cid.clone(), vec![pr.clone()], pages);
                                } },
                                span { "载入失败" }
                                span { "点此重试" }
                            }
                        },
                    }
                }
            }
        }
        if let Some(e) = failure {
            p { class: "error page-error", "{e}" }
        }
    }
}

/// 需补正 on one material, with the note saying what is wrong.
#[component]
fn CorrectionPick(material: String, missing: Signal<Vec<MissingItem>>) -> Element {
    let picked = missing
        .read()
        .iter()
        .find(|m| m.key == material)
        .map(|m| m.note.clone());
    let is_picked = picked.is_some();
    let k = material.clone();
    rsx! {
        label { class: "check pick",
            input { r#type: "checkbox", checked: is_picked,
                onchange: move |e: FormEvent| {
                    let mut list = missing.write();
                    list.retain(|x| x.key != k);
                    if e.checked() { list.push(MissingItem { key: k.clone(), note: String::new() }); }
                } }
            "需补正"
        }
        if let Some(note) = picked {
            input { class: "pick-note", placeholder: "写明问题，如：照片不清楚，请重拍", value: "{note}",
                oninput: move |e: FormEvent| {
                    if let Some(m) = missing.write().iter_mut().find(|m| m.key == material) { m.note = e.value(); }
                } }
        }
    }
}
