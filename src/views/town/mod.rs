//! Town staff (tablet role): the inbox of the town's villages with filters and deadline
//! countdowns (here), and one case with its pages and the staff actions (`case`).
//!
//! Everything is read from and written to the town centre through the engine's transport with
//! the tablet's enrolled key. Pages are downloaded only while their case is open, checked against
//! their SHA-256 by the transport, and held in memory as `data:` URLs that are dropped with the
//! case view: the tablet keeps no copy of residents' data on disk, except the cases a clerk takes
//! in at the window (`window`), which are made in the tablet's encrypted book as on a phone.

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
mod clock;
pub mod county;
mod materials;
pub mod operator;
pub mod pages;
pub mod print;
pub mod reviews;
mod viewer;
pub mod window;

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

/// A row's clock in words: the town's own countdown (pauses and extensions included) when the
/// clock runs, else the promised date counted here (older servers send no countdown).
pub fn row_clock(r: &InboxRow, today: chrono::NaiveDate, calendar: &WorkCalendar) -> String {
    match (&r.paused, r.working_days_left) {
        (Some(p), _) => format!("暂停计时（{}）", p.label),
        (None, Some(left)) if left >= 0 => format!("还剩{left}个工作日"),
        (None, Some(left)) => format!("已超期{}个工作日", -left),
        (None, None)
            if r.deadline.is_none()
                || matches!(r.state, CaseState::Accepted | CaseState::Forwarded) =>
        {
            countdown(r.deadline, today, calendar)
        }
        // Decided: the clock has stopped for good.
        (None, None) => String::new(),
    }
}

/// Rows per inbox page: a screenful or two; the town centre reads only these from its index.
const PAGE_ROWS: usize = 50;

/// The inbox page query: the filters, the order (`oldest`, `newest`, `deadline`, all sorted by
/// the town centre) and where the previous page ended.
pub fn page_query(
    village_name: &str,
    state: &str,
    overdue: bool,
    search: &str,
    order: &str,
    after: Option<&str>,
) -> String {
    let mut q = vec![query("", state, overdue, search)];
    let name = village_name.trim();
    if !name.is_empty() {
        q.push(format!("village_name={}", percent(name)));
    }
    if !order.is_empty() {
        q.push(format!("order={}", percent(order)));
    }
    q.push(format!("limit={PAGE_ROWS}"));
    if let Some(a) = after {
        q.push(format!("after={}", percent(a)));
    }
    q.retain(|p| !p.is_empty());
    q.join("&")
}

/// The pages loaded so far.
#[derive(Clone, Default, PartialEq)]
struct Listing {
    rows: Vec<InboxRow>,
    next: Option<String>,
    total: u64,
}

