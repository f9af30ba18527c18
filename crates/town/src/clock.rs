//! A case's working-day clock on the town side: pauses for outside steps and extension requests
//! from the tablet (`/v1/cases/{id}/clock`, the person checked by PIN), the county's 督办 page
//! where a supervisor approves or refuses extensions and presses 催办 on overdue cases, and the
//! clock's view for inbox rows, the tablet and the resident pages. The arithmetic and the legal
//! ground are the engine's (`bianmin_engine::deadline::clock`).

use std::path::Path as FsPath;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use bianmin_engine::deadline::clock::{ClockError, Countdown, PauseReason};
use bianmin_engine::deadline::WorkCalendar;
use bianmin_protocol::clock::{
    ClockAction, ClockEntry, ClockPause, ClockRequest, ClockView, PressNote,
};
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::CaseState;
use chrono::{NaiveDate, Utc};
use maud::html;
use serde::Deserialize;
use thiserror::Error;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::error::{blocking, ApiError};
use crate::feedback::csrf_token;
use crate::oversight::session;
use crate::page::{frame_with, internal, message_page};
use crate::store::county_lists::{CountyList, ListCursor};
use crate::store::{Press, StoredCase};
use crate::time::{china_date, china_time, china_today};
use crate::AppState;

/// Working days a case may wait in 已接收 before the inbox flags it, unless `DATA/clock.toml`
/// says otherwise (`received_flag_working_days = 1`).
pub const DEFAULT_RECEIVED_FLAG_DAYS: u32 = 1;

/// Clock settings of a town centre (`DATA/clock.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSettings {
    /// A case still in 已接收 more than this many working days after it arrived is flagged.
    pub received_flag_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockFile {
    #[serde(default = "default_flag_days")]
    received_flag_working_days: u32,
}

fn default_flag_days() -> u32 {
    DEFAULT_RECEIVED_FLAG_DAYS
}

/// `clock.toml` could not be read.
#[derive(Debug, Error)]
#[error("clock.toml: {0}")]
pub struct ClockConfigError(String);

