//! Durable records of resident notifications (the SMS outbox), the resident-only rating links
//! they carry, SMS opt-outs and ratings made on the agent's screen (现场评价).
//!
//! Kept apart from [`super::TownStore`]'s long list behind one accessor, [`super::TownStore::notices`],
//! so each backend implements them in a file of its own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Rating, StoreError};

/// What happened to the case, as the resident is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// 受理.
    Accepted,
    /// 补正.
    Correction,
    /// 不予受理.
    Refused,
    /// 转县办理.
    Forwarded,
    /// 办结, the result handed over in person or collected.
    Completed,
    /// 办结, the result put in the post.
    Mailed,
    /// 送达.
    Delivered,
}

/// Where a notice is on its way to the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NoticeState {
    /// Waiting to be sent (again) at `Notice::next_at`.
    Pending,
    /// The provider accepted it (its id for the message).
    Sent {
        at: DateTime<Utc>,
        provider_id: String,
    },
    /// The provider refused it for good (a wrong number); kept for the record, not retried.
    Failed { at: DateTime<Utc>, reason: String },
    /// The applicant asked for no messages.
    OptedOut,
}

/// One SMS to one applicant about one change of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// `{case id}/{feed sequence number}`: a feed event is turned into a notice once, whatever
    /// happens (a case's version counts submissions, not decisions).
    pub id: String,
    pub case_id: String,
    pub village: String,
    pub kind: NoticeKind,
    /// The applicant's phone number as registered on the case.
    pub phone: String,
    /// The template's variables, in order (`no`, `event`, `url`).
    pub params: Vec<(String, String)>,
    /// The message as the resident reads it (without the provider's 【signature】).
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    /// Not to be sent before this (backoff after a failure; a claim's lease while sending).
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub state: NoticeState,
}

/// The notification outbox and the records that go with it. Blocking, like the rest of the store.
pub trait NoticeStore: Send + Sync {
    /// The changes-feed position up to which every event has been turned into notices.
    fn notice_cursor(&self) -> Result<u64, StoreError>;
    /// In one transaction: adds the `notices` whose id is not yet stored, records each
    /// `(code, case id)` resident link, and moves the cursor forward to `cursor` (never back).
    /// Returns how many notices were new.
    fn enqueue_notices(
        &self,
        notices: &[Notice],
        links: &[(String, String)],
        cursor: u64,
    ) -> Result<usize, StoreError>;
    /// Pending notices due at `now` (at most `limit`, oldest first), each leased until `lease_until`
    /// in the same transaction, so two servers over one database never send the same one at once.
    fn claim_notices(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError>;
    /// Stores a notice after an attempt; durable before returning.
    fn put_notice(&self, notice: &Notice) -> Result<(), StoreError>;
    /// Every notice, oldest first.
    fn all_notices(&self) -> Result<Vec<Notice>, StoreError>;
    /// The case a resident link code opens.
    fn link_case(&self, code: &str) -> Result<Option<String>, StoreError>;
    /// Records that the holder of the phone with this hash wants no messages.
    fn opt_out(&self, phone_hash: &str) -> Result<(), StoreError>;
    fn is_opted_out(&self, phone_hash: &str) -> Result<bool, StoreError>;
    /// Stores a rating made through the agent's on-screen QR (现场评价), one per case; `false`,
    /// storing nothing, if the case has one. It never counts as the case's rating.
    fn rate_on_site(&self, rating: &Rating) -> Result<bool, StoreError>;
    fn on_site_rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError>;
    fn on_site_ratings(&self) -> Result<Vec<Rating>, StoreError>;
}

/// Every outbox record, for `migrate`, `backup` and `restore` (a [`super::Snapshot`] part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pub cursor: u64,
    pub notices: Vec<Notice>,
    /// (code, case id).
    pub links: Vec<(String, String)>,
    pub opt_outs: Vec<String>,
    pub on_site_ratings: Vec<Rating>,
}
