//! The staff actions on a case: 受理 / 补正 / 不予受理 / 转县, 办结 with its delivery, and 已送达.
//! Each is shown when the lifecycle allows it; whatever else the town centre requires (one 补正
//! per case, a reason, a tracking number) it checks itself, and its refusal reaches staff as the
//! action's message. Every decision takes one extra tap: the button only asks 确认…？, and
//! the action is sent from that question (or dropped with 取消), so a slip does not decide a case.

use bianmin_engine::case::allowed;
use bianmin_protocol::sync::TownAction;
use bianmin_protocol::{CaseState, Delivery, MissingItem};
use dioxus::prelude::*;

/// A decision asked for and not yet confirmed: what it sends and how the question names it.
type Pending = Signal<Option<(TownAction, String)>>;

/// The question under the buttons: 确认受理？ with 确认 and 取消.
#[component]
fn ConfirmBar(
    pending: Pending,
    version: u32,
    act: Callback<(TownAction, u32)>,
    busy: bool,
) -> Element {
    let Some((action, label)) = pending() else {
        return rsx! {};
    };
    rsx! {
        div { class: "confirm-bar", id: "confirm-bar", role: "alertdialog", "aria-label": "确认{label}",
            p { strong { "确认{label}？" } }
            div { class: "actions town-actions",
                button { class: "btn primary", id: "confirm-act", disabled: busy,
                    onclick: move |_| { pending.set(None); act.call((action.clone(), version)); }, "确认{label}" }
                button { class: "btn", id: "confirm-cancel", onclick: move |_| pending.set(None), "取消" }
            }
        }
    }
}

/// 受理, 补正 (with the picked materials), 不予受理 and 转县, with the text they share.
#[component]
pub fn StaffActions(
    state: CaseState,
    version: u32,
    missing: Signal<Vec<MissingItem>>,
    act: Callback<(TownAction, u32)>,
    busy: bool,
) -> Element {
    let mut text = use_signal(String::new);
    let mut pending: Pending = use_signal(|| None);
    let can = |to| allowed(state, to);
    if !(can(CaseState::Accepted)
        || can(CaseState::CorrectionRequested)
        || can(CaseState::Refused)
        || can(CaseState::Forwarded))
    {
        return rsx! {};
    }
    let said = move || text.read().trim().to_string();
    let correct = move |_| {
        let list = missing
            .read()
            .iter()
            .map(|m| MissingItem {
                key: m.key.clone(),
                note: m.note.trim().to_string(),
            })
            .collect();
        pending.set(Some((
            TownAction::RequestCorrection {
                missing: list,
                note: said(),
            },
            "补正".to_string(),
        )))
    };
    rsx! {
        label { class: "field", span { "意见 / 理由（补正说明、不予受理理由、转县说明）" }
            textarea { id: "staff-text", value: "{text}", oninput: move |e| text.set(e.value()) } }
        div { class: "actions town-actions",
            if can(CaseState::Accepted) {
                button { class: "btn primary", id: "act-accept", disabled: busy, onclick: move |_| pending.set(Some((TownAction::Accept, "受理".into()))), "受理" }
            }
            if can(CaseState::CorrectionRequested) {
                button { class: "btn", id: "act-correct", disabled: busy, onclick: correct,
                    "补正（{missing.read().len()}项）" }
            }
            if can(CaseState::Refused) {
                button { class: "btn", id: "act-refuse", disabled: busy,
                    onclick: move |_| pending.set(Some((TownAction::Refuse { reason: said() }, "不予受理".into()))), "不予受理" }
            }
            if can(CaseState::Forwarded) {
                button { class: "btn", id: "act-forward", disabled: busy,
                    onclick: move |_| pending.set(Some((TownAction::Forward { note: said() }, "转县".into()))), "转县" }
            }
        }
        ConfirmBar { pending, version, act, busy }
    }
}

/// 办结: the result and how it reaches the resident.
#[component]
pub fn CompleteForm(
    state: CaseState,
    version: u32,
    act: Callback<(TownAction, u32)>,
    busy: bool,
) -> Element {
    let mut result = use_signal(String::new);
    let mut carrier = use_signal(|| "中国邮政EMS".to_string());
    let mut tracking = use_signal(String::new);
    let mut delivery = use_signal(|| "self".to_string());
    let mut pending: Pending = use_signal(|| None);
    if !allowed(state, CaseState::Completed) {
        return rsx! {};
    }
    let complete = move |_| {
        let d = match delivery().as_str() {
            "mail" => Delivery::Mail {
                carrier: carrier.read().trim().to_string(),
                tracking_number: tracking.read().trim().to_string(),
            },
            "agent" => Delivery::AgentDelivery,
            _ => Delivery::SelfPickup,
        };
        let result = result.read().trim().to_string();
        pending.set(Some((
            TownAction::Complete {
                result,
                delivery: d,
            },
            "办结".to_string(),
        )))
    };
    rsx! {
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
        button { class: "btn primary big", id: "act-complete", disabled: busy, onclick: complete, "办结" }
        ConfirmBar { pending, version, act, busy }
    }
}

/// 已送达, recorded by staff when the result reached the resident another way.
#[component]
pub fn DeliverAction(
    state: CaseState,
    version: u32,
    act: Callback<(TownAction, u32)>,
    busy: bool,
) -> Element {
    let mut pending: Pending = use_signal(|| None);
    if !allowed(state, CaseState::Delivered) {
        return rsx! {};
    }
    rsx! {
        button { class: "btn", id: "act-deliver", disabled: busy,
            onclick: move |_| pending.set(Some((TownAction::Deliver { note: String::new() }, "已送达".into()))), "已送达" }
        ConfirmBar { pending, version, act, busy }
    }
}
