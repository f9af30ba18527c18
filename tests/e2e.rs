//! End-to-end scenario in the real webview against a real town centre on loopback.
//!
//! The test starts the town server (bianmin-town library) on 127.0.0.1:0, issues two one-time
//! enrolment codes, and starts two instances of the app in test mode, each on its own private X
//! screen (the driver lives in `src/e2e.rs`): the village agent's phone enrols, files a case, seals
//! and syncs; the town staff's tablet enrols, opens the case and a page full size, asks for a
//! correction through its 补正 button, and after the phone fixed and resubmitted the case, accepts
//! and completes it (mail, tracking number). The two apps meet only at the town centre. At the end
//! the test checks the town's record (one case, every decision by the tablet), and decodes the
//! receipt's QR code from the screenshot to check it is the resident URL the app showed.
//! Inside the apps, every photographed screen passes axe-core (no serious or critical violation)
//! and the village screens are checked at the 大字 setting, the tablet's at the platform's text scale
//! of 1.3 (`GDK_DPI_SCALE`); the village reads the simple case's ID number from a generated card
//! photo and lists the applicant as a V32 member with one tap; the village side records what filing
//! the case took (`target/e2e/taps.txt`), which the test prints.
//!
//! Three levels: the tablet forwards the village's second (simple) case to the county office
//! (转县); the test plays the county in headless Chromium (chromedriver, as the town's browser
//! tests do): it signs in to the office's inbox, accepts the case and asks for 补正; the tablet sees
//! the request (flagged in its inbox, shown in the case's county box) and answers it; the county
//! completes the case, which reaches the phone and the resident page (opened in Chromium). The
//! case's whole timeline (village agent, town person by PIN, county person) is printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
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
        img.save(pages.join(format!("page-{k}.jpg")))
            .expect("write sample photo");
    }
    pages
}

