//! The store contract, run against every backend (sled always; PostgreSQL when the test server
//! is there, which `tools/test.sh` guarantees): atomic commits with one feed sequence and one
//! audit head under concurrency, exactly one rating of 100 racing, nonces once, loops in order,
//! sessions, lockouts, shared rate buckets and the administration records; and, for PostgreSQL,
//! the same guarantees across two stores (two servers) over one database.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use bianmin_engine::case::Case;
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::{AgentRef, Applicant, CaseSubmission, Decision, DecisionEvent};
use bianmin_town::audit::{verify_chain, AuditDraft};
use bianmin_town::bucket::RateConfig;
use bianmin_town::store::{
    BucketKind, FollowUpOutcome, Rating, Rectification, Step, StepError, StepKind, StoredCase,
    Supervisor, Ticket, TicketError, TownStore,
};
use chrono::{Duration, Utc};
use common::backends::{backends, open_pg, test_db};
use common::NANGUAN;

fn case(n: u32) -> StoredCase {
    let sub = CaseSubmission {
        id: format!("{NANGUAN}-20261128-AAAAAA-{n:04}"),
        version: 1,
        item: "V01".into(),
        village: NANGUAN.into(),
        applicant: Applicant {
            name: "张三".into(),
            id_number: "14042319800101001X".into(),
            phone: "13800138000".into(),
            address: String::new(),
        },
        answers: Default::default(),
        catalog_version: 0,
        materials: Vec::new(),
        responsible: AgentRef {
            device_id: "AAAAAA".into(),
            name: "李代办".into(),
            village: NANGUAN.into(),
        },
        sealed_at: Utc::now(),
    };
    StoredCase {
        case: Case::from_submission(&sub, Utc::now()),
        received_at: Utc::now(),
        versions: Default::default(),
        corrections: 0,
        town_check: Vec::new(),
        clock: Default::default(),
        pressed: Vec::new(),
        revision: Default::default(),
        county: None,
    }
}

fn event(c: &StoredCase) -> DecisionEvent {
    DecisionEvent {
        case_id: c.case.id.clone(),
        version: c.case.version,
        decision: Decision::Received,
        by: "town".into(),
        at: Utc::now(),
    }
}

fn rating(case_id: &str, level: u8) -> Rating {
    Rating {
        case_id: case_id.into(),
        village: NANGUAN.into(),
        level,
        efficiency: 3,
        quality: 3,
        attitude: 3,
        comment: String::new(),
        rated_at: Utc::now(),
        token_issued: Utc::now().date_naive(),
        completion: None,
        via: bianmin_town::store::RatingVia::Sms,
        added: None,
    }
}

/// Runs `f` on each backend in a thread of its own (the PostgreSQL client blocks).
fn each(f: impl Fn(&common::backends::Backend) + Send + Sync + 'static) {
    let f = Arc::new(f);
    for b in backends() {
        let f = f.clone();
        let name = b.name;
        std::thread::spawn(move || f(&b))
            .join()
            .unwrap_or_else(|_| panic!("store test failed on {name}"));
    }
}

/// Many threads commit at once: every feed entry gets its own sequence number, without gaps,
/// and the audit chain has one head and verifies.
fn concurrent_commits(stores: &[Arc<dyn TownStore>]) {
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for k in 0..5 {
                    let c = case((i * 100 + k) as u32);
                    let audit = AuditDraft::new("t", "submit", Some(&c.case.id), "");
                    store.commit(Some(&c), &[event(&c)], vec![audit]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = &stores[0];
    let (feed, more) = store.changes(&[NANGUAN.into()], 0, 1000).unwrap();
    assert!(!more);
    let seqs: Vec<u64> = feed.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=(threads * 5) as u64).collect::<Vec<_>>());
    let log = store.audit_log().unwrap();
    assert_eq!(log.len(), threads * 5);
    verify_chain(&log).unwrap();
    assert_eq!(store.cases().unwrap().len(), threads * 5);
    // The feed pages by cursor.
    let (page, more) = store.changes(&[NANGUAN.into()], 10, 5).unwrap();
    assert!(more);
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    assert!(store
        .changes(&["nowhere".into()], 0, 10)
        .unwrap()
        .0
        .is_empty());
}

