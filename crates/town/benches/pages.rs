//! Page benchmark (not a test): latency of the town inbox and the county pages with 10,000 and
//! 100,000 cases stored, on sled and (with `BIANMIN_BENCH_DATABASE_URL`) PostgreSQL, against the
//! old way of reading every case of the villages and filtering and sorting in memory.
//!
//! Run: `cargo bench -p bianmin-town --bench pages` (optional args: case counts, default
//! `10000 100000`; `--no-baselines` leaves out the old ways, which take minutes at 100,000). For PostgreSQL, from a script: `set -euo pipefail; . tools/services.sh;
//! BIANMIN_BENCH_DATABASE_URL=$BIANMIN_TEST_DATABASE_URL cargo bench -p bianmin-town --bench pages`.
//!
//! The cases are spread over every village of every town of the county, in every state a town
//! holds, received over the last 120 days; accepted and forwarded ones carry deadlines, about a
//! third of them passed (overdue); a fifth of the finished ones are rated. They are written by the
//! store's own import path (`import`, the one `restore` and `migrate` use), so the rows and the
//! index entries are what the server's write path produces. Every page is then requested through
//! the real router (axum `oneshot`, signed requests and session cookies as a browser or a tablet
//! sends them); each figure is the median and the 99th percentile of at least five requests (at
//! most 40, or two seconds' worth).
//!
//! Figures (2026-12-01, the 2-core machine shared with other builds: load average 7–8 during the
//! run, so absolute times are pessimistic; release build; PostgreSQL 15 from `tools/services.sh`,
//! fsync off, sled fsyncs). p50 / p99 (of 5–40 requests). A staff inbox request also commits an
//! audit entry (`view_inbox`). The staff's town holds a third of the cases (3,334 and 33,334).
//!
//! | page | sled 10k | sled 100k | PostgreSQL 10k | PostgreSQL 100k |
//! |---|---|---|---|---|
//! | inbox page, oldest first | 31 ms / 72 ms | 629 ms / 828 ms | 9 ms / 13 ms | 162 ms / 290 ms |
//! | inbox page, newest first | 27 ms / 64 ms | 270 ms / 368 ms | 10 ms / 14 ms | 149 ms / 249 ms |
//! | inbox page, nearest deadline | 36 ms / 78 ms | 352 ms / 387 ms | 12 ms / 19 ms | 167 ms / 257 ms |
//! | inbox page, overdue only | 28 ms / 128 ms | 284 ms / 357 ms | 6 ms / 11 ms | 68 ms / 168 ms |
//! | inbox page, name search | 34 ms / 68 ms | 188 ms / 323 ms | 8 ms / 21 ms | 144 ms / 434 ms |
//! | inbox deep page (cursor) | 28 ms / 84 ms | 212 ms / 289 ms | 14 ms / 31 ms | 173 ms / 191 ms |
//! | baseline: whole inbox (/v1/inbox) | 407 ms / 491 ms | 76.39 s / 93.37 s | 270 ms / 282 ms | 3.09 s / 50.28 s |
//! | baseline: overdue page from cases_of | 101 ms / 172 ms | 1.55 s / 2.03 s | 77 ms / 110 ms | 978 ms / 1.18 s |
//! | baseline: county figures from every case | 136 ms / 266 ms | 1.90 s / 1.97 s | 222 ms / 361 ms | 3.03 s / 3.46 s |
//! | county figures from the index (store) | 72 ms / 201 ms | 1.51 s / 1.68 s | 82 ms / 148 ms | 1.11 s / 1.22 s |
//! | county dashboard (/county) | 307 ms / 494 ms | 1.77 s / 2.06 s | 158 ms / 350 ms | 1.82 s / 2.76 s |
//! | county supervision (/county/supervision) | 110 ms / 221 ms | 1.60 s / 1.71 s | 329 ms / 538 ms | 3.08 s / 3.74 s |
//! | county roster (/county/roster) | 93 ms / 476 ms | 1.34 s / 1.43 s | 201 ms / 289 ms | 2.75 s / 3.37 s |
//! | county export (/county/export.csv) | 73 ms / 145 ms | 1.85 s / 2.07 s | 129 ms / 253 ms | 2.05 s / 3.11 s |
//! | county office inbox (/county/inbox) | 90 ms / 254 ms | 1.36 s / 1.43 s | 199 ms / 292 ms | 2.86 s / 3.22 s |
//!
//! Ratios of p50 (old way / index): whole inbox / first page 13× and 121× on sled (10k, 100k),
//! 30× and 19× on PostgreSQL; the overdue page from `cases_of` / through the index 3.6× and 5.4× on
//! sled, 14× and 14× on PostgreSQL; the dashboard's figures from every case / from the index 1.9×
//! and 1.3× on sled, 2.7× and 2.7× on PostgreSQL. What remains of the figures' time at 100k is the
//! overdue list, which reads each overdue case whole (18% of these cases are overdue: 18,000 rows
//! on the page), and on sled decoding every summary (three passes). `/county/supervision`,
//! `/county/roster`, `/county/export.csv`'s loops and `/county/inbox` still read every case.
//!
//! After the county lists moved to their own index (sled `county_ix` keys and `ix/` counters,
//! PostgreSQL migration 9), 2026-12-01, 100,000 cases, `-- 100000 --no-baselines`, release build,
//! the bench niced under a concurrent CI run on the same 2 cores (so the slow rows are pessimistic).
//! p50 / p99; the "before" column is the table above.
//!
//! | page | sled before | sled after | PostgreSQL before | PostgreSQL after |
//! |---|---|---|---|---|
//! | inbox page, oldest first | 629 ms | 2.4 ms / 6.6 ms | 162 ms | 90 ms / 131 ms |
//! | inbox page, newest first | 270 ms | 2.0 ms / 4.1 ms | 149 ms | 100 ms / 105 ms |
//! | inbox page, nearest deadline | 352 ms | 318 ms / 354 ms | 167 ms | 88 ms / 109 ms |
//! | inbox page, overdue only | 284 ms | 248 ms / 302 ms | 68 ms | 42 ms / 58 ms |
//! | inbox page, name search | 188 ms | 276 ms / 291 ms | 144 ms | 109 ms / 137 ms |
//! | inbox deep page (cursor) | 212 ms | 2.6 ms / 5.1 ms | 173 ms | 132 ms / 150 ms |
//! | county dashboard (/county) | 1.77 s | 905 ms / 969 ms | 1.82 s | 816 ms / 855 ms |
//! | county supervision | 1.60 s | 1.8 ms / 3.6 ms | 3.08 s | 2.5 ms / 3.2 ms |
//! | county roster | 1.34 s | 0.1 ms / 1.4 ms | 2.75 s | 118 ms / 154 ms |
//! | county export (csv) | 1.85 s | 820 ms / 832 ms | 2.05 s | 812 ms / 910 ms |
//! | county office inbox | 1.36 s | 2.5 ms / 12.8 ms | 2.86 s | 2.6 ms / 3.8 ms |
//!
//! On sled a filtered inbox page (state, overdue, search) or one in deadline order still decodes
//! every summary; `/county` and its export still go over every summary and read the rated cases.

