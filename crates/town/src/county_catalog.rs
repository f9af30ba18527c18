//! The county's catalog pages (事项清单管理): the versions, uploading an edited spreadsheet (its
//! validation report, then a draft), previewing a draft's items as the phone shows them, what it
//! changes against the published version, and publishing it (audited, CSRF-protected, behind the
//! same supervisor login as the oversight pages).

use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use bianmin_engine::catalog::{
    changes, contact_text, Catalog, FieldDef, FieldKind, Item, ListKind,
};
use maud::{html, Markup};
use serde::Deserialize;

use crate::catalog::{self as versions, CatalogOpError};
use crate::feedback::csrf_token;
use crate::oversight::session;
use crate::page::{frame_with, internal, message_page};
use crate::store::{CatalogState, CatalogStoreError, CatalogVersion};
use crate::time::china_time;
use crate::AppState;

/// Largest spreadsheet accepted: the whole catalog exports to well under 1 MiB.
pub const MAX_UPLOAD: usize = 8 * 1024 * 1024;

/// The routes of this module, merged into `app`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let forms = axum::extract::DefaultBodyLimit::max(state.limits.public_form);
    Router::new()
        .route(
            "/county/catalog/upload",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .merge(
            Router::new()
                .route("/county/catalog", get(list))
                .route("/county/catalog/{version}", get(version_page))
                .route("/county/catalog/{version}/catalog.xlsx", get(download))
                .route("/county/catalog/{version}/items/{code}", get(item_page))
                .route("/county/catalog/{version}/publish", post(publish))
                .route("/county/catalog/{version}/discard", post(discard))
                .layer(forms),
        )
}

fn page(title: &str, body: Markup) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        frame_with(title, true, body),
    )
        .into_response()
}

fn state_label(s: CatalogState) -> &'static str {
    match s {
        CatalogState::Draft => "草稿",
        CatalogState::Published => "已发布",
    }
}

fn op_page(e: CatalogOpError) -> Response {
    match e {
        CatalogOpError::Store(CatalogStoreError::NotFound(_)) => message_page(
            StatusCode::NOT_FOUND,
            "没有这个版本",
            "该事项清单版本不存在。",
        ),
        CatalogOpError::Store(CatalogStoreError::AlreadyPublished(_)) => message_page(
            StatusCode::CONFLICT,
            "版本已发布",
            "该版本已经发布，发布后不能再修改或删除。",
        ),
        CatalogOpError::Store(CatalogStoreError::Stale { .. }) => message_page(
            StatusCode::CONFLICT,
            "清单已有新版本",
            "上传期间有新版本发布，请重新上传表格。",
        ),
        other => internal(other),
    }
}

async fn run<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> Result<T, CatalogOpError> + Send + 'static,
) -> Result<T, Response> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(internal)?
        .map_err(op_page)
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let all = match run(&state, |st| Ok(st.store.catalog_versions()?)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let csrf = csrf_token(&token);
    page(
        "事项清单管理",
        html! {
            div.card {
                h1 { "事项清单管理" }
                p.muted { "当前用户：" (name) "　" a href="/county" { "返回监管首页" } }
                p.muted { "下载已发布版本的表格，修改后在此上传：系统检查每一行，通过后存为草稿；预览、核对修改内容后发布，村代办员的手机在下次同步时更新。" }
            }
            div.card {
                h2 { "上传修改后的表格（.xlsx）" }
                form method="post" action="/county/catalog/upload" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "表格文件" input type="file" name="file" accept=".xlsx" required; }
                    button type="submit" { "上传并检查" }
                }
            }
            div.card {
                h2 { "版本" }
                table id="versions" {
                    tr { th { "版本" } th { "状态" } th { "来源" } th { "导入" } th { "发布" } th { "修改" } th { "表格" } }
                    @for v in all.iter().rev() {
                        tr {
                            td { a href={ "/county/catalog/" (v.version) } { "第" (v.version) "版" } }
                            td { (state_label(v.state)) }
                            td { (v.source) }
                            td { (v.created_by) " " span.muted { (china_time(v.created_at)) } }
                            td {
                                @if let (Some(b), Some(at)) = (&v.published_by, v.published_at) {
                                    (b) " " span.muted { (china_time(at)) }
                                }
                            }
                            td { (v.changes.len()) "处" }
                            td { a href={ "/county/catalog/" (v.version) "/catalog.xlsx" } { "下载" } }
                        }
                    }
                }
            }
        },
    )
}

