//! Several servers as one: two `bianmin-town serve` processes, each with a data directory of its
//! own, over one PostgreSQL database and one S3-compatible bucket, behind the fault proxy, which
//! sends each connection to one or the other, alternately, while it resets, drops answers and
//! stalls. Two village phones sync through
//! it and town staff decide on a third server; asserted: no case lost, none duplicated, every
//! attachment byte-identical, one audit chain, one feed sequence, every decision back on the phone.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bianmin_engine::sync::{sync_with_retry, SyncEvent};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, TownAction};
use bianmin_protocol::Decision;
use bianmin_town::objects::Objects;
use bianmin_town::store::{AdminStore, PgStore, Ticket, TownStore};
use bianmin_town::{app, AppState};
use common::backends::{open_pg, test_db};
use common::outbox::MemOutbox;
use common::proxy::{self, Faults};
use common::sync::{assert_all_stored_at, enrol_over_http, fill, transport, PATIENT};
use common::*;

fn ticket(pg: &PgStore, role: DeviceRole, village: Option<&str>, town: &str) -> String {
    pg.issue_ticket(&Ticket {
        role,
        village: village.map(str::to_string),
        town: town.to_string(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
    })
    .unwrap()
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, url: &str, s3: &common::s3::S3Server) -> (Server, SocketAddr) {
    let env: Vec<(String, String)> = s3
        .options()
        .into_iter()
        .map(|(k, v)| (k.to_uppercase(), v))
        .collect();
    let bucket = format!("s3://{}", common::s3::BUCKET);
    let (child, addr) = serve_binary_env(data, &["--database", url, "--objects", &bucket], &env);
    let addr = addr
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|_| panic!("no address on stdout: {addr:?}"));
    (Server(child), addr)
}

/// Blocking store work off the test's async runtime.
async fn off<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn sync_all(
    out: &MemOutbox,
    t: &bianmin_engine::transport::Transport,
    key: &ed25519_dalek::VerifyingKey,
) {
    let mut rounds = 0;
    while out.pending_count() > 0 {
        rounds += 1;
        assert!(rounds < 50, "sync does not converge");
        let _ = sync_with_retry(out, t, Some(key), &PATIENT, &|_e: SyncEvent| {}).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_over_one_database_behave_as_one() {
    let (Some(db), Some(s3)) = (test_db(), common::s3::start()) else {
        eprintln!("no PostgreSQL or S3 test server: nothing to test");
        return;
    };
    let (data, data_a, data_b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = db.url.clone();
    let pg = off(move || open_pg(&url)).await;
    let (_a, addr_a) = start(data_a.path(), &db.url, &s3);
    let (_b, addr_b) = start(data_b.path(), &db.url, &s3);

    // Each phone enrols on a different server; the other knows it at once.
    let p = pg.clone();
    let (code1, code2) = off(move || {
        (
            ticket(&p, DeviceRole::Agent, Some(NANGUAN), GUHAN),
            ticket(&p, DeviceRole::Agent, Some(SHANFU_VILLAGE), SHANFU),
        )
    })
    .await;
    let (dev1, key1) = enrol_over_http(&format!("http://{addr_a}"), &code1, NANGUAN).await;
    let (dev2, key2) = enrol_over_http(&format!("http://{addr_b}"), &code2, SHANFU_VILLAGE).await;
    assert_eq!(key1, key2, "both servers sign with the one stored key");

    // The proxy sends each new connection to A or B, switching every few milliseconds.
    let px = Arc::new(proxy::start(addr_a, Faults::harsh(), 0x2a2a).await);
    let flipping = {
        let px = px.clone();
        tokio::spawn(async move {
            for i in 0u64.. {
                px.set_upstream(if i % 2 == 0 { addr_b } else { addr_a });
                tokio::time::sleep(Duration::from_millis(7)).await;
            }
        })
    };
    let (out1, out2) = (MemOutbox::default(), MemOutbox::default());
    let mut made = fill(&out1, &dev1, 8, 11);
    made.extend(fill(&out2, &dev2, 8, 12));
    let server = format!("http://{}", px.addr);
    let (t1, t2) = (transport(&server, &dev1), transport(&server, &dev2));
    tokio::join!(sync_all(&out1, &t1, &key1), sync_all(&out2, &t2, &key1));

    let p = pg.clone();
    let (cases, log) = off(move || (p.cases().unwrap(), p.audit_log().unwrap())).await;
    assert_all_stored_at(
        &|sha| s3.object_path(&format!("{}/{sha}", &sha[..2])),
        &cases,
        &made,
    );
    for d in [&data_a, &data_b] {
        let local = std::fs::read_dir(d.path().join("attachments"))
            .unwrap()
            .count();
        assert_eq!(local, 0, "no attachment bytes on a server's own disk");
    }
    bianmin_town::audit::verify_chain(&log).expect("one intact audit chain");
    let submits = log.iter().filter(|e| e.draft.action == "submit").count();
    assert_eq!(submits, made.len(), "each case submitted once");
    eprintln!("proxy: {:?}", px.stats);
    assert!(
        px.stats.resets.load(Ordering::Relaxed) >= 1,
        "faults happened"
    );

    // Town staff decide on a third server (in-process, same database).
    let dir = data.path().to_path_buf();
    let p = pg.clone();
    let objects =
        Objects::from_url(&format!("s3://{}", common::s3::BUCKET), &s3.options()).unwrap();
    let state = off(move || AppState::with_stores(&dir, p.clone(), p).unwrap())
        .await
        .with_objects(objects);
    let router = app(state);
    let p = pg.clone();
    let code = off(move || ticket(&p, DeviceRole::Staff, None, GUHAN)).await;
    let staff = Device::fresh("");
    let (st, body) = send(
        &router,
        post_json(
            "/v1/enrol",
            &EnrolRequest {
                code,
                device_id: staff.id.clone(),
                public_key: hex::encode(staff.key.verifying_key().to_bytes()),
                person: "王镇办".into(),
            },
        ),
    )
    .await;
    assert_eq!(st, axum::http::StatusCode::OK, "{body}");
    let nanguan: Vec<&String> = made
        .iter()
        .map(|(id, _)| id)
        .filter(|id| id.starts_with(NANGUAN))
        .collect();
    for id in &nanguan[..3] {
        let req = ActionRequest {
            action: TownAction::Accept,
            staff: String::new(),
            expected_version: None,
            pin: None,
        };
        let (st, body) = send(
            &router,
            staff.json("POST", &format!("/v1/cases/{id}/actions"), &req),
        )
        .await;
        assert_eq!(st, axum::http::StatusCode::OK, "{body}");
    }
    // The decisions reach the phone through either server.
    while sync_with_retry(&out1, &t1, Some(&key1), &PATIENT, &|_e: SyncEvent| {})
        .await
        .is_err()
    {}
    flipping.abort();
    let (accepted, received) = {
        let s = out1.inner.lock().unwrap();
        let accepted = s
            .events
            .iter()
            .filter(|e| matches!(e.decision, Decision::Accepted { .. }))
            .count();
        let received = s
            .events
            .iter()
            .filter(|e| matches!(e.decision, Decision::Received))
            .count();
        (accepted, received)
    };
    assert_eq!(accepted, 3);
    assert_eq!(received, 8, "each of this village's cases once");
    let p = pg.clone();
    let feed = off(move || {
        p.changes(&[NANGUAN.into(), SHANFU_VILLAGE.into()], 0, 1000)
            .unwrap()
            .0
    })
    .await;
    let seqs: Vec<u64> = feed.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one feed sequence"
    );
}
