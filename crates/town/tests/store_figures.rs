//! The county figures the store computes over its case index (per-village counts, shared phones,
//! the overdue list), on every backend, against a reference computed here from every case with
//! the engine's own rules; and the index of a store written before it kept them is filled in.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bianmin_engine::case::{Case, StateChange};
use bianmin_protocol::{AgentRef, Applicant, CaseState, CaseSubmission};
use bianmin_town::store::figures::{PhoneUse, VillageCounts};
use bianmin_town::store::{StoredCase, TownStore};
use chrono::{Duration, NaiveDate, Utc};
use common::backends::{backends, open_pg, test_db};
use common::NANGUAN;

const VILLAGES: [&str; 3] = [NANGUAN, "140423100202", "140423108201"];

/// 60 cases over three villages and three agents, in every state a town holds, some overdue,
/// some finished late, and phone numbers shared between applicants.
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
    ];
    (0..60u32)
        .map(|n| {
            let village = VILLAGES[n as usize % 3];
            let device = ["AAAAAA", "BBBBBB", "CCCCCC"][(n as usize / 3) % 3];
            let sub = CaseSubmission {
                id: format!("{village}-20261128-{device}-{n:04}"),
                version: 1,
                item: "V01".into(),
                village: village.into(),
                applicant: Applicant {
                    name: format!("申{n}"),
                    // Seven applicants, one of them typed in lower case once.
                    id_number: if n == 7 {
                        format!("14042319800101{:03}x", n % 7)
                    } else {
                        format!("14042319800101{:03}X", n % 7)
                    },
                    // Device AAAAAA's cases mostly share one number; a few have none.
                    phone: match n % 5 {
                        0 => String::new(),
                        1 | 2 => " 13800138000 ".into(),
                        _ => format!("1390000{n:04}"),
                    },
                    address: String::new(),
                },
                answers: Default::default(),
                catalog_version: 0,
                materials: Vec::new(),
                responsible: AgentRef {
                    device_id: device.into(),
                    name: format!("代办{device}"),
                    village: village.into(),
                },
                sealed_at: now,
            };
            let received_at = now - Duration::days(40) + Duration::hours(n as i64 * 12);
            let mut case = Case::from_submission(&sub, received_at);
            case.state = states[n as usize % states.len()];
            // Deadlines around today: some passed, some not.
            if n % 4 != 0 {
                case.deadline = Some(received_at.date_naive() + Duration::days(15));
            }
            if matches!(
                case.state,
                CaseState::Completed | CaseState::Delivered | CaseState::Rated
            ) {
                case.history.push(StateChange {
                    from: CaseState::Accepted,
                    to: CaseState::Completed,
                    // Finished in 4 to 22 days: some by the deadline, some after it.
                    at: received_at + Duration::days(4 + (n as i64 * 5) % 19),
                    by: "王镇办".into(),
                    note: String::new(),
                });
            }
            // Some running clocks stand still for a 公示: never overdue while paused.
            let mut clock = bianmin_engine::deadline::clock::CaseClock::default();
            if n % 7 == 1 && case.clock_running() {
                clock
                    .pause(
                        bianmin_engine::deadline::clock::PauseReason::Publicity,
                        "公示7天",
                        "王镇办",
                        received_at + Duration::days(3),
                        (received_at + Duration::days(3)).date_naive(),
                        10,
                    )
                    .unwrap();
            }
            StoredCase {
                case,
                received_at,
                versions: Default::default(),
                corrections: 0,
                town_check: Vec::new(),
                clock,
                pressed: Vec::new(),
                revision: Default::default(),
                county: None,
            }
        })
        .collect()
}

/// The clock's own rule (`clock::overdue`, the tablet's countdown) on the China date `today`.
fn clock_overdue(sc: &StoredCase, today: NaiveDate) -> bool {
    bianmin_town::clock::overdue(
        sc,
        today,
        &bianmin_engine::deadline::WorkCalendar::shipped(),
    )
}

/// The counts by the engine's rules over every case (as the dashboard computed them before).
fn reference_counts(all: &[StoredCase], today: NaiveDate) -> Vec<VillageCounts> {
    let mut per: BTreeMap<String, VillageCounts> = BTreeMap::new();
    for sc in all {
        let f = per.entry(sc.case.village.clone()).or_default();
        f.village = sc.case.village.clone();
        f.cases += 1;
        if clock_overdue(sc, today) {
            f.overdue_now += 1;
        }
        if matches!(
            sc.case.state,
            CaseState::Completed | CaseState::Delivered | CaseState::Rated
        ) {
            f.completed += 1;
            let on_time = match (bianmin_town::feedback::completed_at(sc), sc.case.deadline) {
                (Some(at), Some(dl)) => bianmin_town::time::china_date(at) <= dl,
                _ => true,
            };
            if on_time {
                f.completed_on_time += 1;
            }
        }
    }
    per.into_values().collect()
}

