//! End-to-end scenario in the real webview against a real town centre on loopback.
//!
//! The test starts the town server (bianmin-town library) on 127.0.0.1:0, issues a one-time
//! enrolment code, and starts the app in its test mode on a private X screen (the driver lives in
//! `src/e2e.rs`): the agent enrols, files a case, seals and syncs. Meanwhile this test acts as the
//! town staff through the town's HTTP API with an enrolled staff device: it asks for a correction,
//! then accepts and completes the resubmitted version. At the end it decodes the receipt's QR code
//! from the screenshot and checks it is the resident URL the app showed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A page-like JPEG: white paper with dark text lines, like a photographed form.
fn sample_photo(dir: &Path) -> PathBuf {
    // Several different pages: the outbox keeps one copy of a photo taken twice for a material,
    // so every capture in the scenario must be a different picture, as with a real camera.
    let pages = dir.join("pages");
    std::fs::create_dir_all(&pages).expect("photo dir");
    for k in 0..bianmin::e2e::PHOTOS as u32 {
        let mut img = image::GrayImage::from_pixel(800, 1100, image::Luma([235]));
        for line in 0..30 {
            let y = 80 + line * 32;
            for x in 60..(740 - ((line + k) % 7) * 50) {
                for dy in 0..6 {
                    img.put_pixel(x, y + dy, image::Luma([40]));
                }
            }
        }
        // A page number block, so no two pages are the same picture.
        for x in 60 + k * 50..90 + k * 50 {
            for y in 1040..1070 {
                img.put_pixel(x, y, image::Luma([40]));
            }
        }
        img.save(pages.join(format!("page-{k}.jpg"))).expect("write sample photo");
    }
    pages
}

/// The pilot village 古韩镇南关村 and its town.
const VILLAGE: &str = "140423100201";
const TOWN: &str = "140423100";

