//! Town staff (tablet role): the inbox of the town's villages with filters and deadline
//! countdowns (here), and one case with its pages and the staff actions (`case`).
//!
//! Everything is read from and written to the town centre through the engine's transport with
//! the tablet's enrolled key. Pages are downloaded only while their case is open, checked against
//! their SHA-256 by the transport, and held in memory as `data:` URLs that are dropped with the
//! case view: the tablet keeps no copy of residents' data on disk.

use bianmin_engine::deadline::WorkCalendar;
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

/// The inbox query string for the filters the town centre applies (`search`: a case number or
/// the applicant's name, which only the server holds unmasked).
pub fn query(village: &str, state: &str, overdue: bool, search: &str) -> String {
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
    let search = search.trim();
    if !search.is_empty() {
        q.push(format!("q={}", percent(search)));
    }
    q.join("&")
}

/// Percent-encodes a query value (UTF-8 bytes outside the unreserved set).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// "还剩3个工作日" / "已超期2个工作日" for a deadline; "未受理" before 受理.
pub fn countdown(
    deadline: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
    calendar: &WorkCalendar,
) -> String {
    match deadline {
        None => "未受理".to_string(),
        Some(d) if d >= today => format!("还剩{}个工作日", calendar.working_days_between(today, d)),
        Some(d) => format!("已超期{}个工作日", calendar.working_days_between(d, today)),
    }
}

/// How the clerk orders the inbox.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InboxOrder {
    /// 先收先办: oldest received first (the town centre's order).
    Oldest,
    Newest,
    /// Nearest deadline first; cases not yet accepted after them, oldest first.
    Deadline,
}

impl InboxOrder {
    fn parse(s: &str) -> InboxOrder {
        match s {
            "newest" => InboxOrder::Newest,
            "deadline" => InboxOrder::Deadline,
            _ => InboxOrder::Oldest,
        }
    }
}

/// The rows the clerk sees: those whose village name contains `village_name`, in `order`.
pub fn arrange(mut rows: Vec<InboxRow>, village_name: &str, order: InboxOrder) -> Vec<InboxRow> {
    let name = village_name.trim();
    rows.retain(|r| name.is_empty() || r.village_name.contains(name));
    match order {
        InboxOrder::Oldest => {
            rows.sort_by(|a, b| (a.received_at, &a.case_id).cmp(&(b.received_at, &b.case_id)))
        }
        InboxOrder::Newest => {
            rows.sort_by(|a, b| (b.received_at, &b.case_id).cmp(&(a.received_at, &a.case_id)))
        }
        InboxOrder::Deadline => rows.sort_by(|a, b| {
            (a.deadline.is_none(), a.deadline, a.received_at, &a.case_id).cmp(&(
                b.deadline.is_none(),
                b.deadline,
                b.received_at,
                &b.case_id,
            ))
        }),
    }
    rows
}

