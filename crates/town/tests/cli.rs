//! The `bianmin-town` command line: villages, enrolment codes with QR, revocation, cases, audit.

use std::process::Command;

fn town(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn villages_json_lists_the_county_tree() {
    let dir = tempfile::tempdir().unwrap();
    let out = town(dir.path(), &["villages", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["county"]["code"], "140423");
    assert_eq!(v["county"]["name"], "襄垣县");
    let towns = v["town"].as_array().unwrap();
    assert_eq!(towns.len(), 9);
    let guhan = towns.iter().find(|t| t["name"] == "古韩镇").unwrap();
    assert!(guhan["village"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "南关村" && x["code"].as_str().unwrap().len() == 12));
    let shanfu = towns.iter().find(|t| t["name"] == "善福镇").unwrap();
    assert!(shanfu["village"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "善福村"));
}

#[test]
fn an_edited_divisions_file_in_the_data_dir_is_used() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("divisions.toml"),
        "[county]\ncode=\"140423\"\nname=\"襄垣县\"\n[[town]]\ncode=\"140423100\"\nname=\"古韩镇\"\n[[town.village]]\ncode=\"140423100299\"\nname=\"新村\"\n",
    )
    .unwrap();
    let out = town(dir.path(), &["villages", "--json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("新村"));
    assert!(town(dir.path(), &["enroll", "--village", "140423100299"])
        .status
        .success());
}

#[test]
fn enroll_prints_the_code_alone_first_then_a_qr() {
    let dir = tempfile::tempdir().unwrap();
    let out = town(
        dir.path(),
        &[
            "enroll",
            "--village",
            "140423100201",
            "--server",
            "https://bm.example.cn",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let code = lines.next().unwrap();
    assert_eq!(code.len(), 12);
    assert!(code
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert!(text.contains(&format!(
        "bianmin:enrol?server=https://bm.example.cn&code={code}"
    )));
    assert!(
        text.contains('█') || text.contains('▀') || text.contains('▄'),
        "a QR code is drawn"
    );

    let staff = town(dir.path(), &["enroll", "--town", "140423100"]);
    assert!(staff.status.success());
    assert!(!town(dir.path(), &["enroll", "--village", "999999999999"])
        .status
        .success());
    assert!(!town(dir.path(), &["enroll", "--town", "140423999"])
        .status
        .success());
}

#[test]
fn revoke_cases_and_audit_on_an_empty_town() {
    let dir = tempfile::tempdir().unwrap();
    assert!(town(dir.path(), &["revoke", "K7Q2MX"]).status.success());
    assert!(dir.path().join("revoked/K7Q2MX").exists());
    assert!(
        !town(dir.path(), &["revoke", "../etc"]).status.success(),
        "device ids are checked"
    );
    let out = town(dir.path(), &["cases", "--json"]);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    assert!(town(dir.path(), &["audit"]).status.success());
}
