//! The county inbox in a real headless Chromium (fantoccini over chromedriver): a village case taken
//! in and forwarded (转县) by the town over real HTTP; a county approval-centre person signs in,
//! opens the inbox (screenshot `target/e2e/county-inbox.png`), opens the case, 受理 and 办结 with a
//! result on the page (screenshot `target/e2e/county-case.png`); the village phone's changes feed
//! then carries the county's 办结 with the result and the person's name.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bianmin_engine::catalog::Catalog;
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, TownAction};
use bianmin_protocol::{CaseState, Decision};
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromedriver() -> Result<Driver> {
    // Ask the OS for a free port, release it, hand it to chromedriver.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting /usr/bin/chromedriver")?;
    // Ready when it says so on stdout: no sleeping.
    let out = child.stdout.take().context("chromedriver stdout")?;
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(line) => {
                if line?.contains("started successfully") {
                    break;
                }
            }
            None => bail!("chromedriver exited before it was ready"),
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync",
                "--disable-dev-shm-usage", "--lang=zh-CN", "--window-size=412,915",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    Ok(ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await?)
}

fn e2e_dir() -> PathBuf {
    // CARGO_MANIFEST_DIR is crates/town; the workspace target dir is two levels up.
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) -> Result<()> {
    let png = c.screenshot().await?;
    std::fs::write(e2e_dir().join(name), png)?;
    Ok(())
}

fn signed(server: &str, dev: &Device, timeouts: Timeouts) -> Result<Transport> {
    Ok(Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        timeouts,
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn county_staff_decide_a_forwarded_case_in_chromium() -> Result<()> {
    let town = Town::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = town
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = format!("http://{addr}");
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(20),
        stall: Duration::from_secs(20),
    };
    let open = Transport::with_timeouts(&server, None, timeouts)?;
    let (dev, tablet) = (Device::fresh(NANGUAN), Device::fresh(""));
    for (d, role, village, person) in [
        (&dev, DeviceRole::Agent, Some(NANGUAN), "李代办"),
        (&tablet, DeviceRole::Staff, None, "王镇办"),
    ] {
        open.enrol(&EnrolRequest {
            code: town.code(role, village, GUHAN),
            device_id: d.id.clone(),
            public_key: hex::encode(d.key.verifying_key().to_bytes()),
            person: person.into(),
        })
        .await?;
    }
    let (phone, staff) = (signed(&server, &dev, timeouts)?, signed(&server, &tablet, timeouts)?);
    let scan = page(11, 20_000);
    let sha = bianmin_engine::transport::sha256_hex(&scan);
    phone
        .upload_chunk(&sha, 0, scan.len() as u64, scan.clone())
        .await?;
    let id = dev.next_case_id();
    phone.submit(&dev.submission(&id, 1, &[&scan])).await?;
    let act = |a: TownAction| ActionRequest {
        action: a,
        staff: String::new(),
        expected_version: None,
        pin: None,
    };
    staff.act(&id, &act(TownAction::Accept)).await?;
    staff
        .act(
            &id,
            &act(TownAction::Forward {
                note: "材料齐全，请县审批服务中心办理".into(),
            }),
        )
        .await?;
    let receivers = Catalog::embedded()?.receivers().to_vec();
    let password = bianmin_town::county_inbox::add_staff(
        town.state.admin.as_ref(),
        &receivers,
        "赵审批",
        "approval_centre",
    )?;

    let driver = start_chromedriver()?;
    let profile = tempfile::tempdir()?;
    let c = browser(&driver, profile.path()).await?;
    let result = async {
        c.set_window_size(1280, 900).await?;
        c.goto(&format!("{server}/county/inbox")).await?;
        // Not signed in: the login form.
        c.find(Locator::Css("input[name=name]"))
            .await?
            .send_keys("赵审批")
            .await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(&password)
            .await?;
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        let table = c.wait().for_element(Locator::Css("#inbox")).await?;
        let rows = table.text().await?;
        assert!(rows.contains(&id) && rows.contains("张*") && rows.contains("待受理"), "{rows}");
        assert!(!rows.contains("张三"), "the list is masked: {rows}");
        shot(&c, "county-inbox.png").await?;

        c.find(Locator::LinkText(&id)).await?.click().await?;
        c.wait().for_element(Locator::Css("#accept")).await?.click().await?;
        let state = c.wait().for_element(Locator::Css("#state")).await?;
        assert_eq!(state.text().await?, "县已受理");
        let deadline = c.find(Locator::Css("#deadline")).await?.text().await?;
        assert!(deadline.starts_with("20"), "a working-day deadline: {deadline}");
        let form = c.find(Locator::Css("form#complete")).await?;
        form.find(Locator::Css("textarea[name=text]"))
            .await?
            .send_keys("准予办理，证照已制作，由代办员送达")
            .await?;
        form.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        let state = c.wait().for_element(Locator::Css("#state")).await?;
        assert_eq!(state.text().await?, "已办结");
        // The material's page is served to this session through the authorised route (the
        // test's page is random bytes, so it is fetched, not decoded).
        let src = c
            .find(Locator::Css("img"))
            .await?
            .attr("src")
            .await?
            .context("the page image has a source")?;
        assert_eq!(src, format!("/county/inbox/{id}/pages/{sha}"));
        let got = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0]).then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength])));",
                vec![json!(src)],
            )
            .await?;
        assert_eq!(got, json!([200, scan.len()]));
        shot(&c, "county-case.png").await?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;

    // The decision is back at the town and in the village feed.
    assert_eq!(staff.case(&id).await?.state, CaseState::Completed);
    let feed = phone.changes(0).await?;
    let done = feed
        .entries
        .iter()
        .find(|e| e.event.case_id == id && matches!(e.event.decision, Decision::Completed { .. }))
        .context("the county's 办结 in the village feed")?;
    assert_eq!(done.event.by, "襄垣县行政审批服务中心·赵审批");
    Ok(())
}
