//! Storage of the town centre behind the `TownStore` trait, with the embedded sled implementation.
//!
//! The trait is what a server database (PostgreSQL, ...) would implement later; the handlers only
//! see the trait. Every write that changes a case goes through [`TownStore::commit`], which stores the
//! case, its changes-feed events and its audit entries in one transaction and makes it durable before
//! returning ([`DurableSled::sync`]: sled's flush, then a real fsync): the API acknowledges nothing
//! that a crash or a power cut could lose.
//! Request nonces live here too ([`TownStore::remember_nonce`]), so a restart does not reopen
//! the replay window.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use bianmin_engine::case::Case;
use bianmin_protocol::sync::{ChangeEntry, DeviceRole, Receipt};
use bianmin_protocol::DecisionEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use thiserror::Error;

use crate::audit::{chain, AuditDraft, AuditEntry};

/// A storage failure (never shown to clients).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    #[error("database files: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub id: String,
    pub role: DeviceRole,
    /// The village of an agent device.
    pub village: Option<String>,
    pub town: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    #[serde(default)]
    pub person: String,
    pub enrolled_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked: bool,
}

/// One accepted version of a case and the receipt it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub content_sha256: String,
    pub receipt: Receipt,
}

/// A case as the town holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCase {
    pub case: Case,
    pub received_at: DateTime<Utc>,
    pub versions: BTreeMap<u32, VersionRecord>,
    /// 补正 is asked once; this counts how often it was.
    #[serde(default)]
    pub corrections: u32,
}

/// The town centre's storage.
pub trait TownStore: Send + Sync + 'static {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Registers a new device; `false` if the id is taken.
    fn insert_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<bool, StoreError>;
    /// Replaces a device record (revocation).
    fn put_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<(), StoreError>;
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;
    fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError>;
    fn cases(&self) -> Result<Vec<StoredCase>, StoreError>;
    /// Atomically stores `case` (if any), appends `events` to the changes feed and `audit` to the
    /// audit chain, then makes it durable.
    fn commit(
        &self,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError>;
    /// Feed entries of `villages` after `cursor`, oldest first, at most `limit`; and whether more wait.
    fn changes(
        &self,
        villages: &[String],
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<ChangeEntry>, bool), StoreError>;
    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError>;
    /// Remembers `nonce` of `device` until `keep_until` (Unix seconds, inclusive) and makes it
    /// durable before returning; `false`, storing nothing, if it is already remembered at `now`.
    /// Atomic: of two concurrent calls with the same nonce only one gets `true`.
    fn remember_nonce(
        &self,
        device: &str,
        nonce: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Forgets nonces whose `keep_until` is before `now`; how many it forgot.
    fn prune_nonces(&self, now: i64) -> Result<usize, StoreError>;
}

/// A sled database whose acknowledged writes survive a power cut.
///
/// sled 0.34's `flush` makes writes survive a crashed process, not a dead battery: on Linux its log
/// writes end in `sync_file_range`, which commits no metadata of the growing file and flushes no
/// disk cache (and never reaches FUSE). So every `sync` is sled's flush followed by a real fsync:
/// of the directory first (a snapshot sled renamed into place, large values in `blobs/`), then of
/// the log file, so a durable snapshot never refers to log bytes that are not durable.
pub struct DurableSled {
    pub db: sled::Db,
    dir: std::path::PathBuf,
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
    /// Serialises commits: the audit chain and feed sequence need a single writer, and sled
    /// transactions would otherwise retry on every concurrent commit.
    write: Mutex<()>,
}

const META_FEED_SEQ: &[u8] = b"feed_seq";
const META_AUDIT_HEAD: &[u8] = b"audit_head";

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

impl SledStore {
    /// Opens (or creates) the database in `dir`. A small cache: the server's working set is small.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let db = DurableSled::open(dir, 32 * 1024 * 1024)?;
        let sled = &db.db;
        Ok(SledStore {
            devices: sled.open_tree("devices")?,
            cases: sled.open_tree("cases")?,
            feed: sled.open_tree("feed")?,
            audit: sled.open_tree("audit")?,
            meta: sled.open_tree("meta")?,
            nonces: sled.open_tree("nonces")?,
            write: Mutex::new(()),
            db,
        })
    }

    /// The underlying database, for tests that tamper with stored records.
    pub fn raw_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.db.open_tree(name)?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tx_commit(
        &self,
        device: Option<&DeviceRecord>,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        let _guard = self.lock();
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
        let res: Result<(), TransactionError<()>> = (
            &self.devices,
            &self.cases,
            &self.feed,
            &self.audit,
            &self.meta,
        )
            .transaction(|(td, tc, tf, ta, tm)| {
                if let Some(d) = device {
                    td.insert(d.id.as_bytes(), json(d))?;
                }
                if let Some(c) = case {
                    tc.insert(c.case.id.as_bytes(), json(c))?;
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
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => return Err(e.into()),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Corrupt("transaction aborted".into()))
            }
        }
        drop(_guard);
        self.db.sync()?;
        Ok(())
    }
}

impl TownStore for SledStore {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.devices
            .get(id.as_bytes())?
            .map(|v| parse(&v))
            .transpose()
    }

    fn insert_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<bool, StoreError> {
        {
            let _guard = self.lock();
            if self.devices.contains_key(d.id.as_bytes())? {
                return Ok(false);
            }
            // Reserve the id under the lock so two enrolments cannot both take it.
            self.devices.insert(d.id.as_bytes(), json(d))?;
        }
        self.tx_commit(Some(d), None, &[], vec![audit])?;
        Ok(true)
    }

    fn put_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<(), StoreError> {
        self.tx_commit(Some(d), None, &[], vec![audit])
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.devices.iter().values().map(|v| parse(&v?)).collect()
    }

    fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        self.cases
            .get(id.as_bytes())?
            .map(|v| parse(&v))
            .transpose()
    }

    fn cases(&self) -> Result<Vec<StoredCase>, StoreError> {
        self.cases.iter().values().map(|v| parse(&v?)).collect()
    }

    fn commit(
        &self,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        self.tx_commit(None, case, events, audit)
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
        self.audit.iter().values().map(|v| parse(&v?)).collect()
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
}
