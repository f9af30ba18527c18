//! Helpers of the 好差评 tests: a case taken to 办结 through the API, receipt links, form posts.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bianmin_engine::receipt;
use bianmin_protocol::sync::{ActionRequest, TownAction};
use bianmin_protocol::Delivery;

use crate::common::*;

pub mod loopback;

pub const TRACKING: &str = "1180000000002";

/// Percent-encodes one form value (application/x-www-form-urlencoded).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn form(uri: &str, fields: &[(&str, &str)], cookie: Option<&str>) -> Request<Body> {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut b = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::from(body)).unwrap()
}

pub fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method("GET").uri(uri);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::empty()).unwrap()
}

/// A rating post with the given overall level; the phone on test cases is 13800138000.
pub fn rating_post(
    case_id: &str,
    token: &str,
    level: u8,
    comment: &str,
    phone4: &str,
) -> Request<Body> {
    let l = level.to_string();
    form(
        &format!("/r/{case_id}/rate"),
        &[
            ("t", token),
            ("level", &l),
            ("efficiency", "4"),
            ("quality", "4"),
            ("attitude", &l),
            ("comment", comment),
            ("phone4", phone4),
        ],
        None,
    )
}

/// Today's receipt token and the path of the resident page.
pub fn receipt_path(dev: &Device, case_id: &str) -> (String, String) {
    let token = receipt::mint(&dev.key, case_id, bianmin_town::time::china_today());
    (token.clone(), format!("/r/{case_id}?t={token}"))
}

/// Submits a case by `agent` and takes it to 办结 (mailed) with `staff`, through the API.
pub async fn completed_case(r: &Router, agent: &Device, staff: &Device) -> String {
    let p = page(42, 4096);
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
    let act = |a: TownAction| {
        staff.json(
            "POST",
            &format!("/v1/cases/{id}/actions"),
            &ActionRequest {
                action: a,
                staff: "王镇办".into(),
                expected_version: None,
                pin: None,
            },
        )
    };
    assert_eq!(send(r, act(TownAction::Accept)).await.0, StatusCode::OK);
    let done = TownAction::Complete {
        result: "证明已开具".into(),
        delivery: Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: TRACKING.into(),
        },
    };
    let (st, body) = send(r, act(done)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    id
}

/// The path of the link the server texts to the applicant of `case_id` (`/s/{code}`), after a
/// notifier pass without a provider has queued the case's notices and its link.
pub async fn sms_link(town: &Town, case_id: &str) -> String {
    use bianmin_town::notify::{resident_link, Notifier, NotifyConfig};
    let config = NotifyConfig::new("https://bm.example.cn", "便民服务").unwrap();
    Notifier::new(
        town.state.clone(),
        config,
        None,
        std::time::Duration::from_secs(60),
    )
    .pass(chrono::Utc::now())
    .await
    .unwrap();
    format!("/s/{}", resident_link(&town.state.server_key, case_id))
}

/// A rating through the SMS link (the one that counts).
pub fn sms_rating_post(link: &str, level: u8, comment: &str) -> Request<Body> {
    let l = level.to_string();
    form(
        &format!("{link}/rate"),
        &[
            ("level", &l),
            ("efficiency", "4"),
            ("quality", "4"),
            ("attitude", &l),
            ("comment", comment),
        ],
        None,
    )
}
