//! Wire types shared by the village app, the agent CLI and the town centre.
//!
//! These types cross the boundary between a phone and the town centre, so they carry no
//! behaviour tied to a transport, a store or a UI: plain data with serde derives. Field names
//! are stable once shipped; add fields with `#[serde(default)]` rather than renaming.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub mod bad_review;
pub mod clock;
pub mod county;
pub mod sync;
pub mod window;

/// A case number (办件编号), minted on the phone: `{village}-{yyyymmdd}-{device}-{seq}`.
///
/// It doubles as the case's client-made id, so a retried upload is recognised as the same case.
pub type CaseId = String;

/// Where a case is in its life (BRIEF §4). The order of variants follows the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Being filled in on the phone; autosaved.
    Draft,
    /// 初审 passed and every required material captured; can still be edited.
    Ready,
    /// Sealed in the outbox; immutable until the town answers.
    Queued,
    /// The town centre has given a signed receipt for it.
    Uploaded,
    /// Seen in the town's inbox.
    Received,
    /// 受理: accepted; the promised-days clock runs.
    Accepted,
    /// 补正: returned once with the complete list of what is missing.
    CorrectionRequested,
    /// 不予受理: refused with a reason. Final.
    Refused,
    /// 转县: handed on to the county.
    Forwarded,
    /// 办结: done, with a result and a delivery method.
    Completed,
    /// The result reached the resident.
    Delivered,
    /// The resident rated the service (好差评). Final.
    Rated,
}

impl CaseState {
    /// Every state, in lifecycle order.
    pub const ALL: [CaseState; 12] = [
        CaseState::Draft,
        CaseState::Ready,
        CaseState::Queued,
        CaseState::Uploaded,
        CaseState::Received,
        CaseState::Accepted,
        CaseState::CorrectionRequested,
        CaseState::Refused,
        CaseState::Forwarded,
        CaseState::Completed,
        CaseState::Delivered,
        CaseState::Rated,
    ];

    /// The Chinese label shown to agents, staff and residents.
    pub fn label(self) -> &'static str {
        match self {
            CaseState::Draft => "草稿",
            CaseState::Ready => "已初审",
            CaseState::Queued => "待上传",
            CaseState::Uploaded => "已上传",
            CaseState::Received => "镇中心已接收",
            CaseState::Accepted => "已受理",
            CaseState::CorrectionRequested => "需补正",
            CaseState::Refused => "不予受理",
            CaseState::Forwarded => "已转县办理",
            CaseState::Completed => "已办结",
            CaseState::Delivered => "已送达",
            CaseState::Rated => "已评价",
        }
    }

    /// The stable snake_case name used on the wire and in CLIs.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Draft => "draft",
            CaseState::Ready => "ready",
            CaseState::Queued => "queued",
            CaseState::Uploaded => "uploaded",
            CaseState::Received => "received",
            CaseState::Accepted => "accepted",
            CaseState::CorrectionRequested => "correction_requested",
            CaseState::Refused => "refused",
            CaseState::Forwarded => "forwarded",
            CaseState::Completed => "completed",
            CaseState::Delivered => "delivered",
            CaseState::Rated => "rated",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The resident who applies (申请人). Sensitive personal data: encrypted at rest, masked in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Applicant {
    pub name: String,
    /// Resident ID number (公民身份号码, GB 11643), upper-case `X` for a checksum of 10.
    pub id_number: String,
    /// Mainland mobile number, 11 digits.
    pub phone: String,
    #[serde(default)]
    pub address: String,
}

/// The agent who first took the case (首问负责); kept through every hand-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AgentRef {
    /// The enrolled device's id.
    pub device_id: String,
    /// The agent's display name.
    #[serde(default)]
    pub name: String,
    /// The village (12-digit statistical division code) the device is enrolled for.
    pub village: String,
}

