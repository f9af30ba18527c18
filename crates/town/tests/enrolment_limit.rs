//! The enrolment rate limit: failed codes per client address end in 429 with `Retry-After`,
//! other addresses and successful enrolments are not affected.
//!
//! The refill rate is set so low (one token an hour) that nothing refills while a test runs, which
//! keeps them deterministic without sleeping; refill itself is tested in `ratelimit.rs` with
//! injected instants.

mod common;

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use bianmin_protocol::sync::{DeviceRole, EnrolRequest, ErrorBody};
use bianmin_town::ratelimit::RateConfig;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;

const HOURLY: f64 = 1.0 / 3600.0;

fn enrol_request(code: &str) -> EnrolRequest {
    let dev = Device::fresh(NANGUAN);
    EnrolRequest {
        code: code.to_string(),
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: String::new(),
    }
}

/// `POST /v1/enrol` as if it came from `ip` (what `into_make_service_with_connect_info` adds).
fn from(ip: &str, req: &EnrolRequest) -> Request<Body> {
    let mut r = post_json("/v1/enrol", req);
    r.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        ip.parse::<IpAddr>().unwrap(),
        40000,
    )));
    r
}

fn error(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not an error body ({e}): {body}"))
}

const WRONG: &str = "ABCD-EFGH-JKMN";

#[tokio::test]
async fn repeated_bad_codes_get_429_while_other_clients_are_unaffected() {
    let t = Town::new();
    t.state.enrol_limiter.configure(RateConfig {
        burst: 3.0,
        per_second: HOURLY,
    });
    let r = t.router();
    let guesser = "127.0.0.2";

    for _ in 0..3 {
        let (st, body) = send(&r, from(guesser, &enrol_request(WRONG))).await;
        assert_eq!(
            (st, error(&body).error.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
    let resp = send_raw(&r, from(guesser, &enrol_request(WRONG))).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One token an hour: the wait is about an hour, and never 0.
    assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let e = error(std::str::from_utf8(&body).unwrap());
    assert_eq!(e.error, "rate_limited");
    assert!(
        e.message.contains("too many failed enrolment attempts"),
        "{}",
        e.message
    );

    // Even a good code is refused to the guesser, and is not used up by that.
    let code = t.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    let (st, _) = send(&r, from(guesser, &enrol_request(&code))).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);

    // Another address has its own bucket: a wrong code is a plain 401, the good code enrols.
    let (st, _) = send(&r, from("127.0.0.3", &enrol_request(WRONG))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = send(&r, from("127.0.0.4", &enrol_request(&code))).await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // And the guesser is still held back.
    let (st, _) = send(&r, from(guesser, &enrol_request(WRONG))).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn only_failed_codes_cost() {
    let t = Town::new();
    t.state.enrol_limiter.configure(RateConfig {
        burst: 1.0,
        per_second: HOURLY,
    });
    let r = t.router();
    let client = "127.0.0.2";

    // Five enrolments from one address (a town hall's network) all go through with a bucket of one.
    for _ in 0..5 {
        let code = t.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
        let (st, body) = send(&r, from(client, &enrol_request(&code))).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    // Malformed requests and a taken device id never reach the code check: free too.
    let mut bad = Request::post("/v1/enrol")
        .body(Body::from("{not json"))
        .unwrap();
    bad.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 2], 40000))));
    let (st, _) = send(&r, bad).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let taken = t.agent(NANGUAN).await;
    let code = t.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    let again = EnrolRequest {
        device_id: taken.id.clone(),
        ..enrol_request(&code)
    };
    let (st, _) = send(&r, from(client, &again)).await;
    assert_eq!(st, StatusCode::CONFLICT);

    // The one token is still there for one wrong code; the next attempt is limited.
    let (st, _) = send(&r, from(client, &enrol_request(WRONG))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = send(&r, from(client, &enrol_request(&code))).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
}

type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// The town on 127.0.0.1:0, served as `bianmin-town serve` serves it: with each connection's peer
/// address, which the enrolment limit keys on.
async fn serve_with_peers(t: &Town) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An HTTP client whose connections leave from `ip`.
fn client_from(ip: [u8; 4]) -> Client {
    let mut c = HttpConnector::new();
    c.set_local_address(Some(IpAddr::from(ip)));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(c)
}

async fn post(c: &Client, addr: SocketAddr, req: &EnrolRequest) -> StatusCode {
    let r = Request::post(format!("http://{addr}/v1/enrol"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(req).unwrap())))
        .unwrap();
    c.request(r).await.unwrap().status()
}

/// Through a real socket: the bucket is keyed by the TCP peer address. Loopback has all of
/// 127.0.0.0/8, so two clients bind different source addresses.
#[tokio::test]
async fn the_limit_follows_the_tcp_peer_address() {
    let t = Town::new();
    t.state.enrol_limiter.configure(RateConfig {
        burst: 2.0,
        per_second: HOURLY,
    });
    let addr = serve_with_peers(&t).await;

    let guesser = client_from([127, 0, 0, 2]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&guesser, addr, &enrol_request(WRONG)).await);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );

    let other = client_from([127, 0, 0, 3]);
    assert_eq!(
        post(&other, addr, &enrol_request(WRONG)).await,
        StatusCode::UNAUTHORIZED
    );
    let code = t.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    assert_eq!(
        post(&other, addr, &enrol_request(&code)).await,
        StatusCode::OK
    );
}

/// What the phone makes of it: the engine's client reports a throttled, transient failure with the
/// server's wait, and the agent reads a Chinese instruction to wait and check the code.
#[tokio::test]
async fn the_client_reads_429_as_wait_and_retry() {
    use bianmin_engine::transport::{Transport, TransportError};
    let t = Town::new();
    t.state.enrol_limiter.configure(RateConfig {
        burst: 1.0,
        per_second: HOURLY,
    });
    let addr = serve_with_peers(&t).await;

    let client = Transport::new(&format!("http://{addr}"), None).unwrap();
    match client.enrol(&enrol_request(WRONG)).await {
        Err(TransportError::Rejected { status: 401, .. }) => {}
        other => panic!("a wrong code is refused first: {other:?}"),
    }
    let e = client.enrol(&enrol_request(WRONG)).await.unwrap_err();
    match &e {
        TransportError::Throttled {
            retry_after_secs: Some(s),
        } => assert!((3500..=3600).contains(s), "{s}"),
        other => panic!("expected Throttled with Retry-After, got {other:?}"),
    }
    assert!(e.is_transient());
    assert!(
        e.user_message().contains("尝试次数太多"),
        "{}",
        e.user_message()
    );
    assert!(
        e.user_message().contains("秒后再试"),
        "{}",
        e.user_message()
    );
}
