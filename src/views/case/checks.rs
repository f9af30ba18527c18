//! 初审 and sealing: the list of what is still missing, or 封存 once everything is there.

use bianmin_engine::case::Case;
use bianmin_engine::catalog::Item;
use bianmin_protocol::CaseState;
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
    let mut lines = use_signal(Vec::<String>::new);
    let ready = case.read().as_ref().map(|c| c.state) == Some(CaseState::Ready);
    // 初审 and sealing read the book: what was typed last must be in it first.
    let run_precheck = {
        let (book, item, autosave) = (book.clone(), item.clone(), autosave.clone());
        move |_| {
            let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
                return;
            };
            tried.set(true);
            let (book, item, autosave) = (book.clone(), item.clone(), autosave.clone());
            spawn(async move {
                autosave.settled().await;
                match book.precheck(&id, &item) {
                    Ok(checked) => {
                        lines.set(Vec::new());
                        error.set(None);
                        case.set(Some(checked));
                    }
                    Err(problems) => lines.set(problems),
                }
            });
        }
    };
    let nav = navigator();
    let send_to_town = {
        let (book, item, autosave) = (book.clone(), item.clone(), autosave.clone());
        move |_| {
            let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
                return;
            };
            if *sending.peek() {
                return;
            }
            sending.set(true);
            let (book, item, autosave) = (book.clone(), item.clone(), autosave.clone());
            let e = enrolment.peek().clone();
            let op = operator.peek().clone();
            spawn(async move {
                autosave.settled().await;
                match crate::views::town::window::send(&book, &e, &op, &id, &item).await {
                    Ok(()) => {
                        nav.replace(Route::TownCase { id });
                    }
                    Err(e) => error.set(Some(e)),
                }
                sending.set(false);
            });
        }
    };
    let seal = move |_| {
        let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
            return;
        };
        let (book, item, autosave) = (book.clone(), item.clone(), autosave.clone());
        let originals = originals.clone();
        spawn(async move {
            autosave.settled().await;
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
        if !lines.read().is_empty() {
            section { class: "precheck", id: "precheck",
                h2 { "初审未通过，请处理：" }
                ul { for l in lines.read().iter() { li { "{l}" } } }
            }
        }
        div { class: "actions",
            if ready && window {
                p { class: "ok", id: "precheck-ok", "初审通过，材料齐全。" }
                button { class: "btn primary big", id: "window-send", disabled: sending(), onclick: send_to_town,
                    if sending() { "正在提交镇中心…" } else { "提交镇中心收件" }
                }
            } else if ready {
                p { class: "ok", id: "precheck-ok", "初审通过，材料齐全。" }
                button { class: "btn primary big", id: "seal", onclick: seal, "封存并放入发件箱" }
            } else {
                button { class: "btn primary big", id: "precheck-run", onclick: run_precheck, "初审" }
            }
        }
    }
}
