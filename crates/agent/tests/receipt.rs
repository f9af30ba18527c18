//! `bianmin-agent receipt CASE_ID`: the link is printed alone on the first line, works before the case
//! was synced (the town says so kindly) and after (the town shows the case), and is stable on reprint.

use std::io::{Read, Write};

use bianmin_protocol::sync::DeviceRole;

mod common;

use common::*;

/// A plain HTTP/1.1 GET over loopback: status code and body.
fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let resp = String::from_utf8_lossy(&raw).to_string();
    let status = resp[9..12].parse().unwrap();
    (status, resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_link_is_minted_offline_and_opens_on_the_town_centre() {
    let town_dir = tempfile::tempdir().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, addr) = serve_town(town_dir.path()).await;
    let server = format!("http://{addr}");
    let data = agent_dir.path().to_path_buf();

    // Not enrolled: a clear error, nothing on stdout.
    let o = agent(&data, &["receipt", "140423100201-20261128-AAAAAA-0001"]);
    assert!(!o.status.success());
    assert!(
        o.stdout.is_empty() && String::from_utf8_lossy(&o.stderr).contains("not enrolled"),
        "{}",
        text(&o)
    );

    let code = code(&state, DeviceRole::Agent, Some(VILLAGE));
    let o = tokio::task::spawn_blocking({
        let (data, server) = (data.clone(), server.clone());
        move || {
            agent(
                &data,
                &[
                    "enroll",
                    "--server",
                    &server,
                    "--code",
                    &code,
                    "--person",
                    "李代办",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // A complete case, sealed but not synced.
    let (case_id, _) = new_complete_case(&data, work.path(), 3, 5);

    let o = agent(&data, &["receipt", &case_id]);
    assert!(o.status.success(), "{}", text(&o));
    let url = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with(&format!("{server}/r/{case_id}?t=")),
        "{url}"
    );
    // Reprinting gives the same link.
    assert_eq!(
        String::from_utf8(agent(&data, &["receipt", &case_id]).stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        url
    );
    // An unknown case is refused.
    assert!(
        !agent(&data, &["receipt", "140423100201-20261128-AAAAAA-0009"])
            .status
            .success()
    );

    // Before sync the town knows the device, not the case.
    let u = url.clone();
    let (st, body) = tokio::task::spawn_blocking(move || http_get(&u))
        .await
        .unwrap();
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("您的办件正在由村代办员上传，请稍后再查看"));
    // A tampered token is refused.
    let last = if url.ends_with('A') { 'B' } else { 'A' };
    let bad = format!("{}{last}", &url[..url.len() - 1]);
    let (st, _) = tokio::task::spawn_blocking(move || http_get(&bad))
        .await
        .unwrap();
    assert_eq!(st, 403);

    let o = tokio::task::spawn_blocking({
        let data = data.clone();
        move || agent(&data, &["sync"])
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (st, body) = tokio::task::spawn_blocking(move || http_get(&url))
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert!(
        body.contains(
            &bianmin_engine::catalog::Catalog::embedded()
                .unwrap()
                .item("V01")
                .unwrap()
                .name
        ) && body.contains("镇便民服务中心已接收"),
        "{body}"
    );
}
