//! 初审 against the real catalog: everything missing is listed at once, and a complete case passes.

use std::collections::BTreeMap;

use bianmin_engine::catalog::{Catalog, FieldDef, FieldKind, Item};
use bianmin_engine::validate::{answers, checksum_char, material_needs, precheck};
use bianmin_protocol::{Answer, Applicant, AttachmentRef, MaterialPages};
use chrono::NaiveDate;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn page(n: usize) -> AttachmentRef {
    AttachmentRef {
        name: format!("p{n}.jpg"),
        sha256: format!("{n:064x}"),
        bytes: 1000,
        mime: "image/jpeg".into(),
    }
}

#[test]
fn an_empty_low_income_case_lists_every_problem_at_once() {
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V11").unwrap();
    let result = precheck(item, &Applicant::default(), &BTreeMap::new(), &[], today());
    assert!(!result.passed());
    // Per-member materials (每人身份证, 每人户口簿本人页) ask for one set of pages per listed member: with no
    // member entered yet there is nothing of theirs to photograph, the rest is all reported.
    let required: Vec<_> = item
        .guide
        .as_ref()
        .unwrap()
        .materials
        .iter()
        .filter(|m| m.required && m.per.is_none())
        .collect();
    assert_eq!(result.missing_materials.len(), required.len());
    let keys: Vec<_> = result.fields.iter().map(|p| p.key.as_str()).collect();
    for k in ["applicant.name", "applicant.id_number", "applicant.phone"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    for f in item
        .guide
        .as_ref()
        .unwrap()
        .fields
        .iter()
        .filter(|f| f.required)
    {
        assert!(
            keys.contains(&f.key.as_str()),
            "required field {} not reported",
            f.key
        );
    }
    assert!(result.lines().iter().any(|l| l.contains("户口簿")));
}

/// Applicants of several ages and both sexes: every item has one it is meant for.
fn applicants() -> Vec<Applicant> {
    [
        "19560312004",
        "19000101001",
        "19400101003",
        "19900101001",
        "20120101002",
    ]
    .iter()
    .map(|birth_seq| {
        let first17 = format!("140423{birth_seq}");
        Applicant {
            name: "王秀英".into(),
            id_number: format!("{first17}{}", checksum_char(first17.as_bytes())),
            phone: "13934561234".into(),
            address: "古韩镇南关村".into(),
        }
    })
    .collect()
}

/// The values a script tries for a field: its sample answer first, then every choice, the other yes/no,
/// a few dates and the number bounds.
fn candidates(f: &FieldDef, id_number: &str) -> Vec<Answer> {
    let mut out = vec![f.sample_answer(id_number)];
    let text = |s: &str| Answer::Text(s.to_string());
    match f.kind {
        FieldKind::Choice => out.extend(f.choices.iter().map(|c| text(c))),
        FieldKind::Bool => out.push(text("否")),
        FieldKind::Date => out.extend(["1970-06-01", "2000-01-01"].map(text)),
        FieldKind::Number => out.extend(f.min.iter().chain(&f.max).map(|n| text(&n.to_string()))),
        _ => {}
    }
    out
}

/// Sample answers that meet the item's conditions where the sample values alone do not (a 孩次 that must
/// follow the number of children, an 入伍时间 within the period a rule names): each field in turn takes the
/// first candidate that leaves the fewest problems with the answers so far.
fn complete_answers(item: &Item, applicant: &Applicant) -> BTreeMap<String, Answer> {
    let guide = item.guide.as_ref().unwrap();
    let mut chosen: BTreeMap<String, Answer> = guide
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.sample_answer(&applicant.id_number)))
        .collect();
    for f in &guide.fields {
        let mut best: Option<(usize, Answer)> = None;
        for candidate in candidates(f, &applicant.id_number) {
            chosen.insert(f.key.clone(), candidate.clone());
            let n = answers(item, applicant, &chosen, today()).len();
            if best.as_ref().is_none_or(|(b, _)| n < *b) {
                best = Some((n, candidate));
            }
        }
        chosen.insert(f.key.clone(), best.expect("at least the sample answer").1);
    }
    chosen
}

#[test]
fn a_complete_case_passes_for_every_village_item() {
    let catalog = Catalog::embedded().unwrap();
    for item in catalog.village_items() {
        let mut failures = Vec::new();
        let passed = applicants().iter().any(|applicant| {
            let answers = complete_answers(item, applicant);
            let mut n = 0;
            let materials: Vec<MaterialPages> = material_needs(item, applicant, &answers, today())
                .into_iter()
                .filter(|m| m.required)
                .map(|m| MaterialPages {
                    key: m.key.clone(),
                    pages: m
                        .pages
                        .iter()
                        .map(|_| {
                            n += 1;
                            page(n)
                        })
                        .collect(),
                })
                .collect();
            let result = precheck(item, applicant, &answers, &materials, today());
            failures.push(result.lines());
            result.passed()
        });
        assert!(passed, "{}: {:?}", item.code, failures);
    }
}
