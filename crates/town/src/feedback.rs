//! 好差评 rules: the five levels, the bad-review loop's deadline, county supervisor accounts,
//! and the oversight figures (the plan's three 百分百, satisfaction and on-time rates).
//!
//! The records themselves (ratings, loops, accounts, sessions, lockouts) are the store's
//! (`crate::store`), so that every backend, and every server over one database, sees the same.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use bianmin_engine::deadline::WorkCalendar;
use bianmin_protocol::CaseState;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::divisions::Divisions;
use crate::store::figures::VillageCounts;
use crate::store::inbox::CaseSummary;
pub use crate::store::{
    AddBadError, AddedBadReview, FollowUpOutcome, Rating, Rectification, Step, StepError, StepKind,
    Supervisor,
};
use crate::store::{AdminStore, StoreError, StoredCase};

/// Default time to close a bad review (BRIEF §3).
pub const DEFAULT_RECTIFY_WORKING_DAYS: u32 = 15;
/// Default window for a 追加差评, in working days after the first rating. No national or Shanxi
/// rule giving a number was found (see `docs/haochaping.md`): a county setting, 待县级确认.
pub const DEFAULT_ADD_BAD_WORKING_DAYS: u32 = 10;
/// Longest comment a resident may leave, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;
/// Wrong phone digits tolerated per case before the form locks (4 digits are guessable otherwise).
pub const MAX_PHONE_FAILURES: u32 = 5;
/// How long a county login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The five levels of the national 好差评 standard; 1 and 2 are bad reviews (差评).
pub const LEVELS: [(u8, &str); 5] = [
    (5, "非常满意"),
    (4, "满意"),
    (3, "基本满意"),
    (2, "不满意"),
    (1, "非常不满意"),
];

/// The Chinese label of a level (1..=5).
pub fn level_label(level: u8) -> &'static str {
    LEVELS
        .iter()
        .find(|(l, _)| *l == level)
        .map(|(_, s)| *s)
        .unwrap_or("未知")
}

/// 不满意 and 非常不满意.
pub fn is_bad(level: u8) -> bool {
    level <= 2
}

/// Supervisor account failures.
#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored password hash is corrupt: {0}")]
    Corrupt(String),
    #[error("a supervisor name must be 1 to 40 characters")]
    BadName,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Longest supervisor account name.
pub const MAX_SUPERVISOR_NAME_CHARS: usize = 40;

/// Creates (or resets) a supervisor and returns the new random password, shown once.
pub fn add_supervisor(admin: &dyn AdminStore, name: &str) -> Result<String, SupervisorError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_SUPERVISOR_NAME_CHARS {
        return Err(SupervisorError::BadName);
    }
    use rand::Rng;
    // 16 characters from an alphabet without look-alikes: easy to type from a printout.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let password: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let salt = SaltString::generate(&mut rng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| SupervisorError::Hash(e.to_string()))?
        .to_string();
    admin.put_supervisor(&Supervisor {
        name: name.to_string(),
        password_hash: hash,
        created_at: Utc::now(),
    })?;
    Ok(password)
}

/// A hash of no one's password with the same parameters as real ones: an unknown name costs the
/// same Argon2 work as a known one, so login timing does not tell which names exist.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(b"no account has this password", &salt)
        .expect("argon2 hashes with its default parameters")
        .to_string()
});

/// Computes the stand-in hash now, so that even the first unknown name takes no longer than a
/// known one (`serve` calls this at start).
pub fn warm_up() {
    std::sync::LazyLock::force(&DUMMY_HASH);
}

