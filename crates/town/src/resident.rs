//! The resident's page behind the receipt QR (`/r/{case_id}?t={token}`) and the 好差评 form.
//!
//! Server-rendered, no JavaScript, one small inline stylesheet: it has to load on 2G and inside
//! WeChat's browser. maud escapes every interpolated value, so comments and names cannot inject
//! markup. The receipt token (device-signed, bound to the case number) is the page's credential and
//! travels in the form as its CSRF token; the phone's last four digits confirm the resident.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use bianmin_engine::case::CaseEvent;
use bianmin_engine::receipt;
use bianmin_engine::validate::mask_name;
use bianmin_protocol::{CaseState, Decision, DecisionEvent};
use chrono::{NaiveDate, Utc};
use ed25519_dalek::VerifyingKey;
use maud::{html, Markup};
use serde::Deserialize;

use crate::audit::AuditDraft;
use crate::error::blocking;
use crate::feedback::{is_bad, level_label, Rating, LEVELS, MAX_COMMENT_CHARS, MAX_PHONE_FAILURES};
use crate::page::{form_too_large, frame, internal, message_page, no_store};
use crate::store::{RatingVia, StoredCase};
use crate::time::{china_date, china_time, china_today};
use crate::AppState;

/// A receipt link that checked out.
pub struct Claim {
    /// The date the link counts from: the day the town received the case when it has it (the
    /// phone's clock may have been wrong when it minted the link), else the phone's issue date.
    pub issued: NaiveDate,
    /// The phone's own issue date, when it is not in the future (a wrong clock's date is not shown).
    pub phone_issued: Option<NaiveDate>,
}

/// Checks the receipt token against the enrolled key of the device named in the case number.
///
/// Dates are judged by the town's clock: a phone set two days ahead (or reset to 2020 by a flat
/// battery) still mints genuine links. Once the town holds the case, validity counts from the
/// day it was received; before that, a link "from the future" is shown as waiting for upload. A
/// revoked device's key opens nothing: the phone may be in a thief's hands.
async fn check_token(state: &AppState, case_id: &str, token: &str) -> Result<Claim, Response> {
    let forged = || {
        message_page(
            StatusCode::FORBIDDEN,
            "链接无效",
            "该查询链接无效或已被篡改，请使用回执上的二维码重新扫描。",
        )
    };
    let device = receipt::signer_device(case_id).map_err(|_| {
        message_page(
            StatusCode::NOT_FOUND,
            "办件编号无效",
            "没有这个办件编号，请核对回执上的二维码。",
        )
    })?;
    let st = state.clone();
    let id = case_id.to_string();
    let (record, revoked, received) = blocking(move || {
        let record = st.store.device(&device)?;
        let revoked = st.admin.is_revoked(&device)?;
        let received = st.store.case(&id)?.map(|sc| sc.received_at);
        Ok((record, revoked, received))
    })
    .await
    .map_err(internal)?;
    let record = record.ok_or_else(forged)?;
    let key = hex::decode(&record.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| internal("stored device key is malformed"))?;
    let claim = receipt::verify_signature(&key, case_id, token).map_err(|_| forged())?;
    if record.revoked || revoked {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "链接已停用",
            "开具这张回执的代办员设备已停用，查询链接随之失效。请联系村代办员或镇便民服务中心查询办件。",
        ));
    }
    let today = china_today();
    let issued = received.map(china_date).unwrap_or(claim.issued);
    let expires = receipt::expiry(issued);
    if today > expires {
        return Err(message_page(
            StatusCode::GONE,
            "链接已过期",
            &format!(
                "该查询链接已于{}过期。如需查询，请联系村代办员。",
                expires.format("%Y年%m月%d日")
            ),
        ));
    }
    let phone_issued = (claim.issued <= today + chrono::Days::new(1)).then_some(claim.issued);
    Ok(Claim {
        issued,
        phone_issued,
    })
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    pub t: String,
}

