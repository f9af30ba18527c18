//! The page behind the link the server texts to the applicant (`/s/{code}`): the case in plain
//! words, the county's supervision phone, and the rating that counts.
//!
//! The code is derived from the server's key and reaches only the applicant's phone
//! (`crate::notify`), so the agent who handled the case cannot rate it here. Every outcome after
//! acceptance may be rated, refusals and overdue cases included; one rating per case. The page
//! asks one question first (overall satisfaction, five large choices) and keeps the details
//! optional; no JavaScript, so it works in WeChat's browser.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use bianmin_engine::case::CaseEvent;
use bianmin_engine::validate::mask_name;
use bianmin_protocol::{CaseState, Decision, DecisionEvent};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use crate::audit::AuditDraft;
use crate::error::blocking;
use crate::feedback::{
    is_bad, level_label, AddBadError, AddedBadReview, Rating, Rectification, LEVELS,
    MAX_COMMENT_CHARS,
};
use crate::notify::{phone_hash, resident_link, LINK_CODE_LEN};
use crate::page::{form_too_large, frame, internal, message_page, no_store};
use crate::resident::{level_of, step_text};
use crate::store::{RatingVia, StoredCase};
use crate::time::{china_time, china_today};
use crate::AppState;

fn unknown() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "链接无效",
        "没有找到这个查询链接，请核对短信中的链接。",
    )
}

/// The case a code opens, if the code is well-formed, stored, and the server's own.
async fn case_of(state: &AppState, code: &str) -> Result<StoredCase, Response> {
    if code.len() != LINK_CODE_LEN || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(unknown());
    }
    let st = state.clone();
    let c = code.to_string();
    let sc = blocking(move || {
        let Some(id) = st.store.notices().link_case(&c)? else {
            return Ok(None);
        };
        st.store.case(&id)
    })
    .await
    .map_err(internal)?;
    match sc {
        // The stored mapping is checked against the key, so a row written by hand opens nothing.
        Some(sc) if resident_link(&state.server_key, &sc.case.id) == code => Ok(sc),
        _ => Err(unknown()),
    }
}

/// After acceptance, whatever came of the case.
fn rateable(s: CaseState) -> bool {
    matches!(
        s,
        CaseState::Accepted
            | CaseState::CorrectionRequested
            | CaseState::Refused
            | CaseState::Forwarded
            | CaseState::Completed
            | CaseState::Delivered
    )
}

/// GET /s/{code}.
pub async fn page(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let sc = match case_of(&state, &code).await {
        Ok(sc) => sc,
        Err(r) => return r,
    };
    let st = state.clone();
    let id = sc.case.id.clone();
    let rating = match blocking(move || st.store.rating(&id)).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    no_store(
        StatusCode::OK,
        frame(
            "办件查询",
            render(&state, &sc, rating.as_ref(), &code, None),
        ),
    )
}

/// The county's supervision phone for the case's item, as a tap-to-call link; a plain statement
/// when the county has not published the number (never a made-up one).
pub(crate) fn supervision(state: &AppState, sc: &StoredCase) -> Markup {
    let catalog = &state.catalogs.for_case(sc.case.catalog_version).catalog;
    let key = catalog
        .item(&sc.case.item)
        .and_then(|i| i.guide.as_ref())
        .map(|g| g.contact.clone())
        .unwrap_or_else(|| "supervision".to_string());
    let contact = catalog.contact(&key);
    html! {
        div.card.big {
            h2 { "有问题可以打电话" }
            @match contact {
                Some(c) if !c.phone.trim().is_empty() => {
                    p { (c.label) }
                    a.call href={ "tel:" (c.phone.trim()) } { "拨打 " (c.phone.trim()) }
                }
                Some(c) => { p { (c.label) "：县里还没有公布号码。请联系村代办员或镇便民服务中心。" } }
                None => { p { "监督电话县里还没有公布。请联系村代办员或镇便民服务中心。" } }
            }
        }
    }
}

