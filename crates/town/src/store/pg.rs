//! The PostgreSQL backend: one database shared by any number of `serve` processes.
//!
//! Records are JSONB values beside the columns the queries filter on (village, state, sequence
//! numbers), so a record moves between backends unchanged. Every commit is one transaction that
//! first locks the single `counters` row: the changes feed's sequence and the audit chain's head
//! live there, so commits from every server are serialised exactly as sled's write mutex
//! serialises them in one process, and feed entries become visible in sequence order (a reader
//! at cursor N never misses an entry N−1 that was still uncommitted). PostgreSQL's commit is
//! durable (WAL fsync) before it returns.
//!
//! The trait is blocking, as handlers call it from `spawn_blocking`; the synchronous `postgres`
//! client (tokio-postgres under a small runtime of its own) with an `r2d2` pool fits that
//! without a second async layer. Migrations are versioned SQL applied at open under an advisory
//! lock, so servers starting together apply each once.

use bianmin_protocol::sync::ChangeEntry;
use bianmin_protocol::DecisionEvent;
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use postgres::types::Json;
use postgres::Transaction;
use rand::RngCore;

use std::collections::BTreeMap;

use super::county_lists::{self, CountyList, ListCursor, ListPage};
use super::figures::{PhoneUse, VillageCounts};
use super::inbox::{CaseSummary, InboxCursor, InboxFilter, InboxOrder, InboxPage, MAX_PAGE};
use super::{
    enrol_code_hash, new_enrol_code, AddBadError, AddedBadReview, AdminStore, BucketKind,
    CatalogState, CatalogStoreError, CatalogVersion, CountyStaff, DeviceRecord, Rating,
    Rectification, Revision, StaffAccount, Step, StepError, StoreError, StoredCase, Supervisor,
    Ticket, TicketError, TownStore,
};
use crate::audit::{chain, AuditDraft, AuditEntry};
use crate::bucket::{Bucket, RateConfig};

mod notices;
mod partials;

/// Versioned schema changes, applied in order at open; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE devices (id text PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE cases (
    id text PRIMARY KEY,
    village text NOT NULL,
    state text NOT NULL,
    received_at timestamptz NOT NULL,
    record jsonb NOT NULL
);
-- The inbox lists a town's villages oldest first; the county counts per village.
CREATE INDEX cases_village_received ON cases (village, received_at, id);
CREATE INDEX cases_state ON cases (state);
CREATE TABLE feed (
    seq bigint PRIMARY KEY,
    village text NOT NULL,
    entry jsonb NOT NULL
);
-- A device reads its villages' entries after its cursor.
CREATE INDEX feed_village_seq ON feed (village, seq);
CREATE TABLE audit (seq bigint PRIMARY KEY, entry jsonb NOT NULL);
-- One row: the feed's last sequence number and the audit chain's head. Every commit locks it.
CREATE TABLE counters (
    id int PRIMARY KEY CHECK (id = 1),
    feed_seq bigint NOT NULL,
    audit_seq bigint NOT NULL,
    audit_hash text
);
INSERT INTO counters VALUES (1, 0, 0, NULL);
CREATE TABLE nonces (
    device text NOT NULL,
    nonce text NOT NULL,
    keep_until bigint NOT NULL,
    PRIMARY KEY (device, nonce)
);
CREATE INDEX nonces_keep_until ON nonces (keep_until);
CREATE TABLE ratings (case_id text PRIMARY KEY, village text NOT NULL, record jsonb NOT NULL);
CREATE TABLE rectifications (
    case_id text PRIMARY KEY,
    village text NOT NULL,
    record jsonb NOT NULL
);
CREATE TABLE phone_failures (case_id text PRIMARY KEY, failures int NOT NULL);
CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    supervisor text NOT NULL,
    expires timestamptz NOT NULL
);
CREATE TABLE buckets (
    kind text NOT NULL,
    client text NOT NULL,
    tokens double precision NOT NULL,
    at double precision NOT NULL,
    PRIMARY KEY (kind, client)
);
CREATE TABLE tickets (code_hash text PRIMARY KEY, ticket jsonb NOT NULL, used boolean NOT NULL);
CREATE TABLE revoked (device text PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE supervisors (name text PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
"#,
    ),
    (
        2,
        r#"
-- Attachment metadata; the bytes are in the object store (or the data directory).
CREATE TABLE attachments (sha256 text PRIMARY KEY, size bigint NOT NULL);
CREATE TABLE holders (
    sha256 text NOT NULL REFERENCES attachments,
    village text NOT NULL,
    PRIMARY KEY (sha256, village)
);
"#,
    ),
    (
        3,
        r#"
-- Catalog versions: at most one draft (the newest number), the rest published and never changed.
CREATE TABLE catalog_versions (
    version int PRIMARY KEY,
    state text NOT NULL,
    record jsonb NOT NULL
);
"#,
    ),
    // The SMS outbox, resident links, opt-outs and on-site ratings (`pg/notices.rs`).
    (4, notices::MIGRATION),
    (
        5,
        r#"
-- Town staff accounts: a PIN (Argon2 hash) per person, for the shared tablets.
CREATE TABLE staff (
    town text NOT NULL,
    name text NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (town, name)
);
"#,
    ),
    (
        INBOX_COLUMNS,
        r#"
-- What the inbox filters and orders by, out of the record so a page reads an index, not every
-- case. `due` is the deadline while the working-day clock runs (the engine's rule, filled in by
-- the server after this migration and on every write): overdue means `due < today`.
ALTER TABLE cases ADD COLUMN deadline date, ADD COLUMN due date,
    ADD COLUMN applicant text NOT NULL DEFAULT '';
CREATE INDEX cases_received ON cases (received_at, id);
CREATE INDEX cases_deadline_order ON cases ((coalesce(deadline, 'infinity'::date)), received_at, id);
CREATE INDEX cases_due ON cases (due) WHERE due IS NOT NULL;
"#,
    ),
    (
        7,
        r#"
-- County staff accounts (password as an Argon2 hash), each working one county office's inbox.
CREATE TABLE county_staff (name text PRIMARY KEY, record jsonb NOT NULL);
"#,
    ),
    (
        COUNTY_COLUMNS,
        r#"
-- What the county figures group and count by, out of the record so the county pages aggregate
-- columns (`GROUP BY`) instead of reading every case; filled in by the server after this
-- migration and on every write, like the inbox columns.
ALTER TABLE cases ADD COLUMN completed_on date,
    ADD COLUMN device text NOT NULL DEFAULT '', ADD COLUMN agent text NOT NULL DEFAULT '',
    ADD COLUMN phone text NOT NULL DEFAULT '', ADD COLUMN id_number text NOT NULL DEFAULT '';
-- The overdue list: cases whose clock runs, by deadline.
CREATE INDEX cases_clock_deadline ON cases (deadline) WHERE state IN ('accepted', 'forwarded');
"#,
    ),
    (
        COUNTY_LIST_COLUMNS,
        r#"
-- What the county lists select and order by (`store/county_lists.rs`), out of the record so each
-- list reads one partial index a page at a time; filled in by the server after this migration
-- and on every write. `unfinished` is the roster's open case (not refused, not rated).
ALTER TABLE cases ADD COLUMN ext_waiting boolean NOT NULL DEFAULT false,
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD COLUMN unfinished boolean NOT NULL DEFAULT true,
    ADD COLUMN office text NOT NULL DEFAULT '', ADD COLUMN forwarded_at timestamptz;
CREATE INDEX cases_due_id ON cases (due, id) WHERE due IS NOT NULL;
CREATE INDEX cases_ext_waiting ON cases (id) WHERE ext_waiting;
CREATE INDEX cases_paused ON cases (id) WHERE paused;
CREATE INDEX cases_office_forwarded ON cases (office, forwarded_at, id)
    WHERE forwarded_at IS NOT NULL;
CREATE INDEX cases_unfinished_device ON cases (device) WHERE unfinished;
"#,
    ),
    // Unfinished uploads shared by every server (`pg/partials.rs`).
    (10, partials::MIGRATION),
];

