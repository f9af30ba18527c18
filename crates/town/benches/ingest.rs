//! Ingest benchmark (not a test): throughput and p99 latency with 50 concurrent agents on loopback,
//! bytes on the wire relative to the payload with and without 30% connection resets, and the time to
//! recover from a connection that goes silent mid-upload (black holes), against the same run without.
//!
//! Run: `cargo bench -p bianmin-town --bench ingest` (optional args: AGENTS CASES_PER_AGENT).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bianmin_engine::sync::{sync_with_retry, Backoff, SyncEvent};
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::store::TownStore;
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

async fn throughput(agents: usize, cases: usize) {
    let town = Town::new();
    let addr = serve(&town).await;
    let server = format!("http://{addr}");
    let mut devs = Vec::new();
    for i in 0..agents {
        let v = if i % 2 == 0 { NANGUAN } else { SHANFU_VILLAGE };
        devs.push(town.enrol(DeviceRole::Agent, Some(v), &v[..9]).await);
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
    for (d, list) in work {
        let t = transport(&server, &d);
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
    let n = town.store.cases().unwrap().len();
    assert_eq!(n, agents * cases);
    println!(
        "ingest: {agents} agents × {cases} cases × {PAGES_PER_CASE} pages, {:.1} MB in {secs:.2} s → {:.1} cases/s, {:.1} MB/s; per-case latency p50 {:?}, p99 {:?}, max {:?}",
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
    rt.block_on(async {
        throughput(agents, cases).await;
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