fn render(
    state: &AppState,
    sc: &StoredCase,
    rating: Option<&Rating>,
    code: &str,
    error: Option<&str>,
) -> Markup {
    let c = &sc.case;
    let item = state
        .item_name(c.catalog_version, &c.item)
        .unwrap_or_else(|| c.item.clone());
    let state_now = if rating.is_some() && c.state == CaseState::Rated {
        "已办结"
    } else {
        c.state.label()
    };
    html! {
        div.card.big {
            h1 { (item) }
            p { "申请人：" (mask_name(&c.applicant.name)) }
            p { "办件编号：" span.muted { (c.id) } }
            p { "现在：" strong { (state_now) } }
            @if crate::clock::overdue(sc, china_today(), &state.calendar()) { p.bad { "已超过承诺办结日期。" } }
            @if let Some(n) = crate::clock::resident_note(sc) { p.clock-note { (n) } }
        }
        @if let Some(r) = rating {
            div.card.big {
                h2.ok { "您的评价已收到，谢谢" }
                p { "您的评价：" strong { (level_label(r.level)) } }
                @if let Some(a) = &r.added {
                    p { "您追加的差评：" strong { (level_label(a.level)) } " " span.muted { (china_time(a.at)) } }
                }
                @if is_bad(r.counted_level()) { p { "相关部门会在" (state.feedback.rectify_days) "个工作日内核实整改，并打电话回访您。" } }
            }
            @if let Some(until) = add_bad_open(state, r) {
                (add_bad_form(code, until, error))
            }
        } @else if rateable(c.state) {
            (form(code, error))
        } @else {
            div.card.big { p { "办件受理后，就可以在这里评价。" } }
        }
        (supervision(state, sc))
        div.card.big {
            h2 { "办理经过" }
            ol.tl {
                li { strong { "村代办员已收件" } " " span.muted { (china_time(c.created_at.min(sc.received_at))) } }
                @for h in &c.history {
                    @if let Some(text) = step_text(h.to) {
                        li {
                            strong { (text) } " " span.muted { (china_time(h.at)) }
                            @if h.to == CaseState::Accepted {
                                @if let Some(d) = c.deadline { br; "应在" (d.format("%Y年%m月%d日")) "前办完" }
                            }
                            @if h.to == CaseState::CorrectionRequested && !h.note.is_empty() { br; "要补的材料：" (h.note) }
                            @if h.to == CaseState::Refused && !h.note.is_empty() { br; "原因：" (h.note) }
                        }
                    }
                }
            }
        }
        div.card {
            form method="post" action={ "/s/" (code) "/opt-out" } {
                button.quiet type="submit" { "以后不再给我发短信" }
            }
        }
    }
}

/// The last day a 追加差评 may still be added to `r`, if it may be added today.
fn add_bad_open(state: &AppState, r: &Rating) -> Option<chrono::NaiveDate> {
    if !r.via.counts() || r.added.is_some() || is_bad(r.level) {
        return None;
    }
    let until = state
        .feedback
        .add_bad_until(&state.calendar(), r.rated_at)?;
    (china_today() <= until).then_some(until)
}

/// The 追加差评 form: the two bad levels and an optional comment, no JavaScript.
fn add_bad_form(code: &str, until: chrono::NaiveDate, error: Option<&str>) -> Markup {
    html! {
        div.card.big {
            form method="post" action={ "/s/" (code) "/add-bad" } {
                fieldset.levels {
                    legend { h2 { "后来又不满意了？可以追加差评" } }
                    p { "在" (until.format("%Y年%m月%d日")) "前可以追加一次差评，相关部门会核实整改并回访您。" }
                    @if let Some(e) = error { p.bad { (e) } }
                    @for (v, l) in LEVELS.iter().filter(|(v, _)| is_bad(*v)) {
                        label { input type="radio" name="level" value=(v) required; (l) }
                    }
                }
                label { "哪里不满意（可不填，最多" (MAX_COMMENT_CHARS) "字）"
                    textarea name="comment" rows="3" maxlength=(MAX_COMMENT_CHARS) {}
                }
                button type="submit" { "追加差评" }
            }
        }
    }
}

