//! Helpers of the tests that serve a town on 127.0.0.1:0 over any store backend: requests built
//! for the router sent over a real socket, enrolment through the API, the SMS link of a case.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use bianmin_protocol::sync::{DeviceRole, EnrolRequest};
use bianmin_town::AppState;
use chrono::{Duration, Utc};
use http_body_util::{BodyExt, Full};

use crate::common::*;

/// Runs blocking store work (the PostgreSQL client starts its own runtime) off the async thread.
pub fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// Sends a request built for the router to the real server at `addr`.
pub async fn http(addr: SocketAddr, req: Request<Body>) -> (StatusCode, String) {
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

pub async fn enrol(addr: SocketAddr, state: &AppState, role: DeviceRole, village: &str) -> Device {
    let dev = Device::fresh(village);
    let v = (!village.is_empty()).then(|| village.to_string());
    let code = off(|| {
        state
            .admin
            .issue_ticket(&bianmin_town::store::Ticket {
                role,
                village: v,
                town: GUHAN.into(),
                expires_at: Utc::now() + Duration::minutes(10),
            })
            .unwrap()
    });
    let req = EnrolRequest {
        code,
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: "测试".into(),
    };
    let (st, body) = http(addr, post_json("/v1/enrol", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    dev
}

/// The `/s/{code}` link of a case, after a notifier pass without a provider queued it.
pub async fn sms_link(state: &AppState, case_id: &str) -> String {
    use bianmin_town::notify::{resident_link, Notifier, NotifyConfig};
    let config = NotifyConfig::new("https://bm.example.cn", "便民服务").unwrap();
    Notifier::new(
        state.clone(),
        config,
        None,
        std::time::Duration::from_secs(60),
    )
    .pass(Utc::now())
    .await
    .unwrap();
    format!("/s/{}", resident_link(&state.server_key, case_id))
}
