//! Unfinished uploads' bookkeeping on PostgreSQL (see `store::partials`); the table of migration
//! 10. The committed offset moves by a conditional `UPDATE`: of concurrent commits from the same
//! offset, the first takes the row lock and the others, re-checking the condition on the row it
//! wrote, find another offset and change nothing.

use postgres::types::Json;

use super::PgStore;
use crate::store::partials::{Advance, Begin, Partial, PartialStore, Segment};
use crate::store::StoreError;

/// The schema of this module's table (one versioned migration in `pg.rs`).
pub(super) const MIGRATION: &str = r#"
-- Unfinished uploads whose bytes are segment objects in the bucket, so any server resumes them.
CREATE TABLE partial_uploads (
    village text NOT NULL,
    sha text NOT NULL,
    length bigint NOT NULL,
    device text NOT NULL,
    committed bigint NOT NULL DEFAULT 0,
    segments jsonb NOT NULL DEFAULT '[]',
    touched bigint NOT NULL,
    PRIMARY KEY (village, sha)
);
CREATE INDEX partial_uploads_device ON partial_uploads (village, device);
CREATE INDEX partial_uploads_touched ON partial_uploads (touched);
"#;

const COLUMNS: &str = "village, sha, length, device, committed, segments, touched";

fn row(r: &postgres::Row) -> Partial {
    let Json(segments): Json<Vec<Segment>> = r.get(5);
    Partial {
        village: r.get(0),
        sha: r.get(1),
        length: r.get::<_, i64>(2) as u64,
        device: r.get(3),
        offset: r.get::<_, i64>(4) as u64,
        segments,
        touched: r.get(6),
    }
}

impl PartialStore for PgStore {
    fn partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM partial_uploads WHERE village = $1 AND sha = $2"),
                &[&village, &sha],
            )?
            .as_ref()
            .map(row))
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
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        // One device's new uploads are counted one at a time, whichever server receives them.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('partial_uploads/' || $1, 0))",
            &[&device],
        )?;
        let existing = |tx: &mut postgres::Transaction<'_>| -> Result<Option<Partial>, StoreError> {
            Ok(tx
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM partial_uploads WHERE village = $1 AND sha = $2"
                    ),
                    &[&village, &sha],
                )?
                .as_ref()
                .map(row))
        };
        let found = |p: Partial| {
            if p.length == length {
                Begin::Open(p)
            } else {
                Begin::LengthMismatch(p.length)
            }
        };
        if let Some(p) = existing(&mut tx)? {
            return Ok(found(p));
        }
        let open: i64 = tx
            .query_one(
                "SELECT count(*) FROM partial_uploads
                 WHERE village = $1 AND device = $2 AND committed < length",
                &[&village, &device],
            )?
            .get(0);
        if open as usize >= max_open {
            return Ok(Begin::TooManyOpen(max_open));
        }
        let inserted = tx.execute(
            "INSERT INTO partial_uploads (village, sha, length, device, touched)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (village, sha) DO NOTHING",
            &[&village, &sha, &(length as i64), &device, &now],
        )?;
        // Another device of the village opened the same page meanwhile: continue that one.
        let p = existing(&mut tx)?.ok_or_else(|| {
            StoreError::Corrupt(format!("partial upload {village}/{sha} vanished"))
        })?;
        tx.commit()?;
        Ok(if inserted == 1 {
            Begin::Open(p)
        } else {
            found(p)
        })
    }

    fn advance_partial(
        &self,
        village: &str,
        sha: &str,
        segment: &Segment,
        now: i64,
    ) -> Result<Advance, StoreError> {
        let mut c = self.conn()?;
        let (start, len) = (segment.start as i64, segment.len as i64);
        let won = c.query_opt(
            &format!(
                "UPDATE partial_uploads SET committed = committed + $4::bigint,
                    segments = segments || $5, touched = $6
                 WHERE village = $1 AND sha = $2 AND committed = $3::bigint AND $4::bigint > 0
                    AND committed + $4::bigint <= length
                 RETURNING {COLUMNS}"
            ),
            &[&village, &sha, &start, &len, &Json(vec![segment]), &now],
        )?;
        if let Some(r) = won {
            return Ok(Advance::Won(row(&r)));
        }
        Ok(
            match c.query_opt(
                "SELECT committed FROM partial_uploads WHERE village = $1 AND sha = $2",
                &[&village, &sha],
            )? {
                Some(r) => Advance::Lost(r.get::<_, i64>(0) as u64),
                None => Advance::Gone,
            },
        )
    }

    fn remove_partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                &format!(
                    "DELETE FROM partial_uploads WHERE village = $1 AND sha = $2 RETURNING {COLUMNS}"
                ),
                &[&village, &sha],
            )?
            .as_ref()
            .map(row))
    }

    fn take_stale_partials(&self, before: i64) -> Result<Vec<Partial>, StoreError> {
        Ok(self
            .conn()?
            .query(
                &format!("DELETE FROM partial_uploads WHERE touched < $1 RETURNING {COLUMNS}"),
                &[&before],
            )?
            .iter()
            .map(row)
            .collect())
    }

    fn all_partials(&self) -> Result<Vec<Partial>, StoreError> {
        Ok(self
            .conn()?
            .query(
                &format!("SELECT {COLUMNS} FROM partial_uploads ORDER BY village, sha"),
                &[],
            )?
            .iter()
            .map(row)
            .collect())
    }
}
