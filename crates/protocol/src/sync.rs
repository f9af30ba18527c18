//! Wire types of the sync protocol between a device and the town centre (see `docs/protocol.md`).
//!
//! Serde data plus the exact bytes that get signed, so the phone, the agent CLI and the server
//! cannot disagree about them. No transport, storage or crypto crate is used here: signing and
//! hashing happen in the engine (client) and in `bianmin-town` (server).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{AgentRef, CaseId, CaseState, Decision, DecisionEvent, Delivery, MissingItem};

/// Header carrying the enrolled device's id.
pub const H_DEVICE: &str = "x-bianmin-device";
/// Header carrying the request time, Unix seconds.
pub const H_TIMESTAMP: &str = "x-bianmin-timestamp";
/// Header carrying a fresh random nonce (hex, at least 16 characters).
pub const H_NONCE: &str = "x-bianmin-nonce";
/// Header carrying the lower-case hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
pub const H_CONTENT_SHA256: &str = "x-bianmin-content-sha256";
/// Header carrying the Ed25519 signature (lower-case hex) of [`signing_string`].
pub const H_SIGNATURE: &str = "x-bianmin-signature";
/// tus-style header: the byte offset of an upload.
pub const H_UPLOAD_OFFSET: &str = "upload-offset";
/// tus-style header: the total length of an upload.
pub const H_UPLOAD_LENGTH: &str = "upload-length";
/// Body hash placeholder allowed only for attachment chunks (PATCH), whose bytes are checked
/// against the attachment's content hash before the upload is acknowledged.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a request's timestamp may be from the server's clock, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// Header on every answer of the town centre: its clock, Unix seconds. A device measures its
/// clock offset from it (`clock_skew`).
pub const H_SERVER_TIME: &str = "x-bianmin-server-time";
/// Header on every error answer: the stable error code of [`ErrorBody::error`], so that answers
/// without a body (HEAD) still say what went wrong.
pub const H_ERROR: &str = "x-bianmin-error";
/// Error code of a signed request whose timestamp is outside the window: the device clock is
/// wrong. The answer carries [`H_SERVER_TIME`]; correct the offset and sign again.
pub const CLOCK_SKEW: &str = "clock_skew";

/// The parts of a request that its signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// Path plus query exactly as sent, e.g. `/v1/changes?cursor=12`.
    pub path_and_query: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub content_sha256: &'a str,
    /// `upload-offset` and `upload-length` headers, empty when absent.
    pub upload_offset: &'a str,
    pub upload_length: &'a str,
}

/// The exact text a device signs for a request. Domain-separated from receipts and resident links.
pub fn signing_string(p: &SignedParts<'_>) -> String {
    format!(
        "bianmin-request/v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        p.method.to_ascii_uppercase(),
        p.path_and_query,
        p.timestamp,
        p.nonce,
        p.content_sha256,
        p.upload_offset,
        p.upload_length
    )
}

/// What an enrolled device may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    /// A village agent's phone: submits and reads its own village's cases.
    Agent,
    /// A town staff tablet: processes the cases of its town's villages.
    Staff,
}

/// Sent once by a new device with the one-time code from the town centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The one-time enrolment code (case and separators are ignored).
    pub code: String,
    /// The device's own six-character base32 code (also used in case numbers).
    pub device_id: String,
    /// The device's Ed25519 public key, lower-case hex (32 bytes). The private key never leaves it.
    pub public_key: String,
    /// Who uses the device (首问负责 records this name).
    #[serde(default)]
    pub person: String,
}

/// The town centre's answer to an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: String,
    pub role: DeviceRole,
    /// The village an agent device serves; `None` for staff.
    pub village: Option<String>,
    /// The town (9-digit code) the device belongs to.
    pub town: String,
    /// Human-readable name of the scope, e.g. `古韩镇南关村`.
    pub scope_name: String,
    /// The server's Ed25519 public key (hex); receipts are verified against it.
    pub server_key: String,
}

