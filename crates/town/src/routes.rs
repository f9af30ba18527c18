//! HTTP handlers: enrolment, case submission with signed receipts, resumable attachment upload,
//! the changes feed, and the town staff's inbox and actions.
//!
//! Authorization is decided here, per route, from the authenticated device: an agent device acts
//! only for its village, a staff tablet only for its town's villages. Every write is committed and
//! flushed by the store before the handler answers.

use std::collections::BTreeMap;
use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bianmin_engine::case::{Case, CaseEvent};
use bianmin_engine::number::{check_device, CaseNumber};
use bianmin_engine::validate::{mask_id_number, mask_name};
use bianmin_protocol::sync::{
    ActionRequest, ActionResult, ChangesPage, DeviceRole, EnrolRequest, EnrolResponse, InboxPage,
    InboxRow, Receipt, TownAction, UploadOffset, H_UPLOAD_LENGTH, H_UPLOAD_OFFSET,
};
use bianmin_protocol::{CaseState, CaseSubmission, Decision, DecisionEvent, Delivery};
use chrono::Utc;
use ed25519_dalek::{Signer, VerifyingKey};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::digest::is_sha256;
use crate::error::{blocking, ApiError};
use crate::files::{Finish, Refusal};
use crate::segments::{self, SegmentWriter};
use crate::store::inbox::{self, InboxCursor, InboxFilter, InboxOrder};
use crate::store::partials::{Advance, Begin};
use crate::store::{DeviceRecord, StoredCase, TicketError, VersionRecord};
use crate::time::china_today;
use crate::AppState;

/// The canonical content hash of a submission: SHA-256 of its serde_json serialisation.
pub fn submission_sha256(sub: &CaseSubmission) -> String {
    crate::digest::sha256_hex(&serde_json::to_vec(sub).expect("submissions serialize"))
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::malformed_json)
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Villages a device may see.
fn scope(state: &AppState, d: &DeviceRecord) -> Vec<String> {
    match d.role {
        DeviceRole::Agent => d.village.iter().cloned().collect(),
        DeviceRole::Staff => state.divisions().villages_of(&d.town),
    }
}

fn may_see(state: &AppState, d: &DeviceRecord, village: &str) -> bool {
    match d.role {
        DeviceRole::Agent => d.village.as_deref() == Some(village),
        DeviceRole::Staff => state
            .divisions()
            .village(village)
            .is_some_and(|(t, _)| t.code == d.town),
    }
}

fn require(d: &DeviceRecord, role: DeviceRole) -> Result<(), ApiError> {
    if d.role == role {
        Ok(())
    } else {
        Err(ApiError::forbidden(match role {
            DeviceRole::Agent => "only a village agent device may do this",
            DeviceRole::Staff => "only a town staff device may do this",
        }))
    }
}

fn enrol_response(state: &AppState, d: &DeviceRecord) -> EnrolResponse {
    let scope_name = match &d.village {
        Some(v) => state.divisions().village_full_name(v).unwrap_or_default(),
        None => state
            .divisions()
            .town(&d.town)
            .map(|t| t.name.clone())
            .unwrap_or_default(),
    };
    EnrolResponse {
        device_id: d.id.clone(),
        role: d.role,
        village: d.village.clone(),
        town: d.town.clone(),
        scope_name,
        server_key: hex::encode(state.server_key.verifying_key().to_bytes()),
    }
}

/// Longest name of the person using a device (a Chinese name is two to four characters).
pub const MAX_PERSON_CHARS: usize = 40;

