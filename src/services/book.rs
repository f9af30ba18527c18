//! The case book on this device: enrolment, cases and captured pages, kept in the engine's
//! encrypted outbox.
//!
//! The screens speak to this thin adapter, not to the outbox itself: it turns the outbox's
//! errors into the Chinese messages the agent sees, and counts every write in a revision (a
//! `watch` channel, because scans and the sync loop write from other threads) that the UI
//! mirrors into a signal, so every screen showing the book re-reads it after any write.
//! Everything personal (names, ID numbers, photos) is encrypted at rest by the outbox
//! (ARCHITECTURE.md); the device key comes from the platform's key store (`keystore.rs`).

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_engine::case::Case;
use bianmin_engine::catalog::{Catalog, Item};
use bianmin_engine::enrolment::{Enrolment, EnrolmentError};
use bianmin_engine::outbox::{CaseSummary, DeliveryMark, InstalledCatalog, Outbox, StoreError};
use bianmin_engine::sync::{PendingDelivery, StoreFailure, SyncStore};
use bianmin_protocol::sync::{CatalogManifest, Receipt};
use bianmin_protocol::{AgentRef, Answer, AttachmentRef, CaseState, CaseSubmission, DecisionEvent};
use chrono::Utc;
use tokio::sync::watch;

/// Counts of cases by where they are, for the home screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub drafts: usize,
    pub waiting: usize,
    pub at_town: usize,
    pub corrections: usize,
    /// 办结 (and delivered or rated afterwards): the resident got what was applied for.
    pub done: usize,
    /// 不予受理: final, but not a success; counted apart so the agent does not read it as 办结.
    pub refused: usize,
}

fn message(what: &str, e: StoreError) -> String {
    tracing::warn!(error = %e, "{what}");
    e.user_message()
}

/// The on-device book of cases, shared by every screen, the capture workers and the sync loop.
#[derive(Clone)]
pub struct Book {
    outbox: Arc<Outbox>,
    revision: Arc<watch::Sender<u64>>,
}

impl PartialEq for Book {
    fn eq(&self, other: &Book) -> bool {
        Arc::ptr_eq(&self.outbox, &other.outbox)
    }
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book")
            .field("dir", &self.outbox.dir())
            .finish()
    }
}

impl Book {
    /// Opens (creating) the book in `dir` with this platform's device key store.
    pub fn open(dir: &Path) -> Result<Book, String> {
        let keys = crate::services::keystore::for_data_dir(dir);
        let outbox = Outbox::open(dir, keys.as_ref()).map_err(|e| {
            tracing::error!(error = %e, dir = %dir.display(), "cannot open the outbox");
            format!("无法打开办件库：{}", e.user_message())
        })?;
        Ok(Book {
            outbox: Arc::new(outbox),
            revision: Arc::new(watch::Sender::new(0)),
        })
    }

    pub fn dir(&self) -> &Path {
        self.outbox.dir()
    }

    /// The outbox itself, for reading what the book does not wrap.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// How many writes the book has seen since it was opened.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Wakes on every write.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Called after every write, from whatever thread made it.
    fn wrote(&self) {
        self.revision.send_modify(|r| *r += 1);
    }

    /// Runs a write and counts it, whether or not it succeeded (a failed write may still have
    /// changed what the screen should show, e.g. a Ready case reopened).
    fn write<T>(&self, f: impl FnOnce(&Outbox) -> T) -> T {
        let r = f(&self.outbox);
        self.wrote();
        r
    }

    /// The enrolment, if this device has one (older app and CLI formats are migrated).
    pub fn enrolment(&self) -> Option<Enrolment> {
        Enrolment::load(&self.outbox)
            .map_err(|e| tracing::warn!(error = %e, "enrolment unreadable"))
            .ok()
            .flatten()
    }

    pub fn save_enrolment(&self, e: &Enrolment) -> Result<(), String> {
        self.write(|o| e.save(o)).map_err(|e: EnrolmentError| {
            tracing::warn!(error = %e, "save enrolment");
            e.user_message()
        })
    }

    /// Starts a case for `item` with a fresh case number, saved as a draft.
    pub fn create(&self, item: &str, enrolment: &Enrolment) -> Result<Case, String> {
        self.write(|o| o.create_draft(item, Default::default(), enrolment.agent(), Utc::now()))
            .map_err(|e| message("create case", e))
    }

