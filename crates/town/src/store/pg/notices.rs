//! The notification outbox and its companions on PostgreSQL (see `store::notices`); tables from
//! migration 4.

use chrono::{DateTime, Utc};
use postgres::types::Json;

use super::PgStore;
use crate::store::notices::{Notice, NoticeState, NoticeStore, Outbox};
use crate::store::{Rating, StoreError};

/// The schema of this module's tables (one versioned migration in `pg.rs`).
pub(super) const MIGRATION: &str = r#"
-- The SMS outbox: one row per feed event; `pending` rows are what senders claim.
CREATE TABLE notices (
    id text PRIMARY KEY,
    pending boolean NOT NULL,
    next_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX notices_due ON notices (next_at) WHERE pending;
-- One row: how far the changes feed has been turned into notices.
CREATE TABLE notice_cursor (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
INSERT INTO notice_cursor (id, seq) VALUES (1, 0);
CREATE TABLE resident_links (code text PRIMARY KEY, case_id text NOT NULL);
CREATE TABLE sms_opt_outs (phone_hash text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE on_site_ratings (case_id text PRIMARY KEY, village text NOT NULL, record jsonb NOT NULL);
"#;

fn write(tx: &mut postgres::Transaction<'_>, n: &Notice) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO notices (id, pending, next_at, created_at, record) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET pending = EXCLUDED.pending, next_at = EXCLUDED.next_at,
            record = EXCLUDED.record",
        &[
            &n.id,
            &(n.state == NoticeState::Pending),
            &n.next_at,
            &n.created_at,
            &Json(n),
        ],
    )?;
    Ok(())
}

/// Writes a snapshot's outbox inside `migrate`'s transaction.
pub(super) fn import(tx: &mut postgres::Transaction<'_>, o: &Outbox) -> Result<(), StoreError> {
    for n in &o.notices {
        write(tx, n)?;
    }
    for (code, case) in &o.links {
        tx.execute(
            "INSERT INTO resident_links (code, case_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[code, case],
        )?;
    }
    for h in &o.opt_outs {
        tx.execute(
            "INSERT INTO sms_opt_outs (phone_hash) VALUES ($1) ON CONFLICT DO NOTHING",
            &[h],
        )?;
    }
    for r in &o.on_site_ratings {
        tx.execute(
            "INSERT INTO on_site_ratings (case_id, village, record) VALUES ($1, $2, $3)",
            &[&r.case_id, &r.village, &Json(r)],
        )?;
    }
    tx.execute(
        "UPDATE notice_cursor SET seq = $1 WHERE id = 1",
        &[&(o.cursor as i64)],
    )?;
    Ok(())
}

impl NoticeStore for PgStore {
    fn notice_cursor(&self) -> Result<u64, StoreError> {
        let seq: i64 = self
            .conn()?
            .query_one("SELECT seq FROM notice_cursor WHERE id = 1", &[])?
            .get(0);
        Ok(seq as u64)
    }

    fn enqueue_notices(
        &self,
        notices: &[Notice],
        links: &[(String, String)],
        cursor: u64,
    ) -> Result<usize, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        let mut added = 0;
        for n in notices {
            added += tx.execute(
                "INSERT INTO notices (id, pending, next_at, created_at, record)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                &[
                    &n.id,
                    &(n.state == NoticeState::Pending),
                    &n.next_at,
                    &n.created_at,
                    &Json(n),
                ],
            )? as usize;
        }
        for (code, case) in links {
            tx.execute(
                "INSERT INTO resident_links (code, case_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[code, case],
            )?;
        }
        tx.execute(
            "UPDATE notice_cursor SET seq = GREATEST(seq, $1) WHERE id = 1",
            &[&(cursor as i64)],
        )?;
        tx.commit()?;
        Ok(added)
    }

    fn claim_notices(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        // SKIP LOCKED: a second server claiming at the same moment takes other rows.
        let rows = tx.query(
            "SELECT record FROM notices WHERE pending AND next_at <= $1
             ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&now, &(limit as i64)],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let Json(mut n): Json<Notice> = r.get(0);
            n.next_at = lease_until;
            write(&mut tx, &n)?;
            out.push(n);
        }
        tx.commit()?;
        Ok(out)
    }

    fn put_notice(&self, notice: &Notice) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        write(&mut tx, notice)?;
        tx.commit()?;
        Ok(())
    }

    fn all_notices(&self) -> Result<Vec<Notice>, StoreError> {
        self.records("SELECT record FROM notices ORDER BY created_at, id", &[])
    }

    fn link_case(&self, code: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT case_id FROM resident_links WHERE code = $1",
                &[&code],
            )?
            .map(|r| r.get(0)))
    }

    fn opt_out(&self, phone_hash: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO sms_opt_outs (phone_hash) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&phone_hash],
        )?;
        Ok(())
    }

    fn is_opted_out(&self, phone_hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM sms_opt_outs WHERE phone_hash = $1",
                &[&phone_hash],
            )?
            .is_some())
    }

    fn rate_on_site(&self, rating: &Rating) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "INSERT INTO on_site_ratings (case_id, village, record) VALUES ($1, $2, $3)
             ON CONFLICT (case_id) DO NOTHING",
            &[&rating.case_id, &rating.village, &Json(rating)],
        )?;
        Ok(n == 1)
    }

    fn on_site_rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError> {
        self.record(
            "SELECT record FROM on_site_ratings WHERE case_id = $1",
            &[&case_id],
        )
    }

    fn on_site_ratings(&self) -> Result<Vec<Rating>, StoreError> {
        self.records("SELECT record FROM on_site_ratings ORDER BY case_id", &[])
    }
}