/// POST /v1/enrol: exchanges a one-time code for a registered device key.
///
/// The code is checked before the device id: without a valid code nobody learns whether an id is
/// enrolled (every refusal before that point looks the same).
pub async fn enrol(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let body = body.map_err(|_| ApiError::too_large("enrolment request too large"))?;
    let req: EnrolRequest = parse_json(&body)?;
    check_device(&req.device_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if req.person.chars().count() > MAX_PERSON_CHARS {
        return Err(ApiError::bad_request(format!(
            "person is limited to {MAX_PERSON_CHARS} characters"
        )));
    }
    let key: [u8; 32] = hex::decode(&req.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("public_key must be 32 bytes of hex"))?;
    let key = VerifyingKey::from_bytes(&key)
        .map_err(|_| ApiError::bad_request("public_key is not a valid Ed25519 key"))?;
    // A small-order key (the identity point and its kin) verifies forged signatures under
    // non-strict checks; no honest key generator produces one.
    if key.is_weak() {
        return Err(ApiError::bad_request(
            "public_key is a weak (small-order) Ed25519 key",
        ));
    }
    let st = state.clone();
    let code = req.code.clone();
    let ticket = blocking(move || st.admin.redeem_ticket(&code, Utc::now()))
        .await?
        .map_err(|e: TicketError| ApiError::unauthorized(e.to_string()))?;
    let record = DeviceRecord {
        id: req.device_id.clone(),
        role: ticket.role,
        village: ticket.village.clone(),
        town: ticket.town.clone(),
        public_key: req.public_key.to_ascii_lowercase(),
        person: req.person.clone(),
        enrolled_at: Utc::now(),
        revoked: false,
    };
    let audit = AuditDraft::new(
        &record.id,
        "enrol",
        None,
        format!(
            "{:?} {}",
            record.role,
            record.village.as_deref().unwrap_or(&record.town)
        ),
    );
    let st = state.clone();
    let r = record.clone();
    if !blocking(move || st.store.insert_device(&r, audit)).await? {
        let st = state.clone();
        let code = req.code.clone();
        if let Err(e) = blocking(move || st.admin.restore_ticket(&code)).await {
            // The conflict is still the answer; the agent asks the town for a new code.
            tracing::warn!(error = %e.message, "enrolment code not restored");
        }
        return Err(ApiError::conflict(
            "device_exists",
            "this device id is already enrolled; generate a new one",
        ));
    }
    tracing::info!(device = %record.id, role = ?record.role, "device enrolled");
    Ok(Json(enrol_response(&state, &record)))
}

/// GET /v1/me: who the server thinks this device is.
pub async fn me(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
) -> Json<EnrolResponse> {
    Json(enrol_response(&state, &d))
}

pub(crate) fn sign_receipt(
    state: &AppState,
    case_id: &str,
    version: u32,
    content_sha256: &str,
) -> Receipt {
    let mut r = Receipt {
        case_id: case_id.to_string(),
        version,
        content_sha256: content_sha256.to_string(),
        // Truncated to what the signing string carries, so the stored value re-verifies exactly.
        received_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .expect("now is valid"),
        signature: String::new(),
    };
    r.signature = hex::encode(
        state
            .server_key
            .sign(r.signing_string().as_bytes())
            .to_bytes(),
    );
    r
}

/// Everything about a submission that does not depend on stored state.
fn check_submission(
    state: &AppState,
    d: &DeviceRecord,
    path_id: &str,
    sub: &CaseSubmission,
) -> Result<(), ApiError> {
    if sub.id != path_id {
        return Err(ApiError::bad_request(
            "case id in the body differs from the URL",
        ));
    }
    let number: CaseNumber =
        sub.id
            .parse()
            .map_err(|e: bianmin_engine::number::CaseNumberError| {
                ApiError::bad_request(e.to_string())
            })?;
    if sub.version == 0 {
        return Err(ApiError::bad_request("version starts at 1"));
    }
    if state.divisions().village(&sub.village).is_none() {
        return Err(ApiError::unprocessable(
            "unknown_village",
            format!("unknown village {}", sub.village),
        ));
    }
    if d.village.as_deref() != Some(sub.village.as_str()) || number.village != sub.village {
        return Err(ApiError::forbidden(
            "this device may only submit cases of its own village",
        ));
    }
    if number.device != d.id
        || sub.responsible.device_id != d.id
        || sub.responsible.village != sub.village
    {
        return Err(ApiError::forbidden(
            "case number and responsible agent must be this device",
        ));
    }
    if state
        .catalogs
        .for_case(sub.catalog_version)
        .catalog
        .item(&sub.item)
        .is_none()
    {
        return Err(ApiError::unprocessable(
            "unknown_item",
            format!("unknown item {}", sub.item),
        ));
    }
    for m in &sub.materials {
        for p in &m.pages {
            if !is_sha256(&p.sha256) {
                return Err(ApiError::bad_request(format!(
                    "attachment {} has no valid sha256",
                    p.name
                )));
            }
        }
    }
    Ok(())
}

/// PUT /v1/cases/{id}: idempotent submission by the client-made id.
pub async fn submit_case(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    require(&d, DeviceRole::Agent)?;
    let sub: CaseSubmission = parse_json(&body)?;
    // The case is checked against the definition it was made with, which may have been
    // published by another server or the CLI since this one last looked.
    crate::catalog::published(&state, Some(sub.catalog_version.max(1)))
        .await
        .map_err(|_| {
            ApiError::unprocessable(
                "unknown_catalog_version",
                format!("catalog version {} is not published", sub.catalog_version),
            )
        })?;
    check_submission(&state, &d, &id, &sub)?;
    let pages: Vec<bianmin_protocol::AttachmentRef> = sub
        .materials
        .iter()
        .flat_map(|m| m.pages.iter().cloned())
        .collect();
    let (st, village) = (state.clone(), sub.village.clone());
    // Only a page this village holds is compared: the size of another village's page is
    // none of its business, so such a page is simply missing until the village sends it.
    let held: Vec<Option<u64>> = blocking(move || {
        pages
            .iter()
            .map(|p| {
                Ok(match st.store.attachment_size(&p.sha256)? {
                    Some(n) if st.store.held_by(&p.sha256, &village)? => Some(n),
                    _ => None,
                })
            })
            .collect()
    })
    .await?;
    let mut missing = Vec::new();
    for (p, held) in sub.materials.iter().flat_map(|m| &m.pages).zip(held) {
        match held {
            Some(n) if n == p.bytes => {}
            Some(n) => {
                return Err(ApiError::unprocessable(
                    "attachment_size_mismatch",
                    format!(
                        "attachment {} is {} bytes on the server, the case says {}",
                        p.sha256, n, p.bytes
                    ),
                ))
            }
            None => {
                if !missing.contains(&p.sha256) {
                    missing.push(p.sha256.clone())
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::unprocessable(
            "missing_attachments",
            "upload these attachments first",
        )
        .with_missing(missing));
    }
    let hash = submission_sha256(&sub);
    let town_check = town_precheck(&state, &sub, Utc::now());
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let st = state.clone();
    let lookup = id.clone();
    let existing = blocking(move || st.store.case(&lookup)).await?;
    let now = Utc::now();
    let (stored, action) = match existing {
        None if sub.version == 1 => {
            let mut case = Case::from_submission(&sub, now);
            case.last_decision = Some(Decision::Received);
            let receipt = sign_receipt(&state, &id, 1, &hash);
            let mut versions = BTreeMap::new();
            versions.insert(
                1,
                VersionRecord {
                    content_sha256: hash.clone(),
                    receipt,
                },
            );
            (
                StoredCase {
                    case,
                    received_at: now,
                    versions,
                    corrections: 0,
                    town_check: town_check.clone(),
                    clock: Default::default(),
                    pressed: Vec::new(),
                    revision: Default::default(),
                    county: None,
                },
                "submit",
            )
        }
        None => {
            return Err(ApiError::conflict(
                "unknown_case",
                "a later version was sent for a case the town never received",
            ))
        }
        Some(sc) => {
            if let Some(v) = sc.versions.get(&sub.version) {
                if v.content_sha256 == hash {
                    // The same submission again (a lost answer was retried): the original receipt.
                    return Ok((StatusCode::OK, Json(v.receipt.clone())).into_response());
                }
                return Err(ApiError::conflict(
                    "conflict",
                    "this case version was already received with different content",
                ));
            }
            if sub.version != sc.case.version + 1 || sc.case.state != CaseState::CorrectionRequested
            {
                return Err(ApiError::conflict(
                    "conflict",
                    "a new version is only accepted after a correction request, as the next version number",
                ));
            }
            if sub.item != sc.case.item {
                return Err(ApiError::conflict(
                    "conflict",
                    "a corrected case is the same item; start a new case for another item",
                ));
            }
            let mut sc = sc;
            sc.case = resubmitted(sc.case, &sub, &d.id, now)
                .map_err(|e| ApiError::conflict("invalid_transition", e.to_string()))?;
            let receipt = sign_receipt(&state, &id, sub.version, &hash);
            sc.versions.insert(
                sub.version,
                VersionRecord {
                    content_sha256: hash.clone(),
                    receipt,
                },
            );
            sc.town_check = town_check.clone();
            (sc, "resubmit")
        }
    };
    let receipt = stored.versions[&sub.version].receipt.clone();
    let event = DecisionEvent {
        case_id: id.clone(),
        version: sub.version,
        decision: Decision::Received,
        by: "town".into(),
        at: now,
    };
    let audit = AuditDraft::new(
        &d.id,
        action,
        Some(&id),
        format!(
            "version {} content {}; town precheck: {}",
            sub.version,
            hash,
            match town_check.len() {
                0 => "passed".to_string(),
                n => format!("{n} problems"),
            }
        ),
    );
    let st = state.clone();
    blocking(move || st.store.commit(Some(&stored), &[event], vec![audit])).await?;
    tracing::info!(case = %id, version = sub.version, "case received");
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// The town's own 初审 of a submission, by the definition the case was made under and on the
/// China date it was sealed (the day the resident applied; never later than today, whatever the
/// phone's clock said): one line per problem, as the phone's checklist words it.
pub(crate) fn town_precheck(
    state: &AppState,
    sub: &CaseSubmission,
    now: chrono::DateTime<Utc>,
) -> Vec<String> {
    let published = state.catalogs.for_case(sub.catalog_version);
    let Some(item) = published.catalog.item(&sub.item) else {
        return Vec::new();
    };
    bianmin_engine::validate::precheck(
        item,
        &sub.applicant,
        &sub.answers,
        &sub.materials,
        crate::time::china_date(sub.sealed_at.min(now)),
    )
    .lines()
}

/// The case after its resubmission following a 补正: the content is the submission's (through
/// the one wire-to-model conversion, `Case::from_submission`), and the timeline walks the
/// lifecycle the phone walked (corrected and prechecked, sealed as the next version, received),
/// each step checked by the lifecycle table.
fn resubmitted(
    old: Case,
    sub: &CaseSubmission,
    by: &str,
    now: chrono::DateTime<Utc>,
) -> Result<Case, bianmin_engine::case::TransitionError> {
    let content = Case::from_submission(sub, now);
    // The town's own record of the case stays: its timeline, deadline and decisions, and the
    // responsible agent (首问负责 never changes).
    let mut c = Case {
        version: old.version,
        sealed_versions: old.sealed_versions,
        responsible: old.responsible,
        state: old.state,
        created_at: old.created_at,
        history: old.history,
        accepted_on: old.accepted_on,
        deadline: old.deadline,
        correction: old.correction,
        last_decision: old.last_decision,
        ..content
    };
    c.apply(CaseEvent::PrecheckPassed, by, now)?;
    c.apply(CaseEvent::Seal, by, now)?;
    c.apply(CaseEvent::Town(Decision::Received), "town", now)?;
    if let Some(h) = c.history.last_mut() {
        h.note = format!("resubmitted as version {}", c.version);
    }
    Ok(c)
}

pub(crate) async fn load_visible(
    state: &AppState,
    d: &DeviceRecord,
    id: &str,
) -> Result<StoredCase, ApiError> {
    let st = state.clone();
    let lookup = id.to_string();
    let sc = blocking(move || st.store.case(&lookup)).await?;
    // A case the device may not see and a case that does not exist look alike only where the id
    // itself is out of scope; an id of another village is refused as forbidden.
    let village = id.split('-').next().unwrap_or("");
    if !may_see(state, d, village) {
        return Err(ApiError::forbidden(
            "this device may not see cases of that village",
        ));
    }
    let sc = sc.ok_or_else(|| ApiError::not_found("no such case"))?;
    if !may_see(state, d, &sc.case.village) {
        return Err(ApiError::forbidden(
            "this device may not see cases of that village",
        ));
    }
    Ok(sc)
}

/// GET /v1/cases/{id}: the full case, personal data included (audited).
pub async fn get_case(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
) -> Result<Json<Case>, ApiError> {
    let mut sc = load_visible(&state, &d, &id).await?;
    let audit = AuditDraft::new(&d.id, "view_case", Some(&id), "personal data");
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await?;
    // A village phone keeps its own copy of what it submitted; the number that receives the
    // resident's rating link is not handed back to it (or to another phone of the village).
    if d.role == DeviceRole::Agent {
        sc.case.applicant.phone = crate::warning_signs::mask_phone(&sc.case.applicant.phone);
    }
    Ok(Json(sc.case))
}

/// GET /v1/cases/{id}/attachments/{sha}: one page of a case (audited).
pub async fn get_attachment(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let sc = load_visible(&state, &d, &id).await?;
    let page = sc
        .case
        .materials
        .iter()
        .flat_map(|m| &m.pages)
        .find(|p| p.sha256 == sha)
        .ok_or_else(|| ApiError::not_found("the case has no such attachment"))?
        .clone();
    let stream = state
        .objects
        .open(&sha)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("attachment {sha} is missing from the store")))?;
    let audit = AuditDraft::new(&d.id, "view_attachment", Some(&id), page.name.clone());
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await?;
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_str(&page.mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    Ok(resp)
}

fn upload_headers(resp: &mut Response, u: &UploadOffset) {
    resp.headers_mut()
        .insert(H_UPLOAD_OFFSET, HeaderValue::from(u.offset));
    if let Some(l) = u.length {
        resp.headers_mut()
            .insert(H_UPLOAD_LENGTH, HeaderValue::from(l));
    }
    resp.headers_mut().insert(
        "upload-complete",
        HeaderValue::from_static(if u.complete { "1" } else { "0" }),
    );
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

/// Where the device's upload stands. A page stored from another village counts as not uploaded
/// for this one: its bytes must come again (see `TownStore::held_by`).
async fn current_offset(
    state: &AppState,
    sha: &str,
    village: &str,
) -> Result<UploadOffset, ApiError> {
    let (st, s, v) = (state.clone(), sha.to_string(), village.to_string());
    blocking(move || {
        if let Some(n) = st.store.attachment_size(&s)? {
            if st.store.held_by(&s, &v)? {
                return Ok(UploadOffset {
                    sha256: s,
                    offset: n,
                    length: Some(n),
                    complete: true,
                });
            }
        }
        let (offset, length) = if st.objects.bucket().is_some() {
            st.store
                .partials()
                .partial(&v, &s)?
                .map_or((0, None), |p| (p.offset, Some(p.length)))
        } else {
            st.files.partial_state(&v, &s)
        };
        Ok(UploadOffset {
            sha256: s,
            offset,
            length,
            complete: false,
        })
    })
    .await
}

/// HEAD /v1/attachments/{sha}: where to resume.
pub async fn upload_offset(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    if !is_sha256(&sha) {
        return Err(ApiError::bad_request(
            "attachment id must be a lower-case hex SHA-256",
        ));
    }
    let u = current_offset(&state, &sha, &crate::window::upload_holder(&d)).await?;
    let mut resp = StatusCode::OK.into_response();
    upload_headers(&mut resp, &u);
    Ok(resp)
}

fn header_u64(h: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!("header {name} must be a non-negative integer"))
        })
}

/// PATCH /v1/attachments/{sha}: appends bytes at `Upload-Offset`; verifies the hash at the end.
pub async fn upload_chunk(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !is_sha256(&sha) {
        return Err(ApiError::bad_request(
            "attachment id must be a lower-case hex SHA-256",
        ));
    }
    let offset = header_u64(&headers, H_UPLOAD_OFFSET)?;
    let length = header_u64(&headers, H_UPLOAD_LENGTH)?;
    if length > state.limits.attachment {
        return Err(ApiError::too_large(format!(
            "attachments are limited to {} bytes",
            state.limits.attachment
        )));
    }
    let village = crate::window::upload_holder(&d);
    // Per village (a tablet's per town): another village's upload of the same page is a
    // different upload.
    let mut writer = state.uploads.take(&format!("upload/{village}/{sha}")).await;
    let before = current_offset(&state, &sha, &village).await?;
    if before.complete {
        let mut resp = Json(before.clone()).into_response();
        upload_headers(&mut resp, &before);
        return Ok(resp);
    }
    let bucket = state.objects.bucket();
    let begun = if let Some(bucket) = &bucket {
        if before.length.is_none() {
            sweep_partials(&state, bucket.as_ref()).await?;
        }
        let (st, v, s, dev) = (state.clone(), village.clone(), sha.clone(), d.id.clone());
        let now = Utc::now().timestamp();
        match blocking(move || {
            st.store.partials().begin_partial(
                &v,
                &s,
                length,
                &dev,
                st.limits.open_uploads_per_device,
                now,
            )
        })
        .await?
        {
            Begin::Open(_) => Ok(()),
            Begin::LengthMismatch(l) => Err(Refusal::LengthMismatch(l)),
            Begin::TooManyOpen(n) => Err(Refusal::TooManyOpen(n)),
        }
    } else {
        // One device's new uploads are counted one at a time, so parallel requests cannot
        // all slip under its limit.
        let _device = state.locks.lock(&format!("uploads-of/{}", d.id)).await;
        let (st, v, s, dev) = (state.clone(), village.clone(), sha.clone(), d.id.clone());
        tokio::task::spawn_blocking(move || {
            st.files.begin_upload(
                &v,
                &s,
                length,
                &dev,
                st.limits.open_uploads_per_device,
                st.limits.upload_max_age,
            )
        })
        .await??
    };
    match begun {
        Ok(()) => {}
        Err(Refusal::LengthMismatch(declared)) => {
            return Err(ApiError::conflict(
                "length_mismatch",
                format!("this upload was started with Upload-Length {declared}"),
            )
            .with_offset(before.offset));
        }
        Err(Refusal::TooManyOpen(n)) => {
            return Err(ApiError::conflict(
                "too_many_open_uploads",
                format!("this device already has {n} unfinished uploads; finish them first (unfinished uploads expire)"),
            ));
        }
    }
    if offset != before.offset {
        return Err(ApiError::conflict(
            "offset_mismatch",
            format!("the server holds {} bytes; resume there", before.offset),
        )
        .with_offset(before.offset));
    }
    if let Some(cl) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if offset.checked_add(cl).is_none_or(|end| end > length) {
            return Err(ApiError::too_large("chunk goes past Upload-Length").with_offset(offset));
        }
    }
    // Into the local partial file, or into a segment object of its own when pages go to a bucket.
    let mut sink = match &bucket {
        Some(b) => Sink::Segment(Box::new(SegmentWriter::new(
            b.clone(),
            &village,
            &sha,
            offset,
        ))),
        None => Sink::File(state.files.open_partial(&village, &sha)?),
    };
    let mut written = offset;
    let mut stream = body.into_data_stream();
    let mut broken: Option<String> = None;
    let mut too_long = false;
    // Every wait on the network is bounded: per frame, and for the whole request.
    let request_deadline = tokio::time::Instant::now() + state.limits.upload_request;
    loop {
        let wait = tokio::time::sleep_until(
            request_deadline.min(tokio::time::Instant::now() + state.limits.upload_frame),
        );
        let frame = tokio::select! {
            biased;
            _ = writer.preempted() => {
                broken = Some("a newer attempt for this page took over".into());
                break;
            }
            _ = wait => {
                broken = Some("the connection went silent".into());
                break;
            }
            frame = stream.next() => frame,
        };
        match frame {
            None => break,
            Some(Ok(bytes)) => {
                if written + bytes.len() as u64 > length {
                    too_long = true;
                    break;
                }
                // A newer attempt owns the file from here: not one more byte from this one.
                if writer.taken_over() {
                    broken = Some("a newer attempt for this page took over".into());
                    break;
                }
                let failed = match &mut sink {
                    // Blocking write of one frame (at most a few hundred KiB); appends are in order.
                    Sink::File(file) => {
                        file.write_all(&bytes)?;
                        None
                    }
                    Sink::Segment(w) => w.write(&bytes).await.err(),
                };
                if let Some(e) = failed {
                    // Nothing of this request is committed: the phone resumes where it began.
                    sink.abort().await;
                    return Err(ApiError::internal(e).with_offset(offset));
                }
                written += bytes.len() as u64;
                crate::metrics::METRICS
                    .upload_bytes
                    .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Some(Err(e)) => {
                broken = Some(e.to_string());
                break;
            }
        }
    }
    // Whatever arrived is kept: the client resumes at the byte where the connection broke.
    match sink {
        Sink::File(file) => file.sync_data()?,
        Sink::Segment(w) => {
            let b = bucket.as_ref().expect("segments only with a bucket");
            commit_segment(&state, b.as_ref(), &village, &sha, *w).await?;
        }
    }
    if let Some(e) = broken {
        tracing::info!(%sha, offset = written, reason = %e, "upload interrupted; kept received bytes");
        return Err(ApiError::bad_request("request body was cut off").with_offset(written));
    }
    if too_long {
        return Err(ApiError::too_large("chunk goes past Upload-Length").with_offset(written));
    }
    if written == length {
        let finished = match &bucket {
            Some(b) => finish_segments(&state, b.as_ref(), &village, &sha).await?,
            None => state
                .objects
                .finish(&state.files, &village, &sha)
                .await
                .map_err(ApiError::internal)?,
        };
        match finished {
            Finish::Stored => {
                // Known to the database only once the store holds the verified bytes.
                let (st, s, v) = (state.clone(), sha.clone(), village.clone());
                blocking(move || st.store.add_attachment(&s, length, &v)).await?;
                tracing::info!(%sha, bytes = length, "attachment stored");
                if let Some(b) = &bucket {
                    // Stored and known: its segments are no longer needed by any server.
                    let (st, s, v) = (state.clone(), sha.clone(), village.clone());
                    if let Some(p) = blocking(move || st.store.partials().remove_partial(&v, &s)).await? {
                        segments::delete(b.as_ref(), &p.village, &p.sha, &p.segments).await;
                    }
                }
            }
            Finish::HashMismatch => {
                return Err(ApiError::unprocessable(
                    "hash_mismatch",
                    "the uploaded bytes do not hash to the attachment id; the upload was discarded, start again at 0",
                )
                .with_offset(0))
            }
        }
    }
    let after = current_offset(&state, &sha, &village).await?;
    let mut resp = Json(after.clone()).into_response();
    upload_headers(&mut resp, &after);
    Ok(resp)
}

/// Where an upload request's bytes go.
enum Sink {
    File(std::fs::File),
    // Boxed: the writer carries its hasher and buffers, the file variant a descriptor.
    Segment(Box<SegmentWriter>),
}

impl Sink {
    async fn abort(self) {
        if let Sink::Segment(w) = self {
            (*w).abort().await;
        }
    }
}

/// Stores the segment a request wrote from `start` and commits it in the store. A request that
/// lost the race to another (on this server or another) deletes its segment and answers the
/// offset that won, where the phone resumes.
async fn commit_segment(
    state: &AppState,
    bucket: &dyn object_store::ObjectStore,
    village: &str,
    sha: &str,
    w: SegmentWriter,
) -> Result<(), ApiError> {
    let segment = w.finish().await.map_err(ApiError::internal)?;
    let start = segment.start;
    if segment.len == 0 {
        return Ok(());
    }
    let (st, v, s, seg) = (
        state.clone(),
        village.to_string(),
        sha.to_string(),
        segment.clone(),
    );
    let now = Utc::now().timestamp();
    let advanced = blocking(move || st.store.partials().advance_partial(&v, &s, &seg, now)).await;
    let at = match advanced {
        Ok(Advance::Won(_)) => return Ok(()),
        Ok(Advance::Lost(at)) => at,
        Ok(Advance::Gone) => current_offset(state, sha, village).await?.offset,
        Err(e) => {
            // Not known to be committed: the object stays for the expiry sweep to find.
            return Err(e.with_offset(start));
        }
    };
    segments::delete(bucket, village, sha, std::slice::from_ref(&segment)).await;
    tracing::info!(%sha, start, committed = at, "another request committed these bytes first");
    Err(ApiError::conflict(
        "offset_mismatch",
        format!("the server holds {at} bytes; resume there"),
    )
    .with_offset(at))
}

/// Completes a page from its committed segments; a mismatch forgets the upload and its segments.
async fn finish_segments(
    state: &AppState,
    bucket: &dyn object_store::ObjectStore,
    village: &str,
    sha: &str,
) -> Result<Finish, ApiError> {
    let (st, v, s) = (state.clone(), village.to_string(), sha.to_string());
    let Some(p) = blocking(move || st.store.partials().partial(&v, &s)).await? else {
        // Finished by another request meanwhile, or expired: say where it stands.
        let now = current_offset(state, sha, village).await?;
        if now.complete {
            return Ok(Finish::Stored);
        }
        return Err(ApiError::conflict(
            "offset_mismatch",
            format!("the server holds {} bytes; resume there", now.offset),
        )
        .with_offset(now.offset));
    };
    let finished = segments::finish(bucket, &p)
        .await
        .map_err(ApiError::internal)?;
    if finished == Finish::HashMismatch {
        let (st, v, s) = (state.clone(), village.to_string(), sha.to_string());
        blocking(move || st.store.partials().remove_partial(&v, &s)).await?;
        segments::delete(bucket, &p.village, &p.sha, &p.segments).await;
    }
    Ok(finished)
}

/// Forgets unfinished uploads untouched for the upload expiry, and deletes their segments.
async fn sweep_partials(
    state: &AppState,
    bucket: &dyn object_store::ObjectStore,
) -> Result<(), ApiError> {
    let before = Utc::now().timestamp() - state.limits.upload_max_age.as_secs() as i64;
    let st = state.clone();
    let stale = blocking(move || st.store.partials().take_stale_partials(before)).await?;
    for p in &stale {
        segments::delete(bucket, &p.village, &p.sha, &p.segments).await;
    }
    if !stale.is_empty() {
        tracing::info!(swept = stale.len(), "expired partial uploads removed");
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    #[serde(default)]
    pub cursor: u64,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// GET /v1/changes?cursor=N: decisions on the device's cases after the cursor.
pub async fn changes(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let villages = scope(&state, &d);
    let st = state.clone();
    let (entries, more) = blocking(move || st.store.changes(&villages, q.cursor, limit)).await?;
    let cursor = entries.last().map(|e| e.seq).unwrap_or(q.cursor);
    Ok(Json(ChangesPage {
        entries,
        cursor,
        more,
    }))
}

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    pub village: Option<String>,
    /// Part of a village's full name (古韩镇南关村): the villages in scope whose name contains it.
    #[serde(default)]
    pub village_name: Option<String>,
    pub state: Option<String>,
    #[serde(default)]
    pub overdue: Option<bool>,
    /// Part of a case number or of the applicant's name (matched unmasked here, shown masked).
    #[serde(default)]
    pub q: Option<String>,
    /// `oldest` (default), `newest` or `deadline`.
    #[serde(default)]
    pub order: Option<String>,
    /// The previous page's `next`.
    #[serde(default)]
    pub after: Option<String>,
    /// Rows per page, at most [`inbox::MAX_PAGE`].
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The store filter for an inbox request, checked against the device's town.
fn inbox_filter(
    state: &AppState,
    d: &DeviceRecord,
    q: &InboxQuery,
) -> Result<(InboxFilter, InboxOrder, Option<InboxCursor>), ApiError> {
    require(d, DeviceRole::Staff)?;
    if let Some(v) = &q.village {
        if !may_see(state, d, v) {
            return Err(ApiError::forbidden("that village is not in this town"));
        }
    }
    let want_state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            CaseState::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("unknown state {s}")))?,
        ),
        None => None,
    };
    let order = match q.order.as_deref().filter(|s| !s.is_empty()) {
        Some(o) => InboxOrder::parse(o)
            .ok_or_else(|| ApiError::bad_request(format!("unknown order {o}")))?,
        None => InboxOrder::Oldest,
    };
    let after = match q.after.as_deref().filter(|s| !s.is_empty()) {
        Some(a) => {
            Some(InboxCursor::decode(a).ok_or_else(|| ApiError::bad_request("malformed after="))?)
        }
        None => None,
    };
    let trimmed = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut villages = match &q.village {
        Some(v) => vec![v.clone()],
        None => scope(state, d),
    };
    villages.retain(|v| may_see(state, d, v));
    if let Some(name) = trimmed(&q.village_name) {
        let divisions = state.divisions();
        villages.retain(|v| {
            divisions
                .village_full_name(v)
                .is_some_and(|n| n.contains(&name))
        });
    }
    Ok((
        InboxFilter {
            villages,
            state: want_state,
            overdue: q.overdue,
            today: state.calendar().last_working_day(china_today()),
            search: trimmed(&q.q),
        },
        order,
        after,
    ))
}

