//! The county side of a forwarded case as the town's tablet reads it (`GET /v1/cases/{id}/county`):
//! which office has it, since when, whether it accepted it, what it asks the town for (要求补正)
//! and its decision. The tablet shows this in the case's county box and answers a request with
//! 重新报送县里 (a `forward` action whose note is the town's reply, see `county_inbox`).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bianmin_protocol::county::{CountyStepView, CountyView};
use bianmin_protocol::sync::DeviceRole;

use crate::auth::AuthDevice;
use crate::error::ApiError;
use crate::store::{CountyHandling, CountyStep};
use crate::AppState;

/// The device routes of this module, merged behind the device signature check.
pub fn device_routes() -> Router<AppState> {
    Router::new().route("/v1/cases/{id}/county", get(show))
}

fn step(s: &CountyStep) -> CountyStepView {
    CountyStepView {
        by: s.by.clone(),
        at: s.at,
        note: s.note.clone(),
    }
}

/// The wire view of what the town keeps beside a forwarded case.
pub fn view(h: &CountyHandling) -> CountyView {
    CountyView {
        office: h.receiver.clone(),
        office_name: h.receiver_name.clone(),
        forwarded: CountyStepView {
            by: h.forwarded_by.clone(),
            at: h.forwarded_at,
            note: h.note.clone(),
        },
        accepted: h.accepted.as_ref().map(step),
        deadline: h.deadline,
        request: h.request.as_ref().map(step),
        decided: h.decided.as_ref().map(step),
        status: h.status().to_string(),
    }
}

/// GET /v1/cases/{id}/county: for town staff, the county state of a case they may see; 404
/// `not_forwarded` for a case never sent to the county.
async fn show(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
) -> Result<Json<CountyView>, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let sc = crate::routes::load_visible(&state, &d, &id).await?;
    let h = sc.county.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_forwarded",
            "这个办件没有转县",
        )
    })?;
    Ok(Json(view(h)))
}
