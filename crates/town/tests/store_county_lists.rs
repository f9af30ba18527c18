//! The county lists the store reads through its index (overdue, extension requests, stopped
//! clocks, a county office's forwarded cases) and the open cases per device, on every backend:
//! the same answers as the rules applied to every case, paging without gaps or repeats, kept in
//! step when cases are written again, and rebuilt for a store written before the index had them.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bianmin_engine::case::{Case, StateChange};
use bianmin_engine::deadline::clock::{CaseClock, PauseReason};
use bianmin_engine::deadline::WorkCalendar;
use bianmin_protocol::{AgentRef, Applicant, CaseState, CaseSubmission};
use bianmin_town::store::county_lists::{CountyList, ListCursor};
use bianmin_town::store::{CountyHandling, StoredCase, TownStore};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::backends::{backends, open_pg, test_db};
use common::NANGUAN;

const OFFICES: [&str; 2] = ["spj", "mzj"];

/// 90 cases in every state, with deadlines around today, paused clocks, waiting extension
/// requests and forwards to two county offices (several at the same moment).
fn cases() -> Vec<StoredCase> {
    let now = Utc::now();
    let states = [
        CaseState::Uploaded,
        CaseState::Received,
        CaseState::Accepted,
        CaseState::CorrectionRequested,
        CaseState::Refused,
        CaseState::Forwarded,
        CaseState::Completed,
        CaseState::Delivered,
        CaseState::Rated,
        CaseState::Accepted,
    ];
    (0..90u32)
        .map(|n| {
            let device = ["AAAAAA", "BBBBBB", "CCCCCC", "DDDDDD"][(n as usize / 2) % 4];
            let sub = CaseSubmission {
                id: format!("{NANGUAN}-20261128-{device}-{n:04}"),
                version: 1,
                item: "V01".into(),
                village: NANGUAN.into(),
                applicant: Applicant {
                    name: format!("申{n}"),
                    id_number: format!("14042319800101{:03}X", n % 7),
                    phone: String::new(),
                    address: String::new(),
                },
                answers: Default::default(),
                catalog_version: 0,
                materials: Vec::new(),
                responsible: AgentRef {
                    device_id: device.into(),
                    name: format!("代办{device}"),
                    village: NANGUAN.into(),
                },
                sealed_at: now,
            };
            let received_at = now - Duration::days(40) + Duration::hours(n as i64 * 9);
            let mut case = Case::from_submission(&sub, received_at);
            case.state = states[n as usize % states.len()];
            if n % 4 != 0 {
                // Several cases share a deadline, so the overdue list's ties go by case number.
                case.deadline =
                    Some(received_at.date_naive() + Duration::days(15 - (n % 3) as i64));
            }
            if case.state == CaseState::CorrectionRequested {
                case.history.push(StateChange {
                    from: CaseState::Received,
                    to: CaseState::CorrectionRequested,
                    at: received_at + Duration::days(1),
                    by: "王镇办".into(),
                    note: "缺户口簿".into(),
                });
            }
            let mut clock = CaseClock::default();
            if n % 6 == 2 && case.clock_running() {
                let at = received_at + Duration::days(3);
                clock
                    .pause(
                        PauseReason::Publicity,
                        "公示7天",
                        "王镇办",
                        at,
                        at.date_naive(),
                        10,
                    )
                    .unwrap();
            }
            if n % 5 != 1 && case.clock_running() {
                clock
                    .request_extension(5, "需现场核查", "王镇办", received_at + Duration::days(4))
                    .unwrap();
            }
            // Forwarded ones go to an office; a few finished ones were forwarded once too.
            let county = (case.state == CaseState::Forwarded || n % 11 == 0).then(|| {
                CountyHandling {
                    receiver: OFFICES[n as usize % 2].into(),
                    receiver_name: "县行政审批局".into(),
                    // Pairs forwarded in the same second: ties go by case number.
                    forwarded_at: now - Duration::days(10) + Duration::hours((n / 2) as i64),
                    forwarded_by: "王镇办".into(),
                    note: String::new(),
                    accepted: None,
                    deadline: None,
                    request: None,
                    decided: None,
                }
            });
            StoredCase {
                case,
                received_at,
                versions: Default::default(),
                corrections: 0,
                town_check: Vec::new(),
                clock,
                pressed: Vec::new(),
                revision: Default::default(),
                county,
            }
        })
        .collect()
}

