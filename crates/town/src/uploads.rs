//! One writer per partial upload, and the newest attempt wins.
//!
//! A phone that leaves coverage mid-upload does not reset its connection: the connection goes
//! silent and stays open, and its PATCH handler would hold the page's write slot until the
//! operating system gives up on the socket (hours, or never). So a newer attempt for the same page
//! takes the slot over: it bumps the slot's generation, which wakes the older handler, and the
//! older handler stops before writing another byte. Handlers also bound their wait for each body
//! frame and for the whole request (`Limits`), so even an abandoned connection frees the slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, OwnedMutexGuard};

#[derive(Default)]
struct Slot {
    /// Held while bytes are written; the partial file has one writer.
    write: Arc<tokio::sync::Mutex<()>>,
    /// Raised by every new attempt; a holder whose generation is no longer current stops.
    generation: Option<watch::Sender<u64>>,
}

/// The write slots of partial uploads, by upload key.
#[derive(Default)]
pub struct Writers {
    slots: Mutex<HashMap<String, Slot>>,
}

/// The right to write one partial upload, until it is dropped or taken over.
pub struct Writer {
    _write: OwnedMutexGuard<()>,
    generation: watch::Receiver<u64>,
    mine: u64,
}

impl Writers {
    /// Takes the slot for `key`, preempting an older holder (which stops before its next write).
    pub async fn take(&self, key: &str) -> Writer {
        let (write, mut generation, mine) = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // Forget idle slots so the map does not grow with every page ever uploaded.
            if slots.len() > 4096 {
                slots.retain(|_, s| Arc::strong_count(&s.write) > 1);
            }
            let slot = slots.entry(key.to_string()).or_default();
            let tx = slot.generation.get_or_insert_with(|| watch::channel(0).0);
            tx.send_modify(|g| *g += 1);
            let mine = *tx.borrow();
            (slot.write.clone(), tx.subscribe(), mine)
        };
        generation.mark_unchanged();
        Writer {
            _write: write.lock_owned().await,
            generation,
            mine,
        }
    }
}

impl Writer {
    /// Whether a newer attempt has asked for the slot: stop writing and answer.
    pub fn taken_over(&self) -> bool {
        *self.generation.borrow() != self.mine
    }

    /// Resolves when a newer attempt asks for the slot.
    pub async fn preempted(&mut self) {
        let mine = self.mine;
        // An error means the slot map dropped the sender: nobody can take over any more.
        if self.generation.wait_for(|g| *g != mine).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_newer_attempt_takes_the_slot_from_a_silent_one() {
        let writers = Arc::new(Writers::default());
        let mut old = writers.take("upload/a").await;
        assert!(!old.taken_over());
        let w = writers.clone();
        let newer = tokio::spawn(async move { w.take("upload/a").await });
        // The old holder is woken by the newer attempt, sees it lost the slot and lets go.
        tokio::time::timeout(Duration::from_secs(5), old.preempted())
            .await
            .expect("the old holder is told");
        assert!(old.taken_over());
        drop(old);
        let newer = tokio::time::timeout(Duration::from_secs(5), newer)
            .await
            .expect("the newer attempt gets the slot")
            .unwrap();
        assert!(!newer.taken_over());
        // Another key is independent.
        let other = tokio::time::timeout(Duration::from_secs(5), writers.take("upload/b"))
            .await
            .unwrap();
        assert!(!other.taken_over());
    }
}
