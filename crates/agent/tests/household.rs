//! A household item filled by script: `items --json` shows the published definition (version, repeat
//! group, per-member photos) and `new --answers` takes the members as JSON; 初审 counts every member's
//! card, both sides.

mod common;

use bianmin_engine::catalog::{CaptureKind, Catalog, FieldDef, FieldKind};
use bianmin_engine::outbox::{FileKeyStore, Outbox};
use bianmin_protocol::sync::CatalogManifest;
use common::{agent, text};

/// Installs, as sync would, version 1: the shipped catalog with V11 asking for every household member
/// and each member's ID card (both sides).
fn install_household_version(data: &std::path::Path) {
    let shipped = Catalog::embedded().unwrap();
    let mut items = shipped.items().to_vec();
    let g = items
        .iter_mut()
        .find(|i| i.code == "V11")
        .unwrap()
        .guide
        .as_mut()
        .unwrap();
    let col = |key: &str, label: &str, kind: FieldKind| FieldDef {
        key: key.into(),
        label: label.into(),
        kind,
        required: true,
        ..FieldDef::default()
    };
    let mut relation = col("relation", "与申请人关系", FieldKind::Choice);
    relation.choices = vec!["本人".into(), "配偶".into(), "子女".into()];
    g.fields.push(FieldDef {
        fields: vec![
            col("name", "姓名", FieldKind::Text),
            col("id_number", "身份证号码", FieldKind::IdNumber),
            relation,
        ],
        min_rows: Some(1),
        ..col("members", "家庭成员", FieldKind::Group)
    });
    let mut card = g.materials[0].clone();
    card.key = "member_id_card".into();
    card.name = "家庭成员居民身份证".into();
    card.capture = CaptureKind::Card;
    card.pages = vec!["正面".into(), "反面".into()];
    card.per = Some("members".into());
    card.required = true;
    card.required_if = None;
    card.note = String::new();
    g.materials.push(card);
    let catalog = shipped.with_items("test", items).unwrap();
    let manifest = CatalogManifest {
        version: 1,
        hash: catalog.hash(),
        signature: String::new(),
        published_at: chrono::Utc::now(),
        changes: Vec::new(),
        parts: catalog.part_refs(),
    };
    std::fs::create_dir_all(data).unwrap();
    let outbox = Outbox::open(data, &FileKeyStore::new(data.join("device.key"))).unwrap();
    outbox.install_catalog(&manifest, &catalog).unwrap();
}

fn id(birth_seq: &str) -> String {
    let first17 = format!("140423{birth_seq}");
    format!(
        "{first17}{}",
        bianmin_engine::validate::checksum_char(first17.as_bytes())
    )
}

#[test]
fn a_household_case_is_filled_from_json_and_every_members_card_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("phone");
    install_household_version(&data);

    let o = agent(&data, &["items", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let items: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v11 = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "V11")
        .unwrap();
    assert_eq!(v11["catalog_version"], 1);
    let members = v11["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "members")
        .expect("the group is listed");
    assert_eq!(members["type"], "group");
    assert_eq!(members["fields"][2]["choices"][1], "配偶");
    let card = v11["materials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "member_id_card")
        .unwrap();
    assert_eq!(card["pages"], serde_json::json!(["正面", "反面"]));
    assert_eq!(card["per"], "members");

    // Answers for every field of V11 plus three members; one photo per page.
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let applicant = work.join("applicant.json");
    let applicant_id = id("19560312004");
    std::fs::write(
        &applicant,
        serde_json::json!({"name": "王秀英", "id_number": applicant_id, "phone": "13934561234", "address": "古韩镇南关村"}).to_string(),
    )
    .unwrap();
    let mut answers = serde_json::Map::new();
    for f in v11["fields"].as_array().unwrap() {
        let def: FieldDef = serde_json::from_value(f.clone()).unwrap();
        if def.kind != FieldKind::Group {
            answers.insert(
                def.key.clone(),
                serde_json::to_value(def.sample_answer(&applicant_id)).unwrap(),
            );
        }
    }
    answers.insert(
        "members".into(),
        serde_json::json!([
            {"name": "王秀英", "id_number": applicant_id, "relation": "本人"},
            {"name": "李大山", "id_number": id("19550101001"), "relation": "配偶"},
            {"name": "李小花", "id_number": id("20120101002"), "relation": "子女"},
        ]),
    );
    let ans = work.join("answers.json");
    std::fs::write(&ans, serde_json::Value::Object(answers).to_string()).unwrap();
    let mut args: Vec<String> = vec![
        "new".into(),
        "--item".into(),
        "V11".into(),
        "--applicant".into(),
        applicant.display().to_string(),
        "--answers".into(),
        ans.display().to_string(),
    ];
    let mut n = 0;
    for m in v11["materials"].as_array().unwrap() {
        if m["required"] != true {
            continue;
        }
        let per_member = if m["per"].is_string() { 3 } else { 1 };
        for _ in 0..m["pages"].as_array().unwrap().len() * per_member {
            n += 1;
            let p = work.join(format!("p{n}.jpg"));
            std::fs::write(&p, bianmin_agent::cases::crash_photo(7, n)).unwrap();
            args.push("--material".into());
            args.push(format!("{}={}", m["key"].as_str().unwrap(), p.display()));
        }
    }
    // Without the last member's back side 初审 names exactly that photo.
    let short: Vec<&str> = args[..args.len() - 2].iter().map(String::as_str).collect();
    let o = agent(&data, &short);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("kept as a draft"), "{err}");
    assert!(
        err.contains("5 of 6 photos; still to take: 李小花：反面"),
        "{err}"
    );

    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = agent(&data, &all);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sealed into the outbox"),
        "{}",
        text(&o)
    );
}