/// The migration that adds the county lists' columns; the server fills them in from the records.
const COUNTY_LIST_COLUMNS: i32 = 9;

/// The migration that adds the county figures' columns; the server fills them in from the records.
const COUNTY_COLUMNS: i32 = 8;

/// The migration that adds the inbox columns; the server fills them in from the records.
const INBOX_COLUMNS: i32 = 6;

/// Any key: every server that opens the database takes this advisory lock while migrating.
const MIGRATION_LOCK: i64 = 0x6269_616e_6d69_6e01;

use super::pg_tls::{Conn, Pool};

/// The PostgreSQL store.
pub struct PgStore {
    /// Always `Some` until dropped (see `Drop`).
    pool: Option<Pool>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the client's own runtime, which panics on a thread that
        // drives async tasks; the last handle to the store may well be dropped on one.
        if let Some(pool) = self.pool.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(pool));
            }
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or key=value form), applies pending
    /// migrations and keeps a pool of up to `max_connections`. `sslmode=require` (with
    /// `sslrootcert=FILE` for a private CA) gives TLS that verifies the server (`pg_tls`).
    pub fn open(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        PgStore::open_at(url, max_connections, PgStore::SCHEMA_VERSION)
    }

    /// Opens with the migrations up to `version` only: the schema an earlier release left, for
    /// tests of what the later migrations do to its data.
    #[doc(hidden)]
    pub fn open_at(url: &str, max_connections: u32, version: i32) -> Result<PgStore, StoreError> {
        let pool = Pool::open(url, max_connections)?;
        let store = PgStore { pool: Some(pool) };
        store.migrate(version)?;
        Ok(store)
    }

    /// The migration that moved the inbox's filter and sort keys out of the record.
    pub const INBOX_SCHEMA_VERSION: i32 = INBOX_COLUMNS;

    fn conn(&self) -> Result<Conn, StoreError> {
        self.pool
            .as_ref()
            .expect("the pool lives as long as the store")
            .get()
    }

    /// Whether this store's connections are encrypted (`sslmode=require`).
    pub fn is_tls(&self) -> bool {
        self.pool.as_ref().is_some_and(Pool::is_tls)
    }

    /// The schema version after the migrations this build knows.
    pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

    /// How many migrations this build knows (versions need not be consecutive: each change
    /// takes its own number when it is written).
    #[doc(hidden)]
    pub const MIGRATION_COUNT: usize = MIGRATIONS.len();

    fn migrate(&self, upto: i32) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
        let result = (|| {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version int PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )?;
            let done: Option<i32> = c
                .query_one("SELECT max(version) FROM schema_migrations", &[])?
                .get(0);
            let done = done.unwrap_or(0);
            if done > PgStore::SCHEMA_VERSION {
                return Err(StoreError::Schema(format!(
                    "the database is at schema version {done}, newer than this server's {}",
                    PgStore::SCHEMA_VERSION
                )));
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done && *v <= upto) {
                let mut tx = c.transaction()?;
                tx.batch_execute(sql)?;
                if *version == INBOX_COLUMNS {
                    PgStore::fill_inbox_columns(&mut tx)?;
                }
                if *version == COUNTY_COLUMNS {
                    PgStore::fill_county_columns(&mut tx)?;
                }
                if *version == COUNTY_LIST_COLUMNS {
                    PgStore::fill_county_list_columns(&mut tx)?;
                }
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )?;
                tx.commit()?;
                tracing::info!(version, "database migration applied");
            }
            Ok(())
        })();
        c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
        result
    }

    /// Writes a case with the columns the inbox reads.
    fn put_case(tx: &mut Transaction<'_>, c: &StoredCase) -> Result<(), StoreError> {
        let s = CaseSummary::of(c);
        tx.execute(
            "INSERT INTO cases (id, village, state, received_at, record, deadline, due, applicant,
                completed_on, device, agent, phone, id_number, ext_waiting, paused, unfinished,
                office, forwarded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18)
             ON CONFLICT (id) DO UPDATE SET village = EXCLUDED.village,
                state = EXCLUDED.state, received_at = EXCLUDED.received_at,
                record = EXCLUDED.record, deadline = EXCLUDED.deadline, due = EXCLUDED.due,
                applicant = EXCLUDED.applicant, completed_on = EXCLUDED.completed_on,
                device = EXCLUDED.device, agent = EXCLUDED.agent, phone = EXCLUDED.phone,
                id_number = EXCLUDED.id_number, ext_waiting = EXCLUDED.ext_waiting,
                paused = EXCLUDED.paused, unfinished = EXCLUDED.unfinished,
                office = EXCLUDED.office, forwarded_at = EXCLUDED.forwarded_at",
            &[
                &s.id,
                &s.village,
                &s.state.as_str(),
                &s.received_at,
                &Json(c),
                &s.deadline,
                &s.due,
                &s.applicant,
                &s.completed_on,
                &s.device,
                &s.agent,
                &s.phone,
                &s.id_number,
                &s.extension_waiting,
                &s.paused,
                &s.open,
                &s.office,
                &s.forwarded_at,
            ],
        )?;
        Ok(())
    }

    /// Fills the county lists' columns of the cases stored before they existed (migration 9).
    fn fill_county_list_columns(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        let rows = tx.query("SELECT record FROM cases", &[])?;
        for r in rows {
            let Json(c): Json<StoredCase> = r.get(0);
            let s = CaseSummary::of(&c);
            tx.execute(
                "UPDATE cases SET ext_waiting = $2, paused = $3, unfinished = $4, office = $5,
                    forwarded_at = $6 WHERE id = $1",
                &[
                    &s.id,
                    &s.extension_waiting,
                    &s.paused,
                    &s.open,
                    &s.office,
                    &s.forwarded_at,
                ],
            )?;
        }
        Ok(())
    }

    /// Fills the inbox columns of the cases stored before they existed (migration 6).
    fn fill_inbox_columns(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        let rows = tx.query("SELECT record FROM cases", &[])?;
        for r in rows {
            let Json(c): Json<StoredCase> = r.get(0);
            let s = CaseSummary::of(&c);
            tx.execute(
                "UPDATE cases SET deadline = $2, due = $3, applicant = $4 WHERE id = $1",
                &[&s.id, &s.deadline, &s.due, &s.applicant],
            )?;
        }
        Ok(())
    }

    /// Fills the county columns of the cases stored before they existed (migration 8).
    fn fill_county_columns(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        let rows = tx.query("SELECT record FROM cases", &[])?;
        for r in rows {
            let Json(c): Json<StoredCase> = r.get(0);
            let s = CaseSummary::of(&c);
            tx.execute(
                "UPDATE cases SET completed_on = $2, device = $3, agent = $4, phone = $5,
                    id_number = $6 WHERE id = $1",
                &[
                    &s.id,
                    &s.completed_on,
                    &s.device,
                    &s.agent,
                    &s.phone,
                    &s.id_number,
                ],
            )?;
        }
        Ok(())
    }

    /// Appends events and audit entries, and stores the case, inside `tx`. Locks the counters
    /// row first, so every commit of every server is serialised (see the module comment).
    fn append(
        tx: &mut Transaction<'_>,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        let row = tx.query_one(
            "SELECT feed_seq, audit_seq, audit_hash FROM counters WHERE id = 1 FOR UPDATE",
            &[],
        )?;
        let mut feed_seq: i64 = row.get(0);
        let audit_seq: i64 = row.get(1);
        let audit_hash: Option<String> = row.get(2);
        if let Some(c) = case {
            // Handlers read, change and commit a case under a lock of their own process; another
            // server may have committed in between. A copy read here carries the revision it was
            // read at: any other revision stored now means this write was made from a stale read
            // (a clock pause, a 催办 or a county step changes no timeline, so the revision is what
            // catches those). Refused, and the client retries.
            let stored: Option<Json<StoredCase>> = tx
                .query_opt(
                    "SELECT record FROM cases WHERE id = $1 FOR UPDATE",
                    &[&c.case.id],
                )?
                .map(|r| r.get(0));
            let next = match stored {
                Some(Json(old)) => {
                    let stale = if c.revision.is_unset() {
                        // Not read from this store (an import, a record from before revisions):
                        // every legitimate change at least extends the case's timeline.
                        let (old_h, new_h) = (&old.case.history, &c.case.history);
                        !(old_h.len() <= new_h.len()
                            && old_h
                                .iter()
                                .zip(new_h)
                                .all(|(a, b)| a.at == b.at && a.to == b.to))
                    } else {
                        c.revision.0 != old.revision.0
                    };
                    if stale {
                        return Err(StoreError::Conflict(c.case.id.clone()));
                    }
                    old.revision.0 + 1
                }
                None => 1,
            };
            let mut c = c.clone();
            c.revision = Revision(next);
            PgStore::put_case(tx, &c)?;
        }
        let village = case.map(|c| c.case.village.clone()).unwrap_or_default();
        for ev in events {
            feed_seq += 1;
            let entry = ChangeEntry {
                seq: feed_seq as u64,
                village: village.clone(),
                event: ev.clone(),
            };
            tx.execute(
                "INSERT INTO feed (seq, village, entry) VALUES ($1, $2, $3)",
                &[&feed_seq, &village, &Json(&entry)],
            )?;
        }
        let mut prev = audit_hash.map(|h| (audit_seq as u64, h));
        for d in audit {
            let e = chain(prev.as_ref().map(|(s, h)| (*s, h.as_str())), d);
            tx.execute(
                "INSERT INTO audit (seq, entry) VALUES ($1, $2)",
                &[&(e.seq as i64), &Json(&e)],
            )?;
            prev = Some((e.seq, e.hash));
        }
        let (head_seq, head_hash) = match prev {
            Some((s, h)) => (s as i64, Some(h)),
            None => (0, None),
        };
        tx.execute(
            "UPDATE counters SET feed_seq = $1, audit_seq = $2, audit_hash = $3 WHERE id = 1",
            &[&feed_seq, &head_seq, &head_hash],
        )?;
        Ok(())
    }

    fn records<T: for<'de> serde::Deserialize<'de>>(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError> {
        Ok(self
            .conn()?
            .query(sql, params)?
            .into_iter()
            .map(|r| r.get::<_, Json<T>>(0).0)
            .collect())
    }

    fn record<T: for<'de> serde::Deserialize<'de>>(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(sql, params)?
            .map(|r| r.get::<_, Json<T>>(0).0))
    }
}

