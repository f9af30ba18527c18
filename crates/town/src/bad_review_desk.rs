//! The town tablet's 差评 desk: its town's bad reviews with what staff need for 核实, 整改 and the
//! 回访 call (item, the applicant's full phone, the case's timeline, the rating's words, the
//! working-day clock). Steps are recorded through `POST /v1/rectifications/{case_id}/steps`
//! (`oversight`), the same store operation the county page uses.

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use bianmin_protocol::bad_review::{BadReview, ReviewStep, TimelineEntry};
use bianmin_protocol::sync::DeviceRole;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::error::{blocking, ApiError};
use crate::feedback::{level_label, Rectification};
use crate::time::china_today;
use crate::AppState;

/// The routes of this module, behind the device signature check.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/bad-reviews", get(list))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ))
}

/// GET /v1/bad-reviews: the bad reviews of the staff device's town, open loops first and the
/// nearest deadline first. Audited, since each carries the applicant's full phone number.
async fn list(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
) -> Result<Json<Vec<BadReview>>, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let villages = state.divisions().villages_of(&d.town);
    let st = state.clone();
    let loops: Vec<Rectification> = blocking(move || st.store.rectifications())
        .await?
        .into_iter()
        .filter(|l| villages.contains(&l.village))
        .collect();
    let today = china_today();
    let calendar = state.calendar();
    let mut out = Vec::with_capacity(loops.len());
    for l in loops {
        let (st, id) = (state.clone(), l.case_id.clone());
        let (case, rating) =
            blocking(move || Ok((st.store.case(&id)?, st.store.rating(&id)?))).await?;
        // A loop is opened in the same transaction as its rating, on a stored case.
        let (Some(sc), Some(r)) = (case, rating) else {
            tracing::warn!(case = %l.case_id, "bad-review loop without its case or rating");
            continue;
        };
        let item_name = state
            .item_name(sc.case.catalog_version, &sc.case.item)
            .unwrap_or_else(|| sc.case.item.clone());
        out.push(BadReview {
            case_id: l.case_id.clone(),
            village_name: state
                .divisions()
                .village_full_name(&l.village)
                .unwrap_or_default(),
            item_name,
            applicant: sc.case.applicant.name.clone(),
            phone: sc.case.applicant.phone.clone(),
            level: l.level,
            level_label: level_label(l.level).to_string(),
            efficiency: r.efficiency,
            quality: r.quality,
            attitude: r.attitude,
            comment: l.comment.clone(),
            // A 追加差评's loop dates from the addition, not the first (good) rating.
            rated_at: r.added.as_ref().map_or(r.rated_at, |a| a.at),
            deadline: l.deadline,
            working_days_left: calendar.working_days_between(today, l.deadline),
            timeline: sc
                .case
                .history
                .iter()
                .map(|h| TimelineEntry {
                    at: h.at,
                    label: h.to.label().to_string(),
                    note: h.note.clone(),
                })
                .collect(),
            steps: l
                .steps
                .iter()
                .map(|s| ReviewStep {
                    kind: s.kind.as_str().to_string(),
                    by: s.by.clone(),
                    at: s.at,
                    notes: s.notes.clone(),
                    outcome: s.outcome.map(|o| o.as_str().to_string()),
                    follow_up_on: s.follow_up_on,
                    photos: s.photos.clone(),
                })
                .collect(),
            next_step: l.next_step().map(|k| k.as_str().to_string()),
            follow_up_due: l.follow_up_due(),
            follow_up_days_left: l
                .follow_up_due()
                .map(|d| calendar.working_days_between(today, d)),
        });
    }
    out.sort_by(|a, b| {
        (a.next_step.is_none(), a.deadline, &a.case_id).cmp(&(
            b.next_step.is_none(),
            b.deadline,
            &b.case_id,
        ))
    });
    let ids: Vec<&str> = out.iter().map(|b| b.case_id.as_str()).collect();
    let audit = AuditDraft::new(&d.id, "view_bad_reviews", None, ids.join(","));
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await?;
    Ok(Json(out))
}