/// The signed acknowledgement that the town centre durably holds one version of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub case_id: CaseId,
    pub version: u32,
    /// Lower-case hex SHA-256 of the canonical JSON of the submission.
    pub content_sha256: String,
    pub received_at: DateTime<Utc>,
    /// Ed25519 signature (hex) by the server key over [`Receipt::signing_string`].
    pub signature: String,
}

impl Receipt {
    /// The exact text the server signs.
    pub fn signing_string(&self) -> String {
        format!(
            "bianmin-ack/v1\n{}\n{}\n{}\n{}",
            self.case_id,
            self.version,
            self.content_sha256,
            self.received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
    }
}

/// Where an attachment upload stands (answer to HEAD and PATCH).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOffset {
    pub sha256: String,
    /// Bytes the server holds durably; the next PATCH must start here.
    pub offset: u64,
    /// Declared total length, once known.
    pub length: Option<u64>,
    /// The whole file is stored and its hash verified.
    pub complete: bool,
}

/// One entry of the changes feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEntry {
    /// Monotonic position in the feed; pass the last one seen as the next cursor.
    pub seq: u64,
    pub village: String,
    pub event: DecisionEvent,
}

/// A page of the changes feed after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesPage {
    pub entries: Vec<ChangeEntry>,
    /// The cursor to send next time (the last entry's seq, or the request's cursor if empty).
    pub cursor: u64,
    /// More entries are waiting; ask again at once.
    pub more: bool,
}

/// What town staff do to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TownAction {
    /// 受理; the server computes the deadline from the item's promised days.
    Accept,
    /// 补正, with the complete list of what is missing.
    RequestCorrection {
        missing: Vec<MissingItem>,
        #[serde(default)]
        note: String,
    },
    /// 不予受理.
    Refuse { reason: String },
    /// 转县.
    Forward { note: String },
    /// 办结.
    Complete { result: String, delivery: Delivery },
    /// 已送达: the result reached the resident. Town staff mark any completed case; a village agent
    /// marks only results the town handed to them to bring (代办员送达).
    Deliver {
        #[serde(default)]
        note: String,
    },
}

/// A staff action on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    #[serde(flatten)]
    pub action: TownAction,
    /// The staff member's name, recorded with the decision. On a staff tablet it counts only with
    /// `pin`: the server checks the person's PIN, so a timeline never names someone on the
    /// device's word alone.
    #[serde(default)]
    pub staff: String,
    /// The PIN of `staff`, entered on the tablet when that person took it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// If given, the action is refused (409) unless the case is at this version.
    #[serde(default)]
    pub expected_version: Option<u32>,
}

/// A town staff member signing in on a shared tablet (`POST /v1/staff/unlock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffUnlock {
    pub name: String,
    pub pin: String,
}

/// A town staff member as the tablet's 谁在办理 screen lists them (`GET /v1/staff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub name: String,
    pub town: String,
}

/// A printed notice to print on the town centre's own printer
/// (`POST /v1/cases/{id}/notices/{kind}/print`): who asks, checked by PIN as for an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintRequest {
    /// The staff member printing; counts only with `pin` (as [`ActionRequest::staff`]).
    #[serde(default)]
    pub staff: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// A notice the town's print command took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintedNotice {
    pub case_id: String,
    /// `acceptance`, `correction`, `refusal` or `packet`.
    pub kind: String,
    /// Size of the PDF sent to the printer.
    pub bytes: u64,
    /// Who printed it, as the audit log names them.
    pub by: String,
}

/// The outcome of a staff action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub case_id: CaseId,
    pub version: u32,
    pub state: CaseState,
    pub decision: Decision,
    pub deadline: Option<NaiveDate>,
}

