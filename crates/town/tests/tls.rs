//! `serve --tls-cert/--tls-key`: the binary serves HTTPS, the engine's client talks to it with the
//! town's certificate as trust root, and a plain-HTTP client gets nowhere.

mod common;

use std::process::Command;
use std::time::Duration;

use bianmin_engine::transport::{Timeouts, Transport};
use bianmin_protocol::sync::EnrolRequest;
use common::serve_binary;

#[tokio::test]
async fn serve_over_tls_and_enrol() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("town");
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let (mut child, url) = serve_binary(
        &data,
        &[
            "--tls-cert",
            &format!("{certs}/test-cert.pem"),
            "--tls-key",
            &format!("{certs}/test-key.pem"),
        ],
    );
    assert!(url.starts_with("https://127.0.0.1:"), "{url:?}");

    let pem = std::fs::read(format!("{certs}/test-ca.pem")).unwrap();
    let t = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
        stall: Duration::from_secs(10),
    };
    let client = Transport::with_root_certificate(&url, None, t, &pem).unwrap();
    client.health().await.unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
        .arg("--data")
        .arg(&data)
        .args(["enroll", "--village", "140423100201"])
        .output()
        .unwrap();
    let code = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let resp = client
        .enrol(&EnrolRequest {
            code,
            device_id: "TLSAAA".into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            person: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(resp.scope_name, "古韩镇南关村");

    // Without trusting the town's certificate the handshake fails; plain HTTP is not answered.
    assert!(Transport::with_timeouts(&url, None, t)
        .unwrap()
        .health()
        .await
        .is_err());
    assert!(
        Transport::with_timeouts(&url.replace("https://", "http://"), None, t)
            .unwrap()
            .health()
            .await
            .is_err()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
