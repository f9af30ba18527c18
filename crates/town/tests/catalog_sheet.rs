//! The county's spreadsheet loop with a real spreadsheet library: `catalog export` writes the
//! published catalog, Python's openpyxl (installed by `tools/deps.sh`) adds a required material to
//! V03 as a person editing in Excel would, `catalog import` makes it a draft, `catalog publish`
//! publishes it, and a device's `GET /v1/catalog` then shows version 2 with only V03's part changed
//! and a change line naming the new material.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::http::StatusCode;
use bianmin_protocol::sync::CatalogManifest;
use bianmin_town::{AppState, SledStore};
use common::{send, Town, NANGUAN};

fn town(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("BIANMIN_DATABASE_URL")
        .output()
        .expect("run bianmin-town")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Adds a row to sheet `materials` the way a person would: under the last row, by column name.
const ADD_MATERIAL: &str = r#"
import sys
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb["materials"]
header = [c.value for c in ws[1]]
row = [None] * len(header)
for k, v in {
    "item": "V03", "key": "disability_card", "name": "残疾证", "form": "original",
    "required": "yes", "capture": "card", "color": "no", "pages": "正面；反面",
    "more_pages": "no",
}.items():
    row[header.index(k)] = v
ws.append(row)
wb.save(sys.argv[2])
"#;

fn python() -> &'static str {
    let ready = Command::new("python3")
        .args(["-c", "import openpyxl"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ready,
        "python3 with openpyxl is needed: run tools/deps.sh (it installs openpyxl with pip)"
    );
    "python3"
}

#[tokio::test]
async fn a_material_added_in_a_spreadsheet_reaches_the_devices_as_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("town");
    let exported = dir.path().join("catalog.xlsx");
    let edited = dir.path().join("catalog-v03.xlsx");

    let out = town(
        &data,
        &["catalog", "export", "--out", exported.to_str().unwrap()],
    );
    ok(&out);
    let status = Command::new(python())
        .args(["-c", ADD_MATERIAL])
        .arg(&exported)
        .arg(&edited)
        .status()
        .unwrap();
    assert!(status.success(), "openpyxl edit failed");

    let out = town(
        &data,
        &[
            "catalog",
            "import",
            edited.to_str().unwrap(),
            "--by",
            "王科员",
        ],
    );
    let stdout = ok(&out);
    assert_eq!(stdout.lines().next(), Some("2"), "{stdout}");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("V03 新增材料：残疾证（必交）"), "{report}");

    let out = town(&data, &["catalog", "publish", "2", "--by", "李科长"]);
    ok(&out);
    let listing: serde_json::Value =
        serde_json::from_str(&ok(&town(&data, &["catalog", "versions", "--json"]))).unwrap();
    let states: Vec<(u64, &str, &str)> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["state"].as_str().unwrap(),
                v["published_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![(1, "published", "system"), (2, "published", "李科长")]
    );
    assert_eq!(listing[1]["changes"], 1);

    // A broken spreadsheet: a non-zero exit, the problem on stderr, and no draft.
    let broken = dir.path().join("broken.xlsx");
    let status = Command::new(python())
        .args([
            "-c",
            "import sys, openpyxl\nwb = openpyxl.load_workbook(sys.argv[1])\nws = wb['materials']\nws.cell(row=2, column=4, value='orig')\nwb.save(sys.argv[2])",
        ])
        .arg(&exported)
        .arg(&broken)
        .status()
        .unwrap();
    assert!(status.success());
    let out = town(&data, &["catalog", "import", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.xlsx: sheet materials, row 2, item V01: form must be one of"),
        "{err}"
    );
    let listing: serde_json::Value =
        serde_json::from_str(&ok(&town(&data, &["catalog", "versions", "--json"]))).unwrap();
    assert_eq!(listing.as_array().unwrap().len(), 2);

    // The town, started on that data directory, serves version 2 to a device.
    let store = Arc::new(SledStore::open(&data.join("db")).unwrap());
    let state = AppState::with_store(&data, store.clone()).unwrap();
    let town = Town {
        dir: tempfile::tempdir().unwrap(),
        state,
        store,
    };
    let agent = town.agent(NANGUAN).await;
    let r = town.router();
    let (st, body) = send(&r, agent.get("/v1/catalog")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m2: CatalogManifest = serde_json::from_str(&body).unwrap();
    let (st, body) = send(&r, agent.get("/v1/catalog?version=1")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m1: CatalogManifest = serde_json::from_str(&body).unwrap();
    assert_eq!(m2.version, 2);
    assert_eq!(m2.changes, vec!["V03 新增材料：残疾证（必交）".to_string()]);
    let changed: Vec<&str> = m2
        .parts
        .iter()
        .zip(&m1.parts)
        .filter(|(a, b)| a.hash != b.hash)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, vec!["item/V03"]);
    assert_eq!(m1.parts.len(), m2.parts.len());
}