impl PgStore {
    /// Whether the database holds no town yet (no case, device or audit entry).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let row = self.conn()?.query_one(
            "SELECT (SELECT count(*) FROM cases) + (SELECT count(*) FROM devices)
                  + (SELECT count(*) FROM audit)",
            &[],
        )?;
        Ok(row.get::<_, i64>(0) == 0)
    }

    /// Writes a whole town in one transaction (`migrate`), keeping feed sequence numbers and
    /// audit hashes as they were; the counters continue after them.
    pub fn import(&self, snap: &super::Snapshot) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        for d in &snap.devices {
            tx.execute(
                "INSERT INTO devices (id, record) VALUES ($1, $2)",
                &[&d.id, &Json(d)],
            )?;
        }
        for sc in &snap.cases {
            PgStore::put_case(&mut tx, sc)?;
        }
        for e in &snap.feed {
            tx.execute(
                "INSERT INTO feed (seq, village, entry) VALUES ($1, $2, $3)",
                &[&(e.seq as i64), &e.village, &Json(e)],
            )?;
        }
        for e in &snap.audit {
            tx.execute(
                "INSERT INTO audit (seq, entry) VALUES ($1, $2)",
                &[&(e.seq as i64), &Json(e)],
            )?;
        }
        for r in &snap.ratings {
            tx.execute(
                "INSERT INTO ratings (case_id, village, record) VALUES ($1, $2, $3)",
                &[&r.case_id, &r.village, &Json(r)],
            )?;
        }
        for r in &snap.rectifications {
            tx.execute(
                "INSERT INTO rectifications (case_id, village, record) VALUES ($1, $2, $3)",
                &[&r.case_id, &r.village, &Json(r)],
            )?;
        }
        for (sha, size, villages) in &snap.attachments {
            tx.execute(
                "INSERT INTO attachments (sha256, size) VALUES ($1, $2)",
                &[sha, &(*size as i64)],
            )?;
            for v in villages {
                tx.execute(
                    "INSERT INTO holders (sha256, village) VALUES ($1, $2)",
                    &[sha, v],
                )?;
            }
        }
        for (case_id, n) in &snap.phone_failures {
            tx.execute(
                "INSERT INTO phone_failures (case_id, failures) VALUES ($1, $2)",
                &[case_id, &(*n as i32)],
            )?;
        }
        notices::import(&mut tx, &snap.outbox)?;
        for v in &snap.catalog {
            tx.execute(
                "INSERT INTO catalog_versions (version, state, record) VALUES ($1, $2, $3)",
                &[&(v.version as i32), &catalog_state(v.state), &Json(v)],
            )?;
        }
        for d in &snap.revoked {
            tx.execute(
                "INSERT INTO revoked (device, at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
                &[d],
            )?;
        }
        for s in &snap.supervisors {
            tx.execute(
                "INSERT INTO supervisors (name, record) VALUES ($1, $2)",
                &[&s.name, &Json(s)],
            )?;
        }
        for s in &snap.staff {
            tx.execute(
                "INSERT INTO staff (town, name, record) VALUES ($1, $2, $3)",
                &[&s.town, &s.name, &Json(s)],
            )?;
        }
        for s in &snap.county_staff {
            tx.execute(
                "INSERT INTO county_staff (name, record) VALUES ($1, $2)",
                &[&s.name, &Json(s)],
            )?;
        }
        for (hash, t) in &snap.tickets {
            tx.execute(
                "INSERT INTO tickets (code_hash, ticket, used) VALUES ($1, $2, false)",
                &[hash, &Json(t)],
            )?;
        }
        if let Some(k) = &snap.server_key {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('server_key', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&hex::encode(k)],
            )?;
        }
        let feed_seq = snap.feed.iter().map(|e| e.seq).max().unwrap_or(0) as i64;
        let head = snap.audit.iter().max_by_key(|e| e.seq);
        tx.execute(
            "UPDATE counters SET feed_seq = $1, audit_seq = $2, audit_hash = $3 WHERE id = 1",
            &[
                &feed_seq,
                &(head.map_or(0, |e| e.seq) as i64),
                &head.map(|e| e.hash.clone()),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }
}

