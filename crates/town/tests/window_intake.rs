//! 窗口收件 over a real socket: a town clerk takes in a case for a town item at the window on a
//! tablet. The tablet uploads the pages and sends the case with the clerk's PIN through the
//! engine's own client; the town records it as 已接收 under the clerk (首问负责), checks it with its
//! own 初审, and it is handled like any other case, 受理 then 转县. Cases for another town's
//! village, under another person's name, with a wrong PIN or from a village phone are refused and
//! leave nothing behind.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bianmin_engine::transport::{Credential, Timeouts, Transport, TransportError};
use bianmin_engine::validate::checksum_char;
use bianmin_engine::window;
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, TownAction};
use bianmin_protocol::window::WindowIntake;
use bianmin_protocol::{
    AgentRef, Answer, Applicant, AttachmentRef, CaseState, CaseSubmission, MaterialPages,
};
use bianmin_town::files::sha256_hex;
use bianmin_town::staff::add_staff;
use bianmin_town::TownStore;
use common::outbox::MemOutbox;
use common::{page, Device, Town, GUHAN, NANGUAN, SHANFU_VILLAGE};
use ed25519_dalek::VerifyingKey;

const CLERK: &str = "王窗口";
const PIN: &str = "258013";

fn transport(server: &str, dev: &Device) -> Transport {
    let t = Duration::from_secs(10);
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: t,
            request: t,
            stall: t,
        },
    )
    .unwrap()
}

/// Enrols `dev` over HTTP; the town's receipt key.
async fn enrol(server: &str, town: &Town, dev: &Device, role: DeviceRole) -> VerifyingKey {
    let village = (role == DeviceRole::Agent).then_some(dev.village.as_str());
    let code = town.code(role, village, GUHAN);
    let resp = Transport::new(server, None)
        .unwrap()
        .enrol(&EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: "古韩镇窗口平板".into(),
        })
        .await
        .unwrap();
    VerifyingKey::from_bytes(&hex::decode(resp.server_key).unwrap().try_into().unwrap()).unwrap()
}

/// A T01 (高龄补贴) case from the tablet `dev` for a resident of `village` born in 1940, with
/// every required page: what the tablet's 初审 lets through.
fn old_age_case(
    dev: &Device,
    village: &str,
    seq: u32,
    clerk: &str,
) -> (CaseSubmission, Vec<Vec<u8>>) {
    let first17 = "14042319400101123";
    let id_number = format!("{first17}{}", checksum_char(first17.as_bytes()));
    let pages: Vec<Vec<u8>> = (0..5)
        .map(|i| page(u64::from(seq) * 10 + i, 3000))
        .collect();
    let refs = |range: std::ops::Range<usize>| -> Vec<AttachmentRef> {
        range
            .map(|i| AttachmentRef {
                name: format!("p{i}.jpg"),
                sha256: sha256_hex(&pages[i]),
                bytes: pages[i].len() as u64,
                mime: "image/jpeg".into(),
            })
            .collect()
    };
    let answers: BTreeMap<String, Answer> =
        [("account_type", "社会保障卡"), ("applied_by", "老人本人")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Answer::Text(v.to_string())))
            .collect();
    let sub = CaseSubmission {
        id: format!("{village}-20261130-{}-{seq:04}", dev.id),
        version: 1,
        item: "T01".into(),
        village: village.into(),
        applicant: Applicant {
            name: "赵桂兰".into(),
            id_number,
            phone: "13934561234".into(),
            address: "古韩镇南关村".into(),
        },
        answers,
        materials: vec![
            MaterialPages {
                key: "id_card".into(),
                pages: refs(0..2),
            },
            MaterialPages {
                key: "household_register".into(),
                pages: refs(2..4),
            },
            MaterialPages {
                key: "bank_card".into(),
                pages: refs(4..5),
            },
        ],
        responsible: AgentRef {
            device_id: dev.id.clone(),
            name: clerk.into(),
            village: village.into(),
        },
        catalog_version: 0,
        sealed_at: chrono::Utc::now(),
    };
    (sub, pages)
}

fn intake(sub: &CaseSubmission, staff: &str, pin: &str) -> WindowIntake {
    WindowIntake {
        submission: sub.clone(),
        staff: staff.into(),
        pin: Some(pin.into()),
    }
}

