//! Town staff (tablet role): the inbox of the town's villages with filters and deadline
//! countdowns, and the case view with every material's pages (thumbnails, a full-size viewer) and
//! the staff actions 受理 / 补正 / 不予受理 / 转县 / 办结 / 已送达.
//!
//! Everything here is read from and written to the town centre through the engine's transport
//! with the tablet's enrolled key. Pages are downloaded only while their case is open, checked
//! against their SHA-256 by the transport, and held in memory as `data:` URLs that are dropped
//! with the case view: the tablet keeps no copy of residents' data on disk.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_engine::case::{allowed, Case};
use bianmin_engine::catalog::Guide;
use bianmin_engine::transport::{Credential, Transport, TransportError};
use bianmin_protocol::sync::{ActionRequest, InboxRow, TownAction};
use bianmin_protocol::{AttachmentRef, CaseState, Delivery, MissingItem};
use chrono::Local;
use dioxus::prelude::*;

use crate::app::Services;
use crate::components::top_bar::{SyncPanel, TopBar};
use crate::services::book::Device;

fn transport(dev: &Device) -> Result<Transport, String> {
    let key = dev.key()?;
    Transport::new(
        &dev.server,
        Some(Credential {
            device_id: dev.device_code.clone(),
            key,
        }),
    )
    .map_err(|e| e.staff_message())
}

/// The inbox query string for the filters.
pub fn query(village: &str, state: &str, overdue: bool) -> String {
    let mut q = Vec::new();
    if !village.is_empty() {
        q.push(format!("village={village}"));
    }
    if !state.is_empty() {
        q.push(format!("state={state}"));
    }
    if overdue {
        q.push("overdue=true".to_string());
    }
    q.join("&")
}

/// "还剩3天" / "已超期2天" for a deadline.
pub fn countdown(deadline: Option<chrono::NaiveDate>, today: chrono::NaiveDate) -> String {
    match deadline {
        None => "未受理".to_string(),
        Some(d) if d >= today => format!("还剩{}天", (d - today).num_days()),
        Some(d) => format!("已超期{}天", (today - d).num_days()),
    }
}

