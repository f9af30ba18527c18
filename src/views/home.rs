//! Village agent home: outbox counts, connectivity and last sync, and the two main actions.

use dioxus::prelude::*;

use crate::components::top_bar::{SyncPanel, TopBar};
use crate::components::who::WhoLine;
use crate::route::Route;
use crate::services::display::LargeTextSwitch;
use crate::services::{use_book, use_revision, use_sync};

#[component]
pub fn Home() -> Element {
    let _ = use_revision().read();
    let counts = use_book().counts();
    let nav = navigator();
    rsx! {
        TopBar { title: "便民服务点" }
        main { class: "page home",
            WhoLine {}
            div { class: "counts",
                Count { label: "草稿", n: counts.drafts, id: "count-drafts" }
                Count { label: "待上传", n: counts.waiting, id: "count-waiting" }
                Count { label: "退回补正", n: counts.corrections, id: "count-corrections" }
                Count { label: "镇中心办理中", n: counts.at_town, id: "count-town" }
                Count { label: "已办结", n: counts.done, id: "count-done" }
                Count { label: "不予受理", n: counts.refused, id: "count-refused" }
            }
            SyncPanel {}
            LargeTextSwitch {}
            CatalogUpdated {}
            div { class: "actions",
                button { class: "btn primary big", id: "go-items", onclick: move |_| { nav.push(Route::ItemList {}); }, "新建办件" }
                button { class: "btn big", id: "go-outbox", onclick: move |_| { nav.push(Route::Outbox {}); }, "我的办件" }
            }
        }
    }
}

/// 事项已更新: what the newest catalog version changed, until the agent has read it.
#[component]
fn CatalogUpdated() -> Element {
    let mut status = use_sync().status;
    let Some((version, changes)) = status.read().catalog_update.clone() else {
        return rsx! {};
    };
    rsx! {
        section { class: "updated", id: "catalog-updated",
            h2 { "事项已更新（第{version}版）" }
            if changes.is_empty() {
                p { "县里发布了新版事项清单。" }
            } else {
                ul { for (i, c) in changes.iter().enumerate() { li { key: "{i}", "{c}" } } }
            }
            p { class: "muted", "新建的办件按新版办理；已开始的草稿打开时可选择改用新版。" }
            button { class: "btn", id: "catalog-updated-ok", onclick: move |_| status.write().catalog_update = None, "知道了" }
        }
    }
}

#[component]
fn Count(label: String, n: usize, id: String) -> Element {
    rsx! {
        div { class: "count-card", id: "{id}",
            strong { "{n}" }
            span { "{label}" }
        }
    }
}