#[test]
fn commits_keep_one_feed_sequence_and_one_audit_head_under_concurrency() {
    each(|b| concurrent_commits(std::slice::from_ref(&b.store)));
}

/// 100 threads race to rate one case: exactly one rating, with its case update, feed event,
/// loop and audit entry; the losers store nothing.
fn hundred_ratings(stores: &[Arc<dyn TownStore>]) {
    let c = case(1);
    stores[0].commit(Some(&c), &[], vec![]).unwrap();
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100u8)
        .map(|i| {
            let (store, barrier, c) = (
                stores[i as usize % stores.len()].clone(),
                barrier.clone(),
                c.clone(),
            );
            std::thread::spawn(move || {
                let r = rating(&c.case.id, i % 5 + 1);
                let l = Rectification {
                    case_id: c.case.id.clone(),
                    village: NANGUAN.into(),
                    level: r.level,
                    comment: format!("{i}"),
                    opened_at: Utc::now(),
                    deadline: Utc::now().date_naive(),
                    steps: Vec::new(),
                };
                let ev = DecisionEvent {
                    decision: Decision::Rated,
                    ..event(&c)
                };
                barrier.wait();
                store
                    .rate(
                        &r,
                        Some(&l),
                        &c,
                        &[ev],
                        vec![AuditDraft::new("resident", "rate", Some(&c.case.id), "")],
                    )
                    .unwrap()
            })
        })
        .collect();
    let won = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1);
    let s = &stores[0];
    assert_eq!(s.ratings().unwrap().len(), 1);
    assert_eq!(s.rectifications().unwrap().len(), 1);
    assert_eq!(s.changes(&[NANGUAN.into()], 0, 100).unwrap().0.len(), 1);
    assert_eq!(s.audit_log().unwrap().len(), 1);
    let r = s.rating(&c.case.id).unwrap().unwrap();
    assert_eq!(s.rectification(&c.case.id).unwrap().unwrap().level, r.level);
}

#[test]
fn exactly_one_of_100_concurrent_ratings_is_stored() {
    each(|b| hundred_ratings(std::slice::from_ref(&b.store)));
}

fn nonces_once(stores: &[Arc<dyn TownStore>]) {
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (stores[i % stores.len()].clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .remember_nonce("DEV1", "nonce-0123456789", 1000, 900)
                    .unwrap()
            })
        })
        .collect();
    let fresh = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|f| *f)
        .count();
    assert_eq!(fresh, 1, "a nonce passes once");
    let s = &stores[0];
    // Another device's same nonce is its own.
    assert!(s
        .remember_nonce("DEV2", "nonce-0123456789", 1000, 900)
        .unwrap());
    // Still remembered at its keep-until second; reusable after it, and pruned after it.
    assert!(!s
        .remember_nonce("DEV1", "nonce-0123456789", 1100, 1000)
        .unwrap());
    assert!(s
        .remember_nonce("DEV1", "nonce-0123456789", 1200, 1001)
        .unwrap());
    assert_eq!(s.prune_nonces(1201).unwrap(), 2);
    assert!(s
        .remember_nonce("DEV1", "nonce-0123456789", 1300, 1201)
        .unwrap());
}

#[test]
fn a_nonce_is_accepted_once_and_expires() {
    each(|b| nonces_once(std::slice::from_ref(&b.store)));
}