/// A generated photo of an ID card's front that the reader reads exactly (the first of the
/// seeded tuning cards it reads: the e2e shows the offer, not the reader's hit rate, which
/// `crates/scan/tests/idread.rs` measures); returns its path and number.
fn card_photo(dir: &Path) -> (PathBuf, String) {
    use bianmin_scan::idsynth::{self, FontFace};
    let font = FontFace::open(Path::new(
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    ))
    .expect("fonts-dejavu-core installed (tools/deps.sh)");
    let today = chrono::Local::now().date_naive();
    let verify = |s: &str| bianmin_engine::validate::IdNumber::parse(s, today).is_ok();
    for f in idsynth::id_tuning_set(12, (2000, 1500)) {
        let jpeg = idsynth::render_id_front(&f, &font).jpeg;
        let read =
            bianmin_scan::idread::read_id_with(&jpeg, &verify, &bianmin_scan::CancelToken::new())
                .ok()
                .and_then(|r| r.number);
        if read.as_deref() == Some(f.number.as_str()) {
            let path = dir.join("card.jpg");
            std::fs::write(&path, jpeg).expect("write card photo");
            return (path, f.number);
        }
    }
    panic!("none of 12 generated cards was read exactly");
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

/// Starts the town centre; returns its URL and its state (the test reads the outcome from the
/// store afterwards). The server lives as long as the test process.
fn start_town(dir: &Path) -> (String, bianmin_town::AppState) {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let state = bianmin_town::AppState::open(&dir).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((
                format!("http://{}", listener.local_addr().unwrap()),
                state.clone(),
            ))
            .unwrap();
            axum::serve(
                listener,
                bianmin_town::app(state)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// One instance of the app in test mode on its own private X screen, large enough for the tablet
/// size (the window sits at the screen's origin).
fn launch(
    role: &str,
    data: &Path,
    out: &Path,
    server: &str,
    code: &str,
    photo: Option<&Path>,
    extra_env: &[(&str, String)],
) -> Child {
    let mut cmd = Command::new("xvfb-run");
    // Started as `tools/run.sh` starts it: without cargo's environment, so nothing (the
    // stylesheet above all) may depend on `CARGO_MANIFEST_DIR` and the like.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CARGO") {
            cmd.env_remove(k);
        }
    }
    cmd.args([
        "-a",
        "-s",
        "-screen 0 1400x900x24",
        env!("CARGO_BIN_EXE_bianmin"),
    ])
    .env("BIANMIN_E2E", "1")
    .env("BIANMIN_DATA", data)
    .env("BIANMIN_E2E_OUT", out)
    .env("BIANMIN_SERVER", server)
    .env("BIANMIN_ENROLL_CODE", code)
    .env("BIANMIN_E2E_AXE", axe_script());
    if role == "town" {
        cmd.env("BIANMIN_E2E_ROLE", "town");
    }
    if let Some(p) = photo {
        cmd.env("BIANMIN_E2E_PHOTO", p);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("xvfb-run and the app start")
}

/// axe-core as `tools/deps.sh` installs it (project-local, pinned).
fn axe_script() -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/npm/node_modules/axe-core/axe.min.js");
    assert!(
        p.exists(),
        "axe-core is missing at {}: run tools/deps.sh",
        p.display()
    );
    p
}

/// chromedriver on a free loopback port, killed on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromedriver() -> anyhow::Result<ChromeDriver> {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Ready when it says so on stdout: no sleeping.
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(line) => {
                if line?.contains("started successfully") {
                    break;
                }
            }
            None => anyhow::bail!("chromedriver exited before it was ready"),
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(ChromeDriver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// The county office's side of the chain, in headless Chromium: waits for the forwarded case,
/// signs in as `name`, accepts it and asks for 补正, waits for the tablet's reply, completes it,
/// then opens the resident page the phone wrote (`county-receipt-url.txt`). Screenshots
/// `county-inbox.png`, `county-case.png` and `resident-county.png`. Returns the case number.
async fn county_office(
    server: &str,
    town: &bianmin_town::AppState,
    name: &str,
    password: &str,
    out: &Path,
) -> anyhow::Result<String> {
    use fantoccini::{ClientBuilder, Locator};
    let forwarded = |done: &dyn Fn(&bianmin_town::store::CountyHandling) -> bool| {
        let mut found = None;
        poll("the case at the county", Duration::from_secs(900), || {
            found = town
                .store
                .cases()
                .unwrap()
                .into_iter()
                .find(|c| c.county.as_ref().is_some_and(done))
                .map(|c| c.case.id);
            found.is_some()
        });
        found.expect("polled until found")
    };
    let id = forwarded(&|_: &bianmin_town::store::CountyHandling| true);
    let driver = start_chromedriver()?;
    let profile = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync",
                "--disable-dev-shm-usage", "--lang=zh-CN", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await?;
    let shot = |file: &'static str| {
        let c = c.clone();
        async move {
            std::fs::write(out.join(file), c.screenshot().await?)?;
            anyhow::Ok(())
        }
    };
    let decide = |action: &'static str, text: &'static str| {
        let c = c.clone();
        async move {
            let form = c
                .find(Locator::Css(&format!(
                    "form:has(input[name=action][value={action}])"
                )))
                .await?;
            if !text.is_empty() {
                form.find(Locator::Css("textarea[name=text]"))
                    .await?
                    .send_keys(text)
                    .await?;
            }
            form.find(Locator::Css("button[type=submit]"))
                .await?
                .click()
                .await?;
            anyhow::Ok(())
        }
    };
    let result = async {
        c.goto(&format!("{server}/county/inbox")).await?;
        c.wait()
            .for_element(Locator::Css("input[name=password]"))
            .await?;
        c.find(Locator::Css("input[name=name]"))
            .await?
            .send_keys(name)
            .await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(password)
            .await?;
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::LinkText(&id)).await?;
        shot("county-inbox.png").await?;
        c.find(Locator::LinkText(&id)).await?.click().await?;
        c.wait().for_element(Locator::Css("#accept")).await?;
        shot("county-case.png").await?;
        decide("accept", "").await?;
        c.wait().for_element(Locator::Css("#complete")).await?;
        decide("request_more", bianmin::e2e::COUNTY_REQUEST).await?;
        c.wait().for_element(Locator::Css("p.bad")).await?;
        // The tablet answers (重新报送县里): the request is closed with its reply as the note.
        forwarded(&|h: &bianmin_town::store::CountyHandling| {
            h.request.is_none() && h.note == bianmin::e2e::COUNTY_REPLY
        });
        c.refresh().await?;
        c.wait().for_element(Locator::Css("#complete")).await?;
        c.find(Locator::Css("#complete select[name=delivery]"))
            .await?
            .select_by_value("agent_delivery")
            .await?;
        decide("complete", bianmin::e2e::COUNTY_RESULT).await?;
        c.wait()
            .for_element(Locator::XPath("//strong[@id='state' and text()='已办结']"))
            .await?;
        // The resident page of the case, from the link the phone shows once the result is in.
        let link = out.join("county-receipt-url.txt");
        poll(
            "the phone to show the county's result",
            Duration::from_secs(600),
            || link.exists(),
        );
        c.set_window_size(390, 844).await?;
        c.goto(&std::fs::read_to_string(&link)?).await?;
        let page = c.source().await?;
        anyhow::ensure!(
            page.contains("已办结") && page.contains(bianmin::e2e::COUNTY_RESULT),
            "the resident page lacks the county's result"
        );
        shot("resident-county.png").await?;
        anyhow::Ok(())
    }
    .await;
    c.close().await?;
    result.map(|()| id)
}

