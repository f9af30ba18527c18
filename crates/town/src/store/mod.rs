//! Storage of the town centre: every piece of durable or shared state sits behind the
//! [`TownStore`] and [`AdminStore`] traits, so a second backend misses nothing and two servers
//! over one database agree.
//!
//! Two backends implement them: [`SledStore`] (embedded, the default for one town) and
//! [`PgStore`] (PostgreSQL, for a county or a province with several servers). Every write that
//! changes a case goes through [`TownStore::commit`], which stores the case, its changes-feed
//! events and its audit entries in one transaction and makes it durable before returning: the
//! API acknowledges nothing that a crash or a power cut could lose. Request nonces, ratings,
//! bad-review loops, county sessions, phone-digit lockouts and rate-limit buckets live here too.
//!
//! [`AdminStore`] holds what the administration commands write (enrolment tickets,
//! revocations, supervisor and town staff accounts, the server key). The embedded backend keeps those as files
//! in the data directory ([`crate::Files`]), because `enroll` and `supervisor add` must work
//! while `serve` holds sled's lock; PostgreSQL keeps them in tables.

pub mod county;
pub mod county_lists;
pub mod figures;
pub mod files_admin;
pub mod inbox;
pub mod notices;
pub mod partials;
pub mod pg;
mod pg_tls;
pub mod records;
pub mod sled;

use bianmin_protocol::sync::ChangeEntry;
use bianmin_protocol::DecisionEvent;
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use thiserror::Error;

use crate::audit::{AuditDraft, AuditEntry};
use crate::bucket::RateConfig;

pub use self::county::{CountyHandling, CountyStaff, CountyStep};
pub use self::files_admin::FileAdmin;
pub use self::pg::PgStore;
pub use self::records::{
    AddBadError, AddedBadReview, CatalogState, CatalogStoreError, CatalogVersion, DeviceRecord,
    FollowUpOutcome, Press, Rating, RatingVia, Rectification, Revision, StaffAccount, Step,
    StepKind, StoredCase, Supervisor, Ticket, TicketError, VersionRecord,
};
pub use self::sled::{DurableSled, SledStore};

/// A storage failure (never shown to clients).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] ::sled::Error),
    #[error("database: {0}")]
    Pg(#[from] postgres::Error),
    #[error("database connection pool: {0}")]
    Pool(String),
    #[error("database files: {0}")]
    Io(#[from] std::io::Error),
    /// Another server changed the record between this one's read and write; retry.
    #[error("case {0} was changed concurrently")]
    Conflict(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("database schema: {0}")]
    Schema(String),
}

/// Why a loop step was refused.
#[derive(Debug, Error)]
pub enum StepError {
    #[error("no bad review is open for this case")]
    NotFound,
    #[error("the loop is already closed")]
    Closed,
    #[error("the next step is {expected}, not {got}")]
    OutOfOrder {
        expected: &'static str,
        got: &'static str,
    },
    #[error("a step needs the name of who did it and notes")]
    Empty,
    #[error("a follow-up (and only a follow-up) says whether the resident was reached")]
    Outcome,
    /// The 回访 date given with a step is not acceptable (why).
    #[error("follow-up date: {0}")]
    FollowUpDate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A rate-limit bucket family: enrolment failures, public pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKind {
    Enrolment,
    Public,
    /// Wrong staff PINs, per town and person.
    Pin,
}

impl BucketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BucketKind::Enrolment => "enrol",
            BucketKind::Public => "public",
            BucketKind::Pin => "pin",
        }
    }
}

