//! The records the town centre stores, whatever the backend: devices, cases and their versions,
//! 好差评 ratings and bad-review loops, supervisor accounts, enrolment tickets.
//!
//! Plain serde data: the embedded store keeps them as JSON values, PostgreSQL as JSONB beside the
//! columns its indexes need, so a record moves between backends unchanged (`migrate`).

use std::collections::BTreeMap;

use bianmin_engine::case::Case;
use bianmin_engine::deadline::clock::CaseClock;
use bianmin_engine::deadline::WorkCalendar;
use bianmin_protocol::sync::{DeviceRole, Receipt};
use bianmin_protocol::Decision;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

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
    /// What the town's own 初审 of the newest version found (one Chinese line per problem; empty
    /// when it passed). The phone runs the same check before sealing, so a finding here means an
    /// outdated or altered client, and the staff see it before they accept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub town_check: Vec<String>,
    /// Where the case went when the town forwarded it to the county (转县), and what the county
    /// office has done with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub county: Option<super::county::CountyHandling>,
    /// Pauses of the working-day clock and extensions of the deadline (`crate::clock`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub clock: CaseClock,
    /// 催办 by the county, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pressed: Vec<Press>,
    /// How often a shared store has written the case: what a handler read, so that a write made
    /// from a copy another server has since replaced is refused (`StoreError::Conflict`).
    #[serde(default, skip_serializing_if = "Revision::is_unset")]
    pub revision: Revision,
}

/// A case's write count in a store shared by several servers (PostgreSQL). Bookkeeping, not
/// content: two records that say the same are equal whatever their revisions, so comparing what
/// was written with what is read back stays meaningful. 0 means "not read from such a store"
/// (a new case, an import, a record from before revisions).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub u64);

impl Revision {
    pub fn is_unset(&self) -> bool {
        self.0 == 0
    }
}

impl PartialEq for Revision {
    fn eq(&self, _: &Revision) -> bool {
        true
    }
}

impl Eq for Revision {}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A county supervisor's 催办 on an overdue case: who, when, what they asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Press {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub note: String,
    /// The deadline the case was overdue against.
    pub deadline: NaiveDate,
}

/// A resident's rating of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub case_id: String,
    pub village: String,
    /// 整体满意度, 1..=5.
    pub level: u8,
    /// 服务效率.
    pub efficiency: u8,
    /// 服务水平.
    pub quality: u8,
    /// 服务态度.
    pub attitude: u8,
    pub comment: String,
    pub rated_at: DateTime<Utc>,
    /// The receipt token's issue date (which receipt was used).
    pub token_issued: NaiveDate,
    /// The 办结 decision as it was when rated: the case's `last_decision` becomes `Rated` after this.
    #[serde(default)]
    pub completion: Option<Decision>,
    /// Which credential the rater held. Records from before this field came through the
    /// agent's on-screen QR.
    #[serde(default)]
    pub via: RatingVia,
    /// A 追加差评: the resident who rated 满意 or better may turn it into a bad review once,
    /// within the county's window. From then on it is the case's rating in the figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<AddedBadReview>,
}

/// A bad review added after a good rating (追加差评).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedBadReview {
    /// 不满意 (2) or 非常不满意 (1).
    pub level: u8,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// Why a 追加差评 was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddBadError {
    #[error("the case has no rating through the resident's own link")]
    NotRated,
    #[error("only a good rating (基本满意 or better) may have a bad review added")]
    NotGood,
    #[error("a bad review was already added")]
    AlreadyAdded,
    #[error("an added review must be 不满意 or 非常不满意")]
    NotBad,
    #[error("the window for adding a bad review closed on {0}")]
    WindowClosed(NaiveDate),
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl Rating {
    /// The level the figures count: the added bad review's, if any, else the first rating's.
    pub fn counted_level(&self) -> u8 {
        self.added.as_ref().map_or(self.level, |a| a.level)
    }

    /// Records a 追加差评 (a pure check, so every backend applies the same rule inside its own
    /// transaction): once, on a good rating that counts, with a bad level. The window is the
    /// caller's: it depends only on `rated_at`, which never changes.
    pub fn add_bad(&mut self, added: AddedBadReview) -> Result<(), AddBadError> {
        if !self.via.counts() {
            return Err(AddBadError::NotRated);
        }
        if self.added.is_some() {
            return Err(AddBadError::AlreadyAdded);
        }
        if self.level <= 2 {
            return Err(AddBadError::NotGood);
        }
        if !(1..=2).contains(&added.level) {
            return Err(AddBadError::NotBad);
        }
        self.added = Some(added);
        Ok(())
    }
}