    /// Starts a case for `item` with `responsible` as the person who took it in: a town window
    /// case names the tablet, the clerk and the applicant's village (the case number's village).
    pub fn create_for(&self, item: &str, responsible: AgentRef) -> Result<Case, String> {
        self.write(|o| o.create_draft(item, Default::default(), responsible, Utc::now()))
            .map_err(|e| message("create window case", e))
    }

    pub fn get(&self, id: &str) -> Option<Case> {
        self.outbox
            .get(id)
            .map_err(|e| tracing::warn!(case = id, error = %e, "read case"))
            .ok()
    }

    /// Autosave of one form field; returns the case as stored.
    pub fn set_field(&self, id: &str, key: &str, value: &str) -> Result<Case, String> {
        self.write(|o| o.set_field(id, key, value))
            .map_err(|e| message("autosave", e))
    }

    /// Autosave of a whole answer (a multiple choice, the rows of a repeat group).
    pub fn set_answer(&self, id: &str, key: &str, answer: Option<Answer>) -> Result<Case, String> {
        self.write(|o| o.set_answer(id, key, answer))
            .map_err(|e| message("autosave", e))
    }

    /// Moves a draft to another catalog version (the agent accepted 事项已更新).
    pub fn move_to_catalog(&self, id: &str, version: u32) -> Result<Case, String> {
        self.write(|o| o.move_to_catalog(id, version))
            .map_err(|e| message("move to catalog version", e))
    }

    /// 初审: Ready if it passes, otherwise every problem in Chinese.
    pub fn precheck(&self, id: &str, item: &Item) -> Result<Case, Vec<String>> {
        match self.write(|o| o.precheck(id, item, Utc::now())) {
            Ok(c) => Ok(c),
            Err(StoreError::Precheck { problems, .. }) => Err(problems),
            Err(e) => Err(vec![message("precheck", e)]),
        }
    }

    /// Seals the case into the outbox (初审 runs again inside, so nothing unchecked is queued).
    pub fn seal(&self, id: &str, item: &Item) -> Result<Case, String> {
        self.write(|o| o.seal(id, item, Utc::now()))
            .map_err(|e| message("seal", e))
    }

    /// Stores a captured page in a material; `slot` replaces that page (a retake).
    pub fn add_page(
        &self,
        id: &str,
        material: &str,
        slot: Option<usize>,
        name: &str,
        bytes: &[u8],
    ) -> Result<Case, String> {
        self.write(|o| match slot {
            Some(i) => o.replace_page(id, material, i, name, bytes),
            None => o.add_page(id, material, name, bytes),
        })
        .map_err(|e| message("store photo", e))?;
        self.outbox.get(id).map_err(|e| message("reload case", e))
    }

    /// Removes a page from a material of an editable case.
    pub fn remove_page(&self, id: &str, material: &str, sha256: &str) -> Result<Case, String> {
        self.write(|o| o.remove_page(id, material, sha256))
            .map_err(|e| message("remove photo", e))?;
        self.outbox.get(id).map_err(|e| message("reload case", e))
    }

    /// 已送达: stored on the phone at once; the sync loop reports it to the town.
    pub fn record_delivery(&self, id: &str, person: &str) -> Result<DeliveryMark, String> {
        self.write(|o| o.record_delivery(id, person, Utc::now()))
            .map_err(|e| message("record delivery", e))
    }

    /// The agent's 已送达 mark on this case, if any.
    pub fn delivery(&self, id: &str) -> Option<DeliveryMark> {
        self.outbox
            .delivery(id)
            .map_err(|e| tracing::warn!(case = id, error = %e, "read delivery mark"))
            .ok()
            .flatten()
    }

    /// Every case, most recently changed first, names and ID numbers masked.
    pub fn list(&self) -> Vec<CaseSummary> {
        self.outbox
            .list()
            .map_err(|e| tracing::warn!(error = %e, "list cases"))
            .unwrap_or_default()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for case in self.list() {
            match case.state {
                CaseState::Draft | CaseState::Ready => c.drafts += 1,
                CaseState::Queued => c.waiting += 1,
                CaseState::CorrectionRequested => c.corrections += 1,
                CaseState::Uploaded
                | CaseState::Received
                | CaseState::Accepted
                | CaseState::Forwarded => c.at_town += 1,
                CaseState::Refused => c.refused += 1,
                CaseState::Completed | CaseState::Delivered | CaseState::Rated => c.done += 1,
            }
            // A 已送达 mark not yet at the town is something waiting to go, like a queued case.
            if case.delivery_waiting {
                c.waiting += 1;
            }
        }
        c
    }

