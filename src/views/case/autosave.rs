//! Autosave of the case form: every change reaches the book, one write at a time and off the UI
//! thread, the latest value of each field winning.
//!
//! A write is a decrypt, an encrypt and an fsync of the case record (durable when it returns);
//! on a cheap phone that is tens of milliseconds, too long to block the keystroke that caused it.
//! Keystrokes that arrive while a write runs are coalesced into the next one. The writer is a
//! runtime task, not a UI task, so leaving the screen does not drop what was typed; 初审 and
//! sealing wait for it first ([`Autosave::settled`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bianmin_engine::case::Case;
use tokio::sync::Notify;

use crate::services::book::Book;

#[derive(Default)]
struct Queue {
    /// Field values typed and not yet written, by key.
    values: BTreeMap<String, String>,
    /// The batch being written now: still shown over what the book holds until it is stored.
    writing: BTreeMap<String, String>,
    /// A writer task is running.
    running: bool,
    /// Why the last write failed, until one succeeds.
    failed: Option<String>,
}

/// The form's pending writes for one case.
#[derive(Clone)]
pub struct Autosave {
    book: Book,
    case_id: String,
    queue: Arc<Mutex<Queue>>,
    idle: Arc<Notify>,
}

impl PartialEq for Autosave {
    fn eq(&self, other: &Autosave) -> bool {
        Arc::ptr_eq(&self.queue, &other.queue)
    }
}

impl Autosave {
    pub fn new(book: Book, case_id: String) -> Autosave {
        Autosave {
            book,
            case_id,
            queue: Arc::default(),
            idle: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a field's new value and makes sure a writer runs.
    pub fn set(&self, key: &str, value: &str) {
        let start = {
            let mut q = self.lock();
            q.values.insert(key.to_string(), value.to_string());
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.write_all().await });
        }
    }

    /// Writes batches until nothing is pending.
    async fn write_all(self) {
        loop {
            let batch = {
                let mut q = self.lock();
                q.writing.clear();
                if q.values.is_empty() {
                    q.running = false;
                    self.idle.notify_waiters();
                    return;
                }
                q.writing = std::mem::take(&mut q.values);
                q.writing.clone()
            };
            let (book, id) = (self.book.clone(), self.case_id.clone());
            let result = tokio::task::spawn_blocking(move || {
                batch
                    .iter()
                    .try_for_each(|(k, v)| book.set_field(&id, k, v).map(|_| ()))
            })
            .await
            .unwrap_or_else(|_| Err("保存时出错，请再输入一次。".to_string()));
            self.lock().failed = result.err();
        }
    }

    /// Resolves once everything typed so far is written (or failed).
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            if !self.lock().running {
                return;
            }
            idle.await;
        }
    }

    /// Values typed and not yet stored, laid over a case read from the book, so a re-read does
    /// not undo what is on screen.
    pub fn overlay(&self, case: &mut Case) {
        let q = self.lock();
        for (k, v) in q.writing.iter().chain(&q.values) {
            case.set_field(k, v);
        }
    }

    /// Why the last write failed, if it did (in Chinese).
    pub fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianmin_engine::enrolment::Enrolment;
    use chrono::Utc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_value_of_every_field_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::open(dir.path()).unwrap();
        let e = Enrolment::offline(book.outbox(), "http://x", "140423101201", "李", Utc::now())
            .unwrap();
        let case = book.create("V11", &e).unwrap();
        let save = Autosave::new(book.clone(), case.id.clone());
        let name = "王秀英";
        for n in 1..=name.chars().count() {
            let typed: String = name.chars().take(n).collect();
            save.set("applicant.name", &typed);
            let mut shown = book.get(&case.id).unwrap();
            save.overlay(&mut shown);
            assert_eq!(
                shown.applicant.name, typed,
                "the screen keeps what was typed"
            );
        }
        save.set("applicant.phone", " 13800138000 ");
        save.settled().await;
        let stored = book.get(&case.id).unwrap();
        assert_eq!(stored.applicant.name, name);
        assert_eq!(stored.applicant.phone, "13800138000");
        assert!(save.failure().is_none());

        // A sealed case refuses edits: the failure is kept for the screen to show.
        let gone = Autosave::new(book.clone(), "140423101201-20260101-AAAAAA-0009".into());
        gone.set("applicant.name", "x");
        gone.settled().await;
        assert!(gone.failure().is_some());
    }
}
