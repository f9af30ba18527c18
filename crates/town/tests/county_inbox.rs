//! 转县 end to end on both store backends: a village case accepted and forwarded by the town reaches
//! the county approval centre's inbox (masked list, full case page with its pages behind the
//! login), the centre accepts it (working-day deadline), asks for more through the town, the town
//! sends it up again, the centre completes it, and the decision comes back to the tablet, the
//! village phone's changes feed and the resident page, with the county person named in the
//! timeline and the audit chain. Another office's staff can neither see nor act on it, the town
//! cannot decide it in the county's place, and a county session is no supervisor session.

mod common;
mod haochaping;

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use bianmin_engine::catalog::Catalog;
use bianmin_engine::transport::{Credential, Timeouts, Transport, TransportError};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, TownAction};
use bianmin_protocol::{CaseState, Decision, Delivery};
use bianmin_town::county_inbox::{add_staff, disable_staff};
use bianmin_town::{app, AppState};
use common::backends::backends;
use common::*;
use haochaping::{form, get, receipt_path};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn transport(server: &str, dev: &Device) -> Transport {
    let t = Duration::from_secs(10);
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: t,
            request: t,
            stall: t,
        },
    )
    .unwrap()
}

/// Runs blocking store work (the PostgreSQL client starts its own runtime) off the async thread.
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

async fn enrol(server: &str, state: &AppState, dev: &Device, role: DeviceRole, person: &str) {
    let (village, town) = match role {
        DeviceRole::Agent => (Some(dev.village.clone()), dev.village[..9].to_string()),
        DeviceRole::Staff => (None, GUHAN.to_string()),
    };
    let code = off(|| {
        state
            .admin
            .issue_ticket(&bianmin_town::files::Ticket {
                role,
                village,
                town,
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
            })
            .unwrap()
    });
    Transport::new(server, None)
        .unwrap()
        .enrol(&EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: person.into(),
        })
        .await
        .unwrap();
}

fn act(action: TownAction) -> ActionRequest {
    ActionRequest {
        action,
        staff: String::new(),
        expected_version: None,
        pin: None,
    }
}

fn status_of(e: &TransportError) -> (u16, String) {
    match e {
        TransportError::Rejected { status, code, .. } => (*status, code.clone()),
        other => panic!("unexpected transport error: {other}"),
    }
}

/// Status, `Set-Cookie` and body of one request to the county pages.
async fn call(
    r: &Router,
    req: axum::http::Request<axum::body::Body>,
) -> (StatusCode, String, Vec<u8>) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, cookie, body)
}

