//! County oversight (县行政审批局督办) and the bad-review loop's staff side.
//!
//! HTML pages under `/county` behind a supervisor login (argon2 password, HttpOnly SameSite=Strict
//! session cookie, a per-session CSRF token in every form), a CSV export, and the JSON routes town
//! staff tablets use for 核实 / 整改 / 回访 with the existing device authentication.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use bianmin_protocol::sync::DeviceRole;
use chrono::{NaiveDate, Utc};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::error::{blocking, ApiError};
use crate::feedback::{
    csrf_token, figures_of, level_label, Figures, FollowUpOutcome, Rectification, Step, StepError,
    StepKind,
};
use crate::page::{form_too_large, frame, frame_with, internal, message_page};
use crate::server::OverTls;
use crate::store::county_lists::{CountyList, ListCursor, ListPage};
use crate::store::session_hash;
use crate::time::{china_time, china_today};
use crate::AppState;

const COOKIE: &str = "bm_county";

/// The routes of this module, merged into `app`.
pub fn routes(state: AppState) -> Router<AppState> {
    let state_for_catalog = state.clone();
    let public = Router::new()
        .route("/r/{case_id}", get(crate::resident::page))
        .route("/r/{case_id}/rate", post(crate::resident::rate))
        .route(
            "/s",
            get(crate::resident_link::lookup_page).post(crate::resident_link::lookup),
        )
        .route("/s/{code}", get(crate::resident_link::page))
        .route("/s/{code}/rate", post(crate::resident_link::rate))
        .route("/s/{code}/add-bad", post(crate::resident_link::add_bad))
        .route("/s/{code}/opt-out", post(crate::resident_link::opt_out))
        .route("/county/login", get(login_page).post(login))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::public,
        ));
    let county = Router::new()
        .route("/county", get(dashboard))
        .route("/county/export.csv", get(export_csv))
        .route("/county/rectifications/{case_id}", post(county_step))
        .route("/county/logout", post(logout));
    // Every public form is a few short fields: refuse bigger bodies before reading them.
    let forms = axum::extract::DefaultBodyLimit::max(state.limits.public_form);
    let (public, county) = (public.layer(forms), county.layer(forms));
    let staff = Router::new()
        .route("/v1/rectifications", get(staff_list))
        .route("/v1/rectifications/{case_id}/steps", post(staff_step))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ));
    public
        .merge(county)
        .merge(crate::county_catalog::routes(&state_for_catalog))
        .merge(crate::roster::routes(&state_for_catalog))
        .merge(crate::rectification_photos::county_routes())
        .merge(crate::rectification_photos::staff_routes(
            state_for_catalog.clone(),
        ))
        .merge(staff)
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The logged-in supervisor and the session token, or a redirect to the login form.
pub(crate) async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, String), Response> {
    let to_login = || Redirect::to("/county/login").into_response();
    let token = cookie_value(headers).ok_or_else(to_login)?;
    let (st, hash) = (state.clone(), session_hash(&token));
    let name = blocking(move || st.store.session(&hash, Utc::now()))
        .await
        .map_err(internal)?
        // A county staff session (of the county inbox) is not a supervisor's.
        .filter(|n| !n.starts_with(crate::county_inbox::SESSION_PREFIX))
        .ok_or_else(to_login)?;
    Ok((name, token))
}

fn login_form(error: Option<&str>) -> Markup {
    frame(
        "县级监管登录",
        html! {
            div.card {
                h1 { "好差评监管 · 登录" }
                @if let Some(e) = error { p.bad { (e) } }
                form method="post" action="/county/login" {
                    label { "账号" input type="text" name="name" required autocomplete="username"; }
                    label { "密码" input type="password" name="password" required autocomplete="current-password"; }
                    button type="submit" { "登录" }
                }
            }
        },
    )
}

