//! The county inbox (转县): a case the town forwards goes to one county office (the catalog's
//! `receivers`: the administrative-approval service centre by default, or the department that lists
//! the item); that office's staff sign in to these pages with their own accounts, see the form and
//! the materials, and 受理 / 要求补正 (answered by the town sending the case up again) / 办结 /
//! 不予受理. The decision goes back the way every town decision does: onto the case, into the
//! changes feed (the village phone), the audit chain and the timeline, naming the county person.
//!
//! Accounts are like the supervisors' (Argon2 password, a session stored by hash, a CSRF token
//! derived from it) but each is scoped to one office: a case forwarded elsewhere is not found.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use bianmin_engine::case::{Case, CaseEvent, StateChange};
use bianmin_engine::validate::{mask_id_number, mask_name};
use bianmin_protocol::{CaseState, Decision, DecisionEvent, Delivery};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use thiserror::Error;

use crate::audit::AuditDraft;
use crate::error::{blocking, ApiError};
use crate::feedback::csrf_token;
use crate::page::{form_too_large, frame, frame_with, internal, message_page, no_store};
use crate::server::OverTls;
use crate::store::county_lists::{CountyList, ListCursor};
use crate::store::{
    session_hash, AdminStore, CountyHandling, CountyStaff, CountyStep, StoreError, StoredCase,
};
use crate::time::{china_time, china_today};
use crate::AppState;

/// Sessions of county staff are stored under this prefix, so a supervisor session and a county
/// staff session can never stand in for each other (supervisor sessions refuse it).
pub const SESSION_PREFIX: &str = "county-staff\u{1f}";
const COOKIE: &str = "bm_county_staff";
/// Longest county staff login name.
pub const MAX_NAME_CHARS: usize = 40;
/// Longest note, result or reason kept from a form.
const MAX_TEXT_CHARS: usize = 500;

/// Why a county staff account could not be created or changed.
#[derive(Debug, Error)]
pub enum CountyStaffError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a county staff name must be 1 to 40 characters without control characters")]
    BadName,
    #[error("no county office '{0}' in the published catalog (see its receivers)")]
    UnknownReceiver(String),
    #[error("no county staff account named {0}")]
    NotFound(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored password hash is corrupt: {0}")]
    Corrupt(String),
}

/// Creates (or resets) the account of `name` for the office `receiver` (a key of `receivers`, the
/// newest catalog's offices) and returns the new random password, shown once.
pub fn add_staff(
    admin: &dyn AdminStore,
    receivers: &[bianmin_engine::catalog::Receiver],
    name: &str,
    receiver: &str,
) -> Result<String, CountyStaffError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(CountyStaffError::BadName);
    }
    if !receivers.iter().any(|r| r.key == receiver) {
        return Err(CountyStaffError::UnknownReceiver(receiver.to_string()));
    }
    use rand::Rng;
    // 16 characters without look-alikes: easy to type from a printout.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let password: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let salt = SaltString::generate(&mut rng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| CountyStaffError::Hash(e.to_string()))?
        .to_string();
    admin.put_county_staff(&CountyStaff {
        name: name.to_string(),
        receiver: receiver.to_string(),
        password_hash: hash,
        active: true,
        created_at: Utc::now(),
    })?;
    Ok(password)
}

/// Disables an account: it can no longer sign in, and its open sessions stop working.
pub fn disable_staff(admin: &dyn AdminStore, name: &str) -> Result<(), CountyStaffError> {
    let mut s = admin
        .county_staff(name.trim())?
        .ok_or_else(|| CountyStaffError::NotFound(name.trim().to_string()))?;
    s.active = false;
    admin.put_county_staff(&s)?;
    Ok(())
}

/// A hash of no one's password: an unknown name costs the same Argon2 work as a known one.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(b"no county account has this password", &salt)
        .expect("argon2 hashes with its default parameters")
        .to_string()
});