/// The credential a rating came through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingVia {
    /// The QR on the agent's screen (现场评价): the agent's device held the credential too, so it
    /// is kept and reported separately, never counted.
    #[default]
    Receipt,
    /// The link the server sent to the applicant's phone: only the applicant holds it.
    Sms,
}

impl RatingVia {
    /// Whether ratings of this kind count in the satisfaction figures.
    pub fn counts(self) -> bool {
        self == RatingVia::Sms
    }
}

/// A step of the bad-review loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// 核实.
    Verify,
    /// 整改.
    Rectify,
    /// 回访.
    FollowUp,
}

impl StepKind {
    pub const ORDER: [StepKind; 3] = [StepKind::Verify, StepKind::Rectify, StepKind::FollowUp];

    pub fn label(self) -> &'static str {
        match self {
            StepKind::Verify => "核实",
            StepKind::Rectify => "整改",
            StepKind::FollowUp => "回访",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Verify => "verify",
            StepKind::Rectify => "rectify",
            StepKind::FollowUp => "follow_up",
        }
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        StepKind::ORDER.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a 回访 achieved: whether the resident was reached and told how the bad review was
/// handled. Only `Reached` is rectification feedback to the resident (联动反馈).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpOutcome {
    /// 已联系申请人并告知核实整改结果.
    Reached,
    /// 未能联系上申请人.
    Unreachable,
}

impl FollowUpOutcome {
    pub const ALL: [FollowUpOutcome; 2] = [FollowUpOutcome::Reached, FollowUpOutcome::Unreachable];

    pub fn label(self) -> &'static str {
        match self {
            FollowUpOutcome::Reached => "已联系申请人并告知整改结果",
            FollowUpOutcome::Unreachable => "未能联系上申请人",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpOutcome::Reached => "reached",
            FollowUpOutcome::Unreachable => "unreachable",
        }
    }

    pub fn parse(s: &str) -> Option<FollowUpOutcome> {
        FollowUpOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One recorded step: who, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub by: String,
    pub at: DateTime<Utc>,
    pub notes: String,
    /// A 回访's outcome. Steps recorded before outcomes existed have none, and so do not count
    /// as feedback to the resident: nobody said the resident was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<FollowUpOutcome>,
    /// The day the 回访 is scheduled for, set with a 整改 (and only there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_on: Option<NaiveDate>,
    /// Photos of what was found or done (SHA-256 of each, stored like case pages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
}

/// The closed loop a bad review opens (整改记录).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    pub case_id: String,
    pub village: String,
    pub level: u8,
    pub comment: String,
    pub opened_at: DateTime<Utc>,
    /// Working-day deadline for the whole loop.
    pub deadline: NaiveDate,
    pub steps: Vec<Step>,
}

impl Rectification {
    /// The step that is due next, or `None` when the loop is closed.
    pub fn next_step(&self) -> Option<StepKind> {
        StepKind::ORDER.get(self.steps.len()).copied()
    }

    pub fn has(&self, kind: StepKind) -> bool {
        self.steps.iter().any(|s| s.kind == kind)
    }

    pub fn is_closed(&self) -> bool {
        self.next_step().is_none()
    }

