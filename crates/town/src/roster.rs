//! The county's roster (人员与设备): per town, its staff accounts and tablets, and per village its
//! agents' phones with their open cases; a lost phone or a departed agent's device is revoked
//! from here. Behind the supervisor login, every form with the session's CSRF token, audited.

use std::collections::BTreeMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use bianmin_protocol::sync::DeviceRole;
use maud::{html, Markup};
use serde::Deserialize;

use crate::audit::AuditDraft;
use crate::error::blocking;
use crate::feedback::csrf_token;
use crate::oversight::session;
use crate::page::{frame_with, internal, message_page};
use crate::store::{DeviceRecord, StaffAccount};
use crate::time::china_time;
use crate::AppState;

/// The routes of this module, merged into `app`.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/county/roster", get(page))
        .route("/county/roster/devices/{id}/revoke", post(revoke))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.public_form,
        ))
}

/// One town's people and devices.
#[derive(Default)]
struct TownRoster {
    staff: Vec<StaffAccount>,
    tablets: Vec<(DeviceRecord, bool)>,
    /// Village code → its agents' devices, whether revoked, and their open cases.
    villages: BTreeMap<String, Vec<(DeviceRecord, bool, usize)>>,
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let st = state.clone();
    let loaded = blocking(move || {
        let devices = st.store.devices()?;
        let mut revoked = Vec::with_capacity(devices.len());
        for d in &devices {
            revoked.push(d.revoked || st.admin.is_revoked(&d.id)?);
        }
        Ok((
            devices,
            revoked,
            st.admin.staff_accounts()?,
            // Counted by the store's index (counters on sled), not by reading every case.
            st.store.open_cases_by_device()?,
        ))
    })
    .await;
    let (devices, revoked, staff, open) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    let mut towns: BTreeMap<String, TownRoster> = BTreeMap::new();
    for a in staff.into_iter().filter(|a| a.active) {
        towns.entry(a.town.clone()).or_default().staff.push(a);
    }
    for (d, r) in devices.into_iter().zip(revoked) {
        let t = towns.entry(d.town.clone()).or_default();
        match (d.role, d.village.clone()) {
            (DeviceRole::Agent, Some(v)) => {
                let n = open.get(d.id.as_str()).copied().unwrap_or(0) as usize;
                t.villages.entry(v).or_default().push((d, r, n));
            }
            _ => t.tablets.push((d, r)),
        }
    }
    let csrf = csrf_token(&token);
    let body = render(&state, &name, &csrf, &towns);
    (
        [(header::CACHE_CONTROL, "no-store")],
        frame_with("人员与设备", true, body),
    )
        .into_response()
}

fn device_row(csrf: &str, d: &DeviceRecord, revoked: bool, open: Option<usize>) -> Markup {
    html! {
        tr id={ "device-" (d.id) } {
            td { (d.person) } td { (d.id) } td { (china_time(d.enrolled_at)) }
            @if let Some(n) = open { td { (n) } }
            td {
                @if revoked { span.bad.status { "已停用" } }
                @else {
                    span.ok.status { "在用" }
                    form method="post" action={ "/county/roster/devices/" (d.id) "/revoke" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button.narrow type="submit" { "停用此设备" }
                    }
                }
            }
        }
    }
}

fn render(state: &AppState, who: &str, csrf: &str, towns: &BTreeMap<String, TownRoster>) -> Markup {
    let divisions = state.divisions();
    html! {
        div.card {
            h1 { "人员与设备" }
            p.muted { "当前用户：" (who) "　" a href="/county" { "返回监管首页" } }
            p.muted { "设备丢失或代办员离岗时，请停用其设备：停用后该设备的一切请求都被拒绝。" }
        }
        @if towns.is_empty() { div.card { p.muted { "尚无登记的人员或设备。" } } }
        @for (code, t) in towns {
            div.card id={ "town-" (code) } {
                h2 { (divisions.town(code).map(|t| t.name.as_str()).unwrap_or(code)) "（" (code) "）" }
                h2 { "镇便民服务中心工作人员" }
                @if t.staff.is_empty() { p.muted { "未设工作人员账号：平板上的操作只记录登记平板的人。" } }
                @else {
                    table.staff { tr { th { "姓名" } th { "开通时间" } }
                        @for a in &t.staff { tr { td { (a.name) } td { (china_time(a.created_at)) } } }
                    }
                }
                h2 { "镇平板" }
                @if t.tablets.is_empty() { p.muted { "无" } }
                @else {
                    table { tr { th { "登记人" } th { "设备" } th { "登记时间" } th { "状态" } }
                        @for (d, r) in &t.tablets { (device_row(csrf, d, *r, None)) }
                    }
                }
                h2 { "村代办员" }
                @if t.villages.is_empty() { p.muted { "无" } }
                @for (v, ds) in &t.villages {
                    p { strong { (divisions.village_full_name(v).unwrap_or_else(|| v.clone())) } }
                    table { tr { th { "代办员" } th { "设备" } th { "登记时间" } th { "在办件" } th { "状态" } }
                        @for (d, r, n) in ds { (device_row(csrf, d, *r, Some(*n))) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// POST /county/roster/devices/{id}/revoke: stops the device at once (the same refusal as
/// `bianmin-town revoke`) and marks its record, with an audit entry naming the supervisor.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if form.map(|Form(f)| f.csrf).unwrap_or_default() != csrf_token(&token) {
        return message_page(
            StatusCode::FORBIDDEN,
            "提交失败",
            "页面已失效，请刷新后重试。",
        );
    }
    let st = state.clone();
    let done = blocking(move || {
        let Some(mut d) = st.store.device(&id)? else {
            return Ok(false);
        };
        // The admin record first: from this moment every request of the device is refused.
        st.admin.revoke(&d.id)?;
        d.revoked = true;
        let audit = AuditDraft::new(
            &format!("supervisor:{name}"),
            "revoke_device",
            None,
            format!("device {} ({})", d.id, d.person),
        );
        st.store.put_device(&d, audit)?;
        Ok(true)
    })
    .await;
    match done {
        Ok(true) => Redirect::to("/county/roster").into_response(),
        Ok(false) => message_page(StatusCode::NOT_FOUND, "没有这个设备", "该设备未登记。"),
        Err(e) => internal(e),
    }
}