#[component]
pub fn TownInbox() -> Element {
    let services = use_context::<Services>();
    let who = services
        .device
        .read()
        .as_ref()
        .map(|d| {
            format!(
                "{} · {}",
                d.person,
                if d.place_name.is_empty() {
                    &d.place
                } else {
                    &d.place_name
                }
            )
        })
        .unwrap_or_default();
    let mut village = use_signal(String::new);
    let mut state = use_signal(String::new);
    let mut overdue = use_signal(|| false);
    let mut open = use_signal(|| None::<String>);
    let mut reload = use_signal(|| 0u32);
    let device = services.device;
    let rows = use_resource(move || async move {
        let _ = reload();
        let dev = device.read().clone().ok_or("设备未登记")?;
        let t = transport(&dev)?;
        t.inbox(&query(&village(), &state(), overdue()))
            .await
            .map_err(|e| e.staff_message())
    });
    let today = Local::now().date_naive();
    if let Some(id) = open() {
        return rsx! { TownCase { id, on_close: move |_| { open.set(None); reload += 1; } } };
    }
    let list: Result<Vec<InboxRow>, String> = match &*rows.read() {
        None => Ok(Vec::new()),
        Some(r) => r.clone(),
    };
    rsx! {
        TopBar { title: "镇中心收件箱" }
        main { class: "page town",
            p { class: "muted", "{who}" }
            SyncPanel {}
            div { class: "filters",
                input { id: "filter-village", placeholder: "村代码（留空为全部）", value: "{village}", oninput: move |e| village.set(e.value()) }
                select { id: "filter-state", onchange: move |e| state.set(e.value()),
                    option { value: "", "全部状态" }
                    for s in [CaseState::Received, CaseState::Accepted, CaseState::CorrectionRequested, CaseState::Forwarded, CaseState::Completed, CaseState::Refused] {
                        option { value: "{s.as_str()}", "{s.label()}" }
                    }
                }
                label { class: "check", input { r#type: "checkbox", checked: overdue(), onchange: move |e| overdue.set(e.checked()) } "只看超期" }
                button { class: "btn", id: "inbox-refresh", onclick: move |_| reload += 1, "刷新" }
            }
            match list {
                Err(e) => rsx! { p { class: "error", "{e}" } },
                Ok(rows) if rows.is_empty() => rsx! { p { class: "empty", "没有符合条件的办件。" } },
                Ok(rows) => rsx! {
                    ul { class: "cases",
                        for r in rows {
                            li { key: "{r.case_id}",
                                button { class: "case-row", "data-case": "{r.case_id}", "data-state": "{r.state.as_str()}", "data-version": "{r.version}",
                                    onclick: { let id = r.case_id.clone(); move |_| open.set(Some(id.clone())) },
                                    div { class: "row-top",
                                        strong { "{r.item_name}" }
                                        span { class: "badge s-{r.state.as_str()}", "{r.state.label()}" }
                                    }
                                    div { class: "muted", "{r.village_name} · {r.applicant} · 身份证尾号{r.id_number} · 第{r.version}版" }
                                    if matches!(r.state, CaseState::Accepted | CaseState::Forwarded) {
                                        div { class: if r.overdue { "error" } else { "muted" }, "{countdown(r.deadline, today)}" }
                                    }
                                }
                            }
                        }
                    }
                },
            }
        }
    }
}

/// What the tablet holds of one page while its case is open.
#[derive(Debug, Clone, PartialEq)]
pub enum PageView {
    Loading,
    /// The verified bytes as a `data:` URL (memory only).
    Ready(String),
    /// What to tell staff, with what to do.
    Failed(String),
}

/// Turns a downloaded page into what the thumbnail and viewer show. Only picture formats are put
/// into an `<img>`; the mime type comes from the village's submission.
pub fn page_view(mime: &str, bytes: &[u8]) -> PageView {
    let m = match mime.trim().to_ascii_lowercase().as_str() {
        "image/jpeg" | "image/jpg" => "image/jpeg",
        "image/png" => "image/png",
        "image/webp" => "image/webp",
        _ => {
            return PageView::Failed(format!(
                "这一页的格式（{mime}）无法在平板上显示，请村代办员重新拍摄这一页。"
            ))
        }
    };
    PageView::Ready(format!("data:{m};base64,{}", STANDARD.encode(bytes)))
}

/// What staff are told when a page cannot be loaded, and what to do about it.
pub fn page_error(e: &TransportError) -> String {
    match e {
        TransportError::Offline(_) => {
            "网络不通，这一页没有载入。请检查网络，稍后点“重试”。".to_string()
        }
        TransportError::Retryable(_) => {
            "网络不稳定，这一页没有下载完整。请稍后点“重试”。".to_string()
        }
        TransportError::Throttled { .. } => e.staff_message(),
        TransportError::Corrupt { .. } => e.staff_message(),
        TransportError::ClockSkew { .. } => e.staff_message(),
        TransportError::Rejected { status: 401, .. } => {
            "本机登记已失效或已被停用，看不到材料。请联系镇中心管理员重新登记本机。".to_string()
        }
        TransportError::Rejected { status: 403, .. } => "本机无权查看这个村的材料。".to_string(),
        TransportError::Rejected { status: 404, .. } => {
            "镇中心没有这一页（办件可能刚重新提交）。请返回收件箱，刷新后重新打开办件。".to_string()
        }
        TransportError::Rejected { status, .. } => {
            format!("镇中心没有发来这一页（{status}）。请稍后点“重试”，仍不行请联系镇中心管理员。")
        }
    }
}

/// One page in reading order: material by material, page by page (what 上一页/下一页 walk).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRef {
    pub material: String,
    /// 1-based page number within its material, and the material's page count.
    pub n: usize,
    pub of: usize,
    pub page: AttachmentRef,
}

/// A material as staff review it: the guide's materials in guide order (submitted or not), then
/// any material the case has that the guide no longer lists.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterialRow {
    pub key: String,
    pub name: String,
    pub required: bool,
    /// Indices into the reading order (`pages_in_order`).
    pub pages: Vec<usize>,
}

