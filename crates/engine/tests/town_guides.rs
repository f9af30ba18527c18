//! Tests of the town items' service guides (镇级办事指南): the guides written so far load under the
//! village items' rules, are drafts with what the county must confirm, cite a rule for every
//! condition, state their fee as 不收费 and carry no phone number; their eligibility checks run at
//! 初审; the other town items have no guide and say so.

use std::collections::BTreeMap;

use bianmin_engine::catalog::{Catalog, Item};
use bianmin_engine::validate::{checksum_char, precheck};
use bianmin_protocol::{Answer, Applicant};
use chrono::NaiveDate;

/// The town items with a guide: the social-assistance items taken in at the town window (the
/// county has no figures on how often each item is handled, see `assets/catalog/town.toml`).
const GUIDED: [&str; 6] = ["T01", "T02", "T04", "T06", "T18", "T19"];

fn catalog() -> Catalog {
    Catalog::embedded().unwrap_or_else(|e| panic!("embedded catalog does not load: {e}"))
}

/// True when `text` holds a run of seven or more digits: the shape of a phone number.
fn has_phone_like_number(text: &str) -> bool {
    let mut run = 0;
    for ch in text.chars() {
        run = if ch.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 7 {
            return true;
        }
    }
    false
}

/// Every text of a guide a resident or clerk reads.
fn texts(item: &Item) -> Vec<String> {
    let g = item.guide.as_ref().unwrap();
    let mut out = vec![
        g.summary.clone(),
        g.fee.clone(),
        g.handling_level.clone(),
        g.sample_form.clone(),
    ];
    out.extend(g.conditions.iter().cloned());
    out.extend(g.legal_basis.iter().cloned());
    out.extend(g.procedure.iter().cloned());
    out.extend(g.to_confirm.iter().cloned());
    out.extend(
        g.materials
            .iter()
            .flat_map(|m| [m.name.clone(), m.note.clone()]),
    );
    out.extend(
        g.fields
            .iter()
            .flat_map(|f| [f.label.clone(), f.help.clone()]),
    );
    out.extend(g.checks.iter().map(|c| c.message.clone()));
    out
}

#[test]
fn exactly_the_chosen_town_items_have_guides() {
    let cat = catalog();
    let guided: Vec<&str> = cat
        .town_items()
        .filter(|i| i.guide.is_some())
        .map(|i| i.code.as_str())
        .collect();
    assert_eq!(guided, GUIDED);
    assert_eq!(cat.town_items().count(), 99);
}

#[test]
fn town_guides_are_complete_drafts_citing_their_rules() {
    let cat = catalog();
    for code in GUIDED {
        let item = cat.item(code).unwrap();
        let g = item.guide.as_ref().unwrap();
        assert!(
            g.draft,
            "{code}: stays a draft until the county confirms it"
        );
        assert!(
            !g.to_confirm.is_empty(),
            "{code}: names what the county must confirm"
        );
        assert!(g.summary.chars().count() >= 30, "{code}: summary");
        assert!(
            !g.conditions.is_empty()
                && g.conditions
                    .iter()
                    .all(|c| c.contains('（') && (c.contains('《') || c.contains('〔'))),
            "{code}: every condition cites the national or provincial rule it comes from"
        );
        assert!(
            g.legal_basis.iter().filter(|b| b.contains('《')).count() >= 2,
            "{code}: legal basis names at least two published documents"
        );
        assert!(
            g.procedure[0].contains("镇综合便民服务中心窗口"),
            "{code}: the procedure starts at the town window"
        );
        assert!(g.procedure.len() >= 4, "{code}: procedure steps");
        assert_eq!(g.fee, "不收费", "{code}: no fee is invented");
        assert_eq!(g.contact, "supervision", "{code}: the county's contact");
        for t in texts(item) {
            assert!(
                !has_phone_like_number(&t),
                "{code}: no phone number is invented: {t}"
            );
        }
        assert!(g.sample_form.contains("____"), "{code}: sample form blanks");
        assert!(g.materials.iter().any(|m| m.required), "{code}");
        assert!(!g.fields.is_empty(), "{code}: fields");
        for c in &g.checks {
            assert!(
                c.message.contains('《') || c.message.contains('〔'),
                "{code}: check cites"
            );
        }
        // The 一次性告知 notice lists every material, as for village items.
        let n = g.notice(item, cat.contact(&g.contact));
        for m in &g.materials {
            assert!(n.contains(&m.name), "{code}: notice lists {}", m.name);
        }
        assert!(n.contains("不收费"));
    }
}

#[test]
fn the_other_town_items_have_no_guide_yet() {
    let cat = catalog();
    let bare: Vec<&Item> = cat.town_items().filter(|i| i.guide.is_none()).collect();
    assert_eq!(bare.len(), 99 - GUIDED.len());
    assert!(bare.iter().all(|i| !GUIDED.contains(&i.code.as_str())));
}

/// The town list with the county's contacts it refers to, as the catalog loads them.
fn load_town(text: &str) -> Result<Catalog, bianmin_engine::catalog::CatalogError> {
    Catalog::from_tomls(&[
        ("town.toml", text),
        (
            "county.toml",
            include_str!("../../../assets/catalog/county.toml"),
        ),
    ])
}

#[test]
fn a_town_guide_with_a_broken_rule_is_refused_like_a_village_one() {
    load_town(include_str!("../../../assets/catalog/town.toml")).unwrap();
    let text = include_str!("../../../assets/catalog/town.toml").replacen(
        "rule = \"applicant.age >= 80\"",
        "rule = \"agee >= 80\"",
        1,
    );
    let Err(err) = load_town(&text) else {
        panic!("a broken town guide was loaded")
    };
    let err = err.to_string();
    assert!(err.contains("T01") && err.contains("agee"), "{err}");
    let text = include_str!("../../../assets/catalog/town.toml").replacen(
        "fee = \"不收费\"",
        "fee = \"\"",
        1,
    );
    let Err(err) = load_town(&text) else {
        panic!("a broken town guide was loaded")
    };
    let err = err.to_string();
    assert!(err.contains("T01") && err.contains("guide.fee"), "{err}");
}

/// An ID number of someone born on `birth` (yyyymmdd), in Xiangyuan county.
fn id_born(birth: &str) -> String {
    let first17 = format!("140423{birth}123");
    format!("{first17}{}", checksum_char(first17.as_bytes()))
}

#[test]
fn the_age_check_of_the_old_age_subsidy_runs_at_precheck() {
    let cat = catalog();
    let item = cat.item("T01").unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let answers: BTreeMap<String, Answer> =
        [("account_type", "社会保障卡"), ("applied_by", "老人本人")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Answer::Text(v.to_string())))
            .collect();
    let applicant = |id: String| Applicant {
        name: "王秀英".into(),
        id_number: id,
        phone: "13934561234".into(),
        address: "古韩镇南关村".into(),
    };
    let young = precheck(item, &applicant(id_born("19500101")), &answers, &[], today);
    assert!(
        young.lines().iter().any(|l| l.contains("年满80周岁")),
        "{:?}",
        young.lines()
    );
    let old = precheck(item, &applicant(id_born("19400101")), &answers, &[], today);
    assert!(!old.lines().iter().any(|l| l.contains("年满80周岁")));
    // Without photos 初审 still lists every required material at once.
    assert_eq!(old.missing_materials.len(), 3, "{:?}", old.lines());
}