fn form(code: &str, error: Option<&str>) -> Markup {
    html! {
        div.card.big {
            form method="post" action={ "/s/" (code) "/rate" } {
                fieldset.levels {
                    legend { h2 { "您对这次办事满意吗？" } }
                    @if let Some(e) = error { p.bad { (e) } }
                    @for (v, l) in LEVELS {
                        label { input type="radio" name="level" value=(v) required; (l) }
                    }
                }
                details {
                    summary { "还想多说几句（可不填）" }
                    label { "哪里好，哪里不好（最多" (MAX_COMMENT_CHARS) "字）"
                        textarea name="comment" rows="3" maxlength=(MAX_COMMENT_CHARS) {}
                    }
                    @for (name, label) in [("efficiency", "办事快不快"), ("quality", "办得好不好"), ("attitude", "态度好不好")] {
                        label { (label)
                            select name=(name) {
                                option value="" { "不填" }
                                @for (v, l) in LEVELS { option value=(v) { (l) } }
                            }
                        }
                    }
                }
                button type="submit" { "提交评价" }
            }
            p.muted { "每件办件评价一次。" }
        }
    }
}

/// The form's fields, all text, so a malformed post gets a Chinese page.
#[derive(Debug, Deserialize)]
pub struct RateForm {
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub efficiency: String,
    #[serde(default)]
    pub quality: String,
    #[serde(default)]
    pub attitude: String,
    #[serde(default)]
    pub comment: String,
}

/// POST /s/{code}/rate: the rating that counts, one per case.
pub async fn rate(
    State(state): State<AppState>,
    Path(code): Path<String>,
    form: Result<Form<RateForm>, FormRejection>,
) -> Response {
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return form_too_large(),
        Err(_) => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "提交失败",
                "评价内容格式不正确，请返回重新填写。",
            )
        }
    };
    let sc = match case_of(&state, &code).await {
        Ok(sc) => sc,
        Err(r) => return r,
    };
    let case_id = sc.case.id.clone();
    let _g = state.locks.lock(&format!("case/{case_id}")).await;
    // Read again under the lock: a decision may have landed meanwhile.
    let st = state.clone();
    let id = case_id.clone();
    let (sc, existing) =
        match blocking(move || Ok((st.store.case(&id)?, st.store.rating(&id)?))).await {
            Ok((Some(sc), r)) => (sc, r),
            Ok((None, _)) => return unknown(),
            Err(e) => return internal(e),
        };
    if existing.is_some() {
        return message_page(
            StatusCode::CONFLICT,
            "已评价",
            "这件办件已经评价过了，每件办件评价一次。谢谢您！",
        );
    }
    if !rateable(sc.case.state) {
        return message_page(
            StatusCode::CONFLICT,
            "暂不能评价",
            "办件受理后才能评价，请稍后再看。",
        );
    }
    let again = |msg: &str| {
        no_store(
            StatusCode::UNPROCESSABLE_ENTITY,
            frame("办件查询", render(&state, &sc, None, &code, Some(msg))),
        )
    };
    let Some(level) = level_of(&f.level) else {
        return again("请先选一项：您对这次办事满意吗？");
    };
    let comment = f.comment.trim().to_string();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return again(&format!("意见最多{MAX_COMMENT_CHARS}字，请删减后再提交。"));
    }
    // A detail left out takes the overall answer.
    let detail = |s: &str| level_of(s).unwrap_or(level);
    let now = Utc::now();
    let mut sc = sc;
    let rating = Rating {
        case_id: case_id.clone(),
        village: sc.case.village.clone(),
        level,
        efficiency: detail(&f.efficiency),
        quality: detail(&f.quality),
        attitude: detail(&f.attitude),
        comment: comment.clone(),
        rated_at: now,
        token_issued: crate::time::china_date(now),
        completion: sc
            .case
            .last_decision
            .clone()
            .filter(|d| matches!(d, Decision::Completed { .. })),
        via: RatingVia::Sms,
        added: None,
    };
    let loop_record = is_bad(level).then(|| Rectification {
        case_id: case_id.clone(),
        village: sc.case.village.clone(),
        level,
        comment: comment.clone(),
        opened_at: now,
        deadline: state.feedback.deadline(&state.calendar(), china_today()),
        steps: Vec::new(),
    });
    // A finished case moves to Rated and the village phone hears of it through the feed; a
    // refused, forwarded or still-open case keeps its state (the rating is stored beside it).
    let mut events = Vec::new();
    if matches!(sc.case.state, CaseState::Completed | CaseState::Delivered) {
        if let Err(e) = sc
            .case
            .apply(CaseEvent::Town(Decision::Rated), "resident", now)
        {
            return internal(e);
        }
        events.push(DecisionEvent {
            case_id: case_id.clone(),
            version: sc.case.version,
            decision: Decision::Rated,
            by: "resident".into(),
            at: now,
        });
    }
    let audit = AuditDraft::new(
        "resident",
        "rate",
        Some(&case_id),
        format!(
            "level {level} via SMS link{}",
            if is_bad(level) {
                ", bad review opened"
            } else {
                ""
            }
        ),
    );
    let st = state.clone();
    let stored = match blocking(move || {
        st.store
            .rate(&rating, loop_record.as_ref(), &sc, &events, vec![audit])
    })
    .await
    {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    if !stored {
        return message_page(
            StatusCode::CONFLICT,
            "已评价",
            "这件办件已经评价过了，每件办件评价一次。谢谢您！",
        );
    }
    tracing::info!(case = %case_id, level, "resident rating stored (SMS link)");
    Redirect::to(&format!("/s/{code}")).into_response()
}

