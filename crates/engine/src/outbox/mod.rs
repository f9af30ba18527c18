//! The on-device outbox: drafts, sealed cases, photos and sync receipts, durable and encrypted.
//!
//! This is the only code that touches sled. The truth is in files that a real `fsync` covers:
//! every change of a case rewrites its encrypted record file under `cases/` (temp file, fsync,
//! rename, fsync of the directory), photos are encrypted files under `blobs/` named by a keyed
//! hash, and metadata (enrolment, the sync cursor) are small encrypted files under `meta/`. A call
//! returns `Ok` only once its files are durable, so a case the agent saw as saved survives a
//! crash, a kill and a dead battery.
//!
//! The sled database under `index/` is an index over those files (list order, the send queue,
//! which case owns a photo, case-number counters), never the only copy of anything. sled 0.34
//! makes its own writes durable with `sync_file_range`, which survives a crashed process but not
//! a power cut; so every open reconciles the index with the files: a record file newer than its
//! index entry wins, the queue is recomputed from the sealed records, and the case-number counter
//! is raised to the highest number on disk, so no number is issued twice even after losing the
//! whole index. An index sled cannot open is moved aside and rebuilt from the files.

mod catalogs;
pub mod crypto;
pub mod disk;

pub use catalogs::InstalledCatalog;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bianmin_protocol::sync::Receipt;
use bianmin_protocol::{
    AgentRef, Answer, Applicant, AttachmentRef, CaseState, CaseSubmission, DecisionEvent,
    MaterialPages,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::case::{Case, CaseEvent, TransitionError};
use crate::catalog::Item;
use crate::number::{device_code_from, CaseNumber, CaseNumberError};
use crate::sync::{PendingDelivery, StoreFailure, SyncStore};
use crate::validate;

pub use crypto::{FileKeyStore, KeyStore, MemoryKeyStore};
pub use disk::{Disk, RealDisk};

use crypto::{DeviceKeys, Key};

/// Why an outbox operation failed. Nothing was changed when one is returned.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("index database: {0}")]
    Db(#[from] sled::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("disk full: {needed} bytes needed, {available} available")]
    DiskFull { needed: u64, available: u64 },
    #[error(transparent)]
    KeyStore(#[from] crypto::KeyStoreError),
    #[error("{0} does not decrypt with this device's key (altered or foreign data)")]
    Tampered(String),
    #[error("no case {0}")]
    NotFound(String),
    #[error("case {id} is {state:?} and can no longer be edited")]
    NotEditable { id: String, state: CaseState },
    #[error("case {id} does not pass the pre-check: {}", problems.join("; "))]
    Precheck { id: String, problems: Vec<String> },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("case {id} is not a result the town gave this agent to deliver")]
    NotForAgentDelivery { id: String },
    #[error("no attachment {0} on this device")]
    UnknownAttachment(String),
    #[error("attachment {0} was purged after the town confirmed it")]
    Purged(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Number(#[from] CaseNumberError),
}

impl StoreError {
    /// Plain Chinese for the agent, saying what to do.
    pub fn user_message(&self) -> String {
        match self {
            StoreError::DiskFull { .. } => {
                "手机存储空间不足，请清理照片或其他应用后再试。已保存的内容不会丢失。".to_string()
            }
            StoreError::NotEditable { .. } => {
                "该办件已封存上报，不能再修改。如需更改，请等待镇中心退回补正。".to_string()
            }
            StoreError::Precheck { problems, .. } => format!("初审未通过：{}", problems.join("；")),
            StoreError::NotFound(_) => "找不到该办件。".to_string(),
            StoreError::NotForAgentDelivery { .. } => {
                "这件的结果不是由您送达，不能记录送达。".to_string()
            }
            StoreError::Purged(_) => {
                "该材料已由镇中心确认接收，手机上的照片已按规定清理。".to_string()
            }
            StoreError::Tampered(_) | StoreError::Corrupt(_) | StoreError::KeyStore(_) => {
                "手机上的办件数据无法读取，请联系镇中心技术人员。".to_string()
            }
            _ => "保存失败，请重试。已保存的内容不会丢失。".to_string(),
        }
    }

    fn io(what: impl Into<String>, source: std::io::Error) -> StoreError {
        if disk::is_disk_full(&source) {
            StoreError::DiskFull {
                needed: 0,
                available: 0,
            }
        } else {
            StoreError::Io {
                what: what.into(),
                source,
            }
        }
    }
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// Free space kept in reserve: a capture or seal is refused below it, so the phone never
    /// runs the database itself out of room.
    pub reserve_bytes: u64,
    /// How long photos stay after the town confirmed receipt.
    pub purge_after: Duration,
    /// sled's page cache; a few MiB on phones.
    pub cache_bytes: u64,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            reserve_bytes: 16 << 20,
            purge_after: Duration::from_secs(30 * 24 * 3600),
            cache_bytes: 4 << 20,
        }
    }
}

/// One line of the outbox list. Personal data masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub id: String,
    pub item: String,
    pub state: CaseState,
    pub version: u32,
    pub applicant: String,
    pub id_number: String,
    pub pages: usize,
    pub updated_at: DateTime<Utc>,
    pub deadline: Option<NaiveDate>,
    /// The agent recorded 已送达 and the town does not have it yet.
    #[serde(default)]
    pub delivery_waiting: bool,
    /// The catalog version the case follows.
    #[serde(default)]
    pub catalog_version: u32,
}

