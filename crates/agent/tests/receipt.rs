//! `bianmin-agent receipt CASE_ID`: the link is printed alone on the first line, works before the case
//! was synced (the town says so kindly) and after (the town shows the case), and is stable on reprint.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use bianmin_engine::catalog::Catalog;
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::files::Ticket;
use bianmin_town::{app, AppState};

const VILLAGE: &str = "140423100201";
const TOWN: &str = "140423100";

fn agent(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bianmin-agent")).arg("--data").arg(data).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A plain HTTP/1.1 GET over loopback: status code and body.
fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
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
    let state = AppState::open(town_dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let server = format!("http://{addr}");
    let data = agent_dir.path().to_path_buf();

    // Not enrolled: a clear error, nothing on stdout.
    let o = agent(&data, &["receipt", "140423100201-20261128-AAAAAA-0001"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty() && String::from_utf8_lossy(&o.stderr).contains("not enrolled"), "{}", text(&o));

    let code = state
        .files
        .issue_ticket(&Ticket { role: DeviceRole::Agent, village: Some(VILLAGE.into()), town: TOWN.into(), expires_at: chrono::Utc::now() + chrono::Duration::minutes(10) })
        .unwrap();
    let o = tokio::task::spawn_blocking({
        let (data, server) = (data.clone(), server.clone());
        move || agent(&data, &["enroll", "--server", &server, "--code", &code, "--person", "李代办"])
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // A complete case, sealed but not synced.
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V01").unwrap();
    let guide = item.guide.as_ref().unwrap();
    let applicant = work.path().join("applicant.json");
    std::fs::write(&applicant, serde_json::to_vec(&bianmin_agent::cases::crash_applicant(3)).unwrap()).unwrap();
    let mut args: Vec<String> = vec!["new".into(), "--item".into(), "V01".into(), "--applicant".into(), applicant.display().to_string()];
    let mut n = 0;
    for m in guide.materials.iter().filter(|m| m.required) {
        for _ in 0..m.count {
            n += 1;
            let p = work.path().join(format!("{}-{n}.jpg", m.key));
            std::fs::write(&p, bianmin_agent::cases::crash_photo(5, n)).unwrap();
            args.push("--material".into());
            args.push(format!("{}={}", m.key, p.display()));
        }
    }
    for (k, v) in bianmin_agent::cases::crash_answers(item) {
        args.push("--answer".into());
        args.push(format!("{k}={v}"));
    }
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = agent(&data, &args_ref);
    assert!(o.status.success(), "{}", text(&o));
    let case_id = String::from_utf8(o.stdout).unwrap().lines().next().unwrap().to_string();

    let o = agent(&data, &["receipt", &case_id]);
    assert!(o.status.success(), "{}", text(&o));
    let url = String::from_utf8(o.stdout.clone()).unwrap().lines().next().unwrap().to_string();
    assert!(url.starts_with(&format!("{server}/r/{case_id}?t=")), "{url}");
    // Reprinting gives the same link.
    assert_eq!(String::from_utf8(agent(&data, &["receipt", &case_id]).stdout).unwrap().lines().next().unwrap(), url);
    // An unknown case is refused.
    assert!(!agent(&data, &["receipt", "140423100201-20261128-AAAAAA-0009"]).status.success());

    // Before sync the town knows the device, not the case.
    let u = url.clone();
    let (st, body) = tokio::task::spawn_blocking(move || http_get(&u)).await.unwrap();
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("您的办件正在由村代办员上传，请稍后再查看"));
    // A tampered token is refused.
    let last = if url.ends_with('A') { 'B' } else { 'A' };
    let bad = format!("{}{last}", &url[..url.len() - 1]);
    let (st, _) = tokio::task::spawn_blocking(move || http_get(&bad)).await.unwrap();
    assert_eq!(st, 403);

    let o = tokio::task::spawn_blocking({
        let data = data.clone();
        move || agent(&data, &["sync"])
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (st, body) = tokio::task::spawn_blocking(move || http_get(&url)).await.unwrap();
    assert_eq!(st, 200);
    assert!(body.contains(&item.name) && body.contains("镇便民服务中心已接收"), "{body}");
}