/// The 追加差评 form's fields, all text, so a malformed post gets a Chinese page.
#[derive(Debug, Deserialize)]
pub struct AddBadForm {
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub comment: String,
}

fn add_bad_refused(e: &AddBadError, rectify_days: u32) -> Response {
    let (title, text) = match e {
        AddBadError::NotRated => (
            "还不能追加",
            "这件办件还没有评价。请先在本页评价，评价后可以追加差评。".to_string(),
        ),
        AddBadError::AlreadyAdded => (
            "已追加过差评",
            "这件办件已经追加过差评，每件办件只能追加一次。相关部门会核实整改并回访您。"
                .to_string(),
        ),
        AddBadError::NotGood => (
            "已是差评",
            format!("您的评价已经是差评，相关部门会在{rectify_days}个工作日内核实整改并回访您。"),
        ),
        AddBadError::WindowClosed(until) => (
            "追加期限已过",
            format!(
                "追加差评的期限是{}，已经过了。如有问题，请拨打本页的监督电话。",
                until.format("%Y年%m月%d日")
            ),
        ),
        AddBadError::NotBad | AddBadError::Store(_) => ("提交失败", "请返回重新填写。".to_string()),
    };
    message_page(StatusCode::CONFLICT, title, &text)
}

/// POST /s/{code}/add-bad: one 追加差评 after a good rating, within the county's window. It
/// opens the bad-review loop like a first 差评 and becomes the case's rating in the figures.
pub async fn add_bad(
    State(state): State<AppState>,
    Path(code): Path<String>,
    form: Result<Form<AddBadForm>, FormRejection>,
) -> Response {
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return form_too_large(),
        Err(_) => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "提交失败",
                "评价内容格式不正确，请返回重新填写。",
            )
        }
    };
    let sc = match case_of(&state, &code).await {
        Ok(sc) => sc,
        Err(r) => return r,
    };
    let case_id = sc.case.id.clone();
    let _g = state.locks.lock(&format!("case/{case_id}")).await;
    let st = state.clone();
    let id = case_id.clone();
    let rating = match blocking(move || st.store.rating(&id)).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let rd = state.feedback.rectify_days;
    let Some(rating) = rating else {
        return add_bad_refused(&AddBadError::NotRated, rd);
    };
    // The same rule the store applies, checked first for a clear answer before the form's.
    if let Err(e) = rating.clone().add_bad(AddedBadReview {
        level: 1,
        comment: String::new(),
        at: Utc::now(),
    }) {
        return add_bad_refused(&e, rd);
    }
    let today = china_today();
    let until = state
        .feedback
        .add_bad_until(&state.calendar(), rating.rated_at);
    match until {
        Some(u) if today <= u => {}
        Some(u) => return add_bad_refused(&AddBadError::WindowClosed(u), rd),
        // Additions turned off by the county: the window closed on the day of the rating.
        None => {
            return add_bad_refused(
                &AddBadError::WindowClosed(crate::time::china_date(rating.rated_at)),
                rd,
            )
        }
    }
    let again = |msg: &str| {
        no_store(
            StatusCode::UNPROCESSABLE_ENTITY,
            frame(
                "办件查询",
                render(&state, &sc, Some(&rating), &code, Some(msg)),
            ),
        )
    };
    let Some(level) = level_of(&f.level).filter(|l| is_bad(*l)) else {
        return again("请先选一项：不满意 或 非常不满意。");
    };
    let comment = f.comment.trim().to_string();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return again(&format!("意见最多{MAX_COMMENT_CHARS}字，请删减后再提交。"));
    }
    let now = Utc::now();
    let added = AddedBadReview {
        level,
        comment: comment.clone(),
        at: now,
    };
    let loop_record = Rectification {
        case_id: case_id.clone(),
        village: sc.case.village.clone(),
        level,
        comment,
        opened_at: now,
        deadline: state.feedback.deadline(&state.calendar(), today),
        steps: Vec::new(),
    };
    let audit = AuditDraft::new(
        "resident",
        "rate_add_bad",
        Some(&case_id),
        format!("level {level} added via SMS link, bad review opened"),
    );
    let st = state.clone();
    let id = case_id.clone();
    let stored =
        blocking(move || Ok(st.store.add_bad_review(&id, added, &loop_record, audit))).await;
    match stored {
        Ok(Ok(_)) => {}
        Ok(Err(AddBadError::Store(e))) => return internal(e),
        Ok(Err(e)) => return add_bad_refused(&e, rd),
        Err(e) => return internal(e),
    }
    tracing::info!(case = %case_id, level, "added bad review stored (SMS link)");
    Redirect::to(&format!("/s/{code}")).into_response()
}