    /// The decrypted page bytes.
    pub fn page(&self, page: &AttachmentRef) -> Result<Vec<u8>, String> {
        self.outbox
            .read_page(page)
            .map_err(|e| message("read photo", e))
    }

    /// The page as a `data:` URL for an `<img>`; works the same in every webview.
    pub fn page_data_url(&self, page: &AttachmentRef) -> Option<String> {
        let bytes = self.page(page).ok()?;
        Some(format!(
            "data:{};base64,{}",
            page.mime,
            STANDARD.encode(bytes)
        ))
    }
}

/// The engine's sync loop works on the book, so what it writes (receipts, decisions, settled
/// 已送达 marks) bumps the revision and every open screen shows it.
impl SyncStore for Book {
    fn pending(&self) -> Result<Vec<CaseSubmission>, StoreFailure> {
        self.outbox.pending()
    }
    fn read_attachment(
        &self,
        sha256: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, StoreFailure> {
        self.outbox.read_attachment(sha256, offset, max)
    }
    fn mark_uploaded(&self, receipt: &Receipt) -> Result<(), StoreFailure> {
        self.write(|o| o.mark_uploaded(receipt))
    }
    fn apply_town_event(&self, seq: u64, event: &DecisionEvent) -> Result<(), StoreFailure> {
        self.write(|o| o.apply_town_event(seq, event))
    }
    fn cursor(&self) -> Result<u64, StoreFailure> {
        self.outbox.cursor()
    }
    fn set_cursor(&self, cursor: u64) -> Result<(), StoreFailure> {
        self.outbox.set_cursor(cursor)
    }
    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreFailure> {
        self.outbox.pending_deliveries()
    }
    fn delivery_settled(&self, case_id: &str, refused: Option<&str>) -> Result<(), StoreFailure> {
        self.write(|o| o.delivery_settled(case_id, refused))
    }
    fn held_catalog(&self) -> Result<Option<InstalledCatalog>, StoreFailure> {
        Ok(self.outbox.latest_catalog()?)
    }
    fn install_catalog(
        &self,
        manifest: &CatalogManifest,
        catalog: &Catalog,
    ) -> Result<(), StoreFailure> {
        Ok(self.write(|o| o.install_catalog(manifest, catalog))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_bump_the_revision_and_nothing_personal_is_readable_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::open(dir.path()).unwrap();
        assert!(book.enrolment().is_none());
        let e = Enrolment::offline(
            book.outbox(),
            "http://x/",
            "140423101201",
            "李代办",
            Utc::now(),
        )
        .unwrap();
        book.save_enrolment(&e).unwrap();
        assert_eq!(book.enrolment().unwrap(), e);
        let seen = book.subscribe();
        let before = book.revision();
        let a = book.create("V11", &e).unwrap();
        let b = book.create("V11", &e).unwrap();
        assert!(
            a.id.ends_with("-0001") && b.id.ends_with("-0002"),
            "{} {}",
            a.id,
            b.id
        );
        assert_eq!(
            book.set_field(&a.id, "applicant.name", "王秀英")
                .unwrap()
                .applicant
                .name,
            "王秀英"
        );
        assert_eq!(book.revision(), before + 3);
        assert!(seen.has_changed().unwrap());
        assert_eq!(book.counts().drafts, 2);
        let c = book
            .add_page(&a.id, "id_card", None, "x.jpg", b"\xFF\xD8jpeg")
            .unwrap();
        let p = c.materials[0].pages[0].clone();
        assert!(book.page_data_url(&p).unwrap().starts_with("data:"));
        let key_b64 = STANDARD.encode(e.signing_key.to_bytes());
        drop(book);
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&key_b64) && !text.contains("王秀英"),
                "{} leaks personal data",
                entry.display()
            );
        }
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
        out
    }
}
