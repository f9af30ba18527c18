//! The county inbox (转县) in a real headless Chromium, driven over WebDriver with fantoccini: a
//! village case accepted and forwarded by the town tablet over real HTTP; the county approval
//! centre's staff member signs in, sees it in the office's inbox (masked), opens it, 受理s it, asks
//! for 补正; the tablet reads the request (`GET /v1/cases/{id}/county`) and answers it
//! (重新报送县里); the county sees the reply and 办结s the case; the tablet and the village feed get
//! the decision naming the county person. Each page passes axe-core (nothing serious or critical).
//! Screenshots go to target/e2e/ (county-inbox-browser*.png).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bianmin_engine::catalog::Catalog;
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, TownAction};
use bianmin_protocol::{CaseState, Decision, Delivery};
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
                "--disable-dev-shm-usage", "--lang=zh-CN", "--window-size=1280,1000",
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

async fn shot(c: &Client, name: &str) -> Result<()> {
    // CARGO_MANIFEST_DIR is crates/town; the workspace target dir is two levels up.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), c.screenshot().await?)?;
    Ok(())
}

/// Runs axe-core (WCAG 2.x A and AA and best practices) in the page and fails on any serious or
/// critical violation, printing every violation found.
async fn axe(c: &Client, what: &str) -> Result<()> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.deps/npm/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "axe-core not readable at {} (run tools/deps.sh)",
            path.display()
        )
    })?;
    c.execute(&source, vec![]).await?;
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] })
                .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')), help: v.help }))))
                .catch(e => done([{ id: 'axe-error', impact: 'critical', nodes: [], help: String(e) }]));",
            vec![],
        )
        .await?;
    let violations = result.as_array().context("axe result is a list")?;
    let serious = violations
        .iter()
        .inspect(|v| println!("axe {what}: {v}"))
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .count();
    if serious > 0 {
        bail!("axe-core found {serious} serious or critical violations on the {what}");
    }
    Ok(())
}

/// Fills the textarea of the case page's form for `action` and submits it; waits for the page
/// the server redirects to, recognised by `then` (a CSS selector only that page has).
async fn decide(c: &Client, action: &str, text: &str, then: &str) -> Result<()> {
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
    c.wait().for_element(Locator::Css(then)).await?;
    Ok(())
}