fn ticket(dir: &Path, role: bianmin_protocol::sync::DeviceRole, village: Option<&str>) -> String {
    let files = bianmin_town::files::Files::new(dir).unwrap();
    files
        .issue_ticket(&bianmin_town::files::Ticket {
            role,
            village: village.map(str::to_string),
            town: TOWN.to_string(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
        })
        .unwrap()
}

/// Starts the town centre; returns its URL. The server lives as long as the test process.
fn start_town(dir: &Path) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let state = bianmin_town::AppState::open(&dir).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap())).unwrap();
            axum::serve(listener, bianmin_town::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Town staff: waits for the case in the inbox, asks for a correction of the first required
/// material, then accepts and completes version 2.
async fn town_staff(server: String, code: String, item_material: String) -> Result<String, String> {
    use bianmin_engine::transport::{Credential, Transport};
    use bianmin_protocol::sync::{ActionRequest, EnrolRequest, TownAction};
    use bianmin_protocol::{CaseState, Delivery, MissingItem};
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let device_id = "STAFF2".to_string();
    let open = Transport::new(&server, None).map_err(|e| e.to_string())?;
    open.enrol(&EnrolRequest {
        code,
        device_id: device_id.clone(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        person: "镇窗口张".into(),
    })
    .await
    .map_err(|e| format!("staff enrolment: {e}"))?;
    let t = Transport::new(&server, Some(Credential { device_id, key })).map_err(|e| e.to_string())?;
    // Bounded waits on the inbox, which the app fills when it syncs.
    let wait_row = |version: u32| {
        let t = &t;
        async move {
            for _ in 0..1200 {
                let rows = t.inbox("").await.map_err(|e| format!("inbox: {e}"))?;
                if let Some(r) = rows.into_iter().find(|r| r.version == version && r.state == CaseState::Received) {
                    return Ok(r);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(format!("version {version} never reached the inbox"))
        }
    };
    let row = wait_row(1).await?;
    let act = |action: TownAction, v: u32| ActionRequest { action, staff: "镇窗口张".into(), expected_version: Some(v) };
    t.act(
        &row.case_id,
        &act(
            TownAction::RequestCorrection {
                missing: vec![MissingItem { key: item_material, note: "照片不清楚，请重拍一张".into() }],
                note: "请补齐后重新提交".into(),
            },
            1,
        ),
    )
    .await
    .map_err(|e| format!("补正: {e}"))?;
    let row2 = wait_row(2).await?;
    assert_eq!(row2.case_id, row.case_id, "the resubmission is the same case");
    t.act(&row.case_id, &act(TownAction::Accept, 2)).await.map_err(|e| format!("受理: {e}"))?;
    t.act(&row.case_id, &act(TownAction::Complete { result: "已批准".into(), delivery: Delivery::AgentDelivery }, 2))
        .await
        .map_err(|e| format!("办结: {e}"))?;
    Ok(row.case_id)
}

#[test]
fn village_case_with_correction_from_form_to_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = sample_photo(tmp.path());
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&out).unwrap();
    let _ = std::fs::remove_file(out.join("receipt-url.txt"));
    let town_dir = tmp.path().join("town");
    std::fs::create_dir_all(&town_dir).unwrap();
    let server = start_town(&town_dir);
    let agent_code = ticket(&town_dir, bianmin_protocol::sync::DeviceRole::Agent, Some(VILLAGE));
    let staff_code = ticket(&town_dir, bianmin_protocol::sync::DeviceRole::Staff, None);
    let catalog = bianmin_engine::catalog::Catalog::embedded().unwrap();
    let material = catalog.item(bianmin::e2e::ITEM).unwrap().guide.as_ref().unwrap().materials.iter().find(|m| m.required).unwrap().key.clone();
    let staff = {
        let server = server.clone();
        std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(town_staff(server, staff_code, material)))
    };
    // A private X server large enough for the tablet size; the window sits at its origin.
    let mut child = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1400x900x24", env!("CARGO_BIN_EXE_bianmin")])
        .env("BIANMIN_E2E", "1")
        .env("BIANMIN_DATA", tmp.path().join("data"))
        .env("BIANMIN_E2E_OUT", &out)
        .env("BIANMIN_E2E_PHOTO", &photo)
        .env("BIANMIN_SERVER", &server)
        .env("BIANMIN_ENROLL_CODE", &agent_code)
        .spawn()
        .expect("xvfb-run and the app start");
    // Bounded wait for the app's own verdict; every step inside has its own bounded wait.
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("the app did not finish the scenario within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "scenario failed (see E2E FAIL above); screenshots in {}", out.display());
    let case_id = staff.join().unwrap().expect("town staff steps");

    // The town tablet role of the same app: its inbox shows the case.
    let tablet_code = ticket(&town_dir, bianmin_protocol::sync::DeviceRole::Staff, None);
    let tablet = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1400x900x24", env!("CARGO_BIN_EXE_bianmin")])
        .env("BIANMIN_E2E", "1")
        .env("BIANMIN_E2E_ROLE", "town")
        .env("BIANMIN_DATA", tmp.path().join("tablet"))
        .env("BIANMIN_E2E_OUT", &out)
        .env("BIANMIN_SERVER", &server)
        .env("BIANMIN_ENROLL_CODE", &tablet_code)
        .status()
        .expect("tablet app starts");
    assert!(tablet.success(), "town tablet scenario failed (see E2E FAIL above)");

    for name in ["home", "items", "guide", "case-form-error", "case-form", "outbox", "correction", "case-completed", "town-inbox", "town-case"] {
        for size in ["phone", "tablet"] {
            let p = out.join(format!("{name}-{size}.png"));
            assert!(p.exists(), "missing screenshot {}", p.display());
        }
    }

    let url = std::fs::read_to_string(out.join("receipt-url.txt")).unwrap();
    assert!(url.starts_with(&format!("{server}/r/{case_id}?t=")), "{url}");
    let shot = image::open(out.join("receipt-tablet.png")).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(shot);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code on the receipt");
    let (_, decoded) = grids[0].decode().expect("QR decodes");
    assert_eq!(decoded, url, "the receipt QR is the resident URL");
}