impl ClockSettings {
    /// Reads the optional `DATA/clock.toml`.
    pub fn open(data: &FsPath) -> Result<ClockSettings, ClockConfigError> {
        let received_flag_days = match std::fs::read_to_string(data.join("clock.toml")) {
            Ok(t) => {
                toml::from_str::<ClockFile>(&t)
                    .map_err(|e| ClockConfigError(e.to_string()))?
                    .received_flag_working_days
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_RECEIVED_FLAG_DAYS,
            Err(e) => return Err(ClockConfigError(e.to_string())),
        };
        Ok(ClockSettings { received_flag_days })
    }
}

/// Today's countdown of a case whose clock runs (accepted or forwarded, with a deadline).
pub fn countdown(sc: &StoredCase, today: NaiveDate, cal: &WorkCalendar) -> Option<Countdown> {
    let deadline = sc.case.deadline?;
    sc.case
        .clock_running()
        .then(|| sc.clock.countdown(deadline, today, cal))
}

/// Overdue today: the clock runs, is not paused, and the deadline has passed.
pub fn overdue(sc: &StoredCase, today: NaiveDate, cal: &WorkCalendar) -> bool {
    countdown(sc, today, cal).is_some_and(Countdown::overdue)
}

/// When the case last arrived in 已接收 (its receipt or its resubmission after 补正).
fn received_on(sc: &StoredCase) -> NaiveDate {
    let at = sc
        .case
        .history
        .iter()
        .rev()
        .find(|h| h.to == CaseState::Received)
        .map(|h| h.at)
        .unwrap_or(sc.received_at);
    china_date(at)
}

/// Still in 已接收 more working days after it arrived than the setting allows.
pub fn waiting_too_long(
    sc: &StoredCase,
    today: NaiveDate,
    cal: &WorkCalendar,
    settings: &ClockSettings,
) -> bool {
    sc.case.state == CaseState::Received
        && cal.working_days_between(received_on(sc), today) > i64::from(settings.received_flag_days)
}

/// The stop in progress: a 补正 wait (the clock restarts at the new 受理) or an outside step.
pub fn paused(sc: &StoredCase) -> Option<ClockPause> {
    if sc.case.state == CaseState::CorrectionRequested {
        let h = sc
            .case
            .history
            .iter()
            .rev()
            .find(|h| h.to == CaseState::CorrectionRequested)?;
        return Some(ClockPause {
            reason: PauseReason::Correction.as_str().into(),
            label: PauseReason::Correction.label().into(),
            since: china_date(h.at),
            by: h.by.clone(),
        });
    }
    if !sc.case.clock_running() {
        return None;
    }
    sc.clock.open_pause().map(|p| ClockPause {
        reason: p.reason.as_str().into(),
        label: p.reason.label().into(),
        since: p.on,
        by: p.by.clone(),
    })
}

/// The county's latest 催办.
pub fn pressed(sc: &StoredCase) -> Option<PressNote> {
    sc.pressed.last().map(|p| PressNote {
        by: p.by.clone(),
        at: p.at,
        note: p.note.clone(),
    })
}

/// The clock's history as timeline lines, oldest first.
pub fn entries(sc: &StoredCase) -> Vec<ClockEntry> {
    let mut out = Vec::new();
    for p in &sc.clock.pauses {
        out.push(ClockEntry {
            at: p.at,
            by: p.by.clone(),
            text: format!(
                "暂停计时（{}）：{}。依据：{}",
                p.reason.label(),
                p.note,
                p.reason.legal_basis()
            ),
        });
        if let Some(e) = &p.ended {
            out.push(ClockEntry {
                at: e.at,
                by: e.by.clone(),
                text: format!("恢复计时，办理期限顺延{}个工作日", e.days),
            });
        }
    }
    for e in &sc.clock.extensions {
        out.push(ClockEntry {
            at: e.at,
            by: e.by.clone(),
            text: format!("申请延期{}个工作日：{}", e.days, e.reason),
        });
        if let Some(d) = &e.decision {
            let text = if d.approved {
                format!("延期获批，办理期限延至{}", d.deadline)
            } else {
                format!("延期未获批准：{}", d.note)
            };
            out.push(ClockEntry {
                at: d.at,
                by: d.by.clone(),
                text,
            });
        }
    }
    for p in &sc.pressed {
        out.push(ClockEntry {
            at: p.at,
            by: p.by.clone(),
            text: format!("县级催办（承诺日期{}）：{}", p.deadline, p.note),
        });
    }
    out.sort_by_key(|e| e.at);
    out
}

/// The whole view of a case's clock.
pub fn view(sc: &StoredCase, today: NaiveDate, cal: &WorkCalendar) -> ClockView {
    let c = countdown(sc, today, cal);
    let paused = paused(sc);
    let label = match (&c, &paused) {
        (Some(c), _) => c.label(),
        (None, Some(p)) => format!("{}中，计时暂停", p.label),
        (None, None) => String::new(),
    };
    ClockView {
        case_id: sc.case.id.clone(),
        deadline: sc.case.deadline,
        working_days_left: c.map(Countdown::left),
        label,
        paused,
        extension_pending: sc.clock.pending_extension().is_some(),
        pressed: pressed(sc),
        entries: entries(sc),
    }
}

/// Ends an outside-step pause when a decision stops the clock for good or for a 补正 (which
/// restarts it); called by the case actions.
pub fn on_decision(sc: &mut StoredCase, by: &str) {
    if !sc.case.clock_running() {
        sc.clock.close(by, Utc::now(), china_today());
    }
}

/// The tablet routes of this module, merged into the authenticated API.
pub fn device_routes() -> Router<AppState> {
    Router::new().route("/v1/cases/{id}/clock", get(show).post(act))
}

/// The county routes of this module.
pub fn county_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/county/supervision", get(page))
        .route("/county/cases/{id}/extension", post(decide_extension))
        .route("/county/cases/{id}/press", post(press))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.public_form,
        ))
}

fn clock_error(e: ClockError) -> ApiError {
    let code = match e {
        ClockError::AlreadyPaused => "already_paused",
        ClockError::NotPaused => "not_paused",
        ClockError::NotRunning => "clock_not_running",
        ClockError::NoReason => "empty_reason",
        ClockError::Days => "extension_days",
        ClockError::Pending => "extension_pending",
        ClockError::AlreadyExtended => "already_extended",
        ClockError::NoRequest => "no_extension_request",
    };
    match e {
        ClockError::NoReason | ClockError::Days => ApiError::unprocessable(code, e.to_string()),
        _ => ApiError::conflict(code, e.to_string()),
    }
}