/// Completes the rating's effect on a case whose rating was stored without it: ratings once lived
/// in a database of their own, written before the case, and a crash in between left this state.
async fn feed_back(state: &AppState, case_id: &str) -> Result<(), Response> {
    let _g = state.locks.lock(&format!("case/{case_id}")).await;
    let st = state.clone();
    let id = case_id.to_string();
    blocking(move || {
        let Some(mut sc) = st.store.case(&id)? else {
            return Ok(());
        };
        if !matches!(sc.case.state, CaseState::Completed | CaseState::Delivered)
            || st.store.rating(&id)?.is_none()
        {
            return Ok(());
        }
        let now = Utc::now();
        if sc
            .case
            .apply(CaseEvent::Town(Decision::Rated), "resident", now)
            .is_err()
        {
            return Ok(());
        }
        let ev = DecisionEvent {
            case_id: id.clone(),
            version: sc.case.version,
            decision: Decision::Rated,
            by: "resident".into(),
            at: now,
        };
        let audit = AuditDraft::new("resident", "rate", Some(&id), "rating recorded");
        st.store.commit(Some(&sc), &[ev], vec![audit])
    })
    .await
    .map_err(internal)
}

/// GET /r/{case_id}?t=: the status timeline, and the rating form once the case is finished.
pub async fn page(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let claim = match check_token(&state, &case_id, &q.t).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let st = state.clone();
    let id = case_id.clone();
    let (sc, rating, on_site) = match blocking(move || {
        Ok((
            st.store.case(&id)?,
            st.store.rating(&id)?,
            st.store.notices().on_site_rating(&id)?,
        ))
    })
    .await
    {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let Some(mut sc) = sc else {
        return no_store(
            StatusCode::OK,
            frame(
                "办件查询",
                html! {
                    div.card {
                        h1 { "办件查询" }
                        p.muted { "办件编号：" (case_id) }
                        p { "您的办件正在由村代办员上传，请稍后再查看。" }
                        p.muted {
                            "村里网络不好时，代办员的手机会在有信号后自动上传。"
                            @if let Some(d) = claim.phone_issued { "回执开具日期：" (d.format("%Y-%m-%d")) }
                        }
                    }
                },
            ),
        );
    };
    if rating.is_some() && sc.case.state != CaseState::Rated {
        if let Err(r) = feed_back(&state, &case_id).await {
            return r;
        }
    }
    if rating.is_some() {
        sc.case.state = CaseState::Rated;
    }
    no_store(
        StatusCode::OK,
        frame(
            "办件查询",
            render_case(
                &state,
                &sc,
                rating.as_ref().or(on_site.as_ref()),
                &q.t,
                None,
            ),
        ),
    )
}

fn render_case(
    state: &AppState,
    sc: &StoredCase,
    rating: Option<&Rating>,
    token: &str,
    error: Option<&str>,
) -> Markup {
    let c = &sc.case;
    let item = state
        .item_name(c.catalog_version, &c.item)
        .unwrap_or_else(|| c.item.clone());
    let village = state
        .divisions()
        .village_full_name(&c.village)
        .unwrap_or_default();
    let completion = match (&c.last_decision, rating.and_then(|r| r.completion.as_ref())) {
        (Some(d @ Decision::Completed { .. }), _) => Some(d.clone()),
        (_, Some(d)) => Some(d.clone()),
        _ => None,
    };
    let can_rate = rating.is_none()
        && matches!(
            c.state,
            CaseState::Completed | CaseState::Delivered | CaseState::Rated
        );
    html! {
        div.card {
            h1 { (item) }
            p {
                "申请人：" (mask_name(&c.applicant.name)) br;
                "办件编号：" span.muted { (c.id) } br;
                "受理地点：" (village) "便民服务点" br;
                "当前状态：" strong { (c.state.label()) }
            }
            @if let Some(n) = crate::clock::resident_note(sc) { p.clock-note { (n) } }
        }
        div.card {
            h2 { "办理进度" }
            ol.tl {
                // The phone's clock stamped `created_at`; one set ahead would show a submission
                // after the town received it, so the town's receipt time bounds it.
                li { strong { "已提交" } " " span.muted { (china_time(c.created_at.min(sc.received_at))) } br; "村代办员已收件并完成初审" }
                @for h in &c.history {
                    @if let Some(text) = step_text(h.to) {
                        li class=[(h.to == c.state).then_some("now")] {
                            strong { (text) } " " span.muted { (china_time(h.at)) }
                            @if h.to == CaseState::Accepted {
                                @if let Some(d) = c.deadline { br; "承诺办结日期：" (d.format("%Y年%m月%d日")) }
                            }
                            @if h.to == CaseState::CorrectionRequested && !h.note.is_empty() { br; "补正说明：" (h.note) }
                            @if h.to == CaseState::Refused && !h.note.is_empty() { br; "原因：" (h.note) }
                            @if h.to == CaseState::Completed {
                                @if let Some(Decision::Completed { result, delivery }) = &completion {
                                    br; "办理结果：" (result)
                                    br; "送达方式：" (delivery.label())
                                }
                            }
                        }
                    }
                }
                @if let Some(r) = rating {
                    li.now { strong { "已评价" } " " span.muted { (china_time(r.rated_at)) } }
                }
            }
        }
        @if let Some(r) = rating {
            div.card {
                h2.ok { "评价已提交，感谢您的反馈" }
                @if !r.via.counts() {
                    p { "这是在代办员手机上完成的现场评价，单独记录，不计入满意度统计。办件进度和评价链接会以短信发送到您登记的手机，请以短信链接评价。" }
                }
                p { "整体满意度：" strong { (level_label(r.level)) } }
                p.muted { "服务效率：" (level_label(r.efficiency)) "　服务水平：" (level_label(r.quality)) "　服务态度：" (level_label(r.attitude)) }
                @if !r.comment.is_empty() { p { "您的意见：" (r.comment) } }
                @if is_bad(r.level) && r.via.counts() { p { "我们已记录您的意见，相关部门将在" (state.feedback.rectify_days) "个工作日内核实整改并回访您。" } }
            }
        } @else if can_rate {
            (rating_form(c.id.as_str(), token, error))
        } @else {
            div.card { p.muted { "办结后可在此页面对本次服务进行评价。" } }
        }
        (crate::resident_link::supervision(state, sc))
        p.muted { "本页面不显示完整个人信息。" }
    }
}

pub(crate) fn step_text(s: CaseState) -> Option<&'static str> {
    Some(match s {
        CaseState::Uploaded | CaseState::Received => "镇便民服务中心已接收",
        CaseState::Accepted => "已受理",
        CaseState::CorrectionRequested => "需补正材料",
        CaseState::Refused => "不予受理",
        CaseState::Forwarded => "已转县办理",
        CaseState::Completed => "已办结",
        CaseState::Delivered => "已送达",
        _ => return None,
    })
}