fn reference_phones(all: &[StoredCase]) -> Vec<bianmin_town::warning_signs::SharedPhone> {
    bianmin_town::warning_signs::shared_phones(all)
}

fn masked(uses: Vec<PhoneUse>) -> Vec<bianmin_town::warning_signs::SharedPhone> {
    bianmin_town::warning_signs::shared_phones_of(uses)
}

fn check(store: &dyn TownStore, all: &[StoredCase], name: &str) {
    for today in [
        Utc::now().date_naive(),
        Utc::now().date_naive() - Duration::days(12),
    ] {
        let want = reference_counts(all, today);
        assert!(
            want.iter().any(|v| v.overdue_now > 0),
            "overdue cases exist"
        );
        assert!(
            want.iter().any(|v| v.completed_on_time < v.completed),
            "late cases exist"
        );
        // The store is asked with the last working day up to the date, as the dashboard asks.
        let last = bianmin_engine::deadline::WorkCalendar::shipped().last_working_day(today);
        assert_eq!(store.village_counts(last).unwrap(), want, "{name} {today}");
        let overdue: Vec<String> = store
            .overdue_cases(last)
            .unwrap()
            .into_iter()
            .map(|c| c.case.id)
            .collect();
        let mut want: Vec<String> = all
            .iter()
            .filter(|c| clock_overdue(c, today))
            .map(|c| c.case.id.clone())
            .collect();
        want.sort();
        assert_eq!(overdue, want, "{name} {today}");
    }
    let phones = store.shared_phones(3).unwrap();
    assert!(!phones.is_empty(), "{name}: a shared phone is found");
    assert_eq!(phones[0].phone, "13800138000", "{name}: trimmed");
    assert_eq!(masked(phones), reference_phones(all), "{name}");
    assert!(store.shared_phones(100).unwrap().is_empty(), "{name}");
}

#[test]
fn county_figures_from_the_index_match_the_figures_over_every_case() {
    for b in backends() {
        let name = b.name;
        std::thread::spawn(move || {
            let mut all = cases();
            for c in &all {
                b.store.commit(Some(c), &[], vec![]).unwrap();
            }
            check(&*b.store, &all, name);
            // A case written again moves between the counts: finished now, late.
            let c = &mut all[2];
            assert_eq!(c.case.state, CaseState::Accepted);
            c.case.state = CaseState::Completed;
            c.case.deadline = Some(Utc::now().date_naive() - Duration::days(3));
            c.case.history.push(StateChange {
                from: CaseState::Accepted,
                to: CaseState::Completed,
                at: Utc::now(),
                by: "王镇办".into(),
                note: String::new(),
            });
            b.store.commit(Some(&all[2]), &[], vec![]).unwrap();
            check(&*b.store, &all, name);
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
        .unwrap_or_else(|_| panic!("store figures failed on {name}"));
    }
}

#[test]
fn the_index_of_an_older_store_gets_the_county_fields() {
    let all = cases();
    // Embedded: index entries in the earlier encoding (without the county fields) and the
    // earlier marker, as a data directory of the last release has them.
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
            // The old entry: everything up to and including `due`.
            // (and the county lists' flags, forward time and office after them).
            let extra = 4
                + 11
                + s.office.len()
                + [&s.device, &s.agent, &s.phone, &s.id_number]
                    .iter()
                    .map(|f| 2 + f.len())
                    .sum::<usize>();
            inbox.insert(k, &v[..v.len() - extra]).unwrap();
        }
        raw.open_tree("meta")
            .unwrap()
            .insert("inbox_indexed", &[])
            .unwrap();
        raw.flush().unwrap();
    }
    {
        let s = bianmin_town::store::SledStore::open(&db).unwrap();
        check(&s, &all, "sled, reindexed");
    }
    // PostgreSQL: a database at the schema before the county columns, its rows written then;
    // opening applies migration 8 and fills them from the records.
    let Some(pg) = test_db() else {
        return;
    };
    let url = pg.url.clone();
    std::thread::spawn(move || {
        drop(bianmin_town::store::PgStore::open_at(&url, 2, 7).unwrap());
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        for sc in &all {
            c.execute(
                // As a schema-7 server wrote them: the inbox columns of migration 6 included.
                "INSERT INTO cases (id, village, state, received_at, record, deadline, due)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &sc.case.id,
                    &sc.case.village,
                    &sc.case.state.as_str(),
                    &sc.received_at,
                    &postgres::types::Json(sc),
                    &sc.case.deadline,
                    &bianmin_town::store::inbox::due(sc),
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
