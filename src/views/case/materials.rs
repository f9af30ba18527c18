//! One material of the checklist: its pages (retake, delete, 调整边角) and the capture button.

use bianmin_engine::case::Case;
use bianmin_engine::catalog::Material;
use bianmin_engine::validate::MaterialNeed;
use dioxus::prelude::*;

use super::walk::{Place, WalkHead};
use crate::capture::{AdjustCorners, ScanCapture};
use crate::services::{use_book, use_originals};

/// A stored page as an image. Its own component because Dioxus re-renders a component only when
/// its props change: the material rows re-render on every keystroke in the form, and decrypting and
/// encoding megabytes of pages each time would make typing lag on a cheap phone.
#[component]
fn PageThumb(page: bianmin_protocol::AttachmentRef) -> Element {
    let url = use_book().page_data_url(&page);
    rsx! {
        if let Some(url) = url { img { src: "{url}", alt: "{page.name}" } }
    }
}

/// One material of the checklist: its pages, retake/delete, and the capture button. `place` is
/// set on the material the walk stands on (逐项拍照), which shows the walk's controls.
#[component]
pub fn MaterialRow(
    case: Signal<Option<Case>>,
    material: Material,
    need: MaterialNeed,
    editable: bool,
    error: Signal<Option<String>>,
    place: Option<Place>,
    walk: Signal<Option<String>>,
    on_stored: EventHandler<String>,
) -> Element {
    let book = use_book();
    let originals = use_originals();
    let Some(c) = case.read().clone() else {
        return rsx! {};
    };
    let m = material;
    let pages = c
        .materials
        .iter()
        .find(|p| p.key == m.key)
        .map(|p| p.pages.clone())
        .unwrap_or_default();
    let labels = need.pages.clone();
    let shots = labels.join("、");
    let required = need.required;
    let need = labels.len();
    let have = pages.len();
    // Which page the next photo replaces (retake), if any.
    let mut retake = use_signal(|| None::<usize>);
    // 删除 takes a second tap on the same page (确认删除), so a slip of the finger loses nothing.
    let mut deleting = use_signal(|| None::<usize>);
    // On the town's 补正 list and not re-photographed yet: not green, whatever the count says.
    let flagged = c.awaits_retake(&m.key);
    let status = if flagged {
        "mat flagged"
    } else if have >= need {
        "mat done"
    } else if required {
        "mat missing"
    } else {
        "mat"
    };
    let status_class = if place.is_some() {
        format!("{status} current")
    } else {
        status.to_string()
    };
    let label = match retake() {
        Some(i) => format!(
            "重拍：{}",
            labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("第{}张", i + 1))
        ),
        None if have < need => format!("拍：{}", labels[have]),
        None => "加一页".to_string(),
    };
    rsx! {
        div { class: "{status_class}", "data-material": "{m.key}",
            if let Some(p) = place {
                WalkHead { position: p.position, missing: p.missing, walk, prev: p.prev, skip: p.skip }
            }
            div { class: "mat-head",
                strong { "{m.name}" }
                span { class: "muted", " {m.form.label()}，需{need}张：{shots}" if !required { "（视情提交）" } }
                if flagged {
                    span { class: "have flag", "需补正 · 请重拍" }
                } else {
                    span { class: "have", "已拍 {have}/{need}" }
                }
            }
            if !m.note.is_empty() { p { class: "instruction", "{m.note}" } }
            div { class: "pages",
                for (i, p) in pages.iter().enumerate() {
                    figure { key: "{p.sha256}-{i}", class: if retake() == Some(i) { "shot retaking" } else { "shot" },
                        PageThumb { page: p.clone() }
                        if editable {
                            figcaption {
                                button { class: "mini", onclick: move |_| retake.set(Some(i)), "重拍" }
                                AdjustCorners { case, material: m.clone(), index: i, sha: p.sha256.clone(), retake }
                                if deleting() != Some(i) {
                                    button { class: "mini delete", onclick: move |_| deleting.set(Some(i)), "删除" }
                                } else {
                                button { class: "mini delete confirm",
                                    onclick: {
                                        let (book, originals) = (book.clone(), originals.clone());
                                        let key = m.key.clone();
                                        move |_| {
                                            let Some(c) = case.peek().clone() else { return };
                                            let Some(sha) = c.materials.iter().find(|m| m.key == key).and_then(|m| m.pages.get(i)).map(|p| p.sha256.clone()) else { return };
                                            match book.remove_page(&c.id, &key, &sha) {
                                                Ok(saved) => case.set(Some(saved)),
                                                Err(e) => return error.set(Some(e)),
                                            }
                                            // A deleted page's original is not kept in memory any longer.
                                            originals.remove(&sha);
                                            deleting.set(None);
                                        }
                                    },
                                    "确认删除"
                                }
                                button { class: "mini delete-cancel", onclick: move |_| deleting.set(None), "不删" }
                                }
                            }
                        }
                    }
                }
            }
            if editable {
                ScanCapture { case, material: m.clone(), label, retake, on_stored }
            }
        }
    }
}