/// The active account whose password this is. Blocking: Argon2 is deliberately slow.
pub fn check_staff(
    admin: &dyn AdminStore,
    name: &str,
    password: &str,
) -> Result<Option<CountyStaff>, CountyStaffError> {
    let account = admin.county_staff(name.trim())?.filter(|s| s.active);
    let hash = account
        .as_ref()
        .map_or(DUMMY_HASH.as_str(), |s| s.password_hash.as_str());
    let parsed = PasswordHash::new(hash).map_err(|e| CountyStaffError::Corrupt(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(account.filter(|_| ok))
}

/// The county person behind a request's session cookie, with the office they work for; a request
/// without a live session (or of a disabled account) is sent to the login form.
pub struct CountyPerson {
    pub account: CountyStaff,
    /// The office's name, from the newest catalog.
    pub office: String,
    token: String,
}

impl CountyPerson {
    /// How timelines, the feed and the audit chain name this person: office and name.
    pub fn label(&self) -> String {
        format!("{}·{}", self.office, self.account.name)
    }
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

impl FromRequestParts<AppState> for CountyPerson {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/county/inbox/login").into_response();
        let token = cookie_value(&parts.headers).ok_or_else(to_login)?;
        let (st, hash) = (state.clone(), session_hash(&token));
        let found = blocking(move || {
            let Some(principal) = st.store.session(&hash, Utc::now())? else {
                return Ok(None);
            };
            let Some(name) = principal.strip_prefix(SESSION_PREFIX) else {
                return Ok(None);
            };
            Ok(st.admin.county_staff(name)?.filter(|s| s.active))
        })
        .await
        .map_err(internal)?;
        let account = found.ok_or_else(to_login)?;
        let office = state
            .catalogs
            .latest()
            .catalog
            .receiver(&account.receiver)
            .map_or_else(|| account.receiver.clone(), |r| r.name.clone());
        Ok(CountyPerson {
            account,
            office,
            token,
        })
    }
}

/// The routes of this module, merged into `app`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let forms = axum::extract::DefaultBodyLimit::max(state.limits.public_form);
    let public = Router::new()
        .route("/county/inbox/login", get(login_page).post(login))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::public,
        ));
    let inbox = Router::new()
        .route("/county/inbox", get(inbox))
        .route("/county/inbox/logout", post(logout))
        .route("/county/inbox/{case_id}", get(case_page))
        .route("/county/inbox/{case_id}/decide", post(decide))
        .route("/county/inbox/{case_id}/pages/{sha}", get(page_image));
    public.merge(inbox).layer(forms)
}

