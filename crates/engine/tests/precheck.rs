//! 初审 against the real catalog: everything missing is listed at once, and a complete case passes.

use std::collections::BTreeMap;

use bianmin_engine::catalog::Catalog;
use bianmin_engine::validate::{checksum_char, material_needs, precheck};
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
    let required: Vec<_> = item
        .guide
        .as_ref()
        .unwrap()
        .materials
        .iter()
        .filter(|m| m.required)
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

#[test]
fn a_complete_case_passes_for_every_village_item() {
    let catalog = Catalog::embedded().unwrap();
    for item in catalog.village_items() {
        let guide = item.guide.as_ref().unwrap();
        let mut failures = Vec::new();
        let passed = applicants().iter().any(|applicant| {
            let answers: BTreeMap<String, Answer> = guide
                .fields
                .iter()
                .map(|f| (f.key.clone(), f.sample_answer(&applicant.id_number)))
                .collect();
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
