//! The title bar of every screen: back button, title, and the connectivity chip; and the sync
//! panel with "立即同步".

use dioxus::prelude::*;

use crate::services::{use_enrolment, use_sync};

#[component]
pub fn TopBar(title: String) -> Element {
    let status = use_sync().status.read().clone();
    let nav = navigator();
    let (chip_class, chip) = match status.online {
        None => ("chip", "检查网络…"),
        Some(true) => ("chip ok", "在线"),
        Some(false) => ("chip off", "离线"),
    };
    rsx! {
        header { class: "bar",
            if nav.can_go_back() {
                button { class: "back", "aria-label": "返回", onclick: move |_| nav.go_back(), "‹" }
            }
            h1 { "{title}" }
            span { class: "{chip_class}", title: "{status.message}", "{chip}" }
        }
    }
}

/// The sync panel for the home screen: status, last sync, and the button.
#[component]
pub fn SyncPanel() -> Element {
    let sync = use_sync();
    let status = sync.status.read().clone();
    let last = use_enrolment()
        .read()
        .as_ref()
        .and_then(|e| e.last_sync)
        .or(status.last_sync)
        .map(|t| {
            t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
                .format("%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "从未同步".to_string());
    rsx! {
        section { class: "sync",
            div {
                p { class: "sync-line",
                    match status.online {
                        None => "正在检查网络…",
                        Some(true) => "网络：已连上镇中心",
                        Some(false) => "网络：离线",
                    }
                }
                p { class: "muted", "上次同步：{last}" }
                if !status.message.is_empty() { p { class: "muted", "{status.message}" } }
                if status.running {
                    progress { max: "1", value: "{status.progress}" }
                }
            }
            button { class: "btn", id: "sync-now", onclick: move |_| sync.poke(), "立即同步" }
        }
    }
}
