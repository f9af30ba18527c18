//! Scheduling the 回访 on both store backends and over a real socket: the tablet records 整改 with
//! the day of the 回访 call (a working day, not in the past; only on 整改); the desk shows it as
//! 待回访 with working days left, and a 回访 a working day past its day as 回访逾期, as does the
//! county's loop page; the 回访 itself closes it.

mod common;
mod haochaping;

use axum::http::StatusCode;
use bianmin_protocol::bad_review::{BadReview, ReviewStepRequest};
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::audit::AuditDraft;
use bianmin_town::feedback::{Rectification, Step, StepKind};
use bianmin_town::store::{Rating, RatingVia};
use bianmin_town::time::china_today;
use bianmin_town::{app, AppState};
use chrono::{Duration, NaiveDate, Utc};
use common::backends::backends;
use common::*;
use haochaping::loopback::{enrol, http, off, sms_link};
use haochaping::{completed_case, form, get, sms_rating_post};

fn step(kind: &str, on: Option<NaiveDate>) -> ReviewStepRequest {
    ReviewStepRequest {
        step: kind.into(),
        by: "王镇办".into(),
        notes: format!("{kind} 记录"),
        outcome: (kind == "follow_up").then(|| "reached".to_string()),
        follow_up_on: on,
        photos: Vec::new(),
        pin: None,
    }
}

async fn desk(addr: std::net::SocketAddr, staff: &Device, id: &str) -> BadReview {
    let (st, body) = http(addr, staff.get("/v1/bad-reviews")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let all: Vec<BadReview> = serde_json::from_str(&body).unwrap();
    all.into_iter()
        .find(|r| r.case_id == id)
        .expect("on the desk")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_follow_up_day_is_set_with_the_rectification_and_shown_due_or_overdue() {
    for b in off(backends) {
        let name = b.name;
        let state =
            off(|| AppState::with_stores(b.dir.path(), b.store.clone(), b.admin.clone()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state.clone());
        tokio::spawn({
            let router = router.clone();
            async move { axum::serve(listener, router).await.unwrap() }
        });
        let agent = enrol(addr, &state, DeviceRole::Agent, NANGUAN).await;
        let staff = enrol(addr, &state, DeviceRole::Staff, "").await;
        let cal = state.calendar();
        let today = china_today();

        let id = completed_case(&router, &agent, &staff).await;
        let link = sms_link(&state, &id).await;
        let (st, _) = http(addr, sms_rating_post(&link, 1, "态度差")).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let steps = format!("/v1/rectifications/{id}/steps");
        let post = |req: &ReviewStepRequest| staff.json("POST", &steps, req);

        // A 回访 day belongs to 整改 only.
        let next = cal.add_working_days(today, 1);
        let (st, body) = http(addr, post(&step("verify", Some(next)))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(body.contains("follow_up_date"), "{body}");
        let (st, body) = http(addr, post(&step("verify", None))).await;
        assert_eq!(st, StatusCode::OK, "{name}: {body}");

        // Not a day gone by, not a day off.
        let (st, body) = http(
            addr,
            post(&step("rectify", Some(today - Duration::days(1)))),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(body.contains("passed"), "{body}");
        let day_off = (1..14)
            .map(|n| today + Duration::days(n))
            .find(|d| !cal.is_working_day(*d))
            .unwrap();
        let (st, body) = http(addr, post(&step("rectify", Some(day_off)))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(body.contains("not a working day"), "{body}");

        let (st, body) = http(addr, post(&step("rectify", Some(next)))).await;
        assert_eq!(st, StatusCode::OK, "{name}: {body}");
        let row = desk(addr, &staff, &id).await;
        assert_eq!(row.follow_up_due, Some(next), "{name}");
        assert_eq!(row.follow_up_days_left, Some(1), "{name}");
        assert_eq!(row.steps[1].follow_up_on, Some(next), "{name}");
        assert_eq!(row.next_step.as_deref(), Some("follow_up"));

        // A loop whose 回访 day is three working days gone (stored as another server or an
        // earlier day would have left it): 回访逾期 on the desk and the county page.
        let late_id = completed_case(&router, &agent, &staff).await;
        let mut due = today;
        while cal.working_days_between(today, due) > -3 {
            due -= Duration::days(1);
        }
        let s = state.store.clone();
        let lid = late_id.clone();
        off(move || {
            let sc = s.case(&lid).unwrap().unwrap();
            let now = Utc::now();
            let rating = Rating {
                case_id: lid.clone(),
                village: NANGUAN.into(),
                level: 2,
                efficiency: 2,
                quality: 2,
                attitude: 2,
                comment: String::new(),
                rated_at: now,
                token_issued: today,
                completion: None,
                via: RatingVia::Sms,
                added: None,
            };
            let mk = |kind, on| Step {
                kind,
                by: "王镇办".into(),
                at: now,
                notes: "已处理".into(),
                outcome: None,
                follow_up_on: on,
                photos: Vec::new(),
            };
            let lp = Rectification {
                case_id: lid.clone(),
                village: NANGUAN.into(),
                level: 2,
                comment: "太慢".into(),
                opened_at: now,
                deadline: cal.add_working_days(today, 10),
                steps: vec![mk(StepKind::Verify, None), mk(StepKind::Rectify, Some(due))],
            };
            let audit = AuditDraft::new("resident", "rate", Some(&lid), "test");
            assert!(s.rate(&rating, Some(&lp), &sc, &[], vec![audit]).unwrap());
        });
        let late = desk(addr, &staff, &late_id).await;
        assert_eq!(late.follow_up_due, Some(due));
        assert_eq!(late.follow_up_days_left, Some(-3), "{name}");

        let password = off(|| {
            bianmin_town::oversight::supervisor_add(state.admin.as_ref(), "张科长").unwrap()
        });
        let login = form(
            "/county/login",
            &[("name", "张科长"), ("password", &password)],
            None,
        );
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<axum::body::Bytes>>();
        let (mut parts, body) = login.into_parts();
        parts.uri = format!("http://{addr}/county/login").parse().unwrap();
        use http_body_util::BodyExt;
        let resp = client
            .request(axum::http::Request::from_parts(
                parts,
                http_body_util::Full::new(body.collect().await.unwrap().to_bytes()),
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let (st, page) = http(addr, get("/county", Some(&cookie))).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        let section = |case: &str| {
            let at = page
                .find(&format!("id=\"loop-{case}\""))
                .expect("loop shown");
            page[at..].split("id=\"loop-").nth(1).unwrap().to_string()
        };
        let on_time = section(&id);
        assert!(
            on_time.contains(&format!("待回访（{next}）")),
            "{name}: {on_time}"
        );
        assert!(on_time.contains(&format!("约定回访：{next}")), "{on_time}");
        let overdue = section(&late_id);
        assert!(
            overdue.contains(&format!("回访逾期（应于{due}回访）"))
                && overdue.contains("flag status"),
            "{name}: {overdue}"
        );

        // The 回访 closes the loop; the schedule is history now.
        let (st, body) = http(addr, post(&step("follow_up", None))).await;
        assert_eq!(st, StatusCode::OK, "{name}: {body}");
        let row = desk(addr, &staff, &id).await;
        assert_eq!((row.follow_up_due, row.next_step), (None, None), "{name}");
    }
}
