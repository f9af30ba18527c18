//! A household item filled by script: `items --json` shows the published definition (version, repeat
//! group, per-member photos) and `new --answers` takes the members as JSON; 初审 counts every member's
//! card, both sides.

mod common;

use bianmin_engine::catalog::Catalog;
use bianmin_engine::outbox::{FileKeyStore, Outbox};
use bianmin_protocol::sync::CatalogManifest;
use common::{agent, text};

/// Installs, as sync would, version 1: the shipped catalog, whose V11 lists every household member
/// and asks for each member's household-register page and, from 16, ID card.
fn install_version_1(data: &std::path::Path) {
    let catalog = Catalog::embedded().unwrap();
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
    install_version_1(&data);

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
    assert_eq!(members["fields"][2]["key"], "relation");
    assert_eq!(members["fields"][2]["choices"][0], "配偶");
    let card = v11["materials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "member_id_cards")
        .unwrap();
    assert_eq!(card["pages"], serde_json::json!(["正面", "反面"]));
    assert_eq!(card["per"], "members");
    assert_eq!(card["per_if"], "row.id_number_age >= 16");

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
    // Three members besides the applicant, all 16 or over and healthy, so no hardship proof is due.
    let answers = serde_json::json!({
        "applicant_income": 300,
        "area_type": "农村最低生活保障",
        "cause": "年老体弱",
        "members": [
            {"name": "李大山", "id_number": id("19550101001"), "relation": "配偶", "health": "健康", "work": "务农", "monthly_income": 200},
            {"name": "李二山", "id_number": id("19850601003"), "relation": "子女", "health": "健康", "work": "务工或经营", "monthly_income": 900},
            {"name": "李小花", "id_number": id("20080101002"), "relation": "孙子女、外孙子女", "health": "健康", "work": "在校学生", "monthly_income": 0},
        ],
    });
    let ans = work.join("answers.json");
    std::fs::write(&ans, answers.to_string()).unwrap();
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
    let last_card = args
        .iter()
        .rposition(|a| a.starts_with("member_id_cards="))
        .unwrap();
    let short: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != last_card && *i != last_card - 1)
        .map(|(_, a)| a.as_str())
        .collect();
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
