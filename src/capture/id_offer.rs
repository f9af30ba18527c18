//! The ID number read from a photo of the applicant's ID card, offered for the agent to confirm.
//!
//! The reader (`bianmin_scan::idread`) runs on the scan worker right after the card photo is
//! stored; the number is shown with 填入 and 不填 and is written to the applicant's ID field only
//! when the agent taps 填入 (birth date and sex then follow from it, as when typed). When the
//! reader is not sure, the card says so and the field is left as it was.

use bianmin_engine::case::Case;
use bianmin_engine::validate::IdNumber;
use bianmin_scan::idread::read_id_with;
use bianmin_scan::CancelToken;
use dioxus::prelude::*;

use crate::services::book::Book;
use crate::services::use_book;

/// The catalog material whose photos are read for the ID number.
pub const ID_CARD_MATERIAL: &str = "id_card";
/// The applicant field the number is offered for.
pub const ID_FIELD: &str = "applicant.id_number";

/// What the reader made of the latest card photo.
#[derive(Clone, Debug, PartialEq)]
pub enum IdOffer {
    /// A number that passed the engine's validator: shown for the agent to confirm.
    Read(String),
    /// Nothing read with confidence.
    Unsure,
}

/// Reads the number from a card photo (blocking: call it on the scan worker). The engine's own
/// validator has the last word, so a future birth date or an unknown region is never offered.
pub fn read_offer(photo: &[u8], cancel: &CancelToken) -> IdOffer {
    let today = chrono::Local::now().date_naive();
    let verify = |s: &str| IdNumber::parse(s, today).is_ok();
    match read_id_with(photo, &verify, cancel) {
        Ok(r) => r.number.map_or(IdOffer::Unsure, IdOffer::Read),
        Err(e) => {
            tracing::info!(error = %e, "ID number not read");
            IdOffer::Unsure
        }
    }
}

/// The agent's 填入: writes the offered number into the case's applicant ID field.
pub fn accept(book: &Book, case_id: &str, number: &str) -> Result<Case, String> {
    book.set_field(case_id, ID_FIELD, number)
}

/// The offer on the ID card's material card.
#[component]
pub fn IdNumberOffer(case: Signal<Option<Case>>, offer: Signal<Option<IdOffer>>) -> Element {
    let book = use_book();
    let mut error = use_signal(|| None::<String>);
    let Some(current) = offer() else {
        return rsx! {};
    };
    match current {
        IdOffer::Unsure => rsx! {
            p { class: "mat-note", "data-id-offer": "unsure",
                "没能从这张照片可靠地读出身份证号码，请对照证件手工填写。"
            }
        },
        IdOffer::Read(number) => {
            let n = number.clone();
            rsx! {
                div { class: "mat-note id-offer", "data-id-offer": "read",
                    p { "从身份证照片读出号码：" strong { class: "id-read", "{number}" } }
                    p { "请与证件逐位核对，无误再填入。" }
                    button {
                        class: "btn primary",
                        id: "id-offer-accept",
                        onclick: move |_| {
                            let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else { return };
                            match accept(&book, &id, &n) {
                                Ok(saved) => {
                                    case.set(Some(saved));
                                    offer.set(None);
                                }
                                Err(e) => error.set(Some(e)),
                            }
                        },
                        "填入身份证号码"
                    }
                    button { class: "btn", id: "id-offer-dismiss", onclick: move |_| offer.set(None), "不填" }
                    if let Some(e) = error() { p { class: "mat-note error", "{e}" } }
                }
            }
        }
    }
}
