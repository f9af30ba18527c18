//! The county pages that list cases page by page through the store's index, on both backends:
//! /county's overdue list, the three lists of /county/supervision and a county office's inbox
//! show every case they should once when their 更多 links are followed to the end, in the
//! index's order, with the office inbox's personal data masked; /county/roster's open-case
//! counts come from the index's counters.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use bianmin_engine::case::{Case, StateChange};
use bianmin_engine::deadline::clock::{CaseClock, PauseReason};
use bianmin_engine::deadline::WorkCalendar;
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::CaseState;
use bianmin_town::store::{CountyHandling, DeviceRecord, PgStore, SledStore, Snapshot, StoredCase};
use bianmin_town::AppState;
use chrono::{Duration, Utc};
use common::backends::test_db;
use common::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// More rows than one page of every list (50), so each list needs its 更多 link.
const N: usize = 320;

/// Runs blocking store work (the PostgreSQL client starts its own runtime) off the async thread.
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// `N` cases of one village: overdue, paused, waiting for an extension, forwarded to the
/// approval centre or to another office, finished.
fn town() -> Snapshot {
    let agent = Device::fresh(NANGUAN);
    let template = agent.submission("x", 1, &[b"page one".as_slice()]);
    let now = Utc::now();
    let mut snap = Snapshot::default();
    snap.devices.push(DeviceRecord {
        id: agent.id.clone(),
        role: DeviceRole::Agent,
        village: Some(NANGUAN.into()),
        town: GUHAN.into(),
        public_key: hex::encode(agent.key.verifying_key().to_bytes()),
        person: "李代办".into(),
        enrolled_at: now - Duration::days(90),
        revoked: false,
    });
    for i in 0..N {
        let mut sub = template.clone();
        sub.id = format!("{NANGUAN}-20261128-{}-{i:04}", agent.id);
        sub.applicant.name = format!("欧阳秀英{i}");
        sub.applicant.id_number = format!("1404231980{i:07}X");
        let received_at = now - Duration::days(60) + Duration::minutes(i as i64 * 7);
        let mut case = Case::from_submission(&sub, received_at);
        case.history.push(StateChange {
            from: CaseState::Received,
            to: CaseState::Accepted,
            at: received_at,
            by: "王镇办".into(),
            note: String::new(),
        });
        case.state = match i % 4 {
            0 | 1 => CaseState::Accepted,
            2 => CaseState::Forwarded,
            _ => CaseState::Rated,
        };
        // Every deadline passed: all running clocks are overdue unless paused.
        case.deadline = Some((received_at + Duration::days(20 + (i % 3) as i64)).date_naive());
        let mut clock = CaseClock::default();
        if i % 4 == 1 && i % 3 == 0 {
            let at = received_at + Duration::days(2);
            clock
                .pause(
                    PauseReason::Publicity,
                    "公示",
                    "王镇办",
                    at,
                    at.date_naive(),
                    5,
                )
                .unwrap();
        }
        if case.clock_running() && i % 5 != 0 {
            clock
                .request_extension(3, "需核查", "王镇办", received_at + Duration::days(1))
                .unwrap();
        }
        let county = (case.state == CaseState::Forwarded).then(|| CountyHandling {
            receiver: if i % 12 != 6 {
                "approval_centre"
            } else {
                "justice"
            }
            .into(),
            receiver_name: "县行政审批局".into(),
            forwarded_at: received_at + Duration::hours(3),
            forwarded_by: "王镇办".into(),
            note: String::new(),
            accepted: None,
            deadline: None,
            request: None,
            decided: None,
        });
        snap.cases.push(StoredCase {
            case,
            received_at,
            versions: Default::default(),
            corrections: 0,
            town_check: Vec::new(),
            clock,
            pressed: Vec::new(),
            county,
            revision: Default::default(),
        });
    }
    snap
}

