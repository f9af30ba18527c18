//! `/metrics` and request ids: every answer carries an id (the proxy's own if it sent a sane one),
//! requests are counted by route template and status, upload bytes and store calls are counted,
//! and the page is not served to addresses outside the data centre.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::*;

#[tokio::test]
async fn metrics_count_requests_by_route_and_answers_carry_request_ids() {
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;
    let data = page(5, 3000);
    agent.upload(&r, &data).await;
    let resp = send_raw(&r, agent.get("/v1/changes")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16, "a fresh id: {id}");

    let mine = Request::get("/healthz")
        .header("x-request-id", "proxy-abc-12345")
        .body(Body::empty())
        .unwrap();
    let resp = send_raw(&r, mine).await;
    assert_eq!(resp.headers()["x-request-id"], "proxy-abc-12345");
    let bad = Request::get("/healthz")
        .header("x-request-id", "x\"y")
        .body(Body::empty())
        .unwrap();
    let resp = send_raw(&r, bad).await;
    assert_ne!(
        resp.headers()["x-request-id"],
        "x\"y",
        "an odd id is replaced"
    );

    let (st, text) = send(&r, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        text.contains(
            "bianmin_requests_total{method=\"GET\",route=\"/v1/changes\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/v1/attachments/{}\""),
        "hashes are not labels: {text}"
    );
    let uploaded: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("bianmin_upload_bytes_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(uploaded >= 3000, "{uploaded}");
    assert!(text.contains("bianmin_store_seconds_count"), "{text}");

    // From outside the data centre: not there.
    let mut outside = Request::get("/metrics").body(Body::empty()).unwrap();
    outside
        .extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [203, 0, 113, 9],
            40000,
        ))));
    assert_eq!(send_raw(&r, outside).await.status(), StatusCode::NOT_FOUND);
}