/// One stored file of a material: a photographed and scanned page, addressed by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// File name shown to staff, e.g. `id_card-1.jpg`.
    pub name: String,
    /// Lower-case hex SHA-256 of the plain bytes.
    pub sha256: String,
    pub bytes: u64,
    #[serde(default = "default_mime")]
    pub mime: String,
}

fn default_mime() -> String {
    "image/jpeg".to_string()
}

/// One answer of a case's form. Untagged, so a plain answer stays a JSON string as it was before
/// multiple choices and repeat groups existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// Text, a number, a date, one choice, 是/否, an ID or phone number, as typed.
    Text(String),
    /// The rows of a repeat group (household members), each a map of column key to text.
    Rows(Vec<BTreeMap<String, String>>),
    /// A multiple choice: the chosen labels in the catalog's order.
    Choices(Vec<String>),
}

impl Answer {
    /// The text of a plain answer; empty for a list.
    pub fn text(&self) -> &str {
        match self {
            Answer::Text(s) => s,
            _ => "",
        }
    }

    /// The rows of a repeat group; none for any other answer. An empty JSON list reads as `Rows`.
    pub fn rows(&self) -> &[BTreeMap<String, String>] {
        match self {
            Answer::Rows(r) => r,
            _ => &[],
        }
    }

    /// The chosen labels of a multiple choice; a plain answer counts as one choice.
    pub fn choices(&self) -> Vec<&str> {
        match self {
            Answer::Choices(c) => c.iter().map(String::as_str).collect(),
            Answer::Text(s) if !s.trim().is_empty() => vec![s.as_str()],
            _ => Vec::new(),
        }
    }

    /// Nothing answered: blank text or an empty list.
    pub fn is_empty(&self) -> bool {
        match self {
            Answer::Text(s) => s.trim().is_empty(),
            Answer::Rows(r) => r.is_empty(),
            Answer::Choices(c) => c.is_empty(),
        }
    }
}

/// How staff read an answer in a list: the text, the choices joined by 、, or the number of rows.
impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Text(s) => f.write_str(s),
            Answer::Choices(c) => f.write_str(&c.join("、")),
            Answer::Rows(r) => write!(f, "{}人", r.len()),
        }
    }
}

impl From<&str> for Answer {
    fn from(s: &str) -> Answer {
        Answer::Text(s.to_string())
    }
}

impl From<String> for Answer {
    fn from(s: String) -> Answer {
        Answer::Text(s)
    }
}

/// A required or optional material of the item's guide with the pages captured for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialPages {
    /// The material's key in the item's guide.
    pub key: String,
    pub pages: Vec<AttachmentRef>,
}

/// A case as the village sends it to the town centre. Immutable once sealed; a correction
/// produces the next `version` of the same `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSubmission {
    pub id: CaseId,
    /// 1 for the first submission, +1 for each resubmission after a 补正.
    pub version: u32,
    /// Item code, e.g. `V11`.
    pub item: String,
    /// Village code of the service point.
    pub village: String,
    pub applicant: Applicant,
    /// Answers to the item's form fields, by field key.
    #[serde(default)]
    pub answers: BTreeMap<String, Answer>,
    #[serde(default)]
    pub materials: Vec<MaterialPages>,
    pub responsible: AgentRef,
    /// The published catalog version the item's definition was taken from; 0 for cases made before
    /// catalogs were versioned (they read the first version).
    #[serde(default)]
    pub catalog_version: u32,
    /// When the agent sealed this version.
    pub sealed_at: DateTime<Utc>,
}

/// How a finished result reaches the resident (办件邮寄 and friends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Delivery {
    /// 自取: the resident collects it at the town centre.
    SelfPickup,
    /// 邮寄: mailed, with the carrier's tracking number.
    Mail {
        carrier: String,
        tracking_number: String,
    },
    /// 代办员送达: the village agent brings it.
    AgentDelivery,
}

