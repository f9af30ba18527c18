//! My cases (发件箱): every case on the phone with its state and upload progress.

use bianmin_protocol::CaseState;
use dioxus::prelude::*;

use crate::components::top_bar::{SyncPanel, TopBar};
use crate::route::Route;
use crate::services::{use_book, use_catalog, use_revision};

/// How far along the upload a case is, for its progress bar: 0 until sent, 1 once the town has it.
pub fn upload_fraction(state: CaseState) -> f32 {
    match state {
        CaseState::Draft
        | CaseState::Ready
        | CaseState::Queued
        | CaseState::CorrectionRequested => 0.0,
        _ => 1.0,
    }
}

#[component]
pub fn Outbox() -> Element {
    let _ = use_revision().read();
    let cases = use_book().list();
    let catalog = use_catalog();
    let nav = navigator();
    rsx! {
        TopBar { title: "我的办件" }
        main { class: "page outbox",
            SyncPanel {}
            if cases.is_empty() { p { class: "empty", "还没有办件。点“新建办件”开始。" } }
            ul { class: "cases",
                for c in cases {
                    li { key: "{c.id}",
                        button { class: "case-row", "data-case": "{c.id}", "data-state": "{c.state.as_str()}",
                            onclick: { let id = c.id.clone(); move |_| { nav.push(Route::CaseScreen { id: id.clone() }); } },
                            div { class: "row-top",
                                strong { {catalog.item(&c.item).map(|i| i.name.clone()).unwrap_or(c.item.clone())} }
                                span { class: "badges",
                                    if c.delivery_waiting { span { class: "badge waiting", "送达待上报" } }
                                    span { class: "badge s-{c.state.as_str()}", "{c.state.label()}" }
                                }
                            }
                            div { class: "muted", "{c.applicant} · {c.id}" }
                            if c.state == CaseState::Queued || c.state == CaseState::Uploaded {
                                progress { max: "1", value: "{upload_fraction(c.state)}" }
                            }
                        }
                    }
                }
            }
        }
    }
}