#[test]
fn loop_steps_come_in_order_with_their_audit_entries() {
    each(|b| {
        let s = &b.store;
        let c = case(2);
        // A 回访 says whether the resident was reached; no other step does.
        let step = |kind, notes: &str| Step {
            kind,
            by: "王镇办".into(),
            at: Utc::now(),
            notes: notes.into(),
            outcome: (kind == StepKind::FollowUp).then_some(FollowUpOutcome::Reached),
            follow_up_on: None,
            photos: Vec::new(),
        };
        let audit = || AuditDraft::new("staff", "step", Some(&c.case.id), "");
        assert!(matches!(
            s.add_step(&c.case.id, step(StepKind::Verify, "x"), audit()),
            Err(StepError::NotFound)
        ));
        let l = Rectification {
            case_id: c.case.id.clone(),
            village: NANGUAN.into(),
            level: 1,
            comment: "慢".into(),
            opened_at: Utc::now(),
            deadline: Utc::now().date_naive(),
            steps: Vec::new(),
        };
        assert!(s
            .rate(&rating(&c.case.id, 1), Some(&l), &c, &[], vec![])
            .unwrap());
        assert!(matches!(
            s.add_step(&c.case.id, step(StepKind::Rectify, "x"), audit()),
            Err(StepError::OutOfOrder { .. })
        ));
        assert!(matches!(
            s.add_step(&c.case.id, step(StepKind::Verify, "  "), audit()),
            Err(StepError::Empty)
        ));
        let verify_with_outcome = Step {
            outcome: Some(FollowUpOutcome::Unreachable),
            ..step(StepKind::Verify, "x")
        };
        assert!(matches!(
            s.add_step(&c.case.id, verify_with_outcome, audit()),
            Err(StepError::Outcome)
        ));
        for k in [StepKind::Verify, StepKind::Rectify] {
            s.add_step(&c.case.id, step(k, "done"), audit()).unwrap();
        }
        let silent_follow_up = Step {
            outcome: None,
            ..step(StepKind::FollowUp, "x")
        };
        assert!(matches!(
            s.add_step(&c.case.id, silent_follow_up, audit()),
            Err(StepError::Outcome)
        ));
        assert!(!s.rectification(&c.case.id).unwrap().unwrap().fed_back());
        s.add_step(&c.case.id, step(StepKind::FollowUp, "done"), audit())
            .unwrap();
        assert!(matches!(
            s.add_step(&c.case.id, step(StepKind::FollowUp, "again"), audit()),
            Err(StepError::Closed)
        ));
        let stored = s.rectification(&c.case.id).unwrap().unwrap();
        assert!(stored.is_closed());
        // The outcome survives the backend's storage.
        assert_eq!(stored.steps[2].outcome, Some(FollowUpOutcome::Reached));
        assert!(stored.fed_back());
        assert_eq!(
            s.audit_log().unwrap().len(),
            3,
            "one audit entry per recorded step"
        );
        verify_chain(&s.audit_log().unwrap()).unwrap();
    });
}

#[test]
fn sessions_lockouts_and_rate_buckets_are_stored() {
    each(|b| {
        let s = &b.store;
        let now = Utc::now();
        s.create_session("h1", "张科长", now + Duration::hours(8))
            .unwrap();
        s.create_session("h2", "李科长", now - Duration::seconds(1))
            .unwrap();
        assert_eq!(s.session("h1", now).unwrap().as_deref(), Some("张科长"));
        assert_eq!(s.session("h2", now).unwrap(), None, "expired");
        assert_eq!(s.session("h1", now + Duration::hours(9)).unwrap(), None);
        s.end_session("h1").unwrap();
        assert_eq!(s.session("h1", now).unwrap(), None);

        assert_eq!(s.phone_failures("c1").unwrap(), 0);
        for n in 1..=3 {
            assert_eq!(s.phone_failed("c1").unwrap(), n);
        }
        assert_eq!(s.phone_failures("c1").unwrap(), 3);
        assert_eq!(s.phone_failures("c2").unwrap(), 0);

        let c = RateConfig {
            burst: 2.0,
            per_second: 0.5,
        };
        let t = 1_800_000_000.0;
        let take = |client: &str, at: f64| s.take_token(BucketKind::Public, client, c, at).unwrap();
        assert_eq!(take("a", t), Ok(()));
        assert_eq!(take("a", t), Ok(()));
        assert_eq!(take("a", t), Err(2));
        assert_eq!(take("b", t), Ok(()), "buckets are per client");
        assert_eq!(
            s.take_token(BucketKind::Enrolment, "a", c, t).unwrap(),
            Ok(()),
            "and per kind"
        );
        s.give_back_token(BucketKind::Public, "a", c).unwrap();
        assert_eq!(take("a", t), Ok(()));
        assert_eq!(take("a", t + 2.0), Ok(()));
        assert_eq!(take("a", t + 2.0), Err(2));
    });
}

