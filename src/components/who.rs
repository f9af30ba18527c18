//! Who uses this device and where: "李代办 · 古韩镇南关村", under the title of the start screens.

use dioxus::prelude::*;

use crate::services::use_enrolment;

#[component]
pub fn WhoLine() -> Element {
    let who = use_enrolment()
        .read()
        .as_ref()
        .map(|e| {
            let place = if e.place_name.is_empty() {
                &e.place
            } else {
                &e.place_name
            };
            format!("{} · {place}", e.person)
        })
        .unwrap_or_default();
    rsx! { p { class: "muted", "{who}" } }
}
