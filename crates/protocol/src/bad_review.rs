//! The 差评 loop as the town tablet works it: a bad review with what staff need to call the
//! resident back (item, contact, the case's timeline, the rating's words, the 15-working-day
//! clock), and the step staff record (核实 → 整改 → 回访).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::CaseId;

/// One bad review of the staff's town (`GET /v1/bad-reviews`, audited: it carries the phone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadReview {
    pub case_id: CaseId,
    pub village_name: String,
    pub item_name: String,
    pub applicant: String,
    /// The applicant's full phone number, for the 回访 call (town staff only).
    pub phone: String,
    /// 整体满意度, 1 or 2.
    pub level: u8,
    pub level_label: String,
    /// 服务效率, 服务水平, 服务态度 (1..=5).
    pub efficiency: u8,
    pub quality: u8,
    pub attitude: u8,
    /// The resident's own words.
    pub comment: String,
    pub rated_at: DateTime<Utc>,
    /// The loop's deadline (15 working days by default, holidays from the catalog).
    pub deadline: NaiveDate,
    /// Working days from today to the deadline; negative once past it.
    pub working_days_left: i64,
    /// The case's state changes, oldest first.
    pub timeline: Vec<TimelineEntry>,
    pub steps: Vec<ReviewStep>,
    /// `verify`, `rectify`, `follow_up`, or `None` once the loop is closed.
    pub next_step: Option<String>,
    /// The day the 回访 was scheduled for (with the 整改), while it is still to be made.
    #[serde(default)]
    pub follow_up_due: Option<NaiveDate>,
    /// Working days from today to `follow_up_due`; negative once past it (回访逾期).
    #[serde(default)]
    pub follow_up_days_left: Option<i64>,
}

/// A state change of the case, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub label: String,
    #[serde(default)]
    pub note: String,
}

/// A recorded loop step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewStep {
    /// `verify`, `rectify` or `follow_up`.
    pub kind: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub notes: String,
    /// A 回访's outcome: `reached` or `unreachable`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// With a 整改: the day the 回访 was scheduled for.
    #[serde(default)]
    pub follow_up_on: Option<NaiveDate>,
    /// SHA-256 of each photo (`GET /v1/rectifications/{case_id}/photos/{sha}[?size=thumb]`).
    #[serde(default)]
    pub photos: Vec<String>,
}

/// `POST /v1/rectifications/{case_id}/steps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewStepRequest {
    /// `verify`, `rectify` or `follow_up`.
    pub step: String,
    /// The staff member who did it.
    pub by: String,
    pub notes: String,
    /// Required on `follow_up`: `reached` or `unreachable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// With `rectify`: the day the 回访 is scheduled for (a working day, not in the past).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_on: Option<NaiveDate>,
    /// Photos uploaded first through `PATCH /v1/attachments/{sha}`, named by their SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
    /// The PIN of the person who unlocked the tablet, for the server to check (as with every
    /// staff action); the recorded name is the checked person's, not `by`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// The Chinese name of a loop step.
pub fn step_label(kind: &str) -> &'static str {
    match kind {
        "verify" => "核实",
        "rectify" => "整改",
        "follow_up" => "回访",
        _ => "未知步骤",
    }
}

/// The Chinese words of a 回访 outcome.
pub fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "reached" => "已联系申请人并告知整改结果",
        "unreachable" => "未能联系上申请人",
        _ => "未知结果",
    }
}
