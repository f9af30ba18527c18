//! The town's own 初审 on the tablet: the case checked again by the definition it was made under,
//! so staff see at a glance what the village's check should have caught, and can turn every
//! missing material into one 补正 (一次性告知) instead of finding them one by one in the pages.

use bianmin_engine::case::{allowed, Case};
use bianmin_engine::catalog::Item;
use bianmin_protocol::{CaseState, MissingItem};
use chrono::Local;
use dioxus::prelude::*;

#[component]
pub fn TownCheck(case: Case, item: Option<Item>, missing: Signal<Vec<MissingItem>>) -> Element {
    let Some(item) = item else {
        return rsx! {};
    };
    let today = Local::now().date_naive();
    let check = bianmin_engine::validate::precheck(
        &item,
        &case.applicant,
        &case.answers,
        &case.materials,
        today,
    );
    let lines = check.lines();
    // Each missing material with the words the village will read on its phone.
    let picks: Vec<MissingItem> = check
        .missing_materials
        .iter()
        .map(|m| MissingItem {
            key: m.key.clone(),
            note: if m.have == 0 {
                format!("未提交，请拍：{}", m.still.join("、"))
            } else {
                format!("还缺：{}", m.still.join("、"))
            },
        })
        .collect();
    let can_pick = allowed(case.state, CaseState::CorrectionRequested) && !picks.is_empty();
    rsx! {
        if lines.is_empty() {
            p { class: "town-check ok", id: "town-check", "data-problems": "0",
                "镇初审：材料和填报内容符合办事指南。" }
        } else {
            div { class: "town-check", id: "town-check", "data-problems": "{lines.len()}",
                strong { "镇初审发现{lines.len()}个问题：" }
                ul { for l in lines.iter() { li { "{l}" } } }
                if can_pick {
                    button { class: "btn", id: "check-to-correction",
                        onclick: move |_| {
                            let mut list = missing.write();
                            for p in &picks {
                                if !list.iter().any(|m| m.key == p.key) {
                                    list.push(p.clone());
                                }
                            }
                        },
                        "把缺少的材料全部列入补正" }
                }
            }
        }
    }
}