/// GET /v1/cases/{id}/clock: the clock of a case the device may see.
async fn show(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
) -> Result<Json<ClockView>, ApiError> {
    let sc = crate::routes::load_visible(&state, &d, &id).await?;
    Ok(Json(view(&sc, china_today(), &state.calendar())))
}

/// POST /v1/cases/{id}/clock: pause, resume, or ask for an extension (town staff only).
async fn act(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ClockView>, ApiError> {
    let req: ClockRequest = serde_json::from_slice(&body).map_err(ApiError::malformed_json)?;
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let mut sc = crate::routes::load_visible(&state, &d, &id).await?;
    let by = crate::staff::acting_person(&state, &d, &req.staff, req.pin.as_deref()).await?;
    let (now, today, cal) = (Utc::now(), china_today(), state.calendar());
    let deadline = match (sc.case.clock_running(), sc.case.deadline) {
        (true, Some(d)) => d,
        _ => return Err(clock_error(ClockError::NotRunning)),
    };
    let (name, detail) = match &req.action {
        ClockAction::Pause { reason, note } => {
            let reason = PauseReason::parse(reason)
                .filter(|r| PauseReason::OUTSIDE_STEPS.contains(r))
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "unknown_reason",
                        format!("{reason} is not an outside step the clock pauses for"),
                    )
                })?;
            let note: String = note.trim().chars().take(200).collect();
            sc.clock
                .pause(
                    reason,
                    &note,
                    &by,
                    now,
                    today,
                    cal.working_days_between(today, deadline),
                )
                .map_err(clock_error)?;
            ("clock_pause", format!("{}: {note}", reason.as_str()))
        }
        ClockAction::Resume { note } => {
            let mut dl = deadline;
            let days = sc
                .clock
                .resume(&mut dl, &by, now, today, &cal)
                .map_err(clock_error)?;
            sc.case.deadline = Some(dl);
            let note: String = note.trim().chars().take(200).collect();
            (
                "clock_resume",
                format!("moved by {days} working days to {dl}; {note}"),
            )
        }
        ClockAction::RequestExtension { days, reason } => {
            let reason: String = reason.trim().chars().take(200).collect();
            sc.clock
                .request_extension(*days, &reason, &by, now)
                .map_err(clock_error)?;
            (
                "request_extension",
                format!("{days} working days: {reason}"),
            )
        }
    };
    let audit = AuditDraft::new(&by, name, Some(&id), detail);
    let out = view(&sc, today, &cal);
    let st = state.clone();
    blocking(move || st.store.commit(Some(&sc), &[], vec![audit])).await?;
    tracing::info!(case = %id, action = name, "clock action");
    Ok(Json(out))
}

/// One case on the 督办 page.
struct Row {
    id: String,
    village: String,
    item: String,
    sc: StoredCase,
}

/// Rows of one page of each list on the 督办 page.
const LIST_PAGE: usize = 50;

/// Where each list of the 督办 page continues (its cursor), if not at its start.
#[derive(Debug, Default, Deserialize)]
pub struct SupervisionQuery {
    #[serde(default)]
    ext: Option<String>,
    #[serde(default)]
    late: Option<String>,
    #[serde(default)]
    paused: Option<String>,
}

impl SupervisionQuery {
    fn cursor(s: &Option<String>) -> Option<ListCursor> {
        s.as_deref().and_then(ListCursor::decode)
    }

    /// The link to this page with list `which` continued at `next`, the others where they are.
    fn more(&self, which: &str, next: &ListCursor) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("ext", &self.ext),
            ("late", &self.late),
            ("paused", &self.paused),
        ] {
            if name == which {
                parts.push(format!("{name}={}", next.encode()));
            } else if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        format!("/county/supervision?{}", parts.join("&"))
    }
}

