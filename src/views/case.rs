//! One case: the form with live validation, the material checklist with capture, 初审, sealing,
//! and — once sent — the town's decisions. A 补正 reopens the same case here for the fixes.
//!
//! Every keystroke and every photo is saved to the book at once (`commit`), so nothing the agent
//! typed is lost if the phone dies or the app is closed.

use std::collections::BTreeMap;

use bianmin_engine::case::Case;
use bianmin_engine::catalog::{FieldDef, FieldKind, Item};
use bianmin_engine::validate::{self, FieldProblem};
use bianmin_protocol::{CaseState, Decision};
use chrono::{Local, NaiveDate};
use dioxus::prelude::*;

use crate::app::{Nav, Screen, Services};
use crate::capture::{pipeline::originals, AdjustCorners, ScanCapture};
use crate::components::top_bar::TopBar;

/// The applicant fields every item has, with their problem keys.
const APPLICANT: [(&str, &str, &str); 4] = [
    ("applicant.name", "申请人姓名", "text"),
    ("applicant.id_number", "身份证号码", "text"),
    ("applicant.phone", "联系电话", "tel"),
    ("applicant.address", "住址", "text"),
];

fn today() -> NaiveDate {
    Local::now().date_naive()
}

/// All live problems of the form (not the materials), keyed by field key.
pub fn form_problems(item: &Item, case: &Case, today: NaiveDate) -> BTreeMap<String, FieldProblem> {
    let mut out: BTreeMap<String, FieldProblem> = BTreeMap::new();
    for p in validate::applicant(&case.applicant, today)
        .into_iter()
        .chain(validate::answers(item, &case.answers, today))
    {
        out.entry(p.key.clone()).or_insert(p);
    }
    out
}

fn applicant_value(case: &Case, key: &str) -> String {
    match key {
        "applicant.name" => case.applicant.name.clone(),
        "applicant.id_number" => case.applicant.id_number.clone(),
        "applicant.phone" => case.applicant.phone.clone(),
        "applicant.address" => case.applicant.address.clone(),
        k => case.answers.get(k).cloned().unwrap_or_default(),
    }
}

/// Sets a form value; an emptied optional answer is removed rather than stored as "".
pub fn set_value(case: &mut Case, key: &str, value: String) {
    match key {
        "applicant.name" => case.applicant.name = value,
        "applicant.id_number" => case.applicant.id_number = value.trim().to_uppercase(),
        "applicant.phone" => case.applicant.phone = value.trim().to_string(),
        "applicant.address" => case.applicant.address = value,
        k if value.trim().is_empty() => {
            case.answers.remove(k);
        }
        k => {
            case.answers.insert(k.to_string(), value);
        }
    }
}

/// Chinese name of a key in a 补正 list: a material, a form field, or the applicant block.
pub fn key_label(item: &Item, key: &str) -> String {
    if let Some(g) = &item.guide {
        if let Some(m) = g.materials.iter().find(|m| m.key == key) {
            return m.name.clone();
        }
        if let Some(f) = g.fields.iter().find(|f| f.key == key) {
            return f.label.clone();
        }
    }
    APPLICANT
        .iter()
        .find(|a| a.0 == key)
        .map(|a| a.1.to_string())
        .unwrap_or_else(|| key.to_string())
}

