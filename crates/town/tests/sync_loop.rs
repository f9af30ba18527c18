//! The background sync loop: it syncs when the town centre becomes reachable again without being
//! told, and at once when a case is enqueued; progress and outcomes arrive as events.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bianmin_engine::sync::{spawn_sync_loop, Backoff, LoopConfig, SyncEvent, SyncStore};
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::DeviceRole;
use common::outbox::MemOutbox;
use common::proxy::{self, Faults};
use common::*;

async fn next_ack(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SyncEvent>,
    seen: &mut Vec<SyncEvent>,
) -> String {
    loop {
        let e = rx.recv().await.expect("loop alive");
        seen.push(e.clone());
        if let SyncEvent::Acknowledged { case_id, .. } = e {
            return case_id;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_syncs_on_regained_reachability_and_on_enqueue() {
    let town = Town::new();
    let addr = town.serve().await;
    let dev = town.enrol(DeviceRole::Agent, Some(NANGUAN), GUHAN).await;

    // Start "offline": the proxy points at a port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let px = proxy::start(dead, Faults::none(), 3).await;
    let out = Arc::new(MemOutbox::default());
    let p1 = page(1, 200_000);
    let id1 = dev.next_case_id();
    out.add(dev.submission(&id1, 1, &[&p1]), vec![p1.clone()]);

    let t = Transport::with_timeouts(
        &format!("http://{}", px.addr),
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(5),
            stall: Duration::from_secs(5),
        },
    )
    .unwrap();
    let cfg = LoopConfig {
        periodic: Duration::from_secs(3600),
        probe: Duration::from_millis(50),
        backoff: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            max_attempts: 2,
        },
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let store: Arc<dyn SyncStore> = out.clone();
    let handle = spawn_sync_loop(store, t, None, cfg, tx);

    let mut seen = Vec::new();
    // Both the first (immediate) run failing and the probe finding the town unreachable, in any order.
    let offline = |seen: &Vec<SyncEvent>| {
        seen.contains(&SyncEvent::Reachability { online: false })
            && seen
                .iter()
                .any(|e| matches!(e, SyncEvent::Failed { retry_in: None, .. }))
    };
    while !offline(&seen) {
        seen.push(rx.recv().await.unwrap());
    }
    assert!(!seen
        .iter()
        .any(|e| matches!(e, SyncEvent::Acknowledged { .. })));
    assert_eq!(out.pending_count(), 1, "nothing is dropped while offline");

    // The network comes back: the loop notices by itself and uploads.
    px.set_upstream(addr);
    assert_eq!(next_ack(&mut rx, &mut seen).await, id1);
    assert!(seen.contains(&SyncEvent::Reachability { online: true }));
    assert!(seen.iter().any(|e| matches!(e, SyncEvent::Progress { bytes_done, bytes_total, .. } if *bytes_total == 200_000 && *bytes_done == 200_000)));

    // A newly sealed case leaves at once on `enqueued`.
    let p2 = page(2, 50_000);
    let id2 = dev.next_case_id();
    out.add(dev.submission(&id2, 1, &[&p2]), vec![p2]);
    handle.enqueued();
    assert_eq!(next_ack(&mut rx, &mut seen).await, id2);
    assert_eq!(out.pending_count(), 0);
    handle.stop();
}
