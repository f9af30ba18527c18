//! Power-loss test of the town centre: its data directory lives on a file system that keeps only
//! fsynced bytes, and the power is cut while phones upload. Every case the server acknowledged to a
//! phone with a signed receipt must be there after the cut, with its attachments byte-identical.
//!
//! The server binary is killed and `bianmin-powercut` then throws away every write, creation and
//! rename that was not made durable (a SIGKILL alone would let the kernel keep them). Half the cuts
//! land right after a receipt reached the phone, the moment a store that answers before its bytes
//! are durable loses a case. Needs `/dev/fuse` and root, as CI has.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use bianmin_engine::sync::{sync_with_retry, Backoff, SyncEvent};
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_powercut::PowerCut;
use bianmin_protocol::sync::EnrolRequest;
use common::outbox::MemOutbox;
use common::proxy::{self, Faults};
use common::*;
use rand::{Rng, SeedableRng};

const PATIENT: Backoff = Backoff {
    base: Duration::from_millis(5),
    cap: Duration::from_millis(100),
    max_attempts: 400,
};

fn town_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bianmin-town")
}

fn start(data: &Path) -> (Child, SocketAddr) {
    let (child, url) = serve_binary(data, &[]);
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|_| panic!("no address on stdout: {url:?}"));
    (child, addr)
}

/// Cases the town holds, read from its data directory by the CLI (as an operator would after a
/// power cut, before starting the server again).
fn town_cases(data: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(town_bin())
        .args(["--data", data.to_str().unwrap(), "cases", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the town's store does not open after a power cut: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_of_the_town_centre_loses_no_case_it_gave_a_receipt_for() {
    let mount = tempfile::tempdir().unwrap();
    let mut fs = PowerCut::mount(mount.path())
        .expect("mount the power-cut file system (needs /dev/fuse and root)");
    let data = fs.path().join("town");
    let (mut child, addr) = start(&data);
    Transport::new(&format!("http://{addr}"), None)
        .unwrap()
        .health()
        .await
        .unwrap();
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let dev = Device::fresh(NANGUAN);
    Transport::new(&format!("http://{addr}"), None)
        .unwrap()
        .enrol(&EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: "李代办".into(),
        })
        .await
        .unwrap();

    // The phone talks through a pass-through proxy that follows the restarted server.
    let px = proxy::start(addr, Faults::none(), 1).await;
    let outbox = Arc::new(MemOutbox::default());
    let mut made = BTreeMap::new();
    for i in 0..20u64 {
        let pages: Vec<Vec<u8>> = (0..2)
            .map(|j| page(7000 + i * 10 + j, 40_000 + 9_000 * ((i + j) % 5) as usize))
            .collect();
        let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
        let id = dev.next_case_id();
        outbox.add(dev.submission(&id, 1, &refs), pages.clone());
        made.insert(id, pages);
    }
    let t = Transport::with_timeouts(
        &format!("http://{}", px.addr),
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
            stall: Duration::from_secs(5),
        },
    )
    .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SyncEvent>();
    let ob = outbox.clone();
    let syncing = tokio::spawn(async move {
        let mut runs = 0;
        while ob.pending_count() > 0 {
            runs += 1;
            if runs > 200 {
                return false;
            }
            let tx = tx.clone();
            let _ = sync_with_retry(ob.as_ref(), &t, None, &PATIENT, &move |e| {
                let _ = tx.send(e);
            })
            .await;
        }
        true
    });

    let mut rng = rand::rngs::StdRng::seed_from_u64(0xB1A9_0013);
    let (mut cuts, mut lost) = (0usize, Vec::new());
    let mut acknowledged = 0usize;
    while let Some(ev) = rx.recv().await {
        let cut_now = match &ev {
            SyncEvent::Acknowledged { .. } => {
                acknowledged += 1;
                rng.gen_bool(0.35)
            }
            SyncEvent::Progress { .. } => rng.gen_bool(0.04),
            _ => false,
        };
        if !cut_now || cuts >= 10 {
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        fs.cut().unwrap();
        cuts += 1;
        // What the phone holds a receipt for, the town must hold.
        let receipts: Vec<String> = outbox
            .inner
            .lock()
            .unwrap()
            .receipts
            .keys()
            .map(|(id, _)| id.clone())
            .collect();
        let listed = town_cases(&data);
        for id in receipts {
            let ok = listed
                .iter()
                .find(|r| r["id"] == id.as_str())
                .is_some_and(|row| {
                    let atts = row["attachments"].as_array().cloned().unwrap_or_default();
                    atts.len() == made[&id].len()
                        && atts.iter().zip(&made[&id]).all(|(a, p)| {
                            let sha = a["sha256"].as_str().unwrap_or_default();
                            sha.len() == 64
                                && std::fs::read(data.join("attachments").join(&sha[..2]).join(sha))
                                    .ok()
                                    .as_ref()
                                    == Some(p)
                        })
                });
            if !ok && !lost.contains(&id) {
                lost.push(id);
            }
        }
        let (c, a) = start(&data);
        child = c;
        px.set_upstream(a);
    }
    let converged = syncing.await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    fs.cut().unwrap();
    let listed = town_cases(&data);
    eprintln!("town power loss: {cuts} cuts, {acknowledged} receipts acknowledged, {} lost, {} cases stored of {}", lost.len(), listed.len(), made.len());
    assert!(
        lost.is_empty(),
        "cases acknowledged with a receipt lost by a power cut: {lost:?}"
    );
    assert!(converged, "sync does not converge after the cuts");
    assert!(cuts >= 3, "the power was cut during uploads: {cuts}");
    assert_eq!(listed.len(), made.len(), "every case stored once");
    let audit = Command::new(town_bin())
        .args(["--data", data.to_str().unwrap(), "audit"])
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "the audit chain verifies after the cuts: {}",
        String::from_utf8_lossy(&audit.stderr)
    );
}
