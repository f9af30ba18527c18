//! End to end in a real headless Chromium (driven over WebDriver with fantoccini): a case submitted by
//! an enrolled village device over real HTTP and taken to 办结 by town staff; the resident opens the
//! link the server texts (one question first, checked with axe-core at phone and desktop sizes),
//! rates 不满意 and sees the confirmation; the village phone's feed carries Rated; the
//! county supervisor logs in, sees the open bad review, the loop is closed (核实 by the town tablet's
//! API, 整改 and 回访 on the county page) and the county's three 百分百 figures change.
//! Screenshots go to target/e2e/.

mod common;
mod haochaping;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bianmin_engine::receipt;
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, TownAction};
use bianmin_protocol::{Decision, Delivery};
use bianmin_town::time::china_today;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use haochaping::TRACKING;
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

const AXE_VERSION: &str = "4.14.1";

/// Runs axe-core (WCAG 2.x A and AA rules and best practices, colour contrast included) in the
/// page as it is and fails on any serious or critical violation; prints every violation found
/// and returns how many were serious or critical (zero when it returns). axe-core is the pinned
/// npm package `tools/deps.sh` installs into `.deps/npm`.
async fn axe(c: &Client, what: &str) -> Result<usize> {
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
    let mut serious = 0;
    for v in violations {
        println!("axe {what}: {v}");
        if matches!(v["impact"].as_str(), Some("serious" | "critical")) {
            serious += 1;
        }
    }
    if serious > 0 {
        bail!(
            "axe-core found {serious} serious or critical violations on the {what}: {violations:?}"
        );
    }
    println!(
        "axe {what}: {} violations, none serious or critical",
        violations.len()
    );
    Ok(serious)
}