fn login_form(error: Option<&str>) -> Markup {
    frame(
        "县级部门收件登录",
        html! {
            div.card {
                h1 { "转县办件 · 登录" }
                @if let Some(e) = error { p.bad { (e) } }
                form method="post" action="/county/inbox/login" {
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
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

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
    let refused = || {
        (
            StatusCode::UNAUTHORIZED,
            login_form(Some("账号或密码不正确。")),
        )
            .into_response()
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return refused();
    }
    let (st, n) = (state.clone(), name.clone());
    let account =
        match tokio::task::spawn_blocking(move || check_staff(st.admin.as_ref(), &n, &f.password))
            .await
        {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return internal(e),
            Err(e) => return internal(e),
        };
    let audit = AuditDraft::new(
        &format!("county-staff:{name}"),
        if account.is_some() {
            "county_staff_login"
        } else {
            "county_staff_login_failed"
        },
        None,
        "",
    );
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.commit(None, &[], vec![audit])).await {
        return internal(e);
    }
    let Some(account) = account else {
        return refused();
    };
    let token = hex::encode(rand::random::<[u8; 32]>());
    let (st, hash) = (state.clone(), session_hash(&token));
    let principal = format!("{SESSION_PREFIX}{}", account.name);
    let expires = Utc::now()
        + chrono::Duration::from_std(crate::feedback::SESSION_TTL).expect("the TTL fits");
    if let Err(e) = blocking(move || st.store.create_session(&hash, &principal, expires)).await {
        return internal(e);
    }
    let cookie = format!(
        "{COOKIE}={token}; Path=/county/inbox; HttpOnly; SameSite=Strict; Max-Age={}{}",
        crate::feedback::SESSION_TTL.as_secs(),
        secure_attr(tls)
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/county/inbox"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    tls: Option<Extension<OverTls>>,
    person: CountyPerson,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if form
        .map(|f| f.0.csrf == csrf_token(&person.token))
        .unwrap_or(false)
    {
        let (st, hash) = (state.clone(), session_hash(&person.token));
        if let Err(e) = blocking(move || st.store.end_session(&hash)).await {
            return internal(e);
        }
    }
    let cookie = format!(
        "{COOKIE}=; Path=/county/inbox; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure_attr(tls)
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/county/inbox/login"),
    )
        .into_response()
}

/// Rows of one page of the county office inbox.
const INBOX_PAGE: usize = 50;

/// Where the office inbox continues (the previous page's cursor).
#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    after: Option<String>,
}

/// A forwarded case and its county handling, as the office inbox lists it.
type OfficeRow = (StoredCase, CountyHandling);

/// One page of the forwarded cases of `receiver`, newest forward first, read through the
/// store's index; and the cursor of the next page.
fn cases_of_office(
    state: &AppState,
    receiver: &str,
    after: Option<&ListCursor>,
) -> Result<(Vec<OfficeRow>, Option<ListCursor>), StoreError> {
    let page =
        state
            .store
            .county_list(&CountyList::Office(receiver.to_string()), after, INBOX_PAGE)?;
    let rows = page
        .cases
        .into_iter()
        .filter_map(|sc| {
            let h = sc.county.clone().filter(|h| h.receiver == receiver)?;
            Some((sc, h))
        })
        .collect();
    Ok((rows, page.next))
}

async fn inbox(
    State(state): State<AppState>,
    person: CountyPerson,
    Query(q): Query<InboxQuery>,
) -> Response {
    let (st, receiver) = (state.clone(), person.account.receiver.clone());
    let after = q.after.as_deref().and_then(ListCursor::decode);
    let (rows, next) = match blocking(move || cases_of_office(&st, &receiver, after.as_ref())).await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let audit = AuditDraft::new(
        &person.label(),
        "county_inbox",
        None,
        format!("{} rows (masked)", rows.len()),
    );
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.commit(None, &[], vec![audit])).await {
        return internal(e);
    }
    let divisions = state.divisions();
    let body = html! {
        div.card {
            h1 { "转县办件 · " (person.office) }
            p.muted { "登录：" (person.account.name) }
            form method="post" action="/county/inbox/logout" {
                input type="hidden" name="csrf" value=(csrf_token(&person.token));
                button.narrow.quiet type="submit" { "退出登录" }
            }
        }
        div.card.scroll {
            @if rows.is_empty() {
                p.muted { "暂无转来的办件。" }
            } @else {
                table #inbox {
                    tr { th { "办件编号" } th { "事项" } th { "村" } th { "申请人" } th { "身份证" } th { "转县时间" } th { "状态" } th { "办结期限" } }
                    @for (sc, h) in &rows {
                        tr {
                            td { a href=(format!("/county/inbox/{}", sc.case.id)) { (sc.case.id) } }
                            td { (state.item_name(sc.case.catalog_version, &sc.case.item).unwrap_or_else(|| sc.case.item.clone())) }
                            td { (divisions.village_full_name(&sc.case.village).unwrap_or_else(|| sc.case.village.clone())) }
                            td { (mask_name(&sc.case.applicant.name)) }
                            td { (mask_id_number(&sc.case.applicant.id_number)) }
                            td { (china_time(h.forwarded_at)) }
                            td { (status_text(sc, h)) }
                            td { (deadline_text(h)) }
                        }
                    }
                }
            }
            @if let Some(next) = &next {
                p { a.more href={ "/county/inbox?after=" (next.encode()) } { "更多" } }
            }
        }
    };
    no_store(StatusCode::OK, frame_with("转县办件", true, body))
}

fn status_text(sc: &StoredCase, h: &CountyHandling) -> String {
    match sc.case.state {
        CaseState::Forwarded => h.status().to_string(),
        s => s.label().to_string(),
    }
}

fn deadline_text(h: &CountyHandling) -> String {
    match h.deadline {
        Some(d) if h.decided.is_none() && d < china_today() => format!("{d}（已超期）"),
        Some(d) => d.to_string(),
        None => "受理后计算".to_string(),
    }
}

/// The case if it was forwarded to this person's office; anything else is "not found", so an
/// office cannot tell another's case numbers from made-up ones.
async fn load_for(
    state: &AppState,
    person: &CountyPerson,
    id: &str,
) -> Result<(StoredCase, CountyHandling), Response> {
    let (st, lookup) = (state.clone(), id.to_string());
    let sc = blocking(move || st.store.case(&lookup))
        .await
        .map_err(internal)?;
    sc.and_then(|sc| {
        let h = sc
            .county
            .clone()
            .filter(|h| h.receiver == person.account.receiver)?;
        Some((sc, h))
    })
    .ok_or_else(|| {
        message_page(
            StatusCode::NOT_FOUND,
            "没有这个办件",
            "本单位的收件箱里没有这个办件。",
        )
    })
}

async fn case_page(
    State(state): State<AppState>,
    person: CountyPerson,
    Path(id): Path<String>,
) -> Response {
    let (sc, h) = match load_for(&state, &person, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let audit = AuditDraft::new(
        &person.label(),
        "county_view_case",
        Some(&id),
        "personal data",
    );
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.commit(None, &[], vec![audit])).await {
        return internal(e);
    }
    let published = state.catalogs.for_case(sc.case.catalog_version);
    let item = published.catalog.item(&sc.case.item);
    let guide = item.and_then(|i| i.guide.as_ref());
    let field_label = |key: &str| {
        guide
            .and_then(|g| g.fields.iter().find(|f| f.key == key))
            .map_or_else(|| key.to_string(), |f| f.label.clone())
    };
    let material_label = |key: &str| {
        guide
            .and_then(|g| g.materials.iter().find(|m| m.key == key))
            .map_or_else(|| key.to_string(), |m| m.name.clone())
    };
    let c = &sc.case;
    let open = c.state == CaseState::Forwarded && h.decided.is_none();
    let csrf = csrf_token(&person.token);
    let divisions = state.divisions();
    let body = html! {
        p { a href="/county/inbox" { "← 返回收件箱" } }
        div.card {
            h1 { (item.map_or(c.item.as_str(), |i| i.name.as_str())) }
            p { "办件编号：" (c.id) }
            p { "状态：" strong #state { (status_text(&sc, &h)) } }
            p { "办结期限（工作日）：" span #deadline { (deadline_text(&h)) } }
            @if let Some(days) = guide.map(|g| g.promised_days) {
                p.muted { "承诺时限：" (days) " 个工作日，自县受理次日起计算。" }
            }
            p { "来自：" (divisions.village_full_name(&c.village).unwrap_or_else(|| c.village.clone())) "，首问负责代办员 " (c.responsible.name) }
            p { "转县：" (h.forwarded_by) "，" (china_time(h.forwarded_at)) }
            @if !h.note.is_empty() { p { "镇里的说明：" (h.note) } }
            @if let Some(r) = &h.request { p.bad { "已要求补正（" (china_time(r.at)) "）：" (r.note) "。等待镇里补正后重新报送。" } }
        }
        div.card {
            h2 { "申请人" }
            p { (c.applicant.name) "，身份证 " (c.applicant.id_number) "，电话 " (c.applicant.phone) }
            h2 { "表单" }
            table {
                @for (key, answer) in &c.answers {
                    tr { th { (field_label(key)) } td { (answer.to_string()) } }
                }
            }
        }
        div.card {
            h2 { "材料" }
            @for m in &c.materials {
                h3 { (material_label(&m.key)) }
                @for p in &m.pages {
                    img src=(format!("/county/inbox/{}/pages/{}", c.id, p.sha256)) alt=(p.name) style="max-width:100%;border:1px solid #ccc;margin:4px 0";
                }
            }
        }
        div.card {
            h2 { "办理经过" }
            ol.tl {
                @for s in &c.history {
                    li { (china_time(s.at)) " " (s.to.label()) " · " (s.by) @if !s.note.is_empty() { "：" (s.note) } }
                }
            }
        }
        @if open {
            div.card {
                h2 { "办理" }
                @if h.accepted.is_none() {
                    form method="post" action=(format!("/county/inbox/{}/decide", c.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="action" value="accept";
                        button #accept type="submit" { "受理" }
                    }
                }
                @if h.request.is_none() {
                    form method="post" action=(format!("/county/inbox/{}/decide", c.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="action" value="request_more";
                        label { "需补正的内容（一次说清，经镇里转告）" textarea name="text" required {} }
                        button type="submit" { "要求补正" }
                    }
                }
                @if h.accepted.is_some() {
                    form #complete method="post" action=(format!("/county/inbox/{}/decide", c.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="action" value="complete";
                        label { "办理结果" textarea name="text" required {} }
                        label { "送达方式" select name="delivery" {
                            option value="agent_delivery" { "代办员送达" }
                            option value="self_pickup" { "自取（镇便民服务中心）" }
                        } }
                        button type="submit" { "办结" }
                    }
                }
                form method="post" action=(format!("/county/inbox/{}/decide", c.id)) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="action" value="refuse";
                    label { "不予受理的理由" textarea name="text" required {} }
                    button.quiet type="submit" { "不予受理" }
                }
            }
        }
    };
    no_store(StatusCode::OK, frame_with("转县办件", true, body))
}

async fn page_image(
    State(state): State<AppState>,
    person: CountyPerson,
    Path((id, sha)): Path<(String, String)>,
) -> Response {
    let (sc, _) = match load_for(&state, &person, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(page) = sc
        .case
        .materials
        .iter()
        .flat_map(|m| &m.pages)
        .find(|p| p.sha256 == sha)
        .cloned()
    else {
        return message_page(
            StatusCode::NOT_FOUND,
            "没有这页材料",
            "这个办件没有这页材料。",
        );
    };
    let stream = match state.objects.open(&sha).await {
        Ok(Some(s)) => s,
        Ok(None) => return internal(format!("attachment {sha} is missing from the store")),
        Err(e) => return internal(e),
    };
    let audit = AuditDraft::new(
        &person.label(),
        "county_view_attachment",
        Some(&id),
        page.name.clone(),
    );
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.commit(None, &[], vec![audit])).await {
        return internal(e);
    }
    let mut resp = Response::new(axum::body::Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&page.mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Debug, Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    delivery: String,
}

fn refused(status: StatusCode, message: &str) -> Response {
    message_page(status, "未能办理", message)
}

/// A timeline line that does not change the case's state (县受理, 要求补正, 重新报送).
fn note_line(sc: &mut StoredCase, by: &str, at: DateTime<Utc>, note: String) {
    sc.case.history.push(StateChange {
        from: sc.case.state,
        to: sc.case.state,
        at,
        by: by.to_string(),
        note,
    });
}

async fn decide(
    State(state): State<AppState>,
    person: CountyPerson,
    Path(id): Path<String>,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return form_too_large(),
        Err(_) => return refused(StatusCode::BAD_REQUEST, "表单内容不完整，请返回重试。"),
    };
    if f.csrf != csrf_token(&person.token) {
        return refused(StatusCode::FORBIDDEN, "页面已过期，请返回刷新后再办理。");
    }
    let text: String = f.text.trim().chars().take(MAX_TEXT_CHARS).collect();
    let _guard = state.locks.lock(&format!("case/{id}")).await;
    let (mut sc, mut h) = match load_for(&state, &person, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if sc.case.state != CaseState::Forwarded || h.decided.is_some() {
        return refused(StatusCode::CONFLICT, "这个办件已经办结，不能再办理。");
    }
    let by = person.label();
    let now = Utc::now();
    let step = CountyStep {
        by: by.clone(),
        at: now,
        note: text.clone(),
    };
    let mut events = Vec::new();
    let action = match f.action.as_str() {
        "accept" => {
            if h.accepted.is_some() {
                return refused(StatusCode::CONFLICT, "这个办件已经受理。");
            }
            let published = state.catalogs.for_case(sc.case.catalog_version);
            let days = published
                .catalog
                .item(&sc.case.item)
                .and_then(|i| i.guide.as_ref())
                .map(|g| g.promised_days);
            let deadline = days.and_then(|days| {
                match Case::accept_decision(china_today(), days, &state.calendar()) {
                    Decision::Accepted { deadline } => Some(deadline),
                    _ => None,
                }
            });
            h.deadline = deadline;
            h.accepted = Some(step);
            let until = deadline.map_or_else(
                || "（事项未载明承诺时限）".to_string(),
                |d| format!("，办结期限 {d}"),
            );
            note_line(&mut sc, &by, now, format!("县受理{until}"));
            "county_accept"
        }
        "request_more" => {
            if text.is_empty() {
                return refused(StatusCode::UNPROCESSABLE_ENTITY, "请写明需要补正的内容。");
            }
            if h.request.is_some() {
                return refused(StatusCode::CONFLICT, "已经要求补正，等待镇里重新报送。");
            }
            h.request = Some(step);
            note_line(&mut sc, &by, now, format!("县要求补正：{text}"));
            "county_request_more"
        }
        "complete" | "refuse" => {
            if text.is_empty() {
                return refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    if f.action == "complete" {
                        "请填写办理结果。"
                    } else {
                        "请填写不予受理的理由。"
                    },
                );
            }
            let decision = if f.action == "complete" {
                if h.accepted.is_none() {
                    return refused(StatusCode::CONFLICT, "请先受理，再办结。");
                }
                let delivery = match f.delivery.as_str() {
                    "self_pickup" => Delivery::SelfPickup,
                    _ => Delivery::AgentDelivery,
                };
                Decision::Completed {
                    result: text.clone(),
                    delivery,
                }
            } else {
                Decision::Refused {
                    reason: text.clone(),
                }
            };
            if let Err(e) = sc.case.apply(CaseEvent::Town(decision.clone()), &by, now) {
                return refused(StatusCode::CONFLICT, &e.to_string());
            }
            h.decided = Some(step);
            events.push(DecisionEvent {
                case_id: id.clone(),
                version: sc.case.version,
                decision,
                by: by.clone(),
                at: now,
            });
            if f.action == "complete" {
                "county_complete"
            } else {
                "county_refuse"
            }
        }
        _ => return refused(StatusCode::BAD_REQUEST, "未知的办理操作。"),
    };
    sc.county = Some(h);
    let audit = AuditDraft::new(&by, action, Some(&id), text);
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.commit(Some(&sc), &events, vec![audit])).await {
        return internal(e);
    }
    tracing::info!(case = %id, action, "county action");
    Redirect::to(&format!("/county/inbox/{id}")).into_response()
}

/// Town side of 转县: the office the case goes to, checked before the case changes. `None` when
/// the catalog names no county office at all (the town then cannot forward).
pub fn handling_for(
    state: &AppState,
    sc: &StoredCase,
    forwarded_by: &str,
    note: &str,
    at: DateTime<Utc>,
) -> Result<CountyHandling, ApiError> {
    // The newest catalog decides who receives: offices are routing, not part of the case's form.
    let latest = state.catalogs.latest();
    let r = latest.catalog.receiver_for(&sc.case.item).ok_or_else(|| {
        ApiError::unprocessable(
            "no_county_receiver",
            "the published catalog names no county office to forward to",
        )
    })?;
    Ok(CountyHandling {
        receiver: r.key.clone(),
        receiver_name: r.name.clone(),
        forwarded_at: at,
        forwarded_by: forwarded_by.to_string(),
        note: note.trim().chars().take(MAX_TEXT_CHARS).collect(),
        accepted: None,
        deadline: None,
        request: None,
        decided: None,
    })
}

/// Whether the town may take `action` on a case: once forwarded, the county office decides
/// (受理 / 补正 / 办结 / 不予受理); the town may only send it up again after the county asked for
/// more.
pub fn town_may(
    sc: &StoredCase,
    action: &bianmin_protocol::sync::TownAction,
) -> Result<(), ApiError> {
    use bianmin_protocol::sync::TownAction;
    let Some(h) = sc.county.as_ref() else {
        return Ok(());
    };
    if sc.case.state != CaseState::Forwarded {
        return Ok(());
    }
    match action {
        TownAction::Forward { .. } if h.request.is_some() => Ok(()),
        TownAction::Forward { .. } => Err(ApiError::conflict(
            "already_forwarded",
            format!(
                "the case is with {}; it has asked for nothing",
                h.receiver_name
            ),
        )),
        _ => Err(ApiError::forbidden(format!(
            "the case was forwarded to {}: that office decides it",
            h.receiver_name
        ))),
    }
}

/// 重新报送: the town answers the county's 要求补正 and sends the case up again (same office).
pub fn send_up_again(sc: &mut StoredCase, by: &str, note: &str, at: DateTime<Utc>) {
    let note: String = note.trim().chars().take(MAX_TEXT_CHARS).collect();
    if let Some(h) = sc.county.as_mut() {
        h.request = None;
        h.note = note.clone();
    }
    note_line(sc, by, at, format!("补正后重新报送县里：{note}"));
}
