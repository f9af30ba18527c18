//! The staff actions on a case: 受理 / 补正 / 不予受理 / 转县, 办结 with its delivery, and 已送达.
//! Each is shown when the lifecycle allows it; whatever else the town centre requires (one 补正
//! per case, a reason, a tracking number) it checks itself, and its refusal reaches staff as the
//! action's message.

use bianmin_engine::case::allowed;
use bianmin_protocol::sync::TownAction;
use bianmin_protocol::{CaseState, Delivery, MissingItem};
use dioxus::prelude::*;

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
        act.call((
            TownAction::RequestCorrection {
                missing: list,
                note: said(),
            },
            version,
        ))
    };
    rsx! {
        label { class: "field", span { "意见 / 理由（补正说明、不予受理理由、转县说明）" }
            textarea { id: "staff-text", value: "{text}", oninput: move |e| text.set(e.value()) } }
        div { class: "actions town-actions",
            if can(CaseState::Accepted) {
                button { class: "btn primary", id: "act-accept", disabled: busy, onclick: move |_| act.call((TownAction::Accept, version)), "受理" }
            }
            if can(CaseState::CorrectionRequested) {
                button { class: "btn", id: "act-correct", disabled: busy, onclick: correct,
                    "补正（{missing.read().len()}项）" }
            }
            if can(CaseState::Refused) {
                button { class: "btn", id: "act-refuse", disabled: busy,
                    onclick: move |_| act.call((TownAction::Refuse { reason: said() }, version)), "不予受理" }
            }
            if can(CaseState::Forwarded) {
                button { class: "btn", id: "act-forward", disabled: busy,
                    onclick: move |_| act.call((TownAction::Forward { note: said() }, version)), "转县" }
            }
        }
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
        act.call((
            TownAction::Complete {
                result,
                delivery: d,
            },
            version,
        ))
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
    if !allowed(state, CaseState::Delivered) {
        return rsx! {};
    }
    rsx! {
        button { class: "btn", id: "act-deliver", disabled: busy,
            onclick: move |_| act.call((TownAction::Deliver { note: String::new() }, version)), "已送达" }
    }
}
