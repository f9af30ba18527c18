//! Fault tests on real sockets: the server behind a proxy that resets ~20% of connections mid-body, leaves 5% silent and open,
//! drops answers, stalls and delays; and the server binary killed and restarted during uploads.
//! Asserted: zero lost cases, zero duplicates, every attachment byte-identical.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bianmin_engine::sync::{sync_with_retry, SyncEvent};
use bianmin_engine::transport::Transport;
use bianmin_protocol::Decision;
use bianmin_town::store::TownStore;
use common::outbox::MemOutbox;
use common::proxy::{self, Faults};
use common::sync::{assert_all_stored, enrol_over_http, fill, transport, PATIENT};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_through_a_faulty_proxy_loses_and_duplicates_nothing() {
    let town = Town::new();
    let addr = town.serve().await;
    let code = town.code(
        bianmin_protocol::sync::DeviceRole::Agent,
        Some(NANGUAN),
        GUHAN,
    );
    let (dev, server_key) = enrol_over_http(&format!("http://{addr}"), &code, NANGUAN).await;
    let px = proxy::start(addr, Faults::harsh_with_black_holes(0.05), 0x5eed).await;
    let out = MemOutbox::default();
    let made = fill(&out, &dev, 16, 1);
    let t = transport(&format!("http://{}", px.addr), &dev);
    let mut rounds = 0;
    while out.pending_count() > 0 {
        rounds += 1;
        assert!(rounds < 50, "sync does not converge");
        let _ = sync_with_retry(&out, &t, Some(&server_key), &PATIENT, &|_e: SyncEvent| {}).await;
    }
    let stats = &px.stats;
    eprintln!("proxy: {stats:?}");
    assert!(
        stats.resets.load(Ordering::Relaxed) >= 3,
        "the proxy did reset connections: {:?}",
        stats
    );
    assert_all_stored(&town.state.files, &town.store.cases().unwrap(), &made);
    // Every case was submitted exactly once (retries were answered with the original receipt).
    let submits = town
        .store
        .audit_log()
        .unwrap()
        .iter()
        .filter(|e| e.draft.action == "submit")
        .count();
    assert_eq!(submits, made.len());
    // Decisions come back through the same faulty path.
    let staff = town.staff(GUHAN).await;
    for (id, _) in &made[..4] {
        let req = bianmin_protocol::sync::ActionRequest {
            action: bianmin_protocol::sync::TownAction::Accept,
            staff: String::new(),
            expected_version: None,
            pin: None,
        };
        let (st, body) = send(
            &town.router(),
            staff.json("POST", &format!("/v1/cases/{id}/actions"), &req),
        )
        .await;
        assert_eq!(st, axum::http::StatusCode::OK, "{body}");
    }
    loop {
        if sync_with_retry(&out, &t, Some(&server_key), &PATIENT, &|_e: SyncEvent| {})
            .await
            .is_ok()
        {
            break;
        }
    }
    let s = out.inner.lock().unwrap();
    let accepted = s
        .events
        .iter()
        .filter(|e| matches!(e.decision, Decision::Accepted { .. }))
        .count();
    assert_eq!(accepted, 4);
    assert_eq!(
        s.events
            .iter()
            .filter(|e| matches!(e.decision, Decision::Received))
            .count(),
        made.len()
    );
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

fn town_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bianmin-town")
}

fn start_server(data: &Path) -> Server {
    let (child, url) = serve_binary(data, &[]);
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|_| panic!("no address on stdout: {url:?}"));
    Server { child, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_during_uploads_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("town");
    let mut server = start_server(&data);
    // healthz answers once the server printed its address.
    let probe = Transport::new(&format!("http://{}", server.addr), None).unwrap();
    probe.health().await.unwrap();
    let out = Command::new(town_bin())
        .args([
            "--data",
            data.to_str().unwrap(),
            "enroll",
            "--village",
            NANGUAN,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let code = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let (dev, server_key) =
        enrol_over_http(&format!("http://{}", server.addr), &code, NANGUAN).await;

    // The client talks to a pass-through proxy whose upstream follows the restarted server.
    let px = proxy::start(server.addr, Faults::none(), 1).await;
    let outbox = Arc::new(MemOutbox::default());
    let made = fill(&outbox, &dev, 24, 2);
    let total: u64 = made
        .iter()
        .flat_map(|(_, p)| p)
        .map(|p| p.len() as u64)
        .sum();
    let t = transport(&format!("http://{}", px.addr), &dev);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SyncEvent>();
    let ob = outbox.clone();
    let key = server_key;
    let syncing = tokio::spawn(async move {
        let mut runs = 0;
        while ob.pending_count() > 0 {
            runs += 1;
            assert!(runs < 100, "sync does not converge");
            let tx = tx.clone();
            let _ = sync_with_retry(ob.as_ref(), &t, Some(&key), &PATIENT, &move |e| {
                let _ = tx.send(e);
            })
            .await;
        }
    });
    // Kill the server three times, each time once the client reports more bytes uploaded.
    let mut kills = 0;
    let thresholds = [total / 8, total * 3 / 10, total / 2];
    while let Some(ev) = rx.recv().await {
        if let SyncEvent::Progress { bytes_done, .. } = ev {
            if kills < thresholds.len() && bytes_done >= thresholds[kills] {
                server.child.kill().unwrap();
                server.child.wait().unwrap();
                server = start_server(&data);
                px.set_upstream(server.addr);
                kills += 1;
            }
        }
    }
    syncing.await.unwrap();
    assert_eq!(kills, 3, "the server was killed during uploads");
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // `cases --json` on the stopped server's data: every case, every attachment, byte-identical.
    let out = Command::new(town_bin())
        .args(["--data", data.to_str().unwrap(), "cases", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), made.len());
    for (id, pages) in &made {
        let row = listed
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(row["state"], "received");
        let atts = row["attachments"].as_array().unwrap();
        assert_eq!(atts.len(), pages.len());
        for (a, p) in atts.iter().zip(pages) {
            assert_eq!(a["bytes"].as_u64().unwrap(), p.len() as u64);
            let sha = a["sha256"].as_str().unwrap();
            let path = data.join("attachments").join(&sha[..2]).join(sha);
            assert_eq!(
                &std::fs::read(path).unwrap(),
                p,
                "attachment of {id} differs"
            );
        }
    }
    let audit = Command::new(town_bin())
        .args(["--data", data.to_str().unwrap(), "audit"])
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
}
