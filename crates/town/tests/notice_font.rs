//! A town centre without a CJK font: a printed notice is refused with 503 `notice_font_missing`
//! (not a bare internal error), which the tablet's transport reports as lasting, in Chinese, with
//! the package to install. Its own test binary: the font setting is process-wide.

mod common;

use bianmin_engine::transport::{Credential, NoticeKind, Transport, TransportError};
use bianmin_protocol::sync::{ActionRequest, TownAction};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_cjk_font_says_which_package_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    // Set before any notice is rendered in this process; nothing else here reads the environment.
    std::env::set_var(
        bianmin_town::notice_pdf::font::FONT_ENV,
        dir.path().join("no-such-font.ttc"),
    );
    let town = Town::new();
    let url = format!("http://{}", town.serve().await);
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let r = town.router();
    let page = common::page(1, 3000);
    agent.upload(&r, &page).await;
    let id = agent.next_case_id();
    let (st, body) = send(
        &r,
        agent.json(
            "PUT",
            &format!("/v1/cases/{id}"),
            &agent.submission(&id, 1, &[&page]),
        ),
    )
    .await;
    assert_eq!(st, axum::http::StatusCode::CREATED, "{body}");
    let req = ActionRequest {
        action: TownAction::Accept,
        staff: String::new(),
        pin: None,
        expected_version: None,
    };
    let (st, body) = send(
        &r,
        staff.json("POST", &format!("/v1/cases/{id}/actions"), &req),
    )
    .await;
    assert_eq!(st, axum::http::StatusCode::OK, "{body}");

    let tablet = Transport::new(
        &url,
        Some(Credential {
            device_id: staff.id.clone(),
            key: staff.key.clone(),
        }),
    )
    .unwrap();
    let e = tablet
        .notice(&id, NoticeKind::Acceptance)
        .await
        .unwrap_err();
    match &e {
        TransportError::Rejected { status, code, .. } => {
            assert_eq!((*status, code.as_str()), (503, "notice_font_missing"))
        }
        other => panic!("expected a lasting refusal, got {other:?}"),
    }
    assert!(!e.is_transient());
    let msg = e.staff_message();
    assert!(
        msg.contains("中文字体") && msg.contains("fonts-noto-cjk"),
        "{msg}"
    );
    // Nothing was printed, so nothing is in the audit log as printed.
    use bianmin_town::TownStore;
    assert!(!town
        .store
        .audit_log()
        .unwrap()
        .iter()
        .any(|e| e.draft.action == "print_notice"));
}
