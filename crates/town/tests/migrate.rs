//! `bianmin-town migrate`: a populated embedded town (cases, decisions, a rating with its loop,
//! a revoked device, a supervisor, attachments, signed audit anchors) moves into an empty
//! PostgreSQL database and an S3 bucket with everything intact, and a second run is refused.

mod common;

use std::process::Command;

use axum::http::StatusCode;
use bianmin_protocol::sync::{ActionRequest, TownAction};
use bianmin_protocol::{Decision, DecisionEvent};
use bianmin_town::audit::AuditDraft;
use bianmin_town::store::{AdminStore, PgStore, Rating, Rectification, TownStore};
use common::backends::test_db;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_town_moves_to_postgres_and_s3_intact() {
    let (Some(db), Some(s3)) = (test_db(), common::s3::start()) else {
        eprintln!("no PostgreSQL or S3 test server: nothing to test");
        return;
    };
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let mut ids = Vec::new();
    for i in 0..3u64 {
        let p = page(900 + i, 40_000 + i as usize * 1000);
        agent.upload(&r, &p).await;
        let id = agent.next_case_id();
        let (st, body) = send(
            &r,
            agent.json(
                "PUT",
                &format!("/v1/cases/{id}"),
                &agent.submission(&id, 1, &[&p]),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        ids.push(id);
    }
    let accept = ActionRequest {
        action: TownAction::Accept,
        staff: "王镇办".into(),
        expected_version: None,
        pin: None,
    };
    let (st, body) = send(
        &r,
        staff.json("POST", &format!("/v1/cases/{}/actions", ids[0]), &accept),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // A bad rating with its loop and a first step, straight through the store.
    let store = town.store.clone();
    let rated = ids[1].clone();
    let sc = store.case(&rated).unwrap().unwrap();
    let now = chrono::Utc::now();
    let rating = Rating {
        case_id: rated.clone(),
        village: NANGUAN.into(),
        level: 1,
        efficiency: 1,
        quality: 1,
        attitude: 1,
        comment: "太慢".into(),
        rated_at: now,
        token_issued: now.date_naive(),
        completion: None,
        via: bianmin_town::store::RatingVia::Sms,
        added: None,
    };
    let l = Rectification {
        case_id: rated.clone(),
        village: NANGUAN.into(),
        level: 1,
        comment: "太慢".into(),
        opened_at: now,
        deadline: now.date_naive(),
        steps: Vec::new(),
    };
    let ev = DecisionEvent {
        case_id: rated.clone(),
        version: 1,
        decision: Decision::Rated,
        by: "resident".into(),
        at: now,
    };
    assert!(store
        .rate(
            &rating,
            Some(&l),
            &sc,
            &[ev],
            vec![AuditDraft::new("resident", "rate", Some(&rated), "")]
        )
        .unwrap());
    town.state.admin.revoke(&staff.id).unwrap();
    bianmin_town::oversight::supervisor_add(town.state.admin.as_ref(), "张科长").unwrap();
    let key = town.state.admin.server_key().unwrap();
    let anchors = town.dir.path().join(bianmin_town::audit::ANCHOR_FILE);
    bianmin_town::audit::export_anchor(store.as_ref(), &key, &anchors).unwrap();

    let mut cases = store.cases().unwrap();
    cases.sort_by(|a, b| a.case.id.cmp(&b.case.id));
    let audit = store.audit_log().unwrap();
    let (changes, _) = store.changes(&[NANGUAN.into()], 0, 1000).unwrap();
    let pages: Vec<String> = cases
        .iter()
        .flat_map(|c| {
            c.case
                .materials
                .iter()
                .flat_map(|m| m.pages.iter().map(|p| p.sha256.clone()))
        })
        .collect();
    // `serve` stopped: the embedded database is closed.
    let Town {
        dir,
        state,
        store: sled,
    } = town;
    drop((state, sled, store, r));

    let run = |url: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bianmin-town"));
        cmd.arg("--data").arg(dir.path());
        cmd.args([
            "migrate",
            "--to",
            url,
            "--objects",
            &format!("s3://{}", common::s3::BUCKET),
        ]);
        for (k, v) in s3.options() {
            cmd.env(k.to_uppercase(), v);
        }
        cmd.output().unwrap()
    };
    let out = run(&db.url);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("migrated 3 cases"), "{stdout}");

    let url = db.url.clone();
    let dir_path = dir.path().to_path_buf();
    let (ok, pages) = tokio::task::spawn_blocking(move || {
        let pg = PgStore::open(&url, 2).unwrap();
        let mut got = pg.cases().unwrap();
        got.sort_by(|a, b| a.case.id.cmp(&b.case.id));
        assert_eq!(got, cases, "every case intact");
        assert_eq!(
            pg.audit_log().unwrap(),
            audit,
            "the audit chain, hash for hash"
        );
        assert_eq!(
            pg.changes(&[NANGUAN.into()], 0, 1000).unwrap().0,
            changes,
            "the feed"
        );
        assert_eq!(pg.ratings().unwrap(), vec![rating]);
        assert_eq!(pg.rectifications().unwrap(), vec![l]);
        assert!(pg.is_revoked(&staff.id).unwrap());
        assert!(pg.supervisor("张科长").unwrap().is_some());
        assert_eq!(pg.server_key().unwrap().to_bytes(), key.to_bytes());
        for sha in &pages {
            assert!(pg.held_by(sha, NANGUAN).unwrap());
        }
        // New commits continue the chain and the feed after the imported ones.
        let c = pg.case(&rated).unwrap().unwrap();
        pg.commit(
            Some(&c),
            &[],
            vec![AuditDraft::new("t", "view_case", None, "")],
        )
        .unwrap();
        bianmin_town::audit::verify_chain(&pg.audit_log().unwrap()).unwrap();
        drop(dir_path);
        (true, pages)
    })
    .await
    .unwrap();
    assert!(ok);
    for sha in &pages {
        let obj = std::fs::read(s3.object_path(&format!("{}/{sha}", &sha[..2]))).unwrap();
        assert_eq!(
            &bianmin_town::files::sha256_hex(&obj),
            sha,
            "page in the bucket"
        );
    }
    // A database that already holds a town is not overwritten.
    let again = run(&db.url);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a town"));
}
