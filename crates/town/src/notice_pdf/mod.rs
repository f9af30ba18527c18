//! Printed documents for the town tablet: 受理通知书, 补正材料通知书, 不予受理通知书 and the case
//! packet for the county, rendered on the server as PDF (krilla, a subset of a system CJK font).
//!
//! `GET /v1/cases/{id}/notices/{kind}` (`acceptance`, `correction`, `refusal`, `packet`) answers
//! `application/pdf` to a town staff tablet of the case's town; each download is audited, since a
//! notice names the applicant in full (it goes to that resident) and the packet carries every page.
//! A notice the case's state does not support is refused with 409 `notice_not_applicable`; a
//! server without a CJK font answers 503 `notice_font_missing` (the tablet says so in Chinese).
//!
//! `POST /v1/cases/{id}/notices/{kind}/print` renders the same PDF and pipes it to the town's
//! own print command (`DATA/printers.toml`, [`crate::printers`]), so the document never lands on
//! the tablet; the person whose PIN came with the request is audited as the one who printed it.
//! A town without a printer answers 503 `printer_not_configured`, a failed or stuck print
//! command 502 `printer_failed` (the detail is in the server log, not the answer).

pub mod content;
pub mod font;
pub mod layout;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bianmin_engine::catalog::Item;
use bianmin_protocol::sync::{DeviceRole, PrintRequest, PrintedNotice};
use bianmin_protocol::{Answer, CaseState, Decision};
use futures_util::StreamExt;
use krilla::image::Image;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::error::{blocking, ApiError};
use crate::store::StoredCase;
use crate::time::{china_date, china_time};
use crate::AppState;
use content::{Facts, MissingLine, NoticeKind, PacketForm};
use layout::Sheet;

/// The routes of this area, behind the device signature check.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/cases/{id}/notices/{kind}", get(notice))
        .route("/v1/cases/{id}/notices/{kind}/print", post(print))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ))
}

/// The staff tablet's case, if it belongs to the tablet's town: 403 for a case of another town,
/// as for every case route.
pub(crate) async fn town_case(
    state: &AppState,
    d: &crate::store::DeviceRecord,
    id: &str,
) -> Result<StoredCase, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let in_town = |village: &str| {
        state
            .divisions()
            .village(village)
            .is_some_and(|(t, _)| t.code == d.town)
    };
    if !in_town(id.split('-').next().unwrap_or("")) {
        return Err(ApiError::forbidden(
            "this device may not see cases of that village",
        ));
    }
    let (st, lookup) = (state.clone(), id.to_string());
    let sc = blocking(move || st.store.case(&lookup))
        .await?
        .ok_or_else(|| ApiError::not_found("no such case"))?;
    if !in_town(&sc.case.village) {
        return Err(ApiError::forbidden(
            "this device may not see cases of that village",
        ));
    }
    Ok(sc)
}

fn not_applicable(kind: NoticeKind, state: CaseState) -> ApiError {
    ApiError::conflict(
        "notice_not_applicable",
        format!(
            "a {} notice does not apply to a case in state {}",
            kind.as_str(),
            state.as_str()
        ),
    )
}

/// The facts every notice names, from the case and the reference data of its catalog version.
fn facts(state: &AppState, sc: &StoredCase, item: Option<&Item>) -> Facts {
    let c = &sc.case;
    let published = state.catalogs.for_case(c.catalog_version);
    let divisions = state.divisions();
    let town_name = divisions
        .village(&c.village)
        .map(|(t, _)| t.name.clone())
        .unwrap_or_default();
    let contact = item
        .and_then(|i| i.guide.as_ref())
        .and_then(|g| {
            published
                .catalog
                .contacts()
                .iter()
                .find(|k| k.key == g.contact)
        })
        .map(|k| (k.label.clone(), k.phone.clone()));
    Facts {
        case_id: c.id.to_string(),
        item_code: c.item.clone(),
        item_name: item
            .map(|i| i.name.clone())
            .unwrap_or_else(|| c.item.clone()),
        item_kind: item.map(|i| i.kind.clone()).unwrap_or_default(),
        applicant: c.applicant.name.clone(),
        received_on: china_date(sc.received_at),
        town_name,
        county_name: divisions.county.name.clone(),
        contact,
    }
}

/// The day (China time) the case last entered `to`, or today.
fn entered_on(sc: &StoredCase, to: CaseState) -> chrono::NaiveDate {
    sc.case
        .history
        .iter()
        .rev()
        .find(|h| h.to == to)
        .map(|h| china_date(h.at))
        .unwrap_or_else(crate::time::china_today)
}

