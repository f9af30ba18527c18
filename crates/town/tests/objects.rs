//! Attachments in a real S3-compatible object store (`s3s-fs`, started per test): a page uploaded
//! in pieces is verified, streamed to the bucket and read back before a case may reference it;
//! the local data directory keeps no copy; downloads stream from the bucket; another village
//! that only knows the hash cannot reference it.

mod common;

use axum::http::StatusCode;
use bianmin_town::objects::Objects;
use common::*;
use http_body_util::BodyExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_live_in_the_object_store_verified_and_streamed() {
    let Some(s3) = common::s3::start() else {
        eprintln!("no S3 test server (BIANMIN_TEST_S3_BIN): nothing to test");
        return;
    };
    let objects =
        Objects::from_url(&format!("s3://{}", common::s3::BUCKET), &s3.options()).unwrap();
    let town = Town::new().with_objects(objects);
    let r = town.router();
    let agent = town.agent(NANGUAN).await;

    // 12 MiB: more than two of the store's 5 MiB parts, sent by the phone in two pieces.
    let data = page(77, 12 * 1024 * 1024 + 123);
    let sha = bianmin_town::files::sha256_hex(&data);
    let uri = format!("/v1/attachments/{sha}");
    let cut = 5_000_000;
    let len = data.len() as u64;
    let (st, body) = send(
        &r,
        agent.request("PATCH", &uri, data[..cut].to_vec(), Some((0, len))),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(
        !s3.object_path(&format!("{}/{sha}", &sha[..2])).exists(),
        "not stored before complete"
    );
    let (st, body) = send(
        &r,
        agent.request("PATCH", &uri, data[cut..].to_vec(), Some((cut as u64, len))),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("\"complete\":true"), "{body}");
    let stored = std::fs::read(s3.object_path(&format!("{}/{sha}", &sha[..2]))).unwrap();
    assert!(stored == data, "the bucket holds the page byte for byte");
    assert!(
        !town.state.files.attachment_path(&sha).exists(),
        "no local copy"
    );
    assert_eq!(
        town.state.files.partial_state(NANGUAN, &sha),
        (0, None),
        "partial gone"
    );
    use bianmin_town::store::TownStore;
    assert_eq!(town.store.attachment_size(&sha).unwrap(), Some(len));
    assert!(town.store.held_by(&sha, NANGUAN).unwrap());

    // The case references it; staff download it, streamed back from the bucket.
    let id = agent.next_case_id();
    let (st, body) = send(
        &r,
        agent.json(
            "PUT",
            &format!("/v1/cases/{id}"),
            &agent.submission(&id, 1, &[&data]),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let staff = town.staff(GUHAN).await;
    let resp = send_raw(&r, staff.get(&format!("/v1/cases/{id}/attachments/{sha}"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(got == data, "downloaded bytes differ");

    // Another village knows the hash but never sent the bytes: missing for it.
    let other = town.agent(WANGQIAO_VILLAGE).await;
    let oid = other.next_case_id();
    let (st, body) = send(
        &r,
        other.json(
            "PUT",
            &format!("/v1/cases/{oid}"),
            &other.submission(&oid, 1, &[&data]),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("missing_attachments"), "{body}");

    // Bytes that do not hash to their name never reach the bucket.
    let wrong = bianmin_town::files::sha256_hex(b"other bytes");
    let (st, body) = send(
        &r,
        agent.request(
            "PATCH",
            &format!("/v1/attachments/{wrong}"),
            vec![7; 10],
            Some((0, 10)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(!s3.object_path(&format!("{}/{wrong}", &wrong[..2])).exists());
}
