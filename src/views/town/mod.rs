//! Town staff (tablet role): the inbox of the town's villages with filters and deadline
//! countdowns (here), and one case with its pages and the staff actions (`case`).
//!
//! Everything is read from and written to the town centre through the engine's transport with
//! the tablet's enrolled key. Pages are downloaded only while their case is open, checked against
//! their SHA-256 by the transport, and held in memory as `data:` URLs that are dropped with the
//! case view: the tablet keeps no copy of residents' data on disk.

use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::transport::Transport;
use bianmin_protocol::sync::InboxRow;
use bianmin_protocol::CaseState;
use chrono::Local;
use dioxus::prelude::*;

use crate::components::top_bar::{SyncPanel, TopBar};
use crate::components::who::WhoLine;
use crate::route::Route;
use crate::services::use_enrolment;

mod actions;
pub mod case;
pub mod check;
mod materials;
pub mod operator;
pub mod pages;
pub mod reviews;
mod viewer;

/// A signed client for the town centre as this tablet, or what to tell staff.
pub fn staff_transport(enrolment: &Option<Enrolment>) -> Result<Transport, String> {
    enrolment
        .as_ref()
        .ok_or_else(|| "设备未登记".to_string())?
        .transport()
        .map_err(|e| e.staff_message())
}

/// The inbox query string for the filters.
pub fn query(village: &str, state: &str, overdue: bool) -> String {
    let mut q = Vec::new();
    if !village.is_empty() {
        q.push(format!("village={village}"));
    }
    if !state.is_empty() {
        q.push(format!("state={state}"));
    }
    if overdue {
        q.push("overdue=true".to_string());
    }
    q.join("&")
}

/// "还剩3天" / "已超期2天" for a deadline.
pub fn countdown(deadline: Option<chrono::NaiveDate>, today: chrono::NaiveDate) -> String {
    match deadline {
        None => "未受理".to_string(),
        Some(d) if d >= today => format!("还剩{}天", (d - today).num_days()),
        Some(d) => format!("已超期{}天", (today - d).num_days()),
    }
}

#[component]
pub fn TownInbox() -> Element {
    let enrolment = use_enrolment();
    let mut village = use_signal(String::new);
    let mut state = use_signal(String::new);
    let mut overdue = use_signal(|| false);
    let mut reload = use_signal(|| 0u32);
    let rows = use_resource(move || async move {
        let _ = reload();
        let t = staff_transport(&enrolment.read())?;
        t.inbox(&query(&village(), &state(), overdue()))
            .await
            .map_err(|e| e.staff_message())
    });
    let today = Local::now().date_naive();
    let list: Result<Vec<InboxRow>, String> = match &*rows.read() {
        None => Ok(Vec::new()),
        Some(r) => r.clone(),
    };
    rsx! {
        TopBar { title: "镇中心收件箱" }
        main { class: "page town",
            WhoLine {}
            SyncPanel {}
            div { class: "filters",
                input { id: "filter-village", placeholder: "村代码（留空为全部）", value: "{village}", oninput: move |e| village.set(e.value()) }
                select { id: "filter-state", onchange: move |e| state.set(e.value()),
                    option { value: "", "全部状态" }
                    for s in [CaseState::Received, CaseState::Accepted, CaseState::CorrectionRequested, CaseState::Forwarded, CaseState::Completed, CaseState::Refused] {
                        option { value: "{s.as_str()}", "{s.label()}" }
                    }
                }
                label { class: "check", input { r#type: "checkbox", checked: overdue(), onchange: move |e| overdue.set(e.checked()) } "只看超期" }
                button { class: "btn", id: "inbox-refresh", onclick: move |_| reload += 1, "刷新" }
                button { class: "btn", id: "open-reviews", onclick: move |_| { navigator().push(Route::TownReviews {}); }, "差评整改" }
            }
            match list {
                Err(e) => rsx! { p { class: "error", "{e}" } },
                Ok(rows) if rows.is_empty() => rsx! { p { class: "empty", "没有符合条件的办件。" } },
                Ok(rows) => rsx! {
                    ul { class: "cases",
                        for r in rows {
                            li { key: "{r.case_id}",
                                button { class: "case-row", "data-case": "{r.case_id}", "data-state": "{r.state.as_str()}", "data-version": "{r.version}",
                                    onclick: { let id = r.case_id.clone(); move |_| { navigator().push(Route::TownCase { id: id.clone() }); } },
                                    div { class: "row-top",
                                        strong { "{r.item_name}" }
                                        span { class: "badge s-{r.state.as_str()}", "{r.state.label()}" }
                                    }
                                    div { class: "muted", "{r.village_name} · {r.applicant} · 身份证尾号{r.id_number} · 第{r.version}版" }
                                    if matches!(r.state, CaseState::Accepted | CaseState::Forwarded) {
                                        div { class: if r.overdue { "error" } else { "muted" }, "{countdown(r.deadline, today)}" }
                                    }
                                }
                            }
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_make_the_inbox_query() {
        assert_eq!(query("", "", false), "");
        assert_eq!(
            query("140423100201", "received", true),
            "village=140423100201&state=received&overdue=true"
        );
    }

    #[test]
    fn countdown_in_plain_chinese() {
        let d = |n| chrono::NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        assert_eq!(countdown(Some(d(30)), d(27)), "还剩3天");
        assert_eq!(countdown(Some(d(25)), d(27)), "已超期2天");
        assert_eq!(countdown(None, d(27)), "未受理");
    }
}