/// The case's pages in reading order and its materials with their pages.
pub fn review_layout(c: &Case, guide: Option<&Guide>) -> (Vec<PageRef>, Vec<MaterialRow>) {
    let mut rows: Vec<MaterialRow> = guide
        .map(|g| {
            g.materials
                .iter()
                .map(|m| MaterialRow {
                    key: m.key.clone(),
                    name: m.name.clone(),
                    required: m.required,
                    pages: vec![],
                })
                .collect()
        })
        .unwrap_or_default();
    for m in &c.materials {
        if !rows.iter().any(|r| r.key == m.key) {
            rows.push(MaterialRow {
                key: m.key.clone(),
                name: m.key.clone(),
                required: false,
                pages: vec![],
            });
        }
    }
    let mut order = Vec::new();
    for row in rows.iter_mut() {
        let Some(m) = c.materials.iter().find(|m| m.key == row.key) else {
            continue;
        };
        for (i, p) in m.pages.iter().enumerate() {
            row.pages.push(order.len());
            order.push(PageRef {
                material: row.name.clone(),
                n: i + 1,
                of: m.pages.len(),
                page: p.clone(),
            });
        }
    }
    (order, rows)
}

/// Downloads `list` one page after another (in reading order, so thumbnails fill from the top).
fn load_pages(
    device: Signal<Option<Device>>,
    case_id: String,
    list: Vec<AttachmentRef>,
    mut pages: Signal<HashMap<String, PageView>>,
) {
    spawn(async move {
        let Some(dev) = device.read().clone() else {
            return;
        };
        let t = match transport(&dev) {
            Ok(t) => t,
            Err(e) => {
                for p in list {
                    pages.write().insert(p.sha256, PageView::Failed(e.clone()));
                }
                return;
            }
        };
        for p in list {
            let v = match t.attachment(&case_id, &p.sha256).await {
                Ok(bytes) => page_view(&p.mime, &bytes),
                Err(e) => {
                    tracing::warn!(case = %case_id, sha = %p.sha256, error = %e, "page download failed");
                    PageView::Failed(page_error(&e))
                }
            };
            pages.write().insert(p.sha256, v);
        }
    });
}

/// Viewer zoom steps, in percent of the screen width.
const ZOOMS: [u32; 4] = [100, 150, 200, 300];

