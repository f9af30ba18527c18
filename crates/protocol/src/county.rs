//! Wire types of a forwarded case's county side (转县), as the town's tablet reads it
//! (`GET /v1/cases/{id}/county`): which office has it, whether it accepted it, what it asks the
//! town for (要求补正) and what it decided.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One thing a county office (or the town, forwarding) did: who, when, and what they wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyStepView {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub note: String,
}

/// The county state of a forwarded case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyView {
    /// The receiving office's key (catalog `receivers`).
    pub office: String,
    /// The office's name as the case was forwarded.
    pub office_name: String,
    /// 转县: the town person and the time, with the town's note to the county.
    pub forwarded: CountyStepView,
    /// 县受理.
    #[serde(default)]
    pub accepted: Option<CountyStepView>,
    /// The working-day deadline counted from the county's acceptance.
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
    /// An open 要求补正: what the county asks the town for. The town answers it with its reply
    /// (重新报送县里, a `forward` action with the reply as its note).
    #[serde(default)]
    pub request: Option<CountyStepView>,
    /// 办结 or 不予受理 by the county; the decision itself is the case's last decision.
    #[serde(default)]
    pub decided: Option<CountyStepView>,
    /// The status in Chinese (待受理, 县已受理, 待镇里补正, 已办结).
    pub status: String,
}
