//! One case on the tablet: the applicant's facts and answers, every material's pages, the
//! full-size viewer and the staff actions. What the lifecycle allows comes from the engine's
//! table; everything else (one 补正 per case, reasons, tracking numbers) is the town centre's to
//! refuse, and its refusal is shown in plain Chinese.

use std::collections::HashMap;

use bianmin_engine::case::Case;
use bianmin_protocol::sync::{ActionRequest, TownAction};
use bianmin_protocol::{AttachmentRef, Decision};
use dioxus::prelude::*;

use super::actions::{CompleteForm, DeliverAction, StaffActions};
use super::check::TownCheck;
use super::clock::ClockPanel;
use super::county::CountyPanel;
use super::materials::TownMaterials;
use super::pages::{load_pages, review_layout, PageView};
use super::print::NoticePrint;
use super::staff_transport;
use super::viewer::{PageViewer, ZOOMS};
use crate::components::top_bar::TopBar;
use crate::services::{use_book, use_catalog, use_catalog_for, use_enrolment};

/// What the last action did: shown above the actions.
pub type ActionMessage = Option<(bool, String)>;

#[component]
pub fn TownCase(id: String) -> Element {
    let enrolment = use_enrolment();
    let mut refresh = use_signal(|| 0u32);
    let case_id = id.clone();
    let case = use_resource(move || {
        let id = case_id.clone();
        async move {
            let _ = refresh();
            // The enrolment is read and released before the await: the sync loop may write it
            // meanwhile, and a borrow held across the await would panic (AlreadyBorrowed).
            let t = staff_transport(&enrolment.read())?;
            t.case(&id).await.map_err(|e| e.staff_message())
        }
    });
    // Pages by SHA-256, memory only; dropped when the case view closes.
    let pages = use_signal(HashMap::<String, PageView>::new);
    use_page_downloads(id.clone(), case, pages);
    let mut message = use_signal(|| None::<(bool, String)>);
    let mut busy = use_signal(|| false);
    let operator = super::operator::use_operator();
    let act_id = id.clone();
    // Every action goes the same way: one request, the server's answer, the case re-read.
    let act = use_callback(move |(action, version): (TownAction, u32)| {
        if busy() {
            return;
        }
        busy.set(true);
        let id = act_id.clone();
        spawn(async move {
            // The person who unlocked the tablet, with their PIN for the server to check.
            let (staff, pin) = super::operator::credentials(&operator.read());
            let req = ActionRequest {
                action,
                staff,
                expected_version: Some(version),
                pin,
            };
            // Released before the await, as above.
            let t = staff_transport(&enrolment.read());
            let r = match t {
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
    });
    let current = case.read().clone();
    match current {
        None => {
            rsx! { TopBar { title: "办件" } main { class: "page", p { class: "muted", "正在读取办件…" } } }
        }
        Some(Err(e)) => rsx! {
            TopBar { title: "办件" }
            main { class: "page",
                p { class: "error", "{e}" }
                div { class: "actions",
                    button { class: "btn primary", onclick: move |_| refresh += 1, "重试" }
                    button { class: "btn", onclick: move |_| navigator().go_back(), "返回收件箱" }
                }
            }
        },
        Some(Ok(c)) => {
            rsx! { TownCaseView { case: c, pages, act, busy: busy(), message: message() } }
        }
    }
}

/// Downloads the pages the case shows that are not in memory yet, and forgets those of a
/// replaced version.
fn use_page_downloads(
    id: String,
    case: Resource<Result<Case, String>>,
    mut pages: Signal<HashMap<String, PageView>>,
) {
    let enrolment = use_enrolment();
    use_effect(move || {
        let Some(Ok(c)) = &*case.read() else { return };
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
        if !todo.is_empty() {
            load_pages(enrolment, id.clone(), todo, pages);
        }
    });
}

/// The case as staff see it, once loaded.
#[component]
fn TownCaseView(
    case: Case,
    pages: Signal<HashMap<String, PageView>>,
    act: Callback<(TownAction, u32)>,
    busy: bool,
    message: ActionMessage,
) -> Element {
    let enrolment = use_enrolment();
    let book = use_book();
    // The definition the case was made under: fetched from the town centre (signed, verified) the
    // first time this tablet sees a case of that version; the newest held is shown meanwhile.
    let current = use_catalog();
    let held = use_catalog_for(case.catalog_version);
    let version = case.catalog_version;
    let mut fetched = use_signal(|| false);
    use_effect(use_reactive!(|version| {
        if version == 0 || book.outbox().catalog(version).ok().flatten().is_some() {
            return;
        }
        let (book, e) = (book.clone(), enrolment.peek().clone());
        spawn(async move {
            let Some(key) = e.as_ref().and_then(|e| e.server_key) else {
                return;
            };
            let Ok(t) = staff_transport(&e) else { return };
            match bianmin_engine::sync::fetch_catalog_version(&book, &t, &key, version).await {
                Ok(()) => fetched.set(true),
                Err(err) => tracing::warn!(version, error = %err, "catalog version not fetched"),
            }
        });
    }));
    let _ = fetched();
    let shown_by_own_version = held.is_some();
    // The village by name from the published divisions the tablet holds; the code otherwise.
    let village = current
        .divisions()
        .and_then(|d| d.village_full_name(&case.responsible.village))
        .unwrap_or(case.responsible.village.clone());
    let item = held.unwrap_or(current).item(&case.item).cloned();
    let guide = item.as_ref().and_then(|i| i.guide.clone());
    let (order, rows) = review_layout(&case, guide.as_ref());
    let missing = use_signal(Vec::new);
    let mut viewer = use_signal(|| None::<usize>);
    let mut zoom = use_signal(|| 0usize);
    let total = order.len();
    let field_label = |k: &str| {
        guide
            .as_ref()
            .and_then(|g| g.fields.iter().find(|f| f.key == k))
            .map(|f| f.label.clone())
            .or_else(|| rows.iter().find(|r| r.key == k).map(|r| r.name.clone()))
            .unwrap_or(k.to_string())
    };
    let open_list: Vec<(String, String)> = case
        .correction
        .iter()
        .map(|m| (field_label(&m.key), m.note.clone()))
        .collect();
    let viewed = viewer()
        .filter(|i| *i < total)
        .map(|i| (i, order[i].clone()));
    let title = item
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or(case.item.clone());
    let (v, s) = (case.version, case.state);
    rsx! {
        TopBar { title }
        main { class: "page town-case",
            button { class: "btn", id: "back-inbox", onclick: move |_| navigator().go_back(), "‹ 返回收件箱" }
            p { "办件编号 " code { "{case.id}" } " · 第{v}版 · "
                strong { id: "case-state", "data-state": "{s.as_str()}", "data-version": "{v}", "{s.label()}" } }
            p { id: "case-responsible", "首问负责：{case.responsible.name}（{village}）" }
            if version > 0 {
                p { class: "muted", id: "case-catalog-version",
                    if shown_by_own_version { "按事项清单第{version}版办理" } else { "本件按事项清单第{version}版办理，该版尚未下载到本机，暂按最新版显示" }
                }
            }
            if let Some(d) = case.deadline { p { "承诺办结日期：{d}" } }
            ClockPanel { case_id: case.id.clone(), stage: format!("{}-{v}", s.as_str()) }
            if case.history.iter().any(|h| h.to == bianmin_protocol::CaseState::Forwarded) {
                CountyPanel { case_id: case.id.clone(), version: v, stage: format!("{}-{v}", s.as_str()) }
            }
            dl { class: "facts",
                dt { "申请人" } dd { "{case.applicant.name}" }
                dt { "身份证号码" } dd { "{case.applicant.id_number}" }
                dt { "联系电话" } dd { "{case.applicant.phone}" }
                for (k, val) in case.answers.iter().filter(|(_, a)| a.rows().is_empty()) {
                    dt { {field_label(k)} }
                    dd { "{val}" }
                }
            }
            // Repeat groups (household members) as tables, one row per person.
            for (k, val) in case.answers.iter().filter(|(_, a)| !a.rows().is_empty()) {
                {
                    let cols: Vec<(String, String)> = guide
                        .as_ref()
                        .and_then(|g| g.fields.iter().find(|f| &f.key == k))
                        .map(|g| g.fields.iter().map(|c| (c.key.clone(), c.label.clone())).collect())
                        .unwrap_or_default();
                    rsx! {
                        h3 { {field_label(k)} "（{val.rows().len()}人）" }
                        table { class: "rows", id: "rows-{k}",
                            tr { for (_, label) in cols.iter() { th { "{label}" } } }
                            for (i, row) in val.rows().iter().enumerate() {
                                tr { key: "{i}",
                                    for (ck, _) in cols.iter() { td { {row.get(ck).cloned().unwrap_or_default()} } }
                                }
                            }
                        }
                    }
                }
            }
            if !open_list.is_empty() {
                div { class: "correction", id: "open-correction",
                    strong { "已要求补正，等待村里重新提交：" }
                    ul { for (name, note) in open_list { li { "{name}：{note}" } } }
                }
            }
            TownCheck { case: case.clone(), item: item.clone(), missing }
            TownMaterials { case_id: case.id.clone(), state: s, order: order.clone(), rows, pages, missing,
                on_open: move |i| { zoom.set(0); viewer.set(Some(i)); } }
            if let Some((ok, msg)) = message { p { id: "act-message", class: if ok { "ok" } else { "error" }, "data-ok": "{ok}", "{msg}" } }
            StaffActions { state: s, version: v, missing, act, busy }
            CompleteForm { state: s, version: v, act, busy }
            if let Some(Decision::Completed { result, delivery }) = &case.last_decision {
                p { id: "completed", "办理结果：{result}；送达方式：{delivery.label()}" }
            }
            DeliverAction { state: s, version: v, act, busy }
            NoticePrint { case: case.clone() }
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
                on_retry: { let pr = p.page.clone(); let cid = case.id.clone(); move |_| {
                    load_pages(enrolment, cid.clone(), vec![pr.clone()], pages);
                } },
            }
        }
    }
}