async fn get(r: &Router, uri: &str, cookie: &str) -> String {
    let req = axum::http::Request::get(uri)
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

async fn login(r: &Router, uri: &str, name: &str, password: &str) -> String {
    let body = format!("name={}&password={}", urlencode(name), urlencode(password));
    let req = axum::http::Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{name} signs in");
    resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The part of a page from the card with `id` to the card with `until` (or the end).
fn section<'a>(page: &'a str, id: &str, until: Option<&str>) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let from = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{id} on the page"));
    let rest = &page[from + marker.len()..];
    let to = until
        .map(|u| rest.find(&format!("id=\"{u}\"")).expect("the next card"))
        .unwrap_or(rest.len());
    &rest[..to]
}

/// The table row that starts at `marker`.
fn section_of_row<'a>(page: &'a str, marker: &str) -> &'a str {
    let from = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} on the page"));
    let rest = &page[from..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// Every text that follows `before` up to `until` in `s`.
fn all_after(s: &str, before: &str, until: char) -> Vec<String> {
    s.match_indices(before)
        .map(|(at, _)| {
            let t = &s[at + before.len()..];
            t[..t.find(until).unwrap()].to_string()
        })
        .collect()
}

/// Follows a list's 更多 links from `first` to the end; the rows of each page, and the pages.
async fn walk(
    r: &Router,
    first: &str,
    cookie: &str,
    card: (&str, Option<&str>),
    rows: impl Fn(&str) -> Vec<String>,
) -> (Vec<String>, usize) {
    let (mut uri, mut out, mut pages) = (first.to_string(), Vec::new(), 0);
    loop {
        let page = get(r, &uri, cookie).await;
        let sec = section(&page, card.0, card.1);
        out.extend(rows(sec));
        pages += 1;
        assert!(pages < 50, "paging ends");
        match all_after(sec, "class=\"more\" href=\"", '"').pop() {
            Some(next) => uri = next.replace("&amp;", "&"),
            None => break,
        }
    }
    (out, pages)
}

async fn check(state: AppState, snap: &Snapshot, name: &str) {
    let r = bianmin_town::app(state.clone());
    let st = state.clone();
    let (supervisor_pw, office_pw) = off(move || {
        let receivers = st.catalogs.latest().catalog.receivers().to_vec();
        (
            bianmin_town::oversight::supervisor_add(st.admin.as_ref(), "张科长").unwrap(),
            bianmin_town::county_inbox::add_staff(
                st.admin.as_ref(),
                &receivers,
                "赵审批",
                "approval_centre",
            )
            .unwrap(),
        )
    });
    let supervisor = login(&r, "/county/login", "张科长", &supervisor_pw).await;
    let office = login(&r, "/county/inbox/login", "赵审批", &office_pw).await;
    let cal = WorkCalendar::shipped();
    let today = bianmin_town::time::china_today();
    let mut by_id: Vec<&StoredCase> = snap.cases.iter().collect();
    by_id.sort_by(|a, b| a.case.id.cmp(&b.case.id));
    let ids = |f: &dyn Fn(&StoredCase) -> bool| -> Vec<String> {
        by_id
            .iter()
            .filter(|c| f(c))
            .map(|c| c.case.id.clone())
            .collect()
    };
    let mut overdue: Vec<&StoredCase> = snap
        .cases
        .iter()
        .filter(|c| bianmin_town::clock::overdue(c, today, &cal))
        .collect();
    overdue.sort_by(|a, b| (a.case.deadline, &a.case.id).cmp(&(b.case.deadline, &b.case.id)));
    let overdue: Vec<String> = overdue.iter().map(|c| c.case.id.clone()).collect();
    assert!(overdue.len() > 100, "{name}: {}", overdue.len());

    // /county: the overdue list, most overdue first, 50 a page.
    let cells = |s: &str| all_after(s, "<tr><td>", '<');
    let (seen, pages) = walk(
        &r,
        "/county",
        &supervisor,
        ("overdue", Some("warnings")),
        cells,
    )
    .await;
    assert_eq!(seen, overdue, "{name}: /county");
    assert_eq!(pages, overdue.len().div_ceil(50), "{name}");

    // /county/supervision: each of its three lists.
    let (seen, _) = walk(
        &r,
        "/county/supervision",
        &supervisor,
        ("overdue", Some("paused")),
        |s| all_after(s, "id=\"late-", '"'),
    )
    .await;
    assert_eq!(seen, overdue, "{name}: 催办");
    let want = ids(&|c| c.case.clock_running() && c.clock.pending_extension().is_some());
    let (seen, pages) = walk(
        &r,
        "/county/supervision",
        &supervisor,
        ("extensions", Some("overdue")),
        |s| all_after(s, "id=\"ext-", '"'),
    )
    .await;
    assert_eq!(seen, want, "{name}: 延期");
    assert!(pages > 1, "{name}");
    let want = ids(&|c| bianmin_town::clock::paused(c).is_some());
    assert!(!want.is_empty());
    let (seen, _) = walk(
        &r,
        "/county/supervision",
        &supervisor,
        ("paused", None),
        cells,
    )
    .await;
    assert_eq!(seen, want, "{name}: 暂停");

    // /county/inbox: the approval centre's forwarded cases, newest forward first, masked.
    let mut mine: Vec<&StoredCase> = snap
        .cases
        .iter()
        .filter(|c| {
            c.county
                .as_ref()
                .is_some_and(|h| h.receiver == "approval_centre")
        })
        .collect();
    mine.sort_by(|a, b| {
        let at = |c: &StoredCase| (c.county.as_ref().unwrap().forwarded_at, c.case.id.clone());
        at(b).cmp(&at(a))
    });
    let mine: Vec<String> = mine.iter().map(|c| c.case.id.clone()).collect();
    assert!(mine.len() > 50, "{name}: more than a page");
    let mut first = String::new();
    let (uri, mut seen, mut pages) = ("/county/inbox".to_string(), Vec::new(), 0);
    let mut uri = uri;
    loop {
        let page = get(&r, &uri, &office).await;
        if first.is_empty() {
            first = page.clone();
        }
        seen.extend(all_after(&page, "<a href=\"/county/inbox/", '"'));
        pages += 1;
        assert!(pages < 50);
        match all_after(&page, "class=\"more\" href=\"", '"').pop() {
            Some(next) => uri = next.replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(seen, mine, "{name}: office inbox");
    let c = snap.cases.iter().find(|c| c.case.id == mine[0]).unwrap();
    assert!(
        !first.contains(&c.case.applicant.name),
        "{name}: name masked"
    );
    assert!(
        !first.contains(&c.case.applicant.id_number),
        "{name}: ID masked"
    );
    assert!(
        first.contains("欧*****"),
        "{name}: the masked name is shown"
    );

    // /county/roster: the agent's open cases, from the counters.
    let open = snap.cases.iter().filter(|c| !c.case.is_final()).count();
    let counts: BTreeMap<String, u64> = off(|| state.store.open_cases_by_device().unwrap());
    let device = &snap.cases[0].case.responsible.device_id;
    assert_eq!(counts.get(device), Some(&(open as u64)), "{name}");
    let roster = get(&r, "/county/roster", &supervisor).await;
    let row = section_of_row(&roster, &format!("id=\"device-{device}\""));
    assert!(
        row.contains(&format!("<td>{open}</td>")),
        "{name}: roster shows {open}: {row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn county_lists_page_through_the_index_on_both_backends() {
    let snap = town();
    let dir = tempfile::tempdir().unwrap();
    let s = snap.clone();
    let d = dir.path().to_path_buf();
    let state = off(move || {
        let store = Arc::new(SledStore::open(&d.join("db")).unwrap());
        store.import(&s).unwrap();
        AppState::with_store(&d, store).unwrap()
    });
    check(state, &snap, "sled").await;
    let Some(db) = test_db() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (url, d, s) = (db.url.clone(), dir.path().to_path_buf(), snap.clone());
    let state = off(move || {
        let pg = Arc::new(PgStore::open(&url, 4).unwrap());
        pg.import(&s).unwrap();
        AppState::with_stores(&d, pg.clone(), pg).unwrap()
    });
    check(state, &snap, "postgres").await;
    drop(db);
}