/// The text of the county row's cell with class `cls`.
async fn county_cell(c: &Client, cls: &str) -> Result<String> {
    let rows = c.find_all(Locator::Css("#figures tr.town")).await?;
    let last = rows.last().context("no county row")?;
    Ok(last
        .find(Locator::Css(&format!("td.{cls}")))
        .await?
        .text()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_rates_in_chromium_and_the_county_sees_the_loop_close() -> Result<()> {
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

    // The village phone enrols and submits over real HTTP.
    let dev = Device::fresh(NANGUAN);
    let open = Transport::with_timeouts(&server, None, timeouts)?;
    let code = town.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    open.enrol(&EnrolRequest {
        code,
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: "李代办".into(),
    })
    .await?;
    let phone = Transport::with_timeouts(
        &server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        timeouts,
    )?;
    let scan = page(7, 20_000);
    let sha = bianmin_engine::transport::sha256_hex(&scan);
    phone
        .upload_chunk(&sha, 0, scan.len() as u64, scan.clone())
        .await?;
    let id = dev.next_case_id();
    phone.submit(&dev.submission(&id, 1, &[&scan])).await?;

    // The town tablet enrols and takes the case to 办结, mailed with a tracking number.
    let tablet = Device::fresh("");
    let code = town.code(DeviceRole::Staff, None, GUHAN);
    open.enrol(&EnrolRequest {
        code,
        device_id: tablet.id.clone(),
        public_key: hex::encode(tablet.key.verifying_key().to_bytes()),
        person: "王镇办".into(),
    })
    .await?;
    let staff = Transport::with_timeouts(
        &server,
        Some(Credential {
            device_id: tablet.id.clone(),
            key: tablet.key.clone(),
        }),
        timeouts,
    )?;
    let act = |a: TownAction| ActionRequest {
        action: a,
        staff: "王镇办".into(),
        expected_version: None,
        pin: None,
    };
    staff.act(&id, &act(TownAction::Accept)).await?;
    let done = TownAction::Complete {
        result: "证明已开具".into(),
        delivery: Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: TRACKING.into(),
        },
    };
    staff.act(&id, &act(done)).await?;

    // The receipt link the phone minted offline (what `bianmin-agent receipt` prints).
    let token = receipt::mint(&dev.key, &id, china_today());
    let url = receipt::url(&server, &id, &token);
    // The link the server texts to the applicant (queued by a notifier pass).
    let sms = haochaping::sms_link(&town, &id).await;

    let driver = start_chromedriver()?;
    let profile = tempfile::tempdir()?;
    let c = browser(&driver, profile.path()).await?;
    let result = async {
        // The agent's on-screen QR still shows the timeline (and may take a 现场评价).
        c.goto(&url).await?;
        let src = c.source().await?;
        for want in ["已办结", "张*", TRACKING, "承诺办结日期", "提交评价"] {
            assert!(src.contains(want), "receipt page lacks {want}");
        }

        // The resident opens the link from the SMS: one question first, big choices.
        let link = format!("{server}{sms}");
        c.set_window_size(390, 844).await?;
        c.goto(&link).await?;
        let src = c.source().await?;
        for want in [
            "已办结",
            "张*",
            "您对这次办事满意吗？",
            "提交评价",
            "县政务服务监督电话",
            "县里还没有公布号码",
        ] {
            assert!(src.contains(want), "resident page lacks {want}");
        }
        assert!(!src.contains("<script"));
        let phone_before = axe(&c, "resident page before rating, phone 390×844").await?;
        shot(&c, "resident-before.png").await?;
        c.set_window_size(1280, 900).await?;
        let desk_before = axe(&c, "resident page before rating, desktop 1280×900").await?;
        c.set_window_size(390, 844).await?;
        // The choice is a whole row of at least 48 px, not a browser-default radio button.
        let choice = c
            .find(Locator::XPath(
                "//label[contains(., '不满意') and not(contains(., '非常'))]",
            ))
            .await?;
        let (_, _, w, h) = choice.rectangle().await?;
        assert!(h >= 48.0 && w >= 0.7 * 390.0, "choice is {w}×{h}");
        choice.click().await?;
        c.find(Locator::Css("details summary"))
            .await?
            .click()
            .await?;
        for (name, v) in [("efficiency", "3"), ("quality", "2"), ("attitude", "2")] {
            c.find(Locator::Css(&format!("select[name={name}]")))
                .await?
                .select_by_value(v)
                .await?;
        }
        c.find(Locator::Css("textarea[name=comment]"))
            .await?
            .send_keys("跑了两趟才办好<b>太慢</b>")
            .await?;
        c.find(Locator::Css("form[action$='/rate'] button[type=submit]"))
            .await?
            .click()
            .await?;
        let confirm = c.wait().for_element(Locator::Css("h2.ok")).await?;
        assert_eq!(confirm.text().await?, "您的评价已收到，谢谢");
        let src = c.source().await?;
        assert!(src.contains("不满意"), "rating shown");
        assert!(
            c.find_all(Locator::Css("form[action$='/rate']"))
                .await?
                .is_empty(),
            "no second rating form"
        );
        let phone_after = axe(&c, "resident page after rating, phone 390×844").await?;
        shot(&c, "resident-after.png").await?;
        c.set_window_size(1280, 900).await?;
        let desk_after = axe(&c, "resident page after rating, desktop 1280×900").await?;
        c.set_window_size(412, 915).await?;
        println!(
            "axe-core {AXE_VERSION}: serious/critical violations phone {}+{} desktop {}+{}",
            phone_before, phone_after, desk_before, desk_after
        );

        // Opening the link again shows the stored rating, not a new form.
        c.goto(&link).await?;
        assert!(c.source().await?.contains("您的评价已收到"));
        // A forged link (signed by a key that is not the phone's) gets the Chinese refusal page.
        let forged = receipt::url(
            &server,
            &id,
            &receipt::mint(
                &ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
                &id,
                china_today(),
            ),
        );
        c.goto(&forged).await?;
        assert_eq!(c.find(Locator::Css("h1")).await?.text().await?, "链接无效");
        shot(&c, "resident-forged.png").await?;

        // County supervisor logs in.
        let password =
            bianmin_town::oversight::supervisor_add(town.state.admin.as_ref(), "张科长")?;
        // The county works at a desk: a desktop-sized window.
        c.set_window_size(1280, 1600).await?;
        c.goto(&format!("{server}/county")).await?;
        c.wait()
            .for_element(Locator::Css("input[name=password]"))
            .await?;
        c.find(Locator::Css("input[name=name]"))
            .await?
            .send_keys("张科长")
            .await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(&password)
            .await?;
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#figures")).await?;
        assert_eq!(county_cell(&c, "rectified").await?, "0.0%");
        assert_eq!(county_cell(&c, "followed").await?, "0.0%");
        let status = c
            .find(Locator::Css(&format!("[id='loop-{id}'] .status")))
            .await?
            .text()
            .await?;
        assert_eq!(status, "待核实");
        shot(&c, "county-before.png").await?;

        // 核实 from the town tablet's API, 整改 and 回访 on the county page.
        let r = town.router();
        let (st, body) = send(
            &r,
            tablet.json(
                "POST",
                &format!("/v1/rectifications/{id}/steps"),
                &json!({"step": "verify", "by": "王镇办", "notes": "已核实：群众往返两次"}),
            ),
        )
        .await;
        assert_eq!(st, axum::http::StatusCode::OK, "{body}");
        for (n, notes) in [(2, "窗口一次性告知清单上墙"), (3, "电话回访，群众表示满意")]
        {
            c.goto(&format!("{server}/county")).await?;
            let form = c
                .find(Locator::Css(&format!("[id='loop-{id}'] form")))
                .await?;
            form.find(Locator::Css("textarea[name=notes]"))
                .await?
                .send_keys(notes)
                .await?;
            form.find(Locator::Css("button[type=submit]"))
                .await?
                .click()
                .await?;
            // Wait for the page that lists the new step (the old page has the table too).
            c.wait()
                .for_element(Locator::Css(&format!(
                    "[id='loop-{id}'] ol.tl li:nth-child({n})"
                )))
                .await?;
        }
        assert_eq!(county_cell(&c, "rectified").await?, "100.0%");
        assert_eq!(county_cell(&c, "followed").await?, "100.0%");
        let status = c
            .find(Locator::Css(&format!("[id='loop-{id}'] .status")))
            .await?
            .text()
            .await?;
        assert_eq!(status, "已闭环");
        shot(&c, "county-after.png").await?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;

    // The village phone sees the rating in its feed.
    let feed = phone.changes(0).await?;
    assert_eq!(
        feed.entries
            .iter()
            .filter(|e| e.event.case_id == id && e.event.decision == Decision::Rated)
            .count(),
        1
    );
    let stored = town.state.store.rating(&id)?.context("rating stored")?;
    assert_eq!(
        (
            stored.level,
            stored.efficiency,
            stored.quality,
            stored.attitude
        ),
        (2, 3, 2, 2)
    );
    Ok(())
}

/// The 追加差评 form in Chromium, without JavaScript: a resident who rated 满意 through the SMS
/// link sees the second form (axe-core: nothing serious or critical at phone and desktop sizes),
/// adds 非常不满意 with words, and the page shows the addition and offers no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_adds_a_bad_review_after_a_good_rating_in_chromium() -> Result<()> {
    let town = Town::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = town
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = format!("http://{addr}");
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let id = haochaping::completed_case(&r, &agent, &staff).await;
    let link = format!("{server}{}", haochaping::sms_link(&town, &id).await);

    let driver = start_chromedriver()?;
    let profile = tempfile::tempdir()?;
    let c = browser(&driver, profile.path()).await?;
    let result = async {
        c.set_window_size(390, 844).await?;
        c.goto(&link).await?;
        c.find(Locator::XPath(
            "//label[contains(., '满意') and not(contains(., '不')) and not(contains(., '非常')) and not(contains(., '基本'))]",
        ))
        .await?
        .click()
        .await?;
        c.find(Locator::Css("form[action$='/rate'] button[type=submit]"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("h2.ok")).await?;
        let src = c.source().await?;
        assert!(src.contains("后来又不满意了？可以追加差评"), "addition offered");
        assert!(!src.contains("<script"));
        let phone = axe(&c, "追加差评 form, phone 390×844").await?;
        shot(&c, "resident-add-bad-form.png").await?;
        c.set_window_size(1280, 900).await?;
        let desk = axe(&c, "追加差评 form, desktop 1280×900").await?;
        c.set_window_size(390, 844).await?;
        // The bad levels are whole rows of at least 48 px, like the first question's.
        let choice = c
            .find(Locator::XPath(
                "//form[contains(@action, '/add-bad')]//label[contains(., '非常不满意')]",
            ))
            .await?;
        let (_, _, w, h) = choice.rectangle().await?;
        assert!(h >= 48.0 && w >= 0.7 * 390.0, "choice is {w}×{h}");
        choice.click().await?;
        c.find(Locator::Css("form[action$='/add-bad'] textarea[name=comment]"))
            .await?
            .send_keys("证明上的名字写错了")
            .await?;
        c.find(Locator::Css("form[action$='/add-bad'] button[type=submit]"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//p[contains(., '您追加的差评')]"))
            .await?;
        assert!(c
            .find_all(Locator::Css("form[action$='/add-bad']"))
            .await?
            .is_empty());
        let after = axe(&c, "page after 追加差评, phone 390×844").await?;
        shot(&c, "resident-add-bad-after.png").await?;
        println!(
            "axe-core {AXE_VERSION} 追加差评: serious/critical violations phone {phone}+{after} desktop {desk}"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;
    let stored = town.state.store.rating(&id)?.context("rating stored")?;
    assert_eq!((stored.level, stored.counted_level()), (4, 1));
    assert!(town.state.store.rectification(&id)?.is_some());
    Ok(())
}
