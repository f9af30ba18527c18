//! Property-based fuzzing of every parser that takes network input: request headers, JSON bodies,
//! upload ranges, receipt tokens and case numbers. Whatever arrives, the town answers with a 4xx
//! (or a success) and never panics or fails with a 5xx.
//!
//! Bounded for CI: a fixed number of cases per property (`FUZZ_CASES`, default 64; raise it
//! locally with the environment variable for a longer run).

mod common;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use bianmin_protocol::sync::{
    H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIMESTAMP, H_UPLOAD_LENGTH, H_UPLOAD_OFFSET,
};
use common::*;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A town with an agent and a staff tablet, and a runtime to drive it from proptest's sync closures.
struct Fixture {
    rt: tokio::runtime::Runtime,
    town: Town,
    router: Router,
    agent: Device,
    staff: Device,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let town = Town::new();
    let (agent, staff) =
        rt.block_on(async { (town.agent(NANGUAN).await, town.staff(GUHAN).await) });
    let router = town.router();
    Fixture {
        rt,
        town,
        router,
        agent,
        staff,
    }
}

impl Fixture {
    fn status(&self, req: Request<Body>) -> u16 {
        let (st, body) = self.rt.block_on(send(&self.router, req));
        assert!(!st.is_server_error(), "{st}: {body}");
        st.as_u16()
    }
}

/// Header values: printable ASCII (what `HeaderValue` accepts from text), numbers at the edges.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("-0".to_string()),
        "[0-9a-f]{0,130}",
    ]
}

/// Paths under the API, with odd segments.
fn path() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        "[a-zA-Z0-9_.%+-]{0,70}",
        Just("..".to_string()),
        Just("%00".to_string())
    ];
    (
        prop::sample::select(vec![
            "/v1/me",
            "/v1/cases/",
            "/v1/attachments/",
            "/v1/changes?cursor=",
            "/v1/inbox?state=",
            "/r/",
            "/county/rectifications/",
        ]),
        seg,
    )
        .prop_map(|(p, s)| format!("{p}{s}"))
}

#[test]
fn request_headers_never_panic_or_fail_the_server() {
    let f = fixture();
    proptest!(config(), |(
        method in prop::sample::select(vec!["GET", "PUT", "POST", "PATCH", "HEAD", "DELETE"]),
        pq in path(),
        device in header_text(),
        ts in header_text(),
        nonce in header_text(),
        sha in header_text(),
        sig in header_text(),
        off in header_text(),
        len in header_text(),
        known_device in any::<bool>(),
    )| {
        let device = if known_device { f.agent.id.clone() } else { device };
        let Ok(req) = Request::builder()
            .method(method)
            .uri(pq.as_str())
            .header(H_DEVICE, device)
            .header(H_TIMESTAMP, ts)
            .header(H_NONCE, nonce)
            .header(H_CONTENT_SHA256, sha)
            .header(H_SIGNATURE, sig)
            .header(H_UPLOAD_OFFSET, off)
            .header(H_UPLOAD_LENGTH, len)
            .body(Body::empty())
        else {
            // Not a request hyper would have parsed either.
            return Ok(());
        };
        f.status(req);
    });
}

/// JSON-ish bodies: valid shapes with wrong types, nesting, huge numbers, plain garbage.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(serde_json::Value::from),
        "[ -~\u{4e00}-\u{4e20}]{0,40}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "version",
                    "item",
                    "village",
                    "applicant",
                    "materials",
                    "pages",
                    "sha256",
                    "bytes",
                    "responsible",
                    "device_id",
                    "sealed_at",
                    "action",
                    "missing",
                    "key",
                    "note",
                    "code",
                    "public_key",
                    "expected_version",
                ])
                .prop_map(str::to_string),
                inner,
                0..8,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..200),
        Just(b"{\"version\": 1e999}".to_vec()),
        Just(br#"{"action":"request_correction","missing":[{"key":"id_card","note":"x"}],"expected_version":4294967296}"#.to_vec()),
    ]
}

#[test]
fn signed_json_bodies_never_panic_or_fail_the_server() {
    let f = fixture();
    let case = f.agent.next_case_id();
    proptest!(config(), |(body in json_body(), route in 0..4u8)| {
        let req = match route {
            0 => f.agent.request("PUT", &format!("/v1/cases/{case}"), body, None),
            1 => f.staff.request("POST", &format!("/v1/cases/{case}/actions"), body, None),
            2 => f.staff.request("POST", &format!("/v1/rectifications/{case}/steps"), body, None),
            _ => Request::post("/v1/enrol").header("content-type", "application/json").body(Body::from(body)).unwrap(),
        };
        f.status(req);
    });
}

#[test]
fn upload_ranges_never_panic_or_fail_the_server() {
    let f = fixture();
    let data = page(7, 4096);
    let sha = bianmin_town::files::sha256_hex(&data);
    let uri = format!("/v1/attachments/{sha}");
    let edge = prop_oneof![
        Just(0u64),
        Just(4096),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(i64::MAX as u64),
        0u64..10_000
    ];
    proptest!(config(), |(
        offset in edge.clone(),
        length in edge.clone(),
        content_length in prop::option::of(edge),
        take in 0usize..4097,
        resume in any::<bool>(),
    )| {
        // Half the time at the server's offset, so the checks past the offset run too.
        let offset = if resume {
            let resp = f.rt.block_on(send_raw(&f.router, f.agent.request("HEAD", &uri, Vec::new(), None)));
            resp.headers().get("upload-offset").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(offset)
        } else {
            offset
        };
        let mut req = f.agent.request("PATCH", &uri, data[..take].to_vec(), Some((offset, length)));
        if let Some(cl) = content_length {
            req.headers_mut().insert("content-length", cl.into());
        }
        f.status(req);
    });
}

#[test]
fn receipt_tokens_and_case_numbers_never_panic_or_fail_the_server() {
    let f = fixture();
    let case = f.agent.next_case_id();
    let real =
        bianmin_engine::receipt::mint(&f.agent.key, &case, bianmin_town::time::china_today());
    let case_number = prop_oneof![
        "[0-9A-Z+ -]{0,40}",
        "[0-9]{12}-[0-9+-]{8}-[A-Z2-7]{6}-[0-9+]{4}",
        Just(case.clone()),
    ];
    let token = prop_oneof![
        "[A-Za-z0-9_=+/-]{0,120}",
        Just(real.clone()),
        (0usize..88, any::<u8>()).prop_map(move |(i, b)| {
            let mut t = real.clone().into_bytes();
            t[i] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                [b as usize % 64];
            String::from_utf8(t).unwrap()
        }),
    ];
    proptest!(config(), |(id in case_number, t in token)| {
        if let Ok(n) = id.parse::<bianmin_engine::number::CaseNumber>() {
            prop_assert_eq!(n.to_string(), id.clone(), "only canonical spellings parse");
        }
        let key = f.agent.key.verifying_key();
        let _ = bianmin_engine::receipt::verify_signature(&key, &id, &t);
        let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        f.status(Request::get(format!("/r/{}?t={}", enc(&id), enc(&t))).body(Body::empty()).unwrap());
        let form = format!("t={}&level=1&efficiency=9&quality=&attitude=x&comment=&phone4=0000", enc(&t));
        f.status(
            Request::post(format!("/r/{}/rate", enc(&id)))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        );
    });
    drop(f.town);
}