#[test]
fn administration_records_are_stored() {
    each(|b| {
        let a = &b.admin;
        let now = Utc::now();
        let t = Ticket {
            role: DeviceRole::Agent,
            village: Some(NANGUAN.into()),
            town: "140423100".into(),
            expires_at: now + Duration::minutes(10),
        };
        let code = a.issue_ticket(&t).unwrap();
        // Of 10 racing redemptions one wins.
        let barrier = Arc::new(Barrier::new(10));
        let wins = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let (a, barrier, code) = (a.clone(), barrier.clone(), code.clone());
                    sc.spawn(move || {
                        barrier.wait();
                        a.redeem_ticket(&code.to_lowercase(), now).unwrap().is_ok()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .filter(|w| *w)
                .count()
        });
        assert_eq!(wins, 1);
        assert_eq!(
            a.redeem_ticket(&code, now).unwrap(),
            Err(TicketError::Unknown)
        );
        a.restore_ticket(&code).unwrap();
        assert_eq!(a.redeem_ticket(&code, now).unwrap(), Ok(t.clone()));
        let late = a.issue_ticket(&t).unwrap();
        assert_eq!(
            a.redeem_ticket(&late, now + Duration::minutes(11)).unwrap(),
            Err(TicketError::Expired)
        );

        assert!(!a.is_revoked("DEV1").unwrap());
        a.revoke("DEV1").unwrap();
        a.revoke("DEV1").unwrap();
        assert!(a.is_revoked("DEV1").unwrap());

        assert!(a.supervisor("张科长").unwrap().is_none());
        let sup = Supervisor {
            name: "张科长".into(),
            password_hash: "x".into(),
            created_at: now,
        };
        a.put_supervisor(&sup).unwrap();
        a.put_supervisor(&Supervisor {
            password_hash: "y".into(),
            ..sup
        })
        .unwrap();
        assert_eq!(a.supervisor("张科长").unwrap().unwrap().password_hash, "y");

        let k = a.server_key().unwrap();
        assert_eq!(
            a.server_key().unwrap().to_bytes(),
            k.to_bytes(),
            "the key is kept"
        );
    });
}

#[test]
fn the_inbox_query_returns_a_towns_cases_oldest_first() {
    each(|b| {
        let s = &b.store;
        let mut ids = Vec::new();
        for n in 0..5 {
            let mut c = case(n);
            c.received_at = Utc::now() - Duration::minutes(10 - n as i64);
            ids.push(c.case.id.clone());
            s.commit(Some(&c), &[], vec![]).unwrap();
        }
        let got: Vec<String> = s
            .cases_of(&[NANGUAN.into()])
            .unwrap()
            .into_iter()
            .map(|c| c.case.id)
            .collect();
        assert_eq!(got, ids);
        assert!(s.cases_of(&["140423108201".into()]).unwrap().is_empty());
    });
}

/// The cases of the inbox tests: two villages, states and deadlines mixed, two received at the
/// same moment (the case number breaks the tie).
fn inbox_cases() -> Vec<StoredCase> {
    use bianmin_protocol::CaseState;
    let base = Utc::now() - Duration::days(30);
    let day = |n: i64| (Utc::now() - Duration::days(20) + Duration::days(n)).date_naive();
    (0..23u32)
        .map(|n| {
            let mut c = case(n);
            if n % 4 == 3 {
                c.case.village = "140423100202".into();
            }
            c.received_at = base + Duration::minutes(if n == 7 { 6 } else { n as i64 });
            if n % 5 == 1 {
                c.case.applicant.name = "王秀英".into();
            }
            (c.case.state, c.case.deadline) = match n % 6 {
                0 => (CaseState::Received, None),
                1 | 2 => (CaseState::Accepted, Some(day((n as i64 * 7) % 40))),
                3 => (CaseState::CorrectionRequested, Some(day(3))),
                4 => (CaseState::Completed, Some(day(1))),
                _ => (CaseState::Forwarded, Some(day(n as i64))),
            };
            c
        })
        .collect()
}

