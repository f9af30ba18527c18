//! Resident notifications and the credential only the resident holds (issue 17's done-when):
//! every notification reaches a local stand-in of Alibaba Cloud SMS exactly once, with a valid
//! signature, although the stand-in answers errors, throttling, garbage and silence for a while;
//! a dishonest agent's rating through the on-screen QR is kept as 现场评价 and not counted; a
//! refused case is rated by its resident through the link in the SMS. Also: the outbox records on
//! every store backend.

mod common;
mod haochaping;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use base64::Engine;
use bianmin_protocol::sync::{ActionRequest, TownAction};
use bianmin_protocol::CaseState;
use bianmin_town::feedback::figures;
use bianmin_town::notify::aliyun::{string_to_sign, AliyunConfig, AliyunSms};
use bianmin_town::notify::{Notifier, NotifyConfig, SmsProvider};
use bianmin_town::store::notices::{Notice, NoticeKind, NoticeState};
use bianmin_town::store::{RatingVia, TownStore};
use bianmin_town::time::china_today;
use chrono::Utc;
use common::*;
use haochaping::*;
use hmac::{KeyInit, Mac};

const KEY_ID: &str = "LTAI-test-key";
const SECRET: &str = "stand-in-secret";
const TEMPLATE: &str = "SMS_990001";

/// What the stand-in does with the next request.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// HTTP 500 with Alibaba's system-error body.
    ServerError,
    /// HTTP 200 with `isv.BUSINESS_LIMIT_CONTROL` (throttled).
    Throttled,
    /// Never answers (the client's timeout fires).
    Silent,
    /// HTTP 502 with an HTML page, as a proxy in front of it would.
    Garbage,
}

#[derive(Default)]
struct Provider {
    faults: VecDeque<Fault>,
    /// Accepted messages: (OutId, phone, template params).
    delivered: Vec<(String, String, BTreeMap<String, String>)>,
    requests: u32,
    bad_signatures: u32,
    nonces: std::collections::HashSet<String>,
}

