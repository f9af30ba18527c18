//! Town staff inbox (tablet role).
//!
//! The inbox lists the cases the town centre received from its villages; it reads them from the
//! town centre, so it needs the town server's processing API (issue 4). Until that is in the tree
//! the screen says so plainly rather than showing an empty list that looks like "no work".

use dioxus::prelude::*;

use crate::app::Services;
use crate::components::top_bar::{SyncPanel, TopBar};

#[component]
pub fn TownInbox() -> Element {
    let services = use_context::<Services>();
    let who = services.device.read().as_ref().map(|d| format!("{} · {}", d.person, if d.place_name.is_empty() { &d.place } else { &d.place_name })).unwrap_or_default();
    rsx! {
        TopBar { title: "镇中心收件箱" }
        main { class: "page town",
            p { class: "muted", "{who}" }
            SyncPanel {}
            p { class: "error", id: "town-unavailable",
                "本版本还不能从镇中心读取收件箱：请在镇中心服务器上办理，或升级应用后再试。"
            }
        }
    }
}