/// Everything stored about one case, encrypted as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    case: Case,
    /// Each sealed version exactly as it was sent; never changed once written.
    sealed: BTreeMap<u32, CaseSubmission>,
    receipts: BTreeMap<u32, Receipt>,
    /// Town events already applied (idempotency of the changes feed).
    seen: BTreeSet<String>,
    /// When the town first confirmed a version; photos are purged a while after.
    confirmed_at: Option<DateTime<Utc>>,
    /// Photos already purged (tombstones: the reference stays, the bytes are gone).
    purged: BTreeSet<String>,
    updated_at: DateTime<Utc>,
    /// The agent's 已送达, recorded on the phone; absent in records written before it existed.
    #[serde(default)]
    delivery: Option<DeliveryMark>,
    /// Write counter: every stored change raises it, so the newer of a record file and its index
    /// entry is known (0 in records written before it existed; then `updated_at` decides).
    #[serde(default)]
    rev: u64,
}

impl Record {
    /// Whether `self` is a later write of the same case than `other`.
    fn newer_than(&self, other: &Record) -> bool {
        (self.rev, self.updated_at) > (other.rev, other.updated_at)
    }
}

/// The agent's 已送达 as the phone knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMark {
    pub person: String,
    /// When the result was handed over, by the phone's clock.
    pub at: DateTime<Utc>,
    /// The town has the mark (the changes feed brings the state 已送达 next).
    pub sent: bool,
    /// Why the town refused it, in plain Chinese; the agent may record it again.
    pub refused: Option<String>,
}

impl DeliveryMark {
    /// Recorded, neither sent nor refused: the next sync run sends it.
    pub fn waiting(&self) -> bool {
        !self.sent && self.refused.is_none()
    }
}

/// The on-disk envelope of a record: the case key wrapped by the device key, and the body.
#[derive(Serialize, Deserialize)]
struct Envelope {
    id: String,
    key: String,
    body: String,
}

#[derive(Serialize, Deserialize)]
struct DeviceFile {
    device_code: String,
}

/// A metadata entry as stored in its file under `meta/` (sealed with the device key).
#[derive(Serialize, Deserialize)]
struct MetaFile {
    key: String,
    value: String,
}

/// The outbox. Share it behind an `Arc`; writers are serialised inside.
pub struct Outbox {
    dir: PathBuf,
    /// Dropped by hand: sled's log `unwrap`s an fsync error in its destructor (see `Drop`).
    index: ManuallyDrop<Index>,
    keys: DeviceKeys,
    disk: Arc<dyn Disk>,
    device_code: String,
    options: OutboxOptions,
    write: Mutex<()>,
    /// The photo being uploaded, decrypted once: the sync loop reads it in chunks, and decrypting
    /// a whole photo per 1 MiB chunk cost a phone several decrypts per page.
    uploading: Mutex<Option<(String, Arc<Vec<u8>>)>>,
}

/// The sled index over the files.
struct Index {
    db: sled::Db,
    cases: sled::Tree,
    queue: sled::Tree,
    blobs: sled::Tree,
    meta: sled::Tree,
    /// Case ids with an unsent 已送达 mark (the mark itself is in the encrypted record).
    deliveries: sled::Tree,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Written out and fsynced on a clean close, so the next open has nothing to reconcile.
        let written = self.index.db.flush().is_ok()
            && fs::File::open(self.dir.join("index").join("db"))
                .and_then(|f| f.sync_all())
                .is_ok();
        if written {
            // SAFETY: `index` is never used again; this is the destructor.
            unsafe { ManuallyDrop::drop(&mut self.index) }
        } else {
            // sled 0.34's log destructor `unwrap`s an fsync error (pagecache/logger.rs): on a
            // failing disk it would turn a clear error into a panic. Everything promised is in
            // the files already, so the index is left for the next open to reconcile.
            tracing::error!(dir = %self.dir.display(), "the outbox index could not be written out on close; it is rebuilt from the case files at the next open");
        }
    }
}

const META_CURSOR: &str = "sync.cursor";

impl Outbox {
    /// Opens (or creates) the outbox in `dir` with the real disk and default options.
    pub fn open(dir: &Path, keystore: &dyn KeyStore) -> Result<Outbox, StoreError> {
        Outbox::open_with(dir, keystore, Arc::new(RealDisk), OutboxOptions::default())
    }