/// One row of the town inbox; personal data masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRow {
    pub case_id: CaseId,
    pub version: u32,
    pub village: String,
    pub village_name: String,
    pub item: String,
    pub item_name: String,
    pub state: CaseState,
    /// Applicant name masked (张*).
    pub applicant: String,
    /// ID number masked to its last four digits.
    pub id_number: String,
    /// 首问负责.
    pub responsible: AgentRef,
    pub received_at: DateTime<Utc>,
    pub deadline: Option<NaiveDate>,
    pub overdue: bool,
    /// Working days left, frozen while the clock is paused; `None` when no clock runs.
    #[serde(default)]
    pub working_days_left: Option<i64>,
    /// The clock's stop in progress (补正, 公示, 鉴定, …).
    #[serde(default)]
    pub paused: Option<crate::clock::ClockPause>,
    /// An extension request waits for the county.
    #[serde(default)]
    pub extension_pending: bool,
    /// Waiting in 已接收 longer than the town's setting allows.
    #[serde(default)]
    pub waiting_too_long: bool,
    /// The county's latest 催办.
    #[serde(default)]
    pub pressed: Option<crate::clock::PressNote>,
    /// The county office has asked the town for more (县要求补正) and waits for its reply.
    #[serde(default)]
    pub county_request: bool,
}

/// One page of the town inbox (`GET /v1/inbox/page`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPage {
    pub rows: Vec<InboxRow>,
    /// Pass as `after=` for the next page; absent on the last page.
    #[serde(default)]
    pub next: Option<String>,
    /// Cases matching the filters, over all pages.
    pub total: u64,
}

/// One stored attachment as listed by the town.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `missing_attachments`, `conflict`, `unauthorized`.
    pub error: String,
    /// English explanation.
    pub message: String,
    /// Content hashes of attachments the server does not hold yet (`missing_attachments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_tagged_and_flattened() {
        let req = ActionRequest {
            action: TownAction::Refuse {
                reason: "不符合条件".into(),
            },
            staff: "王".into(),
            expected_version: None,
            pin: None,
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["action"], "refuse");
        assert_eq!(v["reason"], "不符合条件");
        assert_eq!(serde_json::from_value::<ActionRequest>(v).unwrap(), req);
    }

    #[test]
    fn signing_string_covers_every_part() {
        let p = SignedParts {
            method: "put",
            path_and_query: "/v1/cases/x?a=1",
            timestamp: 5,
            nonce: "n",
            content_sha256: "h",
            upload_offset: "",
            upload_length: "",
        };
        assert_eq!(
            signing_string(&p),
            "bianmin-request/v1\nPUT\n/v1/cases/x?a=1\n5\nn\nh\n\n"
        );
    }
}

/// `GET /sync/catalog[?version=N]`: a published catalog version as a list of content-addressed parts, so
/// a device fetches only the parts it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogManifest {
    /// Published versions count up from 1 and never change once published.
    pub version: u32,
    /// Lower-case hex SHA-256 of the catalog's canonical JSON (the assembled parts).
    pub hash: String,
    /// The server's ed25519 signature (hex) over [`CatalogManifest::signing_string`].
    pub signature: String,
    pub published_at: DateTime<Utc>,
    /// What changed since the previous version, one line per change, in Chinese ("V03 新增材料：…").
    #[serde(default)]
    pub changes: Vec<String>,
    /// The parts in order: `lists`, `contacts`, then `item/V01` … with each part's hash.
    pub parts: Vec<CatalogPartRef>,
}

impl CatalogManifest {
    /// What the server signs: the version and the hash of the whole catalog, so a part swapped in
    /// transit or a replayed older version is refused.
    pub fn signing_string(&self) -> String {
        format!("bianmin-catalog\n{}\n{}", self.version, self.hash)
    }
}

/// One part of a catalog version by name and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPartRef {
    pub name: String,
    /// Lower-case hex SHA-256 of the part's JSON body.
    pub hash: String,
}

/// `POST /sync/catalog/parts`: the bodies of some parts of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPartsRequest {
    pub version: u32,
    pub names: Vec<String>,
}

/// The answer to [`CatalogPartsRequest`], in the order asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPartsResponse {
    pub parts: Vec<CatalogPart>,
}

/// One part's body: JSON of the catalog's lists, its contacts, or one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPart {
    pub name: String,
    pub body: String,
}