#[path = "../tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;
use bianmin_engine::case::{Case, StateChange};
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::CaseState;
use bianmin_town::divisions::Divisions;
use bianmin_town::store::inbox::InboxCursor;
use bianmin_town::store::{
    CountyHandling, PgStore, Rating, RatingVia, SledStore, Snapshot, StoredCase, TownStore,
};
use bianmin_town::AppState;
use chrono::{Duration as Days, Utc};
use common::*;

/// The states a town holds a case in, each as often as the others.
const STATES: [CaseState; 9] = [
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

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "郭", "申",
];
const GIVEN: [&str; 16] = [
    "秀英", "桂英", "建国", "志强", "海燕", "丽娟", "国庆", "玉兰", "红梅", "小军", "文斌", "淑芬",
    "春生", "德胜", "翠花", "永福",
];

/// `n` cases (and the ratings of a fifth of the finished ones) over every village of the county.
fn town_of(divisions: &Divisions, n: usize) -> Snapshot {
    let villages: Vec<String> = divisions
        .towns
        .iter()
        .flat_map(|t| t.villages.iter().map(|v| v.code.clone()))
        .collect();
    assert!(!villages.is_empty(), "the county lists villages");
    let agents: Vec<Device> = villages.iter().map(|v| Device::fresh(v)).collect();
    let template = agents[0].submission("x", 1, &[b"page one".as_slice(), b"page two"]);
    let now = Utc::now();
    let mut snap = Snapshot::default();
    for i in 0..n {
        let v = i % villages.len();
        let agent = &agents[v];
        let mut sub = template.clone();
        sub.id = format!("{}-2026{:04}-{}-{:05}", villages[v], i % 1231, agent.id, i);
        sub.village = villages[v].clone();
        sub.responsible.device_id = agent.id.clone();
        sub.responsible.village = villages[v].clone();
        sub.applicant.name = format!(
            "{}{}",
            SURNAMES[i % SURNAMES.len()],
            GIVEN[(i / SURNAMES.len()) % GIVEN.len()]
        );
        sub.applicant.id_number = format!("1404231{:010}{}", 9_000_000_000u64 + i as u64, i % 10);
        sub.applicant.phone = format!("139{:08}", (i * 7919) % 100_000_000);
        // Received over the last 120 days, a few seconds apart within a day.
        let received_at = now - Days::minutes(((i * 104_729) % (120 * 24 * 60)) as i64 + 1);
        let mut case = Case::from_submission(&sub, received_at);
        let state = STATES[(i / villages.len()) % STATES.len()];
        let change = |to: CaseState, at| StateChange {
            from: CaseState::Received,
            to,
            at,
            by: "王镇办".into(),
            note: String::new(),
        };
        if !matches!(state, CaseState::Uploaded | CaseState::Received) {
            case.history.push(change(CaseState::Accepted, received_at));
        }
        // 20 calendar days for the promised working days: cases received over 20 days ago and
        // still open are overdue.
        if matches!(
            state,
            CaseState::Accepted
                | CaseState::Forwarded
                | CaseState::Completed
                | CaseState::Delivered
                | CaseState::Rated
        ) {
            case.deadline = Some((received_at + Days::days(20)).date_naive());
        }
        let mut county = None;
        if state == CaseState::Forwarded {
            county = Some(CountyHandling {
                receiver: if i % 2 == 0 {
                    "approval_centre"
                } else {
                    "justice"
                }
                .into(),
                receiver_name: "县行政审批局".into(),
                forwarded_at: received_at + Days::hours(3),
                forwarded_by: "王镇办".into(),
                note: "请县里审批".into(),
                accepted: None,
                deadline: None,
                request: None,
                decided: None,
            });
        }
        if matches!(
            state,
            CaseState::Completed | CaseState::Delivered | CaseState::Rated
        ) {
            // Most on time, some a few days late.
            let took = Days::days((i % 26) as i64);
            case.history
                .push(change(CaseState::Completed, received_at + took));
        }
        case.state = state;
        if state == CaseState::Rated && i % 5 == 0 {
            snap.ratings.push(Rating {
                case_id: case.id.clone(),
                village: case.village.clone(),
                level: [5, 4, 3, 2, 1][(i / 5) % 5],
                efficiency: 5,
                quality: 4,
                attitude: 5,
                comment: String::new(),
                rated_at: received_at + Days::days(22),
                token_issued: received_at.date_naive(),
                completion: None,
                via: if i % 3 == 0 {
                    RatingVia::Receipt
                } else {
                    RatingVia::Sms
                },
                added: None,
            });
        }
        snap.cases.push(StoredCase {
            case,
            received_at,
            versions: Default::default(),
            corrections: 0,
            town_check: Vec::new(),
            clock: Default::default(),
            pressed: Vec::new(),
            county,
            revision: Default::default(),
        });
    }
    snap
}