async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SupervisionQuery>,
) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (today, cal) = (china_today(), state.calendar());
    // Each list is a page read through the store's index, never every case.
    let overdue_on = cal.last_working_day(today);
    let (st, after) = (
        state.clone(),
        [
            SupervisionQuery::cursor(&q.ext),
            SupervisionQuery::cursor(&q.late),
            SupervisionQuery::cursor(&q.paused),
        ],
    );
    let lists = blocking(move || {
        let [ext, late, paused] = after;
        Ok((
            st.store
                .county_list(&CountyList::Extensions, ext.as_ref(), LIST_PAGE)?,
            st.store.county_list(
                &CountyList::Overdue { today: overdue_on },
                late.as_ref(),
                LIST_PAGE,
            )?,
            st.store
                .county_list(&CountyList::Paused, paused.as_ref(), LIST_PAGE)?,
        ))
    })
    .await;
    let (ext_page, late_page, paused_page) = match lists {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let row = |sc: &StoredCase| Row {
        id: sc.case.id.clone(),
        village: state
            .divisions()
            .village_full_name(&sc.case.village)
            .unwrap_or_default(),
        item: state
            .item_name(sc.case.catalog_version, &sc.case.item)
            .unwrap_or_default(),
        sc: sc.clone(),
    };
    // In the index's order: by case number; the overdue by deadline, then case number.
    let pending: Vec<Row> = ext_page.cases.iter().map(row).collect();
    let late: Vec<Row> = late_page.cases.iter().map(row).collect();
    let stopped: Vec<Row> = paused_page.cases.iter().map(row).collect();
    let csrf = csrf_token(&token);
    let page = frame_with(
        "督办",
        true,
        html! {
            div.card {
                h1 { "督办 · 延期审批与催办" }
                p.muted { "当前用户：" (name) "　日期：" (today) "　" a href="/county" { "返回监管首页" } }
                p.muted { "依据《行政许可法》第四十二条，办理期限经负责人批准可延长十个工作日，并将延长理由告知申请人；每件只可延期一次。" }
            }
            div.card id="extensions" {
                h2 { "待审批的延期申请" }
                @if pending.is_empty() { p.muted { "暂无待审批的延期申请。" } }
                @for r in &pending {
                    @let e = r.sc.clock.pending_extension();
                    div.card id={ "ext-" (r.id) } {
                        p { strong { (r.id) } "　" (r.village) "　" (r.item) br;
                            "当前承诺日期：" (r.sc.case.deadline.map(|d| d.to_string()).unwrap_or_default()) br;
                            @if let Some(e) = e { "申请人：" (e.by) "（" (china_time(e.at)) "）申请延期" (e.days) "个工作日：" (e.reason) }
                        }
                        form method="post" action={ "/county/cases/" (r.id) "/extension" } {
                            input type="hidden" name="csrf" value=(csrf);
                            label { "审批意见" textarea name="note" rows="2" maxlength="200" {} }
                            button type="submit" name="decision" value="approve" { "批准延期" }
                            " "
                            button type="submit" name="decision" value="refuse" { "不予批准" }
                        }
                    }
                }
                @if let Some(next) = &ext_page.next { p { a.more href=(q.more("ext", next)) { "更多" } } }
            }
            div.card id="overdue" {
                h2 { "超期办件（催办）" }
                @if late.is_empty() { p.muted { "暂无超期办件。" } }
                @for r in &late {
                    div.card id={ "late-" (r.id) } {
                        p { strong { (r.id) } "　" (r.village) "　" (r.item) br;
                            "首问负责：" (r.sc.case.responsible.name) "　承诺日期：" (r.sc.case.deadline.map(|d| d.to_string()).unwrap_or_default()) "　"
                            span.flag { (countdown(&r.sc, today, &cal).map(Countdown::label).unwrap_or_default()) }
                            @for p in &r.sc.pressed { br; span.muted { "已催办：" (p.by) " " (china_time(p.at)) " " (p.note) } }
                        }
                        form method="post" action={ "/county/cases/" (r.id) "/press" } {
                            input type="hidden" name="csrf" value=(csrf);
                            label { "催办意见" textarea name="note" rows="2" maxlength="200" required {} }
                            button type="submit" { "催办" }
                        }
                    }
                }
                @if let Some(next) = &late_page.next { p { a.more href=(q.more("late", next)) { "更多" } } }
            }
            div.card id="paused" {
                h2 { "暂停计时的办件" }
                @if stopped.is_empty() { p.muted { "暂无。" } }
                @else {
                    table { tr { th { "办件编号" } th { "村" } th { "事项" } th { "原因" } th { "自" } th { "经办人" } }
                        @for r in &stopped { @if let Some(p) = paused(&r.sc) {
                            tr { td { (r.id) } td { (r.village) } td { (r.item) } td { (p.label) } td { (p.since) } td { (p.by) } }
                        } }
                    }
                }
                @if let Some(next) = &paused_page.next { p { a.more href=(q.more("paused", next)) { "更多" } } }
            }
        },
    );
    ([(header::CACHE_CONTROL, "no-store")], page).into_response()
}

#[derive(Debug, Deserialize)]
pub struct ExtensionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
pub struct PressForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

