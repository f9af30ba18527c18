//! The "done when": the `bianmin-agent` CLI on one data dir and the town centre on another
//! complete the loop through a faulty proxy — enrol, create, sync, town asks for a correction, the
//! village sees it, resubmits the same case, town accepts and completes, the village sees 办结.
//!
//! The town runs in-process from the `bianmin-town` library on 127.0.0.1:0; the agent is the real
//! binary. Town staff act through the engine's signed transport, as a tablet would.

mod common;
#[path = "../../town/tests/common/proxy.rs"]
mod proxy;

use std::path::Path;

use bianmin_protocol::sync::{DeviceRole, TownAction};
use bianmin_protocol::{Delivery, MissingItem};
use common::*;
use proxy::Faults;

/// `sync` until it exits 0 (each run already retries with backoff; the proxy breaks ~30% of requests).
fn sync_until_acknowledged(data: &Path) -> String {
    for _ in 0..30 {
        let o = agent(data, &["sync", "--attempts", "20"]);
        if o.status.success() {
            return text(&o);
        }
        assert_eq!(o.status.code(), Some(1), "sync failed hard: {}", text(&o));
    }
    panic!("sync never acknowledged everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_cli_and_town_complete_the_loop_through_a_faulty_network() {
    let town_dir = tempfile::tempdir().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, addr) = serve_town(town_dir.path()).await;
    let px = proxy::start(addr, Faults::harsh(), 11).await;
    let url = format!("http://{}", px.addr);
    let data = agent_dir.path().to_path_buf();

    // Enrol through the faulty proxy; a lost answer is recovered by the CLI, a reset request is
    // retried with a fresh code.
    let mut enrolled = false;
    for _ in 0..20 {
        let c = code(&state, DeviceRole::Agent, Some(VILLAGE));
        let o = tokio::task::spawn_blocking({
            let (data, url) = (data.clone(), url.clone());
            move || {
                agent(
                    &data,
                    &[
                        "enroll",
                        "--server",
                        &url,
                        "--code",
                        &c,
                        "--person",
                        "李代办",
                    ],
                )
            }
        })
        .await
        .unwrap();
        if o.status.success() {
            enrolled = true;
            break;
        }
    }
    assert!(enrolled, "enrolment never went through");
    let st = status(&data);
    assert_eq!(st["enrolled"], true);
    assert_eq!(st["village"], VILLAGE);

    // Create a complete case with the CLI (every required material photographed).
    let (case_id, mut photos) = new_complete_case(&data, work.path(), 7, 99);
    assert_eq!(status(&data)["queued"], 1);

    // Unreachable town centre: exit 1 with the reason, the case stays queued.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = agent(
        &data,
        &[
            "sync",
            "--server",
            &format!("http://{dead}"),
            "--attempts",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 case(s) still waiting"),
        "{}",
        text(&o)
    );
    assert_eq!(status(&data)["queued"], 1);

    // Sync through the faulty proxy.
    let d = data.clone();
    tokio::task::spawn_blocking(move || sync_until_acknowledged(&d))
        .await
        .unwrap();
    let st = status(&data);
    assert_eq!(st["queued"], 0);
    assert_eq!(st["cases"][0]["state"], "received");

    // Town staff (a tablet enrolled directly) ask for a correction with the complete list.
    let staff = staff_transport(&state, addr).await;
    let act = staff_act;
    let inbox = staff.inbox("state=received").await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].case_id, case_id);
    let missing = vec![MissingItem {
        key: "household_register".into(),
        note: "户口簿本人页不清晰，请重拍".into(),
    }];
    staff
        .act(
            &case_id,
            &act(TownAction::RequestCorrection {
                missing: missing.clone(),
                note: "请一次补齐".into(),
            }),
        )
        .await
        .unwrap();

    // The village sees the correction with its list.
    let d = data.clone();
    tokio::task::spawn_blocking(move || sync_until_acknowledged(&d))
        .await
        .unwrap();
    let st = status(&data);
    assert_eq!(st["cases"][0]["state"], "correction_requested");
    assert_eq!(st["cases"][0]["correction"][0]["key"], "household_register");

    // It adds the page and resubmits the same case, now version 2.
    let fix = work.path().join("household_register-retake.jpg");
    let retake = bianmin_agent::cases::crash_photo(100, 1);
    std::fs::write(&fix, &retake).unwrap();
    let o = agent(
        &data,
        &[
            "correct",
            &case_id,
            "--material",
            &format!("household_register={}", fix.display()),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    photos.push(retake);
    let d = data.clone();
    tokio::task::spawn_blocking(move || sync_until_acknowledged(&d))
        .await
        .unwrap();
    let st = status(&data);
    assert_eq!(st["cases"][0]["version"], 2);
    assert_eq!(st["cases"][0]["state"], "received");

    // Town accepts and completes by mail; the village sees 办结 with the tracking number.
    let accepted = staff.act(&case_id, &act(TownAction::Accept)).await.unwrap();
    assert!(accepted.deadline.is_some());
    let delivery = Delivery::Mail {
        carrier: "EMS".into(),
        tracking_number: "1180000000003".into(),
    };
    staff
        .act(
            &case_id,
            &act(TownAction::Complete {
                result: "兵役登记已完成".into(),
                delivery,
            }),
        )
        .await
        .unwrap();
    let d = data.clone();
    tokio::task::spawn_blocking(move || sync_until_acknowledged(&d))
        .await
        .unwrap();
    let st = status(&data);
    assert_eq!(st["cases"][0]["state"], "completed", "{st}");
    assert_eq!(
        st["cases"][0]["last_decision"]["delivery"]["tracking_number"],
        "1180000000003"
    );
    assert!(st["cases"][0]["deadline"].is_string());

    // The town holds one case (no duplicate), two versions, every page byte-identical, 首问负责 kept.
    let cases = state.store.cases().unwrap();
    assert_eq!(cases.len(), 1);
    let sc = &cases[0];
    assert_eq!(sc.versions.len(), 2);
    assert_eq!(sc.case.responsible.name, "李代办");
    let stored: Vec<Vec<u8>> = sc
        .case
        .materials
        .iter()
        .flat_map(|m| &m.pages)
        .map(|p| std::fs::read(state.files.attachment_path(&p.sha256)).unwrap())
        .collect();
    assert_eq!(stored.len(), photos.len());
    for p in &photos {
        assert!(stored.contains(p), "a page differs or is missing");
    }
    bianmin_town::audit::verify_chain(&state.store.audit_log().unwrap()).unwrap();
    eprintln!("proxy: {:?}", px.stats);
}

#[test]
fn sync_without_enrolment_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let o = agent(dir.path(), &["sync"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not enrolled"),
        "{}",
        text(&o)
    );
}
