//! An in-memory outbox implementing the engine's `SyncStore`, so the town's fault tests and benchmarks
//! can drive the real sync client without the device's encrypted store.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use bianmin_engine::sync::{StoreFailure, SyncStore};
use bianmin_protocol::sync::Receipt;
use bianmin_protocol::{CaseSubmission, DecisionEvent};

#[derive(Default)]
pub struct MemOutbox {
    pub inner: Mutex<State>,
}

#[derive(Default)]
pub struct State {
    pub queue: Vec<CaseSubmission>,
    pub files: BTreeMap<String, Vec<u8>>,
    pub receipts: BTreeMap<(String, u32), Receipt>,
    pub events: Vec<DecisionEvent>,
    pub cursor: u64,
}

impl MemOutbox {
    pub fn add(&self, sub: CaseSubmission, pages: Vec<Vec<u8>>) {
        let mut s = self.inner.lock().unwrap();
        for p in pages {
            s.files.insert(bianmin_engine::transport::sha256_hex(&p), p);
        }
        s.queue.push(sub);
    }

    pub fn pending_count(&self) -> usize {
        self.pending().unwrap().len()
    }
}

impl SyncStore for MemOutbox {
    fn pending(&self) -> Result<Vec<CaseSubmission>, StoreFailure> {
        let s = self.inner.lock().unwrap();
        Ok(s.queue
            .iter()
            .filter(|c| !s.receipts.contains_key(&(c.id.clone(), c.version)))
            .cloned()
            .collect())
    }
    fn read_attachment(
        &self,
        sha256: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, StoreFailure> {
        let s = self.inner.lock().unwrap();
        let f = s.files.get(sha256).ok_or("no such attachment")?;
        let start = (offset as usize).min(f.len());
        Ok(f[start..(start + max).min(f.len())].to_vec())
    }
    fn mark_uploaded(&self, r: &Receipt) -> Result<(), StoreFailure> {
        self.inner
            .lock()
            .unwrap()
            .receipts
            .insert((r.case_id.clone(), r.version), r.clone());
        Ok(())
    }
    fn apply_town_event(&self, _seq: u64, e: &DecisionEvent) -> Result<(), StoreFailure> {
        self.inner.lock().unwrap().events.push(e.clone());
        Ok(())
    }
    fn cursor(&self) -> Result<u64, StoreFailure> {
        Ok(self.inner.lock().unwrap().cursor)
    }
    fn set_cursor(&self, c: u64) -> Result<(), StoreFailure> {
        self.inner.lock().unwrap().cursor = c;
        Ok(())
    }
}