async fn login_page() -> Markup {
    login_form(None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `; Secure` when the request came over TLS: the browser then never sends the session cookie
/// over plain HTTP. (Behind a TLS-terminating proxy the town serves plain HTTP and cannot tell.)
fn secure_attr(tls: Option<Extension<OverTls>>) -> &'static str {
    if tls.is_some_and(|Extension(OverTls(t))| t) {
        "; Secure"
    } else {
        ""
    }
}

async fn login(
    State(state): State<AppState>,
    tls: Option<Extension<OverTls>>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return form_too_large(),
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                login_form(Some("请填写账号和密码。")),
            )
                .into_response()
        }
    };
    let name = f.name.trim().to_string();
    if name.chars().count() > crate::feedback::MAX_SUPERVISOR_NAME_CHARS {
        // No account has such a name; refused before the audit entry, which names the account.
        return (
            StatusCode::UNAUTHORIZED,
            login_form(Some("账号或密码不正确。")),
        )
            .into_response();
    }
    let n = name.clone();
    // Argon2 is deliberately slow: keep it off the async workers.
    let st = state.clone();
    let ok = match tokio::task::spawn_blocking(move || {
        crate::feedback::check_supervisor(st.admin.as_ref(), &n, &f.password)
    })
    .await
    {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    let audit = AuditDraft::new(
        &format!("supervisor:{name}"),
        if ok {
            "county_login"
        } else {
            "county_login_failed"
        },
        None,
        "",
    );
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.commit(None, &[], vec![audit])).await {
        return internal(e);
    }
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            login_form(Some("账号或密码不正确。")),
        )
            .into_response();
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let (st, hash, who) = (state.clone(), session_hash(&token), name.clone());
    let expires = Utc::now()
        + chrono::Duration::from_std(crate::feedback::SESSION_TTL).expect("the TTL fits");
    if let Err(e) = blocking(move || st.store.create_session(&hash, &who, expires)).await {
        return internal(e);
    }
    let cookie = format!(
        "{COOKIE}={token}; Path=/county; HttpOnly; SameSite=Strict; Max-Age={}{}",
        crate::feedback::SESSION_TTL.as_secs(),
        secure_attr(tls)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/county")).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Ok((_, token)) = session(&state, &headers).await {
        if form
            .map(|f| f.0.csrf == csrf_token(&token))
            .unwrap_or(false)
        {
            let (st, hash) = (state.clone(), session_hash(&token));
            if let Err(e) = blocking(move || st.store.end_session(&hash)).await {
                return internal(e);
            }
        }
    }
    let cookie = format!(
        "{COOKIE}=; Path=/county; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure_attr(tls)
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/county/login"),
    )
        .into_response()
}

struct Overview {
    figures: Vec<Figures>,
    shared_phones: Vec<crate::warning_signs::SharedPhone>,
    quick_ratings: Vec<crate::warning_signs::QuickRating>,
    overdue: Vec<(String, String, String, String)>,
    /// The cursor of the overdue list's next page (更多), when there is one.
    overdue_next: Option<ListCursor>,
    loops: Vec<Rectification>,
}

/// Rows of one page of the overdue list on /county.
const OVERDUE_PAGE: usize = 50;

/// The query of /county: where the overdue list continues.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    overdue_after: Option<String>,
}