fn stale_form() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "提交失败",
        "页面已失效，请刷新后重试。",
    )
}

/// POST /county/cases/{id}/extension: a supervisor approves or refuses the waiting request.
async fn decide_extension(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<ExtensionForm>, FormRejection>,
) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Form(f)) = form else {
        return stale_form();
    };
    if f.csrf != csrf_token(&token) {
        return stale_form();
    }
    let approved = match f.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => {
            return message_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "提交失败",
                "请选择批准或不予批准。",
            )
        }
    };
    let note: String = f.note.trim().chars().take(200).collect();
    if !approved && note.is_empty() {
        return message_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "提交失败",
            "不予批准时请填写审批意见。",
        );
    }
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let (st, cal) = (state.clone(), state.calendar());
    let by = format!("supervisor:{name}");
    let done = blocking(move || {
        let Some(mut sc) = st.store.case(&id)? else {
            return Ok(Err(StatusCode::NOT_FOUND));
        };
        let Some(mut deadline) = sc.case.deadline.filter(|_| sc.case.clock_running()) else {
            return Ok(Err(StatusCode::CONFLICT));
        };
        let Ok(days) =
            sc.clock
                .decide_extension(&mut deadline, approved, &note, &name, Utc::now(), &cal)
        else {
            return Ok(Err(StatusCode::CONFLICT));
        };
        sc.case.deadline = Some(deadline);
        let audit = AuditDraft::new(
            &by,
            if approved {
                "approve_extension"
            } else {
                "refuse_extension"
            },
            Some(&id),
            format!("{days} working days, deadline {deadline}; {note}"),
        );
        st.store.commit(Some(&sc), &[], vec![audit])?;
        Ok(Ok(()))
    })
    .await;
    match done {
        Ok(Ok(())) => Redirect::to("/county/supervision").into_response(),
        Ok(Err(StatusCode::NOT_FOUND)) => {
            message_page(StatusCode::NOT_FOUND, "没有这个办件", "该办件不存在。")
        }
        Ok(Err(_)) => message_page(
            StatusCode::CONFLICT,
            "无法审批",
            "该办件没有待审批的延期申请，或已不在办理中。",
        ),
        Err(e) => internal(e),
    }
}

/// POST /county/cases/{id}/press: 催办 on an overdue case; the responsible person's inbox shows
/// it, and the case's clock history and the audit log record it.
async fn press(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<PressForm>, FormRejection>,
) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Form(f)) = form else {
        return stale_form();
    };
    if f.csrf != csrf_token(&token) {
        return stale_form();
    }
    let note: String = f.note.trim().chars().take(200).collect();
    if note.is_empty() {
        return message_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "提交失败",
            "请填写催办意见。",
        );
    }
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let (st, cal) = (state.clone(), state.calendar());
    let done = blocking(move || {
        let Some(mut sc) = st.store.case(&id)? else {
            return Ok(Err(StatusCode::NOT_FOUND));
        };
        let (today, Some(deadline)) = (china_today(), sc.case.deadline) else {
            return Ok(Err(StatusCode::CONFLICT));
        };
        if !overdue(&sc, today, &cal) {
            return Ok(Err(StatusCode::CONFLICT));
        }
        sc.pressed.push(Press {
            by: name.clone(),
            at: Utc::now(),
            note: note.clone(),
            deadline,
        });
        let audit = AuditDraft::new(
            &format!("supervisor:{name}"),
            "press",
            Some(&id),
            format!("overdue since {deadline}: {note}"),
        );
        st.store.commit(Some(&sc), &[], vec![audit])?;
        Ok(Ok(()))
    })
    .await;
    match done {
        Ok(Ok(())) => Redirect::to("/county/supervision").into_response(),
        Ok(Err(StatusCode::NOT_FOUND)) => {
            message_page(StatusCode::NOT_FOUND, "没有这个办件", "该办件不存在。")
        }
        Ok(Err(_)) => message_page(
            StatusCode::CONFLICT,
            "无法催办",
            "只能对正在办理且已超期的办件催办。",
        ),
        Err(e) => internal(e),
    }
}

/// A line for the resident pages while the clock stands still; `None` when it runs.
pub fn resident_note(sc: &StoredCase) -> Option<String> {
    let p = paused(sc)?;
    Some(format!(
        "{}期间暂停计时（自{}起），所需时间不计入办理期限",
        p.label, p.since
    ))
}
