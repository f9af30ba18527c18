//! The embedded store on sled: the default backend of one town centre on one machine.
//!
//! Every commit is one sled transaction over the trees it touches, made durable before it
//! returns ([`DurableSled::sync`]: sled's flush, then a real fsync). Commits are serialised by
//! one mutex: the audit chain and the feed sequence need a single writer, and sled's optimistic
//! transactions would otherwise retry on every concurrent commit. sled's file lock admits one
//! process, so the rate-limit buckets, which need no durability, are kept in that process's
//! memory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use bianmin_protocol::sync::ChangeEntry;
use bianmin_protocol::DecisionEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::county_lists::{self, CountyList, ListCursor, ListPage};
use super::figures::{self, PhoneUse, VillageCounts};
use super::inbox::{self, CaseSummary, InboxCursor, InboxFilter, InboxOrder, InboxPage};
use super::{
    AddBadError, AddedBadReview, BucketKind, CatalogState, CatalogStoreError, CatalogVersion,
    DeviceRecord, Rating, Rectification, Step, StepError, StoreError, StoredCase, TownStore,
};
use crate::audit::{chain, AuditDraft, AuditEntry};

mod index_keys;
mod notices;
mod partials;
use crate::bucket::{Bucket, RateConfig};

/// A sled database whose acknowledged writes survive a power cut.
///
/// sled 0.34's `flush` makes writes survive a crashed process, not a dead battery: on Linux its log
/// writes end in `sync_file_range`, which commits no metadata of the growing file and flushes no
/// disk cache (and never reaches FUSE). So every `sync` is sled's flush followed by a real fsync:
/// of the directory first (a snapshot sled renamed into place, large values in `blobs/`), then of
/// the log file, so a durable snapshot never refers to log bytes that are not durable.
///
/// sled writes a value too large for a log segment (over about 128 KiB: a catalog version) as a
/// file of its own in `blobs/`, and never fsyncs it: each such file is fsynced before the log that
/// points to it. A blob is written once; its name and length are remembered so it is not fsynced
/// again (a length that changed since means it was still being written, and it is fsynced anew).
pub struct DurableSled {
    pub db: sled::Db,
    dir: std::path::PathBuf,
    synced_blobs: Mutex<HashMap<std::ffi::OsString, u64>>,
}