/// p50 and p99 of `run` repeated: at least 5 times, then until 40 times or two seconds.
async fn measure<F, Fut>(mut run: F) -> (Duration, Duration, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (samples.len() < 40 && start.elapsed() < Duration::from_secs(2)) {
        let t0 = Instant::now();
        run().await;
        samples.push(t0.elapsed());
    }
    samples.sort();
    let n = samples.len();
    let p99 = samples[((n * 99).div_ceil(100)).max(1) - 1];
    (samples[n / 2], p99, n)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(uri: &str, fields: &[(&str, &str)]) -> axum::http::Request<axum::body::Body> {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    axum::http::Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body.join("&")))
        .unwrap()
}

fn cookie_of(resp: &axum::http::Response<axum::body::Body>) -> String {
    resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn off<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A GET that must answer 200.
async fn get_ok(r: &Router, req: axum::http::Request<axum::body::Body>) {
    let uri = req.uri().to_string();
    let (st, body) = send(r, req).await;
    assert_eq!(st, StatusCode::OK, "{uri}: {body}");
}

fn cookie_get(uri: &str, cookie: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(uri)
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap()
}

struct Row {
    what: &'static str,
    p50: Duration,
    p99: Duration,
    n: usize,
}

/// Writes `n` cases into an empty store through `import` (which opens the town on it), then
/// measures every page.
async fn pages(
    backend: &str,
    divisions: Arc<Divisions>,
    n: usize,
    baselines: bool,
    import: impl FnOnce(&Snapshot) -> AppState + Send + 'static,
) -> Vec<Row> {
    let d = divisions.clone();
    let snap = off(move || town_of(&d, n)).await;
    // The deep page starts halfway down the staff's town in the oldest-first order.
    let town_villages: Vec<String> = divisions
        .towns
        .iter()
        .find(|t| t.code == GUHAN)
        .unwrap()
        .villages
        .iter()
        .map(|v| v.code.clone())
        .collect();
    let mut mine: Vec<&StoredCase> = snap
        .cases
        .iter()
        .filter(|c| town_villages.contains(&c.case.village))
        .collect();
    mine.sort_by(|a, b| (a.received_at, &a.case.id).cmp(&(b.received_at, &b.case.id)));
    let deep = InboxCursor::after(mine[mine.len() / 2]).encode();
    let in_town = mine.len();
    let t0 = Instant::now();
    let state = off(move || import(&snap)).await;
    println!(
        "{backend}, {n} cases ({in_town} in the staff's town): loaded in {:.1?}",
        t0.elapsed()
    );

    let r = bianmin_town::app(state.clone());
    let st = state.clone();
    let code = off(move || {
        st.admin
            .issue_ticket(&bianmin_town::store::Ticket {
                role: DeviceRole::Staff,
                village: None,
                town: GUHAN.into(),
                expires_at: Utc::now() + chrono::Duration::minutes(10),
            })
            .unwrap()
    })
    .await;
    let staff = Device::fresh("");
    let req = bianmin_protocol::sync::EnrolRequest {
        code,
        device_id: staff.id.clone(),
        public_key: hex::encode(staff.key.verifying_key().to_bytes()),
        person: "王镇办".into(),
    };
    assert_eq!(
        send(&r, post_json("/v1/enrol", &req)).await.0,
        StatusCode::OK
    );

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
    })
    .await;
    let supervisor = cookie_of(
        &send_raw(
            &r,
            form(
                "/county/login",
                &[("name", "张科长"), ("password", &supervisor_pw)],
            ),
        )
        .await,
    );
    let office = cookie_of(
        &send_raw(
            &r,
            form(
                "/county/inbox/login",
                &[("name", "赵审批"), ("password", &office_pw)],
            ),
        )
        .await,
    );

    let mut rows = Vec::new();
    let search = format!("/v1/inbox/page?q={}", urlencode("秀英"));
    let deep_uri = format!("/v1/inbox/page?after={deep}");
    let inbox_pages: [(&'static str, &str); 6] = [
        ("inbox page, oldest first", "/v1/inbox/page?order=oldest"),
        ("inbox page, newest first", "/v1/inbox/page?order=newest"),
        (
            "inbox page, nearest deadline",
            "/v1/inbox/page?order=deadline",
        ),
        (
            "inbox page, overdue only",
            "/v1/inbox/page?overdue=true&order=deadline",
        ),
        ("inbox page, name search", &search),
        ("inbox deep page (cursor)", &deep_uri),
    ];
    for (what, uri) in inbox_pages {
        let (p50, p99, n) = measure(|| get_ok(&r, staff.get(uri))).await;
        rows.push(Row { what, p50, p99, n });
    }
    if !baselines {
        county_pages(&r, &supervisor, &office, &mut rows).await;
        return rows;
    }
    // The old way, twice: the whole-inbox route, and the store read it stood on (every case of
    // the town's villages, filtered and sorted in memory) for the overdue page.
    let (p50, p99, n) = measure(|| get_ok(&r, staff.get("/v1/inbox"))).await;
    rows.push(Row {
        what: "baseline: whole inbox (/v1/inbox)",
        p50,
        p99,
        n,
    });
    let store: Arc<dyn TownStore> = state.store.clone();
    let today = Utc::now().date_naive();
    let (p50, p99, n) = measure(|| {
        let (store, villages) = (store.clone(), town_villages.clone());
        async move {
            let page = off(move || {
                let mut all: Vec<StoredCase> = store
                    .cases_of(&villages)
                    .unwrap()
                    .into_iter()
                    .filter(|c| c.case.is_overdue(today))
                    .collect();
                all.sort_by_key(|c| (c.case.deadline, c.received_at, c.case.id.clone()));
                all.truncate(50);
                all
            })
            .await;
            assert!(!page.is_empty());
        }
    })
    .await;
    rows.push(Row {
        what: "baseline: overdue page from cases_of",
        p50,
        p99,
        n,
    });
    // The dashboard's figures the old way (every case read and parsed, then counted) and through
    // the store's index, both without the HTML.
    let divs = state.divisions();
    let (p50, p99, n) = measure(|| {
        let (store, divs) = (store.clone(), divs.clone());
        async move {
            off(move || {
                let cases = store.cases().unwrap();
                let ratings = store.ratings().unwrap();
                let loops = store.rectifications().unwrap();
                let f = bianmin_town::feedback::figures(&divs, &cases, &ratings, &loops, today);
                let phones = bianmin_town::warning_signs::shared_phones(&cases);
                let quick = bianmin_town::warning_signs::quick_ratings(&cases, &ratings);
                let overdue = cases.iter().filter(|c| c.case.is_overdue(today)).count();
                assert!(!f.is_empty() && overdue > 0);
                (phones.len(), quick.len())
            })
            .await;
        }
    })
    .await;
    rows.push(Row {
        what: "baseline: county figures from every case",
        p50,
        p99,
        n,
    });
    let (p50, p99, n) = measure(|| {
        let (store, divs) = (store.clone(), divs.clone());
        async move {
            off(move || {
                let counts = store.village_counts(today).unwrap();
                let ratings = store.ratings().unwrap();
                let loops = store.rectifications().unwrap();
                let f = bianmin_town::feedback::figures_of(&divs, &counts, &ratings, &loops, today);
                let phones = store.shared_phones(3).unwrap();
                let overdue = store.overdue_cases(today).unwrap();
                assert!(!f.is_empty() && !overdue.is_empty());
                phones.len()
            })
            .await;
        }
    })
    .await;
    rows.push(Row {
        what: "county figures from the index (store)",
        p50,
        p99,
        n,
    });
    county_pages(&r, &supervisor, &office, &mut rows).await;
    rows
}