/// How the guide names a key of the 补正 list.
fn missing_name(item: Option<&Item>, key: &str) -> String {
    let guide = item.and_then(|i| i.guide.as_ref());
    if let Some(m) = guide.and_then(|g| g.materials.iter().find(|m| m.key == key)) {
        return format!("{}（{}）", m.name, m.form.label());
    }
    if let Some(f) = guide.and_then(|g| g.fields.iter().find(|f| f.key == key)) {
        return f.label.clone();
    }
    match key {
        "applicant.name" => "申请人姓名".into(),
        "applicant.id_number" => "身份证号码".into(),
        "applicant.phone" => "联系电话".into(),
        "applicant.address" => "住址".into(),
        other => other.to_string(),
    }
}

fn answer_text(item: Option<&Item>, key: &str, a: &Answer) -> String {
    match a {
        Answer::Rows(rows) => {
            let cols = item
                .and_then(|i| i.guide.as_ref())
                .and_then(|g| g.fields.iter().find(|f| f.key == key))
                .map(|f| f.fields.clone())
                .unwrap_or_default();
            rows.iter()
                .enumerate()
                .map(|(i, row)| {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|(k, v)| {
                            let label = cols
                                .iter()
                                .find(|c| &c.key == k)
                                .map(|c| c.label.as_str())
                                .unwrap_or(k);
                            format!("{label}：{v}")
                        })
                        .collect();
                    format!("第{}行 {}", i + 1, cells.join("，"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => other.to_string(),
    }
}

/// A page's bytes as a PDF image (JPEG and PNG, what the phone's scanner writes).
fn page_image(bytes: Vec<u8>) -> Option<Image> {
    let data = std::sync::Arc::new(bytes);
    if data.starts_with(&[0xFF, 0xD8]) {
        Image::from_jpeg(data.into(), true).ok()
    } else if data.starts_with(b"\x89PNG") {
        Image::from_png(data.into(), true).ok()
    } else {
        None
    }
}

async fn read_object(state: &AppState, sha: &str) -> Result<Vec<u8>, ApiError> {
    let mut stream = state
        .objects
        .open(sha)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("attachment {sha} is missing from the store")))?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// The notice of `kind` for a case as PDF: the one renderer behind the download and the print.
async fn render(state: &AppState, sc: &StoredCase, kind: NoticeKind) -> Result<Vec<u8>, ApiError> {
    let published = state.catalogs.for_case(sc.case.catalog_version);
    let item = published.catalog.item(&sc.case.item).cloned();
    let item = item.as_ref();
    let f = facts(state, sc, item);
    let font = font::cjk_font().map_err(|e| {
        tracing::error!(error = %e, "printed notice without a font");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "notice_font_missing",
            "the server has no CJK font for printed notices (Debian package fonts-noto-cjk)",
        )
    })?;
    let mut sheet = Sheet::new(font, format!("{} {}", kind.title(), f.case_id));
    let c = &sc.case;
    match kind {
        NoticeKind::Acceptance => {
            let on = c.accepted_on.ok_or_else(|| not_applicable(kind, c.state))?;
            let days = item.and_then(|i| i.guide.as_ref()).map(|g| g.promised_days);
            content::acceptance(&mut sheet, &f, on, c.deadline, days);
        }
        NoticeKind::Correction => {
            if c.state != CaseState::CorrectionRequested {
                return Err(not_applicable(kind, c.state));
            }
            let (missing, note) = match &c.last_decision {
                Some(Decision::CorrectionRequested { missing, note }) => {
                    (missing.clone(), note.clone())
                }
                _ => (c.correction.clone(), String::new()),
            };
            if missing.is_empty() {
                return Err(not_applicable(kind, c.state));
            }
            let lines: Vec<MissingLine> = missing
                .iter()
                .map(|m| MissingLine {
                    what: missing_name(item, &m.key),
                    note: m.note.clone(),
                })
                .collect();
            let on = entered_on(sc, CaseState::CorrectionRequested);
            content::correction(&mut sheet, &f, on, &lines, &note);
        }
        NoticeKind::Refusal => {
            if c.state != CaseState::Refused {
                return Err(not_applicable(kind, c.state));
            }
            let reason = match &c.last_decision {
                Some(Decision::Refused { reason }) => reason.clone(),
                _ => c
                    .history
                    .iter()
                    .rev()
                    .find(|h| h.to == CaseState::Refused)
                    .map(|h| h.note.clone())
                    .unwrap_or_default(),
            };
            if reason.trim().is_empty() {
                return Err(not_applicable(kind, c.state));
            }
            let on = entered_on(sc, CaseState::Refused);
            content::refusal(&mut sheet, &f, on, &reason);
        }
        NoticeKind::Packet => {
            let guide = item.and_then(|i| i.guide.as_ref());
            let mut answers: Vec<(String, String)> = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            // The guide's order first, then anything the guide does not list (an older form).
            for fd in guide.map(|g| g.fields.as_slice()).unwrap_or_default() {
                if let Some(a) = c.answers.get(&fd.key) {
                    answers.push((fd.label.clone(), answer_text(item, &fd.key, a)));
                    seen.insert(fd.key.clone());
                }
            }
            for (k, a) in &c.answers {
                if !seen.contains(k) {
                    answers.push((k.clone(), answer_text(item, k, a)));
                }
            }
            let material_name = |key: &str| {
                guide
                    .and_then(|g| g.materials.iter().find(|m| m.key == key))
                    .map(|m| m.name.clone())
                    .unwrap_or_else(|| key.to_string())
            };
            let village_name = state
                .divisions()
                .village_full_name(&c.village)
                .unwrap_or_else(|| c.village.clone());
            let timeline: Vec<String> = c
                .history
                .iter()
                .map(|h| {
                    let note = if h.note.is_empty() {
                        String::new()
                    } else {
                        format!("（{}）", h.note)
                    };
                    format!(
                        "{} {} → {} {}{}",
                        china_time(h.at),
                        h.from.label(),
                        h.to.label(),
                        h.by,
                        note
                    )
                })
                .collect();
            let form = PacketForm {
                id_number: &c.applicant.id_number,
                phone: &c.applicant.phone,
                address: &c.applicant.address,
                village_name: &village_name,
                agent: &c.responsible.name,
                state_label: c.state.label(),
                answers,
                materials: c
                    .materials
                    .iter()
                    .map(|m| (material_name(&m.key), m.pages.len()))
                    .collect(),
                town_check: &sc.town_check,
                timeline,
            };
            content::packet_form(&mut sheet, &f, &form);
            for m in &c.materials {
                let name = material_name(&m.key);
                for (i, p) in m.pages.iter().enumerate() {
                    let caption = format!("{name} 第{}页 / 共{}页", i + 1, m.pages.len());
                    let bytes = read_object(state, &p.sha256).await?;
                    match page_image(bytes) {
                        Some(img) => sheet.image_page(&caption, img),
                        None => {
                            sheet.page_break();
                            sheet.para(&caption, layout::BODY, 0);
                            sheet.para(
                                &format!(
                                    "此页（{}，{}）不是可嵌入的 JPEG 或 PNG 图像，请在平板上查看原件。",
                                    p.name, p.mime
                                ),
                                layout::BODY,
                                0,
                            );
                        }
                    }
                }
            }
        }
    }
    // Subsetting the font and compressing the pages is CPU work: off the async workers.
    tokio::task::spawn_blocking(move || sheet.finish())
        .await?
        .map_err(ApiError::internal)
}

fn notice_kind(kind: &str) -> Result<NoticeKind, ApiError> {
    NoticeKind::parse(kind).ok_or_else(|| ApiError::not_found(format!("no notice of kind {kind}")))
}

/// GET /v1/cases/{id}/notices/{kind}: the notice as PDF.
async fn notice(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path((id, kind)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = notice_kind(&kind)?;
    let sc = town_case(&state, &d, &id).await?;
    let pdf = render(&state, &sc, kind).await?;
    let audit = AuditDraft::new(
        &d.id,
        "print_notice",
        Some(&id),
        format!("{} ({} bytes)", kind.as_str(), pdf.len()),
    );
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await?;
    tracing::info!(case = %id, kind = kind.as_str(), bytes = pdf.len(), "notice printed");
    let mut resp = Response::new(Body::from(pdf));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{}.pdf\"",
        sc.case.id,
        kind.as_str()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn printer_not_configured(town: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "printer_not_configured",
        format!("town {town} has no printer in this server's printers.toml"),
    )
}

/// POST /v1/cases/{id}/notices/{kind}/print: the notice on the town centre's own printer.
async fn print(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path((id, kind)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<PrintedNotice>, ApiError> {
    let kind = notice_kind(&kind)?;
    let req: PrintRequest = serde_json::from_slice(&body).map_err(ApiError::malformed_json)?;
    let sc = town_case(&state, &d, &id).await?;
    // Before the PIN's Argon2 and the rendering: without a printer neither is of use.
    if state.printers.command(&d.town).is_none() {
        return Err(printer_not_configured(&d.town));
    }
    let by = crate::staff::acting_person(&state, &d, &req.staff, req.pin.as_deref()).await?;
    let pdf = render(&state, &sc, kind).await?;
    state
        .printers
        .print(&d.town, &pdf)
        .await
        .map_err(|e| match e {
            crate::printers::PrintError::NotConfigured(town) => printer_not_configured(&town),
            e => {
                tracing::error!(case = %id, kind = kind.as_str(), error = %e, "printing a notice failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "printer_failed",
                    "the town's print command did not print the notice (the server log says why)",
                )
            }
        })?;
    let detail = format!(
        "{} ({} bytes) on the town's printer",
        kind.as_str(),
        pdf.len()
    );
    let audit = AuditDraft::new(&by, "print_notice_paper", Some(&id), detail);
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await?;
    tracing::info!(case = %id, kind = kind.as_str(), bytes = pdf.len(), by = %by, "notice sent to the printer");
    Ok(Json(PrintedNotice {
        case_id: sc.case.id.to_string(),
        kind: kind.as_str().to_string(),
        bytes: pdf.len() as u64,
        by,
    }))
}
