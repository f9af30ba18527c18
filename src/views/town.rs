//! Town staff (tablet role): the inbox of the town's villages with filters and deadline
//! countdowns, and the case view with the staff actions 受理 / 补正 / 不予受理 / 转县 / 办结.
//!
//! Everything here is read from and written to the town centre through the engine's transport
//! with the tablet's enrolled key; the tablet keeps no copy of residents' data.

use bianmin_engine::case::Case;
use bianmin_engine::transport::{Credential, Transport};
use bianmin_protocol::sync::{ActionRequest, InboxRow, TownAction};
use bianmin_protocol::{CaseState, Delivery, MissingItem};
use chrono::Local;
use dioxus::prelude::*;

use crate::app::Services;
use crate::components::top_bar::{SyncPanel, TopBar};
use crate::services::book::Device;

fn transport(dev: &Device) -> Result<Transport, String> {
    let key = dev.key()?;
    Transport::new(&dev.server, Some(Credential { device_id: dev.device_code.clone(), key })).map_err(|e| e.user_message())
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
    let who = services.device.read().as_ref().map(|d| format!("{} · {}", d.person, if d.place_name.is_empty() { &d.place } else { &d.place_name })).unwrap_or_default();
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
        t.inbox(&query(&village(), &state(), overdue())).await.map_err(|e| e.user_message())
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
                button { class: "btn", onclick: move |_| reload += 1, "刷新" }
            }
            match list {
                Err(e) => rsx! { p { class: "error", "{e}" } },
                Ok(rows) if rows.is_empty() => rsx! { p { class: "empty", "没有符合条件的办件。" } },
                Ok(rows) => rsx! {
                    ul { class: "cases",
                        for r in rows {
                            li { key: "{r.case_id}",
                                button { class: "case-row", "data-case": "{r.case_id}", "data-state": "{r.state.as_str()}",
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
            transport(&dev)?.case(&id).await.map_err(|e| e.user_message())
        }
    });
    let mut missing = use_signal(Vec::<String>::new);
    let mut text = use_signal(String::new);
    let mut tracking = use_signal(String::new);
    let mut delivery = use_signal(|| "self".to_string());
    let mut message = use_signal(|| None::<String>);
    let current: Option<Result<Case, String>> = case.read().clone();
    let act = move |action: TownAction, version: u32| {
        let id = id.clone();
        spawn(async move {
            let Some(dev) = device.read().clone() else { return };
            let req = ActionRequest { action, staff: dev.person.clone(), expected_version: Some(version) };
            let r = match transport(&dev) {
                Ok(t) => t.act(&id, &req).await.map_err(|e| e.user_message()),
                Err(e) => Err(e),
            };
            message.set(Some(match r {
                Ok(res) => format!("已完成：{}", res.state.label()),
                Err(e) => format!("操作失败：{e}"),
            }));
            refresh += 1;
        });
    };
    let Some(current) = current else {
        return rsx! { TopBar { title: "办件" } p { "正在读取…" } };
    };
    let c = match current {
        Ok(c) => c,
        Err(e) => return rsx! { TopBar { title: "办件" } p { class: "error", "{e}" } button { class: "btn", onclick: move |_| on_close.call(()), "返回收件箱" } },
    };
    let item = services.catalog.item(&c.item).cloned();
    let guide = item.as_ref().and_then(|i| i.guide.clone());
    let v = c.version;
    let act1 = act.clone();
    let act2 = act.clone();
    let act3 = act.clone();
    let act4 = act.clone();
    let act5 = act.clone();
    rsx! {
        TopBar { title: "{item.as_ref().map(|i| i.name.clone()).unwrap_or(c.item.clone())}" }
        main { class: "page town-case",
            button { class: "btn", onclick: move |_| on_close.call(()), "‹ 返回收件箱" }
            p { "办件编号 " code { "{c.id}" } " · 第{v}版 · " strong { "{c.state.label()}" } }
            p { "首问负责：{c.responsible.name}（{c.responsible.village}）" }
            if let Some(d) = c.deadline { p { "承诺办结日期：{d}" } }
            dl { class: "facts",
                dt { "申请人" } dd { "{c.applicant.name}" }
                dt { "身份证号码" } dd { "{c.applicant.id_number}" }
                dt { "联系电话" } dd { "{c.applicant.phone}" }
                for (k, val) in c.answers.iter() {
                    dt { {guide.as_ref().and_then(|g| g.fields.iter().find(|f| &f.key == k)).map(|f| f.label.clone()).unwrap_or(k.clone())} }
                    dd { "{val}" }
                }
            }
            h2 { "材料" }
            ul {
                for m in c.materials.iter() {
                    li { key: "{m.key}",
                        label { class: "check",
                            input { r#type: "checkbox", checked: missing.read().contains(&m.key),
                                onchange: { let k = m.key.clone(); move |e: FormEvent| {
                                    let mut list = missing.write();
                                    list.retain(|x| x != &k);
                                    if e.checked() { list.push(k.clone()); }
                                } } }
                            {guide.as_ref().and_then(|g| g.materials.iter().find(|x| x.key == m.key)).map(|x| x.name.clone()).unwrap_or(m.key.clone())}
                            " （{m.pages.len()}张）"
                        }
                    }
                }
            }
            if let Some(msg) = message() { p { class: "ok", "{msg}" } }
            label { class: "field", span { "意见 / 理由 / 办理结果" }
                textarea { id: "staff-text", value: "{text}", oninput: move |e| text.set(e.value()) } }
            div { class: "actions",
                button { class: "btn primary", id: "act-accept", onclick: move |_| act1(TownAction::Accept, v), "受理" }
                button { class: "btn", id: "act-correct",
                    onclick: move |_| {
                        let list: Vec<MissingItem> = missing.read().iter().map(|k| MissingItem { key: k.clone(), note: text.read().clone() }).collect();
                        if list.is_empty() { return message.set(Some("请先勾选需要补正的材料。".into())); }
                        act2(TownAction::RequestCorrection { missing: list, note: text.read().clone() }, v)
                    },
                    "补正（勾选的材料）"
                }
                button { class: "btn", id: "act-refuse",
                    onclick: move |_| {
                        if text.read().trim().is_empty() { return message.set(Some("不予受理请填写理由。".into())); }
                        act3(TownAction::Refuse { reason: text.read().clone() }, v)
                    }, "不予受理" }
                button { class: "btn", id: "act-forward", onclick: move |_| act4(TownAction::Forward { note: text.read().clone() }, v), "转县" }
            }
            h2 { "办结" }
            div { class: "choice",
                select { id: "delivery", onchange: move |e| delivery.set(e.value()),
                    option { value: "self", "自取" }
                    option { value: "mail", "邮寄" }
                    option { value: "agent", "代办员送达" }
                }
                input { id: "tracking", placeholder: "邮寄单号", value: "{tracking}", oninput: move |e| tracking.set(e.value()) }
            }
            button { class: "btn primary big", id: "act-complete",
                onclick: move |_| {
                    let d = match delivery().as_str() {
                        "mail" if tracking.read().trim().is_empty() => return message.set(Some("邮寄请填写快递单号。".into())),
                        "mail" => Delivery::Mail { carrier: "EMS".into(), tracking_number: tracking.read().trim().to_string() },
                        "agent" => Delivery::AgentDelivery,
                        _ => Delivery::SelfPickup,
                    };
                    let result = if text.read().trim().is_empty() { "已办结".to_string() } else { text.read().clone() };
                    act5(TownAction::Complete { result, delivery: d }, v)
                },
                "办结"
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
        assert_eq!(query("140423100201", "received", true), "village=140423100201&state=received&overdue=true");
    }

    #[test]
    fn countdown_in_plain_chinese() {
        let d = |n| chrono::NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        assert_eq!(countdown(Some(d(30)), d(27)), "还剩3天");
        assert_eq!(countdown(Some(d(25)), d(27)), "已超期2天");
        assert_eq!(countdown(None, d(27)), "未受理");
    }
}