/// A local stand-in of Alibaba Cloud's SendSms endpoint that checks every signature with its own
/// HMAC-SHA1 (RustCrypto's, not the adapter's function).
async fn stand_in(faults: Vec<Fault>) -> (String, Arc<Mutex<Provider>>) {
    let shared = Arc::new(Mutex::new(Provider {
        faults: faults.into(),
        ..Provider::default()
    }));
    let s = shared.clone();
    let app = Router::new().route(
        "/",
        axum::routing::post(move |axum::Form(p): axum::Form<BTreeMap<String, String>>| {
            let s = s.clone();
            async move {
                let fault = {
                    let mut g = s.lock().unwrap();
                    g.requests += 1;
                    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(
                        format!("{SECRET}&").as_bytes(),
                    )
                    .unwrap();
                    mac.update(string_to_sign("POST", &p).as_bytes());
                    let want = base64::engine::general_purpose::STANDARD
                        .encode(mac.finalize().into_bytes());
                    let nonce = p.get("SignatureNonce").cloned().unwrap_or_default();
                    let well_formed = p.get("Signature") == Some(&want)
                        && p.get("AccessKeyId").map(String::as_str) == Some(KEY_ID)
                        && p.get("Action").map(String::as_str) == Some("SendSms")
                        && p.get("SignatureMethod").map(String::as_str) == Some("HMAC-SHA1")
                        && p.get("Version").map(String::as_str) == Some("2017-05-25")
                        && p.get("TemplateCode").map(String::as_str) == Some(TEMPLATE)
                        && g.nonces.insert(nonce);
                    if !well_formed {
                        g.bad_signatures += 1;
                        return (
                            StatusCode::BAD_REQUEST,
                            r#"{"Code":"SignatureDoesNotMatch","Message":"bad"}"#.to_string(),
                        );
                    }
                    let fault = g.faults.pop_front();
                    if fault.is_none() {
                        let params: BTreeMap<String, String> =
                            serde_json::from_str(&p["TemplateParam"]).unwrap();
                        g.delivered
                            .push((p["OutId"].clone(), p["PhoneNumbers"].clone(), params));
                        let n = g.delivered.len();
                        return (
                            StatusCode::OK,
                            format!(r#"{{"Code":"OK","Message":"OK","BizId":"biz-{n}"}}"#),
                        );
                    }
                    fault
                };
                match fault {
                    Some(Fault::ServerError) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"Code":"isp.SYSTEM_ERROR","Message":"system error"}"#.into(),
                    ),
                    Some(Fault::Throttled) => (
                        StatusCode::OK,
                        r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"limit"}"#.into(),
                    ),
                    Some(Fault::Garbage) => {
                        (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".into())
                    }
                    Some(Fault::Silent) => std::future::pending().await,
                    None => unreachable!("handled above"),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), shared)
}

fn act(staff: &Device, id: &str, action: TownAction) -> axum::http::Request<axum::body::Body> {
    staff.json(
        "POST",
        &format!("/v1/cases/{id}/actions"),
        &ActionRequest {
            action,
            staff: "王镇办".into(),
            expected_version: None,
            pin: None,
        },
    )
}

/// A case submitted by `agent`, not yet decided.
async fn submitted(r: &Router, agent: &Device, seed: u64) -> String {
    let p = page(seed, 4096);
    agent.upload(r, &p).await;
    let id = agent.next_case_id();
    let (st, body) = send(
        r,
        agent.json(
            "PUT",
            &format!("/v1/cases/{id}"),
            &agent.submission(&id, 1, &[&p]),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    id
}

#[tokio::test]
async fn notices_arrive_once_despite_an_outage_and_only_the_residents_rating_counts() {
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;

    // Case A: accepted, then completed and mailed. Case B: refused. Case C: accepted, then 补正.
    let a = completed_case(&r, &agent, &staff).await;
    let b = submitted(&r, &agent, 43).await;
    let refuse = TownAction::Refuse {
        reason: "不符合申请条件".into(),
    };
    assert_eq!(send(&r, act(&staff, &b, refuse)).await.0, StatusCode::OK);
    let c = submitted(&r, &agent, 44).await;
    assert_eq!(
        send(&r, act(&staff, &c, TownAction::Accept)).await.0,
        StatusCode::OK
    );
    let correction = TownAction::RequestCorrection {
        missing: vec![bianmin_protocol::MissingItem {
            key: "id_card".into(),
            note: "身份证复印件不清楚".into(),
        }],
        note: "请补交清楚的复印件".into(),
    };
    let (st, body) = send(&r, act(&staff, &c, correction)).await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // The provider is down for a while: errors, throttling, a proxy's page and silence.
    use Fault::*;
    let faults = vec![
        ServerError,
        Silent,
        Throttled,
        Garbage,
        ServerError,
        Silent,
        Throttled,
        ServerError,
    ];
    let (endpoint, provider) = stand_in(faults.clone()).await;
    let sms: Arc<dyn SmsProvider> = Arc::new(
        AliyunSms::new(AliyunConfig {
            endpoint,
            access_key_id: KEY_ID.into(),
            access_key_secret: SECRET.into(),
            sign_name: "便民服务".into(),
            template_code: TEMPLATE.into(),
            // Long enough that only the silent faults time out, even on a loaded machine.
            timeout: Duration::from_secs(2),
        })
        .unwrap(),
    );
    let config = NotifyConfig::new("https://bm.example.cn", "便民服务").unwrap();
    let notifier = Notifier::new(
        town.state.clone(),
        config.clone(),
        Some(sms),
        Duration::from_secs(60),
    );

    // Passes at a clock the test moves: two hours apart is past any backoff and any lease.
    let mut now = Utc::now();
    let mut passes = 0;
    loop {
        let p = notifier.pass(now).await.unwrap();
        passes += 1;
        let all = town.store.notices().all_notices().unwrap();
        if !all.is_empty() && all.iter().all(|n| n.state != NoticeState::Pending) {
            break;
        }
        assert!(
            passes < 30,
            "notices still pending after {passes} passes: {p:?}"
        );
        now += chrono::Duration::hours(2);
    }
    // Another pass, and a pass at the same moment, find nothing to queue or send.
    let again = notifier.pass(now).await.unwrap();
    assert_eq!((again.queued, again.sent, again.retrying), (0, 0, 0));

    let notices = town.store.notices().all_notices().unwrap();
    let kinds: HashMap<&str, Vec<NoticeKind>> = notices.iter().fold(HashMap::new(), |mut m, n| {
        m.entry(n.case_id.as_str()).or_default().push(n.kind);
        m
    });
    assert_eq!(
        kinds[a.as_str()],
        [NoticeKind::Accepted, NoticeKind::Mailed]
    );
    assert_eq!(kinds[b.as_str()], [NoticeKind::Refused]);
    assert_eq!(
        kinds[c.as_str()],
        [NoticeKind::Accepted, NoticeKind::Correction]
    );
    let (bad_signatures, requests, sent) = {
        let p = provider.lock().unwrap();
        (p.bad_signatures, p.requests, p.delivered.clone())
    };
    assert_eq!(bad_signatures, 0, "every request is signed as documented");
    // Exactly once: one delivery per notice, none twice, none lost.
    let mut delivered: Vec<&str> = sent.iter().map(|(id, _, _)| id.as_str()).collect();
    delivered.sort();
    let mut expected: Vec<&str> = notices.iter().map(|n| n.id.as_str()).collect();
    expected.sort();
    assert_eq!(delivered, expected);
    assert_eq!(requests as usize, notices.len() + faults.len());
    for n in &notices {
        assert!(
            matches!(n.state, NoticeState::Sent { .. }),
            "{}: {:?}",
            n.id,
            n.state
        );
        assert!(config.sms_chars(&n.text) <= 70, "{} is too long", n.text);
        assert_eq!(n.phone, "13800138000");
    }
    assert!(notices.iter().any(|n| n.attempts > 1));
    println!(
        "notices {} delivered {} provider requests {} (faults injected {}) passes {passes}",
        notices.len(),
        sent.len(),
        requests,
        faults.len()
    );
    for n in &notices {
        println!(
            "SMS 【便民服务】{} ({} chars)",
            n.text,
            config.sms_chars(&n.text)
        );
    }
    let link_of = |case: &str| -> String {
        let (_, _, params) = sent
            .iter()
            .find(|(id, _, _)| id.starts_with(&format!("{case}/")))
            .unwrap();
        let url = &params["url"];
        assert!(params["no"].len() < case.len() && case.ends_with(&params["no"]));
        url.strip_prefix("https://bm.example.cn")
            .unwrap()
            .to_string()
    };
    let (link_a, link_b) = (link_of(&a), link_of(&b));

    // The dishonest agent rates its own case 非常满意 through the QR on its screen: kept as
    // 现场评价, not the case's rating, not counted.
    let (token, _) = receipt_path(&agent, &a);
    let (st, _) = send(&r, rating_post(&a, &token, 5, "", "8000")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(town.store.rating(&a).unwrap().is_none());
    let on_site = town.store.notices().on_site_rating(&a).unwrap().unwrap();
    assert_eq!((on_site.level, on_site.via), (5, RatingVia::Receipt));
    // The agent's device never sees the resident link: not in the case it reads back.
    let code_a = link_a.trim_start_matches("/s/");
    let (_, case_json) = send(&r, agent.get(&format!("/v1/cases/{a}"))).await;
    assert!(!case_json.contains(code_a));
    // Nor the full number that receives it: a village phone reads the case back masked; the town
    // tablet, which may need to call the resident, reads it whole.
    assert!(case_json.contains("138****8000") && !case_json.contains("13800138000"));
    let (_, staff_json) = send(&r, staff.get(&format!("/v1/cases/{a}"))).await;
    assert!(staff_json.contains("13800138000"));

    // The resident of the refused case rates it through the SMS link: 非常不满意, which opens
    // the bad-review loop; the case stays refused.
    let (st, body) = send(&r, get(&link_b, None)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    for want in [
        "不予受理",
        "不符合申请条件",
        "您对这次办事满意吗？",
        "非常不满意",
    ] {
        assert!(body.contains(want), "page lacks {want}");
    }
    assert!(!body.contains("<script") && !body.contains("13800138000"));
    let (st, body) = send(
        &r,
        form(
            &format!("{link_b}/rate"),
            &[("level", "1"), ("comment", "没说清楚为什么不行")],
            None,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let rb = town.store.rating(&b).unwrap().unwrap();
    assert_eq!((rb.level, rb.via, rb.attitude), (1, RatingVia::Sms, 1));
    assert!(town.store.rectification(&b).unwrap().is_some());
    assert_eq!(
        town.store.case(&b).unwrap().unwrap().case.state,
        CaseState::Refused
    );
    // One rating per case.
    let (st, _) = send(&r, form(&format!("{link_b}/rate"), &[("level", "5")], None)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    // A forged or unknown code opens nothing.
    assert_eq!(
        send(&r, get("/s/AAAAAAAA", None)).await.0,
        StatusCode::NOT_FOUND
    );

    // Case A's resident rates through the SMS link although the agent rated on screen.
    let (st, _) = send(&r, form(&format!("{link_a}/rate"), &[("level", "4")], None)).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        town.store.case(&a).unwrap().unwrap().case.state,
        CaseState::Rated
    );

    // The county's figures count the two residents' ratings and report the on-screen one apart.
    let mut ratings = town.store.ratings().unwrap();
    ratings.extend(town.store.notices().on_site_ratings().unwrap());
    let f = figures(
        &town.state.divisions(),
        &town.store.cases().unwrap(),
        &ratings,
        &town.store.rectifications().unwrap(),
        china_today(),
    );
    let v = f.iter().find(|f| f.code == NANGUAN).unwrap();
    assert_eq!(
        (v.ratings, v.satisfied, v.bad, v.on_site_ratings),
        (2, 1, 1, 1)
    );
}

#[tokio::test]
async fn without_a_provider_notices_wait_in_the_outbox_and_opt_out_is_respected() {
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let a = completed_case(&r, &agent, &staff).await;
    let config = NotifyConfig::new("https://bm.example.cn", "便民服务").unwrap();
    let notifier = Notifier::new(town.state.clone(), config, None, Duration::from_secs(60));
    let p = notifier.pass(Utc::now()).await.unwrap();
    assert_eq!((p.queued, p.sent), (2, 0));
    let kept = town.store.notices().all_notices().unwrap();
    assert!(kept.iter().all(|n| n.state == NoticeState::Pending));

    // Looked up by number, the ID number's last six and the SMS code, the case opens; any
    // mismatch gets one answer.
    let link = kept[0].params[2].1.replace("https://bm.example.cn", "");
    let code = link.trim_start_matches("/s/");
    let resp = send_raw(
        &r,
        form(
            "/s",
            &[("case", &a), ("id6", "01001x"), ("code", code)],
            None,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], link.as_str());
    for (case, id6, code) in [
        (a.as_str(), "010010", code),
        ("140423100201-20261128-AAAAAA-0001", "01001X", code),
        (a.as_str(), "01001X", "AAAAAAAA"),
    ] {
        let (st, body) = send(
            &r,
            form("/s", &[("case", case), ("id6", id6), ("code", code)], None),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert!(body.contains("没有找到相符的办件"));
    }
    let (st, body) = send(&r, get("/s", None)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("身份证号码后六位"));

    // The resident opts out from the link; the next notice for that phone is not sent.
    let (st, body) = send(&r, form(&format!("{link}/opt-out"), &[], None)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _) = send(
        &r,
        act(
            &staff,
            &a,
            TownAction::Deliver {
                note: String::new(),
            },
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    notifier.pass(Utc::now()).await.unwrap();
    let all = town.store.notices().all_notices().unwrap();
    let delivered = all
        .iter()
        .find(|n| n.kind == NoticeKind::Delivered)
        .unwrap();
    assert_eq!(delivered.state, NoticeState::OptedOut);
}

fn notice(id: &str, at: chrono::DateTime<Utc>) -> Notice {
    Notice {
        id: id.into(),
        case_id: id.split('/').next().unwrap().into(),
        village: NANGUAN.into(),
        kind: NoticeKind::Accepted,
        phone: "13800138000".into(),
        params: vec![("no".into(), "x".into())],
        text: "办件x已受理".into(),
        created_at: at,
        attempts: 0,
        next_at: at,
        last_error: None,
        state: NoticeState::Pending,
    }
}

#[test]
fn the_outbox_behaves_alike_on_every_backend() {
    for b in common::backends::backends() {
        let s = b.store.notices();
        let t0 = Utc::now();
        let n1 = notice("case-1/2", t0);
        let n2 = notice("case-2/2", t0 + chrono::Duration::seconds(1));
        let links = vec![("CODE0001".to_string(), "case-1".to_string())];
        assert_eq!(
            s.enqueue_notices(&[n1.clone(), n2.clone()], &links, 7)
                .unwrap(),
            2,
            "{}",
            b.name
        );
        // A rescan adds nothing and never moves the cursor back.
        assert_eq!(
            s.enqueue_notices(std::slice::from_ref(&n1), &links, 3)
                .unwrap(),
            0,
            "{}",
            b.name
        );
        assert_eq!(s.notice_cursor().unwrap(), 7, "{}", b.name);
        assert_eq!(s.link_case("CODE0001").unwrap().as_deref(), Some("case-1"));
        assert_eq!(s.link_case("CODE0002").unwrap(), None);
        // A claim leases: a second claim at the same moment gets nothing.
        let lease = t0 + chrono::Duration::seconds(60);
        let got = s
            .claim_notices(t0 + chrono::Duration::seconds(5), lease, 10)
            .unwrap();
        assert_eq!(got.len(), 2, "{}", b.name);
        assert!(s
            .claim_notices(t0 + chrono::Duration::seconds(5), lease, 10)
            .unwrap()
            .is_empty());
        // Sent ones are never claimed again; a pending one is after its lease.
        let mut sent = got[0].clone();
        sent.state = NoticeState::Sent {
            at: t0,
            provider_id: "biz".into(),
        };
        s.put_notice(&sent).unwrap();
        let later = s
            .claim_notices(
                lease + chrono::Duration::seconds(1),
                lease + chrono::Duration::seconds(120),
                10,
            )
            .unwrap();
        assert_eq!(later.len(), 1, "{}", b.name);
        assert_eq!(later[0].id, got[1].id);
        assert_eq!(s.all_notices().unwrap().len(), 2);
        // Opt-outs and on-site ratings.
        assert!(!s.is_opted_out("h").unwrap());
        s.opt_out("h").unwrap();
        assert!(s.is_opted_out("h").unwrap());
        let rating = bianmin_town::store::Rating {
            case_id: "case-1".into(),
            village: NANGUAN.into(),
            level: 5,
            efficiency: 5,
            quality: 5,
            attitude: 5,
            comment: String::new(),
            rated_at: t0,
            token_issued: china_today(),
            completion: None,
            via: RatingVia::Receipt,
            added: None,
        };
        assert!(s.rate_on_site(&rating).unwrap());
        assert!(!s.rate_on_site(&rating).unwrap());
        assert_eq!(s.on_site_rating("case-1").unwrap().unwrap().level, 5);
        assert_eq!(s.on_site_ratings().unwrap().len(), 1);
        println!("outbox records checked on {}", b.name);
    }
}

/// A valid resident ID number (GB 11643 check character) from its first 17 digits.
fn id_number(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{first17}{}", C[(sum % 11) as usize] as char)
}

#[tokio::test]
async fn the_county_is_warned_of_one_phone_for_many_applicants_and_of_quick_ratings() {
    use bianmin_town::warning_signs::{quick_ratings, shared_phones};
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    // Three different applicants, all given the agent's own phone number.
    let mut ids = Vec::new();
    for (i, first17) in [
        "14042319800101001",
        "14042319510203002",
        "14042319620304003",
    ]
    .iter()
    .enumerate()
    {
        let p = page(60 + i as u64, 4096);
        agent.upload(&r, &p).await;
        let id = agent.next_case_id();
        let mut sub = agent.submission(&id, 1, &[&p]);
        sub.applicant.id_number = id_number(first17);
        sub.applicant.phone = "13912345678".into();
        let (st, body) = send(&r, agent.json("PUT", &format!("/v1/cases/{id}"), &sub)).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        ids.push(id);
    }
    let cases = town.store.cases().unwrap();
    let shared = shared_phones(&cases);
    assert_eq!(shared.len(), 1);
    assert_eq!(
        (
            shared[0].phone.as_str(),
            shared[0].applicants,
            shared[0].cases
        ),
        ("139****5678", 3, 3)
    );
    assert_eq!(shared[0].device, agent.id);

    // The agent rates on its own screen minutes after submitting: flagged, marked 现场评价.
    let a = completed_case(&r, &agent, &staff).await;
    let (token, _) = receipt_path(&agent, &a);
    assert_eq!(
        send(&r, rating_post(&a, &token, 5, "", "8000")).await.0,
        StatusCode::SEE_OTHER
    );
    let mut ratings = town.store.ratings().unwrap();
    ratings.extend(town.store.notices().on_site_ratings().unwrap());
    let quick = quick_ratings(&town.store.cases().unwrap(), &ratings);
    assert_eq!(quick.len(), 1);
    assert_eq!(
        (quick[0].case_id.as_str(), quick[0].counted),
        (a.as_str(), false)
    );
    assert!(quick[0].minutes < 30);
}

#[test]
fn the_outbox_moves_with_backup_and_migration() {
    use bianmin_town::store::SledStore;
    let dir = tempfile::tempdir().unwrap();
    let from = SledStore::open(&dir.path().join("db")).unwrap();
    let t0 = Utc::now();
    let mut sent = notice("case-1/4", t0);
    sent.state = NoticeState::Sent {
        at: t0,
        provider_id: "biz-1".into(),
    };
    let links = vec![("CODE0001".to_string(), "case-1".to_string())];
    from.notices()
        .enqueue_notices(&[sent, notice("case-2/5", t0)], &links, 5)
        .unwrap();
    from.notices().opt_out("hash").unwrap();
    let snap = from.snapshot().unwrap();
    assert_eq!(snap.outbox.notices.len(), 2);
    // Restored into an empty embedded store, and migrated into PostgreSQL when one is at hand.
    let dir2 = tempfile::tempdir().unwrap();
    let to = SledStore::open(&dir2.path().join("db")).unwrap();
    to.import(&snap).unwrap();
    let mut targets: Vec<(&str, Arc<dyn TownStore>)> = vec![("sled", Arc::new(to))];
    let db = common::backends::test_db();
    if let Some(db) = &db {
        let pg = common::backends::open_pg(&db.url);
        let s = snap.clone();
        let p = pg.clone();
        std::thread::spawn(move || p.import(&s).unwrap())
            .join()
            .unwrap();
        targets.push(("postgres", pg));
    }
    for (name, store) in targets {
        let s = store.notices();
        assert_eq!(
            s.all_notices().unwrap(),
            from.notices().all_notices().unwrap(),
            "{name}"
        );
        assert_eq!(s.notice_cursor().unwrap(), 5, "{name}");
        assert_eq!(
            s.link_case("CODE0001").unwrap().as_deref(),
            Some("case-1"),
            "{name}"
        );
        assert!(s.is_opted_out("hash").unwrap(), "{name}");
        // Only the pending one is sent after the move; the sent one never again.
        let due = s
            .claim_notices(t0, t0 + chrono::Duration::seconds(60), 10)
            .unwrap();
        assert_eq!(due.len(), 1, "{name}");
        assert_eq!(due[0].id, "case-2/5");
        println!("outbox moved intact to {name}");
    }
}

#[test]
fn serve_refuses_sms_settings_that_cannot_work_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bianmin-town"));
        cmd.arg("--data")
            .arg(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("BIANMIN_DATABASE_URL")
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // A public address too long for the message to fit one SMS.
    let out = run(
        &[
            "--public-url",
            "https://bianmin-service.example-county.gov.cn",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("limit 70"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never listened");
    // A provider without its credentials.
    let out = run(
        &["--public-url", "https://bm.example.cn"],
        &[("BIANMIN_SMS_PROVIDER", "aliyun")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("needs --sms-access-key-id"), "{stderr}");
    assert!(!stderr.contains("stand-in-secret"));
}