/// Every page of `order` walked through the store, `limit` at a time; checks each page's total.
fn walk(
    s: &dyn TownStore,
    f: &bianmin_town::store::inbox::InboxFilter,
    order: bianmin_town::store::inbox::InboxOrder,
    limit: usize,
    total: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.inbox(f, order, after.as_ref(), limit).unwrap();
        assert_eq!(page.total as usize, total, "{order:?}");
        assert!(page.cases.len() <= limit);
        seen.extend(page.cases.into_iter().map(|c| c.case.id));
        match page.next {
            Some(n) => after = Some(n),
            None => return seen,
        }
    }
}

#[test]
fn inbox_pages_follow_each_order_and_filter_through_the_index() {
    use bianmin_protocol::CaseState;
    use bianmin_town::store::inbox::{InboxFilter, InboxOrder};
    each(|b| {
        let s = &*b.store;
        let all = inbox_cases();
        for c in &all {
            s.commit(Some(c), &[], vec![]).unwrap();
        }
        let today = Utc::now().date_naive();
        let villages = vec![NANGUAN.to_string(), "140423100202".to_string()];
        let filters = [
            InboxFilter {
                villages: villages.clone(),
                today,
                ..Default::default()
            },
            InboxFilter {
                villages: vec![NANGUAN.into()],
                today,
                ..Default::default()
            },
            InboxFilter {
                villages: villages.clone(),
                state: Some(CaseState::Accepted),
                today,
                ..Default::default()
            },
            InboxFilter {
                villages: villages.clone(),
                overdue: Some(true),
                today,
                ..Default::default()
            },
            InboxFilter {
                villages: villages.clone(),
                overdue: Some(false),
                search: Some("秀英".into()),
                today,
                ..Default::default()
            },
            InboxFilter {
                villages: villages.clone(),
                search: Some("-0012".into()),
                today,
                ..Default::default()
            },
            InboxFilter {
                villages: vec![],
                today,
                ..Default::default()
            },
        ];
        for f in &filters {
            // The reference: the engine's own rules over every case, sorted here.
            let mut want: Vec<&StoredCase> = all
                .iter()
                .filter(|c| f.villages.contains(&c.case.village))
                .filter(|c| f.state.is_none_or(|st| c.case.state == st))
                .filter(|c| f.overdue.is_none_or(|o| c.case.is_overdue(today) == o))
                .filter(|c| {
                    f.search
                        .as_deref()
                        .is_none_or(|q| c.case.id.contains(q) || c.case.applicant.name.contains(q))
                })
                .collect();
            want.sort_by_key(|c| (c.received_at, c.case.id.clone()));
            let ids = |v: &[&StoredCase]| v.iter().map(|c| c.case.id.clone()).collect::<Vec<_>>();
            let oldest = ids(&want);
            let newest: Vec<String> = oldest.iter().rev().cloned().collect();
            want.sort_by_key(|c| {
                (
                    c.case.deadline.is_none(),
                    c.case.deadline,
                    c.received_at,
                    c.case.id.clone(),
                )
            });
            let deadline = ids(&want);
            for limit in [1, 4, 50] {
                let n = oldest.len();
                assert_eq!(
                    walk(s, f, InboxOrder::Oldest, limit, n),
                    oldest,
                    "{} {f:?}",
                    b.name
                );
                assert_eq!(
                    walk(s, f, InboxOrder::Newest, limit, n),
                    newest,
                    "{} {f:?}",
                    b.name
                );
                assert_eq!(
                    walk(s, f, InboxOrder::Deadline, limit, n),
                    deadline,
                    "{} {f:?}",
                    b.name
                );
            }
        }
        // The filters really select: none of them is trivially everything or nothing.
        assert_eq!(walk(s, &filters[0], InboxOrder::Oldest, 50, 23).len(), 23);
        for f in &filters[1..6] {
            let n = s.inbox(f, InboxOrder::Oldest, None, 50).unwrap().total;
            assert!(n > 0 && n < 23, "{} {f:?}: {n}", b.name);
        }
        // A case changed later moves with its new state and deadline.
        let mut c = all[0].clone();
        c.case.state = CaseState::Accepted;
        // Earlier than every other deadline: first of the overdue cases by deadline.
        c.case.deadline = Some(today - Duration::days(60));
        s.commit(Some(&c), &[], vec![]).unwrap();
        let overdue = s.inbox(&filters[3], InboxOrder::Deadline, None, 1).unwrap();
        assert_eq!(overdue.cases[0].case.id, c.case.id, "{}", b.name);
    });
}

