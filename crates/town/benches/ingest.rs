//! Ingest benchmark (not a test): throughput and p99 latency with 50 concurrent agents on loopback,
//! bytes on the wire relative to the payload with and without 30% connection resets, and the time to
//! recover from a connection that goes silent mid-upload (black holes), against the same run without.
//!
//! Run: `cargo bench -p bianmin-town --bench ingest` (optional args: AGENTS CASES_PER_AGENT).
//! With `BIANMIN_BENCH_DATABASE_URL` set to a PostgreSQL server's admin URL (for example the one
//! `tools/services.sh` prints), the throughput run is repeated on PostgreSQL with one server and
//! with two servers over the same database (agents split between them), each on a fresh database.
//! With `BIANMIN_TEST_S3_BIN` set as well (`tools/services.sh` sets it), it is repeated once more
//! with the pages (and the unfinished uploads) in an S3-compatible bucket (`s3s-fs`).
//! `BIANMIN_BENCH_THROUGHPUT_ONLY=1` stops after the throughput runs.
//!
//! Figures (2026-11-30, the 2-core CI-class machine, release build, everything on one host:
//! agents, servers and PostgreSQL 15 with fsync on share the two cores; sled fsyncs too):
//!
//! | store | servers | cases/s | MB/s | p50 | p99 |
//! |---|---|---|---|---|---|
//! | sled | 1 | 146 | 94.5 | 257 ms | 558 ms |
//! | PostgreSQL | 1 | 94 | 60.8 | 437 ms | 892 ms |
//! | PostgreSQL | 2 | 84 | 54.5 | 487 ms | 973 ms |
//!
//! With 100,000 cases stored: the staff inbox (all 100,000 rows, 39 MB of JSON) p50 0.99 s on sled,
//! 1.40 s on PostgreSQL; the county dashboard p50 0.80 s and 0.93 s. A second server on the same
//! two cores adds contention, not capacity; the multi-server figure shows the cost of sharing one
//! database (commits serialised on its counters row), not a scaling result.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bianmin_engine::sync::{sync_with_retry, Backoff, SyncEvent};
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::store::TownStore;
use bianmin_town::AppState;
use common::outbox::MemOutbox;
use common::proxy::{self, Faults};
use common::*;

const PAGES_PER_CASE: usize = 2;

fn page_len(i: usize) -> usize {
    // Realistic scanned A4 pages: 150–500 KB (BRIEF §6), varied.
    150_000 + (i * 7919) % 350_000
}

async fn serve(t: &Town) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn transport(server: &str, d: &Device) -> Transport {
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: d.id.clone(),
            key: d.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(60),
            stall: Duration::from_secs(60),
        },
    )
    .unwrap()
}

/// Enrols a device on `state` (the ticket written off the async workers: PostgreSQL blocks).
async fn enrol(state: &AppState, village: &str) -> Device {
    let st = state.clone();
    let v = village.to_string();
    let code = tokio::task::spawn_blocking(move || {
        st.admin
            .issue_ticket(&bianmin_town::store::Ticket {
                role: DeviceRole::Agent,
                village: Some(v.clone()),
                town: v[..9].to_string(),
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
            })
            .unwrap()
    })
    .await
    .unwrap();
    let dev = Device::fresh(village);
    let req = bianmin_protocol::sync::EnrolRequest {
        code,
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: "测试".into(),
    };
    let (st, body) = send(
        &bianmin_town::app(state.clone()),
        post_json("/v1/enrol", &req),
    )
    .await;
    assert_eq!(st, axum::http::StatusCode::OK, "{body}");
    dev
}

