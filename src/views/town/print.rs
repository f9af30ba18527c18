//! 打印文书 on the tablet: a button for each printed document that applies to the case's state
//! (受理通知书, 补正材料通知书, 不予受理通知书, the 县级案卷 for the county). The town centre
//! renders the PDF and prints it on its own printer (`DATA/printers.toml`); the tablet never
//! holds the document, since handing a PDF naming a resident to a viewer or printer on the device
//! would write it outside the app's encrypted store. The person who unlocked the tablet is sent
//! with their PIN, so the town's audit log names who printed what.

use bianmin_engine::case::Case;
use bianmin_engine::transport::NoticeKind;
use bianmin_protocol::sync::PrintRequest;
use bianmin_protocol::{CaseState, Decision};
use dioxus::prelude::*;

use super::staff_transport;
use crate::services::use_enrolment;

/// The documents a case in its current state can be printed with, in the order staff meet them,
/// each with its Chinese name. The town centre checks again (its refusal is shown if a colleague
/// changed the case meanwhile).
pub fn printable(case: &Case) -> Vec<(NoticeKind, &'static str)> {
    let mut out = Vec::new();
    if case.accepted_on.is_some() {
        out.push((NoticeKind::Acceptance, "受理通知书"));
    }
    let listed = match &case.last_decision {
        Some(Decision::CorrectionRequested { missing, .. }) => !missing.is_empty(),
        _ => !case.correction.is_empty(),
    };
    if case.state == CaseState::CorrectionRequested && listed {
        out.push((NoticeKind::Correction, "补正材料通知书"));
    }
    if case.state == CaseState::Refused {
        out.push((NoticeKind::Refusal, "不予受理通知书"));
    }
    // The form and every page: what the town proxy takes to the county, at any stage.
    out.push((NoticeKind::Packet, "县级案卷"));
    out
}

/// The print buttons of a case and what the last print did.
#[component]
pub fn NoticePrint(case: Case) -> Element {
    let enrolment = use_enrolment();
    let operator = super::operator::use_operator();
    let mut printing = use_signal(|| None::<NoticeKind>);
    let mut said = use_signal(|| None::<(bool, String)>);
    let kinds = printable(&case);
    let id = case.id.to_string();
    rsx! {
        section { class: "notice-print", id: "notice-print",
            h3 { "打印文书" }
            p { class: "muted", "在镇中心的打印机上打印，文书不保存在平板上。" }
            div { class: "actions",
                for (kind, label) in kinds {
                    button {
                        key: "{kind.as_str()}",
                        class: "btn",
                        id: "print-{kind.as_str()}",
                        "data-kind": kind.as_str(),
                        disabled: printing().is_some(),
                        onclick: {
                            let id = id.clone();
                            move |_| {
                                if printing().is_some() {
                                    return;
                                }
                                printing.set(Some(kind));
                                said.set(None);
                                let id = id.clone();
                                spawn(async move {
                                    let (staff, pin) = super::operator::credentials(&operator.read());
                                    // Released before the await: the sync loop may write the enrolment.
                                    let t = staff_transport(&enrolment.read());
                                    let r = match t {
                                        Ok(t) => t
                                            .print_notice(&id, kind, &PrintRequest { staff, pin })
                                            .await
                                            .map_err(|e| e.staff_message()),
                                        Err(e) => Err(e),
                                    };
                                    said.set(Some(match r {
                                        Ok(p) => (true, format!("{label}已送打印机（{}）", p.by)),
                                        Err(e) => (false, format!("{label}打印失败：{e}")),
                                    }));
                                    printing.set(None);
                                });
                            }
                        },
                        if printing() == Some(kind) { "正在送打印机…" } else { "打印{label}" }
                    }
                }
            }
            if let Some((ok, msg)) = said() {
                p { id: "print-message", class: if ok { "ok" } else { "error" }, "data-ok": "{ok}", "{msg}" }
            }
        }
    }
}