#[component]
pub fn CaseScreen(id: String) -> Element {
    let services = use_context::<Services>();
    let nav = use_context::<Nav>();
    let loaded = use_signal(|| services.book.get(&id));
    let mut case = loaded;
    let mut error = use_signal(|| None::<String>);
    // After a failed 初审 every problem is shown, also for fields not touched yet.
    let mut tried = use_signal(|| false);
    let mut check_lines = use_signal(Vec::<String>::new);

    let Some(current) = case.read().clone() else {
        return rsx! { TopBar { title: "办件" } p { class: "error", "找不到这个办件，可能已被删除。请返回。" } };
    };
    let Some(item) = services.catalog.item(&current.item).cloned() else {
        return rsx! { TopBar { title: "办件" } p { class: "error", "事项 {current.item} 已不在清单中，请联系镇中心。" } };
    };
    let guide = item.guide.clone().unwrap_or_default_guide();

    // Saves the case after a change; a Ready case that is edited goes back to draft (初审 again).
    let commit = {
        let services = services.clone();
        // The outbox reopens a Ready case that is edited (初审 again) and returns it as stored.
        move |c: Case| {
            match services.book.save_draft(&c) {
                Ok(saved) => {
                    error.set(None);
                    case.set(Some(saved));
                }
                Err(e) => {
                    // Keep what was typed on screen; the message says the save failed.
                    error.set(Some(e));
                    case.set(Some(c));
                }
            }
            services.touched();
        }
    };

    let editable = current.is_editable();
    let problems = form_problems(&item, &current, today());
    let state_label = current.state.label();

    let field_row = |key: String, label: String, kind: &'static str, def: Option<FieldDef>| {
        let value = applicant_value(&current, &key);
        let problem = problems
            .get(&key)
            .filter(|_| tried() || !value.trim().is_empty())
            .map(|p| p.message.clone());
        let bad = problem.is_some();
        let mut commit = commit.clone();
        let k = key.clone();
        let required = def
            .as_ref()
            .map(|d| d.required)
            .unwrap_or(key != "applicant.address");
        let help = def.as_ref().map(|d| d.help.clone()).unwrap_or_default();
        let on_value = move |v: String| {
            let Some(mut c) = case.peek().clone() else {
                return;
            };
            set_value(&mut c, &k, v);
            commit(c);
        };
        rsx! {
            label { class: if bad { "field bad" } else { "field" }, key: "{key}",
                span { "{label}" if required { b { class: "req", " *" } } }
                {field_input(&key, kind, def.as_ref(), value, editable, on_value)}
                if !help.is_empty() { small { class: "muted", "{help}" } }
                if let Some(p) = problem { small { class: "problem", "data-for": "{key}", "{p}" } }
            }
        }
    };

    let run_precheck = {
        let services = services.clone();
        let item = item.clone();
        move |_| {
            let Some(c) = case.peek().clone() else { return };
            tried.set(true);
            match services.book.precheck(&c.id, &item) {
                Ok(ready) => {
                    check_lines.set(Vec::new());
                    error.set(None);
                    case.set(Some(ready));
                    services.touched();
                }
                Err(lines) => check_lines.set(lines),
            }
        }
    };

    let seal = {
        let services = services.clone();
        let item = item.clone();
        move |_| {
            let Some(c) = case.peek().clone() else { return };
            match services.book.seal(&c.id, &item) {
                Ok(sealed) => {
                    let id = sealed.id.clone();
                    // A sealed case cannot be re-cut, so its photos (several MB each, showing
                    // everything the camera saw) leave memory now rather than when they age out.
                    for p in sealed.materials.iter().flat_map(|m| &m.pages) {
                        originals().remove(&p.sha256);
                    }
                    case.set(Some(sealed));
                    services.touched();
                    services
                        .sync_now
                        .send(crate::services::sync::SyncTrigger::Button);
                    nav.replace(Screen::Receipt(id));
                }
                Err(e) => error.set(Some(e)),
            }
        }
    };

    rsx! {
        TopBar { title: "{item.name}" }
        main { class: "page case", "data-state": "{current.state.as_str()}",
            p { class: "case-no", "办件编号 " code { id: "case-id", "{current.id}" } }
            p { class: "state", "状态：" strong { id: "case-state", "{state_label}" }
                if current.version > 1 { span { class: "muted", "（第{current.version}次提交）" } }
            }
            if current.state == CaseState::CorrectionRequested {
                section { class: "correction", id: "correction",
                    h2 { "镇中心要求补正" }
                    if let Some(Decision::CorrectionRequested { note, .. }) = &current.last_decision {
                        if !note.is_empty() { p { "{note}" } }
                    }
                    ul {
                        for m in current.correction.iter() {
                            li { key: "{m.key}", "data-key": "{m.key}", strong { "{key_label(&item, &m.key)}" } "：{m.note}" }
                        }
                    }
                    p { class: "muted", "请按上面的清单一次补齐，然后重新初审并提交（同一办件，不会重复）。" }
                }
            }
            if let Some(e) = error() { p { class: "error", id: "case-error", "{e}" } }
            section { class: "form",
                h2 { "申请人" }
                for (key, label, kind) in APPLICANT {
                    {field_row(key.to_string(), label.to_string(), kind, None)}
                }
                if !guide.fields.is_empty() { h2 { "申请信息" } }
                for def in guide.fields.iter().cloned() {
                    {field_row(def.key.clone(), def.label.clone(), "text", Some(def))}
                }
            }
            section { class: "materials",
                h2 { "材料（逐项拍照）" }
                for m in guide.materials.iter().cloned() {
                    MaterialRow { key: "{m.key}", case, material_key: m.key.clone(), editable, on_error: move |e| error.set(Some(e)) }
                }
            }
            if editable {
                if !check_lines.read().is_empty() {
                    section { class: "precheck", id: "precheck",
                        h2 { "初审未通过，请处理：" }
                        ul { for l in check_lines.read().iter() { li { "{l}" } } }
                    }
                }
                div { class: "actions",
                    if current.state == CaseState::Ready {
                        p { class: "ok", id: "precheck-ok", "初审通过，材料齐全。" }
                        button { class: "btn primary big", id: "seal", onclick: seal, "封存并放入发件箱" }
                    } else {
                        button { class: "btn primary big", id: "precheck-run", onclick: run_precheck, "初审" }
                    }
                }
            } else {
                Timeline { case: current.clone() }
                if current.agent_brings() {
                    DeliverButton { case_id: current.id.clone() }
                }
                div { class: "actions",
                    button { class: "btn big", id: "show-receipt",
                        onclick: { let id = current.id.clone(); move |_| nav.go(Screen::Receipt(id.clone())) },
                        "查看回执"
                    }
                }
            }
        }
    }
}

