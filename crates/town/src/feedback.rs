//! 好差评 data: residents' ratings, the bad-review loop (核实 → 整改 → 回访), county supervisors,
//! and the oversight figures (the plan's three 百分百, satisfaction and on-time rates).
//!
//! Ratings live in their own small sled database beside the case store, so the one-rating-per-case
//! rule is a single sled transaction (insert only if absent) that needs nothing from `TownStore`.
//! Supervisors are a JSON file written atomically, so `bianmin-town supervisor add` works while the
//! server runs (the same reason enrolment codes are files).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use bianmin_engine::deadline::WorkCalendar;
use bianmin_protocol::{CaseState, Decision};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use thiserror::Error;

use crate::divisions::Divisions;
use crate::store::{StoreError, StoredCase};

/// Default time to close a bad review (BRIEF §3).
pub const DEFAULT_RECTIFY_WORKING_DAYS: u32 = 15;
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

/// One recorded step: who, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub by: String,
    pub at: DateTime<Utc>,
    pub notes: String,
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

    /// Open past its deadline (China date).
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        !self.is_closed() && today > self.deadline
    }

    /// Short status text for pages.
    pub fn status_label(&self, today: NaiveDate) -> String {
        match self.next_step() {
            None => "已闭环".to_string(),
            Some(k) if self.is_overdue(today) => format!("待{}（已超期）", k.label()),
            Some(k) => format!("待{}", k.label()),
        }
    }
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A county supervisor (县行政审批局) account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Supervisor {
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// Supervisor file failures.
#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error("supervisor file: {0}")]
    Io(#[from] std::io::Error),
    #[error("supervisor file is corrupt: {0}")]
    Corrupt(String),
    #[error("a supervisor name must be 1 to 40 characters")]
    BadName,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn supervisors_path(data: &Path) -> PathBuf {
    data.join("supervisors.json")
}

fn read_supervisors(data: &Path) -> Result<BTreeMap<String, Supervisor>, SupervisorError> {
    match std::fs::read(supervisors_path(data)) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| SupervisorError::Corrupt(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

/// Creates (or resets) a supervisor and returns the new random password, shown once.
pub fn add_supervisor(data: &Path, name: &str) -> Result<String, SupervisorError> {
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
    let mut all = read_supervisors(data)?;
    all.insert(
        name.to_string(),
        Supervisor {
            name: name.to_string(),
            password_hash: hash,
            created_at: Utc::now(),
        },
    );
    crate::files::write_atomic(
        &supervisors_path(data),
        &serde_json::to_vec_pretty(&all).expect("serializes"),
    )?;
    Ok(password)
}

/// Longest supervisor account name.
pub const MAX_SUPERVISOR_NAME_CHARS: usize = 40;

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

/// Checks a supervisor's password (read fresh from the file, so new accounts work at once).
pub fn check_supervisor(data: &Path, name: &str, password: &str) -> Result<bool, SupervisorError> {
    let all = read_supervisors(data)?;
    let (hash, known) = match all.get(name.trim()) {
        Some(s) => (s.password_hash.as_str(), true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let parsed = PasswordHash::new(hash).map_err(|e| SupervisorError::Corrupt(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(ok && known)
}

/// The feedback store and in-memory security state of the 好差评 pages.
pub struct Feedback {
    db: crate::store::DurableSled,
    ratings: sled::Tree,
    rectifications: sled::Tree,
    data: PathBuf,
    /// Working days to close a bad review (`feedback.toml`: `rectify_working_days = 15`).
    pub rectify_days: u32,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    phone_failures: Mutex<HashMap<String, u32>>,
    /// Serialises read-modify-write of loop records.
    write: Mutex<()>,
    pub limiter: crate::ratelimit::Limiter,
}

#[derive(Deserialize)]
struct FeedbackConfig {
    #[serde(default = "default_days")]
    rectify_working_days: u32,
}

fn default_days() -> u32 {
    DEFAULT_RECTIFY_WORKING_DAYS
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("feedback records serialize")
}

fn parse<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Feedback {
    /// Opens `DATA/feedback-db` and reads the optional `DATA/feedback.toml`.
    pub fn open(data: &Path) -> Result<Feedback, StoreError> {
        let db = crate::store::DurableSled::open(&data.join("feedback-db"), 8 * 1024 * 1024)?;
        let rectify_days = match std::fs::read_to_string(data.join("feedback.toml")) {
            Ok(t) => {
                toml::from_str::<FeedbackConfig>(&t)
                    .map_err(|e| StoreError::Corrupt(format!("feedback.toml: {e}")))?
                    .rectify_working_days
            }
            Err(_) => DEFAULT_RECTIFY_WORKING_DAYS,
        };
        Ok(Feedback {
            ratings: db.db.open_tree("ratings")?,
            rectifications: db.db.open_tree("rectifications")?,
            db,
            data: data.to_path_buf(),
            rectify_days,
            sessions: Mutex::new(HashMap::new()),
            phone_failures: Mutex::new(HashMap::new()),
            write: Mutex::new(()),
            limiter: crate::ratelimit::Limiter::default(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stores the rating, and the loop it opens, only if the case has none yet: `false` if it had.
    /// One sled transaction, so concurrent double-submits store exactly one rating.
    pub fn rate(
        &self,
        rating: &Rating,
        loop_record: Option<&Rectification>,
    ) -> Result<bool, StoreError> {
        let res: Result<bool, TransactionError<()>> = (&self.ratings, &self.rectifications)
            .transaction(|(tr, tx)| {
                if tr.get(rating.case_id.as_bytes())?.is_some() {
                    return Ok(false);
                }
                tr.insert(rating.case_id.as_bytes(), json(rating))?;
                if let Some(r) = loop_record {
                    tx.insert(r.case_id.as_bytes(), json(r))?;
                }
                Ok::<bool, ConflictableTransactionError<()>>(true)
            });
        let stored = match res {
            Ok(b) => b,
            Err(TransactionError::Storage(e)) => return Err(e.into()),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Corrupt("rating transaction aborted".into()))
            }
        };
        if stored {
            self.db.sync()?;
        }
        Ok(stored)
    }

    pub fn rating(&self, case_id: &str) -> Result<Option<Rating>, StoreError> {
        self.ratings
            .get(case_id.as_bytes())?
            .map(|v| parse(&v))
            .transpose()
    }

    pub fn ratings(&self) -> Result<Vec<Rating>, StoreError> {
        self.ratings.iter().values().map(|v| parse(&v?)).collect()
    }

    pub fn rectification(&self, case_id: &str) -> Result<Option<Rectification>, StoreError> {
        self.rectifications
            .get(case_id.as_bytes())?
            .map(|v| parse(&v))
            .transpose()
    }

    pub fn rectifications(&self) -> Result<Vec<Rectification>, StoreError> {
        self.rectifications
            .iter()
            .values()
            .map(|v| parse(&v?))
            .collect()
    }

    /// Records the next step of a loop; steps must come in order 核实 → 整改 → 回访.
    pub fn add_step(
        &self,
        case_id: &str,
        kind: StepKind,
        by: &str,
        notes: &str,
    ) -> Result<Rectification, StepError> {
        if by.trim().is_empty() || notes.trim().is_empty() {
            return Err(StepError::Empty);
        }
        let _g = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut r = self.rectification(case_id)?.ok_or(StepError::NotFound)?;
        match r.next_step() {
            None => return Err(StepError::Closed),
            Some(k) if k != kind => {
                return Err(StepError::OutOfOrder {
                    expected: k.as_str(),
                    got: kind.as_str(),
                })
            }
            Some(_) => {}
        }
        r.steps.push(Step {
            kind,
            by: by.trim().chars().take(80).collect(),
            at: Utc::now(),
            notes: notes.trim().chars().take(MAX_COMMENT_CHARS).collect(),
        });
        self.rectifications
            .insert(case_id.as_bytes(), json(&r))
            .map_err(StoreError::from)?;
        self.db.sync()?;
        Ok(r)
    }

    /// The loop's deadline for a bad review opened on `opened_on`.
    pub fn deadline(&self, calendar: &WorkCalendar, opened_on: NaiveDate) -> NaiveDate {
        calendar.add_working_days(opened_on, self.rectify_days)
    }

    /// A wrong phone-digit attempt; `true` once the case is locked.
    pub fn phone_failed(&self, case_id: &str) -> bool {
        let mut m = self
            .phone_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = m.entry(case_id.to_string()).or_default();
        *n += 1;
        *n >= MAX_PHONE_FAILURES
    }

    pub fn phone_locked(&self, case_id: &str) -> bool {
        self.phone_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(case_id)
            .is_some_and(|n| *n >= MAX_PHONE_FAILURES)
    }

    /// Starts a county session; returns the cookie value.
    pub fn new_session(&self, name: &str) -> String {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.retain(|_, (_, exp)| *exp > now);
        s.insert(token.clone(), (name.to_string(), now + SESSION_TTL));
        token
    }

    /// The supervisor of a live session.
    pub fn session(&self, token: &str) -> Option<String> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.get(token)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(n, _)| n.clone())
    }

    pub fn end_session(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }
}

/// The CSRF token of a county session's forms: derived from the session, so it dies with it.
pub fn csrf_token(session: &str) -> String {
    crate::files::sha256_hex(format!("bianmin-csrf/v1\n{session}").as_bytes())
}

/// Today in China (UTC+8).
pub fn china_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid offset"))
        .date_naive()
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

fn is_done(s: CaseState) -> bool {
    matches!(
        s,
        CaseState::Completed | CaseState::Delivered | CaseState::Rated
    )
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
    /// Ratings whose Rated event reached the case (and so the village phone's feed).
    pub ratings_fed_back: u32,
    pub bad: u32,
    pub bad_verified_and_rectified: u32,
    pub bad_followed_up: u32,
    pub bad_overdue: u32,
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
    pub fn fed_back_rate(&self) -> String {
        pct_text(self.ratings_fed_back, self.ratings)
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
        self.ratings_fed_back += o.ratings_fed_back;
        self.bad += o.bad;
        self.bad_verified_and_rectified += o.bad_verified_and_rectified;
        self.bad_followed_up += o.bad_followed_up;
        self.bad_overdue += o.bad_overdue;
    }
}

/// Figures per village, then per town (after its villages), then the county total.
pub fn figures(
    divisions: &Divisions,
    cases: &[StoredCase],
    ratings: &[Rating],
    loops: &[Rectification],
    today: NaiveDate,
) -> Vec<Figures> {
    let mut per: BTreeMap<String, Figures> = BTreeMap::new();
    let states: HashMap<&str, CaseState> = cases
        .iter()
        .map(|c| (c.case.id.as_str(), c.case.state))
        .collect();
    for sc in cases {
        let f = per.entry(sc.case.village.clone()).or_default();
        f.cases += 1;
        if sc.case.is_overdue(today) {
            f.overdue_now += 1;
        }
        if is_done(sc.case.state) {
            f.completed += 1;
            let on_time = match (completed_at(sc), sc.case.deadline) {
                (Some(at), Some(dl)) => china_date(at) <= dl,
                // No promised deadline recorded: nothing to be late against.
                _ => true,
            };
            if on_time {
                f.completed_on_time += 1;
            }
        }
    }
    for r in ratings {
        let f = per.entry(r.village.clone()).or_default();
        f.ratings += 1;
        if r.level >= 3 {
            f.satisfied += 1;
        }
        if states.get(r.case_id.as_str()) == Some(&CaseState::Rated) {
            f.ratings_fed_back += 1;
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
