//! Unfinished uploads' bookkeeping on sled (see `store::partials`), in a tree of its own.

use std::sync::Mutex;

use super::{json, parse, SledStore};
use crate::store::partials::{self, Advance, Begin, Partial, PartialStore, Segment};
use crate::store::StoreError;

/// The tree of unfinished uploads, opened with the store.
pub(super) struct Tree {
    /// `village \0 sha` → [`Partial`].
    partials: sled::Tree,
    /// Serialises every write: a read, a check and a write under it are one compare-and-set
    /// (sled's file lock admits one process, so one mutex sees every writer).
    write: Mutex<()>,
}

impl Tree {
    pub(super) fn open(db: &sled::Db) -> Result<Tree, StoreError> {
        Ok(Tree {
            partials: db.open_tree("partial_uploads")?,
            write: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key(village: &str, sha: &str) -> Vec<u8> {
    // Neither a village code nor a hex hash holds a NUL.
    let mut k = village.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(sha.as_bytes());
    k
}

impl SledStore {
    fn read_partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError> {
        self.partials
            .partials
            .get(key(village, sha))?
            .map(|b| parse(&b))
            .transpose()
    }

    fn each_partial(&self) -> Result<Vec<Partial>, StoreError> {
        self.partials
            .partials
            .iter()
            .map(|kv| parse(&kv?.1))
            .collect()
    }
}

impl PartialStore for SledStore {
    fn partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError> {
        self.read_partial(village, sha)
    }

    fn begin_partial(
        &self,
        village: &str,
        sha: &str,
        length: u64,
        device: &str,
        max_open: usize,
        now: i64,
    ) -> Result<Begin, StoreError> {
        let _g = self.partials.lock();
        if let Some(p) = self.read_partial(village, sha)? {
            return Ok(if p.length == length {
                Begin::Open(p)
            } else {
                Begin::LengthMismatch(p.length)
            });
        }
        let open = self
            .each_partial()?
            .iter()
            .filter(|p| p.village == village && p.device == device && p.offset < p.length)
            .count();
        if open >= max_open {
            return Ok(Begin::TooManyOpen(max_open));
        }
        let p = Partial {
            village: village.to_string(),
            sha: sha.to_string(),
            length,
            device: device.to_string(),
            offset: 0,
            segments: Vec::new(),
            touched: now,
        };
        self.partials.partials.insert(key(village, sha), json(&p))?;
        self.db.sync()?;
        Ok(Begin::Open(p))
    }

    fn advance_partial(
        &self,
        village: &str,
        sha: &str,
        segment: &Segment,
        now: i64,
    ) -> Result<Advance, StoreError> {
        let _g = self.partials.lock();
        let Some(mut p) = self.read_partial(village, sha)? else {
            return Ok(Advance::Gone);
        };
        if let Err(at) = partials::advance(&mut p, segment, now) {
            return Ok(Advance::Lost(at));
        }
        self.partials.partials.insert(key(village, sha), json(&p))?;
        self.db.sync()?;
        Ok(Advance::Won(p))
    }

    fn remove_partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError> {
        let _g = self.partials.lock();
        let old = self
            .partials
            .partials
            .remove(key(village, sha))?
            .map(|b| parse(&b))
            .transpose()?;
        if old.is_some() {
            self.db.sync()?;
        }
        Ok(old)
    }

    fn take_stale_partials(&self, before: i64) -> Result<Vec<Partial>, StoreError> {
        let _g = self.partials.lock();
        let stale: Vec<Partial> = self
            .each_partial()?
            .into_iter()
            .filter(|p| p.touched < before)
            .collect();
        for p in &stale {
            self.partials.partials.remove(key(&p.village, &p.sha))?;
        }
        if !stale.is_empty() {
            self.db.sync()?;
        }
        Ok(stale)
    }

    fn all_partials(&self) -> Result<Vec<Partial>, StoreError> {
        self.each_partial()
    }
}
