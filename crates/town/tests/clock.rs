//! The working-day clock end to end, on both store backends and over a real socket: a tablet
//! pauses a case for 公示 (the person checked by PIN) and resumes it, the inbox shows the frozen
//! countdown and the moved deadline; an extension request moves the deadline only once a county
//! supervisor approves it; 催办 on an overdue case reaches the inbox with who and when, and the
//! clock history and the audit log record every step; a case waiting in 已接收 past the setting is
//! flagged.

mod common;
mod haochaping;

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use bianmin_protocol::clock::{ClockAction, ClockRequest, ClockView};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, InboxRow, TownAction};
use bianmin_town::time::china_today;
use bianmin_town::{app, AppState};
use chrono::Duration;
use common::backends::backends;
use common::*;
use http_body_util::{BodyExt, Full};

/// Runs blocking store work (the PostgreSQL client starts its own runtime) off the async thread.
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// Sends a request built for the router to the real server at `addr`.
async fn http(addr: SocketAddr, req: Request<Body>) -> (StatusCode, String) {
    let (mut parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    parts.uri = format!("http://{addr}{}", parts.uri.path_and_query().unwrap())
        .parse()
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = client
        .request(Request::from_parts(parts, Full::new(bytes)))
        .await
        .unwrap();
    let st = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (st, String::from_utf8_lossy(&body).to_string())
}

async fn enrol(addr: SocketAddr, state: &AppState, role: DeviceRole, village: &str) -> Device {
    let dev = Device::fresh(village);
    let code = off(|| {
        state
            .admin
            .issue_ticket(&bianmin_town::files::Ticket {
                role,
                village: (role == DeviceRole::Agent).then(|| village.to_string()),
                town: GUHAN.into(),
                expires_at: chrono::Utc::now() + Duration::minutes(10),
            })
            .unwrap()
    });
    let req = EnrolRequest {
        code,
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: "登记人".into(),
    };
    let (st, body) = http(addr, post_json("/v1/enrol", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    dev
}

fn clock(tablet: &Device, id: &str, action: ClockAction, pin: &str) -> Request<Body> {
    tablet.json(
        "POST",
        &format!("/v1/cases/{id}/clock"),
        &ClockRequest {
            action,
            staff: "王芳".into(),
            pin: Some(pin.into()),
        },
    )
}

async fn inbox_row(addr: SocketAddr, tablet: &Device, id: &str) -> InboxRow {
    let (st, body) = http(addr, tablet.get("/v1/inbox")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let rows: Vec<InboxRow> = serde_json::from_str(&body).unwrap();
    rows.into_iter().find(|r| r.case_id == id).unwrap()
}

async fn login(addr: SocketAddr, state: &AppState) -> (String, String) {
    let password =
        off(|| bianmin_town::oversight::supervisor_add(state.admin.as_ref(), "张科长").unwrap());
    let (mut parts, body) = haochaping::form(
        "/county/login",
        &[("name", "张科长"), ("password", &password)],
        None,
    )
    .into_parts();
    parts.uri = format!("http://{addr}/county/login").parse().unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = client
        .request(Request::from_parts(
            parts,
            Full::new(body.collect().await.unwrap().to_bytes()),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (st, page) = http(addr, haochaping::get("/county/supervision", Some(&cookie))).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .map(|s| s[..64].to_string())
        .unwrap_or_else(|| bianmin_town::feedback::csrf_token(cookie.split('=').nth(1).unwrap()));
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pauses_extensions_and_presses_move_and_show_the_clock() {
    for b in off(backends) {
        let state =
            off(|| AppState::with_stores(b.dir.path(), b.store.clone(), b.admin.clone()).unwrap());
        off(|| bianmin_town::staff::add_staff(state.admin.as_ref(), GUHAN, "王芳", "204816"))
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        let phone = enrol(addr, &state, DeviceRole::Agent, NANGUAN).await;
        let tablet = enrol(addr, &state, DeviceRole::Staff, "").await;
        // Two cases: one to pause and extend, one left waiting in 已接收.
        let mut ids = Vec::new();
        for n in 0..2u64 {
            let p = page(700 + n, 3000);
            let sha = bianmin_engine::transport::sha256_hex(&p);
            let (st, body) = http(
                addr,
                phone.request(
                    "PATCH",
                    &format!("/v1/attachments/{sha}"),
                    p.clone(),
                    Some((0, p.len() as u64)),
                ),
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{body}");
            let id = phone.next_case_id();
            let (st, body) = http(
                addr,
                phone.json(
                    "PUT",
                    &format!("/v1/cases/{id}"),
                    &phone.submission(&id, 1, &[&p]),
                ),
            )
            .await;
            assert_eq!(st, StatusCode::CREATED, "{body}");
            ids.push(id);
        }
        let (id, waiting) = (ids[0].clone(), ids[1].clone());

        // Nothing to pause before 受理.
        let pause = || ClockAction::Pause {
            reason: "publicity".into(),
            note: "低保公示7天".into(),
        };
        let (st, body) = http(addr, clock(&tablet, &id, pause(), "204816")).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        assert!(body.contains("clock_not_running"), "{body}");

        let accept = tablet.json(
            "POST",
            &format!("/v1/cases/{id}/actions"),
            &ActionRequest {
                action: TownAction::Accept,
                staff: "王芳".into(),
                pin: Some("204816".into()),
                expected_version: None,
            },
        );
        let (st, body) = http(addr, accept).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let row = inbox_row(addr, &tablet, &id).await;
        let first_deadline = row.deadline.unwrap();
        let cal = state.calendar();
        let today = china_today();
        assert_eq!(
            row.working_days_left,
            Some(cal.working_days_between(today, first_deadline))
        );
        assert!(row.paused.is_none() && !row.overdue);

        // A wrong PIN pauses nothing; an unknown reason is refused.
        let (st, _) = http(addr, clock(&tablet, &id, pause(), "111222")).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{}", b.name);
        let odd = ClockAction::Pause {
            reason: "lunch".into(),
            note: "x".into(),
        };
        let (st, body) = http(addr, clock(&tablet, &id, odd, "204816")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (st, body) = http(addr, clock(&tablet, &id, pause(), "204816")).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let view: ClockView = serde_json::from_str(&body).unwrap();
        assert!(view.label.starts_with("暂停计时（公示）"), "{}", view.label);
        let (st, _) = http(addr, clock(&tablet, &id, pause(), "204816")).await;
        assert_eq!(st, StatusCode::CONFLICT);

        let row = inbox_row(addr, &tablet, &id).await;
        let p = row.paused.clone().expect("paused in the inbox");
        assert_eq!((p.label.as_str(), p.since), ("公示", today));
        assert!(p.by.starts_with("王芳"), "{}", p.by);
        // Simulate the pause having begun five working days ago (the store is the only clock a
        // test can move): resuming today moves the deadline by exactly those days.
        let began = cal_back(&cal, today, 5);
        off(|| {
            let mut sc = state.store.case(&id).unwrap().unwrap();
            sc.clock.pauses[0].on = began;
            state.store.commit(Some(&sc), &[], Vec::new()).unwrap();
        });
        let resume = ClockAction::Resume {
            note: "公示无异议".into(),
        };
        let (st, body) = http(addr, clock(&tablet, &id, resume, "204816")).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let view: ClockView = serde_json::from_str(&body).unwrap();
        let moved = cal.add_working_days(first_deadline, 5);
        assert_eq!(view.deadline, Some(moved), "{}", b.name);
        assert!(view.paused.is_none());
        assert!(
            view.entries
                .iter()
                .any(|e| e.text == "恢复计时，办理期限顺延5个工作日"),
            "{:?}",
            view.entries
        );
        assert!(view.entries[0].text.contains("公示"));
        let row = inbox_row(addr, &tablet, &id).await;
        assert_eq!(row.deadline, Some(moved));
        assert_eq!(
            row.working_days_left,
            Some(cal.working_days_between(today, moved))
        );

        // Extension: requested on the tablet, the deadline stays until the county approves.
        let ext = |days| ClockAction::RequestExtension {
            days,
            reason: "需县住建局现场核查".into(),
        };
        let (st, _) = http(addr, clock(&tablet, &id, ext(11), "204816")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let (st, body) = http(addr, clock(&tablet, &id, ext(10), "204816")).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let row = inbox_row(addr, &tablet, &id).await;
        assert!(row.extension_pending);
        assert_eq!(row.deadline, Some(moved));

        let (cookie, csrf) = login(addr, &state).await;
        let (_, page) = http(addr, haochaping::get("/county/supervision", Some(&cookie))).await;
        assert!(page.contains(&format!("ext-{id}")), "{page}");
        assert!(page.contains("需县住建局现场核查"));
        // A forged form (no CSRF token) changes nothing.
        let (st, _) = http(
            addr,
            haochaping::form(
                &format!("/county/cases/{id}/extension"),
                &[("decision", "approve")],
                Some(&cookie),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert_eq!(inbox_row(addr, &tablet, &id).await.deadline, Some(moved));
        let (st, _) = http(
            addr,
            haochaping::form(
                &format!("/county/cases/{id}/extension"),
                &[("csrf", &csrf), ("decision", "approve"), ("note", "同意")],
                Some(&cookie),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let extended = cal.add_working_days(moved, 10);
        let row = inbox_row(addr, &tablet, &id).await;
        assert_eq!(row.deadline, Some(extended));
        assert!(!row.extension_pending);
        // Once extended, never again.
        let (st, body) = http(addr, clock(&tablet, &id, ext(1), "204816")).await;
        assert_eq!(st, StatusCode::CONFLICT);
        assert!(body.contains("already_extended"), "{body}");

        // 催办: refused while the case is on time, recorded once it is overdue.
        let press = |cookie: &str, csrf: &str| {
            haochaping::form(
                &format!("/county/cases/{id}/press"),
                &[("csrf", csrf), ("note", "请本周内办结")],
                Some(cookie),
            )
        };
        let (st, _) = http(addr, press(&cookie, &csrf)).await;
        assert_eq!(st, StatusCode::CONFLICT);
        let past = cal_back(&cal, today, 2);
        off(|| {
            let mut sc = state.store.case(&id).unwrap().unwrap();
            sc.case.deadline = Some(past);
            state.store.commit(Some(&sc), &[], Vec::new()).unwrap();
        });
        let row = inbox_row(addr, &tablet, &id).await;
        assert!(row.overdue && row.pressed.is_none());
        assert_eq!(row.working_days_left, Some(-2));
        let (st, _) = http(addr, press(&cookie, &csrf)).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let row = inbox_row(addr, &tablet, &id).await;
        let pressed = row.pressed.expect("催办 on the inbox");
        assert_eq!(pressed.by, "张科长");
        assert_eq!(pressed.note, "请本周内办结");
        let (_, body) = http(addr, tablet.get(&format!("/v1/cases/{id}/clock"))).await;
        let view: ClockView = serde_json::from_str(&body).unwrap();
        assert!(
            view.entries
                .iter()
                .any(|e| e.by == "张科长" && e.text.starts_with("县级催办")),
            "{:?}",
            view.entries
        );
        let audit = off(|| state.store.audit_log().unwrap());
        for action in [
            "clock_pause",
            "clock_resume",
            "request_extension",
            "approve_extension",
            "press",
        ] {
            assert!(
                audit
                    .iter()
                    .any(|e| e.draft.action == action
                        && e.draft.case_id.as_deref() == Some(id.as_str())),
                "{}: no {action} in the audit log",
                b.name
            );
        }

        // The other case waits in 已接收: flagged once more than one working day has passed.
        assert!(!inbox_row(addr, &tablet, &waiting).await.waiting_too_long);
        // A case that arrived ten days ago (a new record: a stored case's timeline is never
        // rewritten, and PostgreSQL refuses a write that does not extend it).
        let old_id = phone.next_case_id();
        off(|| {
            let mut sc = state.store.case(&waiting).unwrap().unwrap();
            let long_ago = chrono::Utc::now() - Duration::days(10);
            sc.case.id = old_id.clone();
            for h in &mut sc.case.history {
                h.at = long_ago;
            }
            sc.received_at = long_ago;
            state.store.commit(Some(&sc), &[], Vec::new()).unwrap();
        });
        let waiting = old_id;
        let row = inbox_row(addr, &tablet, &waiting).await;
        assert!(row.waiting_too_long, "{}", b.name);
        assert!(row.working_days_left.is_none() && row.paused.is_none());
    }
}

/// The working day `n` working days before `today`.
fn cal_back(
    cal: &bianmin_engine::deadline::WorkCalendar,
    today: chrono::NaiveDate,
    n: i64,
) -> chrono::NaiveDate {
    let mut d = today;
    while cal.working_days_between(d, today) < n {
        d -= Duration::days(1);
    }
    d
}
