//! What the phone already knows, written into a new case so the agent does not type it: the
//! applicant's address starts as the device's own village, named from the divisions reference
//! data (the county, its town, the village), which the agent completes or corrects.
//!
//! Nothing is guessed: an item without the applicant block, or a device whose village is not in
//! the divisions its catalog carries, gets nothing prefilled.

use bianmin_engine::case::Case;
use bianmin_engine::catalog::{Catalog, Divisions, Item};
use bianmin_engine::enrolment::Enrolment;

use crate::services::book::Book;

/// The applicant field the village is written into.
pub const ADDRESS_FIELD: &str = "applicant.address";

/// `襄垣县古韩镇南关村` for a village code, from the divisions tree.
pub fn village_address(divisions: &Divisions, village: &str) -> Option<String> {
    divisions
        .village_full_name(village)
        .map(|town_village| format!("{}{}", divisions.county.name, town_village))
}

/// The fields a new case of `item` starts with on a device enrolled for `village`.
pub fn prefill(item: &Item, divisions: Option<&Divisions>, village: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if item.applicant.is_resident() {
        if let Some(address) = divisions.and_then(|d| village_address(d, village)) {
            out.push((ADDRESS_FIELD.to_string(), address));
        }
    }
    out
}

/// 开始办理: creates the draft and writes what is known into it (each field saved like a typed one).
pub fn start_case(
    book: &Book,
    catalog: &Catalog,
    code: &str,
    enrolment: &Enrolment,
) -> Result<Case, String> {
    let mut case = book.create(code, enrolment)?;
    let Some(item) = catalog.item(code) else {
        return Ok(case);
    };
    for (key, value) in prefill(item, catalog.divisions(), &enrolment.agent().village) {
        case = book.set_field(&case.id, &key, &value)?;
    }
    Ok(case)
}