trait GuideOrDefault {
    fn unwrap_or_default_guide(self) -> bianmin_engine::catalog::Guide;
}

impl GuideOrDefault for Option<bianmin_engine::catalog::Guide> {
    /// Items without a published guide still get the applicant block; they simply list no materials.
    fn unwrap_or_default_guide(self) -> bianmin_engine::catalog::Guide {
        self.unwrap_or_else(|| bianmin_engine::catalog::Guide {
            draft: true,
            summary: String::new(),
            legal_basis: Vec::new(),
            procedure: Vec::new(),
            promised_days: 0,
            fee: String::new(),
            handling_level: String::new(),
            supervision_phone: String::new(),
            sample_form: String::new(),
            materials: Vec::new(),
            fields: Vec::new(),
        })
    }
}

/// The input for a field kind; choice and yes/no become selects so nothing can be mistyped.
fn field_input(
    key: &str,
    kind: &'static str,
    def: Option<&FieldDef>,
    value: String,
    editable: bool,
    mut on_value: impl FnMut(String) + 'static,
) -> Element {
    let id = format!("f-{}", key.replace('.', "-"));
    match def.map(|d| d.kind) {
        Some(FieldKind::Choice) | Some(FieldKind::Bool) => {
            let choices: Vec<String> = match def.map(|d| d.kind) {
                Some(FieldKind::Bool) => vec!["是".into(), "否".into()],
                _ => def.map(|d| d.choices.clone()).unwrap_or_default(),
            };
            rsx! {
                select { id: "{id}", disabled: !editable, value: "{value}", onchange: move |e| on_value(e.value()),
                    option { value: "", "请选择" }
                    for c in choices { option { value: "{c}", selected: c == value, "{c}" } }
                }
            }
        }
        Some(FieldKind::Textarea) => rsx! {
            textarea { id: "{id}", disabled: !editable, value: "{value}", oninput: move |e| on_value(e.value()) }
        },
        other => {
            let (ty, mode) = match other {
                Some(FieldKind::Number) => ("text", "numeric"),
                Some(FieldKind::Date) => ("date", "none"),
                Some(FieldKind::Phone) => ("tel", "tel"),
                _ if kind == "tel" => ("tel", "tel"),
                _ => ("text", "text"),
            };
            rsx! {
                input { id: "{id}", r#type: ty, inputmode: mode, disabled: !editable, value: "{value}",
                    oninput: move |e| on_value(e.value()) }
            }
        }
    }
}

/// A stored page as an image. Its own component because Dioxus re-renders a component only when
/// its props change: the material rows re-render on every keystroke in the form, and decrypting and
/// encoding megabytes of pages each time would make typing lag on a cheap phone.
#[component]
fn PageThumb(page: bianmin_protocol::AttachmentRef) -> Element {
    let services = use_context::<Services>();
    let url = services.book.page_data_url(&page);
    rsx! {
        if let Some(url) = url { img { src: "{url}", alt: "{page.name}" } }
    }
}

