//! The changes feed on the device: its `seq` is the idempotency key, and an event the phone
//! cannot store stops the cursor before it, so the next run applies it instead of skipping it.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::outbox::{FileKeyStore, Outbox};
use bianmin_engine::sync::{pull_changes, StoreFailure, SyncError, SyncReport, SyncStore};
use bianmin_protocol::sync::{DeviceRole, Receipt, TownAction};
use bianmin_protocol::{CaseState, CaseSubmission, DecisionEvent};
use common::*;

/// The device's outbox, with a storage fault that can be switched on for town events.
struct Flaky {
    outbox: Outbox,
    broken: AtomicBool,
}

impl SyncStore for Flaky {
    fn pending(&self) -> Result<Vec<CaseSubmission>, StoreFailure> {
        self.outbox.pending()
    }
    fn read_attachment(&self, sha: &str, offset: u64, max: usize) -> Result<Vec<u8>, StoreFailure> {
        self.outbox.read_attachment(sha, offset, max)
    }
    fn mark_uploaded(&self, receipt: &Receipt) -> Result<(), StoreFailure> {
        self.outbox.mark_uploaded(receipt)
    }
    fn apply_town_event(&self, seq: u64, event: &DecisionEvent) -> Result<(), StoreFailure> {
        if self.broken.load(Ordering::SeqCst) && event.case_id.ends_with("-0002") {
            return Err("disk full".into());
        }
        self.outbox.apply_town_event(seq, event)
    }
    fn cursor(&self) -> Result<u64, StoreFailure> {
        self.outbox.cursor()
    }
    fn set_cursor(&self, cursor: u64) -> Result<(), StoreFailure> {
        self.outbox.set_cursor(cursor)
    }
}

fn open(data: &Path) -> Outbox {
    Outbox::open(data, &FileKeyStore::new(data.join("device.key"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_keeps_the_cursor_before_the_event_and_a_repeat_changes_nothing() {
    let town_dir = tempfile::tempdir().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, addr) = serve_town(town_dir.path()).await;
    let data = agent_dir.path().to_path_buf();
    let c = code(&state, DeviceRole::Agent, Some(VILLAGE));
    let url = format!("http://{addr}");
    let (d, w) = (data.clone(), work.path().to_path_buf());
    let (first, second) = tokio::task::spawn_blocking(move || {
        let o = agent(
            &d,
            &["enroll", "--server", &url, "--code", &c, "--person", "李"],
        );
        assert!(o.status.success(), "{}", text(&o));
        let (first, _) = new_complete_case(&d, &w, 1, 10);
        let (second, _) = new_complete_case(&d, &w, 2, 20);
        let o = agent(&d, &["sync"]);
        assert!(o.status.success(), "{}", text(&o));
        (first, second)
    })
    .await
    .unwrap();
    assert!(second.ends_with("-0002"), "{second}");
    let staff = staff_transport(&state, addr).await;
    for id in [&first, &second] {
        staff.act(id, &staff_act(TownAction::Accept)).await.unwrap();
    }

    let store = Flaky {
        outbox: open(&data),
        broken: AtomicBool::new(true),
    };
    let enrolment = Enrolment::load(&store.outbox).unwrap().unwrap();
    let t = enrolment.transport().unwrap();
    let before = store.cursor().unwrap();
    let mut report = SyncReport::default();
    let err = pull_changes(&store, &t, &|_| {}, &mut report)
        .await
        .unwrap_err();
    let SyncError::Apply { seq, case_id, .. } = &err else {
        panic!("expected an apply error, got {err:?}");
    };
    assert_eq!(case_id, &second);
    assert!(
        err.user_message().contains(&second),
        "{}",
        err.user_message()
    );
    let stopped = store.cursor().unwrap();
    assert!(
        stopped < *seq && stopped >= before,
        "the cursor ({stopped}) stays before the failed event ({seq})"
    );
    assert_eq!(store.outbox.get(&first).unwrap().state, CaseState::Accepted);
    assert_eq!(
        store.outbox.get(&second).unwrap().state,
        CaseState::Received
    );

    // The disk is fine again: the next run applies the event it could not store.
    store.broken.store(false, Ordering::SeqCst);
    pull_changes(&store, &t, &|_| {}, &mut report)
        .await
        .unwrap();
    assert_eq!(
        store.outbox.get(&second).unwrap().state,
        CaseState::Accepted
    );
    let history = store.outbox.get(&first).unwrap().history.len();

    // The same page of the feed again (a lost answer, a restored cursor): nothing changes twice.
    store.set_cursor(before).unwrap();
    pull_changes(&store, &t, &|_| {}, &mut report)
        .await
        .unwrap();
    assert_eq!(store.outbox.get(&first).unwrap().history.len(), history);
}