/// Checks a supervisor's password (read fresh from the store, so new accounts work at once).
/// Blocking: Argon2 is deliberately slow.
pub fn check_supervisor(
    admin: &dyn AdminStore,
    name: &str,
    password: &str,
) -> Result<bool, SupervisorError> {
    let account = admin.supervisor(name.trim())?;
    let (hash, known) = match &account {
        Some(s) => (s.password_hash.as_str(), true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let parsed = PasswordHash::new(hash).map_err(|e| SupervisorError::Corrupt(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(ok && known)
}

/// 好差评 settings of a town centre (`DATA/feedback.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Working days to close a bad review (`rectify_working_days = 15`).
    pub rectify_days: u32,
    /// Working days after a good rating during which the resident may add one 差评
    /// (`add_bad_review_working_days = 10`; 0 turns additions off). A county setting.
    pub add_bad_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackFile {
    #[serde(default = "default_days")]
    rectify_working_days: u32,
    #[serde(default = "default_add_bad_days")]
    add_bad_review_working_days: u32,
}

fn default_days() -> u32 {
    DEFAULT_RECTIFY_WORKING_DAYS
}

fn default_add_bad_days() -> u32 {
    DEFAULT_ADD_BAD_WORKING_DAYS
}

/// `feedback.toml` could not be read.
#[derive(Debug, Error)]
#[error("feedback.toml: {0}")]
pub struct FeedbackConfigError(String);

impl Feedback {
    /// Reads the optional `DATA/feedback.toml`.
    pub fn open(data: &Path) -> Result<Feedback, FeedbackConfigError> {
        let file = match std::fs::read_to_string(data.join("feedback.toml")) {
            Ok(t) => toml::from_str::<FeedbackFile>(&t)
                .map_err(|e| FeedbackConfigError(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FeedbackFile {
                rectify_working_days: DEFAULT_RECTIFY_WORKING_DAYS,
                add_bad_review_working_days: DEFAULT_ADD_BAD_WORKING_DAYS,
            },
            Err(e) => return Err(FeedbackConfigError(e.to_string())),
        };
        Ok(Feedback {
            rectify_days: file.rectify_working_days,
            add_bad_days: file.add_bad_review_working_days,
        })
    }

    /// The last China date on which a 追加差评 may be added to a rating made at `rated_at`
    /// (inclusive); `None` when the county turned additions off.
    pub fn add_bad_until(
        &self,
        calendar: &WorkCalendar,
        rated_at: DateTime<Utc>,
    ) -> Option<NaiveDate> {
        (self.add_bad_days > 0).then(|| {
            calendar.add_working_days(crate::time::china_date(rated_at), self.add_bad_days)
        })
    }

    /// The loop's deadline for a bad review opened on `opened_on`.
    pub fn deadline(&self, calendar: &WorkCalendar, opened_on: NaiveDate) -> NaiveDate {
        calendar.add_working_days(opened_on, self.rectify_days)
    }
}

/// The CSRF token of a county session's forms: derived from the session, so it dies with it.
pub fn csrf_token(session: &str) -> String {
    crate::digest::sha256_hex(format!("bianmin-csrf/v1\n{session}").as_bytes())
}

/// When the case was completed (办结), from its timeline.
pub fn completed_at(sc: &StoredCase) -> Option<DateTime<Utc>> {
    sc.case
        .history
        .iter()
        .rev()
        .find(|h| h.to == CaseState::Completed)
        .map(|h| h.at)
}

/// Counters of one village, town or the county.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub code: String,
    pub name: String,
    /// `village`, `town` or `county`.
    pub level: &'static str,
    pub cases: u32,
    pub completed: u32,
    pub completed_on_time: u32,
    pub overdue_now: u32,
    pub ratings: u32,
    /// 非常满意 + 满意 + 基本满意.
    pub satisfied: u32,
    pub bad: u32,
    /// Bad reviews whose resident was reached by a 回访 and told how it was handled
    /// (联动反馈, the national 好差评 rule: see `docs/haochaping.md`).
    pub bad_fed_back: u32,
    pub bad_verified_and_rectified: u32,
    pub bad_followed_up: u32,
    pub bad_overdue: u32,
    /// Ratings made on the agent's screen (现场评价): reported, never counted above.
    pub on_site_ratings: u32,
}

/// A percentage, or `None` when there is nothing to divide.
pub fn pct(n: u32, d: u32) -> Option<f64> {
    (d > 0).then(|| n as f64 * 100.0 / d as f64)
}

/// `87.5%` or `—`.
pub fn pct_text(n: u32, d: u32) -> String {
    pct(n, d)
        .map(|p| format!("{p:.1}%"))
        .unwrap_or_else(|| "—".to_string())
}

impl Figures {
    pub fn on_time_rate(&self) -> String {
        pct_text(self.completed_on_time, self.completed)
    }
    pub fn satisfaction(&self) -> String {
        pct_text(self.satisfied, self.ratings)
    }
    /// 联动反馈率: bad reviews fed back to their resident over all bad reviews.
    pub fn fed_back_rate(&self) -> String {
        pct_text(self.bad_fed_back, self.bad)
    }
    pub fn rectified_rate(&self) -> String {
        pct_text(self.bad_verified_and_rectified, self.bad)
    }
    pub fn followed_up_rate(&self) -> String {
        pct_text(self.bad_followed_up, self.bad)
    }

    fn add(&mut self, o: &Figures) {
        self.cases += o.cases;
        self.completed += o.completed;
        self.completed_on_time += o.completed_on_time;
        self.overdue_now += o.overdue_now;
        self.ratings += o.ratings;
        self.satisfied += o.satisfied;
        self.bad += o.bad;
        self.bad_fed_back += o.bad_fed_back;
        self.bad_verified_and_rectified += o.bad_verified_and_rectified;
        self.bad_followed_up += o.bad_followed_up;
        self.bad_overdue += o.bad_overdue;
        self.on_site_ratings += o.on_site_ratings;
    }
}

/// Figures per village, then per town (after its villages), then the county total. `ratings`
/// may hold on-site ratings (现场评价) too: they are counted apart.
pub fn figures(
    divisions: &Divisions,
    cases: &[StoredCase],
    ratings: &[Rating],
    loops: &[Rectification],
    today: NaiveDate,
) -> Vec<Figures> {
    let summaries: Vec<CaseSummary> = cases.iter().map(CaseSummary::of).collect();
    let counts = crate::store::figures::village_counts(&summaries, today);
    figures_of(divisions, &counts, ratings, loops, today)
}

/// [`figures`] from the case counts the store computed ([`crate::store::TownStore::village_counts`]).
pub fn figures_of(
    divisions: &Divisions,
    counts: &[VillageCounts],
    ratings: &[Rating],
    loops: &[Rectification],
    today: NaiveDate,
) -> Vec<Figures> {
    let mut per: BTreeMap<String, Figures> = BTreeMap::new();
    for c in counts {
        let f = per.entry(c.village.clone()).or_default();
        f.cases += c.cases;
        f.overdue_now += c.overdue_now;
        f.completed += c.completed;
        f.completed_on_time += c.completed_on_time;
    }
    for r in ratings {
        let f = per.entry(r.village.clone()).or_default();
        // Only a credential the applicant alone holds makes a rating count.
        if !r.via.counts() {
            f.on_site_ratings += 1;
            continue;
        }
        f.ratings += 1;
        // A 追加差评 replaces the first rating as the case's rating: one rating per case.
        if r.counted_level() >= 3 {
            f.satisfied += 1;
        }
    }
    for l in loops {
        let f = per.entry(l.village.clone()).or_default();
        f.bad += 1;
        if l.has(StepKind::Verify) && l.has(StepKind::Rectify) {
            f.bad_verified_and_rectified += 1;
        }
        if l.has(StepKind::FollowUp) {
            f.bad_followed_up += 1;
        }
        if l.fed_back() {
            f.bad_fed_back += 1;
        }
        if l.is_overdue(today) {
            f.bad_overdue += 1;
        }
    }
    let mut out = Vec::new();
    let mut county = Figures {
        code: divisions.county.code.clone(),
        name: divisions.county.name.clone(),
        level: "county",
        ..Default::default()
    };
    for t in &divisions.towns {
        let mut town = Figures {
            code: t.code.clone(),
            name: t.name.clone(),
            level: "town",
            ..Default::default()
        };
        let mut rows = Vec::new();
        for v in &t.villages {
            let mut f = per.remove(&v.code).unwrap_or_default();
            f.code = v.code.clone();
            f.name = format!("{}{}", t.name, v.name);
            f.level = "village";
            town.add(&f);
            rows.push(f);
        }
        county.add(&town);
        // Villages without any activity would drown the table; the town row still counts them.
        out.extend(rows.into_iter().filter(|f| f.cases > 0 || f.ratings > 0));
        out.push(town);
    }
    out.push(county);
    out
}