async fn login(r: &Router, name: &str, password: &str) -> String {
    let (st, cookie, _) = call(
        r,
        form(
            "/county/inbox/login",
            &[("name", name), ("password", password)],
            None,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{name} signs in");
    assert!(cookie.starts_with("bm_county_staff="), "{cookie}");
    cookie
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The CSRF token a county page's forms carry.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_case_goes_to_the_county_and_its_decision_comes_back() {
    for b in off(backends) {
        let state =
            off(|| AppState::with_stores(b.dir.path(), b.store.clone(), b.admin.clone()).unwrap());
        let router = app(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let serving = router.clone();
        tokio::spawn(async move { axum::serve(listener, serving).await.unwrap() });

        let phone = Device::fresh(NANGUAN);
        let tablet = Device::fresh("");
        enrol(&server, &state, &phone, DeviceRole::Agent, "李代办").await;
        enrol(&server, &state, &tablet, DeviceRole::Staff, "王镇办").await;
        let (agent, town) = (transport(&server, &phone), transport(&server, &tablet));

        // Village: the agent files a case with one page.
        let p = page(7, 6000);
        let sha = bianmin_engine::transport::sha256_hex(&p);
        agent
            .upload_chunk(&sha, 0, p.len() as u64, p.clone())
            .await
            .unwrap();
        let id = phone.next_case_id();
        agent
            .submit(&phone.submission(&id, 1, &[&p]))
            .await
            .unwrap();

        // Town: 受理, then 转县 with a note; the item goes to the default office.
        town.act(&id, &act(TownAction::Accept)).await.unwrap();
        let e = town.county(&id).await.unwrap_err();
        assert_eq!(status_of(&e), (404, "not_forwarded".to_string()));
        let fwd = town
            .act(
                &id,
                &act(TownAction::Forward {
                    note: "申请人户籍在本镇，材料齐全，请县里审批".into(),
                }),
            )
            .await
            .unwrap();
        assert_eq!(fwd.state, CaseState::Forwarded, "{}", b.name);

        // County accounts, one per office (the CLI's `county-staff add`).
        let receivers = Catalog::embedded().unwrap().receivers().to_vec();
        let (centre_pw, justice_pw) = off(|| {
            (
                add_staff(b.admin.as_ref(), &receivers, "赵审批", "approval_centre").unwrap(),
                add_staff(b.admin.as_ref(), &receivers, "钱司法", "justice").unwrap(),
            )
        });
        assert!(off(|| add_staff(b.admin.as_ref(), &receivers, "孙某", "no_such_office")).is_err());

        // Without a session the inbox sends to the login form; a wrong password signs in no one.
        let (st, _, _) = call(&router, get("/county/inbox", None)).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let (st, cookie, _) = call(
            &router,
            form(
                "/county/inbox/login",
                &[("name", "赵审批"), ("password", "wrong-password")],
                None,
            ),
        )
        .await;
        assert_eq!((st, cookie.as_str()), (StatusCode::UNAUTHORIZED, ""));

        let centre = login(&router, "赵审批", &centre_pw).await;
        let justice = login(&router, "钱司法", &justice_pw).await;

        // The centre's inbox lists the case, masked.
        let (st, _, body) = call(&router, get("/county/inbox", Some(&centre))).await;
        let list = text(&body);
        assert_eq!(st, StatusCode::OK, "{}", b.name);
        assert!(list.contains(&id) && list.contains("张*"), "{list}");
        assert!(
            !list.contains("张三") && !list.contains("14042319800101001X"),
            "{list}"
        );
        assert!(list.contains("待受理"), "{list}");

        // Another office sees nothing of it and cannot act on it.
        let (_, _, body) = call(&router, get("/county/inbox", Some(&justice))).await;
        assert!(!text(&body).contains(&id), "{}", b.name);
        let (st, _, _) = call(&router, get(&format!("/county/inbox/{id}"), Some(&justice))).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _, _) = call(
            &router,
            get(&format!("/county/inbox/{id}/pages/{sha}"), Some(&justice)),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, _, jbody) = call(&router, get("/county/inbox", Some(&justice))).await;
        let jcsrf = csrf(&text(&jbody));
        let (st, _, _) = call(
            &router,
            form(
                &format!("/county/inbox/{id}/decide"),
                &[("csrf", &jcsrf), ("action", "accept")],
                Some(&justice),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // A county staff session is not a supervisor session.
        let token = centre.split_once('=').unwrap().1;
        let (st, _, _) = call(&router, get("/county", Some(&format!("bm_county={token}")))).await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{}", b.name);

        // The town cannot decide the forwarded case in the county's place.
        for a in [
            TownAction::Complete {
                result: "镇里自己办了".into(),
                delivery: Delivery::SelfPickup,
            },
            TownAction::Refuse {
                reason: "镇里拒绝".into(),
            },
            TownAction::Forward {
                note: "再转一次".into(),
            },
        ] {
            let e = town.act(&id, &act(a)).await.unwrap_err();
            assert!(matches!(status_of(&e).0, 403 | 409), "{e}");
        }

        // The case page shows the form and the page through the authorised route.
        let (st, _, body) = call(&router, get(&format!("/county/inbox/{id}"), Some(&centre))).await;
        let case_page = text(&body);
        assert_eq!(st, StatusCode::OK);
        assert!(
            case_page.contains("张三") && case_page.contains("请县里审批"),
            "{case_page}"
        );
        assert!(case_page.contains(&format!("/county/inbox/{id}/pages/{sha}")));
        let (st, _, bytes) = call(
            &router,
            get(&format!("/county/inbox/{id}/pages/{sha}"), Some(&centre)),
        )
        .await;
        assert_eq!((st, bytes), (StatusCode::OK, p.clone()));
        let token = csrf(&case_page);
        let decide = |fields: Vec<(&'static str, String)>| {
            let mut all = vec![("csrf", token.clone())];
            all.extend(fields);
            let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(&format!("/county/inbox/{id}/decide"), &refs, Some(&centre))
        };

        // A bad CSRF token changes nothing; completing before accepting is refused.
        let (st, _, _) = call(
            &router,
            form(
                &format!("/county/inbox/{id}/decide"),
                &[("csrf", "0"), ("action", "accept")],
                Some(&centre),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _, _) = call(
            &router,
            decide(vec![("action", "complete".into()), ("text", "结果".into())]),
        )
        .await;
        assert_eq!(st, StatusCode::CONFLICT);

        // 县受理: the deadline counts working days from the acceptance.
        let (st, _, _) = call(&router, decide(vec![("action", "accept".into())])).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let sc = off(|| b.store.case(&id).unwrap().unwrap());
        let h = sc.county.clone().unwrap();
        assert_eq!(h.receiver, "approval_centre");
        let deadline = h.deadline.expect("V01 has promised days");
        let today = bianmin_town::time::china_today();
        assert!(deadline > today && state.calendar().is_working_day(deadline));
        let (_, _, body) = call(&router, get("/county/inbox", Some(&centre))).await;
        assert!(text(&body).contains(&deadline.to_string()), "{}", b.name);

        // 要求补正 through the town: the tablet sees the request and sends the case up again.
        let (st, _, _) = call(
            &router,
            decide(vec![
                ("action", "request_more".into()),
                ("text", "请补充户口簿本人页".into()),
            ]),
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let seen = town.case(&id).await.unwrap();
        let last = seen.history.last().unwrap();
        assert!(last.note.contains("请补充户口簿本人页"), "{last:?}");
        assert_eq!(last.by, "襄垣县行政审批服务中心·赵审批");
        // The tablet reads the county side: office, 县受理, the open request naming its author,
        // and an inbox row flagged 县要求补正; a village phone may not read it.
        let cv = town.county(&id).await.unwrap();
        assert_eq!(
            (cv.office.as_str(), cv.status.as_str()),
            ("approval_centre", "待镇里补正"),
            "{}",
            b.name
        );
        assert_eq!(cv.forwarded.note, "申请人户籍在本镇，材料齐全，请县里审批");
        assert_eq!(cv.deadline, Some(deadline));
        let request = cv.request.clone().expect("the open 要求补正");
        assert_eq!(
            (request.note.as_str(), request.by.as_str()),
            ("请补充户口簿本人页", "襄垣县行政审批服务中心·赵审批")
        );
        assert!(cv.accepted.is_some() && cv.decided.is_none());
        let row = |rows: Vec<bianmin_protocol::sync::InboxRow>| {
            rows.into_iter()
                .find(|r| r.case_id == id)
                .expect("the case is listed")
        };
        assert!(row(town.inbox_page("").await.unwrap().rows).county_request);
        let e = agent.county(&id).await.unwrap_err();
        assert_eq!(status_of(&e).0, 403, "{}", b.name);
        // An empty reply is refused: the county must read what was supplied.
        let e = town
            .act(&id, &act(TownAction::Forward { note: "  ".into() }))
            .await
            .unwrap_err();
        assert_eq!(
            status_of(&e),
            (422, "empty_reply".to_string()),
            "{}",
            b.name
        );
        town.act(
            &id,
            &act(TownAction::Forward {
                note: "户口簿本人页已由代办员补交".into(),
            }),
        )
        .await
        .unwrap();
        let cv = town.county(&id).await.unwrap();
        assert_eq!(cv.status, "县已受理", "{}", b.name);
        assert!(cv.request.is_none());
        assert_eq!(cv.forwarded.note, "户口簿本人页已由代办员补交");
        assert!(!row(town.inbox_page("").await.unwrap().rows).county_request);
        let (_, _, body) = call(&router, get("/county/inbox", Some(&centre))).await;
        assert!(text(&body).contains("县已受理"), "{}", b.name);

        // 办结 with a result; it flows back.
        let (st, _, _) = call(
            &router,
            decide(vec![
                ("action", "complete".into()),
                ("text", "准予办理，证照已制作".into()),
                ("delivery", "agent_delivery".into()),
            ]),
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        // Once decided, nothing more.
        let (st, _, _) = call(
            &router,
            decide(vec![("action", "refuse".into()), ("text", "晚了".into())]),
        )
        .await;
        assert_eq!(st, StatusCode::CONFLICT);

        // The tablet sees the county's decision.
        let cv = town.county(&id).await.unwrap();
        assert_eq!(cv.status, "已办结", "{}", b.name);
        assert_eq!(
            cv.decided.map(|d| (d.by, d.note)),
            Some((
                "襄垣县行政审批服务中心·赵审批".to_string(),
                "准予办理，证照已制作".to_string()
            ))
        );
        let seen = town.case(&id).await.unwrap();
        assert_eq!(seen.state, CaseState::Completed, "{}", b.name);
        assert_eq!(
            seen.history.last().unwrap().by,
            "襄垣县行政审批服务中心·赵审批"
        );
        // The village phone gets it through the changes feed: state and result text.
        let feed = agent.changes(0).await.unwrap();
        let done = feed
            .entries
            .iter()
            .find(|e| {
                e.event.case_id == id && matches!(e.event.decision, Decision::Completed { .. })
            })
            .expect("the county's 办结 is in the village feed");
        assert_eq!(done.event.by, "襄垣县行政审批服务中心·赵审批");
        assert!(matches!(&done.event.decision,
            Decision::Completed { result, delivery: Delivery::AgentDelivery } if result == "准予办理，证照已制作"));
        // The resident page shows it.
        let (_, path) = receipt_path(&phone, &id);
        let (st, _, body) = call(&router, get(&path, None)).await;
        let resident = text(&body);
        assert_eq!(st, StatusCode::OK);
        assert!(
            resident.contains("已办结") && resident.contains("准予办理，证照已制作"),
            "{resident}"
        );

        // Every step is in the audit chain, naming the person.
        let log = off(|| b.store.audit_log().unwrap());
        let actor = |action: &str| {
            log.iter()
                .find(|e| e.draft.action == action && e.draft.case_id.as_deref() == Some(&id))
                .map(|e| e.draft.actor.clone())
        };
        for a in [
            "county_accept",
            "county_request_more",
            "county_complete",
            "county_view_case",
        ] {
            assert_eq!(
                actor(a).as_deref(),
                Some("襄垣县行政审批服务中心·赵审批"),
                "{}: {a}",
                b.name
            );
        }
        assert!(actor("forward").is_some() && actor("forward_again").is_some());

        // A disabled account's session stops working.
        off(|| disable_staff(b.admin.as_ref(), "赵审批").unwrap());
        let (st, _, _) = call(&router, get("/county/inbox", Some(&centre))).await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{}", b.name);

        // The case's timeline across the three levels (kept in the test log for the report).
        eprintln!("[{}] timeline of {id}:", b.name);
        for s in &seen.history {
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
    }
}