/// What a clerk's list shows of a case: personal data masked.
fn inbox_row(
    state: &AppState,
    sc: &StoredCase,
    today: chrono::NaiveDate,
    cal: &bianmin_engine::deadline::WorkCalendar,
) -> InboxRow {
    InboxRow {
        village_name: state
            .divisions()
            .village_full_name(&sc.case.village)
            .unwrap_or_default(),
        item_name: state
            .item_name(sc.case.catalog_version, &sc.case.item)
            .unwrap_or_default(),
        applicant: mask_name(&sc.case.applicant.name),
        id_number: mask_id_number(&sc.case.applicant.id_number),
        overdue: crate::clock::overdue(sc, today, cal),
        working_days_left: crate::clock::countdown(sc, today, cal).map(|c| c.left()),
        paused: crate::clock::paused(sc),
        extension_pending: sc.case.clock_running() && sc.clock.pending_extension().is_some(),
        waiting_too_long: crate::clock::waiting_too_long(sc, today, cal, &state.clock),
        // A 催办 concerns the open case; once decided it stays on the timeline only.
        pressed: crate::clock::countdown(sc, today, cal).and_then(|_| crate::clock::pressed(sc)),
        county_request: sc.case.state == CaseState::Forwarded
            && sc
                .county
                .as_ref()
                .is_some_and(|h| h.request.is_some() && h.decided.is_none()),
        case_id: sc.case.id.clone(),
        version: sc.case.version,
        village: sc.case.village.clone(),
        item: sc.case.item.clone(),
        state: sc.case.state,
        responsible: sc.case.responsible.clone(),
        received_at: sc.received_at,
        deadline: sc.case.deadline,
    }
}

