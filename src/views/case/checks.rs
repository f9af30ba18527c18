//! The end of the case screen: what is still missing (worked out live, as the agent types and
//! photographs), and 提交, which runs 初审 and, when it passes, seals the case in the same tap (or,
//! for a town window case, sends it to the town's store instead of the outbox).

use bianmin_engine::case::Case;
use bianmin_engine::catalog::Item;
use bianmin_engine::validate;
use dioxus::prelude::*;

use super::autosave::Autosave;
use crate::route::Route;
use crate::services::{use_book, use_enrolment, use_originals, use_sync};

#[component]
pub fn PrecheckBar(
    case: Signal<Option<Case>>,
    item: Item,
    tried: Signal<bool>,
    error: Signal<Option<String>>,
    autosave: Autosave,
    /// A town window case: once 初审 passes it goes to the town's store, not the outbox.
    #[props(default)]
    window: bool,
) -> Element {
    let book = use_book();
    let sync = use_sync();
    let originals = use_originals();
    let enrolment = use_enrolment();
    let operator = crate::views::town::operator::use_operator();
    let mut sending = use_signal(|| false);
    // A 提交 was refused: the list below is then headed as 初审's answer.
    let mut refused = use_signal(|| false);
    // What 提交 would still refuse, from the case as shown (typed text included).
    let live = case
        .read()
        .as_ref()
        .map(|c| {
            let today = chrono::Local::now().date_naive();
            let mut lines =
                validate::precheck(&item, &c.applicant, &c.answers, &c.materials, today).lines();
            // A page the town asked to be redone counts as missing until it is re-photographed.
            lines.extend(
                validate::material_needs(&item, &c.applicant, &c.answers, today)
                    .iter()
                    .filter(|n| c.awaits_retake(&n.key))
                    .map(|n| format!("需补正：{}，请重拍", n.name)),
            );
            lines
        })
        .unwrap_or_default();
    let failed = refused();
    let nav = navigator();
    // 初审 and sealing read the book: what was typed last must be in it first. A failed 初审
    // lists every problem and marks every field; a passed one seals at once.
    let submit = move |_| {
        let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
            return;
        };
        if *sending.peek() {
            return;
        }
        tried.set(true);
        let (book, item, autosave) = (book.clone(), item.clone(), autosave.clone());
        let originals = originals.clone();
        let (e, op) = (enrolment.peek().clone(), operator.peek().clone());
        spawn(async move {
            autosave.settled().await;
            match book.precheck(&id, &item) {
                Ok(checked) => {
                    refused.set(false);
                    error.set(None);
                    case.set(Some(checked));
                }
                Err(problems) => {
                    // Not a gap the screen lists (the book could not be read or written): shown
                    // as the case's error, as a failed seal is.
                    let listed = book.get(&id).is_some_and(|c| {
                        !validate::precheck(
                            &item,
                            &c.applicant,
                            &c.answers,
                            &c.materials,
                            chrono::Local::now().date_naive(),
                        )
                        .passed()
                    });
                    if !listed {
                        error.set(Some(problems.join("；")));
                    }
                    return refused.set(true);
                }
            }
            if window {
                sending.set(true);
                match crate::views::town::window::send(&book, &e, &op, &id, &item).await {
                    Ok(()) => {
                        nav.replace(Route::TownCase { id });
                    }
                    Err(e) => error.set(Some(e)),
                }
                return sending.set(false);
            }
            match book.seal(&id, &item) {
                Ok(sealed) => {
                    // A sealed case cannot be re-cut, so its photos (several MB each, showing
                    // everything the camera saw) leave memory now rather than when they age out.
                    for p in sealed.materials.iter().flat_map(|m| &m.pages) {
                        originals.remove(&p.sha256);
                    }
                    sync.poke();
                    // The form is done with: back from the receipt goes to where the case began.
                    nav.replace(Route::ReceiptScreen { id: sealed.id });
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    rsx! {
        section { class: "walk-end", id: "walk-end",
            if live.is_empty() {
                p { class: "ok", id: "walk-ready", "材料已拍齐，信息已填全，可以提交。" }
            } else {
                // After a refused 提交 the same list, kept up to date as things are fixed.
                div { class: if failed { "precheck" } else { "still" }, id: if failed { "precheck" } else { "still" },
                    h2 { if failed { "初审未通过，请处理：" } else { "还缺{live.len()}项：" } }
                    ul { id: "still-missing", for l in live.iter() { li { "{l}" } } }
                }
            }
            div { class: "actions",
                if window {
                    button { class: "btn primary big", id: "window-send", disabled: sending(), onclick: submit,
                        if sending() { "正在提交镇中心…" } else { "提交镇中心收件" }
                    }
                } else {
                    button { class: "btn primary big", id: "submit", onclick: submit, "提交" }
                }
            }
            if window {
                p { class: "muted", "提交时先初审，通过即送镇中心收件，不放入发件箱。" }
            } else {
                p { class: "muted", "提交时先初审，通过即封存放入发件箱，有网络时自动上传。" }
            }
        }
    }
}