/// POST /s/{code}/opt-out: no more messages to this phone number.
pub async fn opt_out(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let sc = match case_of(&state, &code).await {
        Ok(sc) => sc,
        Err(r) => return r,
    };
    let hash = phone_hash(&sc.case.applicant.phone);
    let st = state.clone();
    if let Err(e) = blocking(move || st.store.notices().opt_out(&hash)).await {
        return internal(e);
    }
    message_page(
        StatusCode::OK,
        "已退订",
        "以后不再给这个手机号发办件短信。您仍可以打开这个链接查看办件和评价。",
    )
}

/// GET /s: look a case up by its number, the applicant's ID number's last six characters and
/// the code from the SMS (for a phone that cannot open the link, or a relative's).
pub async fn lookup_page() -> Response {
    no_store(StatusCode::OK, frame("办件查询", lookup_form(None)))
}

fn lookup_form(error: Option<&str>) -> Markup {
    html! {
        div.card.big {
            h1 { "查询办件" }
            p { "请填写回执上的办件编号、申请人身份证号码后六位和短信里的查询码。" }
            @if let Some(e) = error { p.bad { (e) } }
            form method="post" action="/s" {
                label { "办件编号" input type="text" name="case" autocomplete="off" required; }
                label { "身份证号码后六位" input type="text" name="id6" maxlength="6" autocomplete="off" required; }
                label { "短信查询码（链接最后" (LINK_CODE_LEN) "位）" input type="text" name="code" maxlength=(LINK_CODE_LEN) autocomplete="off" required; }
                button type="submit" { "查询" }
            }
        }
    }
}

/// The lookup form's fields.
#[derive(Debug, Deserialize)]
pub struct LookupForm {
    #[serde(default)]
    pub case: String,
    #[serde(default)]
    pub id6: String,
    #[serde(default)]
    pub code: String,
}

/// POST /s: all three must match; one answer for any mismatch, so the form tells nothing about
/// which part was wrong (the public rate limit bounds guessing).
pub async fn lookup(
    State(state): State<AppState>,
    form: Result<Form<LookupForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return no_store(
            StatusCode::BAD_REQUEST,
            frame(
                "办件查询",
                lookup_form(Some("填写的内容格式不正确，请重新填写。")),
            ),
        );
    };
    let code = f.code.trim().to_string();
    let mismatch = || {
        no_store(
            StatusCode::NOT_FOUND,
            frame(
                "办件查询",
                lookup_form(Some(
                    "没有找到相符的办件，请核对办件编号、身份证号码后六位和短信查询码。",
                )),
            ),
        )
    };
    let sc = match case_of(&state, &code).await {
        Ok(sc) => sc,
        Err(_) => return mismatch(),
    };
    let id_number = sc.case.applicant.id_number.trim().to_ascii_uppercase();
    let tail: String = id_number
        .chars()
        .skip(id_number.chars().count().saturating_sub(6))
        .collect();
    let given = f.id6.trim().to_ascii_uppercase();
    if sc.case.id != f.case.trim() || tail.len() != 6 || given != tail {
        return mismatch();
    }
    Redirect::to(&format!("/s/{code}")).into_response()
}