async fn state_text(c: &Client) -> Result<String> {
    Ok(c.find(Locator::Css("#state")).await?.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn county_staff_work_a_forwarded_case_in_chromium() -> Result<()> {
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
    let signed = |dev: &Device| {
        Transport::with_timeouts(
            &server,
            Some(Credential {
                device_id: dev.id.clone(),
                key: dev.key.clone(),
            }),
            timeouts,
        )
    };
    let mut devices = Vec::new();
    for (role, village, person) in [
        (DeviceRole::Agent, Some(NANGUAN), "李代办"),
        (DeviceRole::Staff, None, "王镇办"),
    ] {
        let dev = Device::fresh(village.unwrap_or(""));
        open.enrol(&EnrolRequest {
            code: town.code(role, village, GUHAN),
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: person.into(),
        })
        .await?;
        devices.push(dev);
    }
    let (phone_dev, tablet_dev) = (&devices[0], &devices[1]);
    let (phone, tablet) = (signed(phone_dev)?, signed(tablet_dev)?);

    // The village files a case with one page; the town accepts it and forwards it (转县).
    let scan = page(11, 20_000);
    let sha = bianmin_engine::transport::sha256_hex(&scan);
    phone
        .upload_chunk(&sha, 0, scan.len() as u64, scan.clone())
        .await?;
    let id = phone_dev.next_case_id();
    phone
        .submit(&phone_dev.submission(&id, 1, &[&scan]))
        .await?;
    let act = |a: TownAction| ActionRequest {
        action: a,
        staff: "王镇办".into(),
        expected_version: None,
        pin: None,
    };
    tablet.act(&id, &act(TownAction::Accept)).await?;
    tablet
        .act(
            &id,
            &act(TownAction::Forward {
                note: "材料齐全，请县里审批".into(),
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
        // Without a session the inbox sends to the login form.
        c.goto(&format!("{server}/county/inbox")).await?;
        c.wait()
            .for_element(Locator::Css("input[name=password]"))
            .await?;
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
        // The office's inbox: the case, masked, waiting for 受理.
        c.wait().for_element(Locator::Css("table#inbox")).await?;
        let row = c
            .find(Locator::XPath(&format!(
                "//table[@id='inbox']//tr[.//a[text()='{id}']]"
            )))
            .await?
            .text()
            .await?;
        assert!(
            row.contains("张*") && row.contains("待受理") && !row.contains("张三"),
            "{row}"
        );
        axe(&c, "county inbox").await?;
        shot(&c, "county-inbox-browser.png").await?;

        // The case page: the applicant whole, the town's note, the page image through the
        // office's route.
        c.find(Locator::LinkText(&id)).await?.click().await?;
        c.wait().for_element(Locator::Css("#accept")).await?;
        let src = c.source().await?;
        assert!(src.contains("张三") && src.contains("材料齐全，请县里审批"));
        assert!(src.contains(&format!("/county/inbox/{id}/pages/{sha}")));
        axe(&c, "county case page").await?;
        shot(&c, "county-case-browser.png").await?;

        // 受理, then 要求补正.
        decide(&c, "accept", "", "#complete").await?;
        assert_eq!(state_text(&c).await?, "县已受理");
        decide(&c, "request_more", "请补充户口簿本人页", "p.bad").await?;
        assert_eq!(state_text(&c).await?, "待镇里补正");

        // The tablet reads the request and answers it.
        let cv = tablet.county(&id).await?;
        let r = cv.request.context("the tablet sees the county's request")?;
        assert_eq!(
            (r.by.as_str(), r.note.as_str()),
            ("襄垣县行政审批服务中心·赵审批", "请补充户口簿本人页")
        );
        tablet
            .act(
                &id,
                &act(TownAction::Forward {
                    note: "户口簿本人页已补交".into(),
                }),
            )
            .await?;

        // The county sees the reply, and 办结s the case for the agent to deliver.
        c.refresh().await?;
        c.wait().for_element(Locator::Css("#complete")).await?;
        let src = c.source().await?;
        assert!(
            src.contains("户口簿本人页已补交"),
            "the reply is on the case page"
        );
        assert_eq!(state_text(&c).await?, "县已受理");
        c.find(Locator::Css("#complete select[name=delivery]"))
            .await?
            .select_by_value("agent_delivery")
            .await?;
        decide(&c, "complete", "准予办理，证照已制作", "#state").await?;
        // The redirect lands on the same page without its forms once decided.
        c.wait()
            .for_element(Locator::XPath("//strong[@id='state' and text()='已办结']"))
            .await?;
        axe(&c, "county case page, decided").await?;
        shot(&c, "county-decided-browser.png").await?;
        c.goto(&format!("{server}/county/inbox")).await?;
        let row = c
            .find(Locator::XPath(&format!(
                "//table[@id='inbox']//tr[.//a[text()='{id}']]"
            )))
            .await?
            .text()
            .await?;
        assert!(row.contains("已办结"), "{row}");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;

    // The decision is back: on the tablet, naming the county person, and in the village feed.
    let cv = tablet.county(&id).await?;
    assert_eq!(cv.status, "已办结");
    let seen = tablet.case(&id).await?;
    assert_eq!(seen.state, CaseState::Completed);
    assert_eq!(
        seen.history.last().map(|h| h.by.as_str()),
        Some("襄垣县行政审批服务中心·赵审批")
    );
    let feed = phone.changes(0).await?;
    assert!(feed.entries.iter().any(|e| e.event.case_id == id
        && matches!(&e.event.decision, Decision::Completed { result, delivery: Delivery::AgentDelivery } if result == "准予办理，证照已制作")));
    Ok(())
}
