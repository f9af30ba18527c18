//! Village agent home: outbox counts, connectivity and last sync, and the two main actions.

use dioxus::prelude::*;

use crate::components::top_bar::{SyncPanel, TopBar};
use crate::components::who::WhoLine;
use crate::route::Route;
use crate::services::{use_book, use_revision};

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
                Count { label: "需补正", n: counts.corrections, id: "count-corrections" }
                Count { label: "镇中心办理中", n: counts.at_town, id: "count-town" }
                Count { label: "已办结", n: counts.done, id: "count-done" }
            }
            SyncPanel {}
            div { class: "actions",
                button { class: "btn primary big", id: "go-items", onclick: move |_| { nav.push(Route::ItemList {}); }, "新建办件" }
                button { class: "btn big", id: "go-outbox", onclick: move |_| { nav.push(Route::Outbox {}); }, "我的办件" }
            }
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