#[test]
fn an_inbox_index_is_built_for_cases_stored_before_it() {
    use bianmin_town::store::inbox::{InboxFilter, InboxOrder};
    let filter = InboxFilter {
        villages: vec![NANGUAN.into(), "140423100202".into()],
        today: Utc::now().date_naive(),
        ..Default::default()
    };
    // Embedded: the index tree and its marker removed, as in a data directory of the last release.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    {
        let s = bianmin_town::store::SledStore::open(&db).unwrap();
        for c in inbox_cases() {
            s.commit(Some(&c), &[], vec![]).unwrap();
        }
    }
    {
        let raw = sled::open(&db).unwrap();
        raw.drop_tree("inbox").unwrap();
        raw.open_tree("meta")
            .unwrap()
            .remove("inbox_indexed")
            .unwrap();
        raw.flush().unwrap();
    }
    let s = bianmin_town::store::SledStore::open(&db).unwrap();
    assert_eq!(walk(&s, &filter, InboxOrder::Deadline, 7, 23).len(), 23);
    // PostgreSQL: the columns dropped and the migration forgotten, as in a database of the last
    // release; opening applies it again and fills the columns from the records.
    let Some(pg) = test_db() else {
        return;
    };
    let url = pg.url.clone();
    std::thread::spawn(move || {
        let before = bianmin_town::store::PgStore::INBOX_SCHEMA_VERSION - 1;
        drop(bianmin_town::store::PgStore::open_at(&url, 2, before).unwrap());
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        for sc in inbox_cases() {
            c.execute(
                "INSERT INTO cases (id, village, state, received_at, record) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &sc.case.id,
                    &sc.case.village,
                    &sc.case.state.as_str(),
                    &sc.received_at,
                    &postgres::types::Json(&sc),
                ],
            )
            .unwrap();
        }
        let s = open_pg(&url);
        assert_eq!(walk(&*s, &filter, InboxOrder::Deadline, 7, 23).len(), 23);
        let overdue = InboxFilter {
            overdue: Some(true),
            ..filter.clone()
        };
        let want = inbox_cases()
            .iter()
            .filter(|c| c.case.is_overdue(filter.today))
            .count();
        assert!(want > 0);
        assert_eq!(s.inbox(&overdue, InboxOrder::Oldest, None, 50).unwrap().total as usize, want);
        drop(pg);
    })
    .join()
    .unwrap();
}