/// One material of the checklist: its pages, retake/delete, and the capture button.
#[component]
fn MaterialRow(
    case: Signal<Option<Case>>,
    material_key: String,
    editable: bool,
    on_error: EventHandler<String>,
) -> Element {
    let services = use_context::<Services>();
    let Some(c) = case.read().clone() else {
        return rsx! {};
    };
    let Some(m) = services
        .catalog
        .item(&c.item)
        .and_then(|i| i.guide.as_ref())
        .and_then(|g| g.materials.iter().find(|m| m.key == material_key))
        .cloned()
    else {
        return rsx! {};
    };
    let pages = c
        .materials
        .iter()
        .find(|p| p.key == m.key)
        .map(|p| p.pages.clone())
        .unwrap_or_default();
    let need = m.count.max(1) as usize;
    let have = pages.len();
    // Which page the next photo replaces (retake), if any.
    let mut retake = use_signal(|| None::<usize>);
    let status_class = if have >= need {
        "mat done"
    } else if m.required {
        "mat missing"
    } else {
        "mat"
    };
    let label = match retake() {
        Some(i) => format!("重拍第{}张", i + 1),
        None if have == 0 => "拍照".to_string(),
        None if have < need => format!("拍第{}张", have + 1),
        None => "加一页".to_string(),
    };
    rsx! {
        div { class: "{status_class}", "data-material": "{m.key}",
            div { class: "mat-head",
                strong { "{m.name}" }
                span { class: "muted", " {m.form.label()}，需{need}张" if !m.required { "（视情提交）" } }
                span { class: "have", "已拍 {have}/{need}" }
            }
            if !m.note.is_empty() { p { class: "muted", "{m.note}" } }
            div { class: "pages",
                for (i, p) in pages.iter().enumerate() {
                    figure { key: "{p.sha256}-{i}", class: if retake() == Some(i) { "shot retaking" } else { "shot" },
                        PageThumb { page: p.clone() }
                        if editable {
                            figcaption {
                                button { class: "mini", onclick: move |_| retake.set(Some(i)), "重拍" }
                                AdjustCorners { case, material: m.clone(), index: i, sha: p.sha256.clone(), retake }
                                button { class: "mini",
                                    onclick: {
                                        let services = services.clone();
                                        let key = m.key.clone();
                                        move |_| {
                                            let Some(c) = case.peek().clone() else { return };
                                            let Some(sha) = c.materials.iter().find(|m| m.key == key).and_then(|m| m.pages.get(i)).map(|p| p.sha256.clone()) else { return };
                                            match services.book.remove_page(&c.id, &key, &sha) {
                                                Ok(saved) => case.set(Some(saved)),
                                                Err(e) => return on_error.call(e),
                                            }
                                            // A deleted page's original is not kept in memory any longer.
                                            originals().remove(&sha);
                                            services.touched();
                                        }
                                    },
                                    "删除"
                                }
                            }
                        }
                    }
                }
            }
            if editable {
                ScanCapture { case, material: m.clone(), label, retake }
            }
        }
    }
}

/// What happened to the case, newest last, with the town's decisions spelled out.
#[component]
fn Timeline(case: Case) -> Element {
    let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    rsx! {
        section { class: "timeline", id: "timeline",
            h2 { "办理进度" }
            ol {
                for (i, h) in case.history.iter().enumerate() {
                    li { key: "{i}",
                        span { class: "when", {h.at.with_timezone(&tz).format("%m-%d %H:%M").to_string()} }
                        " {h.to.label()}"
                        if !h.note.is_empty() { span { class: "muted", "：{h.note}" } }
                    }
                }
            }
            if let Some(d) = case.deadline { p { "承诺办结日期：{d}" } }
            if let Some(Decision::Completed { result, delivery }) = &case.last_decision {
                p { id: "completed", "办理结果：{result}；送达方式：{delivery.label()}" }
            }
            if let Some(Decision::Refused { reason }) = &case.last_decision {
                p { class: "error", "不予受理：{reason}" }
            }
        }
    }
}

/// 已送达: the agent confirms the result reached the resident. The mark is stored on the phone at
/// once, so it works in a house without signal, and the sync loop reports it to the town.
#[component]
fn DeliverButton(case_id: String) -> Element {
    let services = use_context::<Services>();
    let book = services.book.clone();
    // Re-read on every book write: the sync task settles the mark in the background.
    let mark = use_memo({
        let (book, id, revision) = (book.clone(), case_id.clone(), services.revision);
        move || {
            revision.read();
            book.delivery(&id)
        }
    });
    let mut error = use_signal(|| None::<String>);
    let deliver = move |_| {
        let person = services
            .device
            .read()
            .as_ref()
            .map(|d| d.person.clone())
            .unwrap_or_default();
        match book.record_delivery(&case_id, &person) {
            Ok(_) => {
                error.set(None);
                services.touched();
                services
                    .sync_now
                    .send(crate::services::sync::SyncTrigger::Button);
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let recorded = mark().filter(|m| m.refused.is_none());
    let refused = mark().and_then(|m| m.refused);
    rsx! {
        div { class: "actions deliver", id: "agent-delivery",
            if let Some(m) = recorded {
                p { class: "ok", id: "delivery-recorded",
                    {format!("已记录送达（{}）。", m.at.with_timezone(&china).format("%m-%d %H:%M"))}
                    if m.sent { "镇中心已收到，进度稍后更新。" } else { "有信号时会自动报给镇中心，不用再按。" }
                }
            } else {
                p { class: "muted", "镇中心已办结，结果由您送达申请人。送到后请点下面的按钮，没有信号也可以点。" }
                if let Some(r) = refused { p { class: "error", "{r}" } }
                button { class: "btn primary big", id: "mark-delivered", onclick: deliver, "已送达申请人" }
            }
            if let Some(e) = error() { p { class: "error", "{e}" } }
        }
    }
}
