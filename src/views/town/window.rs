//! 窗口收件: a town clerk takes in a case at the window on the tablet, for a town item or a village
//! item a resident walked in with. The clerk picks the applicant's village and the item, reads the
//! guide to the resident (一次性告知), then fills the same form and captures the same materials the
//! village phone does (`views::case::CaseView`, the engine's outbox on the tablet); when 初审
//! passes, the pages and the case go straight to the town's store with the clerk's PIN
//! (`bianmin_engine::window::send`), received under the clerk (首问负责), and the clerk lands
//! on the case in the town view to handle it like any other.

use bianmin_engine::catalog::{Catalog, Item};
use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::sync::SyncError;
use bianmin_protocol::window::WindowIntake;
use bianmin_protocol::AgentRef;
use chrono::Utc;
use dioxus::prelude::*;

use super::operator::{credentials, use_operator, Operator};
use super::staff_transport;
use crate::components::top_bar::TopBar;
use crate::components::who::WhoLine;
use crate::route::Route;
use crate::services::book::Book;
use crate::services::{use_book, use_catalog, use_enrolment};
use crate::views::case::CaseView;
use crate::views::guide::GuideView;

/// The items offered at the window, in order: town items with a guide, village items, then the
/// town items whose guide is still to be written (shown, marked, not startable).
pub fn window_items(catalog: &Catalog) -> Vec<&Item> {
    let guided_town = catalog.town_items().filter(|i| i.guide.is_some());
    let bare_town = catalog.town_items().filter(|i| i.guide.is_none());
    guided_town
        .chain(
            catalog
                .village_items()
                .filter(|i| i.applicant.is_resident()),
        )
        .chain(bare_town)
        .collect()
}

/// The villages of the tablet's town, as (code, name).
pub fn town_villages(catalog: &Catalog, town: &str) -> Vec<(String, String)> {
    catalog
        .divisions()
        .and_then(|d| d.town(town))
        .map(|t| {
            t.villages
                .iter()
                .map(|v| (v.code.clone(), v.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs 初审 on the tablet's copy, then sends the case with the clerk: the error to show, in
/// Chinese, if anything fails (the case stays on the tablet and can be sent again).
pub async fn send(
    book: &Book,
    enrolment: &Option<Enrolment>,
    operator: &Option<Operator>,
    id: &str,
    item: &Item,
) -> Result<(), String> {
    let checked = book
        .precheck(id, item)
        .map_err(|problems| format!("初审未通过：{}", problems.join("；")))?;
    let (staff, pin) = credentials(operator);
    let t = staff_transport(enrolment)?;
    let server_key = enrolment.as_ref().and_then(|e| e.server_key);
    let intake = WindowIntake {
        submission: checked.submission(Utc::now()),
        staff,
        pin,
    };
    bianmin_engine::window::send(book, &t, server_key.as_ref(), &intake)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            SyncError::Transport(t) => t.staff_message(),
            other => {
                tracing::warn!(case = id, error = %other, "window case not sent");
                "提交失败：镇中心的回执无法核验，请联系技术支持。".to_string()
            }
        })
}

/// 窗口收件: the applicant's village and the item.
#[component]
pub fn TownWindow() -> Element {
    let enrolment = use_enrolment();
    let catalog = use_catalog();
    let town = enrolment
        .read()
        .as_ref()
        .map(|e| e.place.clone())
        .unwrap_or_default();
    let villages = town_villages(&catalog, &town);
    let mut village = use_signal(|| villages.first().map(|v| v.0.clone()).unwrap_or_default());
    let items: Vec<Item> = window_items(&catalog).into_iter().cloned().collect();
    rsx! {
        TopBar { title: "窗口收件" }
        main { class: "page town window",
            WhoLine {}
            p { class: "muted", "群众到镇中心窗口办事：选择申请人所在村和事项，向群众一次性告知所需材料，再填表、拍材料、初审、提交。" }
            if villages.is_empty() {
                p { class: "error", "本平板登记的镇没有村名单，请先同步事项清单。" }
            }
            label { "申请人所在村"
                select { id: "window-village", "aria-label": "申请人所在村",
                    onchange: move |e| village.set(e.value()),
                    for (code, name) in villages.iter() {
                        option { value: "{code}", selected: *code == village(), "{name}" }
                    }
                }
            }
            ul { class: "items", id: "window-items",
                for item in items {
                    li { key: "{item.code}",
                        button { class: "item-row", "data-code": "{item.code}",
                            onclick: { let code = item.code.clone(); move |_| { navigator().push(Route::WindowGuide { village: village(), code: code.clone() }); } },
                            strong { "{item.name}" }
                            span { class: "muted", " {item.code} · {item.kind}" }
                            if item.guide.is_none() {
                                span { class: "draft", " 办事指南草稿，待县级确认" }
                            } else if item.guide.as_ref().is_some_and(|g| g.draft) {
                                span { class: "muted", " 指南草稿" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The guide at the window; 开始办理 starts the case under the clerk for the applicant's village.
#[component]
pub fn WindowGuide(village: String, code: String) -> Element {
    let book = use_book();
    let enrolment = use_enrolment();
    let operator = use_operator();
    let mut error = use_signal(|| None::<String>);
    let start = {
        let code = code.clone();
        move |_| {
            let Some(e) = enrolment.read().clone() else {
                return;
            };
            // The clerk whose PIN is on the tablet; in a town without staff accounts yet, the
            // tablet's enrolled person (the server records the same).
            let clerk = operator
                .read()
                .as_ref()
                .map(|o| o.name.clone())
                .unwrap_or_else(|| e.person.clone());
            let responsible = AgentRef {
                device_id: e.device_code.clone(),
                name: clerk,
                village: village.clone(),
            };
            match book.create_for(&code, responsible) {
                Ok(case) => {
                    navigator().replace(Route::WindowCase { id: case.id });
                }
                Err(e) => error.set(Some(e)),
            }
        }
    };
    rsx! { GuideView { code, on_start: start, error: error() } }
}

/// One window case being taken in: the phone's case screen, sending to the town when 初审 passes.
#[component]
pub fn WindowCase(id: String) -> Element {
    rsx! { CaseView { id, window: true } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guided_town_items_come_first_and_unwritten_guides_last() {
        let c = Catalog::embedded().unwrap();
        let items = window_items(&c);
        assert_eq!(items[0].code, "T01");
        assert!(items[..6]
            .iter()
            .all(|i| i.guide.is_some() && !i.is_village()));
        assert!(items[6].is_village());
        assert!(items.last().unwrap().guide.is_none());
        assert!(!town_villages(&c, "140423100").is_empty());
    }
}