async fn serve_state(state: &AppState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = bianmin_town::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// 50 agents upload and submit at once, spread over `states` (servers sharing one store).
async fn throughput(label: &str, states: &[AppState], agents: usize, cases: usize) {
    let mut servers = Vec::new();
    for s in states {
        servers.push(format!("http://{}", serve_state(s).await));
    }
    let mut devs = Vec::new();
    for i in 0..agents {
        let v = if i % 2 == 0 { NANGUAN } else { SHANFU_VILLAGE };
        devs.push(enrol(&states[i % states.len()], v).await);
    }
    let mut payload = 0u64;
    let mut work = Vec::new();
    for (a, d) in devs.iter().enumerate() {
        let mut list = Vec::new();
        for c in 0..cases {
            let pages: Vec<Vec<u8>> = (0..PAGES_PER_CASE)
                .map(|p| {
                    page(
                        ((a * 1000 + c) * 10 + p) as u64,
                        page_len(a * 31 + c * 7 + p),
                    )
                })
                .collect();
            payload += pages.iter().map(|p| p.len() as u64).sum::<u64>();
            let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
            list.push((d.submission(&d.next_case_id(), 1, &refs), pages));
        }
        work.push((d.clone(), list));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (d, list)) in work.into_iter().enumerate() {
        let t = transport(&servers[i % servers.len()], &d);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for (sub, pages) in list {
                let t0 = Instant::now();
                for p in &pages {
                    let sha = bianmin_engine::transport::sha256_hex(p);
                    let off = t.upload_offset(&sha).await.unwrap();
                    if !off.complete {
                        t.upload_chunk(
                            &sha,
                            off.offset,
                            p.len() as u64,
                            p[off.offset as usize..].to_vec(),
                        )
                        .await
                        .unwrap();
                    }
                }
                t.submit(&sub).await.unwrap();
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let p = |q: f64| {
        lat[((lat.len() as f64 * q).ceil() as usize)
            .saturating_sub(1)
            .min(lat.len() - 1)]
    };
    let st = states[0].clone();
    let n = tokio::task::spawn_blocking(move || st.store.cases().unwrap().len())
        .await
        .unwrap();
    assert_eq!(n, agents * cases);
    println!(
        "ingest ({label}): {agents} agents × {cases} cases × {PAGES_PER_CASE} pages, {:.1} MB in {secs:.2} s → {:.1} cases/s, {:.1} MB/s; per-case latency p50 {:?}, p99 {:?}, max {:?}",
        payload as f64 / 1e6,
        n as f64 / secs,
        payload as f64 / 1e6 / secs,
        p(0.50),
        p(0.99),
        lat[lat.len() - 1]
    );
}

/// Sends `cases` cases of one agent through a proxy with `faults`; prints the wire ratio and returns
/// the time it took, the proxy's statistics and how many cases the town holds.
async fn wire_ratio(
    label: &str,
    faults: Faults,
    cases: usize,
    stall: Duration,
) -> (Duration, Arc<proxy::Stats>, usize) {
    let town = Town::new();
    let addr = serve(&town).await;
    let code = town.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    let d = Device::fresh(NANGUAN);
    let t0 = Transport::new(&format!("http://{addr}"), None).unwrap();
    t0.enrol(&bianmin_protocol::sync::EnrolRequest {
        code,
        device_id: d.id.clone(),
        public_key: hex::encode(d.key.verifying_key().to_bytes()),
        person: String::new(),
    })
    .await
    .unwrap();
    let px = proxy::start(addr, faults, 42).await;
    let out = Arc::new(MemOutbox::default());
    let mut payload = 0u64;
    for c in 0..cases {
        let pages: Vec<Vec<u8>> = (0..PAGES_PER_CASE)
            .map(|p| page((c * 10 + p) as u64 + 77, page_len(c * 13 + p)))
            .collect();
        let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
        let sub = d.submission(&d.next_case_id(), 1, &refs);
        payload += pages.iter().map(|p| p.len() as u64).sum::<u64>()
            + serde_json::to_vec(&sub).unwrap().len() as u64;
        out.add(sub, pages);
    }
    let t = Transport::with_timeouts(
        &format!("http://{}", px.addr),
        Some(Credential {
            device_id: d.id.clone(),
            key: d.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(10),
            stall,
        },
    )
    .unwrap();
    let backoff = Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(100),
        max_attempts: 1000,
    };
    let started = Instant::now();
    while out.pending_count() > 0 {
        let _ = sync_with_retry(out.as_ref(), &t, None, &backoff, &|_e: SyncEvent| {}).await;
    }
    let took = started.elapsed();
    let s = &px.stats;
    let wire = s.upstream_bytes.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "wire ({label}): {cases} cases, payload {:.2} MB, sent {:.2} MB → {:.3}× (requests {}, resets {}); HTTP headers and signatures included",
        payload as f64 / 1e6,
        wire as f64 / 1e6,
        wire as f64 / payload as f64,
        s.exchanges.load(std::sync::atomic::Ordering::Relaxed),
        s.resets.load(std::sync::atomic::Ordering::Relaxed),
    );
    (took, px.stats.clone(), town.store.cases().unwrap().len())
}

/// The same cases without faults and with a share of silent connections; the difference per silent
/// connection is the time a phone loses to one.
async fn silent_recovery(share: f64, cases: usize, stall: Duration) {
    let (clean, _, _) = wire_ratio(
        "baseline for silent connections",
        Faults::none(),
        cases,
        stall,
    )
    .await;
    let (holed, stats, stored) = wire_ratio(
        "silent connections",
        Faults {
            black_hole: share,
            ..Faults::none()
        },
        cases,
        stall,
    )
    .await;
    let holes = stats.black_holed.load(std::sync::atomic::Ordering::Relaxed);
    let per = holed.saturating_sub(clean).as_secs_f64() / holes.max(1) as f64;
    println!(
        "silent connections: {holes} of {} requests went silent mid-request ({:.0}%); {stored}/{cases} cases stored once; {:.2} s with them vs {:.2} s without → {:.2} s lost per silent connection (stall bound {:.1} s, {:.2}× it)",
        stats.exchanges.load(std::sync::atomic::Ordering::Relaxed),
        share * 100.0,
        holed.as_secs_f64(),
        clean.as_secs_f64(),
        per,
        stall.as_secs_f64(),
        per / stall.as_secs_f64()
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// 100,000 cases of the pilot village (bulk-loaded), then the staff inbox and the
/// county dashboard, five times each: median and worst latency.
async fn pages_at_scale(
    label: &str,
    state: AppState,
    import: impl FnOnce(&bianmin_town::store::Snapshot),
) {
    const N: usize = 100_000;
    let mut snap = bianmin_town::store::Snapshot::default();
    let template = {
        let d = Device::fresh(NANGUAN);
        d.submission(&d.next_case_id(), 1, &[b"x".as_slice()])
    };
    let now = chrono::Utc::now();
    for i in 0..N {
        let mut sub = template.clone();
        let v = NANGUAN;
        sub.id = format!("{v}-20261128-AAAAAA-{i:06}");
        sub.village = v.into();
        let mut case = bianmin_engine::case::Case::from_submission(&sub, now);
        case.village = v.into();
        snap.cases.push(bianmin_town::store::StoredCase {
            case,
            received_at: now - chrono::Duration::seconds((N - i) as i64),
            versions: Default::default(),
            corrections: 0,
            town_check: Vec::new(),
            clock: Default::default(),
            pressed: Vec::new(),
            revision: Default::default(),
            county: None,
        });
    }
    let t0 = Instant::now();
    import(&snap);
    let loaded = t0.elapsed();
    drop(snap);
    let r = bianmin_town::app(state.clone());
    let st = state.clone();
    let code = tokio::task::spawn_blocking(move || {
        st.admin
            .issue_ticket(&bianmin_town::store::Ticket {
                role: DeviceRole::Staff,
                village: None,
                town: GUHAN.into(),
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
            })
            .unwrap()
    })
    .await
    .unwrap();
    let staff = Device::fresh("");
    let req = bianmin_protocol::sync::EnrolRequest {
        code,
        device_id: staff.id.clone(),
        public_key: hex::encode(staff.key.verifying_key().to_bytes()),
        person: "王镇办".into(),
    };
    assert_eq!(
        send(&r, post_json("/v1/enrol", &req)).await.0,
        axum::http::StatusCode::OK
    );
    let st = state.clone();
    let password = tokio::task::spawn_blocking(move || {
        bianmin_town::oversight::supervisor_add(st.admin.as_ref(), "张科长").unwrap()
    })
    .await
    .unwrap();
    let login = axum::http::Request::post("/county/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!(
            "name={}&password={}",
            urlencode("张科长"),
            urlencode(&password)
        )))
        .unwrap();
    let resp = send_raw(&r, login).await;
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut inbox = Vec::new();
    let mut county = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let (st, body) = send(&r, staff.get("/v1/inbox")).await;
        assert_eq!(st, axum::http::StatusCode::OK);
        inbox.push((t0.elapsed(), body.len()));
        let t0 = Instant::now();
        let req = axum::http::Request::get("/county")
            .header("cookie", &cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let (st, _) = send(&r, req).await;
        assert_eq!(st, axum::http::StatusCode::OK);
        county.push(t0.elapsed());
    }
    inbox.sort();
    county.sort();
    println!(
        "pages ({label}), {N} cases (bulk load {loaded:.1?}): inbox of the town's {N} cases ({:.1} MB JSON) p50 {:?}, max {:?}; county dashboard p50 {:?}, max {:?}",
        inbox[2].1 as f64 / 1e6,
        inbox[2].0,
        inbox[4].0,
        county[2],
        county[4]
    );
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

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let agents = args.first().copied().unwrap_or(50);
    let cases = args.get(1).copied().unwrap_or(6);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg_url = std::env::var("BIANMIN_BENCH_DATABASE_URL").ok();
    rt.block_on(async {
        let town = Town::new();
        throughput(
            "sled, one server",
            std::slice::from_ref(&town.state),
            agents,
            cases,
        )
        .await;
        if let Some(url) = &pg_url {
            for servers in [1, 2] {
                let dir = tempfile::tempdir().unwrap();
                let (u, d) = (url.clone(), dir.path().to_path_buf());
                // Each server its own pool, as separate processes would have.
                let states = tokio::task::spawn_blocking(move || {
                    let db = bench_db(&u);
                    (0..servers)
                        .map(|_| {
                            let pg = Arc::new(bianmin_town::store::PgStore::open(&db, 32).unwrap());
                            AppState::with_stores(&d, pg.clone(), pg).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap();
                let label = format!(
                    "PostgreSQL, {servers} server{}",
                    if servers > 1 { "s" } else { "" }
                );
                throughput(&label, &states, agents, cases).await;
            }
        }
        if let (Some(url), true) = (&pg_url, std::env::var("BIANMIN_TEST_S3_BIN").is_ok()) {
            for servers in [1, 2] {
                let s3 = common::s3::start().expect("the S3 test server");
                let objects = bianmin_town::objects::Objects::from_url(
                    &format!("s3://{}", common::s3::BUCKET),
                    &s3.options(),
                )
                .unwrap();
                let dirs: Vec<tempfile::TempDir> =
                    (0..servers).map(|_| tempfile::tempdir().unwrap()).collect();
                let paths: Vec<std::path::PathBuf> =
                    dirs.iter().map(|d| d.path().to_path_buf()).collect();
                let u = url.clone();
                // Each server its own pool and data directory, as separate processes would have.
                let states = tokio::task::spawn_blocking(move || {
                    let db = bench_db(&u);
                    paths
                        .iter()
                        .map(|d| {
                            let pg = Arc::new(bianmin_town::store::PgStore::open(&db, 32).unwrap());
                            AppState::with_stores(d, pg.clone(), pg)
                                .unwrap()
                                .with_objects(objects.clone())
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap();
                let label = format!(
                    "PostgreSQL + S3, {servers} server{}",
                    if servers > 1 { "s" } else { "" }
                );
                throughput(&label, &states, agents, cases).await;
            }
        }
        if std::env::var("BIANMIN_BENCH_THROUGHPUT_ONLY").as_deref() == Ok("1") {
            return;
        }
        {
            let town = Town::new();
            let sled = town.store.clone();
            pages_at_scale("sled", town.state.clone(), |s| sled.import(s).unwrap()).await;
        }
        if let Some(url) = &pg_url {
            let dir = tempfile::tempdir().unwrap();
            let (u, d) = (url.clone(), dir.path().to_path_buf());
            let (pg, state) = tokio::task::spawn_blocking(move || {
                let pg = Arc::new(bianmin_town::store::PgStore::open(&bench_db(&u), 32).unwrap());
                let state = AppState::with_stores(&d, pg.clone(), pg.clone()).unwrap();
                (pg, state)
            })
            .await
            .unwrap();
            pages_at_scale("PostgreSQL", state, |s| {
                let (pg, s) = (pg.clone(), s.clone());
                std::thread::spawn(move || pg.import(&s).unwrap())
                    .join()
                    .unwrap()
            })
            .await;
        }
        let stall = Duration::from_secs(10);
        wire_ratio("no faults", Faults::none(), 40, stall).await;
        let resets_only = Faults {
            reset: 0.30,
            ..Faults::none()
        };
        wire_ratio("30% connection resets mid-body", resets_only, 40, stall).await;
        // A short stall bound keeps the run quick; the recovery scales with it (the default is 30 s).
        silent_recovery(0.10, 30, Duration::from_secs(2)).await;
    });
}