#[component]
pub fn TownInbox() -> Element {
    let enrolment = use_enrolment();
    let mut village_name = use_signal(String::new);
    let mut search = use_signal(String::new);
    let mut order = use_signal(|| InboxOrder::Oldest);
    let mut state = use_signal(String::new);
    let mut overdue = use_signal(|| false);
    let mut reload = use_signal(|| 0u32);
    let rows = use_resource(move || async move {
        let _ = reload();
        let t = staff_transport(&enrolment.read())?;
        t.inbox(&query("", &state(), overdue(), &search()))
            .await
            .map_err(|e| e.staff_message())
    });
    let today = Local::now().date_naive();
    let calendar = use_hook(WorkCalendar::shipped);
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let list: Result<Vec<InboxRow>, String> = match &*rows.read() {
        None => Ok(Vec::new()),
        Some(r) => r.clone().map(|r| arrange(r, &village_name(), order())),
    };
    rsx! {
        TopBar { title: "镇中心收件箱" }
        main { class: "page town",
            WhoLine {}
            SyncPanel {}
            div { class: "filters",
                input { id: "inbox-search", r#type: "search", "aria-label": "按办件编号或申请人姓名查找", placeholder: "办件编号或申请人姓名",
                    value: "{search}", oninput: move |e| search.set(e.value()) }
                input { id: "filter-village", "aria-label": "按村名筛选", placeholder: "村名，如 南关村", value: "{village_name}", oninput: move |e| village_name.set(e.value()) }
                select { id: "filter-state", "aria-label": "按状态筛选", onchange: move |e| state.set(e.value()),
                    option { value: "", "全部状态" }
                    for s in [CaseState::Received, CaseState::Accepted, CaseState::CorrectionRequested, CaseState::Forwarded, CaseState::Completed, CaseState::Refused] {
                        option { value: "{s.as_str()}", "{s.label()}" }
                    }
                }
                select { id: "inbox-sort", "aria-label": "排序", onchange: move |e| order.set(InboxOrder::parse(&e.value())),
                    option { value: "oldest", "先收先办" }
                    option { value: "newest", "最新收件在前" }
                    option { value: "deadline", "期限最近在前" }
                }
                label { class: "check", input { r#type: "checkbox", checked: overdue(), onchange: move |e| overdue.set(e.checked()) } "只看超期" }
                button { class: "btn", id: "inbox-refresh", onclick: move |_| reload += 1, "刷新" }
                button { class: "btn", id: "open-reviews", onclick: move |_| { navigator().push(Route::TownReviews {}); }, "差评整改" }
            }
            match list {
                Err(e) => rsx! { p { class: "error", "{e}" } },
                Ok(rows) if rows.is_empty() => rsx! { p { class: "empty", "没有符合条件的办件。" } },
                Ok(rows) => rsx! {
                    p { class: "count", id: "inbox-count", "共 {rows.len()} 件" }
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
                                    div { class: "row-dates",
                                        span { class: "received", {format!("收件 {}", r.received_at.with_timezone(&china).format("%Y-%m-%d %H:%M"))} }
                                        span { class: if r.overdue { "countdown error" } else { "countdown" }, "{countdown(r.deadline, today, &calendar)}" }
                                    }
                                    div { class: "muted case-no", "{r.case_id}" }
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
        assert_eq!(query("", "", false, " "), "");
        assert_eq!(
            query("140423100201", "received", true, "王秀英"),
            "village=140423100201&state=received&overdue=true&q=%E7%8E%8B%E7%A7%80%E8%8B%B1"
        );
    }

    #[test]
    fn countdown_in_plain_chinese() {
        let d = |n| chrono::NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        let cal = WorkCalendar::weekends_only();
        // 2026-11-27 is a Friday: the Monday after is one working day away.
        assert_eq!(countdown(Some(d(30)), d(27), &cal), "还剩1个工作日");
        assert_eq!(countdown(Some(d(25)), d(27), &cal), "已超期2个工作日");
        assert_eq!(countdown(None, d(27), &cal), "未受理");
    }

    #[test]
    fn the_clerk_filters_by_village_name_and_sorts() {
        let row = |id: &str, village: &str, day: u32, deadline: Option<u32>| InboxRow {
            case_id: id.into(),
            version: 1,
            village: "140423100201".into(),
            village_name: village.into(),
            item: "V11".into(),
            item_name: "低保".into(),
            state: CaseState::Received,
            applicant: "王*".into(),
            id_number: "1234".into(),
            responsible: Default::default(),
            received_at: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, day, 1, 0, 0)
                .unwrap(),
            deadline: deadline.map(|n| chrono::NaiveDate::from_ymd_opt(2026, 12, n).unwrap()),
            overdue: false,
            working_days_left: None,
            paused: None,
            extension_pending: false,
            waiting_too_long: false,
            pressed: None,
        };
        let rows = vec![
            row("a", "古韩镇南关村", 2, None),
            row("b", "古韩镇北关村", 1, Some(9)),
            row("c", "古韩镇南关村", 3, Some(4)),
        ];
        let ids = |v: Vec<InboxRow>| v.into_iter().map(|r| r.case_id).collect::<Vec<_>>();
        assert_eq!(
            ids(arrange(rows.clone(), "南关", InboxOrder::Oldest)),
            ["a", "c"]
        );
        assert_eq!(
            ids(arrange(rows.clone(), "", InboxOrder::Newest)),
            ["c", "a", "b"]
        );
        assert_eq!(
            ids(arrange(rows, " ", InboxOrder::Deadline)),
            ["c", "b", "a"]
        );
    }
}