fn refused(r: Result<impl std::fmt::Debug, bianmin_engine::sync::SyncError>, status: u16) {
    match r {
        Err(bianmin_engine::sync::SyncError::Transport(TransportError::Rejected {
            status: s,
            ..
        })) if s == status => {}
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_window_case_is_received_under_the_clerk_and_handled_up_to_the_county() {
    let town = Town::new();
    let addr = town.serve().await;
    let server = format!("http://{addr}");
    let admin = town.state.admin.clone();
    std::thread::spawn(move || add_staff(admin.as_ref(), GUHAN, CLERK, PIN).unwrap())
        .join()
        .unwrap();
    let tablet = Device::fresh("");
    let key = enrol(&server, &town, &tablet, DeviceRole::Staff).await;
    let t = transport(&server, &tablet);

    let (sub, pages) = old_age_case(&tablet, NANGUAN, 1, CLERK);
    let store = MemOutbox::default();
    store.add(sub.clone(), pages.clone());

    // A wrong PIN: refused before anything is recorded (the pages may already be uploaded).
    refused(
        window::send(&store, &t, Some(&key), &intake(&sub, CLERK, "111222")).await,
        403,
    );
    assert!(town.store.case(&sub.id).unwrap().is_none());

    let receipt = window::send(&store, &t, Some(&key), &intake(&sub, CLERK, PIN))
        .await
        .unwrap();
    assert_eq!(
        (receipt.case_id.as_str(), receipt.version),
        (sub.id.as_str(), 1)
    );
    // Sent again (the answer was lost): the same receipt, nothing new.
    let again = window::send(&store, &t, Some(&key), &intake(&sub, CLERK, PIN))
        .await
        .unwrap();
    assert_eq!(again, receipt);

    let stored = town.store.case(&sub.id).unwrap().unwrap();
    assert_eq!(stored.case.state, CaseState::Received);
    assert_eq!(stored.case.responsible.name, CLERK, "首问负责: the clerk");
    assert_eq!(stored.case.village, NANGUAN);
    let received = stored.case.history.last().unwrap();
    assert_eq!(received.to, CaseState::Received);
    assert_eq!(received.by, format!("{CLERK} ({})", tablet.id));
    assert_eq!(received.note, "窗口收件");
    assert_eq!(
        stored.town_check,
        Vec::<String>::new(),
        "the town's 初审 passes"
    );
    let audit = town.store.audit_log().unwrap();
    let entry = audit
        .iter()
        .find(|e| e.draft.action == "window_intake")
        .expect("audited");
    assert_eq!(entry.draft.actor, format!("{CLERK} ({})", tablet.id));

    // In the town's inbox like any other case, then 受理 and 转县 by the clerk.
    let rows = t.inbox("").await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.case_id == sub.id)
        .expect("in the inbox");
    assert_eq!((row.state, row.item.as_str()), (CaseState::Received, "T01"));
    let act = |action| ActionRequest {
        action,
        staff: CLERK.into(),
        pin: Some(PIN.into()),
        expected_version: None,
    };
    t.act(&sub.id, &act(TownAction::Accept)).await.unwrap();
    let fwd = t
        .act(
            &sub.id,
            &act(TownAction::Forward {
                note: "报县民政局审批".into(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(fwd.state, CaseState::Forwarded);
    let pages_back = t.attachment(&sub.id, &sha256_hex(&pages[0])).await.unwrap();
    assert_eq!(pages_back, pages[0]);
}

#[tokio::test]
async fn window_cases_outside_the_rules_are_refused_and_leave_nothing() {
    let town = Town::new();
    let addr = town.serve().await;
    let server = format!("http://{addr}");
    let admin = town.state.admin.clone();
    std::thread::spawn(move || add_staff(admin.as_ref(), GUHAN, CLERK, PIN).unwrap())
        .join()
        .unwrap();
    let tablet = Device::fresh("");
    let key = enrol(&server, &town, &tablet, DeviceRole::Staff).await;
    let t = transport(&server, &tablet);
    let store = MemOutbox::default();

    // Another town's village.
    let (far, pages) = old_age_case(&tablet, SHANFU_VILLAGE, 1, CLERK);
    store.add(far.clone(), pages);
    refused(
        window::send(&store, &t, Some(&key), &intake(&far, CLERK, PIN)).await,
        403,
    );
    // A case naming someone else as responsible than the clerk whose PIN came with it.
    let (other, pages) = old_age_case(&tablet, NANGUAN, 2, "李某");
    store.add(other.clone(), pages);
    refused(
        window::send(&store, &t, Some(&key), &intake(&other, CLERK, PIN)).await,
        403,
    );
    // A version 2 without any first one.
    let (mut later, pages) = old_age_case(&tablet, NANGUAN, 3, CLERK);
    later.version = 2;
    store.add(later.clone(), pages);
    refused(
        window::send(&store, &t, Some(&key), &intake(&later, CLERK, PIN)).await,
        409,
    );
    // A village phone may not use the window.
    let phone = Device::fresh(NANGUAN);
    enrol(&server, &town, &phone, DeviceRole::Agent).await;
    let (by_phone, pages) = old_age_case(&phone, NANGUAN, 4, CLERK);
    store.add(by_phone.clone(), pages);
    refused(
        window::send(
            &store,
            &transport(&server, &phone),
            Some(&key),
            &intake(&by_phone, CLERK, PIN),
        )
        .await,
        403,
    );
    for id in [&far.id, &other.id, &later.id, &by_phone.id] {
        assert!(town.store.case(id).unwrap().is_none(), "{id} left nothing");
    }
    assert!(!town
        .store
        .audit_log()
        .unwrap()
        .iter()
        .any(|e| e.draft.action == "window_intake"));
}
