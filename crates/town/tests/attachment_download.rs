//! The engine's signed attachment download (`Transport::attachment`) against the real town API on
//! a loopback socket: staff of the town and the case's own agent read a page, byte for byte; devices
//! of another village or town cannot, not even for a page they hold themselves; a stored page that
//! was damaged on the server is refused by the client as `Corrupt`.

mod common;

use bianmin_engine::transport::{Credential, Transport, TransportError};
use bianmin_protocol::sync::DeviceRole;
use common::*;

const WANGQIAO: &str = "140423101";

fn client(url: &str, d: &Device) -> Transport {
    Transport::new(
        url,
        Some(Credential {
            device_id: d.id.clone(),
            key: d.key.clone(),
        }),
    )
    .unwrap()
}

fn rejected(e: &TransportError) -> (u16, String) {
    match e {
        TransportError::Rejected { status, code, .. } => (*status, code.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A submitted case of `dev` with the given pages; answers its id.
async fn file_case(town: &Town, dev: &Device, pages: &[&[u8]]) -> String {
    let r = town.router();
    for p in pages {
        dev.upload(&r, p).await;
    }
    let id = dev.next_case_id();
    let (st, body) = send(
        &r,
        dev.json(
            "PUT",
            &format!("/v1/cases/{id}"),
            &dev.submission(&id, 1, pages),
        ),
    )
    .await;
    assert_eq!(st, axum::http::StatusCode::CREATED, "{body}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_download_verified_and_only_within_scope() {
    let town = Town::new();
    let url = format!("http://{}", town.serve().await);

    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let other_agent = town.agent(WANGQIAO_VILLAGE).await;
    let other_staff = town.staff(WANGQIAO).await;
    let p1 = page(11, 300_000);
    let p2 = page(12, 4_000);
    let case = file_case(&town, &agent, &[&p1, &p2]).await;
    let sha1 = bianmin_engine::transport::sha256_hex(&p1);
    let sha2 = bianmin_engine::transport::sha256_hex(&p2);

    // The town's staff and the case's own village agent read the pages, exactly.
    assert_eq!(
        client(&url, &staff).attachment(&case, &sha1).await.unwrap(),
        p1
    );
    assert_eq!(
        client(&url, &staff).attachment(&case, &sha2).await.unwrap(),
        p2
    );
    assert_eq!(
        client(&url, &agent).attachment(&case, &sha1).await.unwrap(),
        p1
    );

    // Another village's agent and another town's staff are refused, as forbidden.
    for d in [&other_agent, &other_staff] {
        let e = client(&url, d).attachment(&case, &sha1).await.unwrap_err();
        assert_eq!(rejected(&e), (403, "forbidden".into()), "{e:?}");
        assert!(!e.is_transient());
    }

    // The other village files its own case holding a page; our agent cannot fetch that page
    // through our case (content addressing must not open other villages' pages).
    let theirs = page(13, 2_000);
    let their_case = file_case(&town, &other_agent, &[&theirs]).await;
    let their_sha = bianmin_engine::transport::sha256_hex(&theirs);
    let e = client(&url, &agent)
        .attachment(&case, &their_sha)
        .await
        .unwrap_err();
    assert_eq!(rejected(&e), (404, "not_found".into()));
    let e = client(&url, &agent)
        .attachment(&their_case, &their_sha)
        .await
        .unwrap_err();
    assert_eq!(rejected(&e), (403, "forbidden".into()));
    assert_eq!(
        client(&url, &other_agent)
            .attachment(&their_case, &their_sha)
            .await
            .unwrap(),
        theirs
    );

    // An unknown case of our village is simply not there.
    let e = client(&url, &staff)
        .attachment(&format!("{NANGUAN}-20261128-ZZZZZZ-0001"), &sha1)
        .await
        .unwrap_err();
    assert_eq!(rejected(&e), (404, "not_found".into()));

    // A page damaged in the town's store (same length, other bytes) is refused by the client.
    let stored = town.state.files.attachment_path(&sha2);
    let mut damaged = p2.clone();
    damaged[100] ^= 0xff;
    std::fs::write(&stored, &damaged).unwrap();
    let e = client(&url, &staff)
        .attachment(&case, &sha2)
        .await
        .unwrap_err();
    match &e {
        TransportError::Corrupt { sha256, got } => {
            assert_eq!(sha256, &sha2);
            assert_eq!(got, &bianmin_engine::transport::sha256_hex(&damaged));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!e.is_transient());
    assert!(e.user_message().contains("损坏"));

    // With the town unreachable the download is classified offline.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = client(&format!("http://{dead}"), &staff)
        .attachment(&case, &sha1)
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Offline(_)), "{e:?}");
}

#[tokio::test]
async fn a_revoked_tablet_reads_no_pages() {
    let town = Town::new();
    let url = format!("http://{}", town.serve().await);
    let agent = town.agent(NANGUAN).await;
    let staff = town.enrol(DeviceRole::Staff, None, GUHAN).await;
    let p = page(21, 1_000);
    let case = file_case(&town, &agent, &[&p]).await;
    let sha = bianmin_engine::transport::sha256_hex(&p);
    assert_eq!(
        client(&url, &staff).attachment(&case, &sha).await.unwrap(),
        p
    );
    town.state.admin.revoke(&staff.id).unwrap();
    let e = client(&url, &staff)
        .attachment(&case, &sha)
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e:?}");
}
