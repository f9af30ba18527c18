//! The living catalog end to end: the county adds a material to an item in the exported spreadsheet
//! (edited with openpyxl, a spreadsheet library nobody here wrote), imports and publishes it; the
//! phone gets the new version on its next sync, says what changed, and asks for the new material at
//! 初审, while a case made before keeps the version it was made under on the phone and at the town.

mod common;

use std::path::Path;
use std::process::Command;

use bianmin_engine::catalog::Catalog;
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::Answer;
use common::{agent, code, serve_town, staff_transport, text, VILLAGE};

/// The item the test changes: 农户改厕申请, a short form.
const ITEM: &str = "V41";

/// Adds a required material to ITEM as a person would in Excel or WPS: a new row under the last
/// one of sheet `materials`, filled by column name.
const ADD_MATERIAL: &str = r#"
import sys
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb["materials"]
header = [c.value for c in ws[1]]
row = [None] * len(header)
for k, v in {
    "item": sys.argv[3], "key": "village_consent", "name": "村委会同意改厕意见", "form": "original",
    "required": "yes", "capture": "page", "color": "yes", "pages": "盖章页",
    "more_pages": "no", "note": "村委会盖章",
}.items():
    row[header.index(k)] = v
ws.append(row)
wb.save(sys.argv[2])
"#;

async fn run(data: &Path, args: &[&str]) -> std::process::Output {
    let data = data.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        agent(&data, &a)
    })
    .await
    .unwrap()
}

/// `new` arguments for a complete ITEM case under `catalog`: answers and one photo per page 初审 asks.
fn complete_args(work: &Path, catalog: &Catalog, seed: u64) -> Vec<String> {
    let item = catalog.item(ITEM).unwrap();
    let person = bianmin_agent::cases::crash_applicant(seed);
    let applicant = work.join(format!("applicant-{seed}.json"));
    std::fs::write(&applicant, serde_json::to_vec(&person).unwrap()).unwrap();
    let answers = bianmin_agent::cases::crash_answers(item);
    let mut args = vec![
        "new".to_string(),
        "--item".into(),
        ITEM.into(),
        "--applicant".into(),
        applicant.display().to_string(),
    ];
    for (k, v) in &answers {
        if let Answer::Text(t) = v {
            args.push("--answer".into());
            args.push(format!("{k}={t}"));
        }
    }
    let mut n = 0;
    for (key, pages) in bianmin_agent::cases::required_pages(item, &person, &answers) {
        for _ in 0..pages {
            n += 1;
            let p = work.join(format!("{seed}-{key}-{n}.jpg"));
            std::fs::write(&p, bianmin_agent::cases::crash_photo(seed, n)).unwrap();
            args.push("--material".into());
            args.push(format!("{key}={}", p.display()));
        }
    }
    args
}

fn first_line(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn python_with_openpyxl() -> &'static str {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_material_published_from_a_spreadsheet_is_asked_on_the_phone_and_older_cases_keep_their_version(
) {
    let town_dir = tempfile::tempdir().unwrap();
    let phone = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let data = phone.path();
    let (state, addr) = serve_town(town_dir.path()).await;
    let c = code(&state, DeviceRole::Agent, Some(VILLAGE));
    let url = format!("http://{addr}");
    let o = run(
        data,
        &[
            "enroll",
            "--server",
            &url,
            "--code",
            &c,
            "--person",
            "李代办",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));

    // The first sync brings version 1, the town's first publication of the built-in catalog; the
    // phone already has every part of it and fetches none.
    let o = run(data, &["sync"]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("catalog version 1 installed"),
        "{}",
        text(&o)
    );
    let v1 = Catalog::embedded().unwrap();
    let before = first_line(
        &run(
            data,
            &complete_args(work.path(), &v1, 1)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await,
    );
    let draft = {
        let mut args = complete_args(work.path(), &v1, 2);
        args.retain(|a| !a.starts_with("--material") && !a.contains(".jpg"));
        first_line(&run(data, &args.iter().map(String::as_str).collect::<Vec<_>>()).await)
    };
    let o = run(data, &["sync"]).await;
    assert!(o.status.success(), "{}", text(&o));

    // The county: export version 1, add a required material in the spreadsheet, import, publish.
    let (_, published) = bianmin_town::catalog::load(state.store.as_ref(), 1).unwrap();
    let exported = work.path().join("catalog-v1.xlsx");
    let edited = work.path().join("catalog-v2.xlsx");
    bianmin_sheet::export(&published, &exported).unwrap();
    let status = Command::new(python_with_openpyxl())
        .args(["-c", ADD_MATERIAL])
        .arg(&exported)
        .arg(&edited)
        .arg(ITEM)
        .status()
        .unwrap();
    assert!(status.success(), "openpyxl edit failed");
    let imported = bianmin_sheet::import(&edited).unwrap();
    let v = bianmin_town::catalog::import_draft(
        state.store.as_ref(),
        &imported,
        "catalog-v2.xlsx",
        "王科员",
    )
    .unwrap();
    assert_eq!(v.version, 2);
    bianmin_town::catalog::publish(state.store.as_ref(), 2, "李科长").unwrap();

    // The phone's next sync installs version 2 and says what changed.
    let o = run(data, &["sync"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("catalog version 2 installed (1 changes)"),
        "{err}"
    );
    assert!(
        err.contains("V41 新增材料：村委会同意改厕意见（必交）"),
        "{err}"
    );
    let o = run(data, &["items", "--json"]).await;
    let items: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v41 = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == ITEM)
        .unwrap();
    assert_eq!(v41["catalog_version"], 2);
    assert!(v41["materials"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["key"] == "village_consent" && m["pages"][0] == "盖章页"));

    // A new case with what was enough under version 1 is stopped at 初审 by the new material.
    let o = run(
        data,
        &complete_args(work.path(), &v1, 3)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let after = first_line(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("kept as a draft"), "{err}");
    assert!(
        err.contains(
            "missing material: village_consent (村委会同意改厕意见), 0 of 1 photos; still to take: 盖章页"
        ),
        "{err}"
    );

    // Cases made before keep version 1: on the phone, and at the town that holds the sealed one.
    let o = run(data, &["list", "--json"]).await;
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let version_of = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["catalog_version"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(version_of(&before), 1);
    assert_eq!(version_of(&draft), 1);
    assert_eq!(version_of(&after), 2);
    let staff = staff_transport(&state, addr).await;
    let at_town = staff.case(&before).await.unwrap();
    assert_eq!(at_town.catalog_version, 1);
}