/// Records that the inbox was read: the search words may be a resident's name, so the audit
/// notes that one was made, not what.
async fn audit_inbox_view(
    state: &AppState,
    d: &DeviceRecord,
    rows: usize,
    searched: bool,
) -> Result<(), ApiError> {
    let audit = AuditDraft::new(
        &d.id,
        "view_inbox",
        None,
        format!(
            "{rows} rows (masked){}",
            if searched { ", searched" } else { "" }
        ),
    );
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await
}

/// GET /v1/inbox/page?village=&village_name=&state=&overdue=&q=&order=&after=&limit=: one
/// page of the town's cases, personal data masked, read through the store's index.
pub async fn inbox_page(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Query(q): Query<InboxQuery>,
) -> Result<Json<InboxPage>, ApiError> {
    let (filter, order, after) = inbox_filter(&state, &d, &q)?;
    let limit = q.limit.unwrap_or(50).clamp(1, inbox::MAX_PAGE);
    let searched = filter.search.is_some();
    let st = state.clone();
    let page = blocking(move || st.store.inbox(&filter, order, after.as_ref(), limit)).await?;
    let (today, cal) = (china_today(), state.calendar());
    let rows: Vec<InboxRow> = page
        .cases
        .iter()
        .map(|sc| inbox_row(&state, sc, today, &cal))
        .collect();
    audit_inbox_view(&state, &d, rows.len(), searched).await?;
    Ok(Json(InboxPage {
        rows,
        next: page.next.map(|c| c.encode()),
        total: page.total,
    }))
}

