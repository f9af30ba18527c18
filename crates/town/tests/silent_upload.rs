//! Silent connections: a phone that leaves coverage mid-upload leaves its connection open and silent.
//! No page may stay blocked behind such a connection: the server bounds its wait for body frames,
//! a newer attempt for the same page takes over from an older one still open, and the client
//! detects a stalled transfer by its progress and resumes on a fresh connection.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::StatusCode;
use bianmin_engine::sync::{sync_with_retry, Backoff, SyncEvent};
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::EnrolRequest;
use bianmin_town::store::TownStore;
use bianmin_town::Limits;
use common::outbox::MemOutbox;
use common::proxy::{self, Faults};
use common::*;
use tower::ServiceExt;

/// A PATCH whose body is fed by the test: bytes are sent when the test says, or never.
fn streaming_patch(
    dev: &Device,
    sha: &str,
    offset: u64,
    length: u64,
    declared: u64,
) -> (
    axum::http::Request<Body>,
    tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let signed = dev.request(
        "PATCH",
        &format!("/v1/attachments/{sha}"),
        Vec::new(),
        Some((offset, length)),
    );
    let (mut parts, _) = signed.into_parts();
    parts
        .headers
        .insert(axum::http::header::CONTENT_LENGTH, declared.into());
    (
        axum::http::Request::from_parts(parts, Body::from_stream(stream)),
        tx,
    )
}

#[tokio::test]
async fn a_newer_attempt_takes_over_a_page_from_a_silent_connection() {
    // The server's own bound is an hour: only the takeover can free the page in time.
    let town = Town::with_limits(Limits {
        upload_frame: Duration::from_secs(3600),
        upload_request: Duration::from_secs(3600),
        ..Limits::default()
    });
    let dev = town.agent(NANGUAN).await;
    let data = page(1, 300_000);
    let sha = bianmin_engine::transport::sha256_hex(&data);
    let len = data.len() as u64;

    // The first attempt sends 100 000 bytes, then its connection goes silent.
    let (first, feed) = streaming_patch(&dev, &sha, 0, len, len);
    let router = town.router();
    let first = tokio::spawn(router.oneshot(first));
    feed.send(data[..100_000].to_vec()).await.unwrap();
    // Wait until the server holds those bytes (HEAD), so the resume point is known.
    let held = loop {
        let resp = town
            .router()
            .oneshot(dev.request("HEAD", &format!("/v1/attachments/{sha}"), Vec::new(), None))
            .await
            .unwrap();
        let off: u64 = resp.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if off == 100_000 {
            break off;
        }
        tokio::task::yield_now().await;
    };

    // A newer attempt resumes there and completes although the first is still open.
    let (st, body) = send(
        &town.router(),
        dev.request(
            "PATCH",
            &format!("/v1/attachments/{sha}"),
            data[held as usize..].to_vec(),
            Some((held, len)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("\"complete\":true"), "{body}");

    // The first attempt was told to stop, and whatever it still sends is never written.
    let answer = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the silent attempt lets go")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let _ = feed.send(vec![0xAA; 50_000]).await;
    assert_eq!(
        std::fs::read(town.state.files.attachment_path(&sha)).unwrap(),
        data,
        "the stored page is exactly the phone's"
    );
}

#[tokio::test]
async fn a_connection_silent_for_longer_than_the_frame_bound_frees_the_page_and_keeps_its_bytes() {
    let town = Town::with_limits(Limits {
        upload_frame: Duration::from_millis(300),
        ..Limits::default()
    });
    let dev = town.agent(NANGUAN).await;
    let data = page(2, 200_000);
    let sha = bianmin_engine::transport::sha256_hex(&data);
    let (req, feed) = streaming_patch(&dev, &sha, 0, data.len() as u64, data.len() as u64);
    let first = tokio::spawn(town.router().oneshot(req));
    feed.send(data[..64_000].to_vec()).await.unwrap();
    // Nothing more is sent, and the sender stays open (a silent connection, not a closed one).
    let answer = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .expect("the frame bound answers")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.headers()["upload-offset"],
        "64000",
        "the bytes received are kept"
    );
    drop(feed);
    // The page is free: the rest goes through at once.
    let (st, body) = send(
        &town.router(),
        dev.request(
            "PATCH",
            &format!("/v1/attachments/{sha}"),
            data[64_000..].to_vec(),
            Some((64_000, data.len() as u64)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        std::fs::read(town.state.files.attachment_path(&sha)).unwrap(),
        data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_through_black_holes_delivers_every_case_once() {
    // Server bounds of an hour: a page freed in time was freed by the takeover, not the bound.
    let town = Town::with_limits(Limits {
        upload_frame: Duration::from_secs(3600),
        upload_request: Duration::from_secs(3600),
        ..Limits::default()
    });
    let addr = town.serve().await;
    let code = town.code(
        bianmin_protocol::sync::DeviceRole::Agent,
        Some(NANGUAN),
        GUHAN,
    );
    let dev = Device::fresh(NANGUAN);
    let resp = Transport::new(&format!("http://{addr}"), None)
        .unwrap()
        .enrol(&EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: "李代办".into(),
        })
        .await
        .unwrap();
    let server_key = ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(&resp.server_key).unwrap().try_into().unwrap(),
    )
    .unwrap();
    // One request in five goes silent part-way and stays open; others reset, stall or lose answers.
    let px = proxy::start(addr, Faults::harsh_with_black_holes(0.2), 0xB1AC).await;
    let out = MemOutbox::default();
    let mut made = Vec::new();
    for i in 0..10u64 {
        let pages: Vec<Vec<u8>> = (0..2)
            .map(|j| page(500 + i * 10 + j, 150_000 + 40_000 * ((i + j) % 4) as usize))
            .collect();
        let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
        let id = dev.next_case_id();
        out.add(dev.submission(&id, 1, &refs), pages.clone());
        made.push((id, pages));
    }
    let stall = Duration::from_millis(800);
    let t = Transport::with_timeouts(
        &format!("http://{}", px.addr),
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
            stall,
        },
    )
    .unwrap();
    let patient = Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(200),
        max_attempts: 60,
    };
    let started = Instant::now();
    let mut rounds = 0;
    while out.pending_count() > 0 {
        rounds += 1;
        assert!(
            rounds < 20,
            "sync does not converge through silent connections"
        );
        let _ = sync_with_retry(&out, &t, Some(&server_key), &patient, &|_e: SyncEvent| {}).await;
    }
    let took = started.elapsed();
    let holes = px.stats.black_holed.load(Ordering::Relaxed);
    eprintln!(
        "silent connections: {holes} went silent, {} resets; all {} cases arrived in {:.1} s with a {} ms stall bound ({:.2} s per silent connection at most)",
        px.stats.resets.load(Ordering::Relaxed),
        made.len(),
        took.as_secs_f64(),
        stall.as_millis(),
        took.as_secs_f64() / holes.max(1) as f64
    );
    assert!(holes >= 2, "connections went silent: {:?}", px.stats);
    let cases = town.store.cases().unwrap();
    assert_eq!(cases.len(), made.len(), "every case once");
    for (id, pages) in &made {
        let sc = cases
            .iter()
            .find(|c| &c.case.id == id)
            .unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(sc.versions.len(), 1, "{id} stored once");
        for (r, p) in sc.case.materials.iter().flat_map(|m| &m.pages).zip(pages) {
            assert_eq!(
                &std::fs::read(town.state.files.attachment_path(&r.sha256)).unwrap(),
                p,
                "attachment of {id}"
            );
        }
    }
}
