//! Wire types of a case's working-day clock: pauses for an outside step, extension requests,
//! the county's 催办, as a town tablet sends and reads them (`/v1/cases/{id}/clock`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What town staff do to a case's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ClockAction {
    /// Stops the clock for an outside step: `reason` is `publicity` (公示), `appraisal`
    /// (检验检测鉴定), `hearing` (听证) or `county` (县级部门办理).
    Pause { reason: String, note: String },
    /// The outside step is over: the clock runs again and the deadline moves by the working
    /// days it stood still.
    Resume {
        #[serde(default)]
        note: String,
    },
    /// Asks a county supervisor for `days` more working days (1–10).
    RequestExtension { days: u32, reason: String },
}

/// A clock action with the acting person (checked by PIN, as for case actions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRequest {
    #[serde(flatten)]
    pub action: ClockAction,
    #[serde(default)]
    pub staff: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// The clock's stop in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockPause {
    /// `correction`, `publicity`, `appraisal`, `hearing` or `county`.
    pub reason: String,
    /// The reason as shown (补正, 公示, …).
    pub label: String,
    pub since: NaiveDate,
    pub by: String,
}

/// The county's latest 催办 on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PressNote {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: String,
}

/// One line of a case's clock history, as shown on its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEntry {
    pub at: DateTime<Utc>,
    pub by: String,
    /// What happened, in Chinese (暂停计时（公示）：…, 恢复计时，期限顺延3个工作日, 县级催办：…).
    pub text: String,
}

/// A case's clock as the tablet shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockView {
    pub case_id: String,
    /// The deadline with every ended pause and approved extension included.
    pub deadline: Option<NaiveDate>,
    /// Working days left (frozen while paused; negative when overdue); `None` when no clock runs.
    pub working_days_left: Option<i64>,
    /// 还剩3个工作日 / 已超期2个工作日 / 暂停计时（公示），剩余3个工作日 / 补正中，计时暂停.
    pub label: String,
    pub paused: Option<ClockPause>,
    /// An extension request waits for the county.
    pub extension_pending: bool,
    pub pressed: Option<PressNote>,
    /// The clock's history, oldest first.
    pub entries: Vec<ClockEntry>,
}
