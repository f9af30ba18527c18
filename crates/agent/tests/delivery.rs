//! 代办员送达 without signal: the agent records 已送达 where the resident lives, the mark waits on
//! the device through failed syncs and process restarts, and the next sync that reaches the town
//! records it there once, with the real handover time; a repeated mark changes nothing.

mod common;

use std::path::Path;

use bianmin_protocol::sync::{DeviceRole, TownAction};
use bianmin_protocol::{CaseState, Delivery};
use common::*;

fn case<'a>(st: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    st["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

/// `sync` in a blocking task (the town runs on this test's runtime).
async fn sync(data: &Path, extra: &[&str]) -> std::process::Output {
    let data = data.to_path_buf();
    let mut args = vec!["sync".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        agent(&data, &a)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_recorded_offline_reaches_the_town_once() {
    let town_dir = tempfile::tempdir().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, addr) = serve_town(town_dir.path()).await;
    let data = agent_dir.path();
    let c = code(&state, DeviceRole::Agent, Some(VILLAGE));
    let (d, url) = (data.to_path_buf(), format!("http://{addr}"));
    let o = tokio::task::spawn_blocking(move || {
        agent(
            &d,
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
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    let (brought, _) = new_complete_case(data, work.path(), 3, 30);
    let (mailed, _) = new_complete_case(data, work.path(), 4, 40);
    let o = sync(data, &[]).await;
    assert!(o.status.success(), "{}", text(&o));

    let staff = staff_transport(&state, addr).await;
    for (id, delivery) in [
        (&brought, Delivery::AgentDelivery),
        (
            &mailed,
            Delivery::Mail {
                carrier: "EMS".into(),
                tracking_number: "1180000000004".into(),
            },
        ),
    ] {
        staff.act(id, &staff_act(TownAction::Accept)).await.unwrap();
        staff
            .act(
                id,
                &staff_act(TownAction::Complete {
                    result: "已批准".into(),
                    delivery,
                }),
            )
            .await
            .unwrap();
    }
    let o = sync(data, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(case(&status(data), &brought)["state"], "completed");

    // A mailed result is not the agent's to mark.
    let o = agent(data, &["deliver", &mailed]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("not a result the town gave this agent to deliver"),
        "{}",
        text(&o)
    );

    // In the resident's house, without signal: the mark is recorded on the device...
    let o = agent(data, &["deliver", &brought]);
    assert!(o.status.success(), "{}", text(&o));
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = sync(
        data,
        &["--server", &format!("http://{dead}"), "--attempts", "1"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // ...and waits there, across processes, while the town still shows 办结.
    let mark = case(&status(data), &brought)["delivery"].clone();
    assert_eq!(mark["sent"], false, "{mark}");
    assert_eq!(mark["person"], "李代办");
    let handed_over: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(mark["at"].clone()).unwrap();
    assert_eq!(
        state.store.case(&brought).unwrap().unwrap().case.state,
        CaseState::Completed
    );

    // Signal again: the next sync records it at the town, and the feed brings 已送达 back.
    let o = sync(data, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("delivery of {brought} recorded")),
        "{}",
        text(&o)
    );
    let st = status(data);
    assert_eq!(case(&st, &brought)["state"], "delivered", "{st}");
    assert_eq!(case(&st, &brought)["delivery"]["sent"], true);
    let town_case = state.store.case(&brought).unwrap().unwrap().case;
    assert_eq!(town_case.state, CaseState::Delivered);
    let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let last = town_case.history.last().unwrap();
    assert_eq!(
        last.note,
        format!(
            "送达时间：{}",
            handed_over.with_timezone(&china).format("%Y-%m-%d %H:%M")
        )
    );
    assert!(last.by.starts_with("李代办"), "{}", last.by);

    // Marking again (a lost answer, or staff marking it too) answers the same and records nothing new.
    let again = staff
        .act(
            &brought,
            &staff_act(TownAction::Deliver {
                note: String::new(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(again.state, CaseState::Delivered);
    let o = agent(data, &["deliver", &brought]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        case(&status(data), &brought)["delivery"]["at"],
        mark["at"],
        "the first handover time is kept"
    );
    let o = sync(data, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    let audit = state.store.audit_log().unwrap();
    let marks = audit
        .iter()
        .filter(|e| {
            e.draft.action == "deliver" && e.draft.case_id.as_deref() == Some(brought.as_str())
        })
        .count();
    assert_eq!(marks, 1, "one 已送达 in the audit log");
    assert_eq!(
        state
            .store
            .case(&brought)
            .unwrap()
            .unwrap()
            .case
            .history
            .iter()
            .filter(|h| h.to == CaseState::Delivered)
            .count(),
        1
    );
}
