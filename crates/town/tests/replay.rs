//! Replay protection across restarts: nonces live in the town store, durably, for as long as a
//! copy of the request could pass the timestamp check, and are swept afterwards.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use bianmin_protocol::sync::{DeviceRole, EnrolRequest, ErrorBody, TIMESTAMP_WINDOW_SECS};
use bianmin_town::auth::{NonceCache, NONCE_PRUNE_INTERVAL_SECS};
use bianmin_town::files::Ticket;
use bianmin_town::{app, AppState, SledStore};
use common::*;

const W: i64 = TIMESTAMP_WINDOW_SECS;

fn error(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not an error body ({e}): {body}"))
}

/// Enrols a fresh agent device on `state`.
async fn enrol(state: &AppState) -> Device {
    let code = state
        .files
        .issue_ticket(&Ticket {
            role: DeviceRole::Agent,
            village: Some(NANGUAN.into()),
            town: GUHAN.into(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
        })
        .unwrap();
    let dev = Device::fresh(NANGUAN);
    let req = EnrolRequest {
        code,
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: String::new(),
    };
    let (st, body) = send(&app(state.clone()), post_json("/v1/enrol", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    dev
}

#[tokio::test]
async fn a_request_accepted_before_a_restart_is_refused_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let ts = chrono::Utc::now().timestamp();
    let nonce = "0123456789abcdef0123";
    // Ed25519 signatures are deterministic: the same parts give the very same request, byte for byte.
    let captured = |d: &Device| d.request_at("GET", "/v1/me", Vec::new(), None, ts, nonce);

    let dev = {
        let state = AppState::open(dir.path()).unwrap();
        let dev = enrol(&state).await;
        let (st, body) = send(&app(state.clone()), captured(&dev)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        dev
        // The state, and with it the sled database, is dropped here: the server is gone.
    };

    let state = AppState::open(dir.path()).unwrap();
    let r = app(state.clone());
    let (st, body) = send(&r, captured(&dev)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    assert!(error(&body).message.contains("replayed"), "{body}");
    // The new instance serves the same device normally: only the reused nonce is refused.
    let (st, body) = send(&r, dev.get("/v1/me")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_forged_request_does_not_use_up_a_nonce() {
    let t = Town::new();
    let r = t.router();
    let dev = t.agent(NANGUAN).await;
    let ts = chrono::Utc::now().timestamp();
    let nonce = "forged-nonce-0123456789";
    let before = t.store.raw_tree("nonces").unwrap().len();

    // Same device id and nonce, signed with another key.
    let mut forger = Device::fresh(NANGUAN);
    forger.id = dev.id.clone();
    let (st, body) = send(
        &r,
        forger.request_at("GET", "/v1/me", Vec::new(), None, ts, nonce),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(error(&body).message.contains("signature"), "{body}");
    assert_eq!(
        t.store.raw_tree("nonces").unwrap().len(),
        before,
        "nothing stored for a forged request"
    );

    // The genuine request with that nonce still goes through, once.
    let genuine = || dev.request_at("GET", "/v1/me", Vec::new(), None, ts, nonce);
    let (st, body) = send(&r, genuine()).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _) = send(&r, genuine()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(t.store.raw_tree("nonces").unwrap().len(), before + 1);
}

fn cache() -> (tempfile::TempDir, Arc<SledStore>, NonceCache) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    let cache = NonceCache::new(store.clone());
    (dir, store, cache)
}

#[test]
fn a_nonce_is_kept_exactly_while_its_timestamp_passes_the_window() {
    let (_dir, _store, c) = cache();
    let t0 = 1_800_000_000;
    assert!(c
        .check_and_insert("DEV001", "nonce-on-time-000", t0, t0)
        .unwrap());
    // A copy passes the timestamp check up to t0 + W: refused up to then.
    assert!(!c
        .check_and_insert("DEV001", "nonce-on-time-000", t0, t0 + 1)
        .unwrap());
    assert!(!c
        .check_and_insert("DEV001", "nonce-on-time-000", t0, t0 + W)
        .unwrap());
    // The same nonce from another device is another nonce.
    assert!(c
        .check_and_insert("DEV002", "nonce-on-time-000", t0, t0)
        .unwrap());

    // A device whose clock runs W ahead: its request stays replayable until t0 + 2W.
    assert!(c
        .check_and_insert("DEV001", "nonce-fast-clock-0", t0 + W, t0)
        .unwrap());
    assert!(!c
        .check_and_insert("DEV001", "nonce-fast-clock-0", t0 + W, t0 + 2 * W)
        .unwrap());
    // One W behind: only until t0 (the authenticate middleware refuses the timestamp after that).
    assert!(c
        .check_and_insert("DEV001", "nonce-slow-clock-0", t0 - W, t0)
        .unwrap());
    assert!(!c
        .check_and_insert("DEV001", "nonce-slow-clock-0", t0 - W, t0)
        .unwrap());
}

#[test]
fn of_concurrent_copies_of_a_request_exactly_one_passes() {
    let (_dir, _store, c) = cache();
    let c = Arc::new(c);
    let t0 = 1_800_000_000;
    let passed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    c.check_and_insert("DEV001", "raced-nonce-00000", t0, t0)
                        .unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap() as usize)
            .sum()
    });
    assert_eq!(passed, 1);
}

#[test]
fn pruning_keeps_the_nonce_store_bounded() {
    let (_dir, store, c) = cache();
    let tree = store.raw_tree("nonces").unwrap();
    let t0 = 1_800_000_000;
    // One request every 5 s of simulated server time for two hours, each from a device whose clock
    // runs the full window ahead (the longest-lived entries).
    let step = 5;
    let mut largest = 0;
    let mut n = 0;
    for now in (t0..t0 + 7200).step_by(step as usize) {
        assert!(c
            .check_and_insert("DEV001", &format!("nonce-{n:016}"), now + W, now)
            .unwrap());
        n += 1;
        largest = largest.max(tree.len());
    }
    // Each entry lives at most 2W past its use plus one sweep interval.
    let bound = ((2 * W + NONCE_PRUNE_INTERVAL_SECS) / step + 1) as usize;
    assert!(largest <= bound, "{largest} entries, bound {bound}");
    assert!(
        n > 4 * bound,
        "the run must outlast the bound for the check to mean anything"
    );

    // After a quiet spell (or a restart), the next request sweeps everything expired.
    let later = t0 + 7200 + 2 * W + 1;
    assert!(c
        .check_and_insert("DEV001", "nonce-after-quiet", later, later)
        .unwrap());
    assert_eq!(tree.len(), 1);
    // A new cache on the same store (a restarted server) sweeps at its first request too.
    let c2 = NonceCache::new(store.clone());
    let much_later = later + 2 * W + 1;
    assert!(c2
        .check_and_insert("DEV001", "nonce-after-restart", much_later, much_later)
        .unwrap());
    assert_eq!(tree.len(), 1);
}