/// The town centre's storage. Blocking: handlers call it from `spawn_blocking`.
pub trait TownStore: Send + Sync + 'static {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Registers a new device; `false` if the id is taken.
    fn insert_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<bool, StoreError>;
    /// Replaces a device record (revocation).
    fn put_device(&self, d: &DeviceRecord, audit: AuditDraft) -> Result<(), StoreError>;
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;
    fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError>;
    fn cases(&self) -> Result<Vec<StoredCase>, StoreError>;
    /// Cases of `villages`, oldest received first (the inbox; an index in PostgreSQL).
    fn cases_of(&self, villages: &[String]) -> Result<Vec<StoredCase>, StoreError>;
    /// One page of the inbox in `order`, after `after` (the previous page's `next`), read
    /// through an index: the backend does not read the records of cases off the page.
    fn inbox(
        &self,
        filter: &inbox::InboxFilter,
        order: inbox::InboxOrder,
        after: Option<&inbox::InboxCursor>,
        limit: usize,
    ) -> Result<inbox::InboxPage, StoreError>;
    /// Each village's case counts for the county figures on `today` (the last working day up to
    /// the China date, as for [`inbox::InboxFilter::today`]), computed over
    /// the case index ([`figures::village_counts`]'s rules) without reading the case records.
    fn village_counts(&self, today: NaiveDate) -> Result<Vec<figures::VillageCounts>, StoreError>;
    /// Phone numbers one agent gave for at least `min_applicants` applicants
    /// ([`figures::shared_phones`]), computed over the case index.
    fn shared_phones(&self, min_applicants: u32) -> Result<Vec<figures::PhoneUse>, StoreError>;
    /// The cases overdue on `today` ([`figures::overdue`]) by case number, found through the
    /// index: only their records are read.
    fn overdue_cases(&self, today: NaiveDate) -> Result<Vec<StoredCase>, StoreError>;
    /// One page of a county list ([`county_lists::CountyList`]) after `after` (the previous
    /// page's `next`), found through an index: only the records on the page are read.
    fn county_list(
        &self,
        list: &county_lists::CountyList,
        after: Option<&county_lists::ListCursor>,
        limit: usize,
    ) -> Result<county_lists::ListPage, StoreError>;
    /// The number of open (unfinished) cases of each responsible device that has any, kept as
    /// counters or counted over an index rather than by reading the cases.
    fn open_cases_by_device(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError>;
    /// Atomically stores `case` (if any), appends `events` to the changes feed and `audit` to the
    /// audit chain, then makes it durable. Of concurrent commits (from any number of servers)
    /// each feed entry gets its own sequence number and the audit chain keeps a single head.
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

    /// Size of a stored, verified attachment; `None` if the store holds none.
    fn attachment_size(&self, sha: &str) -> Result<Option<u64>, StoreError>;
    /// Whether a device of `village` has sent this attachment's bytes. Attachments are stored
    /// once by content, but a village may only reference what it has shown it holds: knowing
    /// another village's page hash is not enough to put that page into one's own case.
    fn held_by(&self, sha: &str, village: &str) -> Result<bool, StoreError>;
    /// Records a stored, verified attachment of `size` bytes and that `village` sent it;
    /// durable before returning.
    fn add_attachment(&self, sha: &str, size: u64, village: &str) -> Result<(), StoreError>;

    /// Stores a resident's rating (and the bad-review loop it opens) together with `commit`'s
    /// case, events and audit entries, in one transaction, only if the case has no rating yet:
    /// `false`, storing nothing, if it had. Of 100 concurrent calls exactly one stores.
    fn rate(
        &self,
        rating: &Rating,
        loop_record: Option<&Rectification>,
        case: &StoredCase,
        events: &[DecisionEvent],
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError>;
    fn rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError>;
    /// Adds a 追加差评 to a case's rating ([`Rating::add_bad`]) and stores the bad-review loop it
    /// opens, with its audit entry, in one transaction; the rating as stored after. Of concurrent
    /// calls for one case exactly one succeeds.
    fn add_bad_review(
        &self,
        case_id: &str,
        added: AddedBadReview,
        loop_record: &Rectification,
        audit: AuditDraft,
    ) -> Result<Rating, AddBadError>;
    fn ratings(&self) -> Result<Vec<Rating>, StoreError>;
    fn rectification(&self, case_id: &str) -> Result<Option<Rectification>, StoreError>;
    fn rectifications(&self) -> Result<Vec<Rectification>, StoreError>;
    /// Appends the next step of a loop ([`Rectification::push_step`]) with its audit entry, in one
    /// transaction; the loop as stored after.
    fn add_step(
        &self,
        case_id: &str,
        step: Step,
        audit: AuditDraft,
    ) -> Result<Rectification, StepError>;

    /// Counts a wrong phone-digit attempt on a case's rating form; the count after it.
    fn phone_failed(&self, case_id: &str) -> Result<u32, StoreError>;
    /// Wrong phone-digit attempts so far.
    fn phone_failures(&self, case_id: &str) -> Result<u32, StoreError>;

    /// Starts a county session. `token_hash` is the SHA-256 of the cookie value: a copy of the
    /// database does not hand out live sessions.
    fn create_session(
        &self,
        token_hash: &str,
        supervisor: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The supervisor of a session alive at `now`.
    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError>;
    fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// The notification outbox, resident links, opt-outs and on-site ratings.
    fn notices(&self) -> &dyn notices::NoticeStore;

    /// Unfinished uploads whose bytes are in an object store, shared by every server.
    fn partials(&self) -> &dyn partials::PartialStore;

    /// Every record, read consistently while the store keeps serving (`backup`); the
    /// administration records are the [`AdminStore`]'s. PostgreSQL is backed up with its own
    /// tools (`pg_dump`), so it answers `Unsupported`.
    fn snapshot(&self) -> Result<Snapshot, StoreError>;

    /// Takes a token from `client`'s bucket of `kind` at `now` (Unix seconds); `Ok(Err(wait))`
    /// when it is empty. Atomic per bucket: concurrent requests cannot spend one token twice.
    fn take_token(
        &self,
        kind: BucketKind,
        client: &str,
        config: RateConfig,
        now: f64,
    ) -> Result<Result<(), u64>, StoreError>;
    /// Returns a token taken for a request that turned out not to count.
    fn give_back_token(
        &self,
        kind: BucketKind,
        client: &str,
        config: RateConfig,
    ) -> Result<(), StoreError>;

    /// Every catalog version, drafts and published, oldest first.
    fn catalog_versions(&self) -> Result<Vec<CatalogVersion>, StoreError>;
    fn catalog_version(&self, version: u32) -> Result<Option<CatalogVersion>, StoreError>;
    /// The number of the newest published version (`None` before the first): cheap, so a server
    /// asks it on every manifest request and notices what another server or the CLI published.
    fn catalog_head(&self) -> Result<Option<u32>, StoreError>;
    /// Stores `draft` as the one draft, numbered after the newest published version (replacing an
    /// earlier draft), with its audit entry; the number given. `base` is the published version its
    /// changes were computed against (0 for none): refused as `Stale` if another was published since.
    fn put_catalog_draft(
        &self,
        draft: &CatalogVersion,
        base: u32,
        audit: AuditDraft,
    ) -> Result<u32, CatalogStoreError>;
    /// Removes the draft `version`, with its audit entry.
    fn discard_catalog_draft(
        &self,
        version: u32,
        audit: AuditDraft,
    ) -> Result<(), CatalogStoreError>;
    /// Publishes the draft `version` (by `by`, at `at`) with its audit entry, in one transaction;
    /// the version as stored after.
    fn publish_catalog(
        &self,
        version: u32,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<CatalogVersion, CatalogStoreError>;
}

/// What the administration commands write and the server reads.
pub trait AdminStore: Send + Sync + 'static {
    /// Issues a one-time enrolment code; only its hash is stored.
    fn issue_ticket(&self, ticket: &Ticket) -> Result<String, StoreError>;
    /// Redeems a code once: of two concurrent redemptions only one wins.
    fn redeem_ticket(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Ticket, TicketError>, StoreError>;
    /// Puts an unused ticket back (the enrolment failed for a reason that is not the code's fault).
    fn restore_ticket(&self, code: &str) -> Result<(), StoreError>;
    /// Disables a device: its requests get 401 from now on.
    fn revoke(&self, device: &str) -> Result<(), StoreError>;
    fn is_revoked(&self, device: &str) -> Result<bool, StoreError>;
    /// Creates or replaces a supervisor account.
    fn put_supervisor(&self, s: &Supervisor) -> Result<(), StoreError>;
    fn supervisor(&self, name: &str) -> Result<Option<Supervisor>, StoreError>;
    /// Creates or replaces a town staff account (a new PIN, or marking it inactive).
    fn put_staff(&self, s: &StaffAccount) -> Result<(), StoreError>;
    /// The account of `name` in `town`, active or not.
    fn staff_account(&self, town: &str, name: &str) -> Result<Option<StaffAccount>, StoreError>;
    /// Every staff account, by town then name.
    fn staff_accounts(&self) -> Result<Vec<StaffAccount>, StoreError>;
    /// Creates or replaces a county staff account (a new password, or marking it inactive).
    fn put_county_staff(&self, s: &CountyStaff) -> Result<(), StoreError>;
    /// The county staff account of `name`, active or not.
    fn county_staff(&self, name: &str) -> Result<Option<CountyStaff>, StoreError>;
    /// Every county staff account, by name.
    fn county_staff_list(&self) -> Result<Vec<CountyStaff>, StoreError>;
    /// The server's receipt-signing key, created on first use. Every server of one database signs
    /// with the same key, so a receipt from one verifies against the key any of them publishes.
    fn server_key(&self) -> Result<SigningKey, StoreError>;
}

/// Everything a town holds, for `migrate`, `backup` and `restore`: records as stored, with their
/// feed sequence numbers and audit hashes unchanged.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub devices: Vec<DeviceRecord>,
    pub cases: Vec<StoredCase>,
    pub feed: Vec<ChangeEntry>,
    pub audit: Vec<AuditEntry>,
    pub ratings: Vec<Rating>,
    pub rectifications: Vec<Rectification>,
    /// sha256, size, the villages that sent it.
    pub attachments: Vec<(String, u64, Vec<String>)>,
    pub phone_failures: Vec<(String, u32)>,
    pub revoked: Vec<String>,
    pub supervisors: Vec<Supervisor>,
    /// Town staff accounts (PIN hashes).
    #[serde(default)]
    pub staff: Vec<StaffAccount>,
    /// County staff accounts (password hashes).
    #[serde(default)]
    pub county_staff: Vec<CountyStaff>,
    /// Unused enrolment tickets by code hash.
    pub tickets: Vec<(String, Ticket)>,
    pub server_key: Option<[u8; 32]>,
    /// Catalog versions, drafts and published, oldest first.
    #[serde(default)]
    pub catalog: Vec<CatalogVersion>,
    /// The notification outbox, resident links, opt-outs and on-site ratings.
    #[serde(default)]
    pub outbox: notices::Outbox,
}

/// Enrolment codes avoid 0/O and 1/I/L so they can be read aloud and typed.
const ENROL_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const ENROL_CODE_LEN: usize = 12;

/// A fresh random enrolment code.
pub fn new_enrol_code() -> String {
    use rand::RngCore;
    let mut raw = [0u8; ENROL_CODE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw.iter()
        .map(|b| ENROL_ALPHABET[(*b as usize) % ENROL_ALPHABET.len()] as char)
        .collect()
}

/// The stored form of an enrolment code: the hash of its normalised text (spaces, dashes and
/// case do not matter to someone typing it).
pub fn enrol_code_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    crate::digest::sha256_hex(norm.as_bytes())
}

/// The stored form of a session cookie.
pub fn session_hash(token: &str) -> String {
    crate::digest::sha256_hex(format!("bianmin-session/v1\n{token}").as_bytes())
}