fn catalog_state(s: CatalogState) -> &'static str {
    match s {
        CatalogState::Draft => "draft",
        CatalogState::Published => "published",
    }
}

impl PgStore {
    fn catalog_head_in(tx: &mut Transaction<'_>) -> Result<u32, StoreError> {
        let head: Option<i32> = tx
            .query_one(
                "SELECT max(version) FROM catalog_versions WHERE state = 'published'",
                &[],
            )?
            .get(0);
        Ok(head.unwrap_or(0) as u32)
    }

    fn catalog_version_in(
        tx: &mut Transaction<'_>,
        version: u32,
    ) -> Result<Option<CatalogVersion>, StoreError> {
        Ok(tx
            .query_opt(
                "SELECT record FROM catalog_versions WHERE version = $1 FOR UPDATE",
                &[&(version as i32)],
            )?
            .map(|r| r.get::<_, Json<CatalogVersion>>(0).0))
    }
}

impl TownStore for PgStore {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.record("SELECT record FROM devices WHERE id = $1", &[&id])
    }

    fn insert_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO devices (id, record) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&d.id, &Json(d)],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        tx.commit()?;
        Ok(true)
    }

    fn put_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO devices (id, record) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            &[&d.id, &Json(d)],
        )?;
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        tx.commit()?;
        Ok(())
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.records("SELECT record FROM devices ORDER BY id", &[])
    }

    fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        self.record("SELECT record FROM cases WHERE id = $1", &[&id])
    }

    fn cases(&self) -> Result<Vec<StoredCase>, StoreError> {
        self.records("SELECT record FROM cases ORDER BY id", &[])
    }

    fn cases_of(&self, villages: &[String]) -> Result<Vec<StoredCase>, StoreError> {
        self.records(
            "SELECT record FROM cases WHERE village = ANY($1) ORDER BY received_at, id",
            &[&villages],
        )
    }

    fn inbox(
        &self,
        f: &InboxFilter,
        order: InboxOrder,
        after: Option<&InboxCursor>,
        limit: usize,
    ) -> Result<InboxPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        // Fixed parameter positions, unused ones NULL: one statement per order, prepared once.
        const FILTER: &str = "village = ANY($1)
            AND ($2::text IS NULL OR state = $2)
            AND ($3::bool IS NULL OR (due IS NOT NULL AND due < $4) = $3)
            AND ($5::text IS NULL OR strpos(id, $5) > 0 OR strpos(applicant, $5) > 0)";
        let (keyset, order_by) = match order {
            InboxOrder::Oldest => ("(received_at, id) > ($6, $7)", "received_at, id"),
            InboxOrder::Newest => ("(received_at, id) < ($6, $7)", "received_at DESC, id DESC"),
            InboxOrder::Deadline => (
                "(coalesce(deadline, 'infinity'::date), received_at, id)
                    > (coalesce($9::date, 'infinity'::date), $6, $7)",
                "coalesce(deadline, 'infinity'::date), received_at, id",
            ),
        };
        let state = f.state.map(|s| s.as_str());
        let mut c = self.conn()?;
        let total: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM cases WHERE {FILTER}"),
                &[&f.villages, &state, &f.overdue, &f.today, &f.search],
            )?
            .get(0);
        let page_sql = format!(
            "SELECT record FROM cases WHERE {FILTER}
                AND ($6::timestamptz IS NULL OR {keyset})
             ORDER BY {order_by} LIMIT $8"
        );
        let (at, id, deadline) = (
            after.map(|a| a.received_at),
            after.map(|a| a.id.as_str()),
            after.and_then(|a| a.deadline),
        );
        let take = limit as i64 + 1;
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
            &f.villages,
            &state,
            &f.overdue,
            &f.today,
            &f.search,
            &at,
            &id,
            &take,
        ];
        if order == InboxOrder::Deadline {
            params.push(&deadline);
        }
        let rows = c.query(&page_sql, &params)?;
        let mut cases: Vec<StoredCase> = rows
            .into_iter()
            .map(|r| r.get::<_, Json<StoredCase>>(0).0)
            .collect();
        let more = cases.len() > limit;
        cases.truncate(limit);
        let next = more.then(|| cases.last().map(InboxCursor::after)).flatten();
        Ok(InboxPage {
            cases,
            next,
            total: total as u64,
        })
    }

    fn village_counts(&self, today: NaiveDate) -> Result<Vec<VillageCounts>, StoreError> {
        // The same rules as `figures::village_counts`, in SQL over the columns.
        let rows = self.conn()?.query(
            "SELECT village, count(*),
                count(*) FILTER (WHERE state IN ('completed', 'delivered', 'rated')),
                count(*) FILTER (WHERE state IN ('completed', 'delivered', 'rated')
                    AND NOT coalesce(completed_on > deadline, false)),
                count(*) FILTER (WHERE due < $1)
             FROM cases GROUP BY village ORDER BY village",
            &[&today],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| VillageCounts {
                village: r.get(0),
                cases: r.get::<_, i64>(1) as u32,
                completed: r.get::<_, i64>(2) as u32,
                completed_on_time: r.get::<_, i64>(3) as u32,
                overdue_now: r.get::<_, i64>(4) as u32,
            })
            .collect())
    }

    fn shared_phones(&self, min_applicants: u32) -> Result<Vec<PhoneUse>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT device, min(agent), phone, count(DISTINCT id_number), count(*)
             FROM cases WHERE phone <> '' GROUP BY device, phone
             HAVING count(DISTINCT id_number) >= $1",
            &[&(min_applicants as i64)],
        )?;
        let mut out: Vec<PhoneUse> = rows
            .into_iter()
            .map(|r| PhoneUse {
                device: r.get(0),
                agent: r.get(1),
                phone: r.get(2),
                applicants: r.get::<_, i64>(3) as u32,
                cases: r.get::<_, i64>(4) as u32,
            })
            .collect();
        super::figures::sort_phone_uses(&mut out);
        Ok(out)
    }

    fn overdue_cases(&self, today: NaiveDate) -> Result<Vec<StoredCase>, StoreError> {
        self.records(
            "SELECT record FROM cases
             WHERE due < $1 ORDER BY id",
            &[&today],
        )
    }

    fn county_list(
        &self,
        list: &CountyList,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.clamp(1, county_lists::MAX_LIST_PAGE);
        let take = limit as i64 + 1;
        let after_id = after.map(|a| a.id.as_str());
        // Each query walks one partial index from the cursor (`$n IS NULL` for the first page).
        let mut cases: Vec<StoredCase> = match list {
            CountyList::Overdue { today } => {
                let day = after.and_then(|a| county_lists::key_day(a.key));
                self.records(
                    "SELECT record FROM cases WHERE due IS NOT NULL AND due < $1
                        AND ($2::date IS NULL OR (due, id) > ($2, $3))
                     ORDER BY due, id LIMIT $4",
                    &[today, &day, &after_id, &take],
                )?
            }
            CountyList::Extensions => self.records(
                "SELECT record FROM cases WHERE ext_waiting AND ($1::text IS NULL OR id > $1)
                 ORDER BY id LIMIT $2",
                &[&after_id, &take],
            )?,
            CountyList::Paused => self.records(
                "SELECT record FROM cases WHERE paused AND ($1::text IS NULL OR id > $1)
                 ORDER BY id LIMIT $2",
                &[&after_id, &take],
            )?,
            CountyList::Office(office) => {
                let at = after.and_then(|a| county_lists::key_time(a.key));
                self.records(
                    "SELECT record FROM cases WHERE forwarded_at IS NOT NULL AND office = $1
                        AND ($2::timestamptz IS NULL OR (forwarded_at, id) < ($2, $3))
                     ORDER BY forwarded_at DESC, id DESC LIMIT $4",
                    &[office, &at, &after_id, &take],
                )?
            }
        };
        let more = cases.len() > limit;
        cases.truncate(limit);
        let next = more
            .then(|| cases.last())
            .flatten()
            .map(|c| county_lists::sort_key(&CaseSummary::of(c), list));
        Ok(ListPage { cases, next })
    }

    fn open_cases_by_device(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT device, count(*) FROM cases WHERE unfinished GROUP BY device",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    fn commit(
        &self,
        case: Option<&StoredCase>,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        PgStore::append(&mut tx, case, events, audit)?;
        tx.commit()?;
        Ok(())
    }

    fn changes(
        &self,
        villages: &[String],
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<ChangeEntry>, bool), StoreError> {
        let mut out: Vec<ChangeEntry> = self.records(
            "SELECT entry FROM feed WHERE village = ANY($1) AND seq > $2 ORDER BY seq LIMIT $3",
            &[
                &villages,
                &(cursor.min(i64::MAX as u64) as i64),
                &((limit + 1) as i64),
            ],
        )?;
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }

    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.records("SELECT entry FROM audit ORDER BY seq", &[])
    }

    fn remember_nonce(
        &self,
        device: &str,
        nonce: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // One statement: a new nonce is inserted, an expired one taken over, a live one left
        // alone (no row comes back). The primary key makes concurrent copies race safely.
        let row = self.conn()?.query_opt(
            "INSERT INTO nonces (device, nonce, keep_until) VALUES ($1, $2, $3)
             ON CONFLICT (device, nonce) DO UPDATE SET keep_until = EXCLUDED.keep_until
             WHERE nonces.keep_until < $4
             RETURNING 1",
            &[&device, &nonce, &keep_until, &now],
        )?;
        Ok(row.is_some())
    }

    fn prune_nonces(&self, now: i64) -> Result<usize, StoreError> {
        let mut c = self.conn()?;
        let n = c.execute("DELETE FROM nonces WHERE keep_until < $1", &[&now])?;
        // The other expiring state goes with the nonces' sweep: sessions past their end, and
        // rate buckets idle for an hour (full again under every configured rate).
        c.execute("DELETE FROM sessions WHERE expires < now()", &[])?;
        c.execute(
            "DELETE FROM buckets WHERE at < $1",
            &[&((now - 3600) as f64)],
        )?;
        Ok(n as usize)
    }

    fn attachment_size(&self, sha: &str) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = self
            .conn()?
            .query_opt("SELECT size FROM attachments WHERE sha256 = $1", &[&sha])?
            .map(|r| r.get(0));
        Ok(n.map(|n| n.max(0) as u64))
    }

    fn held_by(&self, sha: &str, village: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM holders WHERE sha256 = $1 AND village = $2",
                &[&sha, &village],
            )?
            .is_some())
    }

    fn add_attachment(&self, sha: &str, size: u64, village: &str) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO attachments (sha256, size) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            &[&sha, &(size as i64)],
        )?;
        tx.execute(
            "INSERT INTO holders (sha256, village) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&sha, &village],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn rate(
        &self,
        rating: &Rating,
        loop_record: Option<&Rectification>,
        case: &StoredCase,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        // The primary key is the one-rating gate: a concurrent second insert waits for the
        // first transaction and then finds the conflict.
        let inserted = tx.execute(
            "INSERT INTO ratings (case_id, village, record) VALUES ($1, $2, $3)
             ON CONFLICT (case_id) DO NOTHING",
            &[&rating.case_id, &rating.village, &Json(rating)],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        if let Some(r) = loop_record {
            tx.execute(
                "INSERT INTO rectifications (case_id, village, record) VALUES ($1, $2, $3)",
                &[&r.case_id, &r.village, &Json(r)],
            )?;
        }
        PgStore::append(&mut tx, Some(case), events, audit)?;
        tx.commit()?;
        Ok(true)
    }

    fn rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError> {
        self.record("SELECT record FROM ratings WHERE case_id = $1", &[&case_id])
    }

    fn ratings(&self) -> Result<Vec<Rating>, StoreError> {
        self.records("SELECT record FROM ratings ORDER BY case_id", &[])
    }

    fn add_bad_review(
        &self,
        case_id: &str,
        added: AddedBadReview,
        loop_record: &Rectification,
        audit: AuditDraft,
    ) -> Result<Rating, AddBadError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        // The row lock makes a concurrent second addition wait, then see the first.
        let mut r: Rating = tx
            .query_opt(
                "SELECT record FROM ratings WHERE case_id = $1 FOR UPDATE",
                &[&case_id],
            )
            .map_err(StoreError::from)?
            .map(|row| row.get::<_, Json<Rating>>(0).0)
            .ok_or(AddBadError::NotRated)?;
        r.add_bad(added)?;
        tx.execute(
            "UPDATE ratings SET record = $2 WHERE case_id = $1",
            &[&case_id, &Json(&r)],
        )
        .map_err(StoreError::from)?;
        tx.execute(
            "INSERT INTO rectifications (case_id, village, record) VALUES ($1, $2, $3)",
            &[
                &loop_record.case_id,
                &loop_record.village,
                &Json(loop_record),
            ],
        )
        .map_err(StoreError::from)?;
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        tx.commit().map_err(StoreError::from)?;
        Ok(r)
    }

    fn rectification(&self, case_id: &str) -> Result<Option<Rectification>, StoreError> {
        self.record(
            "SELECT record FROM rectifications WHERE case_id = $1",
            &[&case_id],
        )
    }

    fn rectifications(&self) -> Result<Vec<Rectification>, StoreError> {
        self.records("SELECT record FROM rectifications ORDER BY case_id", &[])
    }

    fn add_step(
        &self,
        case_id: &str,
        step: Step,
        audit: AuditDraft,
    ) -> Result<Rectification, StepError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        let mut r: Rectification = tx
            .query_opt(
                "SELECT record FROM rectifications WHERE case_id = $1 FOR UPDATE",
                &[&case_id],
            )
            .map_err(StoreError::from)?
            .map(|row| row.get::<_, Json<Rectification>>(0).0)
            .ok_or(StepError::NotFound)?;
        r.push_step(step)?;
        tx.execute(
            "UPDATE rectifications SET record = $2 WHERE case_id = $1",
            &[&case_id, &Json(&r)],
        )
        .map_err(StoreError::from)?;
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        tx.commit().map_err(StoreError::from)?;
        Ok(r)
    }

    fn phone_failed(&self, case_id: &str) -> Result<u32, StoreError> {
        let n: i32 = self
            .conn()?
            .query_one(
                "INSERT INTO phone_failures (case_id, failures) VALUES ($1, 1)
                 ON CONFLICT (case_id) DO UPDATE SET failures = phone_failures.failures + 1
                 RETURNING failures",
                &[&case_id],
            )?
            .get(0);
        Ok(n.max(0) as u32)
    }

    fn phone_failures(&self, case_id: &str) -> Result<u32, StoreError> {
        let n: Option<i32> = self
            .conn()?
            .query_opt(
                "SELECT failures FROM phone_failures WHERE case_id = $1",
                &[&case_id],
            )?
            .map(|r| r.get(0));
        Ok(n.unwrap_or(0).max(0) as u32)
    }

    fn create_session(
        &self,
        token_hash: &str,
        supervisor: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO sessions (token_hash, supervisor, expires) VALUES ($1, $2, $3)",
            &[&token_hash, &supervisor, &expires],
        )?;
        Ok(())
    }

    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT supervisor FROM sessions WHERE token_hash = $1 AND expires > $2",
                &[&token_hash, &now],
            )?
            .map(|r| r.get(0)))
    }

    fn notices(&self) -> &dyn super::notices::NoticeStore {
        self
    }

    fn partials(&self) -> &dyn super::partials::PartialStore {
        self
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])?;
        Ok(())
    }

    fn catalog_versions(&self) -> Result<Vec<CatalogVersion>, StoreError> {
        self.records("SELECT record FROM catalog_versions ORDER BY version", &[])
    }

    fn catalog_version(&self, version: u32) -> Result<Option<CatalogVersion>, StoreError> {
        self.record(
            "SELECT record FROM catalog_versions WHERE version = $1",
            &[&(version as i32)],
        )
    }

    fn catalog_head(&self) -> Result<Option<u32>, StoreError> {
        let head: Option<i32> = self
            .conn()?
            .query_one(
                "SELECT max(version) FROM catalog_versions WHERE state = 'published'",
                &[],
            )?
            .get(0);
        Ok(head.map(|v| v as u32))
    }

    fn put_catalog_draft(
        &self,
        draft: &CatalogVersion,
        base: u32,
        audit: AuditDraft,
    ) -> Result<u32, CatalogStoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        // `append` locks the counters row first: catalog writes of every server are serialised.
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        let head = PgStore::catalog_head_in(&mut tx)?;
        if head != base {
            return Err(CatalogStoreError::Stale { base, found: head });
        }
        let mut draft = draft.clone();
        draft.version = head + 1;
        draft.state = CatalogState::Draft;
        tx.execute(
            "INSERT INTO catalog_versions (version, state, record) VALUES ($1, 'draft', $2)
             ON CONFLICT (version) DO UPDATE SET state = 'draft', record = EXCLUDED.record",
            &[&(draft.version as i32), &Json(&draft)],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(draft.version)
    }

    fn discard_catalog_draft(
        &self,
        version: u32,
        audit: AuditDraft,
    ) -> Result<(), CatalogStoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        match PgStore::catalog_version_in(&mut tx, version)? {
            None => return Err(CatalogStoreError::NotFound(version)),
            Some(v) if v.state == CatalogState::Published => {
                return Err(CatalogStoreError::AlreadyPublished(version))
            }
            Some(_) => {}
        }
        tx.execute(
            "DELETE FROM catalog_versions WHERE version = $1",
            &[&(version as i32)],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    fn publish_catalog(
        &self,
        version: u32,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<CatalogVersion, CatalogStoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        PgStore::append(&mut tx, None, &[], vec![audit])?;
        let mut v = PgStore::catalog_version_in(&mut tx, version)?
            .ok_or(CatalogStoreError::NotFound(version))?;
        if v.state == CatalogState::Published {
            return Err(CatalogStoreError::AlreadyPublished(version));
        }
        v.state = CatalogState::Published;
        v.published_by = Some(by.to_string());
        v.published_at = Some(at);
        tx.execute(
            "UPDATE catalog_versions SET state = 'published', record = $2 WHERE version = $1",
            &[&(version as i32), &Json(&v)],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(v)
    }

    fn snapshot(&self) -> Result<super::Snapshot, StoreError> {
        Err(StoreError::Unsupported(
            "back up a PostgreSQL town with pg_dump or base backups, and its bucket with the store's own tools",
        ))
    }

    fn take_token(
        &self,
        kind: BucketKind,
        client: &str,
        config: RateConfig,
        now: f64,
    ) -> Result<Result<(), u64>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction()?;
        let full = Bucket::full(config, now);
        tx.execute(
            "INSERT INTO buckets (kind, client, tokens, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, client) DO NOTHING",
            &[&kind.as_str(), &client, &full.tokens, &full.at],
        )?;
        let row = tx.query_one(
            "SELECT tokens, at FROM buckets WHERE kind = $1 AND client = $2 FOR UPDATE",
            &[&kind.as_str(), &client],
        )?;
        let mut b = Bucket {
            tokens: row.get(0),
            at: row.get(1),
        };
        let taken = b.take(config, now);
        tx.execute(
            "UPDATE buckets SET tokens = $3, at = $4 WHERE kind = $1 AND client = $2",
            &[&kind.as_str(), &client, &b.tokens, &b.at],
        )?;
        tx.commit()?;
        Ok(taken)
    }

    fn give_back_token(
        &self,
        kind: BucketKind,
        client: &str,
        config: RateConfig,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE buckets SET tokens = least(tokens + 1, $3) WHERE kind = $1 AND client = $2",
            &[&kind.as_str(), &client, &config.burst],
        )?;
        Ok(())
    }
}

