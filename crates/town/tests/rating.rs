//! 好差评 on the HTTP level: receipt tokens (forged, expired, reused, unsynced), one rating per case
//! under 100 concurrent submits, escaping and limits, the bad-review loop's staff API, county login,
//! CSRF and CSV export, and the public rate limit.

mod common;
mod haochaping;

use axum::http::StatusCode;
use bianmin_engine::receipt;
use bianmin_protocol::sync::ChangesPage;
use bianmin_protocol::{CaseState, Decision};
use bianmin_town::feedback::{figures, StepKind};
use bianmin_town::ratelimit::RateConfig;
use bianmin_town::store::TownStore;
use bianmin_town::time::china_today;
use chrono::Days;
use common::*;
use ed25519_dalek::SigningKey;
use haochaping::*;
use serde_json::json;

struct Setup {
    town: Town,
    agent: Device,
    staff: Device,
    id: String,
}

async fn setup() -> Setup {
    let town = Town::new();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let id = completed_case(&town.router(), &agent, &staff).await;
    Setup {
        town,
        agent,
        staff,
        id,
    }
}

#[tokio::test]
async fn the_page_shows_the_timeline_and_bad_tokens_are_refused() {
    let s = setup().await;
    let r = s.town.router();
    let (token, path) = receipt_path(&s.agent, &s.id);
    let (st, body) = send(&r, get(&path, None)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    for want in [
        "已办结",
        "张*",
        "已受理",
        "承诺办结日期",
        TRACKING,
        "证明已开具",
        "提交评价",
        "非常不满意",
        "服务态度",
        "县政务服务监督电话",
        "县里还没有公布号码",
    ] {
        assert!(body.contains(want), "page lacks {want}");
    }
    // Light enough for 2G: one request, no scripts, a few KB.
    assert!(
        body.len() < 12 * 1024,
        "resident page is {} bytes",
        body.len()
    );
    assert!(!body.contains("<script"));
    // The full name and phone never appear.
    assert!(!body.contains("张三") && !body.contains("13800138000"));

    // Forged: signed by another key, garbage, a token of another case, an unknown device.
    let other = SigningKey::from_bytes(&[9; 32]);
    let forged = receipt::mint(&other, &s.id, china_today());
    assert_eq!(
        send(&r, get(&format!("/r/{}?t={forged}", s.id), None))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (st, body) = send(&r, get(&format!("/r/{}?t=AAAA", s.id), None)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(body.contains("链接无效"));
    let next = s.agent.next_case_id();
    assert_eq!(
        send(&r, get(&format!("/r/{next}?t={token}"), None)).await.0,
        StatusCode::FORBIDDEN
    );
    let stranger = Device::fresh(NANGUAN);
    let sid = stranger.next_case_id();
    let (_, spath) = receipt_path(&stranger, &sid);
    assert_eq!(send(&r, get(&spath, None)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&r, get("/r/not-a-case?t=x", None)).await.0,
        StatusCode::NOT_FOUND
    );
    // Expired: issued longer ago than a token lives. (The phone's date counts only while the town
    // does not hold the case; after that validity runs from the day the town received it, since a
    // phone's clock may be wrong: `hardening.rs`.)
    let old = china_today() - Days::new(receipt::TOKEN_VALID_DAYS + 10);
    let unsynced = s.agent.next_case_id();
    let expired = receipt::mint(&s.agent.key, &unsynced, old);
    let (st, body) = send(&r, get(&format!("/r/{unsynced}?t={expired}"), None)).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(body.contains("已过期"));
    // A forged token cannot rate either.
    assert_eq!(
        send(&r, rating_post(&s.id, &forged, 5, "", "8000")).await.0,
        StatusCode::FORBIDDEN
    );

    // Valid token, case not synced yet: a kind notice.
    let (_, upath) = receipt_path(&s.agent, &next);
    let (st, body) = send(&r, get(&upath, None)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("您的办件正在由村代办员上传，请稍后再查看"));
}

#[tokio::test]
async fn a_rating_is_stored_once_fed_back_and_the_token_cannot_rate_again() {
    let s = setup().await;
    let r = s.town.router();
    let (token, path) = receipt_path(&s.agent, &s.id);

    // Wrong phone digits, an over-long comment and a missing level are refused without storing.
    assert_eq!(
        send(&r, rating_post(&s.id, &token, 5, "", "1234")).await.0,
        StatusCode::FORBIDDEN
    );
    let long = "好".repeat(501);
    assert_eq!(
        send(&r, rating_post(&s.id, &token, 5, &long, "8000"))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        send(&r, rating_post(&s.id, &token, 9, "", "8000")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(s.town.state.store.rating(&s.id).unwrap().is_none());

    // Through the agent's on-screen QR the rating is kept as 现场评价: not the case's rating.
    let script = "<script>alert('x')</script>办得很快";
    let resp = send_raw(&r, rating_post(&s.id, &token, 5, script, "8000")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], path.as_str());
    let (st, body) = send(&r, get(&path, None)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("评价已提交") && body.contains("非常满意") && body.contains("现场评价"));
    assert!(
        body.contains("&lt;script&gt;") && !body.contains("<script>alert"),
        "comment must be escaped"
    );
    assert!(!body.contains("提交评价"), "no form after rating");

    // Reused token: refused, the stored rating unchanged.
    let (st, body) = send(&r, rating_post(&s.id, &token, 1, "再评一次", "8000")).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("已经评价过"));
    let on_site = s
        .town
        .store
        .notices()
        .on_site_rating(&s.id)
        .unwrap()
        .unwrap();
    assert_eq!(on_site.level, 5);
    assert!(s.town.state.store.rating(&s.id).unwrap().is_none());
    assert_eq!(
        s.town.store.case(&s.id).unwrap().unwrap().case.state,
        CaseState::Completed
    );

    // The resident's rating through the SMS link is the case's rating; once only.
    let link = sms_link(&s.town, &s.id).await;
    let resp = send_raw(&r, sms_rating_post(&link, 5, script)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (st, body) = send(&r, get(&link, None)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("您的评价已收到") && body.contains("非常满意"));
    assert!(!body.contains("<script>alert"));
    let (st, body) = send(&r, sms_rating_post(&link, 1, "再评一次")).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("已经评价过"));
    let stored = s.town.state.store.rating(&s.id).unwrap().unwrap();
    assert_eq!(stored.level, 5);
    assert!(
        s.town.state.store.rectification(&s.id).unwrap().is_none(),
        "a good rating opens no loop"
    );

    // The case is Rated and the village phone gets a Rated event in its feed.
    assert_eq!(
        s.town.store.case(&s.id).unwrap().unwrap().case.state,
        CaseState::Rated
    );
    let (st, body) = send(&r, s.agent.get("/v1/changes?cursor=0")).await;
    assert_eq!(st, StatusCode::OK);
    let feed: ChangesPage = serde_json::from_str(&body).unwrap();
    assert_eq!(
        feed.entries
            .iter()
            .filter(|e| e.event.case_id == s.id && e.event.decision == Decision::Rated)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_ratings_store_exactly_one() {
    let s = setup().await;
    let r = s.town.router();
    s.town.state.public_limiter.configure(RateConfig {
        burst: 1000.0,
        per_second: 1000.0,
    });
    let link = sms_link(&s.town, &s.id).await;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let (r, link) = (r.clone(), link.clone());
        tasks.push(tokio::spawn(async move {
            let level = (i % 5 + 1) as u8;
            send_raw(&r, sms_rating_post(&link, level, &format!("第{i}次")))
                .await
                .status()
        }));
    }
    let mut ok = 0;
    let mut conflict = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::SEE_OTHER => ok += 1,
            StatusCode::CONFLICT => conflict += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, conflict), (1, 99));
    let all: Vec<_> = s
        .town
        .state
        .store
        .ratings()
        .unwrap()
        .into_iter()
        .filter(|x| x.case_id == s.id)
        .collect();
    assert_eq!(all.len(), 1);
    let (entries, _) = s
        .town
        .store
        .changes(&[NANGUAN.to_string()], 0, 1000)
        .unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.event.decision == Decision::Rated)
            .count(),
        1
    );
    // A bad winner opened exactly one loop; a good one none.
    let loops = s.town.state.store.rectifications().unwrap();
    assert_eq!(loops.len(), usize::from(all[0].level <= 2));
}