/// The figures and lists of /county; the overdue list's page after `overdue_after` when
/// `with_overdue` (the CSV export has no use for it).
async fn overview(
    state: &AppState,
    with_overdue: bool,
    overdue_after: Option<ListCursor>,
) -> Result<Overview, Response> {
    let st = state.clone();
    let today = china_today();
    // Overdue means a working day has passed since the deadline (the clock's rule).
    let overdue_on = state.calendar().last_working_day(today);
    // Counts and warnings come from the store's case index; only the overdue cases on the page
    // and the rated ones are read whole.
    let (counts, phones, overdue_page, rated, ratings, mut loops) = blocking(move || {
        let mut ratings = st.store.ratings()?;
        ratings.extend(st.store.notices().on_site_ratings()?);
        let mut rated = Vec::with_capacity(ratings.len());
        for r in &ratings {
            rated.extend(st.store.case(&r.case_id)?);
        }
        Ok((
            st.store.village_counts(overdue_on)?,
            st.store
                .shared_phones(crate::warning_signs::SHARED_PHONE_APPLICANTS as u32)?,
            if with_overdue {
                st.store.county_list(
                    &CountyList::Overdue { today: overdue_on },
                    overdue_after.as_ref(),
                    OVERDUE_PAGE,
                )?
            } else {
                ListPage::default()
            },
            rated,
            ratings,
            st.store.rectifications()?,
        ))
    })
    .await
    .map_err(internal)?;
    let figures = figures_of(&state.divisions(), &counts, &ratings, &loops, today);
    let shared_phones = crate::warning_signs::shared_phones_of(phones);
    let quick_ratings = crate::warning_signs::quick_ratings(&rated, &ratings);
    // Most overdue first, as the index orders them.
    let overdue: Vec<_> = overdue_page
        .cases
        .iter()
        .map(|c| {
            (
                c.case.id.clone(),
                state
                    .divisions()
                    .village_full_name(&c.case.village)
                    .unwrap_or_default(),
                state
                    .item_name(c.case.catalog_version, &c.case.item)
                    .unwrap_or_default(),
                c.case.deadline.map(|d| d.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    // Open loops first, the most overdue on top.
    loops.sort_by_key(|l| (l.is_closed(), l.deadline, l.case_id.clone()));
    Ok(Overview {
        figures,
        shared_phones,
        quick_ratings,
        overdue,
        overdue_next: overdue_page.next,
        loops,
    })
}

async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DashboardQuery>,
) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let after = q.overdue_after.as_deref().and_then(ListCursor::decode);
    let o = match overview(&state, true, after).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let csrf = csrf_token(&token);
    let today = china_today();
    let calendar = state.calendar();
    let open = o.loops.iter().filter(|l| !l.is_closed()).count();
    let page = frame_with(
        "好差评监管",
        true,
        html! {
            div.card {
                h1 { "好差评与督办 · 县级监管" }
                p.muted { "当前用户：" (name) "　日期：" (today) "　" a href="/county/catalog" { "事项清单管理" } "　" a href="/county/roster" { "人员与设备" } "　" a href="/county/supervision" { "督办（延期审批、催办）" } }
                form method="post" action="/county/logout" { input type="hidden" name="csrf" value=(csrf); button.narrow type="submit" { "退出" } }
            }
            div.card {
                h2 { "三个百分百与办件指标" }
                p.muted { "评价与满意率只计申请人通过短信链接所作的评价；在代办员手机上扫码所作的现场评价单列，不计入。" }
                p.muted { "联动反馈率＝差评经回访已将核实整改结果反馈给申请人的比例；核实整改率＝差评已核实并整改的比例；回访率＝差评整改后已回访（含未能联系上）的比例。" }
                div.scroll { table id="figures" {
                    tr { th { "区域" } th { "办件" } th { "按时办结率" } th { "超期" } th { "评价" } th { "满意率" } th { "现场评价（不计入）" } th { "差评" } th { "联动反馈率" } th { "核实整改率" } th { "回访率" } }
                    @for f in &o.figures {
                        tr class=[(f.level != "village").then_some("town")] {
                            td { (f.name) } td { (f.cases) } td { (f.on_time_rate()) } td { (f.overdue_now) }
                            td { (f.ratings) } td { (f.satisfaction()) } td.onsite { (f.on_site_ratings) } td { (f.bad) }
                            td.fedback { (f.fed_back_rate()) } td.rectified { (f.rectified_rate()) } td.followed { (f.followed_up_rate()) }
                        }
                    }
                } }
                p { a href="/county/export.csv" { "导出CSV" } }
            }
            div.card id="overdue" {
                h2 { "超期办件（督办）" }
                @if o.overdue.is_empty() { p.muted { "暂无超期办件。" } }
                @else {
                    table { tr { th { "办件编号" } th { "村" } th { "事项" } th { "承诺日期" } }
                        @for (id, v, item, dl) in &o.overdue { tr { td { (id) } td { (v) } td { (item) } td { span.flag { "超期" } " " (dl) } } }
                    }
                }
                @if let Some(next) = &o.overdue_next {
                    p { a.more href={ "/county?overdue_after=" (next.encode()) "#overdue" } { "更多" } }
                }
            }
            div.card id="warnings" {
                h2 { "评价预警" }
                p.muted { "同一代办员为多名不同申请人登记同一手机号，或办件到镇后很快就有评价，可能是代办员自评，请核实。" }
                @if o.shared_phones.is_empty() && o.quick_ratings.is_empty() { p.muted { "暂无预警。" } }
                @if !o.shared_phones.is_empty() {
                    table.shared { tr { th { "代办员" } th { "手机号" } th { "不同申请人" } th { "办件" } }
                        @for w in &o.shared_phones { tr { td { (w.agent) " " span.muted { (w.device) } } td { (w.phone) } td { span.flag { (w.applicants) } } td { (w.cases) } } }
                    }
                }
                @if !o.quick_ratings.is_empty() {
                    table.quick { tr { th { "办件编号" } th { "代办员" } th { "评价方式" } th { "到镇后" } }
                        @for q in &o.quick_ratings { tr { td { (q.case_id) } td { (q.agent) } td { @if q.counted { "短信链接" } @else { "现场评价（不计入）" } } td { span.flag { (q.minutes) "分钟" } } } }
                    }
                }
            }
            div.card {
                h2 { "差评整改（" (open) "件未闭环）" }
                @if o.loops.is_empty() { p.muted { "暂无差评。" } }
                @for l in &o.loops {
                    div.card id={ "loop-" (l.case_id) } {
                        p {
                            strong { (state.divisions().village_full_name(&l.village).unwrap_or_default()) } "　" (level_label(l.level)) br;
                            "办件编号：" (l.case_id) br;
                            "整改期限：" (l.deadline) "　状态："
                            @if l.is_overdue(today) || l.follow_up_overdue(&calendar, today) { span.flag.status { (l.status_label(&calendar, today)) } } @else { span.status { (l.status_label(&calendar, today)) } }
                        }
                        @if !l.comment.is_empty() { p { "群众意见：" (l.comment) } }
                        @if !l.steps.is_empty() {
                            ol.tl { @for s in &l.steps { li { strong { (s.kind.label()) } " " (s.by) " " span.muted { (china_time(s.at)) } br; @if let Some(o) = s.outcome { (o.label()) "。" } (s.notes) @if let Some(d) = s.follow_up_on { br; "约定回访：" (d.format("%Y-%m-%d")) }
                                @if !s.photos.is_empty() { br; span.photos { @for (i, p) in s.photos.iter().enumerate() {
                                    a href={ "/county/rectifications/" (l.case_id) "/photos/" (p) } {
                                        img.thumb src={ "/county/rectifications/" (l.case_id) "/photos/" (p) "?size=thumb" } alt={ (s.kind.label()) "照片" (i + 1) } width="96" height="96";
                                    }
                                } } }
                            } } }
                        }
                        @if let Some(next) = l.next_step() {
                            form method="post" action={ "/county/rectifications/" (l.case_id) } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="step" value=(next.as_str());
                                @if next == StepKind::FollowUp {
                                    label { "回访结果" select name="outcome" {
                                        @for o in FollowUpOutcome::ALL { option value=(o.as_str()) { (o.label()) } }
                                    } }
                                }
                                @if next == StepKind::Rectify {
                                    label { "回访日期（工作日）" input type="date" name="follow_up_on" min=(today.format("%Y-%m-%d").to_string()); }
                                }
                                label { "登记" (next.label()) "情况" textarea name="notes" rows="2" required maxlength="500" {} }
                                button type="submit" { "提交" (next.label()) }
                            }
                        }
                    }
                }
            }
        },
    );
    ([(header::CACHE_CONTROL, "no-store")], page).into_response()
}

#[derive(Debug, Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    notes: String,
    /// A 回访's outcome (`reached` / `unreachable`); absent for other steps.
    #[serde(default)]
    outcome: String,
    /// With a 整改: the 回访 date (`YYYY-MM-DD`), optional.
    #[serde(default)]
    follow_up_on: String,
}