/// The multipart form of an upload: the CSRF token and one file.
async fn read_upload(mut m: Multipart) -> Result<(String, String, Vec<u8>), &'static str> {
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(field) = m
        .next_field()
        .await
        .map_err(|_| "上传的内容不完整或过大。")?
    {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(|_| "表单内容不正确。")?,
            Some("file") => {
                let name = field.file_name().unwrap_or("catalog.xlsx").to_string();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|_| "上传的内容不完整或过大。")?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    let (name, bytes) = file.ok_or("请选择要上传的表格文件。")?;
    Ok((csrf, name, bytes))
}

async fn upload(State(state): State<AppState>, headers: HeaderMap, form: Multipart) -> Response {
    let (name, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (csrf, file, bytes) = match read_upload(form).await {
        Ok(u) => u,
        Err(m) => return message_page(StatusCode::BAD_REQUEST, "上传失败", m),
    };
    if csrf != csrf_token(&token) {
        return message_page(
            StatusCode::FORBIDDEN,
            "提交失败",
            "页面已失效，请刷新后重试。",
        );
    }
    // Only the base name, and bounded: it is shown and stored as the version's source.
    let file: String = file
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("catalog.xlsx")
        .chars()
        .take(80)
        .collect();
    let f = file.clone();
    let parsed =
        match tokio::task::spawn_blocking(move || bianmin_sheet::import_bytes(&f, &bytes)).await {
            Ok(p) => p,
            Err(e) => return internal(e),
        };
    let catalog = match parsed {
        Ok(c) => c,
        Err(e) => {
            let lines: Vec<String> = match &e {
                bianmin_sheet::SheetError::Invalid(p) => {
                    p.iter().map(ToString::to_string).collect()
                }
                other => vec![other.to_string()],
            };
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                [(header::CACHE_CONTROL, "no-store")],
                frame_with(
                    "表格检查未通过",
                    true,
                    html! {
                        div.card {
                            h1 { "表格检查未通过" }
                            p { "共" (lines.len()) "处问题，均未保存。请按行号修改后重新上传：" }
                            ol id="problems" { @for l in &lines { li { (l) } } }
                            p { a href="/county/catalog" { "返回事项清单管理" } }
                        }
                    },
                ),
            )
                .into_response();
        }
    };
    let by = format!("supervisor:{name}");
    match run(&state, move |st| {
        versions::import_draft(st.store.as_ref(), &catalog, &file, &by)
    })
    .await
    {
        Ok(d) => Redirect::to(&format!("/county/catalog/{}", d.version)).into_response(),
        Err(r) => r,
    }
}

/// A stored version with its catalog, and the newest published one to compare it with.
async fn load(
    state: &AppState,
    version: u32,
) -> Result<(CatalogVersion, Catalog, Option<(u32, Catalog)>), Response> {
    run(state, move |st| {
        let (v, c) = versions::load(st.store.as_ref(), version)?;
        Ok((v, c, versions::head_catalog(st.store.as_ref())?))
    })
    .await
}

fn list_title(l: ListKind) -> &'static str {
    match l {
        ListKind::Village => "村级事项",
        ListKind::Town => "镇级事项",
    }
}