impl AdminStore for PgStore {
    fn issue_ticket(&self, ticket: &Ticket) -> Result<String, StoreError> {
        let code = new_enrol_code();
        self.conn()?.execute(
            "INSERT INTO tickets (code_hash, ticket, used) VALUES ($1, $2, false)",
            &[&enrol_code_hash(&code), &Json(ticket)],
        )?;
        Ok(code)
    }

    fn redeem_ticket(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Ticket, TicketError>, StoreError> {
        // One statement: of two concurrent redemptions only one flips `used`.
        let row = self.conn()?.query_opt(
            "UPDATE tickets SET used = true WHERE code_hash = $1 AND NOT used RETURNING ticket",
            &[&enrol_code_hash(code)],
        )?;
        let Some(row) = row else {
            return Ok(Err(TicketError::Unknown));
        };
        let ticket = row.get::<_, Json<Ticket>>(0).0;
        if now > ticket.expires_at {
            return Ok(Err(TicketError::Expired));
        }
        Ok(Ok(ticket))
    }

    fn restore_ticket(&self, code: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE tickets SET used = false WHERE code_hash = $1",
            &[&enrol_code_hash(code)],
        )?;
        Ok(())
    }

    fn revoke(&self, device: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO revoked (device, at) VALUES ($1, now()) ON CONFLICT (device) DO NOTHING",
            &[&device],
        )?;
        Ok(())
    }

    fn is_revoked(&self, device: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()?
            .query_opt("SELECT 1 FROM revoked WHERE device = $1", &[&device])?
            .is_some())
    }

    fn put_supervisor(&self, s: &Supervisor) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO supervisors (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            &[&s.name, &Json(s)],
        )?;
        Ok(())
    }

    fn supervisor(&self, name: &str) -> Result<Option<Supervisor>, StoreError> {
        self.record("SELECT record FROM supervisors WHERE name = $1", &[&name])
    }

    fn put_staff(&self, s: &StaffAccount) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO staff (town, name, record) VALUES ($1, $2, $3)
             ON CONFLICT (town, name) DO UPDATE SET record = EXCLUDED.record",
            &[&s.town, &s.name, &Json(s)],
        )?;
        Ok(())
    }

    fn staff_account(&self, town: &str, name: &str) -> Result<Option<StaffAccount>, StoreError> {
        self.record(
            "SELECT record FROM staff WHERE town = $1 AND name = $2",
            &[&town, &name],
        )
    }

    fn staff_accounts(&self) -> Result<Vec<StaffAccount>, StoreError> {
        self.records(
            "SELECT record FROM staff ORDER BY town, name COLLATE \"C\"",
            &[],
        )
    }

    fn put_county_staff(&self, s: &CountyStaff) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO county_staff (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            &[&s.name, &Json(s)],
        )?;
        Ok(())
    }

    fn county_staff(&self, name: &str) -> Result<Option<CountyStaff>, StoreError> {
        self.record("SELECT record FROM county_staff WHERE name = $1", &[&name])
    }

    fn county_staff_list(&self) -> Result<Vec<CountyStaff>, StoreError> {
        self.records(
            "SELECT record FROM county_staff ORDER BY name COLLATE \"C\"",
            &[],
        )
    }

    fn server_key(&self) -> Result<SigningKey, StoreError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let mut c = self.conn()?;
        // Insert-if-absent, then read: servers starting together all end up with the first key.
        c.execute(
            "INSERT INTO settings (key, value) VALUES ('server_key', $1) ON CONFLICT (key) DO NOTHING",
            &[&hex::encode(seed)],
        )?;
        let text: String = c
            .query_one("SELECT value FROM settings WHERE key = 'server_key'", &[])?
            .get(0);
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("stored server key is not 32 hex bytes".into()))?;
        Ok(SigningKey::from_bytes(&bytes))
    }
}
