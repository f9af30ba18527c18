//! The notification outbox and its companions on sled (see `store::notices`).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::{json, parse, SledStore};
use crate::store::notices::{Notice, NoticeState, NoticeStore, Outbox};
use crate::store::{Rating, StoreError};

const CURSOR: &[u8] = b"notice_cursor";

/// The trees of the outbox, opened with the store.
pub(super) struct Trees {
    /// notice id → [`Notice`].
    notices: sled::Tree,
    /// notice id → nothing, for every notice still `Pending` (what a claim scans).
    pending: sled::Tree,
    /// link code → case id.
    links: sled::Tree,
    /// phone hash → nothing.
    opt_outs: sled::Tree,
    /// case id → [`Rating`] made on the agent's screen.
    on_site: sled::Tree,
    /// The cursor, beside nothing else.
    meta: sled::Tree,
    /// Serialises claims and enqueues (one process holds sled's lock).
    write: Mutex<()>,
}

impl Trees {
    pub(super) fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        Ok(Trees {
            notices: db.open_tree("notices")?,
            pending: db.open_tree("notices_pending")?,
            links: db.open_tree("resident_links")?,
            opt_outs: db.open_tree("sms_opt_outs")?,
            on_site: db.open_tree("on_site_ratings")?,
            meta: db.open_tree("notices_meta")?,
            write: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn tx_error(e: sled::transaction::TransactionError<StoreError>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => StoreError::Db(e),
    }
}

impl SledStore {
    /// Writes a notice and its pending-index entry in one transaction; the caller syncs.
    fn write_notice(&self, n: &Notice) -> Result<(), StoreError> {
        let t = &self.outbox;
        (&t.notices, &t.pending)
            .transaction(|(tn, tp)| {
                tn.insert(n.id.as_bytes(), json(n))?;
                if n.state == NoticeState::Pending {
                    tp.insert(n.id.as_bytes(), &[])?;
                } else {
                    tp.remove(n.id.as_bytes())?;
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(tx_error)
    }
}

impl SledStore {
    /// Every outbox record (`migrate`, `backup`).
    pub(super) fn export_outbox(&self) -> Result<Outbox, StoreError> {
        let t = &self.outbox;
        Ok(Outbox {
            cursor: self.notice_cursor()?,
            notices: self.all_notices()?,
            links: t
                .links
                .iter()
                .map(|kv| {
                    let (k, v) = kv?;
                    Ok((
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    ))
                })
                .collect::<Result<_, StoreError>>()?,
            opt_outs: t
                .opt_outs
                .iter()
                .keys()
                .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
                .collect::<Result<_, StoreError>>()?,
            on_site_ratings: self.on_site_ratings()?,
        })
    }

    /// Writes a snapshot's outbox into this (empty) store; the caller syncs.
    pub(super) fn import_outbox(&self, o: &Outbox) -> Result<(), StoreError> {
        let t = &self.outbox;
        for n in &o.notices {
            self.write_notice(n)?;
        }
        for (code, case) in &o.links {
            t.links.insert(code.as_bytes(), case.as_bytes())?;
        }
        for h in &o.opt_outs {
            t.opt_outs.insert(h.as_bytes(), &[])?;
        }
        for r in &o.on_site_ratings {
            t.on_site.insert(r.case_id.as_bytes(), json(r))?;
        }
        t.meta.insert(CURSOR, &o.cursor.to_be_bytes())?;
        Ok(())
    }
}

impl NoticeStore for SledStore {
    fn notice_cursor(&self) -> Result<u64, StoreError> {
        Ok(self
            .outbox
            .meta
            .get(CURSOR)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn enqueue_notices(
        &self,
        notices: &[Notice],
        links: &[(String, String)],
        cursor: u64,
    ) -> Result<usize, StoreError> {
        let t = &self.outbox;
        let added = {
            let _g = t.lock();
            let old = self.notice_cursor()?;
            (&t.notices, &t.pending, &t.links, &t.meta)
                .transaction(|(tn, tp, tl, tm)| {
                    let mut added = 0;
                    for n in notices {
                        if tn.get(n.id.as_bytes())?.is_none() {
                            tn.insert(n.id.as_bytes(), json(n))?;
                            if n.state == NoticeState::Pending {
                                tp.insert(n.id.as_bytes(), &[])?;
                            }
                            added += 1;
                        }
                    }
                    for (code, case) in links {
                        tl.insert(code.as_bytes(), case.as_bytes())?;
                    }
                    tm.insert(CURSOR, &cursor.max(old).to_be_bytes())?;
                    Ok::<usize, ConflictableTransactionError<StoreError>>(added)
                })
                .map_err(tx_error)?
        };
        self.db.sync()?;
        Ok(added)
    }

    fn claim_notices(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        let t = &self.outbox;
        let mut due = Vec::new();
        {
            let _g = t.lock();
            for key in t.pending.iter().keys() {
                let key = key?;
                let Some(v) = t.notices.get(&key)? else {
                    continue;
                };
                let n: Notice = parse(&v)?;
                if n.state == NoticeState::Pending && n.next_at <= now {
                    due.push(n);
                }
            }
            due.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            due.truncate(limit);
            for n in &mut due {
                n.next_at = lease_until;
                self.write_notice(n)?;
            }
        }
        if !due.is_empty() {
            self.db.sync()?;
        }
        Ok(due)
    }

    fn put_notice(&self, notice: &Notice) -> Result<(), StoreError> {
        {
            let _g = self.outbox.lock();
            self.write_notice(notice)?;
        }
        self.db.sync()
    }

    fn all_notices(&self) -> Result<Vec<Notice>, StoreError> {
        let mut all: Vec<Notice> = SledStore::all(&self.outbox.notices)?;
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    fn link_case(&self, code: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .outbox
            .links
            .get(code.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn opt_out(&self, phone_hash: &str) -> Result<(), StoreError> {
        self.outbox.opt_outs.insert(phone_hash.as_bytes(), &[])?;
        self.db.sync()
    }

    fn is_opted_out(&self, phone_hash: &str) -> Result<bool, StoreError> {
        Ok(self.outbox.opt_outs.contains_key(phone_hash.as_bytes())?)
    }

    fn rate_on_site(&self, rating: &Rating) -> Result<bool, StoreError> {
        let stored = self
            .outbox
            .on_site
            .compare_and_swap(
                rating.case_id.as_bytes(),
                None as Option<&[u8]>,
                Some(json(rating)),
            )?
            .is_ok();
        if stored {
            self.db.sync()?;
        }
        Ok(stored)
    }

    fn on_site_rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError> {
        SledStore::get(&self.outbox.on_site, case_id)
    }

    fn on_site_ratings(&self) -> Result<Vec<Rating>, StoreError> {
        SledStore::all(&self.outbox.on_site)
    }
}