impl DurableSled {
    /// Opens (or creates) the database in `dir` with a page cache of `cache` bytes; the
    /// directory's own entry is made durable too.
    pub fn open(dir: &Path, cache: u64) -> Result<DurableSled, StoreError> {
        bianmin_engine::outbox::disk::create_dir_durable(dir)?;
        let db = sled::Config::new().path(dir).cache_capacity(cache).open()?;
        let durable = DurableSled {
            db,
            dir: dir.to_path_buf(),
            synced_blobs: Mutex::default(),
        };
        durable.sync()?;
        Ok(durable)
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        bianmin_engine::outbox::disk::sync_dir(&self.dir)?;
        let blobs = self.dir.join("blobs");
        if blobs.is_dir() {
            let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
            let mut present = HashMap::new();
            for entry in std::fs::read_dir(&blobs)? {
                let entry = entry?;
                // sled may collect a blob meanwhile: one that is gone needs no fsync.
                let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
                let len = match entry.metadata() {
                    Ok(m) => m.len(),
                    Err(e) if gone(&e) => continue,
                    Err(e) => return Err(e.into()),
                };
                if synced.get(&entry.file_name()) != Some(&len) {
                    match std::fs::File::open(entry.path()) {
                        Ok(f) => f.sync_data()?,
                        Err(e) if gone(&e) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                present.insert(entry.file_name(), len);
            }
            // Blobs sled collected are forgotten with it.
            *synced = present;
            bianmin_engine::outbox::disk::sync_dir(&blobs)?;
        }
        std::fs::File::open(self.dir.join("db"))?.sync_data()?;
        Ok(())
    }
}

/// The embedded store on sled.
pub struct SledStore {
    db: DurableSled,
    devices: sled::Tree,
    cases: sled::Tree,
    feed: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
    /// `device \0 nonce` → keep-until, big-endian i64 seconds.
    nonces: sled::Tree,
    ratings: sled::Tree,
    rectifications: sled::Tree,
    /// case id → wrong phone-digit attempts, big-endian u32.
    phone_failures: sled::Tree,
    /// session hash → [`SessionRecord`].
    sessions: sled::Tree,
    /// sha256 → size, big-endian u64.
    attachments: sled::Tree,
    /// `sha256 \0 village` → nothing.
    holders: sled::Tree,
    /// Catalog version, big-endian u32 → [`CatalogVersion`].
    catalog: sled::Tree,
    /// The inbox index: `received_at \0 id` ([`inbox::index_key`]) → [`CaseSummary`], written
    /// with its case in one transaction.
    inbox: sled::Tree,
    /// The county lists' secondary keys ([`index_keys`]), written with the inbox summary.
    county_ix: sled::Tree,
    /// The notification outbox (`notices.rs`).
    outbox: notices::Trees,
    /// Unfinished uploads whose bytes are in an object store (`partials.rs`).
    partials: partials::Tree,
    /// Serialises commits (see the module comment).
    write: Mutex<()>,
    buckets: Mutex<HashMap<(BucketKind, String), Bucket>>,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    supervisor: String,
    expires: DateTime<Utc>,
}

const META_FEED_SEQ: &[u8] = b"feed_seq";
const META_AUDIT_HEAD: &[u8] = b"audit_head";
/// The newest published catalog version: asked on every manifest request, so not found by
/// parsing version records (each holds a whole catalog).
const META_CATALOG_HEAD: &[u8] = b"catalog_head";
/// Present once the inbox index holds every case; its value is the summary's version
/// ([`INBOX_INDEX_VERSION`]).
const META_INBOX_INDEXED: &[u8] = b"inbox_indexed";
/// 2: summaries carry the county figures' fields; 3: the county lists' fields, their secondary
/// keys and the open-case counters. An index of an older version is rebuilt.
const INBOX_INDEX_VERSION: &[u8] = b"3";

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store records serialize")
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn nonce_key(device: &str, nonce: &str) -> Vec<u8> {
    // Neither a device id (base32) nor a header value can hold a NUL, so the key is unambiguous.
    let mut k = device.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(nonce.as_bytes());
    k
}

fn keep_until(bytes: &[u8]) -> Result<i64, StoreError> {
    let b: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("nonce entry is not 8 bytes".into()))?;
    Ok(i64::from_be_bytes(b))
}

fn feed_key(village: &str, seq: u64) -> Vec<u8> {
    let mut k = village.as_bytes().to_vec();
    k.push(b'/');
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn holder_key(sha: &str, village: &str) -> Vec<u8> {
    let mut k = sha.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(village.as_bytes());
    k
}

/// What one transaction writes besides the case, feed and audit.
#[derive(Default)]
struct Extra<'a> {
    device: Option<&'a DeviceRecord>,
    rating: Option<&'a Rating>,
    rectification: Option<&'a Rectification>,
    catalog_put: Option<&'a CatalogVersion>,
    catalog_remove: Option<u32>,
    catalog_head: Option<u32>,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`. A small cache: the server's working set is small.
    ///
    /// Ratings and loops were once kept in a second database, `feedback-db` beside `dir`; one
    /// found there is imported (records already present win) and renamed `feedback-db.imported`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let db = DurableSled::open(dir, 32 * 1024 * 1024)?;
        let sled = &db.db;
        let store = SledStore {
            devices: sled.open_tree("devices")?,
            cases: sled.open_tree("cases")?,
            feed: sled.open_tree("feed")?,
            audit: sled.open_tree("audit")?,
            meta: sled.open_tree("meta")?,
            nonces: sled.open_tree("nonces")?,
            ratings: sled.open_tree("ratings")?,
            rectifications: sled.open_tree("rectifications")?,
            phone_failures: sled.open_tree("phone_failures")?,
            sessions: sled.open_tree("sessions")?,
            attachments: sled.open_tree("attachments")?,
            holders: sled.open_tree("holders")?,
            catalog: sled.open_tree("catalog")?,
            inbox: sled.open_tree("inbox")?,
            county_ix: sled.open_tree("county_ix")?,
            outbox: notices::Trees::open(sled)?,
            partials: partials::Tree::open(sled)?,
            write: Mutex::new(()),
            buckets: Mutex::default(),
            db,
        };
        if let Some(parent) = dir.parent() {
            store.import_legacy_feedback(&parent.join("feedback-db"))?;
            store.import_legacy_holders(parent)?;
        }
        store.index_inbox()?;
        Ok(store)
    }

    /// Builds the inbox index of a store written before it existed (once: a marker in `meta`
    /// says it is complete; later writes keep it in step inside their transactions).
    fn index_inbox(&self) -> Result<(), StoreError> {
        if self.meta.get(META_INBOX_INDEXED)?.as_deref() == Some(INBOX_INDEX_VERSION) {
            return Ok(());
        }
        let _guard = self.lock();
        self.inbox.clear()?;
        self.county_ix.clear()?;
        for k in self.meta.scan_prefix(index_keys::COUNTER_PREFIX).keys() {
            self.meta.remove(k?)?;
        }
        let mut open: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut n = 0usize;
        for v in self.cases.iter().values() {
            let sc: StoredCase = parse(&v?)?;
            self.index_untransacted(&CaseSummary::of(&sc), &mut open)?;
            n += 1;
        }
        self.write_open_counts(&open)?;
        self.meta.insert(META_INBOX_INDEXED, INBOX_INDEX_VERSION)?;
        self.db.sync()?;
        if n > 0 {
            tracing::info!(cases = n, "inbox index built");
        }
        Ok(())
    }

    /// Which village sent which page was once kept as empty files `holders/xx/{sha}.{village}`
    /// beside `attachments/xx/{sha}`; those found are recorded here and the directory renamed
    /// `holders.imported`.
    fn import_legacy_holders(&self, data: &Path) -> Result<(), StoreError> {
        let dir = data.join("holders");
        if !dir.is_dir() {
            return Ok(());
        }
        for sub in std::fs::read_dir(&dir)?.flatten() {
            for f in std::fs::read_dir(sub.path())?.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                let Some((sha, village)) = name.split_once('.') else {
                    continue;
                };
                if !crate::digest::is_sha256(sha) {
                    continue;
                }
                let file = data.join("attachments").join(&sha[..2]).join(sha);
                if let Ok(meta) = std::fs::metadata(&file) {
                    self.attachments
                        .insert(sha.as_bytes(), &meta.len().to_be_bytes())?;
                    self.holders.insert(holder_key(sha, village), &[])?;
                }
            }
        }
        self.db.sync()?;
        std::fs::rename(&dir, data.join("holders.imported"))?;
        tracing::info!("attachment holders imported from the old holders directory");
        Ok(())
    }

    fn import_legacy_feedback(&self, legacy: &Path) -> Result<(), StoreError> {
        if !legacy.join("db").is_file() {
            return Ok(());
        }
        {
            let old = sled::open(legacy)?;
            for (name, into) in [
                ("ratings", &self.ratings),
                ("rectifications", &self.rectifications),
            ] {
                for row in old.open_tree(name)?.iter() {
                    let (k, v) = row?;
                    // Only if absent: a record written since the import began is newer.
                    let _ = into.compare_and_swap(k, None as Option<&[u8]>, Some(v))?;
                }
            }
        }
        self.db.sync()?;
        std::fs::rename(legacy, legacy.with_extension("imported"))?;
        tracing::info!(from = %legacy.display(), "ratings and loops imported from the old feedback database");
        Ok(())
    }

    /// Writes a case's summary and secondary keys outside a transaction (rebuild, restore: the
    /// caller holds the write lock), counting its open case into `open`.
    fn index_untransacted(
        &self,
        s: &CaseSummary,
        open: &mut HashMap<Vec<u8>, u64>,
    ) -> Result<(), StoreError> {
        self.inbox.insert(s.index_key(), s.encode())?;
        for k in index_keys::keys(s) {
            self.county_ix.insert(k, &[])?;
        }
        if s.open {
            *open.entry(index_keys::open_key(&s.device)).or_default() += 1;
        }
        *open.entry(index_keys::village_key(&s.village)).or_default() += 1;
        Ok(())
    }

    /// A page of the inbox in received order with no filter but the villages: the index walked
    /// from the cursor, stopping a row after the page, the total from the per-village counters.
    fn inbox_walk(
        &self,
        f: &InboxFilter,
        order: InboxOrder,
        after: Option<&InboxCursor>,
        limit: usize,
    ) -> Result<(Vec<CaseSummary>, Option<InboxCursor>, u64), StoreError> {
        let limit = limit.clamp(1, inbox::MAX_PAGE);
        let from = after.map(|c| inbox::index_key(c.received_at, &c.id));
        let rows: Box<dyn Iterator<Item = sled::Result<sled::IVec>>> = match (order, from) {
            (InboxOrder::Newest, Some(k)) => Box::new(self.inbox.range(..k).values().rev()),
            (InboxOrder::Newest, None) => Box::new(self.inbox.iter().values().rev()),
            (_, Some(mut k)) => {
                k.push(0);
                Box::new(self.inbox.range(k..).values())
            }
            (_, None) => Box::new(self.inbox.iter().values()),
        };
        let mut page = Vec::with_capacity(limit + 1);
        for v in rows {
            let s = CaseSummary::decode(&v?)
                .ok_or_else(|| StoreError::Corrupt("inbox index entry".into()))?;
            if f.villages.contains(&s.village) {
                page.push(s);
                if page.len() > limit {
                    break;
                }
            }
        }
        let more = page.len() > limit;
        page.truncate(limit);
        let next = more.then(|| page.last()).flatten().map(|s| InboxCursor {
            deadline: s.deadline,
            received_at: s.received_at,
            id: s.id.clone(),
        });
        let mut villages = f.villages.clone();
        villages.sort();
        villages.dedup();
        let mut total = 0;
        for v in &villages {
            total += self
                .meta
                .get(index_keys::village_key(v))?
                .map_or(0, |b| Self::count64(&b));
        }
        Ok((page, next, total))
    }

    fn write_open_counts(&self, open: &HashMap<Vec<u8>, u64>) -> Result<(), StoreError> {
        for (key, n) in open {
            self.meta.insert(key.as_slice(), &n.to_be_bytes())?;
        }
        Ok(())
    }

    /// Every case's summary from the inbox index, oldest received first.
    fn summaries(&self) -> Result<Vec<CaseSummary>, StoreError> {
        self.inbox
            .iter()
            .values()
            .map(|v| {
                let v = v?;
                CaseSummary::decode(&v)
                    .ok_or_else(|| StoreError::Corrupt("inbox index entry".into()))
            })
            .collect()
    }

    /// Writes a whole town into this empty store (`restore`), feed sequence and audit head
    /// included, durably.
    pub fn import(&self, snap: &super::Snapshot) -> Result<(), StoreError> {
        let _guard = self.lock();
        if !self.cases.is_empty() || !self.audit.is_empty() || !self.devices.is_empty() {
            return Err(StoreError::Unsupported(
                "the store already holds a town; restore into an empty data directory",
            ));
        }
        for d in &snap.devices {
            self.devices.insert(d.id.as_bytes(), json(d))?;
        }
        let mut open: HashMap<Vec<u8>, u64> = HashMap::new();
        for c in &snap.cases {
            self.cases.insert(c.case.id.as_bytes(), json(c))?;
            self.index_untransacted(&CaseSummary::of(c), &mut open)?;
        }
        self.write_open_counts(&open)?;
        for e in &snap.feed {
            self.feed.insert(feed_key(&e.village, e.seq), json(e))?;
        }
        for e in &snap.audit {
            self.audit.insert(e.seq.to_be_bytes(), json(e))?;
        }
        for r in &snap.ratings {
            self.ratings.insert(r.case_id.as_bytes(), json(r))?;
        }
        for r in &snap.rectifications {
            self.rectifications.insert(r.case_id.as_bytes(), json(r))?;
        }
        for (sha, size, villages) in &snap.attachments {
            self.attachments
                .insert(sha.as_bytes(), &size.to_be_bytes())?;
            for v in villages {
                self.holders.insert(holder_key(sha, v), &[])?;
            }
        }
        for (case_id, n) in &snap.phone_failures {
            self.phone_failures
                .insert(case_id.as_bytes(), &n.to_be_bytes())?;
        }
        for v in &snap.catalog {
            self.catalog.insert(v.version.to_be_bytes(), json(v))?;
        }
        if let Some(h) = snap
            .catalog
            .iter()
            .filter(|v| v.state == CatalogState::Published)
            .map(|v| v.version)
            .max()
        {
            self.meta.insert(META_CATALOG_HEAD, json(&h))?;
        }
        self.import_outbox(&snap.outbox)?;
        let seq = snap.feed.iter().map(|e| e.seq).max().unwrap_or(0);
        self.meta.insert(META_FEED_SEQ, json(&seq))?;
        if let Some(h) = snap.audit.iter().max_by_key(|e| e.seq) {
            self.meta
                .insert(META_AUDIT_HEAD, json(&(h.seq, h.hash.clone())))?;
        }
        self.db.sync()
    }

    /// Adds every record of this store to `snap` (`migrate`; the administration files are
    /// `FileAdmin::export_into`'s).
    pub fn export_into(&self, snap: &mut super::Snapshot) -> Result<(), StoreError> {
        snap.devices = Self::all(&self.devices)?;
        snap.cases = Self::all(&self.cases)?;
        let mut feed: Vec<ChangeEntry> = Self::all(&self.feed)?;
        feed.sort_by_key(|e| e.seq);
        snap.feed = feed;
        snap.audit = Self::all(&self.audit)?;
        snap.ratings = Self::all(&self.ratings)?;
        snap.rectifications = Self::all(&self.rectifications)?;
        snap.outbox = self.export_outbox()?;
        // Keys are big-endian numbers, so tree order is version order.
        snap.catalog = Self::all(&self.catalog)?;
        let mut attachments = Vec::new();
        for row in self.attachments.iter() {
            let (k, v) = row?;
            let sha = String::from_utf8_lossy(&k).to_string();
            let size = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("attachment size is not 8 bytes".into()))?;
            let mut villages = Vec::new();
            for h in self.holders.scan_prefix(holder_key(&sha, "")) {
                let (hk, _) = h?;
                villages.push(String::from_utf8_lossy(&hk[sha.len() + 1..]).to_string());
            }
            attachments.push((sha, size, villages));
        }
        snap.attachments = attachments;
        snap.phone_failures = self
            .phone_failures
            .iter()
            .map(|r| {
                let (k, v) = r?;
                Ok((
                    String::from_utf8_lossy(&k).to_string(),
                    Self::count(Some(&v)),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(())
    }

    /// The underlying database, for tests that tamper with stored records.
    pub fn raw_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.db.open_tree(name)?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One transaction over every tree a commit touches; the caller holds the write lock.
    fn tx_commit_locked(
        &self,
        extra: Extra<'_>,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        let feed_seq: u64 = match self.meta.get(META_FEED_SEQ)? {
            Some(v) => parse(&v)?,
            None => 0,
        };
        let head: Option<(u64, String)> = match self.meta.get(META_AUDIT_HEAD)? {
            Some(v) => Some(parse(&v)?),
            None => None,
        };
        // Built outside the transaction closure because the closure may run more than once.
        let mut entries = Vec::new();
        let mut prev = head.clone();
        for d in audit {
            let e = chain(prev.as_ref().map(|(s, h)| (*s, h.as_str())), d);
            prev = Some((e.seq, e.hash.clone()));
            entries.push(e);
        }
        let mut feed_rows = Vec::new();
        let mut seq = feed_seq;
        for ev in events {
            seq += 1;
            let village = case.map(|c| c.case.village.clone()).unwrap_or_default();
            feed_rows.push((
                feed_key(&village, seq),
                json(&ChangeEntry {
                    seq,
                    village,
                    event: ev.clone(),
                }),
            ));
        }
        // A case's received time never changes, so its index key does not either.
        let summary = case.map(|c| {
            let s = CaseSummary::of(c);
            (s.index_key(), s.encode(), s)
        });
        let res: Result<(), TransactionError<()>> = (
            &self.devices,
            &self.cases,
            &self.feed,
            &self.audit,
            &self.meta,
            &self.ratings,
            &self.rectifications,
            &self.catalog,
            &self.inbox,
            &self.county_ix,
        )
            .transaction(|(td, tc, tf, ta, tm, tr, tx, tk, ti, tix)| {
                if let Some(v) = extra.catalog_remove {
                    tk.remove(&v.to_be_bytes())?;
                }
                if let Some(v) = extra.catalog_put {
                    tk.insert(&v.version.to_be_bytes(), json(v))?;
                }
                if let Some(h) = extra.catalog_head {
                    tm.insert(META_CATALOG_HEAD, json(&h))?;
                }
                if let Some(d) = extra.device {
                    td.insert(d.id.as_bytes(), json(d))?;
                }
                if let Some(r) = extra.rating {
                    tr.insert(r.case_id.as_bytes(), json(r))?;
                }
                if let Some(r) = extra.rectification {
                    tx.insert(r.case_id.as_bytes(), json(r))?;
                }
                if let Some(c) = case {
                    tc.insert(c.case.id.as_bytes(), json(c))?;
                }
                if let Some((k, v, new)) = &summary {
                    // The entry it replaces says which secondary keys and counter to undo.
                    let old = match ti.insert(k.as_slice(), v.as_slice())? {
                        Some(b) => Some(
                            CaseSummary::decode(&b)
                                .ok_or(ConflictableTransactionError::Abort(()))?,
                        ),
                        None => None,
                    };
                    let (old_keys, old_open, old_village) = match &old {
                        Some(o) => (
                            index_keys::keys(o),
                            o.open.then(|| index_keys::open_key(&o.device)),
                            Some(index_keys::village_key(&o.village)),
                        ),
                        None => (Vec::new(), None, None),
                    };
                    let new_keys = index_keys::keys(new);
                    for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
                        tix.remove(k.as_slice())?;
                    }
                    for k in new_keys.iter().filter(|k| !old_keys.contains(k)) {
                        tix.insert(k.as_slice(), &[])?;
                    }
                    // The counters: open cases per device, cases per village.
                    let bump = |key: &[u8], up: bool| {
                        let n = tm.get(key)?.map_or(0, |b| Self::count64(&b));
                        let n = if up { n + 1 } else { n.saturating_sub(1) };
                        tm.insert(key, &n.to_be_bytes())?;
                        Ok::<(), ConflictableTransactionError<()>>(())
                    };
                    let new_village = Some(index_keys::village_key(&new.village));
                    let new_open = new.open.then(|| index_keys::open_key(&new.device));
                    for (old, new) in [(old_open, new_open), (old_village, new_village)] {
                        if old != new {
                            if let Some(k) = old {
                                bump(&k, false)?;
                            }
                            if let Some(k) = new {
                                bump(&k, true)?;
                            }
                        }
                    }
                }
                for (k, v) in &feed_rows {
                    tf.insert(k.as_slice(), v.as_slice())?;
                }
                tm.insert(META_FEED_SEQ, json(&seq))?;
                for e in &entries {
                    ta.insert(&e.seq.to_be_bytes(), json(e))?;
                }
                if let Some(p) = &prev {
                    tm.insert(META_AUDIT_HEAD, json(p))?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => {
                Err(StoreError::Corrupt("transaction aborted".into()))
            }
        }
    }

    fn tx_commit(
        &self,
        extra: Extra<'_>,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        {
            let _guard = self.lock();
            self.tx_commit_locked(extra, case, events, audit)?;
        }
        self.db.sync()
    }

    fn get<T: for<'de> Deserialize<'de>>(
        tree: &sled::Tree,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        tree.get(key.as_bytes())?.map(|v| parse(&v)).transpose()
    }

    fn all<T: for<'de> Deserialize<'de>>(tree: &sled::Tree) -> Result<Vec<T>, StoreError> {
        tree.iter().values().map(|v| parse(&v?)).collect()
    }

    fn count64(bytes: &[u8]) -> u64 {
        <[u8; 8]>::try_from(bytes)
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    }

    fn count(bytes: Option<&[u8]>) -> u32 {
        bytes
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .unwrap_or(0)
    }
}

impl TownStore for SledStore {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Self::get(&self.devices, id)
    }

    fn insert_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<bool, StoreError> {
        {
            let _guard = self.lock();
            if self.devices.contains_key(d.id.as_bytes())? {
                return Ok(false);
            }
            self.tx_commit_locked(
                Extra {
                    device: Some(d),
                    ..Extra::default()
                },
                None,
                &[],
                vec![audit],
            )?;
        }
        self.db.sync()?;
        Ok(true)
    }

    fn put_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<(), StoreError> {
        self.tx_commit(
            Extra {
                device: Some(d),
                ..Extra::default()
            },
            None,
            &[],
            vec![audit],
        )
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        Self::all(&self.devices)
    }

    fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        Self::get(&self.cases, id)
    }

    fn cases(&self) -> Result<Vec<StoredCase>, StoreError> {
        Self::all(&self.cases)
    }

    fn cases_of(&self, villages: &[String]) -> Result<Vec<StoredCase>, StoreError> {
        let mut out: Vec<StoredCase> = self
            .cases()?
            .into_iter()
            .filter(|c| villages.contains(&c.case.village))
            .collect();
        out.sort_by(|a, b| (a.received_at, &a.case.id).cmp(&(b.received_at, &b.case.id)));
        Ok(out)
    }

    fn inbox(
        &self,
        f: &InboxFilter,
        order: InboxOrder,
        after: Option<&InboxCursor>,
        limit: usize,
    ) -> Result<InboxPage, StoreError> {
        let plain = f.state.is_none() && f.overdue.is_none() && f.search.is_none();
        let (page, next, total) = if plain && order != InboxOrder::Deadline {
            self.inbox_walk(f, order, after, limit)?
        } else {
            inbox::pick(self.summaries()?.into_iter(), f, order, after, limit)
        };
        let cases = page
            .iter()
            .map(|s| {
                self.case(&s.id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("inbox index names {}", s.id)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(InboxPage { cases, next, total })
    }

    fn village_counts(&self, today: NaiveDate) -> Result<Vec<VillageCounts>, StoreError> {
        Ok(figures::village_counts(&self.summaries()?, today))
    }

    fn shared_phones(&self, min_applicants: u32) -> Result<Vec<PhoneUse>, StoreError> {
        Ok(figures::shared_phones(&self.summaries()?, min_applicants))
    }

    fn overdue_cases(&self, today: NaiveDate) -> Result<Vec<StoredCase>, StoreError> {
        let mut ids: Vec<String> = self
            .summaries()?
            .into_iter()
            .filter(|s| figures::overdue(s, today))
            .map(|s| s.id)
            .collect();
        ids.sort();
        ids.iter()
            .map(|id| {
                self.case(id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("inbox index names {id}")))
            })
            .collect()
    }

    fn county_list(
        &self,
        list: &CountyList,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.clamp(1, county_lists::MAX_LIST_PAGE);
        let (start, end, reverse) = index_keys::range(list, after);
        if start >= end {
            return Ok(ListPage::default());
        }
        let range = self.county_ix.range(start..end);
        let keys: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut cases = Vec::with_capacity(limit + 1);
        for kv in keys.take(limit + 1) {
            let (k, _) = kv?;
            let id = index_keys::id_of(list, &k)
                .ok_or_else(|| StoreError::Corrupt("county index key".into()))?;
            cases.push(
                self.case(&id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("county index names {id}")))?,
            );
        }
        let more = cases.len() > limit;
        cases.truncate(limit);
        let next = more
            .then(|| cases.last())
            .flatten()
            .map(|c| county_lists::sort_key(&CaseSummary::of(c), list));
        Ok(ListPage { cases, next })
    }

    fn open_cases_by_device(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.meta.scan_prefix(index_keys::OPEN_PREFIX) {
            let (k, v) = kv?;
            let n = Self::count64(&v);
            if n > 0 {
                let device = String::from_utf8_lossy(&k[index_keys::OPEN_PREFIX.len()..]);
                out.insert(device.into_owned(), n);
            }
        }
        Ok(out)
    }

    fn commit(
        &self,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        self.tx_commit(Extra::default(), case, events, audit)
    }

    fn changes(
        &self,
        villages: &[String],
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<ChangeEntry>, bool), StoreError> {
        let mut out: Vec<ChangeEntry> = Vec::new();
        for v in villages {
            let start = feed_key(v, cursor.saturating_add(1));
            let end = feed_key(v, u64::MAX);
            for row in self.feed.range(start..=end).take(limit + 1) {
                let (_, val) = row?;
                out.push(parse(&val)?);
            }
        }
        out.sort_by_key(|e| e.seq);
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }

    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        Self::all(&self.audit)
    }

    fn remember_nonce(
        &self,
        device: &str,
        nonce: &str,
        keep_until_secs: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let key = nonce_key(device, nonce);
        let new = keep_until_secs.to_be_bytes();
        // Compare-and-swap rather than get-then-insert: two copies of one request racing each
        // other must not both pass.
        let fresh =
            match self
                .nonces
                .compare_and_swap(&key, None as Option<&[u8]>, Some(&new[..]))?
            {
                Ok(()) => true,
                Err(cas) => match cas.current {
                    Some(old) if keep_until(&old)? >= now => false,
                    // Expired but not yet pruned: the nonce may be used again.
                    old => self
                        .nonces
                        .compare_and_swap(&key, old, Some(&new[..]))?
                        .is_ok(),
                },
            };
        if fresh {
            // Durable before the request has any effect: a crash right after cannot reopen it.
            self.db.sync()?;
        }
        Ok(fresh)
    }

    fn prune_nonces(&self, now: i64) -> Result<usize, StoreError> {
        let mut forgotten = 0;
        for row in self.nonces.iter() {
            let (k, v) = row?;
            if keep_until(&v)? < now {
                // Only if unchanged: a concurrent request may just have reused the expired nonce.
                if self
                    .nonces
                    .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)?
                    .is_ok()
                {
                    forgotten += 1;
                }
            }
        }
        // Not flushed: a removal lost in a crash only keeps an expired nonce a little longer.
        Ok(forgotten)
    }

    fn attachment_size(&self, sha: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .attachments
            .get(sha.as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    fn held_by(&self, sha: &str, village: &str) -> Result<bool, StoreError> {
        Ok(self.holders.contains_key(holder_key(sha, village))?)
    }

    fn add_attachment(&self, sha: &str, size: u64, village: &str) -> Result<(), StoreError> {
        let res: Result<(), TransactionError<()>> =
            (&self.attachments, &self.holders).transaction(|(ta, th)| {
                ta.insert(sha.as_bytes(), &size.to_be_bytes())?;
                th.insert(holder_key(sha, village), &[])?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match res {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => return Err(e.into()),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Corrupt("transaction aborted".into()))
            }
        }
        self.db.sync()
    }

    fn rate(
        &self,
        rating: &Rating,
        loop_record: Option<&Rectification>,
        case: &StoredCase,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError> {
        {
            // Every rating is written under the write lock, so checking first is race-free.
            let _guard = self.lock();
            if self.ratings.contains_key(rating.case_id.as_bytes())? {
                return Ok(false);
            }
            self.tx_commit_locked(
                Extra {
                    rating: Some(rating),
                    rectification: loop_record,
                    ..Extra::default()
                },
                Some(case),
                events,
                audit,
            )?;
        }
        self.db.sync()?;
        Ok(true)
    }

    fn rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError> {
        Self::get(&self.ratings, case_id)
    }

    fn add_bad_review(
        &self,
        case_id: &str,
        added: AddedBadReview,
        loop_record: &Rectification,
        audit: AuditDraft,
    ) -> Result<Rating, AddBadError> {
        let r = {
            // Ratings are written under the write lock, so read, check and write are one step.
            let _guard = self.lock();
            let mut r: Rating = Self::get(&self.ratings, case_id)?.ok_or(AddBadError::NotRated)?;
            r.add_bad(added)?;
            self.tx_commit_locked(
                Extra {
                    rating: Some(&r),
                    rectification: Some(loop_record),
                    ..Extra::default()
                },
                None,
                &[],
                vec![audit],
            )?;
            r
        };
        self.db.sync()?;
        Ok(r)
    }

    fn ratings(&self) -> Result<Vec<Rating>, StoreError> {
        Self::all(&self.ratings)
    }

    fn rectification(&self, case_id: &str) -> Result<Option<Rectification>, StoreError> {
        Self::get(&self.rectifications, case_id)
    }

    fn rectifications(&self) -> Result<Vec<Rectification>, StoreError> {
        Self::all(&self.rectifications)
    }

    fn add_step(
        &self,
        case_id: &str,
        step: Step,
        audit: AuditDraft,
    ) -> Result<Rectification, StepError> {
        let r = {
            let _guard = self.lock();
            let mut r: Rectification =
                Self::get(&self.rectifications, case_id)?.ok_or(StepError::NotFound)?;
            r.push_step(step)?;
            self.tx_commit_locked(
                Extra {
                    rectification: Some(&r),
                    ..Extra::default()
                },
                None,
                &[],
                vec![audit],
            )?;
            r
        };
        self.db.sync()?;
        Ok(r)
    }

    fn phone_failed(&self, case_id: &str) -> Result<u32, StoreError> {
        let n = self
            .phone_failures
            .update_and_fetch(case_id.as_bytes(), |old| {
                Some((Self::count(old) + 1).to_be_bytes().to_vec())
            })?;
        // Durable: a crash must not hand a guesser fresh attempts.
        self.db.sync()?;
        Ok(Self::count(n.as_deref()))
    }

    fn phone_failures(&self, case_id: &str) -> Result<u32, StoreError> {
        Ok(Self::count(
            self.phone_failures.get(case_id.as_bytes())?.as_deref(),
        ))
    }

    fn create_session(
        &self,
        token_hash: &str,
        supervisor: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        // Sessions are few (county staff); expired ones are swept as new ones start.
        for row in self.sessions.iter() {
            let (k, v) = row?;
            if parse::<SessionRecord>(&v).map_or(true, |s| s.expires <= now) {
                self.sessions.remove(k)?;
            }
        }
        self.sessions.insert(
            token_hash.as_bytes(),
            json(&SessionRecord {
                supervisor: supervisor.to_string(),
                expires,
            }),
        )?;
        self.db.sync()
    }

    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        Ok(Self::get::<SessionRecord>(&self.sessions, token_hash)?
            .filter(|s| s.expires > now)
            .map(|s| s.supervisor))
    }

    fn notices(&self) -> &dyn super::notices::NoticeStore {
        self
    }

    fn partials(&self) -> &dyn super::partials::PartialStore {
        self
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.sessions.remove(token_hash.as_bytes())?;
        self.db.sync()
    }

    fn snapshot(&self) -> Result<super::Snapshot, StoreError> {
        // Every commit takes the write lock: holding it, the trees a commit touches together
        // (cases, feed, audit, ratings, loops) are read as of one moment.
        let _guard = self.lock();
        let mut snap = super::Snapshot::default();
        self.export_into(&mut snap)?;
        Ok(snap)
    }

    fn take_token(
        &self,
        kind: BucketKind,
        client: &str,
        config: RateConfig,
        now: f64,
    ) -> Result<Result<(), u64>, StoreError> {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 50_000 {
            // Full buckets carry no information; drop them.
            b.retain(|(k, _), bucket| *k != kind || !bucket.is_full_at(config, now));
        }
        Ok(b.entry((kind, client.to_string()))
            .or_insert_with(|| Bucket::full(config, now))
            .take(config, now))
    }

    fn give_back_token(
        &self,
        kind: BucketKind,
        client: &str,
        config: RateConfig,
    ) -> Result<(), StoreError> {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = b.get_mut(&(kind, client.to_string())) {
            bucket.give_back(config);
        }
        Ok(())
    }

    fn catalog_versions(&self) -> Result<Vec<CatalogVersion>, StoreError> {
        Self::all(&self.catalog)
    }

    fn catalog_version(&self, version: u32) -> Result<Option<CatalogVersion>, StoreError> {
        self.catalog
            .get(version.to_be_bytes())?
            .map(|v| parse(&v))
            .transpose()
    }

    fn catalog_head(&self) -> Result<Option<u32>, StoreError> {
        self.meta
            .get(META_CATALOG_HEAD)?
            .map(|v| parse(&v))
            .transpose()
    }

    fn put_catalog_draft(
        &self,
        draft: &CatalogVersion,
        base: u32,
        audit: AuditDraft,
    ) -> Result<u32, CatalogStoreError> {
        {
            let _guard = self.lock();
            let head = self.catalog_head()?.unwrap_or(0);
            if head != base {
                return Err(CatalogStoreError::Stale { base, found: head });
            }
            let mut draft = draft.clone();
            draft.version = head + 1;
            draft.state = CatalogState::Draft;
            let extra = Extra {
                catalog_put: Some(&draft),
                ..Extra::default()
            };
            self.tx_commit_locked(extra, None, &[], vec![audit])?;
        }
        self.db.sync()?;
        Ok(base + 1)
    }

    fn discard_catalog_draft(
        &self,
        version: u32,
        audit: AuditDraft,
    ) -> Result<(), CatalogStoreError> {
        {
            let _guard = self.lock();
            match self.catalog_version(version)? {
                None => return Err(CatalogStoreError::NotFound(version)),
                Some(v) if v.state == CatalogState::Published => {
                    return Err(CatalogStoreError::AlreadyPublished(version))
                }
                Some(_) => {}
            }
            let extra = Extra {
                catalog_remove: Some(version),
                ..Extra::default()
            };
            self.tx_commit_locked(extra, None, &[], vec![audit])?;
        }
        self.db.sync()?;
        Ok(())
    }

    fn publish_catalog(
        &self,
        version: u32,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<CatalogVersion, CatalogStoreError> {
        let published = {
            let _guard = self.lock();
            let mut v = self
                .catalog_version(version)?
                .ok_or(CatalogStoreError::NotFound(version))?;
            if v.state == CatalogState::Published {
                return Err(CatalogStoreError::AlreadyPublished(version));
            }
            v.state = CatalogState::Published;
            v.published_by = Some(by.to_string());
            v.published_at = Some(at);
            let extra = Extra {
                catalog_put: Some(&v),
                catalog_head: Some(version),
                ..Extra::default()
            };
            self.tx_commit_locked(extra, None, &[], vec![audit])?;
            v
        };
        self.db.sync()?;
        Ok(published)
    }
}
