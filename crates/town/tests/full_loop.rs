//! The loop on the library level, through the faulty proxy: enrol, create and seal a case on
//! the village side (engine case model), sync, town asks for a correction, the village sees it, fixes
//! and resubmits the same case as version 2, town accepts and completes, the village sees 办结.
//! (The same loop driven through the `bianmin-agent` binary lives in `crates/agent/tests`.)

mod common;

use std::sync::Mutex;
use std::time::Duration;

use bianmin_engine::case::{Case, CaseEvent};
use bianmin_engine::sync::{sync_with_retry, Backoff, StoreFailure, SyncEvent, SyncStore};
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, Receipt, TownAction};
use bianmin_protocol::{
    AgentRef, Applicant, AttachmentRef, CaseState, CaseSubmission, Decision, DecisionEvent,
    Delivery, MaterialPages, MissingItem,
};
use common::proxy::{self, Faults};
use common::*;
use ed25519_dalek::VerifyingKey;

/// The village phone: one case in the engine's model, its pages, and the feed cursor.
struct Phone {
    case: Mutex<Case>,
    files: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    cursor: Mutex<u64>,
}

impl Phone {
    fn add_page(&self, key: &str, name: &str, bytes: Vec<u8>) {
        let sha = bianmin_engine::transport::sha256_hex(&bytes);
        let r = AttachmentRef {
            name: name.into(),
            sha256: sha.clone(),
            bytes: bytes.len() as u64,
            mime: "image/jpeg".into(),
        };
        let mut c = self.case.lock().unwrap();
        match c.materials.iter_mut().find(|m| m.key == key) {
            Some(m) => m.pages.push(r),
            None => c.materials.push(MaterialPages {
                key: key.into(),
                pages: vec![r],
            }),
        }
        self.files.lock().unwrap().insert(sha, bytes);
    }
    fn state(&self) -> CaseState {
        self.case.lock().unwrap().state
    }
}