/// Two stores over one PostgreSQL database behave as one: the guarantees above hold across them,
/// and what one writes (sessions, buckets, tickets) the other sees.
#[test]
fn two_postgres_stores_over_one_database_agree() {
    let Some(db) = test_db() else {
        eprintln!("no PostgreSQL test server (BIANMIN_TEST_DATABASE_URL): sled cannot be shared, nothing to test");
        return;
    };
    let url = db.url.clone();
    std::thread::spawn(move || {
        let (one, two) = (open_pg(&url), open_pg(&url));
        let stores: Vec<Arc<dyn TownStore>> = vec![one.clone(), two.clone()];
        concurrent_commits(&stores);
        let ids: BTreeSet<String> = one
            .cases()
            .unwrap()
            .into_iter()
            .map(|c| c.case.id)
            .collect();
        assert_eq!(ids.len(), 80);
        one.create_session("h", "张科长", Utc::now() + Duration::hours(1))
            .unwrap();
        assert_eq!(
            two.session("h", Utc::now()).unwrap().as_deref(),
            Some("张科长")
        );
        let c = RateConfig {
            burst: 1.0,
            per_second: 1e-6,
        };
        assert_eq!(
            one.take_token(BucketKind::Enrolment, "x", c, 1.0).unwrap(),
            Ok(())
        );
        assert!(two
            .take_token(BucketKind::Enrolment, "x", c, 1.0)
            .unwrap()
            .is_err());
        use bianmin_town::store::AdminStore;
        assert_eq!(
            one.server_key().unwrap().to_bytes(),
            two.server_key().unwrap().to_bytes()
        );
    })
    .join()
    .unwrap();
    let url = db.url.clone();
    std::thread::spawn(move || {
        // The rating and nonce races across both stores on a fresh database.
        let db2 = test_db().unwrap();
        let (one, two) = (open_pg(&db2.url), open_pg(&db2.url));
        hundred_ratings(&[one.clone(), two.clone()]);
        nonces_once(&[one, two]);
        drop(url);
    })
    .join()
    .unwrap();
}

/// Two servers change one case from copies read at the same revision: a 催办 on one and a
/// county handling on the other change no timeline step, yet the second write is refused as
/// stale, and after reading again both changes are kept.
#[test]
fn a_change_from_a_copy_another_server_replaced_is_refused() {
    let Some(db) = test_db() else {
        eprintln!("no PostgreSQL test server (BIANMIN_TEST_DATABASE_URL): sled cannot be shared, nothing to test");
        return;
    };
    let url = db.url.clone();
    std::thread::spawn(move || {
        let (one, two) = (open_pg(&url), open_pg(&url));
        let c = case(1);
        one.commit(Some(&c), &[], vec![]).unwrap();
        let id = c.case.id.clone();
        let mut on_one = one.case(&id).unwrap().unwrap();
        let mut on_two = two.case(&id).unwrap().unwrap();
        assert_eq!(on_one.revision.0, 1);
        on_one.pressed.push(bianmin_town::store::Press {
            by: "县督办".into(),
            at: Utc::now(),
            note: "请加快办理".into(),
            deadline: Utc::now().date_naive(),
        });
        one.commit(Some(&on_one), &[], vec![]).unwrap();
        on_two.town_check = vec!["缺少户口簿".into()];
        match two.commit(Some(&on_two), &[], vec![]) {
            Err(bianmin_town::store::StoreError::Conflict(stale)) => assert_eq!(stale, id),
            other => panic!("a stale write must be refused, got {other:?}"),
        }
        // Nothing of the refused write is stored; read again, the change goes through.
        let mut again = two.case(&id).unwrap().unwrap();
        assert_eq!(again.pressed.len(), 1);
        assert!(again.town_check.is_empty());
        again.town_check = vec!["缺少户口簿".into()];
        two.commit(Some(&again), &[], vec![]).unwrap();
        let last = one.case(&id).unwrap().unwrap();
        assert_eq!((last.pressed.len(), last.town_check.len()), (1, 1));
        assert_eq!(last.revision.0, 3);
    })
    .join()
    .unwrap();
}

/// A second server starting on a migrated database applies nothing twice, and one newer than
/// the server is refused rather than misread.
#[test]
fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some(db) = test_db() else {
        return;
    };
    let url = db.url.clone();
    std::thread::spawn(move || {
        let barrier = Arc::new(Barrier::new(4));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    bianmin_town::store::PgStore::open(&url, 2).map(|_| ())
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap().unwrap();
        }
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let n: i64 = c
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, bianmin_town::store::PgStore::MIGRATION_COUNT as i64);
        c.execute("INSERT INTO schema_migrations (version) VALUES (9999)", &[])
            .unwrap();
        let e = bianmin_town::store::PgStore::open(&url, 2)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("newer"), "{e}");
    })
    .join()
    .unwrap();
}

