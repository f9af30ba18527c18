//! One case: the form with live validation, the material checklist with capture, 初审, sealing,
//! and — once sent — the town's decisions. A 补正 reopens the same case here for the fixes.
//!
//! Every keystroke and every photo is written to the book at once, so nothing the agent typed is
//! lost if the phone dies or the app is closed; the screen re-reads the case after every write
//! to the book, including a decision the sync loop applies while the case is open.

use std::collections::BTreeMap;

use bianmin_engine::case::Case;
use bianmin_engine::catalog::{Guide, Item};
use bianmin_engine::validate::{self, FieldProblem};
use bianmin_protocol::{CaseState, Decision};
use chrono::NaiveDate;
use dioxus::prelude::*;

use crate::components::top_bar::TopBar;
use crate::route::Route;
use crate::services::{use_book, use_catalog_version, use_catalogs, use_revision};

mod autosave;
mod checks;
mod form;
pub mod household;
pub mod known;
mod materials;
mod progress;
pub mod walk;

use autosave::Autosave;
use checks::PrecheckBar;
use form::CaseForm;
use materials::MaterialRow;
use progress::{DeliverButton, Outcome, Timeline};

pub use form::APPLICANT;

/// All live problems of the form (not the materials), keyed by field key.
pub fn form_problems(item: &Item, case: &Case, today: NaiveDate) -> BTreeMap<String, FieldProblem> {
    let mut out: BTreeMap<String, FieldProblem> = BTreeMap::new();
    for p in validate::applicant(&case.applicant, today)
        .into_iter()
        .chain(validate::answers(
            item,
            &case.applicant,
            &case.answers,
            today,
        ))
    {
        out.entry(p.key.clone()).or_insert(p);
    }
    out
}

/// Chinese name of a key in a 补正 list: a material, a form field, or the applicant block.
pub fn key_label(item: &Item, key: &str) -> String {
    if let Some(g) = &item.guide {
        if let Some(m) = g.materials.iter().find(|m| m.key == key) {
            return m.name.clone();
        }
        if let Some(f) = g.fields.iter().find(|f| f.key == key) {
            return f.label.clone();
        }
    }
    APPLICANT
        .iter()
        .find(|a| a.0 == key)
        .map(|a| a.1.to_string())
        .unwrap_or_else(|| key.to_string())
}

/// Items without a published guide still get the applicant block; they simply list no materials.
fn guide_or_empty(item: &Item) -> Guide {
    item.guide.clone().unwrap_or_else(|| Guide {
        draft: true,
        ..Guide::default()
    })
}

#[component]
pub fn CaseScreen(id: String) -> Element {
    rsx! { CaseView { id, window: false } }
}

