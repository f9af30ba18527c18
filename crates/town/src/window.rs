//! 窗口收件: town staff take in a case at the town centre's window on a tablet. The tablet makes
//! the case with the phone's own flow (guide → form → capture → 初审 → seal), uploads its pages
//! like a phone (held for the tablet's town), then sends it here with the clerk's PIN; the case
//! enters the store directly as 已接收, with the PIN-checked clerk recorded as the person who took
//! it in and stays responsible (首问负责), and is handled from the inbox like any other case.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Extension, Json, Router};
use bianmin_engine::case::Case;
use bianmin_engine::number::CaseNumber;
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::window::WindowIntake;
use bianmin_protocol::{Decision, DecisionEvent};
use chrono::Utc;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::digest::is_sha256;
use crate::error::{blocking, ApiError};
use crate::routes::{sign_receipt, submission_sha256, town_precheck};
use crate::store::{DeviceRecord, StoredCase, VersionRecord};
use crate::AppState;

/// The window routes, merged into the authenticated API.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/window/cases/{id}", put(intake))
}

/// Whose uploads a device's pages count as: a village phone's its village's, a town tablet's
/// (pages of window cases) its town's. A case may only name pages its sender's holder has.
pub fn upload_holder(d: &DeviceRecord) -> String {
    match d.role {
        DeviceRole::Agent => d.village.clone().unwrap_or_default(),
        DeviceRole::Staff => d.town.clone(),
    }
}

/// Everything about a window intake that does not depend on stored state: the case is the
/// tablet's (number and responsible), for a village of the tablet's town, of a known item.
fn check(
    state: &AppState,
    d: &DeviceRecord,
    path_id: &str,
    w: &WindowIntake,
) -> Result<(), ApiError> {
    let sub = &w.submission;
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
    if sub.version != 1 {
        return Err(ApiError::conflict(
            "window_version",
            "a window case is taken in once, as version 1",
        ));
    }
    let in_town = state
        .divisions()
        .village(&sub.village)
        .is_some_and(|(t, _)| t.code == d.town);
    if !in_town {
        return Err(ApiError::forbidden(
            "a window case must be for a village of this tablet's town",
        ));
    }
    if number.village != sub.village
        || number.device != d.id
        || sub.responsible.device_id != d.id
        || sub.responsible.village != sub.village
    {
        return Err(ApiError::forbidden(
            "case number and responsible must be this tablet, for the case's village",
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
    if let Some(p) = sub
        .materials
        .iter()
        .flat_map(|m| &m.pages)
        .find(|p| !is_sha256(&p.sha256))
    {
        return Err(ApiError::bad_request(format!(
            "attachment {} has no valid sha256",
            p.name
        )));
    }
    Ok(())
}

/// PUT /v1/window/cases/{id}: records a window case as 已接收, idempotently by its content.
pub async fn intake(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden(
            "only a town staff device may take in window cases",
        ));
    }
    let w: WindowIntake = serde_json::from_slice(&body).map_err(ApiError::malformed_json)?;
    crate::catalog::published(&state, Some(w.submission.catalog_version.max(1)))
        .await
        .map_err(|_| {
            ApiError::unprocessable(
                "unknown_catalog_version",
                format!(
                    "catalog version {} is not published",
                    w.submission.catalog_version
                ),
            )
        })?;
    check(&state, &d, &id, &w)?;
    // The clerk is whoever's PIN checks out; the case must name that person as responsible.
    let by = crate::staff::acting_person(&state, &d, &w.staff, w.pin.as_deref()).await?;
    let clerk = if w.pin.is_some() {
        w.staff.trim()
    } else {
        d.person.trim()
    };
    if w.submission.responsible.name.trim() != clerk {
        return Err(ApiError::forbidden(
            "the case must name the clerk whose PIN came with it as responsible",
        ));
    }
    let sub = w.submission;
    let holder = upload_holder(&d);
    let pages: Vec<(String, u64)> = sub
        .materials
        .iter()
        .flat_map(|m| &m.pages)
        .map(|p| (p.sha256.clone(), p.bytes))
        .collect();
    let st = state.clone();
    let held: Vec<Option<u64>> = blocking(move || {
        pages
            .iter()
            .map(|(sha, _)| {
                Ok(match st.store.attachment_size(sha)? {
                    Some(n) if st.store.held_by(sha, &holder)? => Some(n),
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
                        "attachment {} is {n} bytes on the server, the case says {}",
                        p.sha256, p.bytes
                    ),
                ))
            }
            None if !missing.contains(&p.sha256) => missing.push(p.sha256.clone()),
            None => {}
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
    let now = Utc::now();
    let town_check = town_precheck(&state, &sub, now);
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let st = state.clone();
    let lookup = id.clone();
    if let Some(sc) = blocking(move || st.store.case(&lookup)).await? {
        return match sc.versions.get(&1) {
            // The same intake again (the tablet never got the answer): the original receipt.
            Some(v) if v.content_sha256 == hash => {
                Ok((StatusCode::OK, Json(v.receipt.clone())).into_response())
            }
            _ => Err(ApiError::conflict(
                "conflict",
                "this case was already received with different content",
            )),
        };
    }
    let mut case = Case::from_submission(&sub, now);
    case.last_decision = Some(Decision::Received);
    // The timeline names the clerk who took the case in at the window, not "town".
    if let Some(h) = case.history.last_mut() {
        h.by = by.clone();
        h.note = "窗口收件".to_string();
    }
    let receipt = sign_receipt(&state, &id, 1, &hash);
    let stored = StoredCase {
        case,
        received_at: now,
        versions: BTreeMap::from([(
            1,
            VersionRecord {
                content_sha256: hash.clone(),
                receipt: receipt.clone(),
            },
        )]),
        corrections: 0,
        town_check: town_check.clone(),
        clock: Default::default(),
        pressed: Vec::new(),
        revision: Default::default(),
        county: None,
    };
    let event = DecisionEvent {
        case_id: id.clone(),
        version: 1,
        decision: Decision::Received,
        by: by.clone(),
        at: now,
    };
    let audit = AuditDraft::new(
        &by,
        "window_intake",
        Some(&id),
        format!(
            "version 1 content {hash}; town precheck: {}",
            match town_check.len() {
                0 => "passed".to_string(),
                n => format!("{n} problems"),
            }
        ),
    );
    let st = state.clone();
    blocking(move || st.store.commit(Some(&stored), &[event], vec![audit])).await?;
    tracing::info!(case = %id, "window case received");
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}