async fn county_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    form: Result<Form<StepForm>, FormRejection>,
) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return form_too_large(),
        Err(_) => return message_page(StatusCode::BAD_REQUEST, "提交失败", "表单内容不正确。"),
    };
    if f.csrf != csrf_token(&token) {
        return message_page(
            StatusCode::FORBIDDEN,
            "提交失败",
            "页面已失效，请刷新后重试。",
        );
    }
    let Some(kind) = StepKind::parse(&f.step) else {
        return message_page(StatusCode::BAD_REQUEST, "提交失败", "未知的整改步骤。");
    };
    let outcome = match (kind, FollowUpOutcome::parse(&f.outcome)) {
        (StepKind::FollowUp, None) => {
            return message_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "提交失败",
                "请选择回访结果。",
            )
        }
        (StepKind::FollowUp, o) => o,
        _ => None,
    };
    // An empty date field schedules nothing; a malformed one is refused, not dropped.
    let follow_up_on = match f.follow_up_on.trim() {
        "" => None,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                return message_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "提交失败",
                    "回访日期格式不正确。",
                )
            }
        },
    };
    match record_step(
        &state,
        &case_id,
        StepFacts {
            kind,
            outcome,
            follow_up_on,
            photos: Vec::new(),
        },
        &format!("县监督员 {name}"),
        &f.notes,
        &format!("supervisor:{name}"),
    )
    .await
    {
        Ok(_) => Redirect::to("/county").into_response(),
        Err(e) => message_page(e.status, "提交失败", &e.message),
    }
}

