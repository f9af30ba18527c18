//! The applicant reused where the catalog lists them among a household's people, and the facts
//! an ID number already gives shown beside it instead of asked.
//!
//! Which groups hold the applicant is read from the catalog, not from item codes: a group whose
//! relation column offers 本人 lists the applicant as one of its rows (V32 本户参保人员（含申请人
//! 本人）: each insured person of the household pays, the applicant included). The household
//! groups of the assistance items (V09–V12, V22, V42 共同生活的家庭成员（不含申请人）) ask the
//! applicant in the applicant block and list only the others, so they are never offered the
//! applicant: a row there would count the applicant twice in the household's income.

use std::collections::BTreeMap;

use bianmin_engine::catalog::{FieldDef, FieldKind};
use bianmin_engine::validate::IdNumber;
use bianmin_protocol::Applicant;
use chrono::{Datelike, NaiveDate};

/// The relation choice that names the applicant in a group's relation column.
pub const SELF_RELATION: &str = "本人";

/// The relation column of a group that lists the applicant among its rows: a choice column
/// offering [`SELF_RELATION`]. `None` for a group that does not hold the applicant.
pub fn self_relation_column(group: &FieldDef) -> Option<&FieldDef> {
    if group.kind != FieldKind::Group {
        return None;
    }
    group
        .fields
        .iter()
        .find(|c| c.kind == FieldKind::Choice && c.choices.iter().any(|x| x == SELF_RELATION))
}

/// The row 申请人本人 adds to `group`: the applicant's name and ID number copied into the
/// group's name and ID columns, and 本人 as the relation, which follows from it. `None` when the
/// group does not hold the applicant or nothing is known of the applicant yet.
pub fn applicant_row(group: &FieldDef, applicant: &Applicant) -> Option<BTreeMap<String, String>> {
    let relation = self_relation_column(group)?;
    if applicant.name.trim().is_empty() && applicant.id_number.trim().is_empty() {
        return None;
    }
    let mut row = BTreeMap::new();
    for col in &group.fields {
        let value = match col.kind {
            FieldKind::IdNumber => applicant.id_number.trim(),
            FieldKind::Phone => applicant.phone.trim(),
            _ if col.key == "name" => applicant.name.trim(),
            _ if col.key == "address" => applicant.address.trim(),
            _ if col.key == relation.key => SELF_RELATION,
            _ => continue,
        };
        if !value.is_empty() {
            row.insert(col.key.clone(), value.to_string());
        }
    }
    Some(row)
}

/// Whether one of `rows` already is the applicant: its relation is 本人, or it carries the
/// applicant's ID number.
pub fn lists_applicant(
    group: &FieldDef,
    rows: &[BTreeMap<String, String>],
    applicant: &Applicant,
) -> bool {
    let id = applicant.id_number.trim();
    let relation = self_relation_column(group).map(|c| c.key.as_str());
    rows.iter().any(|r| {
        relation.is_some_and(|k| r.get(k).is_some_and(|v| v == SELF_RELATION))
            || group.fields.iter().any(|c| {
                c.kind == FieldKind::IdNumber
                    && !id.is_empty()
                    && r.get(&c.key).is_some_and(|v| v.trim() == id)
            })
    })
}

/// The 申请人本人 offer for `group`: the row to insert first, when the group holds the applicant
/// and does not list them yet.
pub fn offer(
    group: &FieldDef,
    rows: &[BTreeMap<String, String>],
    applicant: &Applicant,
) -> Option<BTreeMap<String, String>> {
    if lists_applicant(group, rows, applicant) {
        return None;
    }
    applicant_row(group, applicant)
}

/// What a valid ID number says, shown under it so nobody asks it again:
/// `男，1975年3月2日出生，51周岁`. `None` while the number is not valid.
pub fn id_facts(raw: &str, today: NaiveDate) -> Option<String> {
    let id = IdNumber::parse(raw.trim(), today).ok()?;
    let birth = id.birth_date();
    Some(format!(
        "{}，{}年{}月{}日出生，{}周岁",
        if id.is_male() { "男" } else { "女" },
        birth.year(),
        birth.month(),
        birth.day(),
        id.age_on(today)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianmin_engine::catalog::Catalog;
    use bianmin_engine::validate::checksum_char;

    fn id(first17: &str) -> String {
        format!("{first17}{}", checksum_char(first17.as_bytes()))
    }

    fn group(code: &str, key: &str) -> FieldDef {
        let catalog = Catalog::embedded().unwrap();
        let item = catalog.item(code).unwrap();
        item.guide
            .as_ref()
            .unwrap()
            .fields
            .iter()
            .find(|f| f.key == key)
            .unwrap()
            .clone()
    }

    fn applicant() -> Applicant {
        Applicant {
            name: "王秀英".into(),
            id_number: id("14042319750302122"),
            phone: "13934561234".into(),
            address: "襄垣县古韩镇南关村".into(),
        }
    }

    #[test]
    fn only_groups_whose_relation_offers_self_hold_the_applicant() {
        let catalog = Catalog::embedded().unwrap();
        let mut holding = Vec::new();
        for item in catalog.items() {
            for f in item.guide.iter().flat_map(|g| g.fields.iter()) {
                if self_relation_column(f).is_some() {
                    holding.push(format!("{}.{}", item.code, f.key));
                }
            }
        }
        // V32's insured people include the applicant; every 不含申请人 household does not.
        assert_eq!(holding, ["V32.members"]);
        for code in ["V09", "V10", "V11", "V12", "V22", "V42"] {
            let g = group(code, "members");
            assert!(g.label.contains("不含申请人"), "{code}: {}", g.label);
            assert_eq!(applicant_row(&g, &applicant()), None, "{code}");
        }
    }

    #[test]
    fn the_applicant_row_copies_name_and_id_and_derives_the_relation() {
        let g = group("V32", "members");
        let row = applicant_row(&g, &applicant()).unwrap();
        assert_eq!(row.get("name").map(String::as_str), Some("王秀英"));
        assert_eq!(row.get("id_number"), Some(&applicant().id_number));
        assert_eq!(row.get("relation").map(String::as_str), Some("本人"));
        // What only the household knows (who pays how) is still asked.
        assert_eq!(row.get("payer_identity"), None);
        assert_eq!(row.len(), 3);
    }

    #[test]
    fn the_offer_disappears_once_the_applicant_is_listed_and_needs_something_to_copy() {
        let g = group("V32", "members");
        let a = applicant();
        let other = BTreeMap::from([("name".to_string(), "李大山".to_string())]);
        assert!(offer(&g, std::slice::from_ref(&other), &a).is_some());
        let mut typed_in = other.clone();
        typed_in.insert("id_number".into(), a.id_number.clone());
        assert_eq!(offer(&g, &[other.clone(), typed_in], &a), None);
        let self_row = BTreeMap::from([("relation".to_string(), "本人".to_string())]);
        assert_eq!(offer(&g, &[self_row], &a), None);
        assert_eq!(offer(&g, &[], &Applicant::default()), None);
    }

    #[test]
    fn an_id_number_gives_sex_birth_date_and_age() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        // The 17th digit is odd for a man, even for a woman.
        assert_eq!(
            id_facts(&id("14042319750302121"), today).as_deref(),
            Some("男，1975年3月2日出生，51周岁")
        );
        assert_eq!(
            id_facts(&id("14042320201202122"), today).as_deref(),
            Some("女，2020年12月2日出生，5周岁")
        );
        assert_eq!(id_facts("14042319750302", today), None);
        assert_eq!(id_facts("140423197503021210", today), None);
    }
}