/// GET /v1/inbox?village=&state=&overdue=&q=: every matching case at once, oldest first, for
/// tablets older than `/v1/inbox/page` (walks the same index page by page).
pub async fn inbox(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Query(q): Query<InboxQuery>,
) -> Result<Json<Vec<InboxRow>>, ApiError> {
    let (filter, order, _) = inbox_filter(&state, &d, &q)?;
    let searched = filter.search.is_some();
    let st = state.clone();
    let cases = blocking(move || {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = st
                .store
                .inbox(&filter, order, after.as_ref(), inbox::MAX_PAGE)?;
            all.extend(page.cases);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    })
    .await?;
    let (today, cal) = (china_today(), state.calendar());
    let rows: Vec<InboxRow> = cases
        .iter()
        .map(|sc| inbox_row(&state, sc, today, &cal))
        .collect();
    audit_inbox_view(&state, &d, rows.len(), searched).await?;
    Ok(Json(rows))
}

/// Turns a staff action into the decision it records, checking its content.
fn decide(state: &AppState, sc: &StoredCase, action: &TownAction) -> Result<Decision, ApiError> {
    let published = state.catalogs.for_case(sc.case.catalog_version);
    let item = published.catalog.item(&sc.case.item);
    let guide = item.and_then(|i| i.guide.as_ref());
    Ok(match action {
        TownAction::Accept => {
            let days = guide.map(|g| g.promised_days).ok_or_else(|| {
                ApiError::unprocessable(
                    "no_promised_days",
                    "the item has no guide with promised days",
                )
            })?;
            Case::accept_decision(china_today(), days, &state.calendar())
        }
        TownAction::RequestCorrection { missing, note } => {
            if missing.is_empty() {
                return Err(ApiError::unprocessable(
                    "empty_correction",
                    "a correction request must list everything missing",
                ));
            }
            if sc.corrections >= 1 {
                return Err(ApiError::conflict(
                    "correction_already_requested",
                    "补正 is requested once, with the complete list",
                ));
            }
            let known: Vec<&str> = guide
                .map(|g| {
                    g.materials
                        .iter()
                        .map(|m| m.key.as_str())
                        .chain(g.fields.iter().map(|f| f.key.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            for m in missing {
                let applicant_field = m.key.starts_with("applicant.");
                if !(applicant_field || known.contains(&m.key.as_str())) {
                    return Err(ApiError::unprocessable(
                        "unknown_key",
                        format!("{} is neither a material nor a field of the item", m.key),
                    ));
                }
                if m.note.trim().is_empty() {
                    return Err(ApiError::unprocessable(
                        "empty_note",
                        format!("say what is wrong with {}", m.key),
                    ));
                }
            }
            Decision::CorrectionRequested {
                missing: missing.clone(),
                note: note.clone(),
            }
        }
        TownAction::Refuse { reason } => {
            if reason.trim().is_empty() {
                return Err(ApiError::unprocessable(
                    "empty_reason",
                    "a refusal needs a reason",
                ));
            }
            Decision::Refused {
                reason: reason.clone(),
            }
        }
        TownAction::Forward { note } => Decision::Forwarded { note: note.clone() },
        TownAction::Complete { result, delivery } => {
            if result.trim().is_empty() {
                return Err(ApiError::unprocessable(
                    "empty_result",
                    "completion needs a result",
                ));
            }
            if let Delivery::Mail {
                carrier,
                tracking_number,
            } = delivery
            {
                if carrier.trim().is_empty() || tracking_number.trim().is_empty() {
                    return Err(ApiError::unprocessable(
                        "missing_tracking",
                        "mail delivery needs a carrier and a tracking number",
                    ));
                }
            }
            Decision::Completed {
                result: result.clone(),
                delivery: delivery.clone(),
            }
        }
        TownAction::Deliver { .. } => Decision::Delivered,
    })
}

/// Whether the device may take this action on a case it can see: town staff any action; a village
/// agent only 已送达, and only for a result the town gave them to bring (代办员送达).
fn may_act(d: &DeviceRecord, sc: &StoredCase, action: &TownAction) -> Result<(), ApiError> {
    match (d.role, action) {
        (DeviceRole::Staff, _) => Ok(()),
        (DeviceRole::Agent, TownAction::Deliver { .. }) => {
            if matches!(
                &sc.case.last_decision,
                Some(Decision::Completed {
                    delivery: Delivery::AgentDelivery,
                    ..
                })
            ) {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "a village agent marks delivered only results the town gave them to bring",
                ))
            }
        }
        (DeviceRole::Agent, _) => Err(ApiError::forbidden("only a town staff device may do this")),
    }
}

/// POST /v1/cases/{id}/actions: 受理 / 补正 / 不予受理 / 转县 / 办结 / 已送达.
pub async fn act(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ActionResult>, ApiError> {
    let req: ActionRequest = parse_json(&body)?;
    if !matches!(req.action, TownAction::Deliver { .. }) {
        require(&d, DeviceRole::Staff)?;
    }
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let mut sc = load_visible(&state, &d, &id).await?;
    may_act(&d, &sc, &req.action)?;
    if let Some(v) = req.expected_version {
        if v != sc.case.version {
            return Err(ApiError::conflict(
                "version_changed",
                format!("the case is now at version {}", sc.case.version),
            ));
        }
    }
    // 已送达 again (an agent's phone resending a mark whose answer it never got, or staff and agent
    // both marking it) answers as the first did and records nothing new.
    if matches!(req.action, TownAction::Deliver { .. })
        && matches!(sc.case.state, CaseState::Delivered | CaseState::Rated)
    {
        return Ok(Json(ActionResult {
            case_id: id,
            version: sc.case.version,
            state: sc.case.state,
            decision: Decision::Delivered,
            deadline: sc.case.deadline,
        }));
    }
    crate::county_inbox::town_may(&sc, &req.action)?;
    if let (CaseState::Forwarded, TownAction::Forward { note }) = (sc.case.state, &req.action) {
        // The county asked for more (要求补正) and the town sends the case up again: no new state.
        // The reply is what the county reads of the town's 补正, so it may not be empty.
        if note.trim().is_empty() {
            return Err(ApiError::unprocessable(
                "empty_reply",
                "请写明补正了什么（回复县里的内容）",
            ));
        }
        let by = crate::staff::acting_person(&state, &d, &req.staff, req.pin.as_deref()).await?;
        crate::county_inbox::send_up_again(&mut sc, &by, note, Utc::now());
        let audit = AuditDraft::new(&by, "forward_again", Some(&id), note.clone());
        let result = ActionResult {
            case_id: id.clone(),
            version: sc.case.version,
            state: sc.case.state,
            decision: Decision::Forwarded { note: note.clone() },
            deadline: sc.case.deadline,
        };
        let st = state.clone();
        blocking(move || st.store.commit(Some(&sc), &[], vec![audit])).await?;
        return Ok(Json(result));
    }
    let decision = decide(&state, &sc, &req.action)?;
    let by = crate::staff::acting_person(&state, &d, &req.staff, req.pin.as_deref()).await?;
    let now = Utc::now();
    if let Decision::Forwarded { note } = &decision {
        sc.county = Some(crate::county_inbox::handling_for(
            &state, &sc, &by, note, now,
        )?);
    }
    sc.case
        .apply(CaseEvent::Town(decision.clone()), &by, now)
        .map_err(|e| ApiError::conflict("invalid_transition", e.to_string()))?;
    if matches!(decision, Decision::CorrectionRequested { .. }) {
        sc.corrections += 1;
    }
    crate::clock::on_decision(&mut sc, &by);
    // The decision carries no details; the note (an agent's phone puts the real handover time
    // there, as it may send the mark hours later) stays on the town's timeline.
    if let TownAction::Deliver { note } = &req.action {
        if let Some(h) = sc.case.history.last_mut() {
            h.note = note.trim().chars().take(200).collect();
        }
    }
    let event = DecisionEvent {
        case_id: id.clone(),
        version: sc.case.version,
        decision: decision.clone(),
        by: by.clone(),
        at: now,
    };
    let name = match &req.action {
        TownAction::Accept => "accept",
        TownAction::RequestCorrection { .. } => "request_correction",
        TownAction::Refuse { .. } => "refuse",
        TownAction::Forward { .. } => "forward",
        TownAction::Complete { .. } => "complete",
        TownAction::Deliver { .. } => "deliver",
    };
    let audit = AuditDraft::new(
        &by,
        name,
        Some(&id),
        serde_json::to_string(&decision).unwrap_or_default(),
    );
    let result = ActionResult {
        case_id: id.clone(),
        version: sc.case.version,
        state: sc.case.state,
        decision,
        deadline: sc.case.deadline,
    };
    let st = state.clone();
    blocking(move || st.store.commit(Some(&sc), &[event], vec![audit])).await?;
    tracing::info!(case = %id, action = name, "town action");
    Ok(Json(result))
}
