//! Shared setup of the agent CLI's integration tests: running the real binary, enrolment codes from
//! an in-process town centre, and a complete V01 case made through `bianmin-agent new`.

#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::process::{Command, Output};

use bianmin_engine::catalog::Catalog;
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::files::Ticket;
use bianmin_town::AppState;

/// The pilot village 古韩镇南关村 and its town.
pub const VILLAGE: &str = "140423100201";
pub const TOWN: &str = "140423100";

/// The town centre in-process on 127.0.0.1:0 with its data in `dir`, served as `bianmin-town serve`
/// serves it (with the peer address, which the rate limits key on).
pub async fn serve_town(dir: &Path) -> (AppState, std::net::SocketAddr) {
    let state = AppState::open(dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = bianmin_town::app(state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (state, addr)
}

/// Runs `bianmin-agent --data DATA ARGS...`.
pub fn agent(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// `bianmin-agent status --json`.
pub fn status(data: &Path) -> serde_json::Value {
    let o = agent(data, &["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Both streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A one-time enrolment code issued by the town centre's files, as `bianmin-town enroll` does.
pub fn code(state: &AppState, role: DeviceRole, village: Option<&str>) -> String {
    state
        .files
        .issue_ticket(&Ticket {
            role,
            village: village.map(str::to_string),
            town: TOWN.into(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
        })
        .unwrap()
}

/// Arguments of `bianmin-agent new` (after `new`) for a complete V01 case: every required material
/// photographed (files written to `work`), every field answered; and the photo bytes in page order.
pub fn complete_case_args(
    work: &Path,
    applicant_seed: u64,
    photo_seed: u64,
) -> (Vec<String>, Vec<Vec<u8>>) {
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V01").unwrap();
    let applicant = work.join("applicant.json");
    std::fs::write(
        &applicant,
        serde_json::to_vec(&bianmin_agent::cases::crash_applicant(applicant_seed)).unwrap(),
    )
    .unwrap();
    let mut args: Vec<String> = vec![
        "--item".into(),
        "V01".into(),
        "--applicant".into(),
        applicant.display().to_string(),
    ];
    let mut photos = Vec::new();
    let mut n = 0;
    let answers = bianmin_agent::cases::crash_answers(item);
    let person = bianmin_agent::cases::crash_applicant(applicant_seed);
    for (key, pages) in bianmin_agent::cases::required_pages(item, &person, &answers) {
        for _ in 0..pages {
            n += 1;
            let p = work.join(format!("{key}-{n}.jpg"));
            let bytes = bianmin_agent::cases::crash_photo(photo_seed, n);
            std::fs::write(&p, &bytes).unwrap();
            photos.push(bytes);
            args.push("--material".into());
            args.push(format!("{key}={}", p.display()));
        }
    }
    for (k, v) in answers {
        args.push("--answer".into());
        args.push(format!("{k}={v}"));
    }
    (args, photos)
}

/// Creates a complete V01 case with `bianmin-agent new`; returns its number and the photo bytes given.
pub fn new_complete_case(
    data: &Path,
    work: &Path,
    applicant_seed: u64,
    photo_seed: u64,
) -> (String, Vec<Vec<u8>>) {
    let (mut args, photos) = complete_case_args(work, applicant_seed, photo_seed);
    args.insert(0, "new".into());
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = agent(data, &args_ref);
    assert!(o.status.success(), "{}", text(&o));
    let case_id = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    (case_id, photos)
}

/// A town staff tablet enrolled directly with the town centre at `addr`, acting through the
/// engine's signed transport as the app does.
pub async fn staff_transport(
    state: &AppState,
    addr: std::net::SocketAddr,
) -> bianmin_engine::transport::Transport {
    use bianmin_engine::transport::{Credential, Transport};
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let id = bianmin_engine::number::device_code_from(rand::random());
    let direct = format!("http://{addr}");
    let req = bianmin_protocol::sync::EnrolRequest {
        code: code(state, DeviceRole::Staff, None),
        device_id: id.clone(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        person: "王镇办".into(),
    };
    Transport::new(&direct, None)
        .unwrap()
        .enrol(&req)
        .await
        .unwrap();
    Transport::new(&direct, Some(Credential { device_id: id, key })).unwrap()
}

/// An action as 王镇办 on the tablet.
pub fn staff_act(
    action: bianmin_protocol::sync::TownAction,
) -> bianmin_protocol::sync::ActionRequest {
    bianmin_protocol::sync::ActionRequest {
        action,
        staff: "王镇办".into(),
        expected_version: None,
        pin: None,
    }
}
