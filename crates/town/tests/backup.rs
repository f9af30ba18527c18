//! `bianmin-town backup` and `restore` for the embedded store: a backup taken from a running
//! server while a phone keeps submitting is consistent (every case with its audit entry and feed
//! event, an intact chain), restores into an empty data directory with every attachment byte for
//! byte and the same server key, and a damaged backup is refused.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use bianmin_town::store::{AdminStore, SledStore, TownStore};
use common::*;

fn cli(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_serving_town_restores_consistent_and_complete() {
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let mut pages = Vec::new();
    for i in 0..3u64 {
        let p = page(300 + i, 20_000 + i as usize * 777);
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
        pages.push(p);
    }
    bianmin_town::oversight::supervisor_add(town.state.admin.as_ref(), "张科长").unwrap();
    let addr = town.serve().await;
    std::fs::write(town.dir.path().join("server.addr"), addr.to_string()).unwrap();

    // The phone keeps submitting while the backup is taken.
    let busy = Arc::new(AtomicBool::new(true));
    let writer = {
        let (r, agent, busy, p) = (r.clone(), agent.clone(), busy.clone(), pages[0].clone());
        tokio::spawn(async move {
            let mut n = 0;
            while busy.load(Ordering::Relaxed) {
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
                n += 1;
            }
            n
        })
    };
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("town.bak");
    let (data, f) = (town.dir.path().to_path_buf(), file.clone());
    let out =
        tokio::task::spawn_blocking(move || cli(&data, &["backup", "--out", f.to_str().unwrap()]))
            .await
            .unwrap();
    busy.store(false, Ordering::Relaxed);
    let during = writer.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("by the running server"), "{stdout}");
    eprintln!("{during} cases submitted while the backup ran");

    // Restore into an empty directory.
    let restored = tempfile::tempdir().unwrap();
    let out = cli(restored.path(), &["restore", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = SledStore::open(&restored.path().join("db")).unwrap();
    let log = s.audit_log().unwrap();
    bianmin_town::audit::verify_chain(&log).unwrap();
    let original = town.store.audit_log().unwrap();
    assert_eq!(
        &original[..log.len()],
        &log[..],
        "the backup is a prefix of the live chain"
    );
    let cases = s.cases().unwrap();
    assert!(cases.len() >= 3);
    let (feed, _) = s.changes(&[NANGUAN.into()], 0, 10_000).unwrap();
    for c in &cases {
        assert!(
            log.iter()
                .any(|e| e.draft.action == "submit"
                    && e.draft.case_id.as_deref() == Some(&c.case.id)),
            "case {} without its audit entry: not a consistent cut",
            c.case.id
        );
        assert!(
            feed.iter().any(|e| e.event.case_id == c.case.id),
            "case without its feed event"
        );
    }
    assert_eq!(feed.len(), cases.len());
    let files = bianmin_town::Files::new(restored.path()).unwrap();
    for p in &pages {
        let sha = bianmin_town::files::sha256_hex(p);
        assert_eq!(&std::fs::read(files.attachment_path(&sha)).unwrap(), p);
        assert!(s.held_by(&sha, NANGUAN).unwrap());
    }
    let admin = bianmin_town::store::FileAdmin::new(restored.path());
    assert_eq!(
        admin.server_key().unwrap().to_bytes(),
        town.state.admin.server_key().unwrap().to_bytes()
    );
    assert!(admin.supervisor("张科长").unwrap().is_some());
    drop(s);

    // Restoring over a town is refused; a damaged backup too.
    let again = cli(restored.path(), &["restore", file.to_str().unwrap()]);
    assert!(!again.status.success());
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    let damaged = out_dir.path().join("damaged.bak");
    std::fs::write(&damaged, &bytes).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let out = cli(fresh.path(), &["restore", damaged.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not hash"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stopped_town_is_backed_up_directly() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["cases"]);
    assert!(out.status.success());
    let file = dir.path().join("b.bak");
    let out = cli(dir.path(), &["backup", "--out", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("running server"));
    let restored = tempfile::tempdir().unwrap();
    let out = cli(restored.path(), &["restore", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