/// Polls `cond` until it holds, failing after `limit` (a deadline, not a pause).
fn poll(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn village_case_with_correction_from_form_to_receipt() {
    use bianmin_protocol::sync::DeviceRole;
    use bianmin_protocol::{CaseState, Decision, Delivery};
    let tmp = tempfile::tempdir().unwrap();
    let photo = sample_photo(tmp.path());
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&out).unwrap();
    let _ = std::fs::remove_file(out.join("receipt-url.txt"));
    let _ = std::fs::remove_file(out.join("taps.txt"));
    for stale in [
        "county-receipt-url.txt",
        "county-inbox.png",
        "county-case.png",
        "resident-county.png",
    ] {
        let _ = std::fs::remove_file(out.join(stale));
    }
    let town_dir = tmp.path().join("town");
    std::fs::create_dir_all(&town_dir).unwrap();
    let (server, town) = start_town(&town_dir);
    let agent_code = ticket(&town_dir, DeviceRole::Agent, Some(VILLAGE));
    let tablet_code = ticket(&town_dir, DeviceRole::Staff, None);
    for (name, pin) in bianmin::e2e::STAFF {
        bianmin_town::staff::add_staff(town.admin.as_ref(), TOWN, name, pin).unwrap();
    }
    let enrolled = |role: DeviceRole| town.store.devices().unwrap().iter().any(|d| d.role == role);
    // The county office the simple item goes to, with one staff account; it works in Chromium,
    // on its own thread, for as long as the apps take.
    let catalog = bianmin_engine::catalog::Catalog::embedded().unwrap();
    let office = catalog
        .receiver_for(bianmin::e2e::SIMPLE_ITEM)
        .expect("the catalog names a county office")
        .clone();
    const COUNTY_PERSON: &str = "赵审批";
    let password = bianmin_town::county_inbox::add_staff(
        town.admin.as_ref(),
        catalog.receivers(),
        COUNTY_PERSON,
        &office.key,
    )
    .unwrap();
    let county = {
        let (server, town, out) = (server.clone(), town.clone(), out.clone());
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(county_office(
                    &server,
                    &town,
                    COUNTY_PERSON,
                    &password,
                    &out,
                ))
        })
    };

    // The village phone first; the tablet once the phone has enrolled, so the two `xvfb-run -a`
    // never race for the same free display number.
    let (card, card_number) = card_photo(tmp.path());
    let mut village = launch(
        "village",
        &tmp.path().join("data"),
        &out,
        &server,
        &agent_code,
        Some(&photo),
        &[
            ("BIANMIN_E2E_CARD", card.display().to_string()),
            ("BIANMIN_E2E_CARD_NUMBER", card_number),
        ],
    );
    let start = Instant::now();
    poll(
        "the village phone to enrol",
        Duration::from_secs(300),
        || enrolled(DeviceRole::Agent) || village.try_wait().unwrap().is_some(),
    );
    let mut tablet = launch(
        "town",
        &tmp.path().join("tablet"),
        &out,
        &server,
        &tablet_code,
        None,
        // The tablet runs with the platform's text at 130%, as a desktop set to large text.
        &[
            ("GDK_DPI_SCALE", "1.3".to_string()),
            ("BIANMIN_E2E_TEXT_SCALE", "1.3".to_string()),
        ],
    );

    // Each app ends with its own verdict; every step inside has its own bounded wait.
    let (mut village_status, mut tablet_status) = (None, None);
    poll(
        "both apps to finish the scenario",
        Duration::from_secs(1200),
        || {
            village_status = village_status.or_else(|| village.try_wait().unwrap());
            tablet_status = tablet_status.or_else(|| tablet.try_wait().unwrap());
            // One side failing leaves the other waiting for it: stop it instead of waiting it out.
            if village_status.is_some_and(|s| !s.success()) && tablet_status.is_none() {
                let _ = tablet.kill();
            }
            if tablet_status.is_some_and(|s| !s.success()) && village_status.is_none() {
                let _ = village.kill();
            }
            village_status.is_some() && tablet_status.is_some()
        },
    );
    eprintln!(
        "e2e: both apps finished in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        village_status.unwrap().success(),
        "village scenario failed (see E2E FAIL above); screenshots in {}",
        out.display()
    );
    assert!(
        tablet_status.unwrap().success(),
        "town tablet scenario failed (see E2E FAIL above); screenshots in {}",
        out.display()
    );

    // The town's record: one case, resubmitted once, completed by mail and marked 已送达, every
    // decision taken by the tablet's enrolled device (no other staff device exists).
    let devices = town.store.devices().unwrap();
    let tablet_dev = devices
        .iter()
        .find(|d| d.role == DeviceRole::Staff)
        .expect("the tablet enrolled");
    assert_eq!(
        devices.len(),
        2,
        "only the phone and the tablet are enrolled"
    );
    let cases = town.store.cases().unwrap();
    // The driver also files a simple item (to count its taps), which the town forwards to the
    // county.
    let scenario: Vec<_> = cases
        .iter()
        .filter(|c| c.case.item == bianmin::e2e::ITEM)
        .collect();
    assert_eq!(scenario.len(), 1, "the resubmission is the same case");
    assert!(
        cases.iter().all(
            |c| [bianmin::e2e::ITEM, bianmin::e2e::SIMPLE_ITEM].contains(&c.case.item.as_str())
        ),
        "only the scenario's two items were filed"
    );
    // The county's side ran to the end, and its case went all the way: the whole timeline.
    let county_case = county
        .join()
        .expect("the county thread")
        .expect("the county office in Chromium");
    let sc = town
        .store
        .case(&county_case)
        .unwrap()
        .expect("the county's case");
    assert_eq!(sc.case.item, bianmin::e2e::SIMPLE_ITEM);
    assert_eq!(sc.case.state, CaseState::Completed);
    let county_person = format!("{}·{COUNTY_PERSON}", office.name);
    eprintln!("e2e: timeline of {county_case} (village → town → county → village):");
    for s in &sc.case.history {
        eprintln!(
            "  {} {} → {} · {}{}",
            bianmin_town::time::china_time(s.at),
            s.from.label(),
            s.to.label(),
            s.by,
            if s.note.is_empty() {
                String::new()
            } else {
                format!("：{}", s.note)
            }
        );
    }
    let [_, (town_person, _)] = bianmin::e2e::STAFF;
    for (who, what) in [
        (format!("{town_person} ({})", tablet_dev.id), "转县"),
        (county_person.clone(), "县要求补正"),
        (
            format!("{town_person} ({})", tablet_dev.id),
            "补正后重新报送县里",
        ),
        (county_person.clone(), "办结"),
    ] {
        assert!(
            sc.case.history.iter().any(|h| h.by == who
                && (h.note.contains(what)
                    || (what == "办结" && h.to == CaseState::Completed)
                    || (what == "转县" && h.to == CaseState::Forwarded))),
            "no {what} by {who} in the timeline"
        );
    }
    assert!(
        matches!(&sc.case.last_decision, Some(Decision::Completed { result, .. }) if result == bianmin::e2e::COUNTY_RESULT)
    );
    let c = &scenario[0].case;
    assert_eq!((c.version, c.state), (2, CaseState::Delivered));
    match &c.last_decision {
        Some(Decision::Completed {
            result,
            delivery:
                Delivery::Mail {
                    carrier,
                    tracking_number,
                },
        }) => {
            assert_eq!(
                (result.as_str(), carrier.as_str(), tracking_number.as_str()),
                (
                    bianmin::e2e::RESULT,
                    bianmin::e2e::CARRIER,
                    bianmin::e2e::TRACKING
                )
            );
        }
        other => panic!("expected completion by mail, got {other:?}"),
    }
    // Each decision names the person who unlocked the tablet with their PIN, and the tablet.
    let [(first, _), (second, _)] = bianmin::e2e::STAFF;
    let by_tablet = |to: CaseState| {
        let who = if to == CaseState::CorrectionRequested {
            first
        } else {
            second
        };
        c.history
            .iter()
            .any(|h| h.to == to && h.by == format!("{who} ({})", tablet_dev.id))
    };
    for to in [
        CaseState::CorrectionRequested,
        CaseState::Accepted,
        CaseState::Completed,
        CaseState::Delivered,
    ] {
        assert!(
            by_tablet(to),
            "{to:?} was not decided on the tablet: {:?}",
            c.history
        );
    }
    let material = bianmin::e2e::correction_material().unwrap();
    let audit = town.store.audit_log().unwrap();
    assert!(
        audit.iter().any(|a| a.draft.action == "request_correction"
            && a.draft.actor == format!("{first} ({})", tablet_dev.id)
            && a.draft.detail.contains(&material)
            && a.draft.detail.contains(bianmin::e2e::CORRECTION_NOTE)),
        "the tablet's 补正 names the picked material and its note"
    );
    assert!(
        audit
            .iter()
            .any(|a| a.draft.action == "view_attachment" && a.draft.actor == tablet_dev.id),
        "the tablet downloaded pages"
    );
    let unlocks: Vec<&str> = audit
        .iter()
        .filter(|a| a.draft.action == "staff_unlock")
        .map(|a| a.draft.actor.as_str())
        .collect();
    assert_eq!(
        unlocks,
        [
            format!("{first} ({})", tablet_dev.id),
            format!("{second} ({})", tablet_dev.id)
        ],
        "one sign-in per person, in order"
    );

    let taps = std::fs::read_to_string(out.join("taps.txt")).expect("the village recorded taps");
    eprint!("e2e: what filing took:\n{taps}");
    assert!(
        taps.contains("total_taps="),
        "taps.txt names the counts: {taps}"
    );

    for name in [
        "home",
        "home-large",
        "home-done",
        "items",
        "guide",
        "case-form-error",
        "case-form",
        "outbox",
        "correction",
        "case-completed",
        "town-pin",
        "town-pin-switch",
        "town-inbox",
        "town-confirm",
        "town-case",
        "town-material",
        "town-completed",
        "town-delivered",
        "town-county-request",
        "town-window-intake",
        "case-county",
    ] {
        for size in ["phone", "tablet"] {
            let p = out.join(format!("{name}-{size}.png"));
            assert!(p.exists(), "missing screenshot {}", p.display());
        }
    }

    for name in ["county-inbox", "county-case", "resident-county"] {
        let p = out.join(format!("{name}.png"));
        assert!(p.exists(), "missing screenshot {}", p.display());
    }

    let url = std::fs::read_to_string(out.join("receipt-url.txt")).unwrap();
    assert!(url.starts_with(&format!("{server}/r/{}?t=", c.id)), "{url}");
    let shot = image::open(out.join("receipt-tablet.png"))
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(shot);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code on the receipt");
    let (_, decoded) = grids[0].decode().expect("QR decodes");
    assert_eq!(decoded, url, "the receipt QR is the resident URL");
}