    /// Opens with an injected disk (tests fill it or break writes) and options.
    pub fn open_with(
        dir: &Path,
        keystore: &dyn KeyStore,
        disk: Arc<dyn Disk>,
        options: OutboxOptions,
    ) -> Result<Outbox, StoreError> {
        disk::create_dir_durable(dir)
            .map_err(|e| StoreError::io(format!("create {}", dir.display()), e))?;
        for sub in ["cases", "blobs", "meta"] {
            let d = dir.join(sub);
            disk::create_dir_durable(&d)
                .map_err(|e| StoreError::io(format!("create {}", d.display()), e))?;
            sweep_tmp(&d);
        }
        let keys = DeviceKeys::derive(&keystore.device_key()?);
        let device_code = device_code(dir, disk.as_ref())?;
        let index_path = dir.join("index");
        let db = match open_db(&index_path, options.cache_bytes) {
            Ok(db) => db,
            Err(e) => {
                let aside = dir.join(format!(
                    "index.corrupt-{}",
                    Utc::now().format("%Y%m%d%H%M%S%f")
                ));
                tracing::error!(error = %e, moved_to = %aside.display(), "outbox index cannot be opened; rebuilding it from the case files");
                fs::rename(&index_path, &aside)
                    .map_err(|e| StoreError::io("move corrupt index aside", e))?;
                open_db(&index_path, options.cache_bytes)?
            }
        };
        let index = Index {
            cases: db.open_tree("cases")?,
            queue: db.open_tree("queue")?,
            blobs: db.open_tree("blobs")?,
            meta: db.open_tree("meta")?,
            deliveries: db.open_tree("deliveries")?,
            db,
        };
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            index: ManuallyDrop::new(index),
            keys,
            disk,
            device_code,
            options,
            write: Mutex::new(()),
            uploading: Mutex::new(None),
        };
        outbox.reconcile()?;
        Ok(outbox)
    }

    /// This phone's device code (part of every case number).
    pub fn device_code(&self) -> &str {
        &self.device_code
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new case for `item`, with a fresh case number, saved as a draft. The case follows
    /// the newest catalog version this device holds (0 when it holds none: the catalog it shipped with).
    pub fn create_draft(
        &self,
        item: &str,
        applicant: Applicant,
        responsible: AgentRef,
        now: DateTime<Utc>,
    ) -> Result<Case, StoreError> {
        let _w = self.lock();
        self.check_space(64 << 10)?;
        let mut number = self.next_number(&responsible.village, now.date_naive())?;
        // The counter is reconciled with the files on open; this guards the impossible case
        // anyway, because two residents' cases under one number is the worst outcome there is.
        while self.case_path(&number.to_string()).exists() {
            tracing::error!(case = %number, "case number already on disk; taking the next one");
            number = self.next_number(&responsible.village, now.date_naive())?;
        }
        let mut case = Case::new(number.to_string(), item, applicant, responsible, now);
        case.catalog_version = self.catalog_versions()?.last().copied().unwrap_or(0);
        let mut record = Record {
            case: case.clone(),
            sealed: BTreeMap::new(),
            receipts: BTreeMap::new(),
            seen: BTreeSet::new(),
            confirmed_at: None,
            purged: BTreeSet::new(),
            updated_at: now,
            delivery: None,
            rev: 0,
        };
        self.put_record(&mut record, &crypto::random_key())?;
        Ok(case)
    }

    /// Autosave of one form field (keys as in [`Case::set_field`]): one decrypt and one encrypt of
    /// the case record, written durably before it returns; returns the case as stored. An edit
    /// of a Ready case sends it back to draft (初审 again). Refused once sealed.
    pub fn set_field(&self, case_id: &str, key: &str, value: &str) -> Result<Case, StoreError> {
        self.edit(case_id, |c| c.set_field(key, value))
    }

    /// Replaces a whole answer (a multiple choice, the rows of a repeat group), durably, like
    /// [`Outbox::set_field`]; `None` removes it.
    pub fn set_answer(
        &self,
        case_id: &str,
        key: &str,
        answer: Option<Answer>,
    ) -> Result<Case, StoreError> {
        self.edit(case_id, |c| c.set_answer(key, answer))
    }

    /// Moves a draft to another catalog version (the agent accepted "事项已更新"); its answers and
    /// pages stay, and 初审 runs against the new definition.
    pub fn move_to_catalog(&self, case_id: &str, version: u32) -> Result<Case, StoreError> {
        self.edit(case_id, |c| {
            let changed = c.catalog_version != version;
            c.catalog_version = version;
            changed
        })
    }

    /// One durable edit of an editable case; `change` says whether it changed anything.
    fn edit(
        &self,
        case_id: &str,
        change: impl FnOnce(&mut Case) -> bool,
    ) -> Result<Case, StoreError> {
        let _w = self.lock();
        let (mut rec, rkey) = self.load(case_id)?;
        if !rec.case.is_editable() {
            return Err(StoreError::NotEditable {
                id: case_id.to_string(),
                state: rec.case.state,
            });
        }
        if !change(&mut rec.case) {
            return Ok(rec.case);
        }
        reopen_if_ready(&mut rec.case)?;
        rec.updated_at = Utc::now();
        self.put_record(&mut rec, &rkey)?;
        Ok(rec.case)
    }

    /// Autosave: stores the editable parts of a draft (applicant, answers). Refused once sealed.
    pub fn save_draft(&self, case: &Case) -> Result<(), StoreError> {
        let _w = self.lock();
        let (mut rec, key) = self.load(&case.id)?;
        if !rec.case.is_editable() {
            return Err(StoreError::NotEditable {
                id: case.id.clone(),
                state: rec.case.state,
            });
        }
        let changed = rec.case.applicant != case.applicant || rec.case.answers != case.answers;
        rec.case.applicant = case.applicant.clone();
        rec.case.answers = case.answers.clone();
        // An edit after 初审 needs 初审 again.
        if changed {
            reopen_if_ready(&mut rec.case)?;
        }
        rec.updated_at = Utc::now();
        self.put_record(&mut rec, &key)
    }

    /// Adds a photographed page to a material of an editable case.
    pub fn add_page(
        &self,
        case_id: &str,
        material: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<AttachmentRef, StoreError> {
        self.put_page(case_id, material, None, name, bytes)
    }

    /// A retake: the photo replaces page `index` of the material, keeping the page order the
    /// agent sees. An index past the end appends.
    pub fn replace_page(
        &self,
        case_id: &str,
        material: &str,
        index: usize,
        name: &str,
        bytes: &[u8],
    ) -> Result<AttachmentRef, StoreError> {
        self.put_page(case_id, material, Some(index), name, bytes)
    }

    fn put_page(
        &self,
        case_id: &str,
        material: &str,
        slot: Option<usize>,
        name: &str,
        bytes: &[u8],
    ) -> Result<AttachmentRef, StoreError> {
        let _w = self.lock();
        let (mut rec, key) = self.load(case_id)?;
        if !rec.case.is_editable() {
            return Err(StoreError::NotEditable {
                id: case_id.to_string(),
                state: rec.case.state,
            });
        }
        // The photo, its record and the index together need a little over the photo's size.
        self.check_space(bytes.len() as u64 * 2 + (64 << 10))?;
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.blob_path(case_id, &sha);
        let sealed = crypto::seal(&key, sha.as_bytes(), bytes);
        self.disk
            .write_atomic(&path, &sealed)
            .map_err(|e| StoreError::io(format!("write photo {}", path.display()), e))?;
        let att = AttachmentRef {
            name: name.to_string(),
            sha256: sha.clone(),
            bytes: bytes.len() as u64,
            mime: mime_of(bytes),
        };
        match rec.case.materials.iter_mut().find(|m| m.key == material) {
            Some(m) => match slot {
                Some(i) if i < m.pages.len() => {
                    m.pages[i] = att.clone();
                    // The same photo twice in one material is one page.
                    let mut seen = BTreeSet::new();
                    m.pages.retain(|p| seen.insert(p.sha256.clone()));
                }
                _ => {
                    if !m.pages.iter().any(|p| p.sha256 == sha) {
                        m.pages.push(att.clone());
                    }
                }
            },
            None => rec.case.materials.push(MaterialPages {
                key: material.to_string(),
                pages: vec![att.clone()],
            }),
        }
        reopen_if_ready(&mut rec.case)?;
        rec.updated_at = Utc::now();
        self.index
            .blobs
            .insert(self.keys.name(&sha), case_id.as_bytes())?;
        self.put_record(&mut rec, &key)?;
        Ok(att)
    }

    /// Removes a page (a retake) from an editable case. The file stays until no version refers to it.
    pub fn remove_page(
        &self,
        case_id: &str,
        material: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        let _w = self.lock();
        let (mut rec, key) = self.load(case_id)?;
        if !rec.case.is_editable() {
            return Err(StoreError::NotEditable {
                id: case_id.to_string(),
                state: rec.case.state,
            });
        }
        for m in rec.case.materials.iter_mut().filter(|m| m.key == material) {
            m.pages.retain(|p| p.sha256 != sha256);
        }
        rec.case.materials.retain(|m| !m.pages.is_empty());
        reopen_if_ready(&mut rec.case)?;
        rec.updated_at = Utc::now();
        self.put_record(&mut rec, &key)
    }

    /// Runs 初审 against the item's guide; if it passes the case becomes Ready (not yet sealed),
    /// otherwise every problem is returned at once and the case stays as it was.
    pub fn precheck(
        &self,
        case_id: &str,
        item: &Item,
        now: DateTime<Utc>,
    ) -> Result<Case, StoreError> {
        let _w = self.lock();
        let (mut rec, key) = self.load_checked(case_id, item, now)?;
        if rec.case.state != CaseState::Ready {
            let by = rec.case.responsible.device_id.clone();
            rec.case.apply(CaseEvent::PrecheckPassed, &by, now)?;
            rec.updated_at = now;
            self.put_record(&mut rec, &key)?;
        }
        Ok(rec.case)
    }

    /// An editable case that passes 初审, loaded for a change. Call with the write lock held.
    fn load_checked(
        &self,
        case_id: &str,
        item: &Item,
        now: DateTime<Utc>,
    ) -> Result<(Record, Key), StoreError> {
        let (rec, key) = self.load(case_id)?;
        if !rec.case.is_editable() {
            return Err(StoreError::NotEditable {
                id: case_id.to_string(),
                state: rec.case.state,
            });
        }
        let check = validate::precheck(
            item,
            &rec.case.applicant,
            &rec.case.answers,
            &rec.case.materials,
            now.date_naive(),
        );
        if !check.passed() {
            return Err(StoreError::Precheck {
                id: case_id.to_string(),
                problems: check.lines(),
            });
        }
        Ok((rec, key))
    }

    /// Runs 初审 against the item's guide and, if it passes, seals the case into the outbox.
    /// A case corrected after 补正 is sealed as the next version of the same case.
    pub fn seal(&self, case_id: &str, item: &Item, now: DateTime<Utc>) -> Result<Case, StoreError> {
        let _w = self.lock();
        let (mut rec, key) = self.load_checked(case_id, item, now)?;
        self.check_space(64 << 10)?;
        let by = rec.case.responsible.device_id.clone();
        if rec.case.state != CaseState::Ready {
            rec.case.apply(CaseEvent::PrecheckPassed, &by, now)?;
        }
        rec.case.apply(CaseEvent::Seal, &by, now)?;
        let sub = rec.case.submission(now);
        rec.sealed.insert(sub.version, sub.clone());
        rec.updated_at = now;
        // The record file is the promise; the queue entry is derived from it (and recomputed from
        // the files on open, so a queue entry lost with the index comes back).
        self.put_record(&mut rec, &key)?;
        self.index
            .queue
            .insert(queue_key(&sub), queue_value(&sub))?;
        Ok(rec.case)
    }

    /// The decrypted case.
    pub fn get(&self, case_id: &str) -> Result<Case, StoreError> {
        Ok(self.load(case_id)?.0.case)
    }

    /// The receipt the town signed for a version, if any.
    pub fn receipt(&self, case_id: &str, version: u32) -> Result<Option<Receipt>, StoreError> {
        Ok(self.load(case_id)?.0.receipts.get(&version).cloned())
    }

    /// Every case, newest first, with personal data masked.
    pub fn list(&self) -> Result<Vec<CaseSummary>, StoreError> {
        let mut out = Vec::new();
        for kv in self.index.cases.iter() {
            let (_, v) = kv?;
            let (rec, _) = self.decode(&v)?;
            let c = &rec.case;
            out.push(CaseSummary {
                id: c.id.clone(),
                item: c.item.clone(),
                state: c.state,
                version: c.version,
                applicant: validate::mask_name(&c.applicant.name),
                id_number: validate::mask_id_number(&c.applicant.id_number),
                pages: c.materials.iter().map(|m| m.pages.len()).sum(),
                updated_at: rec.updated_at,
                deadline: c.deadline,
                delivery_waiting: c.state == CaseState::Completed
                    && rec.delivery.as_ref().is_some_and(DeliveryMark::waiting),
                catalog_version: c.catalog_version,
            });
        }
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// Number of sealed versions waiting for the town's receipt.
    pub fn queued(&self) -> usize {
        self.index.queue.len()
    }

    /// The decrypted bytes of a page.
    pub fn read_page(&self, att: &AttachmentRef) -> Result<Vec<u8>, StoreError> {
        self.read_blob(&att.sha256)
    }

    /// Plain metadata (server URL, enrolment facts, the sync cursor). Not for secrets (see
    /// `put_secret`). Durable when this returns: its file under `meta/` is the truth, the index
    /// keeps a copy for reading.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let _w = self.lock();
        let file = MetaFile {
            key: key.to_string(),
            value: B64.encode(value),
        };
        let body = serde_json::to_vec(&file).expect("metadata serialises");
        let sealed = crypto::seal(&self.keys.wrap, b"meta", &body);
        let path = self.meta_path(key);
        self.disk
            .write_atomic(&path, &sealed)
            .map_err(|e| StoreError::io(format!("write metadata {key}"), e))?;
        self.index.meta.insert(key.as_bytes(), value)?;
        Ok(())
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.index.meta.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Secret metadata (the device's signing key): encrypted with the device key.
    pub fn put_secret(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = crypto::seal(&self.keys.wrap, key.as_bytes(), value);
        self.put_meta(&format!("secret.{key}"), &sealed)
    }

    pub fn get_secret(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get_meta(&format!("secret.{key}"))? {
            None => Ok(None),
            Some(s) => crypto::open(&self.keys.wrap, key.as_bytes(), &s)
                .map(Some)
                .map_err(|_| StoreError::Tampered(format!("secret {key}"))),
        }
    }

    /// 已送达: the agent handed the completed result to the resident. Recorded durably here (the
    /// record file too, so an index rebuild keeps it) and sent to the town by the next sync run,
    /// however long the phone stays without signal. Recording it again is harmless.
    pub fn record_delivery(
        &self,
        case_id: &str,
        person: &str,
        now: DateTime<Utc>,
    ) -> Result<DeliveryMark, StoreError> {
        let _w = self.lock();
        let (mut rec, key) = self.load(case_id)?;
        if let Some(m) = &rec.delivery {
            if m.refused.is_none() {
                return Ok(m.clone());
            }
        }
        if !rec.case.agent_brings() {
            return Err(StoreError::NotForAgentDelivery {
                id: case_id.to_string(),
            });
        }
        self.check_space(64 << 10)?;
        let mark = DeliveryMark {
            person: person.to_string(),
            at: now,
            sent: false,
            refused: None,
        };
        rec.delivery = Some(mark.clone());
        rec.updated_at = now;
        self.index.deliveries.insert(case_id.as_bytes(), &[])?;
        self.put_record(&mut rec, &key)?;
        Ok(mark)
    }

    /// The case's 已送达 mark, if the agent recorded one.
    pub fn delivery(&self, case_id: &str) -> Result<Option<DeliveryMark>, StoreError> {
        Ok(self.load(case_id)?.0.delivery)
    }

    /// Deletes photo bytes of cases the town confirmed longer than `purge_after` ago, keeping
    /// the references as tombstones. Returns how many files were removed.
    pub fn purge_confirmed(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let _w = self.lock();
        *self.uploading.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let mut removed = 0;
        let ids: Vec<String> = self
            .index
            .cases
            .iter()
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| String::from_utf8_lossy(&k).to_string())
            .collect();
        for id in ids {
            let (mut rec, key) = self.load(&id)?;
            let Some(confirmed) = rec.confirmed_at else {
                continue;
            };
            let age = now
                .signed_duration_since(confirmed)
                .to_std()
                .unwrap_or_default();
            // Only when nothing is waiting: a case being corrected may still need its photos.
            if age < self.options.purge_after
                || rec.case.is_editable()
                || rec.case.state == CaseState::Queued
            {
                continue;
            }
            let shas: BTreeSet<String> = rec
                .case
                .materials
                .iter()
                .flat_map(|m| m.pages.iter().map(|p| p.sha256.clone()))
                .collect();
            let mut changed = false;
            for sha in shas.difference(&rec.purged.clone()) {
                let mut path = self.blob_path(&id, sha);
                if !path.exists() {
                    path = self.legacy_blob_path(sha);
                }
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("purge photo", e)),
                }
                rec.purged.insert(sha.clone());
                changed = true;
            }
            if changed {
                self.put_record(&mut rec, &key)?;
            }
        }
        Ok(removed)
    }

    // ---- internals ----

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_space(&self, needed: u64) -> Result<(), StoreError> {
        let available = self
            .disk
            .available(&self.dir)
            .map_err(|e| StoreError::io("check free space", e))?;
        if available < needed + self.options.reserve_bytes {
            return Err(StoreError::DiskFull { needed, available });
        }
        Ok(())
    }

    fn next_number(&self, village: &str, date: NaiveDate) -> Result<CaseNumber, StoreError> {
        let key = counter_key(village, date);
        let next = self.index.meta.update_and_fetch(key.as_bytes(), |old| {
            let n = old
                .map(|b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
                .unwrap_or(0);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        let seq = u32::from_be_bytes(
            next.as_deref()
                .unwrap_or(&[0, 0, 0, 1])
                .try_into()
                .unwrap_or([0, 0, 0, 1]),
        );
        // No flush here: the caller's record write flushes the counter with the case, and a
        // number is only "used" once its case is durable, so a crash cannot reuse one.
        Ok(CaseNumber::new(village, date, &self.device_code, seq)?)
    }

    fn case_path(&self, id: &str) -> PathBuf {
        self.dir
            .join("cases")
            .join(format!("{}.case", self.keys.name(id)))
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.dir
            .join("meta")
            .join(format!("{}.meta", self.keys.name(&format!("meta.{key}"))))
    }

    /// A photo's file, per case: each case seals its photos with its own key, so the same photo
    /// in two cases is two files (one file per hash let the second case overwrite the first's).
    fn blob_path(&self, case_id: &str, sha: &str) -> PathBuf {
        self.dir.join("blobs").join(format!(
            "{}.blob",
            self.keys.name(&format!("{case_id}/{sha}"))
        ))
    }

    /// Where photos were kept before they were per case (read, never written).
    fn legacy_blob_path(&self, sha: &str) -> PathBuf {
        self.dir
            .join("blobs")
            .join(format!("{}.blob", self.keys.name(sha)))
    }

    fn encode(&self, rec: &Record, key: &Key) -> Vec<u8> {
        let id = &rec.case.id;
        let body = serde_json::to_vec(rec).expect("records serialise");
        let env = Envelope {
            id: id.clone(),
            key: B64.encode(crypto::seal(&self.keys.wrap, id.as_bytes(), key)),
            body: B64.encode(crypto::seal(key, id.as_bytes(), &body)),
        };
        serde_json::to_vec(&env).expect("envelopes serialise")
    }

    fn decode(&self, bytes: &[u8]) -> Result<(Record, Key), StoreError> {
        let env: Envelope =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tampered = || StoreError::Tampered(format!("case {}", env.id));
        let wrapped = B64.decode(&env.key).map_err(|_| tampered())?;
        let key: Key = crypto::open(&self.keys.wrap, env.id.as_bytes(), &wrapped)
            .map_err(|_| tampered())?
            .try_into()
            .map_err(|_| tampered())?;
        let body = B64.decode(&env.body).map_err(|_| tampered())?;
        let plain = crypto::open(&key, env.id.as_bytes(), &body).map_err(|_| tampered())?;
        let rec: Record =
            serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((rec, key))
    }

    fn load(&self, id: &str) -> Result<(Record, Key), StoreError> {
        let bytes = self
            .index
            .cases
            .get(id.as_bytes())?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        self.decode(&bytes)
    }

    /// Stores a changed record: its file first (durable when this returns), then the index entry.
    /// The index is not flushed here: if it loses this write (a crash or a power cut before sled
    /// writes it out), the next open takes the newer file.
    fn put_record(&self, rec: &mut Record, key: &Key) -> Result<(), StoreError> {
        rec.rev += 1;
        let bytes = self.encode(rec, key);
        let path = self.case_path(&rec.case.id);
        self.disk
            .write_atomic(&path, &bytes)
            .map_err(|e| StoreError::io(format!("write case {}", path.display()), e))?;
        self.index.cases.insert(rec.case.id.as_bytes(), bytes)?;
        Ok(())
    }

    /// The plain bytes of the photo the sync loop is sending, decrypted on its first chunk only.
    fn upload_bytes(&self, sha: &str) -> Result<Arc<Vec<u8>>, StoreError> {
        let mut slot = self.uploading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, bytes)) = slot.as_ref() {
            if cached == sha {
                return Ok(bytes.clone());
            }
        }
        let bytes = Arc::new(self.read_blob(sha)?);
        *slot = Some((sha.to_string(), bytes.clone()));
        Ok(bytes)
    }

    fn read_blob(&self, sha: &str) -> Result<Vec<u8>, StoreError> {
        let owner = self
            .index
            .blobs
            .get(self.keys.name(sha))?
            .ok_or_else(|| StoreError::UnknownAttachment(sha.to_string()))?;
        let owner = String::from_utf8_lossy(&owner).to_string();
        let (rec, key) = self.load(&owner)?;
        if rec.purged.contains(sha) {
            return Err(StoreError::Purged(sha.to_string()));
        }
        let mut path = self.blob_path(&owner, sha);
        if !path.exists() {
            path = self.legacy_blob_path(sha);
        }
        let sealed = fs::read(&path).map_err(|e| StoreError::io(format!("read photo {sha}"), e))?;
        crypto::open(&key, sha.as_bytes(), &sealed)
            .map_err(|_| StoreError::Tampered(format!("photo {sha}")))
    }

    /// Brings the index in line with the files, which are the truth: record files newer than
    /// their index entries (or missing from it) are taken, the queue, photo owners and pending
    /// 已送达 marks are recomputed from the records, metadata comes from its files, and every
    /// case-number counter is raised to the highest number on disk. Runs on every open; after a
    /// clean exit it changes nothing.
    fn reconcile(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut queue = BTreeMap::new();
        let mut owners = BTreeMap::new();
        let mut deliveries = BTreeSet::new();
        let mut counters: BTreeMap<String, u32> = BTreeMap::new();
        let (mut cases, mut taken, mut rewritten) = (0usize, 0usize, 0usize);
        let mut on_disk = BTreeSet::new();
        let dir = self.dir.join("cases");
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io("list case files", e))? {
            let path = entry
                .map_err(|e| StoreError::io("list case files", e))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("case") {
                continue;
            }
            let bytes = fs::read(&path)
                .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
            let (file_rec, _) = match self.decode(&bytes) {
                Ok(found) => found,
                Err(e) => {
                    // Kept as it is (a foreign key, a damaged file): the index keeps its entry,
                    // and reading the case reports the problem.
                    tracing::error!(file = %path.display(), error = %e, "skipping unreadable case file");
                    if let Ok(env) = serde_json::from_slice::<Envelope>(&bytes) {
                        on_disk.insert(env.id);
                    }
                    continue;
                }
            };
            let id = file_rec.case.id.clone();
            on_disk.insert(id.clone());
            let indexed = self.index.cases.get(id.as_bytes())?;
            let rec = match indexed
                .as_deref()
                .map(|b| (b == bytes.as_slice(), self.decode(b)))
            {
                Some((true, _)) => file_rec,
                // An index entry newer than its file exists only in data written before every
                // change was a file: bring the file up to date.
                Some((false, Ok((mut idx_rec, key)))) if idx_rec.newer_than(&file_rec) => {
                    self.put_record(&mut idx_rec, &key)?;
                    rewritten += 1;
                    idx_rec
                }
                _ => {
                    self.index.cases.insert(id.as_bytes(), bytes.as_slice())?;
                    taken += 1;
                    file_rec
                }
            };
            cases += 1;
            let c = &rec.case;
            // Any case still holding the photo can serve it; a purged copy cannot.
            for p in c
                .materials
                .iter()
                .flat_map(|m| &m.pages)
                .filter(|p| !rec.purged.contains(&p.sha256))
            {
                owners.insert(self.keys.name(&p.sha256), id.clone());
            }
            if rec.delivery.as_ref().is_some_and(DeliveryMark::waiting)
                && c.state == CaseState::Completed
            {
                deliveries.insert(id.clone());
            }
            if c.state == CaseState::Queued && !rec.receipts.contains_key(&c.version) {
                if let Some(sub) = rec.sealed.get(&c.version) {
                    queue.insert(queue_key(sub), queue_value(sub));
                }
            }
            if let Ok(n) = id.parse::<CaseNumber>() {
                let key = counter_key(&n.village, n.date);
                let max = counters.entry(key).or_default();
                *max = (*max).max(n.seq);
            }
        }
        // Index entries without a file (never written, or lost before the file was durable).
        for k in self.index.cases.iter().keys() {
            let k = k?;
            if !on_disk.contains(String::from_utf8_lossy(&k).as_ref()) {
                self.index.cases.remove(&k)?;
            }
        }
        sync_tree(&self.index.queue, &queue)?;
        let owners: BTreeMap<String, Vec<u8>> = owners
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        sync_tree(&self.index.blobs, &owners)?;
        let deliveries: BTreeMap<String, Vec<u8>> =
            deliveries.into_iter().map(|k| (k, Vec::new())).collect();
        sync_tree(&self.index.deliveries, &deliveries)?;
        for (key, max) in counters {
            let cur = self
                .index
                .meta
                .get(key.as_bytes())?
                .map(|b| u32::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 4])))
                .unwrap_or(0);
            if max > cur {
                self.index.meta.insert(key.as_bytes(), &max.to_be_bytes())?;
            }
        }
        self.load_meta_files()?;
        self.index.db.flush()?;
        tracing::info!(
            cases,
            taken,
            rewritten,
            ms = started.elapsed().as_millis() as u64,
            "outbox index reconciled with the case files"
        );
        Ok(())
    }

    /// Metadata from its files into the index (the files win).
    fn load_meta_files(&self) -> Result<(), StoreError> {
        for entry in fs::read_dir(self.dir.join("meta"))
            .map_err(|e| StoreError::io("list metadata files", e))?
        {
            let path = entry
                .map_err(|e| StoreError::io("list metadata files", e))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("meta") {
                continue;
            }
            let sealed = fs::read(&path)
                .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
            let parsed = crypto::open(&self.keys.wrap, b"meta", &sealed)
                .ok()
                .and_then(|b| serde_json::from_slice::<MetaFile>(&b).ok())
                .and_then(|m| Some((m.key, B64.decode(m.value).ok()?)));
            match parsed {
                Some((key, value)) => {
                    if self.index.meta.get(key.as_bytes())?.as_deref() != Some(value.as_slice()) {
                        self.index.meta.insert(key.as_bytes(), value)?;
                    }
                }
                None => {
                    tracing::error!(file = %path.display(), "skipping unreadable metadata file")
                }
            }
        }
        Ok(())
    }

    fn queue_entries(&self) -> Result<Vec<(sled::IVec, String, u32)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.index.queue.iter() {
            let (k, v) = kv?;
            let s = String::from_utf8_lossy(&v).to_string();
            let (id, ver) = s
                .split_once('\n')
                .ok_or_else(|| StoreError::Corrupt("queue entry".into()))?;
            out.push((
                k,
                id.to_string(),
                ver.parse()
                    .map_err(|_| StoreError::Corrupt("queue version".into()))?,
            ));
        }
        Ok(out)
    }
}