/// One case for staff: its answers, materials and the actions.
#[component]
fn TownCase(id: String, on_close: EventHandler<()>) -> Element {
    let services = use_context::<Services>();
    let device = services.device;
    let mut refresh = use_signal(|| 0u32);
    let case_id = id.clone();
    let case = use_resource(move || {
        let id = case_id.clone();
        async move {
            let _ = refresh();
            let dev = device.read().clone().ok_or("设备未登记")?;
            transport(&dev)?
                .case(&id)
                .await
                .map_err(|e| e.staff_message())
        }
    });
    // Pages by SHA-256, memory only; dropped when the case view closes.
    let mut pages = use_signal(HashMap::<String, PageView>::new);
    let load_id = id.clone();
    use_effect(move || {
        let Some(Ok(c)) = &*case.read() else { return };
        // After a resubmission, the pages of the replaced version leave memory.
        let current: Vec<&str> = c
            .materials
            .iter()
            .flat_map(|m| &m.pages)
            .map(|p| p.sha256.as_str())
            .collect();
        if pages.peek().keys().any(|k| !current.contains(&k.as_str())) {
            pages.write().retain(|k, _| current.contains(&k.as_str()));
        }
        let mut todo: Vec<AttachmentRef> = Vec::new();
        for p in c.materials.iter().flat_map(|m| &m.pages) {
            if !pages.peek().contains_key(&p.sha256) && !todo.iter().any(|t| t.sha256 == p.sha256) {
                todo.push(p.clone());
            }
        }
        if todo.is_empty() {
            return;
        }
        for p in &todo {
            pages.write().insert(p.sha256.clone(), PageView::Loading);
        }
        load_pages(device, load_id.clone(), todo, pages);
    });
    let mut viewer = use_signal(|| None::<usize>);
    let mut zoom = use_signal(|| 0usize);
    let mut missing = use_signal(Vec::<MissingItem>::new);
    let mut text = use_signal(String::new);
    let mut result = use_signal(String::new);
    let mut carrier = use_signal(|| "中国邮政EMS".to_string());
    let mut tracking = use_signal(String::new);
    let mut delivery = use_signal(|| "self".to_string());
    let mut message = use_signal(|| None::<(bool, String)>);
    let busy = use_signal(|| false);
    let current: Option<Result<Case, String>> = case.read().clone();
    let act_id = id.clone();
    let act = move |action: TownAction, version: u32| {
        let id = act_id.clone();
        // A copy, so the handler stays `Fn` and can be cloned into every button.
        let mut busy = busy;
        if busy() {
            return;
        }
        busy.set(true);
        spawn(async move {
            let Some(dev) = device.read().clone() else {
                busy.set(false);
                return;
            };
            let req = ActionRequest {
                action,
                staff: dev.person.clone(),
                expected_version: Some(version),
            };
            let r = match transport(&dev) {
                Ok(t) => t.act(&id, &req).await.map_err(|e| e.staff_message()),
                Err(e) => Err(e),
            };
            message.set(Some(match r {
                Ok(res) => (true, format!("已完成：{}", res.state.label())),
                Err(e) => (false, format!("操作失败：{e}")),
            }));
            busy.set(false);
            refresh += 1;
        });
    };
    let Some(current) = current else {
        return rsx! { TopBar { title: "办件" } main { class: "page", p { class: "muted", "正在读取办件…" } } };
    };
    let c = match current {
        Ok(c) => c,
        Err(e) => {
            return rsx! {
                TopBar { title: "办件" }
                main { class: "page",
                    p { class: "error", "{e}" }
                    div { class: "actions",
                        button { class: "btn primary", onclick: move |_| refresh += 1, "重试" }
                        button { class: "btn", onclick: move |_| on_close.call(()), "返回收件箱" }
                    }
                }
            }
        }
    };
    let item = services.catalog.item(&c.item).cloned();
    let guide = item.as_ref().and_then(|i| i.guide.clone());
    let (order, rows) = review_layout(&c, guide.as_ref());
    let total = order.len();
    let v = c.version;
    let s = c.state;
    // 补正 is asked once, with the complete list (一次性告知); the server refuses a second one.
    let corrected_before = c
        .history
        .iter()
        .any(|h| h.to == CaseState::CorrectionRequested);
    let can_correct = allowed(s, CaseState::CorrectionRequested) && !corrected_before;
    let field_label = |k: &str| {
        guide
            .as_ref()
            .and_then(|g| g.fields.iter().find(|f| f.key == k))
            .map(|f| f.label.clone())
            .unwrap_or(k.to_string())
    };
    let mat_name = |k: &str| {
        rows.iter()
            .find(|r| r.key == k)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| field_label(k))
    };
    let open_list: Vec<(String, String)> = c
        .correction
        .iter()
        .map(|m| (mat_name(&m.key), m.note.clone()))
        .collect();
    let act1 = act.clone();
    let act2 = act.clone();
    let act3 = act.clone();
    let act4 = act.clone();
    let act5 = act.clone();
    let act6 = act.clone();
    let viewed = viewer()
        .filter(|i| *i < total)
        .map(|i| (i, order[i].clone()));
    rsx! {
        TopBar { title: "{item.as_ref().map(|i| i.name.clone()).unwrap_or(c.item.clone())}" }
        main { class: "page town-case",
            button { class: "btn", id: "back-inbox", onclick: move |_| on_close.call(()), "‹ 返回收件箱" }
            p { "办件编号 " code { "{c.id}" } " · 第{v}版 · "
                strong { id: "case-state", "data-state": "{s.as_str()}", "data-version": "{v}", "{s.label()}" } }
            p { "首问负责：{c.responsible.name}（{c.responsible.village}）" }
            if let Some(d) = c.deadline { p { "承诺办结日期：{d}" } }
            dl { class: "facts",
                dt { "申请人" } dd { "{c.applicant.name}" }
                dt { "身份证号码" } dd { "{c.applicant.id_number}" }
                dt { "联系电话" } dd { "{c.applicant.phone}" }
                for (k, val) in c.answers.iter() {
                    dt { {field_label(k)} }
                    dd { "{val}" }
                }
            }
            if !open_list.is_empty() {
                div { class: "correction", id: "open-correction",
                    strong { "已要求补正，等待村里重新提交：" }
                    ul { for (name, note) in open_list { li { "{name}：{note}" } } }
                }
            }
            h2 { id: "materials", "材料" }
            p { class: "muted", "共{total}页，点页面放大查看。" if can_correct { "需要补正的材料请勾选“需补正”并写明问题。" } }
            div { class: "town-mats",
                for row in rows.iter() {
                    div { key: "{row.key}", class: if missing.read().iter().any(|m| m.key == row.key) { "town-mat picked" } else { "town-mat" }, "data-key": "{row.key}",
                        div { class: "mat-head",
                            strong { "{row.name}" }
                            if row.required { span { class: "req", "（必交）" } }
                            span { class: "have", if row.pages.is_empty() { "未提交" } else { "{row.pages.len()}页" } }
                        }
                        if !row.pages.is_empty() {
                            div { class: "thumbs",
                                for &i in row.pages.iter() {
                                    {
                                        let p = &order[i];
                                        let state = pages.read().get(&p.page.sha256).cloned().unwrap_or(PageView::Loading);
                                        let sha = p.page.sha256.clone();
                                        let label = format!("{} 第{}/{}页", p.material, p.n, p.of);
                                        match state {
                                            PageView::Ready(url) => rsx! {
                                                button { key: "{sha}", class: "thumb", "data-sha": "{sha}", "data-state": "ready", title: "{label}", "aria-label": "放大查看{label}",
                                                    onclick: move |_| { zoom.set(0); viewer.set(Some(i)); },
                                                    img { src: "{url}", alt: "{label}" }
                                                    span { class: "pg", "{p.n}/{p.of}" }
                                                }
                                            },
                                            PageView::Loading => rsx! {
                                                button { key: "{sha}", class: "thumb loading", "data-sha": "{sha}", "data-state": "loading", title: "{label}",
                                                    onclick: move |_| { zoom.set(0); viewer.set(Some(i)); },
                                                    span { "正在载入…" }
                                                    span { class: "pg", "{p.n}/{p.of}" }
                                                }
                                            },
                                            PageView::Failed(e) => rsx! {
                                                button { key: "{sha}", class: "thumb failed", "data-sha": "{sha}", "data-state": "failed", title: "{e}",
                                                    onclick: { let pr = p.page.clone(); let cid = id.clone(); move |_| {
                                                        pages.write().insert(pr.sha256.clone(), PageView::Loading);
                                                        load_pages(device, cid.clone(), vec![pr.clone()], pages);
                                                    } },
                                                    span { "载入失败" }
                                                    span { "点此重试" }
                                                }
                                            },
                                        }
                                    }
                                }
                            }
                            if let Some(e) = row.pages.iter().find_map(|&i| match pages.read().get(&order[i].page.sha256) { Some(PageView::Failed(e)) => Some(e.clone()), _ => None }) {
                                p { class: "error page-error", "{e}" }
                            }
                        }
                        if can_correct {
                            label { class: "check pick",
                                input { r#type: "checkbox", checked: missing.read().iter().any(|m| m.key == row.key),
                                    onchange: { let k = row.key.clone(); move |e: FormEvent| {
                                        let mut list = missing.write();
                                        list.retain(|x| x.key != k);
                                        if e.checked() { list.push(MissingItem { key: k.clone(), note: String::new() }); }
                                    } } }
                                "需补正"
                            }
                            if let Some(note) = missing.read().iter().find(|m| m.key == row.key).map(|m| m.note.clone()) {
                                input { class: "pick-note", placeholder: "写明问题，如：照片不清楚，请重拍", value: "{note}",
                                    oninput: { let k = row.key.clone(); move |e: FormEvent| {
                                        if let Some(m) = missing.write().iter_mut().find(|m| m.key == k) { m.note = e.value(); }
                                    } } }
                            }
                        }
                    }
                }
            }
            if let Some((ok, msg)) = message() { p { id: "act-message", class: if ok { "ok" } else { "error" }, "data-ok": "{ok}", "{msg}" } }
            if allowed(s, CaseState::Accepted) || can_correct || allowed(s, CaseState::Refused) || allowed(s, CaseState::Forwarded) {
                label { class: "field", span { "意见 / 理由（补正说明、不予受理理由、转县说明）" }
                    textarea { id: "staff-text", value: "{text}", oninput: move |e| text.set(e.value()) } }
                div { class: "actions town-actions",
                    if allowed(s, CaseState::Accepted) {
                        button { class: "btn primary", id: "act-accept", disabled: busy(), onclick: move |_| act1(TownAction::Accept, v), "受理" }
                    }
                    if can_correct {
                        button { class: "btn", id: "act-correct", disabled: busy(),
                            onclick: move |_| {
                                let list = missing.read().clone();
                                if list.is_empty() { return message.set(Some((false, "请先在材料中勾选“需补正”。".into()))); }
                                if list.iter().any(|m| m.note.trim().is_empty()) {
                                    return message.set(Some((false, "请为每项勾选的材料写明问题（例如：照片不清楚，请重拍）。".into())));
                                }
                                let list = list.into_iter().map(|m| MissingItem { key: m.key, note: m.note.trim().to_string() }).collect();
                                act2(TownAction::RequestCorrection { missing: list, note: text.read().trim().to_string() }, v)
                            },
                            "补正（{missing.read().len()}项）"
                        }
                    }
                    if allowed(s, CaseState::Refused) {
                        button { class: "btn", id: "act-refuse", disabled: busy(),
                            onclick: move |_| {
                                if text.read().trim().is_empty() { return message.set(Some((false, "不予受理请在上面填写理由。".into()))); }
                                act3(TownAction::Refuse { reason: text.read().trim().to_string() }, v)
                            }, "不予受理" }
                    }
                    if allowed(s, CaseState::Forwarded) {
                        button { class: "btn", id: "act-forward", disabled: busy(), onclick: move |_| act4(TownAction::Forward { note: text.read().trim().to_string() }, v), "转县" }
                    }
                }
            }
            if allowed(s, CaseState::Completed) {
                h2 { "办结" }
                label { class: "field", span { "办理结果" }
                    input { id: "result", placeholder: "如：已批准，发放证明", value: "{result}", oninput: move |e| result.set(e.value()) } }
                label { class: "field", span { "送达方式" }
                    select { id: "delivery", value: "{delivery}", onchange: move |e| delivery.set(e.value()),
                        option { value: "self", "自取" }
                        option { value: "mail", "邮寄" }
                        option { value: "agent", "代办员送达" }
                    }
                }
                if delivery() == "mail" {
                    div { class: "choice",
                        input { id: "carrier", placeholder: "快递公司", value: "{carrier}", oninput: move |e| carrier.set(e.value()) }
                        input { id: "tracking", placeholder: "邮寄单号", value: "{tracking}", oninput: move |e| tracking.set(e.value()) }
                    }
                }
                button { class: "btn primary big", id: "act-complete", disabled: busy(),
                    onclick: move |_| {
                        if result.read().trim().is_empty() { return message.set(Some((false, "请填写办理结果。".into()))); }
                        let d = match delivery().as_str() {
                            "mail" if carrier.read().trim().is_empty() || tracking.read().trim().is_empty() => {
                                return message.set(Some((false, "邮寄请填写快递公司和邮寄单号。".into())))
                            }
                            "mail" => Delivery::Mail { carrier: carrier.read().trim().to_string(), tracking_number: tracking.read().trim().to_string() },
                            "agent" => Delivery::AgentDelivery,
                            _ => Delivery::SelfPickup,
                        };
                        act5(TownAction::Complete { result: result.read().trim().to_string(), delivery: d }, v)
                    },
                    "办结"
                }
            }
            if let Some(bianmin_protocol::Decision::Completed { result, delivery }) = &c.last_decision {
                p { id: "completed", "办理结果：{result}；送达方式：{delivery.label()}" }
            }
            if allowed(s, CaseState::Delivered) {
                button { class: "btn", id: "act-deliver", disabled: busy(), onclick: move |_| act6(TownAction::Deliver { note: String::new() }, v), "已送达" }
            }
        }
        if let Some((i, p)) = viewed {
            PageViewer { index: i, total, page: p.clone(), view: pages.read().get(&p.page.sha256).cloned().unwrap_or(PageView::Loading),
                zoom: ZOOMS[zoom().min(ZOOMS.len() - 1)],
                on_close: move |_| viewer.set(None),
                on_step: move |d: i64| {
                    let next = i as i64 + d;
                    if next >= 0 && (next as usize) < total { viewer.set(Some(next as usize)); }
                },
                on_zoom: move |d: i64| zoom.set((zoom() as i64 + d).clamp(0, ZOOMS.len() as i64 - 1) as usize),
                on_retry: { let pr = p.page.clone(); let cid = id.clone(); move |_| {
                    pages.write().insert(pr.sha256.clone(), PageView::Loading);
                    load_pages(device, cid.clone(), vec![pr.clone()], pages);
                } },
            }
        }
    }
}