#[test]
fn attachment_records_say_size_and_which_villages_sent_it() {
    each(|b| {
        let s = &b.store;
        let sha = "ab".repeat(32);
        assert_eq!(s.attachment_size(&sha).unwrap(), None);
        assert!(!s.held_by(&sha, NANGUAN).unwrap());
        s.add_attachment(&sha, 1234, NANGUAN).unwrap();
        s.add_attachment(&sha, 1234, NANGUAN).unwrap();
        assert_eq!(s.attachment_size(&sha).unwrap(), Some(1234));
        assert!(s.held_by(&sha, NANGUAN).unwrap());
        assert!(!s.held_by(&sha, "140423101201").unwrap(), "per village");
    });
}

/// A data directory of the earlier layout (ratings in `feedback-db`, holders as files) opens
/// with everything in the one store.
#[test]
fn an_embedded_town_of_the_earlier_layout_is_imported_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let sha = "cd".repeat(32);
    std::fs::create_dir_all(dir.path().join("attachments/cd")).unwrap();
    std::fs::write(dir.path().join("attachments/cd").join(&sha), b"12345").unwrap();
    std::fs::create_dir_all(dir.path().join("holders/cd")).unwrap();
    std::fs::write(
        dir.path()
            .join("holders/cd")
            .join(format!("{sha}.{NANGUAN}")),
        b"",
    )
    .unwrap();
    let r = rating("140423100201-20261128-AAAAAA-0001", 2);
    {
        let old = sled::open(dir.path().join("feedback-db")).unwrap();
        old.open_tree("ratings")
            .unwrap()
            .insert(r.case_id.as_bytes(), serde_json::to_vec(&r).unwrap())
            .unwrap();
        old.flush().unwrap();
    }
    let s = bianmin_town::SledStore::open(&dir.path().join("db")).unwrap();
    assert_eq!(s.rating(&r.case_id).unwrap(), Some(r));
    assert_eq!(s.attachment_size(&sha).unwrap(), Some(5));
    assert!(s.held_by(&sha, NANGUAN).unwrap());
    assert!(dir.path().join("feedback-db.imported").exists());
    assert!(dir.path().join("holders.imported").exists());
}

#[test]
fn staff_accounts_are_stored_replaced_and_listed_per_town() {
    use bianmin_town::store::StaffAccount;
    each(|b| {
        let a = &b.admin;
        assert!(a.staff_account("140423100", "王芳").unwrap().is_none());
        assert!(a.staff_accounts().unwrap().is_empty());
        let wang = StaffAccount {
            town: "140423100".into(),
            name: "王芳".into(),
            pin_hash: "h1".into(),
            created_at: Utc::now(),
            active: true,
        };
        a.put_staff(&wang).unwrap();
        // The same name in another town is another person.
        a.put_staff(&StaffAccount {
            town: "140423101".into(),
            ..wang.clone()
        })
        .unwrap();
        a.put_staff(&StaffAccount {
            name: "李强".into(),
            ..wang.clone()
        })
        .unwrap();
        a.put_staff(&StaffAccount {
            pin_hash: "h2".into(),
            active: false,
            ..wang.clone()
        })
        .unwrap();
        let got = a.staff_account("140423100", "王芳").unwrap().unwrap();
        assert_eq!((got.pin_hash.as_str(), got.active), ("h2", false));
        let all: Vec<(String, String)> = a
            .staff_accounts()
            .unwrap()
            .into_iter()
            .map(|s| (s.town, s.name))
            .collect();
        assert_eq!(all.len(), 3, "{}", b.name);
        for want in [
            ("140423100", "王芳"),
            ("140423100", "李强"),
            ("140423101", "王芳"),
        ] {
            assert!(
                all.contains(&(want.0.to_string(), want.1.to_string())),
                "{}: {want:?}",
                b.name
            );
        }
    });
}