    /// The resident was told how the bad review was handled: a 回访 that reached them
    /// (联动反馈, see `docs/haochaping.md`).
    pub fn fed_back(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.kind == StepKind::FollowUp && s.outcome == Some(FollowUpOutcome::Reached))
    }

    /// The scheduled 回访 day while the 回访 is the next step.
    pub fn follow_up_due(&self) -> Option<NaiveDate> {
        if self.next_step() != Some(StepKind::FollowUp) {
            return None;
        }
        self.steps
            .iter()
            .rev()
            .find(|s| s.kind == StepKind::Rectify)
            .and_then(|s| s.follow_up_on)
    }

    /// A scheduled 回访 not made by the end of its day, counted in working days (回访逾期):
    /// a 回访 due on a Friday is overdue from Monday, not over the weekend.
    pub fn follow_up_overdue(&self, calendar: &WorkCalendar, today: NaiveDate) -> bool {
        self.follow_up_due()
            .is_some_and(|d| calendar.working_days_between(today, d) < 0)
    }

    /// Open past its deadline (China date).
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        !self.is_closed() && today > self.deadline
    }

    /// Appends the next step, refusing one out of order or with nothing said (a pure check, so
    /// every backend applies the same rule inside its own transaction).
    pub fn push_step(&mut self, step: Step) -> Result<(), super::StepError> {
        use super::StepError;
        if step.by.trim().is_empty() || step.notes.trim().is_empty() {
            return Err(StepError::Empty);
        }
        // Only a 回访 has an outcome, and it must say one: the feedback rate is counted from it.
        if (step.kind == StepKind::FollowUp) != step.outcome.is_some() {
            return Err(StepError::Outcome);
        }
        // A 回访 is scheduled when the 整改 is recorded, not on other steps.
        if step.follow_up_on.is_some() && step.kind != StepKind::Rectify {
            return Err(StepError::FollowUpDate(
                "only a rectification schedules a follow-up".into(),
            ));
        }
        match self.next_step() {
            None => return Err(StepError::Closed),
            Some(k) if k != step.kind => {
                return Err(StepError::OutOfOrder {
                    expected: k.as_str(),
                    got: step.kind.as_str(),
                })
            }
            Some(_) => {}
        }
        self.steps.push(step);
        Ok(())
    }

    /// Short status text for pages.
    pub fn status_label(&self, calendar: &WorkCalendar, today: NaiveDate) -> String {
        match self.next_step() {
            None => "已闭环".to_string(),
            Some(_) if self.follow_up_overdue(calendar, today) => format!(
                "回访逾期（应于{}回访）",
                self.follow_up_due().unwrap_or(today).format("%Y-%m-%d")
            ),
            Some(k) if self.is_overdue(today) => format!("待{}（已超期）", k.label()),
            Some(_) if self.follow_up_due().is_some() => format!(
                "待回访（{}）",
                self.follow_up_due().unwrap_or(today).format("%Y-%m-%d")
            ),
            Some(k) => format!("待{}", k.label()),
        }
    }
}

/// A county supervisor (县行政审批局) account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Supervisor {
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A town staff member's personal account (镇便民服务中心工作人员): who signs in on a shared,
/// enrolled tablet with a PIN, so every action names the person and not only the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAccount {
    /// The town (9-digit division code) whose tablets this person may use.
    pub town: String,
    /// The person's name, unique within the town; shown on the tablet and in timelines.
    pub name: String,
    /// Argon2id PHC string of the PIN.
    pub pin_hash: String,
    pub created_at: DateTime<Utc>,
    /// `false` once the person has left: the PIN no longer unlocks anything.
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

/// What an enrolment code grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub role: DeviceRole,
    pub village: Option<String>,
    pub town: String,
    pub expires_at: DateTime<Utc>,
}

/// Why an enrolment code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("enrolment code is unknown or already used")]
    Unknown,
    #[error("enrolment code has expired")]
    Expired,
}

/// Whether a catalog version is still being prepared or is out for the phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogState {
    /// Imported from a spreadsheet, not yet delivered: it may be replaced or discarded.
    Draft,
    /// Delivered to the phones; never changed again.
    Published,
}

/// One catalog version: a draft or a published version (immutable). Versions are numbered 1, 2,
/// … without gaps: the one draft there may be carries the number after the newest published
/// version, and importing again replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogVersion {
    pub version: u32,
    pub state: CatalogState,
    /// `Catalog::hash` of `json`.
    pub hash: String,
    /// The canonical JSON (`Catalog::to_json`): what the parts are cut from.
    pub json: String,
    /// Where it came from: a spreadsheet's file name, or `embedded` for the catalog built in.
    pub source: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub published_by: Option<String>,
    #[serde(default)]
    pub published_at: Option<DateTime<Utc>>,
    /// What changed since the previous published version, one Chinese line per change.
    #[serde(default)]
    pub changes: Vec<String>,
}

/// Why a catalog version could not be stored or published.
#[derive(Debug, thiserror::Error)]
pub enum CatalogStoreError {
    #[error("there is no catalog version {0}")]
    NotFound(u32),
    #[error("catalog version {0} is already published")]
    AlreadyPublished(u32),
    /// Another version was published since the caller compared its draft with the newest one.
    #[error("version {found} was published meanwhile (the draft was compared with {base}); import again")]
    Stale { base: u32, found: u32 },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}