/// The county pages, each requested through the router with its session cookie.
async fn county_pages(r: &Router, supervisor: &str, office: &str, rows: &mut Vec<Row>) {
    let county: [(&'static str, &str, &str); 5] = [
        ("county dashboard (/county)", "/county", supervisor),
        (
            "county supervision (/county/supervision)",
            "/county/supervision",
            supervisor,
        ),
        (
            "county roster (/county/roster)",
            "/county/roster",
            supervisor,
        ),
        (
            "county export (/county/export.csv)",
            "/county/export.csv",
            supervisor,
        ),
        (
            "county office inbox (/county/inbox)",
            "/county/inbox",
            office,
        ),
    ];
    for (what, uri, cookie) in county {
        let (p50, p99, n) = measure(|| get_ok(r, cookie_get(uri, cookie))).await;
        rows.push(Row { what, p50, p99, n });
    }
}

/// A fresh database on the benchmark's PostgreSQL server.
fn bench_db(admin_url: &str) -> String {
    let name = format!("bench_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut c = postgres::Client::connect(admin_url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap();
    let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let prefix = base.rsplit_once('/').unwrap().0;
    if query.is_empty() {
        format!("{prefix}/{name}")
    } else {
        format!("{prefix}/{name}?{query}")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    // `--no-baselines`: only the pages as served, not the old ways (minutes at 100,000 cases).
    let baselines = !std::env::args().any(|a| a == "--no-baselines");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg_url = std::env::var("BIANMIN_BENCH_DATABASE_URL").ok();
    let mut table = Vec::new();
    rt.block_on(async {
        // The county's divisions, from a town opened on the embedded catalog.
        let divisions = Town::new().state.divisions();
        for &n in &counts {
            {
                let dir = tempfile::tempdir().unwrap();
                let d = dir.path().to_path_buf();
                let rows = pages("sled", divisions.clone(), n, baselines, move |s| {
                    let store = Arc::new(SledStore::open(&d.join("db")).unwrap());
                    store.import(s).unwrap();
                    AppState::with_store(&d, store).unwrap()
                })
                .await;
                table.push(("sled", n, rows));
            }
            if let Some(url) = &pg_url {
                let dir = tempfile::tempdir().unwrap();
                let (u, d) = (url.clone(), dir.path().to_path_buf());
                let rows = pages("PostgreSQL", divisions.clone(), n, baselines, move |s| {
                    let pg = Arc::new(PgStore::open(&bench_db(&u), 8).unwrap());
                    pg.import(s).unwrap();
                    AppState::with_stores(&d, pg.clone(), pg).unwrap()
                })
                .await;
                table.push(("PostgreSQL", n, rows));
            }
        }
    });
    println!();
    println!("| store | cases | page | p50 | p99 | requests |");
    println!("|---|---|---|---|---|---|");
    for (backend, n, rows) in &table {
        for r in rows {
            println!(
                "| {backend} | {n} | {} | {} | {} | {} |",
                r.what,
                ms(r.p50),
                ms(r.p99),
                r.n
            );
        }
    }
    println!();
    println!("Ratios (baseline p50 / page p50):");
    for (backend, n, rows) in &table {
        let p50 = |w: &str| rows.iter().find(|r| r.what == w).map(|r| r.p50);
        let ratio = |a: &str, b: &str| match (p50(a), p50(b)) {
            (Some(a), Some(b)) => format!("{:.1}x", a.as_secs_f64() / b.as_secs_f64()),
            _ => "-".into(),
        };
        println!(
            "{backend} {n}: whole inbox / first page {}; cases_of overdue / indexed overdue page {}; figures from every case / from the index {}",
            ratio("baseline: whole inbox (/v1/inbox)", "inbox page, oldest first"),
            ratio("baseline: overdue page from cases_of", "inbox page, overdue only"),
            ratio(
                "baseline: county figures from every case",
                "county figures from the index (store)"
            ),
        );
    }
}