/// One case in the book. `window`: a case a town clerk takes in at the window on the tablet,
/// sent to the town's store when 初审 passes instead of being sealed into a village outbox.
#[component]
pub fn CaseView(id: String, window: bool) -> Element {
    let book = use_book();
    let revision = use_revision();
    let catalogs = use_catalogs();
    let newest = use_catalog_version();
    let mut case = use_signal(|| book.get(&id));
    let autosave = use_hook(|| Autosave::new(book.clone(), id.clone()));
    let mut error = use_signal(|| None::<String>);
    // Any write to the book (the form's autosave, a scan worker, the sync loop) re-reads the
    // case, with what is typed and not yet stored laid over it.
    let reread = (book.clone(), id.clone(), autosave.clone());
    use_effect(move || {
        revision.read();
        let mut fresh = reread.0.get(&reread.1);
        if let Some(c) = fresh.as_mut() {
            reread.2.overlay(c);
        }
        if *case.peek() != fresh {
            case.set(fresh);
        }
        if let Some(failed) = reread.2.failure() {
            error.set(Some(failed));
        }
    });
    // After a failed 初审 every problem is shown, also for fields not touched yet.
    let tried = use_signal(|| false);
    // 逐项拍照: the material the agent chose to stand on (上一项, 先拍下一项); otherwise the walk
    // stands on the first one still missing.
    let mut walk = use_signal(|| None::<String>);
    // A page was stored: stay for the material's next page, or go on to the next one missing
    // (the end of the screen, with 提交, when none is).
    let on_stored = {
        let catalogs = catalogs.clone();
        use_callback(move |key: String| {
            let Some(fresh) = case.peek().clone() else {
                return;
            };
            let Some(item) = catalogs
                .version(fresh.catalog_version)
                .and_then(|c| c.item(&fresh.item).cloned())
            else {
                return;
            };
            let today = chrono::Local::now().date_naive();
            let needs = validate::material_needs(&item, &fresh.applicant, &fresh.answers, today);
            let next = walk::next_missing(&needs, &fresh, Some(&key));
            if next.as_deref() != Some(key.as_str()) {
                walk::show(next.as_deref());
            }
            walk.set(next);
        })
    };
    let Some(current) = case.read().clone() else {
        return rsx! { TopBar { title: "办件" } p { class: "error", "找不到这个办件，可能已被删除。请返回。" } };
    };
    // Shown and checked by the definition it was made under, not whatever is newest.
    let Some(item) = catalogs
        .version(current.catalog_version)
        .and_then(|c| c.item(&current.item).cloned())
    else {
        return rsx! { TopBar { title: "办件" } p { class: "error", "这个办件所用的事项清单（第{current.catalog_version}版）不在本机上，请同步后再打开。" } };
    };
    let guide = guide_or_empty(&item);
    let editable = current.is_editable();
    let today = chrono::Local::now().date_naive();
    let needs = validate::material_needs(&item, &current.applicant, &current.answers, today);
    let here = if editable {
        walk::current(&needs, &current, walk().as_deref())
    } else {
        None
    };
    let newer = (editable && newest > current.catalog_version)
        .then(|| catalogs.version(newest))
        .flatten()
        .and_then(|c| c.item(&current.item).cloned())
        .filter(|n| *n != item);
    rsx! {
        TopBar { title: "{item.name}" }
        main { class: "page case", "data-state": "{current.state.as_str()}",
            p { class: "case-no", "办件编号 " code { id: "case-id", "{current.id}" } }
            p { class: "state", "状态：" strong { id: "case-state", "{current.state.label()}" }
                if current.version > 1 { span { class: "muted", "（第{current.version}次提交）" } }
            }
            if current.state == CaseState::CorrectionRequested {
                CorrectionList { case: current.clone(), item: item.clone() }
            }
            if !editable {
                Outcome { case: current.clone() }
                if current.agent_brings() {
                    DeliverButton { case_id: current.id.clone() }
                }
            }
            if let Some(e) = error() { p { class: "error", id: "case-error", "{e}" } }
            if let Some(new_item) = newer {
                ItemUpdated { case, old: item.clone(), new: new_item, version: newest, autosave: autosave.clone() }
            }
            CaseForm { case, item: item.clone(), tried, autosave: autosave.clone() }
            section { class: "materials",
                h2 { "材料（逐项拍照）" }
                for need in needs.iter().cloned() {
                    if let Some(m) = guide.materials.iter().find(|m| m.key == need.key).cloned() {
                        MaterialRow { key: "{m.key}", case, material: m, place: walk::place(&needs, &current, here.as_deref(), &need.key), need: need.clone(), editable, error, walk, on_stored }
                    }
                }
            }
            if editable {
                PrecheckBar { case, item, tried, error, autosave, window }
            } else {
                Timeline { case: current.clone() }
                div { class: "actions",
                    button { class: "btn big", id: "show-receipt",
                        onclick: { let id = current.id.clone(); move |_| { navigator().push(Route::ReceiptScreen { id: id.clone() }); } },
                        "查看回执"
                    }
                }
            }
        }
    }
}

/// 事项已更新: a newer definition of this draft's item arrived; the draft keeps the one it was
/// started with until the agent moves it, seeing what changed first.
#[component]
fn ItemUpdated(
    case: Signal<Option<Case>>,
    old: Item,
    new: Item,
    version: u32,
    autosave: Autosave,
) -> Element {
    let book = use_book();
    let changes: Vec<String> = bianmin_engine::catalog::item_changes(&old, &new)
        .iter()
        .map(ToString::to_string)
        .collect();
    rsx! {
        section { class: "updated", id: "item-updated",
            h2 { "事项已更新（第{version}版）" }
            p { "这个办件是按旧版填写的，可以继续按旧版办理，也可以改用新版（已填内容和照片保留）。新版的变化：" }
            ul { for c in changes.iter() { li { "{c}" } } }
            button { class: "btn", id: "move-to-new",
                onclick: move |_| {
                    let (book, autosave) = (book.clone(), autosave.clone());
                    let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else { return };
                    spawn(async move {
                        autosave.settled().await;
                        match book.move_to_catalog(&id, version) {
                            Ok(stored) => case.set(Some(stored)),
                            Err(e) => tracing::warn!(error = %e, "draft not moved to the new catalog"),
                        }
                    });
                },
                "改用新版"
            }
        }
    }
}

/// What the town asked to be corrected, all at once (一次性告知).
#[component]
fn CorrectionList(case: Case, item: Item) -> Element {
    rsx! {
        section { class: "correction", id: "correction",
            h2 { "镇中心要求补正" }
            if let Some(Decision::CorrectionRequested { note, .. }) = &case.last_decision {
                if !note.is_empty() { p { "{note}" } }
            }
            ul {
                for m in case.correction.iter() {
                    li { key: "{m.key}", "data-key": "{m.key}", strong { "{key_label(&item, &m.key)}" } "：{m.note}" }
                }
            }
            p { class: "muted", "请按上面的清单一次补齐，然后重新初审并提交（同一办件，不会重复）。" }
        }
    }
}