fn indicator(name: &str, label: &str) -> Markup {
    html! {
        label {
            (label)
            select name=(name) required {
                option value="" { "请选择" }
                @for (v, l) in LEVELS { option value=(v) { (l) } }
            }
        }
    }
}

fn rating_form(case_id: &str, token: &str, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h2 { "请对本次服务进行评价" }
            @if let Some(e) = error { p.bad { (e) } }
            form method="post" action={ "/r/" (case_id) "/rate" } {
                input type="hidden" name="t" value=(token);
                fieldset {
                    legend { "整体满意度" }
                    @for (v, l) in LEVELS {
                        label { input type="radio" name="level" value=(v) required; " " (l) }
                    }
                }
                (indicator("efficiency", "服务效率"))
                (indicator("quality", "服务水平"))
                (indicator("attitude", "服务态度"))
                label { "意见或建议（选填，最多" (MAX_COMMENT_CHARS) "字）"
                    textarea name="comment" rows="3" maxlength=(MAX_COMMENT_CHARS) {}
                }
                label { "请输入办件登记手机号的后四位，以确认是您本人"
                    input type="tel" name="phone4" inputmode="numeric" pattern="[0-9]{4}" maxlength="4" required autocomplete="off";
                }
                button type="submit" { "提交评价" }
            }
            p.muted { "每件办件只能评价一次。" }
        }
    }
}

/// The rating form's fields (all text, so a malformed post gets a Chinese page, not a rejection).
#[derive(Debug, Deserialize)]
pub struct RateForm {
    #[serde(default)]
    pub t: String,
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
    #[serde(default)]
    pub phone4: String,
}