impl SyncStore for Phone {
    fn pending(&self) -> Result<Vec<CaseSubmission>, StoreFailure> {
        let c = self.case.lock().unwrap();
        Ok(if c.state == CaseState::Queued {
            vec![c.submission(c.created_at)]
        } else {
            vec![]
        })
    }
    fn read_attachment(
        &self,
        sha256: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, StoreFailure> {
        let f = self.files.lock().unwrap();
        let b = f.get(sha256).ok_or("no such page")?;
        let s = (offset as usize).min(b.len());
        Ok(b[s..(s + max).min(b.len())].to_vec())
    }
    fn mark_uploaded(&self, r: &Receipt) -> Result<(), StoreFailure> {
        let mut c = self.case.lock().unwrap();
        if c.state == CaseState::Queued && c.version == r.version {
            c.apply(CaseEvent::Uploaded, "sync", chrono::Utc::now())?;
        }
        Ok(())
    }
    fn apply_town_event(&self, _seq: u64, e: &DecisionEvent) -> Result<(), StoreFailure> {
        let mut c = self.case.lock().unwrap();
        if e.case_id != c.id || e.version != c.version || c.state == e.decision.resulting_state() {
            return Ok(());
        }
        c.apply(CaseEvent::Town(e.decision.clone()), &e.by, e.at)?;
        Ok(())
    }
    fn cursor(&self) -> Result<u64, StoreFailure> {
        Ok(*self.cursor.lock().unwrap())
    }
    fn set_cursor(&self, c: u64) -> Result<(), StoreFailure> {
        *self.cursor.lock().unwrap() = c;
        Ok(())
    }
}

const PATIENT: Backoff = Backoff {
    base: Duration::from_millis(5),
    cap: Duration::from_millis(100),
    max_attempts: 400,
};

async fn sync_until_done(phone: &Phone, t: &Transport, key: &VerifyingKey) {
    for _ in 0..50 {
        if sync_with_retry(phone, t, Some(key), &PATIENT, &|_e: SyncEvent| {})
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("sync does not converge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_submit_correct_resubmit_accept_complete_through_faults() {
    let town = Town::new();
    let addr = town.serve().await;
    let px = proxy::start(addr, Faults::harsh(), 7).await;
    let server = format!("http://{}", px.addr);

    // Enrol through the faulty path too: an enrolment whose answer is lost can be retried only with a
    // new code, so retry with fresh codes until one goes through.
    let dev = Device::fresh(NANGUAN);
    let open = Transport::with_timeouts(
        &server,
        None,
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(3),
            stall: Duration::from_secs(3),
        },
    )
    .unwrap();
    let enrolled = loop {
        let code = town.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
        let req = EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: "李代办".into(),
        };
        match open.enrol(&req).await {
            Ok(r) => break r,
            Err(e) if e.is_transient() => continue,
            // The first attempt registered the device but its answer was lost.
            Err(e) if matches!(&e, bianmin_engine::transport::TransportError::Rejected { code, .. } if code == "device_exists") => {
                break Transport::with_timeouts(
                    &server,
                    Some(Credential {
                        device_id: dev.id.clone(),
                        key: dev.key.clone(),
                    }),
                    Timeouts::default(),
                )
                .unwrap()
                .me()
                .await
                .unwrap()
            }
            Err(e) => panic!("enrolment failed: {e}"),
        }
    };
    let server_key = VerifyingKey::from_bytes(
        &hex::decode(&enrolled.server_key)
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let t = Transport::with_timeouts(
        &server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(3),
            stall: Duration::from_secs(3),
        },
    )
    .unwrap();

    // Create, 初审, seal.
    let agent = AgentRef {
        device_id: dev.id.clone(),
        name: "李代办".into(),
        village: NANGUAN.into(),
    };
    let applicant = Applicant {
        name: "张三".into(),
        id_number: "14042319800101001X".into(),
        phone: "13800138000".into(),
        address: String::new(),
    };
    let case = Case::new(
        dev.next_case_id(),
        "V01",
        applicant,
        agent,
        chrono::Utc::now(),
    );
    let phone = Phone {
        case: Mutex::new(case),
        files: Default::default(),
        cursor: Mutex::new(0),
    };
    phone.add_page("id_card", "id_card-1.jpg", page(1, 300_000));
    phone.add_page("id_card", "id_card-2.jpg", page(2, 280_000));
    {
        let mut c = phone.case.lock().unwrap();
        c.apply(CaseEvent::PrecheckPassed, &dev.id, chrono::Utc::now())
            .unwrap();
        c.apply(CaseEvent::Seal, &dev.id, chrono::Utc::now())
            .unwrap();
    }
    sync_until_done(&phone, &t, &server_key).await;
    assert_eq!(phone.state(), CaseState::Received);
    let id = phone.case.lock().unwrap().id.clone();

    // Town: 补正 with the complete list.
    let staff = town.staff(GUHAN).await;
    let r = town.router();
    let act = |a: TownAction| {
        staff.json(
            "POST",
            &format!("/v1/cases/{id}/actions"),
            &ActionRequest {
                action: a,
                staff: "王镇办".into(),
                expected_version: None,
                pin: None,
            },
        )
    };
    let missing = vec![MissingItem {
        key: "household_register".into(),
        note: "缺户口簿本人页".into(),
    }];
    assert_eq!(
        send(
            &r,
            act(TownAction::RequestCorrection {
                missing: missing.clone(),
                note: String::new()
            })
        )
        .await
        .0,
        axum::http::StatusCode::OK
    );

    // The village sees it with the list, fixes the case in place and resubmits it (same id, version 2).
    sync_until_done(&phone, &t, &server_key).await;
    assert_eq!(phone.state(), CaseState::CorrectionRequested);
    assert_eq!(phone.case.lock().unwrap().correction, missing);
    phone.add_page(
        "household_register",
        "household_register-1.jpg",
        page(3, 350_000),
    );
    {
        let mut c = phone.case.lock().unwrap();
        c.apply(CaseEvent::PrecheckPassed, &dev.id, chrono::Utc::now())
            .unwrap();
        c.apply(CaseEvent::Seal, &dev.id, chrono::Utc::now())
            .unwrap();
        assert_eq!(c.version, 2);
    }
    sync_until_done(&phone, &t, &server_key).await;
    assert_eq!(phone.state(), CaseState::Received);

    // Town accepts and completes with mail delivery; the village sees 办结 with the tracking number.
    assert_eq!(
        send(&r, act(TownAction::Accept)).await.0,
        axum::http::StatusCode::OK
    );
    let done = TownAction::Complete {
        result: "已办结".into(),
        delivery: Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: "1180000000002".into(),
        },
    };
    assert_eq!(send(&r, act(done)).await.0, axum::http::StatusCode::OK);
    sync_until_done(&phone, &t, &server_key).await;
    let c = phone.case.lock().unwrap();
    assert_eq!(c.state, CaseState::Completed);
    assert!(
        matches!(&c.last_decision, Some(Decision::Completed { delivery: Delivery::Mail { tracking_number, .. }, .. }) if tracking_number == "1180000000002")
    );
    assert!(c.deadline.is_some());

    // One case on the town side, two versions, all pages byte-identical.
    use bianmin_town::store::TownStore;
    let all = town.store.cases().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].versions.len(), 2);
    for p in all[0].case.materials.iter().flat_map(|m| &m.pages) {
        assert_eq!(
            std::fs::read(town.state.files.attachment_path(&p.sha256)).unwrap(),
            phone.files.lock().unwrap()[&p.sha256]
        );
    }
}