/// The full-size page viewer: fit to the screen width, zoom by buttons, keys or pinch, scroll to
/// pan; 上一页/下一页 walk every page of the case in reading order.
#[component]
fn PageViewer(
    index: usize,
    total: usize,
    page: PageRef,
    view: PageView,
    zoom: u32,
    on_close: EventHandler<()>,
    on_step: EventHandler<i64>,
    on_zoom: EventHandler<i64>,
    on_retry: EventHandler<()>,
) -> Element {
    let label = format!("{} 第{}/{}页", page.material, page.n, page.of);
    rsx! {
        div { class: "viewer", id: "viewer", role: "dialog", "aria-label": "{label}", tabindex: "0", "data-index": "{index}",
            onmounted: move |e: MountedEvent| async move { let _ = e.set_focus(true).await; },
            onkeydown: move |e: KeyboardEvent| match e.key() {
                Key::Escape => on_close.call(()),
                Key::ArrowLeft | Key::PageUp => on_step.call(-1),
                Key::ArrowRight | Key::PageDown => on_step.call(1),
                Key::Character(c) if c == "+" || c == "=" => on_zoom.call(1),
                Key::Character(c) if c == "-" => on_zoom.call(-1),
                _ => {}
            },
            div { class: "viewer-bar",
                span { class: "viewer-title", "{label} ", small { "（全部{total}页中的第{index + 1}页）" } }
                button { class: "btn", id: "viewer-prev", disabled: index == 0, onclick: move |_| on_step.call(-1), "上一页" }
                button { class: "btn", id: "viewer-next", disabled: index + 1 >= total, onclick: move |_| on_step.call(1), "下一页" }
                button { class: "btn", id: "viewer-zoom-out", disabled: zoom <= ZOOMS[0], onclick: move |_| on_zoom.call(-1), "缩小" }
                button { class: "btn", id: "viewer-zoom-in", disabled: zoom >= ZOOMS[ZOOMS.len() - 1], onclick: move |_| on_zoom.call(1), "放大" }
                button { class: "btn primary", id: "viewer-close", onclick: move |_| on_close.call(()), "关闭" }
            }
            div { class: "viewer-stage",
                match view {
                    PageView::Ready(url) => rsx! { img { id: "viewer-img", src: "{url}", alt: "{label}", style: "width: {zoom}%;", "data-zoom": "{zoom}" } },
                    PageView::Loading => rsx! { p { class: "viewer-msg", id: "viewer-loading", "正在载入这一页…" } },
                    PageView::Failed(e) => rsx! {
                        div { class: "viewer-msg", id: "viewer-error",
                            p { "{e}" }
                            button { class: "btn primary", onclick: move |_| on_retry.call(()), "重试" }
                        }
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_make_the_inbox_query() {
        assert_eq!(query("", "", false), "");
        assert_eq!(
            query("140423100201", "received", true),
            "village=140423100201&state=received&overdue=true"
        );
    }

    #[test]
    fn countdown_in_plain_chinese() {
        let d = |n| chrono::NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        assert_eq!(countdown(Some(d(30)), d(27)), "还剩3天");
        assert_eq!(countdown(Some(d(25)), d(27)), "已超期2天");
        assert_eq!(countdown(None, d(27)), "未受理");
    }

    #[test]
    fn pages_become_data_urls_only_for_pictures() {
        assert_eq!(
            page_view("image/jpeg", b"abc"),
            PageView::Ready("data:image/jpeg;base64,YWJj".into())
        );
        assert_eq!(
            page_view("IMAGE/PNG", b""),
            PageView::Ready("data:image/png;base64,".into())
        );
        let PageView::Failed(e) = page_view("text/html", b"<script>") else {
            panic!("html must not be shown")
        };
        assert!(e.contains("重新拍摄"));
    }

    #[test]
    fn page_errors_say_what_to_do() {
        assert!(page_error(&TransportError::Offline("x".into())).contains("网络不通"));
        assert!(page_error(&TransportError::Retryable("x".into())).contains("重试"));
        assert!(page_error(&TransportError::Corrupt {
            sha256: "a".into(),
            got: "b".into()
        })
        .contains("损坏"));
        let rej = |status| TransportError::Rejected {
            status,
            code: String::new(),
            message: String::new(),
            missing: vec![],
            upload_offset: None,
        };
        assert!(page_error(&rej(404)).contains("刷新"));
        assert!(page_error(&rej(401)).contains("重新登记"));
    }

    #[test]
    fn reading_order_follows_the_guide_and_keeps_unlisted_materials() {
        use bianmin_protocol::{AgentRef, Applicant, MaterialPages};
        let catalog = bianmin_engine::catalog::Catalog::embedded().unwrap();
        let guide = catalog.item("V11").unwrap().guide.clone().unwrap();
        let page = |n: &str| AttachmentRef {
            name: n.into(),
            sha256: n.repeat(64)[..64].to_string(),
            bytes: 1,
            mime: "image/jpeg".into(),
        };
        let mut c = Case::new(
            "140423100201-20261128-ABC234-0001".into(),
            "V11",
            Applicant::default(),
            AgentRef::default(),
            chrono::Utc::now(),
        );
        let first = guide.materials[0].key.clone();
        let second = guide.materials[1].key.clone();
        c.materials = vec![
            MaterialPages {
                key: second.clone(),
                pages: vec![page("c")],
            },
            MaterialPages {
                key: "old_key".into(),
                pages: vec![page("d")],
            },
            MaterialPages {
                key: first.clone(),
                pages: vec![page("a"), page("b")],
            },
        ];
        let (order, rows) = review_layout(&c, Some(&guide));
        let names: Vec<&str> = order.iter().map(|p| p.page.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!((order[1].n, order[1].of), (2, 2));
        assert_eq!(rows.len(), guide.materials.len() + 1);
        assert_eq!(rows[0].pages, [0, 1]);
        assert_eq!(rows.last().unwrap().key, "old_key");
        assert!(rows
            .iter()
            .filter(|r| r.key != first && r.key != second && r.key != "old_key")
            .all(|r| r.pages.is_empty()));
    }
}