/// What a step says besides who wrote it and the notes.
struct StepFacts {
    kind: StepKind,
    outcome: Option<FollowUpOutcome>,
    follow_up_on: Option<NaiveDate>,
    photos: Vec<String>,
}

/// Records a loop step and audits it.
async fn record_step(
    state: &AppState,
    case_id: &str,
    facts: StepFacts,
    by: &str,
    notes: &str,
    actor: &str,
) -> Result<Rectification, ApiError> {
    let StepFacts {
        kind,
        outcome,
        follow_up_on,
        photos,
    } = facts;
    if let Some(d) = follow_up_on {
        // A 回访 is a phone call during office hours: on a working day, not in the past.
        if d < china_today() {
            return Err(ApiError::unprocessable(
                "follow_up_date",
                "follow-up date: the day has passed",
            ));
        }
        if !state.calendar().is_working_day(d) {
            return Err(ApiError::unprocessable(
                "follow_up_date",
                "follow-up date: not a working day",
            ));
        }
    }
    let step = Step {
        kind,
        outcome,
        follow_up_on,
        photos,
        by: by.trim().chars().take(80).collect(),
        at: Utc::now(),
        notes: notes
            .trim()
            .chars()
            .take(crate::feedback::MAX_COMMENT_CHARS)
            .collect(),
    };
    let audit = AuditDraft::new(
        actor,
        &format!("rectification_{}", kind.as_str()),
        Some(case_id),
        notes.chars().take(200).collect::<String>(),
    );
    let st = state.clone();
    let id = case_id.to_string();
    let r = tokio::task::spawn_blocking(move || st.store.add_step(&id, step, audit)).await?;
    r.map_err(|e| match e {
        StepError::NotFound => ApiError::not_found("no bad review is open for this case"),
        StepError::Closed => ApiError::conflict("loop_closed", e.to_string()),
        StepError::OutOfOrder { .. } => ApiError::conflict("step_out_of_order", e.to_string()),
        StepError::Empty => ApiError::unprocessable("empty_step", e.to_string()),
        StepError::Outcome => ApiError::unprocessable("follow_up_outcome", e.to_string()),
        StepError::FollowUpDate(_) => ApiError::unprocessable("follow_up_date", e.to_string()),
        StepError::Store(s) => ApiError::from(s),
    })
}