pub(crate) fn level_of(s: &str) -> Option<u8> {
    s.trim().parse::<u8>().ok().filter(|l| (1..=5).contains(l))
}

/// POST /r/{case_id}/rate: one rating per case.
pub async fn rate(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
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
    let claim = match check_token(&state, &case_id, &f.t).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let _g = state.locks.lock(&format!("case/{case_id}")).await;
    let st = state.clone();
    let id = case_id.clone();
    let (sc, existing, failures) = match blocking(move || {
        Ok((
            st.store.case(&id)?,
            st.store.notices().on_site_rating(&id)?,
            st.store.phone_failures(&id)?,
        ))
    })
    .await
    {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let Some(sc) = sc else {
        return message_page(
            StatusCode::CONFLICT,
            "暂不能评价",
            "您的办件正在由村代办员上传，请稍后再查看。",
        );
    };
    if existing.is_some() {
        return message_page(
            StatusCode::CONFLICT,
            "已评价",
            "该办件已经评价过了，每件办件只能评价一次。感谢您的反馈！",
        );
    }
    if !matches!(
        sc.case.state,
        CaseState::Completed | CaseState::Delivered | CaseState::Rated
    ) {
        return message_page(
            StatusCode::CONFLICT,
            "暂不能评价",
            "办件办结后才能评价，请稍后再查看。",
        );
    }
    let again = |msg: &str, status: StatusCode| {
        no_store(
            status,
            frame("办件查询", render_case(&state, &sc, None, &f.t, Some(msg))),
        )
    };
    let (Some(level), Some(efficiency), Some(quality), Some(attitude)) = (
        level_of(&f.level),
        level_of(&f.efficiency),
        level_of(&f.quality),
        level_of(&f.attitude),
    ) else {
        return again(
            "请选择整体满意度和每一项评价。",
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let comment = f.comment.trim().to_string();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return again(
            &format!("意见最多{MAX_COMMENT_CHARS}字，请删减后再提交。"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if failures >= MAX_PHONE_FAILURES {
        return message_page(
            StatusCode::FORBIDDEN,
            "暂不能评价",
            "手机号后四位输入错误次数过多，请联系村代办员协助评价。",
        );
    }
    let phone = sc.case.applicant.phone.trim();
    let expected: String = phone
        .chars()
        .skip(phone.chars().count().saturating_sub(4))
        .collect();
    if f.phone4.trim() != expected || expected.len() != 4 {
        let st = state.clone();
        let id = case_id.clone();
        let failures = match blocking(move || st.store.phone_failed(&id)).await {
            Ok(n) => n,
            Err(e) => return internal(e),
        };
        if failures >= MAX_PHONE_FAILURES {
            return message_page(
                StatusCode::FORBIDDEN,
                "暂不能评价",
                "手机号后四位输入错误次数过多，请联系村代办员协助评价。",
            );
        }
        return again(
            "手机号后四位不正确，请核对办件登记的手机号。",
            StatusCode::FORBIDDEN,
        );
    }
    // The agent's device held this link too: the rating is kept as 现场评价 and counts for
    // nothing; the one that counts comes through the link sent to the applicant's phone.
    let rating = Rating {
        case_id: case_id.clone(),
        village: sc.case.village.clone(),
        level,
        efficiency,
        quality,
        attitude,
        comment,
        rated_at: Utc::now(),
        token_issued: claim.issued,
        completion: sc
            .case
            .last_decision
            .clone()
            .filter(|d| matches!(d, Decision::Completed { .. })),
        via: RatingVia::Receipt,
        added: None,
    };
    let st = state.clone();
    let stored = match blocking(move || st.store.notices().rate_on_site(&rating)).await {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    if !stored {
        return message_page(
            StatusCode::CONFLICT,
            "已评价",
            "该办件已经评价过了，每件办件只能评价一次。感谢您的反馈！",
        );
    }
    tracing::info!(case = %case_id, level, "on-site rating stored (not counted)");
    Redirect::to(&format!("/r/{}?t={}", case_id, f.t.trim())).into_response()
}
