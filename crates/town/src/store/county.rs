//! The records of the county inbox (转县): who a forwarded case went to and what the county office
//! did with it, and the county staff accounts that work that inbox.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A case forwarded to a county office, as the town keeps it beside the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyHandling {
    /// The receiving office's key (catalog `receivers`).
    pub receiver: String,
    /// Its name when the case was forwarded (kept, so the timeline reads the same after a rename).
    pub receiver_name: String,
    pub forwarded_at: DateTime<Utc>,
    /// The town person who forwarded it.
    pub forwarded_by: String,
    /// The town's note to the county.
    #[serde(default)]
    pub note: String,
    /// 县受理: who accepted it and when.
    #[serde(default)]
    pub accepted: Option<CountyStep>,
    /// The working-day deadline counted from the county's acceptance by the item's promised days.
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
    /// An open 要求补正 the town has to answer by sending the case up again.
    #[serde(default)]
    pub request: Option<CountyStep>,
    /// 办结 or 不予受理 by the county (the decision itself is on the case).
    #[serde(default)]
    pub decided: Option<CountyStep>,
}

/// One thing a county or town person did in the county inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyStep {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub note: String,
}

impl CountyHandling {
    /// The inbox status, in Chinese.
    pub fn status(&self) -> &'static str {
        if self.decided.is_some() {
            "已办结"
        } else if self.request.is_some() {
            "待镇里补正"
        } else if self.accepted.is_some() {
            "县已受理"
        } else {
            "待受理"
        }
    }
}

/// A county office's staff member, signing in to the county inbox pages with a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyStaff {
    /// Login name, unique across the county.
    pub name: String,
    /// The office (catalog receiver key) whose inbox this person works.
    pub receiver: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}