fn csv_field(s: &str) -> String {
    // Quote everything; a leading formula character is neutralised for spreadsheet programs.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

async fn export_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = session(&state, &headers).await {
        return r;
    }
    let o = match overview(&state, false, None).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    // A BOM so that Excel opens the UTF-8 Chinese correctly.
    let mut out = String::from("\u{feff}level,code,name,cases,completed,completed_on_time,on_time_rate,overdue_now,ratings,satisfied,satisfaction,bad_reviews,bad_fed_back,fed_back_rate,verified_and_rectified,rectified_rate,followed_up,followed_up_rate,bad_overdue,on_site_ratings\n");
    for f in &o.figures {
        let cols = [
            f.level.to_string(),
            f.code.clone(),
            f.name.clone(),
            f.cases.to_string(),
            f.completed.to_string(),
            f.completed_on_time.to_string(),
            f.on_time_rate(),
            f.overdue_now.to_string(),
            f.ratings.to_string(),
            f.satisfied.to_string(),
            f.satisfaction(),
            f.bad.to_string(),
            f.bad_fed_back.to_string(),
            f.fed_back_rate(),
            f.bad_verified_and_rectified.to_string(),
            f.rectified_rate(),
            f.bad_followed_up.to_string(),
            f.followed_up_rate(),
            f.bad_overdue.to_string(),
            f.on_site_ratings.to_string(),
        ];
        out.push_str(
            &cols
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"haochaping.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

/// A loop as the staff API shows it.
#[derive(Debug, Serialize)]
pub struct LoopView {
    #[serde(flatten)]
    pub record: Rectification,
    pub level_label: &'static str,
    pub next_step: Option<StepKind>,
    pub overdue: bool,
}

/// GET /v1/rectifications: the bad-review loops of the staff device's town.
async fn staff_list(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
) -> Result<Json<Vec<LoopView>>, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let st = state.clone();
    let all = blocking(move || st.store.rectifications()).await?;
    let today = china_today();
    let villages = state.divisions().villages_of(&d.town);
    Ok(Json(
        all.into_iter()
            .filter(|r| villages.contains(&r.village))
            .map(|r| LoopView {
                level_label: level_label(r.level),
                next_step: r.next_step(),
                overdue: r.is_overdue(today),
                record: r,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct StepRequest {
    pub step: StepKind,
    /// Who did it (the staff member's name).
    pub by: String,
    pub notes: String,
    /// Required on `follow_up` (`reached` / `unreachable`), refused on the other steps.
    #[serde(default)]
    pub outcome: Option<FollowUpOutcome>,
    /// With a 整改: the day the 回访 is scheduled for (a working day, not in the past).
    #[serde(default)]
    pub follow_up_on: Option<NaiveDate>,
    /// Photos uploaded by this town's tablets, by SHA-256 (`rectification_photos::check`).
    #[serde(default)]
    pub photos: Vec<String>,
    /// The unlocked person's PIN: who is recorded is decided by `staff::acting_person`, as for
    /// every other staff action, never by the name alone.
    #[serde(default)]
    pub pin: Option<String>,
}

/// POST /v1/rectifications/{case_id}/steps: 核实 / 整改 / 回访 by a town staff device.
async fn staff_step(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path(case_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<LoopView>, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let req: StepRequest = serde_json::from_slice(&body).map_err(ApiError::malformed_json)?;
    let st = state.clone();
    let id = case_id.clone();
    let existing = blocking(move || st.store.rectification(&id))
        .await?
        .ok_or_else(|| ApiError::not_found("no bad review is open for this case"))?;
    if state
        .divisions()
        .village(&existing.village)
        .is_none_or(|(t, _)| t.code != d.town)
    {
        return Err(ApiError::forbidden("that case is not in this town"));
    }
    let by = crate::staff::acting_person(&state, &d, &req.by, req.pin.as_deref()).await?;
    crate::rectification_photos::check(&state, &crate::window::upload_holder(&d), &req.photos)
        .await?;
    let r = record_step(
        &state,
        &case_id,
        StepFacts {
            kind: req.step,
            outcome: req.outcome,
            follow_up_on: req.follow_up_on,
            photos: req.photos,
        },
        &by,
        &req.notes,
        &d.id,
    )
    .await?;
    let today = china_today();
    Ok(Json(LoopView {
        level_label: level_label(r.level),
        next_step: r.next_step(),
        overdue: r.is_overdue(today),
        record: r,
    }))
}

/// `bianmin-town supervisor add --name NAME`: creates the account and returns its password.
pub fn supervisor_add(
    admin: &dyn crate::store::AdminStore,
    name: &str,
) -> Result<String, crate::feedback::SupervisorError> {
    crate::feedback::add_supervisor(admin, name)
}