/// An edit after 初审 needs 初审 again: a Ready case goes back to draft.
fn reopen_if_ready(case: &mut Case) -> Result<(), StoreError> {
    if case.state == CaseState::Ready {
        let by = case.responsible.device_id.clone();
        case.apply(CaseEvent::Reopen, &by, Utc::now())?;
    }
    Ok(())
}

impl SyncStore for Outbox {
    fn held_catalog(&self) -> Result<Option<InstalledCatalog>, StoreFailure> {
        Ok(self.latest_catalog()?)
    }

    fn install_catalog(
        &self,
        manifest: &bianmin_protocol::sync::CatalogManifest,
        catalog: &crate::catalog::Catalog,
    ) -> Result<(), StoreFailure> {
        Ok(Outbox::install_catalog(self, manifest, catalog)?)
    }

    fn pending(&self) -> Result<Vec<CaseSubmission>, StoreFailure> {
        let mut out = Vec::new();
        for (_, id, version) in self.queue_entries()? {
            let (rec, _) = self.load(&id)?;
            let sub = rec
                .sealed
                .get(&version)
                .ok_or_else(|| StoreError::Corrupt(format!("{id} v{version} not sealed")))?;
            out.push(sub.clone());
        }
        Ok(out)
    }

    fn read_attachment(
        &self,
        sha256: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, StoreFailure> {
        let bytes = self.upload_bytes(sha256)?;
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(max).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    fn mark_uploaded(&self, receipt: &Receipt) -> Result<(), StoreFailure> {
        let _w = self.lock();
        let (mut rec, key) = self.load(&receipt.case_id)?;
        if rec.receipts.contains_key(&receipt.version) {
            return Ok(());
        }
        rec.receipts.insert(receipt.version, receipt.clone());
        rec.confirmed_at.get_or_insert(receipt.received_at);
        if rec.case.state == CaseState::Queued && rec.case.version == receipt.version {
            rec.case
                .apply(CaseEvent::Uploaded, "town", receipt.received_at)?;
        }
        rec.updated_at = Utc::now();
        for (k, id, version) in self.queue_entries()? {
            if id == receipt.case_id && version == receipt.version {
                self.index.queue.remove(k)?;
            }
        }
        self.put_record(&mut rec, &key)?;
        Ok(())
    }

    fn apply_town_event(&self, seq: u64, event: &DecisionEvent) -> Result<(), StoreFailure> {
        let _w = self.lock();
        let (mut rec, key) = match self.load(&event.case_id) {
            Ok(found) => found,
            // Not this phone's case (another device of the village): nothing to do.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // The feed's position is the event's identity: a page fetched twice applies once.
        let tag = format!("seq:{seq}");
        if rec.seen.contains(&tag) {
            return Ok(());
        }
        if event.version == rec.case.version {
            if let Err(e) =
                rec.case
                    .apply(CaseEvent::Town(event.decision.clone()), &event.by, event.at)
            {
                // The feed may repeat what the phone already knows (e.g. Received after the
                // decision); it never blocks the feed.
                tracing::info!(case = %event.case_id, error = %e, "town event does not apply; skipped");
            }
        }
        rec.seen.insert(tag);
        rec.updated_at = Utc::now();
        if rec.case.state != CaseState::Completed {
            // 已送达 (by this agent or by staff) or anything later: no mark is left to send.
            self.index.deliveries.remove(event.case_id.as_bytes())?;
        }
        self.put_record(&mut rec, &key)?;
        Ok(())
    }

    fn cursor(&self) -> Result<u64, StoreFailure> {
        Ok(self
            .get_meta(META_CURSOR)?
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
            .unwrap_or(0))
    }

    fn set_cursor(&self, cursor: u64) -> Result<(), StoreFailure> {
        Ok(self.put_meta(META_CURSOR, &cursor.to_be_bytes())?)
    }

    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreFailure> {
        let mut out = Vec::new();
        for k in self.index.deliveries.iter().keys() {
            let id = String::from_utf8_lossy(&k?).to_string();
            let (rec, _) = self.load(&id)?;
            match rec.delivery {
                Some(m) if m.waiting() && rec.case.state == CaseState::Completed => {
                    out.push(PendingDelivery {
                        case_id: id,
                        person: m.person,
                        at: m.at,
                    });
                }
                _ => {}
            }
        }
        out.sort_by_key(|d| d.at);
        Ok(out)
    }

    fn delivery_settled(&self, case_id: &str, refused: Option<&str>) -> Result<(), StoreFailure> {
        let _w = self.lock();
        let (mut rec, key) = self.load(case_id)?;
        if let Some(m) = rec.delivery.as_mut() {
            match refused {
                None => m.sent = true,
                Some(why) => m.refused = Some(why.to_string()),
            }
        }
        rec.updated_at = Utc::now();
        self.index.deliveries.remove(case_id.as_bytes())?;
        self.put_record(&mut rec, &key)?;
        Ok(())
    }
}

fn open_db(path: &Path, cache: u64) -> Result<sled::Db, StoreError> {
    // sled panics on some corrupt files instead of returning an error; both mean "rebuild".
    let cfg = sled::Config::new().path(path).cache_capacity(cache);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || cfg.open())) {
        Ok(r) => Ok(r?),
        Err(_) => Err(StoreError::Corrupt(
            "sled panicked while opening the index".into(),
        )),
    }
}

fn device_code(dir: &Path, disk: &dyn Disk) -> Result<String, StoreError> {
    let path = dir.join("device.json");
    match fs::read(&path) {
        Ok(b) => {
            let f: DeviceFile = serde_json::from_slice(&b)
                .map_err(|e| StoreError::Corrupt(format!("device.json: {e}")))?;
            Ok(f.device_code)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut random = [0u8; crate::number::DEVICE_CODE_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
            let code = device_code_from(random);
            let body = serde_json::to_vec(&DeviceFile {
                device_code: code.clone(),
            })
            .expect("serialise");
            disk.write_atomic(&path, &body)
                .map_err(|e| StoreError::io("write device.json", e))?;
            Ok(code)
        }
        Err(e) => Err(StoreError::io("read device.json", e)),
    }
}

/// Queue order is sealing order; the key is derived from the sealed version, so the queue can be
/// recomputed from the records.
fn queue_key(sub: &CaseSubmission) -> Vec<u8> {
    let mut k = sub.sealed_at.timestamp_micros().to_be_bytes().to_vec();
    k.extend_from_slice(format!("{}\n{}", sub.id, sub.version).as_bytes());
    k
}

fn queue_value(sub: &CaseSubmission) -> Vec<u8> {
    format!("{}\n{}", sub.id, sub.version).into_bytes()
}

fn counter_key(village: &str, date: NaiveDate) -> String {
    format!("seq.{village}.{}", date.format("%Y%m%d"))
}

/// Makes `tree` hold exactly `want`.
fn sync_tree<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    tree: &sled::Tree,
    want: &BTreeMap<K, V>,
) -> Result<(), StoreError> {
    let want: BTreeMap<&[u8], &[u8]> = want.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    for k in tree.iter().keys() {
        let k = k?;
        if !want.contains_key(k.as_ref()) {
            tree.remove(&k)?;
        }
    }
    for (k, v) in want {
        if tree.get(k)?.as_deref() != Some(v) {
            tree.insert(k, v)?;
        }
    }
    Ok(())
}

/// Removes temp files left by a crash mid-write.
fn sweep_tmp(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().and_then(|x| x.to_str()) == Some("tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn mime_of(bytes: &[u8]) -> String {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "application/octet-stream"
    }
    .to_string()
}
