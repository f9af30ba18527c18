//! Divisions as published reference data: the county opens a new service point by publishing a
//! catalog version, and without a restart or a release the running server accepts the village's
//! cases, the `enroll` command (run beside the server that holds the store's lock) issues its code,
//! and phones receive the tree as one more signed, content-addressed part.

mod common;

use std::process::Command;

use axum::http::StatusCode;
use bianmin_engine::catalog::{Catalog, Village};
use bianmin_protocol::sync::{CatalogManifest, CatalogPartsRequest, CatalogPartsResponse};
use bianmin_town::{catalog, divisions};
use common::{send, Town, GUHAN, NANGUAN};

const NEW_VILLAGE: &str = "140423100299";

fn enroll(data: &std::path::Path, village: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
        .arg("--data")
        .arg(data)
        .args(["enroll", "--village", village])
        .env_remove("BIANMIN_DATABASE_URL")
        .output()
        .expect("run bianmin-town")
}

#[tokio::test]
async fn a_village_published_by_the_county_is_served_without_a_restart() {
    let town = Town::new();
    let data = town.dir.path().to_path_buf();
    let r = town.router();

    // Before: the village is unknown to the server and to the command.
    assert!(town.state.divisions().village(NEW_VILLAGE).is_none());
    let out = enroll(&data, NEW_VILLAGE);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown village code 140423100299"));
    // The server mirrored the tree of version 1 for the commands when it opened.
    assert_eq!(
        divisions::for_commands(&data).unwrap(),
        *town.state.divisions()
    );

    // The county adds 古韩镇新村 and publishes (as its page or the CLI would).
    let embedded = Catalog::embedded().unwrap();
    let mut tree = embedded.divisions().unwrap().clone();
    let guhan = tree.towns.iter_mut().find(|t| t.code == GUHAN).unwrap();
    guhan.villages.push(Village {
        code: NEW_VILLAGE.into(),
        name: "新村".into(),
        pilot: false,
        confirmed: false,
    });
    let edited = embedded.with_divisions("t.xlsx", Some(tree)).unwrap();
    let store = town.state.store.clone();
    tokio::task::spawn_blocking(move || {
        let d = catalog::import_draft(store.as_ref(), &edited, "t.xlsx", "王科员").unwrap();
        assert_eq!(
            d.changes,
            vec!["行政区划有更新：新增 140423100299 古韩镇新村".to_string()]
        );
        catalog::publish(store.as_ref(), d.version, "李科长").unwrap();
    })
    .await
    .unwrap();

    // A phone's next sync asks for the manifest: the server notices version 2, and the tree
    // arrives as one changed part that reassembles into the published catalog.
    let agent = town.agent(NANGUAN).await;
    let (st, body) = send(&r, agent.get("/v1/catalog?version=1")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m1: CatalogManifest = serde_json::from_str(&body).unwrap();
    let (st, body) = send(&r, agent.get("/v1/catalog")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m2: CatalogManifest = serde_json::from_str(&body).unwrap();
    assert_eq!(m2.version, 2);
    let changed: Vec<&str> = m2
        .parts
        .iter()
        .zip(&m1.parts)
        .filter(|(a, b)| a.hash != b.hash)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, vec!["divisions"]);
    let req = CatalogPartsRequest {
        version: 2,
        names: m2.parts.iter().map(|p| p.name.clone()).collect(),
    };
    let (st, body) = send(&r, agent.json("POST", "/v1/catalog/parts", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let parts: CatalogPartsResponse = serde_json::from_str(&body).unwrap();
    let on_phone = Catalog::from_parts("v2", &parts.parts).unwrap();
    assert_eq!(on_phone.hash(), m2.hash);
    assert_eq!(
        on_phone
            .divisions()
            .unwrap()
            .village_full_name(NEW_VILLAGE)
            .as_deref(),
        Some("古韩镇新村")
    );

    // The running server knows the village now, and mirrored it: the command issues its code
    // while this process holds the embedded store's lock.
    assert_eq!(
        town.state
            .divisions()
            .village_full_name(NEW_VILLAGE)
            .as_deref(),
        Some("古韩镇新村")
    );
    let out = enroll(&data, NEW_VILLAGE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap();
    let code = code.lines().next().unwrap().to_string();
    assert_eq!(code.len(), 12);

    // The new village's agent enrols with that code and its first case is received.
    let dev = common::Device::fresh(NEW_VILLAGE);
    let req = bianmin_protocol::sync::EnrolRequest {
        code,
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: "新村代办员".into(),
    };
    let (st, body) = send(&r, common::post_json("/v1/enrol", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let page = common::page(1, 3000);
    dev.upload(&r, &page).await;
    let sub = dev.submission(&dev.next_case_id(), 1, &[&page]);
    let (st, body) = send(&r, dev.json("PUT", &format!("/v1/cases/{}", sub.id), &sub)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
}

/// On PostgreSQL the commands read the newest published tree from the database itself (every
/// server shares it; no mirror is needed).
#[test]
fn on_postgres_enroll_checks_codes_against_the_published_tree() {
    let Some(db) = common::backends::test_db() else {
        eprintln!("no BIANMIN_TEST_DATABASE_URL: PostgreSQL case skipped (tools/test.sh runs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |village: &str| {
        Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
            .arg("--data")
            .arg(dir.path())
            .args(["--database", &db.url, "enroll", "--village", village])
            .output()
            .expect("run bianmin-town")
    };
    assert!(!run(NEW_VILLAGE).status.success());

    let pg = bianmin_town::store::PgStore::open(&db.url, 4).unwrap();
    let embedded = Catalog::embedded().unwrap();
    let mut tree = embedded.divisions().unwrap().clone();
    let guhan = tree.towns.iter_mut().find(|t| t.code == GUHAN).unwrap();
    guhan.villages.push(Village {
        code: NEW_VILLAGE.into(),
        name: "新村".into(),
        pilot: false,
        confirmed: false,
    });
    let edited = embedded.with_divisions("t.xlsx", Some(tree)).unwrap();
    let d = catalog::import_draft(&pg, &edited, "t.xlsx", "王科员").unwrap();
    catalog::publish(&pg, d.version, "李科长").unwrap();

    let out = run(NEW_VILLAGE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was mirrored: the data directory is not where PostgreSQL towns keep state.
    assert!(!divisions::mirror_path(dir.path()).exists());
}