/// The lists by the rules over every case, as the county pages computed them before.
fn reference(all: &[StoredCase], list: &CountyList, today: NaiveDate) -> Vec<String> {
    let cal = WorkCalendar::shipped();
    let mut rows: Vec<(i64, DateTime<Utc>, String)> = all
        .iter()
        .filter(|sc| match list {
            CountyList::Overdue { .. } => bianmin_town::clock::overdue(sc, today, &cal),
            CountyList::Extensions => {
                sc.case.clock_running() && sc.clock.pending_extension().is_some()
            }
            CountyList::Paused => bianmin_town::clock::paused(sc).is_some(),
            CountyList::Office(o) => sc.county.as_ref().is_some_and(|h| h.receiver == *o),
        })
        .map(|sc| {
            let day = sc
                .case
                .deadline
                .map(|d| chrono::Datelike::num_days_from_ce(&d) as i64)
                .unwrap_or(0);
            let at = sc
                .county
                .as_ref()
                .map(|h| h.forwarded_at)
                .unwrap_or_default();
            // Only the office list orders by forward time.
            let at = if matches!(list, CountyList::Office(_)) {
                at
            } else {
                DateTime::<Utc>::default()
            };
            let day = if matches!(list, CountyList::Overdue { .. }) {
                day
            } else {
                0
            };
            (day, at, sc.case.id.clone())
        })
        .collect();
    rows.sort();
    if matches!(list, CountyList::Office(_)) {
        rows.reverse();
    }
    rows.into_iter().map(|r| r.2).collect()
}

fn reference_open(all: &[StoredCase]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for sc in all.iter().filter(|sc| !sc.case.is_final()) {
        *out.entry(sc.case.responsible.device_id.clone())
            .or_default() += 1;
    }
    out
}

/// Every page of `list` in pages of `limit`, and how many pages it took.
fn walk(store: &dyn TownStore, list: &CountyList, limit: usize) -> (Vec<String>, usize) {
    let (mut ids, mut after, mut pages) = (Vec::new(), None::<ListCursor>, 0);
    loop {
        let page = store.county_list(list, after.as_ref(), limit).unwrap();
        assert!(page.cases.len() <= limit);
        pages += 1;
        ids.extend(page.cases.into_iter().map(|c| c.case.id));
        match page.next {
            // The cursor survives the URL it travels in.
            Some(n) => after = Some(ListCursor::decode(&n.encode()).unwrap()),
            None => break,
        }
        assert!(pages < 1000, "paging ends");
    }
    (ids, pages)
}

fn check(store: &dyn TownStore, all: &[StoredCase], name: &str) {
    let cal = WorkCalendar::shipped();
    let mut lists = vec![
        CountyList::Extensions,
        CountyList::Paused,
        CountyList::Office(OFFICES[0].into()),
        CountyList::Office(OFFICES[1].into()),
        CountyList::Office("none".into()),
    ];
    for today in [
        Utc::now().date_naive(),
        Utc::now().date_naive() - Duration::days(12),
    ] {
        lists.push(CountyList::Overdue { today });
    }
    for list in &lists {
        // The store is asked with the last working day, as the pages ask.
        let (asked, today) = match list {
            CountyList::Overdue { today } => (
                CountyList::Overdue {
                    today: cal.last_working_day(*today),
                },
                *today,
            ),
            l => (l.clone(), Utc::now().date_naive()),
        };
        let want = reference(all, list, today);
        if !matches!(list, CountyList::Office(o) if o == "none") {
            assert!(want.len() > 3, "{name} {list:?}: the sample has several");
        }
        let (whole, pages) = walk(store, &asked, 200);
        assert_eq!(whole, want, "{name} {list:?}");
        assert_eq!(pages, 1, "{name} {list:?}");
        for limit in [1, 3, 7] {
            let (paged, pages) = walk(store, &asked, limit);
            assert_eq!(paged, want, "{name} {list:?} by {limit}");
            assert_eq!(
                pages,
                want.len().div_ceil(limit).max(1),
                "{name} {list:?} by {limit}"
            );
        }
    }
    assert_eq!(
        store.open_cases_by_device().unwrap(),
        reference_open(all),
        "{name}"
    );
}

