//! The town tablet's 差评 desk over real HTTP with the engine's signed client: a staff device sees
//! its town's bad reviews with the item, the applicant's full phone, the case's timeline, the
//! rating's words and the working-day clock; records 核实, 整改 and 回访 (with its outcome) naming
//! the staff member; other towns and village phones see none of it; every read is audited.

mod common;
mod haochaping;

use std::time::Duration;

use bianmin_engine::transport::{Credential, Timeouts, Transport, TransportError};
use bianmin_protocol::bad_review::ReviewStepRequest;
use bianmin_town::store::TownStore;
use bianmin_town::time::china_today;
use common::*;
use haochaping::*;

fn client(server: &str, d: &Device) -> Transport {
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(20),
        stall: Duration::from_secs(20),
    };
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: d.id.clone(),
            key: d.key.clone(),
        }),
        timeouts,
    )
    .unwrap()
}

/// 王镇办's PIN: the town has personal accounts, so steps are recorded under the checked person.
const PIN: &str = "204816";

fn step(kind: &str, notes: &str, outcome: Option<&str>) -> ReviewStepRequest {
    ReviewStepRequest {
        step: kind.into(),
        by: "王镇办".into(),
        notes: notes.into(),
        outcome: outcome.map(str::to_string),
        follow_up_on: None,
        photos: Vec::new(),
        pin: Some(PIN.into()),
    }
}

fn status(e: TransportError) -> u16 {
    match e {
        TransportError::Rejected { status, .. } => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_work_the_loop_from_the_tablet_with_contact_timeline_and_clock() {
    let town = Town::new();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let r = town.router();
    let id = completed_case(&r, &agent, &staff).await;
    let good = completed_case(&r, &agent, &staff).await;
    let (st, _) = send(
        &r,
        sms_rating_post(&sms_link(&town, &id).await, 1, "跑了三趟"),
    )
    .await;
    assert_eq!(st, axum::http::StatusCode::SEE_OTHER);
    let (st, _) = send(&r, sms_rating_post(&sms_link(&town, &good).await, 5, "")).await;
    assert_eq!(st, axum::http::StatusCode::SEE_OTHER);

    // From here the town works with personal accounts (the cases above were handled before).
    bianmin_town::staff::add_staff(town.state.admin.as_ref(), GUHAN, "王镇办", PIN).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let app = town
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let tablet = client(&server, &staff);

    let list = tablet.bad_reviews().await.unwrap();
    assert_eq!(list.len(), 1, "only the bad review: {list:?}");
    let b = &list[0];
    let case = town.store.case(&id).unwrap().unwrap().case;
    assert_eq!(b.case_id, id);
    assert!(
        !b.item_name.is_empty() && b.item_name != case.item,
        "{}",
        b.item_name
    );
    assert_eq!(
        (b.applicant.as_str(), b.phone.as_str()),
        (case.applicant.name.as_str(), case.applicant.phone.as_str())
    );
    assert!(b.village_name.contains("南关"), "{}", b.village_name);
    assert_eq!(
        (b.level, b.level_label.as_str(), b.comment.as_str()),
        (1, "非常不满意", "跑了三趟")
    );
    assert_eq!((b.efficiency, b.quality, b.attitude), (4, 4, 1));
    // The 15-working-day clock, counted with the catalog's holiday table.
    let calendar = town.state.calendar();
    assert_eq!(b.deadline, calendar.add_working_days(china_today(), 15));
    assert_eq!(b.working_days_left, 15);
    let labels: Vec<&str> = b.timeline.iter().map(|t| t.label.as_str()).collect();
    assert!(
        labels.contains(&"已受理") && labels.contains(&"已办结"),
        "{labels:?}"
    );
    assert_eq!(b.next_step.as_deref(), Some("verify"));

    // A village phone may not read it; another town's tablet sees nothing of it.
    assert_eq!(
        status(client(&server, &agent).bad_reviews().await.unwrap_err()),
        403
    );
    let other = town.staff(SHANFU).await;
    assert!(client(&server, &other)
        .bad_reviews()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        status(
            client(&server, &other)
                .record_review_step(&id, &step("verify", "x", None))
                .await
                .unwrap_err()
        ),
        403
    );

    // A wrong PIN, or none, records nothing: the name in the request alone never counts.
    for pin in [Some("999999"), None] {
        let mut req = step("verify", "冒名", None);
        req.pin = pin.map(str::to_string);
        assert_eq!(
            status(tablet.record_review_step(&id, &req).await.unwrap_err()),
            403
        );
    }

    // Out of order, and a 回访 that does not say whether the resident was reached, are refused.
    assert_eq!(
        status(
            tablet
                .record_review_step(&id, &step("rectify", "先整改", None))
                .await
                .unwrap_err()
        ),
        409
    );
    tablet
        .record_review_step(&id, &step("verify", "已核实：往返三次", None))
        .await
        .unwrap();
    tablet
        .record_review_step(&id, &step("rectify", "一次性告知清单上墙", None))
        .await
        .unwrap();
    assert_eq!(
        status(
            tablet
                .record_review_step(&id, &step("follow_up", "电话回访", None))
                .await
                .unwrap_err()
        ),
        422
    );
    tablet
        .record_review_step(
            &id,
            &step("follow_up", "电话回访，群众认可", Some("reached")),
        )
        .await
        .unwrap();

    let b = tablet.bad_reviews().await.unwrap().remove(0);
    assert_eq!(b.next_step, None);
    let kinds: Vec<&str> = b.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["verify", "rectify", "follow_up"]);
    assert_eq!(b.steps[2].outcome.as_deref(), Some("reached"));
    assert_eq!(b.steps[0].by, format!("王镇办 ({})", staff.id));
    assert!(town.store.rectification(&id).unwrap().unwrap().fed_back());

    // Each read of residents' phones and each step is in the audit chain, naming the device.
    let log = town.store.audit_log().unwrap();
    bianmin_town::audit::verify_chain(&log).unwrap();
    let reads = log
        .iter()
        .filter(|e| e.draft.action == "view_bad_reviews" && e.draft.actor == staff.id)
        .count();
    assert_eq!(reads, 2);
    let steps = log
        .iter()
        .filter(|e| e.draft.action.starts_with("rectification_") && e.draft.actor == staff.id)
        .count();
    assert_eq!(steps, 3);
}