#[component]
pub fn TownInbox() -> Element {
    let enrolment = use_enrolment();
    let mut village_name = use_signal(String::new);
    let mut search = use_signal(String::new);
    let mut order = use_signal(|| "oldest".to_string());
    let mut state = use_signal(String::new);
    let mut overdue = use_signal(|| false);
    let mut reload = use_signal(|| 0u32);
    let mut listing = use_signal(Listing::default);
    let mut more_error = use_signal(|| None::<String>);
    // The first page whenever a filter changes; later pages are appended by 加载更多.
    let first = use_resource(move || async move {
        let _ = reload();
        let q = page_query(
            &village_name(),
            &state(),
            overdue(),
            &search(),
            &order(),
            None,
        );
        let t = staff_transport(&enrolment.read())?;
        let page = t.inbox_page(&q).await.map_err(|e| e.staff_message())?;
        more_error.set(None);
        listing.set(Listing {
            rows: page.rows,
            next: page.next,
            total: page.total,
        });
        Ok::<(), String>(())
    });
    let load_more = move |_| {
        let Some(after) = listing.read().next.clone() else {
            return;
        };
        let q = page_query(
            &village_name(),
            &state(),
            overdue(),
            &search(),
            &order(),
            Some(&after),
        );
        spawn(async move {
            let page = match staff_transport(&enrolment.read()) {
                Ok(t) => t.inbox_page(&q).await.map_err(|e| e.staff_message()),
                Err(e) => Err(e),
            };
            match page {
                Ok(p) => listing.with_mut(|l| {
                    // Only onto the pages it continues: a filter changed meanwhile starts anew.
                    if l.next.as_deref() == Some(after.as_str()) {
                        l.rows.extend(p.rows);
                        l.next = p.next;
                        l.total = p.total;
                    }
                }),
                Err(e) => more_error.set(Some(e)),
            }
        });
    };
    let today = Local::now().date_naive();
    let calendar = use_hook(WorkCalendar::shipped);
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let list: Result<Listing, String> = match &*first.read() {
        None => Ok(Listing::default()),
        Some(r) => r.clone().map(|()| listing()),
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
                select { id: "inbox-sort", "aria-label": "排序", onchange: move |e| order.set(e.value()),
                    option { value: "oldest", "先收先办" }
                    option { value: "newest", "最新收件在前" }
                    option { value: "deadline", "期限最近在前" }
                }
                label { class: "check", input { r#type: "checkbox", checked: overdue(), onchange: move |e| overdue.set(e.checked()) } "只看超期" }
                button { class: "btn", id: "inbox-refresh", onclick: move |_| reload += 1, "刷新" }
                button { class: "btn", id: "open-reviews", onclick: move |_| { navigator().push(Route::TownReviews {}); }, "差评整改" }
                button { class: "btn primary", id: "open-window", onclick: move |_| { navigator().push(Route::TownWindow {}); }, "窗口收件" }
            }
            match list {
                Err(e) => rsx! { p { class: "error", "{e}" } },
                Ok(l) if l.rows.is_empty() => rsx! { p { class: "empty", "没有符合条件的办件。" } },
                Ok(Listing { rows, next, total }) => rsx! {
                    p { class: "count", id: "inbox-count", "data-total": "{total}", "data-shown": "{rows.len()}",
                        if (rows.len() as u64) < total { "共 {total} 件，已显示 {rows.len()} 件" } else { "共 {total} 件" }
                    }
                    ul { class: "cases",
                        for r in rows.iter() {
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
                                        span { class: if r.overdue { "countdown error" } else { "countdown" }, "{row_clock(r, today, &calendar)}" }
                                        if r.pressed.is_some() { span { class: "badge error", "县级催办" } }
                                        if r.extension_pending { span { class: "badge", "延期待批" } }
                                        if r.waiting_too_long { span { class: "badge error", "待受理超时" } }
                                        if r.county_request { span { class: "badge error county-request", "县要求补正" } }
                                    }
                                    div { class: "muted case-no", "{r.case_id}" }
                                }
                            }
                        }
                    }
                    if next.is_some() {
                        button { class: "btn wide", id: "inbox-more", onclick: load_more, "加载更多" }
                    }
                    if let Some(e) = more_error() {
                        p { class: "error", role: "alert", "{e}" }
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
    fn a_row_shows_the_towns_countdown_and_its_pause() {
        let cal = WorkCalendar::weekends_only();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let mut r = InboxRow {
            case_id: "a".into(),
            version: 1,
            village: "140423100201".into(),
            village_name: "古韩镇南关村".into(),
            item: "V11".into(),
            item_name: "低保".into(),
            state: CaseState::Accepted,
            applicant: "王*".into(),
            id_number: "1234".into(),
            responsible: Default::default(),
            received_at: chrono::Utc::now(),
            deadline: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()),
            overdue: false,
            working_days_left: Some(4),
            paused: None,
            extension_pending: false,
            waiting_too_long: false,
            pressed: None,
            county_request: false,
        };
        // The town's count (an extension moved it) wins over the date counted here.
        assert_eq!(row_clock(&r, today, &cal), "还剩4个工作日");
        r.working_days_left = Some(-2);
        assert_eq!(row_clock(&r, today, &cal), "已超期2个工作日");
        r.paused = Some(bianmin_protocol::clock::ClockPause {
            reason: "publicity".into(),
            label: "公示".into(),
            since: today,
            by: "李四".into(),
        });
        assert_eq!(row_clock(&r, today, &cal), "暂停计时（公示）");
        // An older town sends no countdown: the promised date is counted here.
        r.paused = None;
        r.working_days_left = None;
        assert_eq!(row_clock(&r, today, &cal), "还剩1个工作日");
        r.state = CaseState::Completed;
        assert_eq!(row_clock(&r, today, &cal), "");
    }

    #[test]
    fn a_page_query_carries_filters_order_and_cursor() {
        assert_eq!(page_query("", "", false, "", "", None), "limit=50");
        assert_eq!(
            page_query(" 南关 ", "accepted", true, "", "deadline", Some("-.1.14 x")),
            "state=accepted&overdue=true&village_name=%E5%8D%97%E5%85%B3&order=deadline&limit=50&after=-.1.14%20x"
        );
    }
}