impl Delivery {
    pub fn label(&self) -> String {
        match self {
            Delivery::SelfPickup => "自取".to_string(),
            Delivery::Mail {
                carrier,
                tracking_number,
            } => format!("邮寄（{carrier} {tracking_number}）"),
            Delivery::AgentDelivery => "代办员送达".to_string(),
        }
    }
}

/// One missing or faulty material or field in a 补正 request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingItem {
    /// A material key or a form field key of the item.
    pub key: String,
    /// What is wrong and what to bring, in Chinese.
    pub note: String,
}

/// A town decision or event on a case, as carried back to the village (changes feed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// The town centre has the case in its inbox.
    Received,
    /// 受理; the deadline is computed from this date.
    Accepted {
        deadline: NaiveDate,
    },
    /// 补正, with everything missing listed at once.
    CorrectionRequested {
        missing: Vec<MissingItem>,
        note: String,
    },
    /// 不予受理.
    Refused {
        reason: String,
    },
    /// 转县.
    Forwarded {
        note: String,
    },
    /// 办结.
    Completed {
        result: String,
        delivery: Delivery,
    },
    Delivered,
    Rated,
}

impl Decision {
    /// The state a case is in after this decision.
    pub fn resulting_state(&self) -> CaseState {
        match self {
            Decision::Received => CaseState::Received,
            Decision::Accepted { .. } => CaseState::Accepted,
            Decision::CorrectionRequested { .. } => CaseState::CorrectionRequested,
            Decision::Refused { .. } => CaseState::Refused,
            Decision::Forwarded { .. } => CaseState::Forwarded,
            Decision::Completed { .. } => CaseState::Completed,
            Decision::Delivered => CaseState::Delivered,
            Decision::Rated => CaseState::Rated,
        }
    }
}

/// A decision stamped with who made it and when, for timelines and the changes feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    pub case_id: CaseId,
    /// The case version the decision applies to.
    pub version: u32,
    pub decision: Decision,
    /// Staff member or system that made it.
    pub by: String,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_match_serde() {
        for st in CaseState::ALL {
            assert_eq!(CaseState::parse(st.as_str()), Some(st));
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
    }

    #[test]
    fn delivery_is_tagged() {
        let d = Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: "1234".into(),
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["method"], "mail");
        assert_eq!(serde_json::from_value::<Delivery>(v).unwrap(), d);
    }

    #[test]
    fn a_submission_from_before_repeat_groups_still_reads() {
        // Stored and sent before answers could be lists and before catalogs had versions.
        let old = r#"{"id":"140423100201-20261101-ABC234-0001","version":1,"item":"V11",
            "village":"140423100201","applicant":{"name":"张三","id_number":"x","phone":"1"},
            "answers":{"household_size":"3"},"materials":[],
            "responsible":{"device_id":"ABC234","village":"140423100201"},
            "sealed_at":"2026-11-01T02:00:00Z"}"#;
        let sub: CaseSubmission = serde_json::from_str(old).unwrap();
        assert_eq!(sub.catalog_version, 0);
        assert_eq!(sub.answers["household_size"], Answer::Text("3".into()));
    }

    #[test]
    fn answers_keep_their_shape_through_json() {
        let answers: BTreeMap<String, Answer> = [
            ("a".to_string(), Answer::Text("是".into())),
            (
                "b".to_string(),
                Answer::Choices(vec!["低保".into(), "残疾".into()]),
            ),
            (
                "c".to_string(),
                Answer::Rows(vec![BTreeMap::from([(
                    "name".to_string(),
                    "李四".to_string(),
                )])]),
            ),
        ]
        .into_iter()
        .collect();
        let json = serde_json::to_string(&answers).unwrap();
        let back: BTreeMap<String, Answer> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, answers);
        // An empty list has no shape to keep; both readings are empty answers.
        let empty: Answer = serde_json::from_str("[]").unwrap();
        assert!(empty.is_empty() && empty.rows().is_empty() && empty.choices().is_empty());
    }
}