#[tokio::test]
async fn a_bad_review_opens_the_loop_that_staff_close_in_order() {
    let s = setup().await;
    let r = s.town.router();
    let link = sms_link(&s.town, &s.id).await;
    assert_eq!(
        send(&r, sms_rating_post(&link, 1, "等了很久")).await.0,
        StatusCode::SEE_OTHER
    );
    let l = s
        .town
        .state
        .store
        .rectification(&s.id)
        .unwrap()
        .expect("a bad review opens a loop");
    assert_eq!(
        l.deadline,
        s.town.state.calendar().add_working_days(china_today(), 15)
    );
    assert_eq!(l.next_step(), Some(StepKind::Verify));

    let step = |kind: &str, notes: &str| {
        let mut body = json!({"step": kind, "by": "王镇办", "notes": notes});
        if kind == "follow_up" {
            body["outcome"] = json!("reached");
        }
        s.staff
            .json("POST", &format!("/v1/rectifications/{}/steps", s.id), &body)
    };
    // Out of order, empty notes, wrong device kinds and other towns are refused.
    assert_eq!(
        send(&r, step("rectify", "先整改")).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        send(&r, step("verify", " ")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let path = format!("/v1/rectifications/{}/steps", s.id);
    assert_eq!(
        send(
            &r,
            s.agent.json(
                "POST",
                &path,
                &json!({"step": "verify", "by": "x", "notes": "y"})
            )
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let other_town = s.town.staff(SHANFU).await;
    assert_eq!(
        send(
            &r,
            other_town.json(
                "POST",
                &path,
                &json!({"step": "verify", "by": "x", "notes": "y"})
            )
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (_, list) = send(&r, other_town.get("/v1/rectifications")).await;
    assert_eq!(list, "[]");

    let before = figures(
        &s.town.state.divisions(),
        &s.town.store.cases().unwrap(),
        &s.town.state.store.ratings().unwrap(),
        &s.town.state.store.rectifications().unwrap(),
        china_today(),
    );
    let county = before.last().unwrap();
    assert_eq!(
        (
            county.bad,
            county.bad_verified_and_rectified,
            county.bad_followed_up
        ),
        (1, 0, 0)
    );
    assert_eq!(county.rectified_rate(), "0.0%");

    for (k, n) in [
        ("verify", "已核实：窗口排队时间长"),
        ("rectify", "增设周六窗口"),
    ] {
        let (st, body) = send(&r, step(k, n)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    // A 回访 must say whether the resident was reached; an outcome on another step is refused.
    for body in [
        json!({"step": "follow_up", "by": "王镇办", "notes": "电话回访"}),
        json!({"step": "follow_up", "by": "王镇办", "notes": "电话回访", "outcome": "maybe"}),
    ] {
        let (st, text) = send(&r, s.staff.json("POST", &path, &body)).await;
        assert!(
            st == StatusCode::UNPROCESSABLE_ENTITY || st == StatusCode::BAD_REQUEST,
            "{st} {text}"
        );
    }
    for (k, n) in [("follow_up", "电话回访，群众满意")] {
        let (st, body) = send(&r, step(k, n)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    assert_eq!(
        send(&r, step("follow_up", "again")).await.0,
        StatusCode::CONFLICT
    );
    let (st, list) = send(&r, s.staff.get("/v1/rectifications")).await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["steps"].as_array().unwrap().len(), 3);
    assert!(v[0]["next_step"].is_null());
    // A town without personal accounts records the tablet's enrolled person ("测试" here), never
    // the name typed into the request; with accounts it is the PIN-checked person
    // (`bad_review_desk.rs`).
    assert_eq!(v[0]["steps"][2]["by"], format!("测试 ({})", s.staff.id));
    assert_eq!(v[0]["steps"][2]["outcome"], "reached");

    let after = figures(
        &s.town.state.divisions(),
        &s.town.store.cases().unwrap(),
        &s.town.state.store.ratings().unwrap(),
        &s.town.state.store.rectifications().unwrap(),
        china_today(),
    );
    let county = after.last().unwrap();
    assert_eq!(
        (
            county.rectified_rate(),
            county.followed_up_rate(),
            county.fed_back_rate()
        ),
        ("100.0%".into(), "100.0%".into(), "100.0%".into())
    );
    let village = after.iter().find(|f| f.code == NANGUAN).unwrap();
    assert_eq!((village.ratings, village.satisfied, village.bad), (1, 0, 1));
    // Every step is in the audit chain.
    let log = s.town.store.audit_log().unwrap();
    bianmin_town::audit::verify_chain(&log).unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.draft.action.starts_with("rectification_"))
            .count(),
        3
    );
}

#[tokio::test]
async fn county_pages_need_a_login_and_csrf_and_export_csv() {
    let s = setup().await;
    let r = s.town.router();
    let link = sms_link(&s.town, &s.id).await;
    assert_eq!(
        send(&r, sms_rating_post(&link, 2, "态度一般")).await.0,
        StatusCode::SEE_OTHER
    );

    let resp = send_raw(&r, get("/county", None)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/county/login");
    assert_eq!(
        send_raw(&r, get("/county/export.csv", None)).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        send_raw(&r, get("/county", Some("bm_county=forged")))
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let password =
        bianmin_town::oversight::supervisor_add(s.town.state.admin.as_ref(), "张科长").unwrap();
    let (st, body) = send(
        &r,
        form(
            "/county/login",
            &[("name", "张科长"), ("password", "wrong-password")],
            None,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body.contains("账号或密码不正确"));
    let resp = send_raw(
        &r,
        form(
            "/county/login",
            &[("name", "张科长"), ("password", &password)],
            None,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();

    let (st, body) = send(&r, get("/county", Some(&cookie))).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("差评整改（1件未闭环）")
            && body.contains("态度一般")
            && body.contains("待核实")
    );
    // A step without the session's CSRF token is refused; with it, recorded.
    let path = format!("/county/rectifications/{}", s.id);
    let (st, _) = send(
        &r,
        form(
            &path,
            &[("csrf", "nope"), ("step", "verify"), ("notes", "核实")],
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let csrf = bianmin_town::feedback::csrf_token(cookie.split_once('=').unwrap().1);
    let resp = send_raw(
        &r,
        form(
            &path,
            &[
                ("csrf", &csrf),
                ("step", "verify"),
                ("notes", "县局电话核实属实"),
            ],
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        s.town
            .state
            .store
            .rectification(&s.id)
            .unwrap()
            .unwrap()
            .steps[0]
            .by,
        "县监督员 张科长"
    );

    let resp = send_raw(&r, get("/county/export.csv", Some(&cookie))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let (_, csv) = send(&r, get("/county/export.csv", Some(&cookie))).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].contains("level,code,name,cases"));
    let county = lines.iter().find(|l| l.starts_with("\"county\"")).unwrap();
    assert!(
        county.contains("\"1\"") && county.contains("\"0.0%\""),
        "{county}"
    );

    // 整改, then a 回访 that must say whether the resident was reached.
    let step = |fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        form(&path, &all, Some(&cookie))
    };
    let resp = send_raw(&r, step(&[("step", "rectify"), ("notes", "窗口培训")])).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = send(&r, get("/county", Some(&cookie))).await;
    assert!(page.contains("name=\"outcome\"") && page.contains("未能联系上申请人"));
    let (st, page) = send(&r, step(&[("step", "follow_up"), ("notes", "电话回访")])).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("请选择回访结果"));
    let resp = send_raw(
        &r,
        step(&[
            ("step", "follow_up"),
            ("outcome", "unreachable"),
            ("notes", "三次致电无人接听"),
        ]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let l = s.town.state.store.rectification(&s.id).unwrap().unwrap();
    assert!(l.is_closed() && !l.fed_back());
    // Followed up, but the resident was never told: 回访率 100%, 联动反馈率 0%.
    let (_, page) = send(&r, get("/county", Some(&cookie))).await;
    assert!(page.contains("未能联系上申请人。三次致电无人接听"));
    let (_, csv) = send(&r, get("/county/export.csv", Some(&cookie))).await;
    let header: Vec<&str> = csv
        .lines()
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .split(',')
        .collect();
    let county: Vec<String> = csv
        .lines()
        .find(|l| l.starts_with("\"county\""))
        .unwrap()
        .split(',')
        .map(|c| c.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| county[header.iter().position(|h| *h == name).unwrap()].clone();
    assert_eq!(
        (
            col("bad_fed_back"),
            col("fed_back_rate"),
            col("followed_up_rate")
        ),
        ("0".into(), "0.0%".into(), "100.0%".into())
    );
}

#[tokio::test]
async fn public_pages_are_rate_limited() {
    let s = setup().await;
    let r = s.town.router();
    // One token per hour refill: nothing comes back while the test runs.
    s.town.state.public_limiter.configure(RateConfig {
        burst: 3.0,
        per_second: 1.0 / 3600.0,
    });
    let (_, path) = receipt_path(&s.agent, &s.id);
    for _ in 0..3 {
        assert_eq!(send(&r, get(&path, None)).await.0, StatusCode::OK);
    }
    let resp = send_raw(&r, get(&path, None)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    // The device API is not behind the public limit.
    assert_eq!(send(&r, s.agent.get("/v1/me")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn too_many_wrong_phone_digits_lock_the_form() {
    let s = setup().await;
    let r = s.town.router();
    let (token, _) = receipt_path(&s.agent, &s.id);
    for _ in 0..bianmin_town::feedback::MAX_PHONE_FAILURES {
        assert_eq!(
            send(&r, rating_post(&s.id, &token, 5, "", "0000")).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // Even the right digits are refused now: 4 digits must not be guessable.
    let (st, body) = send(&r, rating_post(&s.id, &token, 5, "", "8000")).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(body.contains("错误次数过多"));
}

#[tokio::test]
async fn overdue_cases_and_overdue_loops_are_flagged_to_the_county() {
    let s = setup().await;
    let r = s.town.router();
    // A second case, accepted with a deadline that has passed (as if accepted weeks ago).
    let p = page(43, 2048);
    s.agent.upload(&r, &p).await;
    let late = s.agent.next_case_id();
    assert_eq!(
        send(
            &r,
            s.agent.json(
                "PUT",
                &format!("/v1/cases/{late}"),
                &s.agent.submission(&late, 1, &[&p])
            )
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let accept = bianmin_protocol::sync::ActionRequest {
        action: bianmin_protocol::sync::TownAction::Accept,
        staff: "王镇办".into(),
        expected_version: None,
        pin: None,
    };
    assert_eq!(
        send(
            &r,
            s.staff
                .json("POST", &format!("/v1/cases/{late}/actions"), &accept)
        )
        .await
        .0,
        StatusCode::OK
    );
    let mut sc = s.town.store.case(&late).unwrap().unwrap();
    let past = china_today() - Days::new(3);
    sc.case.deadline = Some(past);
    s.town.store.commit(Some(&sc), &[], vec![]).unwrap();

    // A bad review whose loop deadline has passed.
    let link = sms_link(&s.town, &s.id).await;
    assert_eq!(
        send(&r, sms_rating_post(&link, 1, "没人管")).await.0,
        StatusCode::SEE_OTHER
    );
    let mut l = s.town.state.store.rectification(&s.id).unwrap().unwrap();
    l.deadline = past;
    assert!(l.is_overdue(china_today()));
    assert_eq!(
        l.status_label(&s.town.state.calendar(), china_today()),
        "待核实（已超期）"
    );

    let f = figures(
        &s.town.state.divisions(),
        &s.town.store.cases().unwrap(),
        &s.town.state.store.ratings().unwrap(),
        &[l.clone()],
        china_today(),
    );
    let county = f.last().unwrap();
    assert_eq!(
        (
            county.overdue_now,
            county.bad_overdue,
            county.cases,
            county.completed
        ),
        (1, 1, 2, 1)
    );

    let password =
        bianmin_town::oversight::supervisor_add(s.town.state.admin.as_ref(), "督办员").unwrap();
    let resp = send_raw(
        &r,
        form(
            "/county/login",
            &[("name", "督办员"), ("password", &password)],
            None,
        ),
    )
    .await;
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (_, body) = send(&r, get("/county", Some(&cookie))).await;
    assert!(
        body.contains(&late)
            && body.contains("超期办件（督办）")
            && body.contains(&past.to_string()),
        "overdue case listed"
    );
}

/// 联动反馈率 counts bad reviews whose resident a 回访 reached with the result, over all bad
/// reviews: an unanswered call is a 回访 but no feedback, a loop still at 整改 is neither, and
/// good ratings (or a case merely reaching Rated) are not in it at all.
#[test]
fn the_feedback_rate_counts_bad_reviews_whose_resident_was_told() {
    use bianmin_town::feedback::{FollowUpOutcome, Rating, Rectification, Step};
    use bianmin_town::store::RatingVia;
    use chrono::Utc;
    let town = Town::new();
    let step = |kind, outcome| Step {
        kind,
        by: "王镇办".into(),
        at: Utc::now(),
        notes: "记录".into(),
        outcome,
        follow_up_on: None,
        photos: Vec::new(),
    };
    let lp = |id: &str, steps: Vec<Step>| Rectification {
        case_id: id.into(),
        village: NANGUAN.into(),
        level: 1,
        comment: "慢".into(),
        opened_at: Utc::now(),
        deadline: china_today(),
        steps,
    };
    let done = |last| {
        vec![
            step(StepKind::Verify, None),
            step(StepKind::Rectify, None),
            step(StepKind::FollowUp, last),
        ]
    };
    // A loop closed before outcomes existed: stored JSON without the field.
    let legacy: Rectification = serde_json::from_value(json!({
        "case_id": "legacy", "village": NANGUAN, "level": 2, "comment": "",
        "opened_at": Utc::now(), "deadline": china_today(),
        "steps": [
            {"kind": "verify", "by": "a", "at": Utc::now(), "notes": "n"},
            {"kind": "rectify", "by": "a", "at": Utc::now(), "notes": "n"},
            {"kind": "follow_up", "by": "a", "at": Utc::now(), "notes": "n"}
        ]
    }))
    .unwrap();
    let loops = vec![
        lp("told", done(Some(FollowUpOutcome::Reached))),
        lp("no-answer", done(Some(FollowUpOutcome::Unreachable))),
        lp(
            "rectifying",
            vec![step(StepKind::Verify, None), step(StepKind::Rectify, None)],
        ),
        legacy,
    ];
    let rating = |id: &str, level| Rating {
        case_id: id.into(),
        village: NANGUAN.into(),
        level,
        efficiency: 3,
        quality: 3,
        attitude: 3,
        comment: String::new(),
        rated_at: Utc::now(),
        token_issued: china_today(),
        completion: None,
        via: RatingVia::Sms,
        added: None,
    };
    let ratings: Vec<Rating> = ["good-1", "good-2", "good-3"]
        .into_iter()
        .map(|id| rating(id, 5))
        .chain(loops.iter().map(|l| rating(&l.case_id, l.level)))
        .collect();
    let f = figures(
        &town.state.divisions(),
        &[],
        &ratings,
        &loops,
        china_today(),
    );
    let v = f.iter().find(|f| f.code == NANGUAN).unwrap();
    assert_eq!(
        (v.ratings, v.bad, v.bad_followed_up, v.bad_fed_back),
        (7, 4, 3, 1)
    );
    assert_eq!(
        (v.fed_back_rate(), v.followed_up_rate(), v.rectified_rate()),
        ("25.0%".into(), "75.0%".into(), "100.0%".into())
    );
    let county = f.last().unwrap();
    assert_eq!((county.bad, county.bad_fed_back), (4, 1));
    // Nothing to feed back: no rate rather than a flattering 100%.
    let none = figures(
        &town.state.divisions(),
        &[],
        &ratings[..3],
        &[],
        china_today(),
    );
    assert_eq!(none.last().unwrap().fed_back_rate(), "—");
}