async fn version_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<u32>,
) -> Response {
    let (_, token) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (v, catalog, head) = match load(&state, version).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    // A draft is compared with the newest published version; a published one shows what it
    // changed when it was published.
    let (against, lines): (String, Vec<String>) = match (&v.state, &head) {
        (CatalogState::Draft, Some((n, old))) => (
            format!("与已发布的第{n}版相比"),
            changes(old, &catalog)
                .iter()
                .map(ToString::to_string)
                .collect(),
        ),
        _ => ("与上一版相比".to_string(), v.changes.clone()),
    };
    let csrf = csrf_token(&token);
    page(
        &format!("事项清单第{}版", v.version),
        html! {
            div.card {
                h1 { "事项清单第" (v.version) "版（" (state_label(v.state)) "）" }
                p.muted {
                    "来源：" (v.source) "　导入：" (v.created_by) " " (china_time(v.created_at))
                    @if let (Some(b), Some(at)) = (&v.published_by, v.published_at) { "　发布：" (b) " " (china_time(at)) }
                    br; "内容校验码：" (v.hash)
                }
                p { a href="/county/catalog" { "返回版本列表" } }
            }
            div.card id="changes" {
                h2 { "修改内容（" (against) "，共" (lines.len()) "处）" }
                @if lines.is_empty() { p.muted { "没有修改。" } }
                ul { @for l in &lines { li { (l) } } }
                @if v.state == CatalogState::Draft {
                    form method="post" action={ "/county/catalog/" (v.version) "/publish" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "发布第" (v.version) "版" }
                    }
                    form method="post" action={ "/county/catalog/" (v.version) "/discard" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button.narrow type="submit" { "删除草稿" }
                    }
                }
            }
            @for list in [ListKind::Village, ListKind::Town] {
                div.card {
                    h2 { (list_title(list)) }
                    table {
                        tr { th { "编码" } th { "事项名称" } th { "类型" } th { "材料" } th { "填写项" } }
                        @for i in catalog.items().iter().filter(|i| i.is_village() == (list == ListKind::Village)) {
                            tr {
                                td { (i.code) }
                                td { @if i.guide.is_some() { a href={ "/county/catalog/" (v.version) "/items/" (i.code) } { (i.name) } } @else { (i.name) } }
                                td { (i.kind) }
                                td { (i.guide.as_ref().map_or(0, |g| g.materials.len())) }
                                td { (i.guide.as_ref().map_or(0, |g| g.fields.len())) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn kind_label(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "文字",
        FieldKind::Textarea => "多行文字",
        FieldKind::Number => "数字",
        FieldKind::Date => "日期",
        FieldKind::Choice => "单选",
        FieldKind::Bool => "是/否",
        FieldKind::IdNumber => "身份证号",
        FieldKind::Phone => "手机号",
        FieldKind::Multi => "多选",
        FieldKind::Group => "名单（多行）",
    }
}

fn field_rows(fields: &[FieldDef]) -> Markup {
    html! {
        ul {
            @for f in fields {
                li {
                    strong { (f.label) } "（" (kind_label(f.kind)) "）"
                    @if f.required { " 必填" }
                    @if let Some(e) = &f.required_if { br; span.muted { "必填条件：" code { (e.source()) } } }
                    @if let Some(e) = &f.relevant { br; span.muted { "显示条件：" code { (e.source()) } } }
                    @if let Some(e) = &f.constraint { br; span.muted { "填写要求：" code { (e.source()) } @if !f.constraint_message.is_empty() { "（" (f.constraint_message) "）" } } }
                    @if !f.choices.is_empty() { br; span.muted { "选项：" (f.choices.join("、")) } }
                    @if let (Some(a), Some(b)) = (f.min_rows, f.max_rows) { br; span.muted { (a) "至" (b) "行" } }
                    @if !f.help.is_empty() { br; span.muted { (f.help) } }
                    @if !f.fields.is_empty() { (field_rows(&f.fields)) }
                }
            }
        }
    }
}

/// One item as the phone's guide and form show it.
fn item_preview(catalog: &Catalog, item: &Item) -> Markup {
    let Some(g) = &item.guide else {
        return html! { p.muted { "该事项没有办事指南。" } };
    };
    html! {
        div.card {
            h1 { (item.name) }
            p.muted { (item.code) "　" (item.kind) "　" (g.handling_level) }
            @if g.draft || !g.to_confirm.is_empty() {
                div id="to-confirm" {
                    h2.bad { "待县确认" }
                    ul { @for t in &g.to_confirm { li { (t) } } }
                }
            }
            p { (g.summary) }
        }
        div.card {
            h2 { "申请条件" }
            ol { @for c in &g.conditions { li { (c) } } }
            @if !g.checks.is_empty() {
                p.muted { "初审核对：" }
                ul { @for c in &g.checks { li { (c.message) " " span.muted { code { (c.rule.source()) } } } } }
            }
        }
        div.card id="materials" {
            h2 { "申请材料" }
            ol {
                @for m in &g.materials {
                    li {
                        strong { (m.name) } "（" (m.form.label()) "，" (m.need_text()) "）"
                        br; "拍照：" (m.pages_text())
                        @if let Some(e) = &m.required_if { br; span.muted { "必交条件：" code { (e.source()) } } }
                        @if let Some(e) = &m.relevant { br; span.muted { "显示条件：" code { (e.source()) } } }
                        @if let Some(e) = &m.per_if { br; span.muted { "每人条件：" code { (e.source()) } } }
                        @if !m.note.is_empty() { br; span.muted { (m.note) } }
                    }
                }
            }
        }
        div.card id="fields" {
            h2 { "填写项" }
            @if g.fields.is_empty() { p.muted { "除申请人信息外无其他填写项。" } }
            (field_rows(&g.fields))
        }
        div.card {
            h2 { "办理流程" }
            ol { @for p in &g.procedure { li { (p) } } }
            p { "承诺时限：" (g.promised_days) "个工作日　收费标准：" (g.fee) }
            p { (contact_text(catalog.contact(&g.contact))) }
            @if !g.legal_basis.is_empty() {
                h2 { "设定依据" }
                ul { @for l in &g.legal_basis { li { (l) } } }
            }
        }
        @if !g.sample_form.is_empty() {
            div.card id="sample" {
                h2 { "示范文本" }
                pre style="white-space:pre-wrap;font:inherit" { (g.sample_form) }
            }
        }
    }
}

async fn item_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((version, code)): Path<(u32, String)>,
) -> Response {
    if let Err(r) = session(&state, &headers).await {
        return r;
    }
    let (v, catalog, _) = match load(&state, version).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let Some(item) = catalog.item(&code) else {
        return message_page(
            StatusCode::NOT_FOUND,
            "没有这个事项",
            "该版本中没有这个事项。",
        );
    };
    page(
        &format!("{} · 第{}版预览", item.name, v.version),
        html! {
            p { a href={ "/county/catalog/" (v.version) } { "返回第" (v.version) "版（" (state_label(v.state)) "）" } }
            (item_preview(&catalog, item))
        },
    )
}

/// A version as the spreadsheet to edit.
async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<u32>,
) -> Response {
    if let Err(r) = session(&state, &headers).await {
        return r;
    }
    let bytes = match run(&state, move |st| {
        let (_, c) = versions::load(st.store.as_ref(), version)?;
        Ok(bianmin_sheet::export_bytes(&c)?)
    })
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"catalog-v{version}.xlsx\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The signed-in supervisor behind a form post with a valid CSRF token, as the audit names them;
/// otherwise the page to answer with.
async fn supervisor_posting(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<String, Response> {
    let (name, token) = session(state, headers).await?;
    if form.map(|Form(f)| f.csrf).unwrap_or_default() != csrf_token(&token) {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "提交失败",
            "页面已失效，请刷新后重试。",
        ));
    }
    Ok(format!("supervisor:{name}"))
}

async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<u32>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let by = match supervisor_posting(&state, &headers, form).await {
        Ok(by) => by,
        Err(r) => return r,
    };
    match run(&state, move |st| {
        let v = versions::publish(st.store.as_ref(), version, &by)?;
        // Served from this moment, without a restart.
        st.catalogs.refresh(st.store.as_ref())?;
        Ok(v)
    })
    .await
    {
        Ok(v) => Redirect::to(&format!("/county/catalog/{}", v.version)).into_response(),
        Err(r) => r,
    }
}

async fn discard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<u32>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let by = match supervisor_posting(&state, &headers, form).await {
        Ok(by) => by,
        Err(r) => return r,
    };
    match run(&state, move |st| {
        versions::discard(st.store.as_ref(), version, &by)
    })
    .await
    {
        Ok(()) => Redirect::to("/county/catalog").into_response(),
        Err(r) => r,
    }
}