/// Moves cases between the lists: an extension decided, a pause ended, a case finished, one
/// forwarded to the other office, a new one added.
fn change(all: &mut Vec<StoredCase>) -> Vec<usize> {
    let cal = WorkCalendar::shipped();
    let now = Utc::now();
    let mut touched = Vec::new();
    let ext = all
        .iter()
        .position(|c| c.clock.pending_extension().is_some() && c.case.clock_running())
        .unwrap();
    let mut dl = all[ext].case.deadline.unwrap();
    all[ext]
        .clock
        .decide_extension(&mut dl, true, "同意", "县督办", now, &cal)
        .unwrap();
    all[ext].case.deadline = Some(dl);
    touched.push(ext);
    let paused = all
        .iter()
        .position(|c| c.clock.open_pause().is_some() && c.case.clock_running())
        .unwrap();
    all[paused].clock.close("王镇办", now, now.date_naive());
    touched.push(paused);
    let open = (0..all.len())
        .find(|i| all[*i].case.state == CaseState::Accepted && !touched.contains(i))
        .unwrap();
    all[open].case.state = CaseState::Rated;
    touched.push(open);
    let fwd = all.iter().position(|c| c.county.is_some()).unwrap();
    let h = all[fwd].county.as_mut().unwrap();
    h.receiver = if h.receiver == OFFICES[0] {
        OFFICES[1]
    } else {
        OFFICES[0]
    }
    .into();
    h.forwarded_at = now;
    touched.push(fwd);
    let mut new = all[fwd].clone();
    new.case.id = format!("{NANGUAN}-20261201-EEEEEE-0001");
    new.case.responsible.device_id = "EEEEEE".into();
    all.push(new);
    touched.push(all.len() - 1);
    touched
}

#[test]
fn county_lists_from_the_index_match_the_lists_over_every_case() {
    for b in backends() {
        let name = b.name;
        std::thread::spawn(move || {
            let mut all = cases();
            for c in &all {
                b.store.commit(Some(c), &[], vec![]).unwrap();
            }
            check(&*b.store, &all, name);
            for i in change(&mut all) {
                b.store.commit(Some(&all[i]), &[], vec![]).unwrap();
            }
            check(&*b.store, &all, &format!("{name}, written again"));
            // The import path (`restore`, `migrate`) fills the same index.
            if name == "sled" {
                let dir = tempfile::tempdir().unwrap();
                let s = bianmin_town::store::SledStore::open(&dir.path().join("db")).unwrap();
                s.import(&bianmin_town::store::Snapshot {
                    cases: all.clone(),
                    ..Default::default()
                })
                .unwrap();
                check(&s, &all, "sled import");
            }
        })
        .join()
        .unwrap_or_else(|_| panic!("county lists failed on {name}"));
    }
}

#[test]
fn an_older_store_gets_the_county_list_index() {
    let all = cases();
    // Embedded: the index of the previous version (marker "2", no secondary keys, no counters,
    // summaries without the list fields), as a data directory of the last release has it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    {
        let s = bianmin_town::store::SledStore::open(&db).unwrap();
        for c in &all {
            s.commit(Some(c), &[], vec![]).unwrap();
        }
    }
    {
        let raw = sled::open(&db).unwrap();
        let inbox = raw.open_tree("inbox").unwrap();
        for row in inbox.iter() {
            let (k, v) = row.unwrap();
            let s = bianmin_town::store::inbox::CaseSummary::decode(&v).unwrap();
            inbox
                .insert(k, &v[..v.len() - 11 - s.office.len()])
                .unwrap();
        }
        raw.open_tree("county_ix").unwrap().clear().unwrap();
        let meta = raw.open_tree("meta").unwrap();
        for k in meta.scan_prefix("ix/").keys() {
            meta.remove(k.unwrap()).unwrap();
        }
        // A stale counter the rebuild must drop.
        meta.insert("ix/open/ZZZZZZ", &7u64.to_be_bytes()).unwrap();
        meta.insert("inbox_indexed", "2").unwrap();
        raw.flush().unwrap();
    }
    {
        let s = bianmin_town::store::SledStore::open(&db).unwrap();
        check(&s, &all, "sled, reindexed");
    }
    // PostgreSQL: a database at schema 8, its rows written then; opening applies migration 9,
    // which fills the list columns from the records.
    let Some(pg) = test_db() else {
        return;
    };
    let url = pg.url.clone();
    std::thread::spawn(move || {
        drop(bianmin_town::store::PgStore::open_at(&url, 2, 8).unwrap());
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        for sc in &all {
            c.execute(
                "INSERT INTO cases (id, village, state, received_at, record, deadline, due, device)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &sc.case.id,
                    &sc.case.village,
                    &sc.case.state.as_str(),
                    &sc.received_at,
                    &postgres::types::Json(sc),
                    &sc.case.deadline,
                    &bianmin_town::store::inbox::due(sc),
                    &sc.case.responsible.device_id,
                ],
            )
            .unwrap();
        }
        let s: Arc<dyn TownStore> = open_pg(&url);
        check(&*s, &all, "postgres, migrated");
        drop(pg);
    })
    .join()
    .unwrap();
}
