//! API tests through `tower::ServiceExt::oneshot`: enrolment, idempotent submission, resumable upload,
//! authentication failures, the authorization matrix, staff actions, the changes feed and the audit chain.

mod common;

use axum::http::StatusCode;
use bianmin_engine::transport::verify_receipt;
use bianmin_protocol::sync::{
    ActionRequest, ActionResult, ChangesPage, DeviceRole, EnrolRequest, ErrorBody, InboxRow,
    Receipt, TownAction,
};
use bianmin_protocol::{CaseState, Decision, Delivery, MissingItem};
use bianmin_town::audit::verify_chain;
use bianmin_town::store::TownStore;
use common::*;

fn err(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not an error body ({e}): {body}"))
}

fn action(a: TownAction) -> ActionRequest {
    ActionRequest {
        action: a,
        staff: "王镇办".into(),
        expected_version: None,
        pin: None,
    }
}

#[tokio::test]
async fn healthz_and_unknown_routes() {
    let t = Town::new();
    let r = t.router();
    let (st, body) = send(
        &r,
        axum::http::Request::get("/healthz")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((st, body.as_str()), (StatusCode::OK, "ok"));
    let (st, body) = send(
        &r,
        axum::http::Request::get("/nope")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(err(&body).error, "not_found");
}

#[tokio::test]
async fn enrolment_codes_are_single_use_and_checked() {
    let t = Town::new();
    let r = t.router();
    let code = t.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    let dev = Device::fresh(NANGUAN);
    let req = EnrolRequest {
        code: code.clone(),
        device_id: dev.id.clone(),
        public_key: hex::encode(dev.key.verifying_key().to_bytes()),
        person: String::new(),
    };
    let (st, body) = send(&r, post_json("/v1/enrol", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let resp: bianmin_protocol::sync::EnrolResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(resp.village.as_deref(), Some(NANGUAN));
    assert_eq!(resp.scope_name, "古韩镇南关村");
    // Used once: a second device with the same code is refused.
    let other = Device::fresh(NANGUAN);
    let again = EnrolRequest {
        device_id: other.id.clone(),
        public_key: hex::encode(other.key.verifying_key().to_bytes()),
        ..req.clone()
    };
    let (st, _) = send(&r, post_json("/v1/enrol", &again)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Malformed JSON, bad key, bad device id.
    let bad = axum::http::Request::post("/v1/enrol")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let (st, body) = send(&r, bad).await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let code = t.code(DeviceRole::Agent, Some(NANGUAN), GUHAN);
    let (st, _) = send(
        &r,
        post_json(
            "/v1/enrol",
            &EnrolRequest {
                code: code.clone(),
                device_id: "bad!!!".into(),
                public_key: req.public_key.clone(),
                person: String::new(),
            },
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        &r,
        post_json(
            "/v1/enrol",
            &EnrolRequest {
                code,
                device_id: other.id.clone(),
                public_key: "00".into(),
                person: String::new(),
            },
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn same_id_same_content_returns_the_original_receipt() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let p1 = page(1, 5000);
    let sub = a.submission(&a.next_case_id(), 1, &[&p1]);

    // Missing attachments are listed, and nothing is stored.
    let (st, body) = send(&r, a.json("PUT", &format!("/v1/cases/{}", sub.id), &sub)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let e = err(&body);
    assert_eq!(e.error, "missing_attachments");
    assert_eq!(e.missing, vec![sub.materials[0].pages[0].sha256.clone()]);
    assert!(t.store.case(&sub.id).unwrap().is_none());

    a.upload(&r, &p1).await;
    let (st, body) = send(&r, a.json("PUT", &format!("/v1/cases/{}", sub.id), &sub)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let receipt: Receipt = serde_json::from_str(&body).unwrap();
    assert!(verify_receipt(
        &t.state.server_key.verifying_key(),
        &receipt
    ));
    let (st, body) = send(&r, a.json("PUT", &format!("/v1/cases/{}", sub.id), &sub)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Receipt>(&body).unwrap(),
        receipt,
        "the original receipt, not a new one"
    );

    // Same id, different content: 409, the stored case is untouched.
    let mut changed = sub.clone();
    changed.applicant.phone = "13900139000".into();
    let (st, body) = send(
        &r,
        a.json("PUT", &format!("/v1/cases/{}", sub.id), &changed),
    )
    .await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    // A version 2 without a correction request is refused as well.
    changed.version = 2;
    let (st, _) = send(
        &r,
        a.json("PUT", &format!("/v1/cases/{}", sub.id), &changed),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(
        t.store.case(&sub.id).unwrap().unwrap().case.applicant.phone,
        "13800138000"
    );
    assert_eq!(t.store.cases().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_submissions_are_refused_with_clear_errors() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let id = a.next_case_id();
    let (st, body) = send(
        &r,
        a.request(
            "PUT",
            &format!("/v1/cases/{id}"),
            b"{\"id\":".to_vec(),
            None,
        ),
    )
    .await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let mut sub = a.submission(&id, 1, &[]);
    sub.item = "V99".into();
    let (st, body) = send(&r, a.json("PUT", &format!("/v1/cases/{id}"), &sub)).await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_item")
    );
    let mut sub = a.submission(&id, 1, &[]);
    sub.village = "140423199299".into();
    let (st, body) = send(&r, a.json("PUT", &format!("/v1/cases/{id}"), &sub)).await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_village")
    );
    let sub = a.submission(&id, 1, &[]);
    let (st, _) = send(
        &r,
        a.json("PUT", "/v1/cases/140423100201-20261128-AAAAAA-0001", &sub),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "id in URL and body differ");
    // Body too large.
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (st, _) = send(&r, a.request("PUT", &format!("/v1/cases/{id}"), huge, None)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(t.store.cases().unwrap().is_empty(), "nothing half-stored");
}

#[tokio::test]
async fn uploads_resume_at_the_offset_and_verify_the_hash() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let data = page(7, 100_000);
    let sha = bianmin_town::files::sha256_hex(&data);
    let uri = format!("/v1/attachments/{sha}");
    let len = data.len() as u64;
    let (st, _) = send(
        &r,
        a.request("PATCH", &uri, data[..40_000].to_vec(), Some((0, len))),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let resp = send_raw(&r, a.request("HEAD", &uri, Vec::new(), None)).await;
    assert_eq!(resp.headers()["upload-offset"], "40000");
    assert_eq!(resp.headers()["upload-complete"], "0");
    // Resuming at the wrong place is refused with the right offset.
    let resp = send_raw(
        &r,
        a.request("PATCH", &uri, data[30_000..].to_vec(), Some((30_000, len))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(resp.headers()["upload-offset"], "40000");
    let (st, body) = send(
        &r,
        a.request("PATCH", &uri, data[40_000..].to_vec(), Some((40_000, len))),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("\"complete\":true"));
    assert_eq!(
        std::fs::read(t.state.files.attachment_path(&sha)).unwrap(),
        data
    );
    // Bytes that do not match the hash are discarded, nothing is stored.
    let wrong = bianmin_town::files::sha256_hex(b"something else");
    let (st, body) = send(
        &r,
        a.request(
            "PATCH",
            &format!("/v1/attachments/{wrong}"),
            data[..1000].to_vec(),
            Some((0, 1000)),
        ),
    )
    .await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch")
    );
    assert_eq!(t.state.files.attachment_size(&wrong), None);
    assert_eq!(t.state.files.partial_state(NANGUAN, &wrong), (0, None));
    // Larger than the limit, or past the declared length.
    let (st, _) = send(
        &r,
        a.request(
            "PATCH",
            &format!("/v1/attachments/{wrong}"),
            vec![0; 10],
            Some((0, 64 * 1024 * 1024)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (st, _) = send(
        &r,
        a.request(
            "PATCH",
            &format!("/v1/attachments/{wrong}"),
            vec![0; 10],
            Some((0, 5)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (st, _) = send(
        &r,
        a.request(
            "PATCH",
            "/v1/attachments/NOTAHASH",
            vec![0; 10],
            Some((0, 10)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn forged_replayed_stale_and_revoked_credentials_get_401() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let now = chrono::Utc::now().timestamp();
    let (st, _) = send(
        &r,
        a.request_at("GET", "/v1/me", vec![], None, now, "0123456789abcdef0123"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = send(
        &r,
        a.request_at("GET", "/v1/me", vec![], None, now, "0123456789abcdef0123"),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "replay");
    assert!(err(&body).message.contains("replay"));
    let (st, _) = send(
        &r,
        a.request_at(
            "GET",
            "/v1/me",
            vec![],
            None,
            now - 3600,
            "fedcba98765432100000",
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "stale timestamp");
    // Signed by another key under this device's id.
    let mut forger = Device::fresh(NANGUAN);
    forger.id = a.id.clone();
    let (st, _) = send(&r, forger.get("/v1/me")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "forged signature");
    // A body swapped after signing.
    let mut req = a.request("PUT", "/v1/cases/x", b"{}".to_vec(), None);
    *req.body_mut() = axum::body::Body::from("{\"a\":1}");
    let (st, _) = send(&r, req).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "tampered body");
    // A path changed after signing.
    let mut req = a.get("/v1/me");
    *req.uri_mut() = "/v1/changes".parse().unwrap();
    let (st, _) = send(&r, req).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "tampered path");
    // Unsigned requests and unknown devices.
    let (st, _) = send(
        &r,
        axum::http::Request::get("/v1/me")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = send(&r, Device::fresh(NANGUAN).get("/v1/me")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Revoked.
    t.state.admin.revoke(&a.id).unwrap();
    let (st, body) = send(&r, a.get("/v1/me")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(err(&body).message.contains("revoked"));
}

/// Every route against every kind of caller.
#[tokio::test]
async fn authorization_matrix_covers_every_route() {
    let t = Town::new();
    let r = t.router();
    let owner = t.agent(NANGUAN).await;
    let neighbour = t.agent(SHANFU_VILLAGE).await;
    let staff_own = t.staff(GUHAN).await;
    let staff_other = t.staff(SHANFU).await;
    let p = page(11, 2000);
    owner.upload(&r, &p).await;
    let sub = owner.submission(&owner.next_case_id(), 1, &[&p]);
    let (st, _) = send(
        &r,
        owner.json("PUT", &format!("/v1/cases/{}", sub.id), &sub),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let sha = sub.materials[0].pages[0].sha256.clone();
    let case = format!("/v1/cases/{}", sub.id);

    #[derive(Clone, Copy, Debug)]
    enum Who {
        Owner,
        Neighbour,
        StaffOwn,
        StaffOther,
    }
    let dev = |w: Who| match w {
        Who::Owner => &owner,
        Who::Neighbour => &neighbour,
        Who::StaffOwn => &staff_own,
        Who::StaffOther => &staff_other,
    };
    use Who::*;
    let all = [Owner, Neighbour, StaffOwn, StaffOther];
    for who in all {
        let d = dev(who);
        let n = |s: StatusCode| s.as_u16();
        // GET /v1/me: any enrolled device.
        let (st, _) = send(&r, d.get("/v1/me")).await;
        assert_eq!(n(st), 200, "{who:?} me");
        // GET /v1/cases/{id}: the owning village's agent and the owning town's staff.
        let (st, _) = send(&r, d.get(&case)).await;
        assert_eq!(
            n(st),
            if matches!(who, Owner | StaffOwn) {
                200
            } else {
                403
            },
            "{who:?} get case"
        );
        // GET attachment: same.
        let (st, _) = send(&r, d.get(&format!("{case}/attachments/{sha}"))).await;
        assert_eq!(
            n(st),
            if matches!(who, Owner | StaffOwn) {
                200
            } else {
                403
            },
            "{who:?} get attachment"
        );
        // PUT /v1/cases/{id}: only the owning agent (another agent cannot submit into that village).
        let (st, _) = send(&r, d.json("PUT", &case, &sub)).await;
        assert_eq!(
            n(st),
            if matches!(who, Owner) { 200 } else { 403 },
            "{who:?} put case"
        );
        // HEAD/PATCH attachments: every device, each into its own holder (an agent's village, a
        // tablet's town for window cases), so one never completes another's upload.
        let (st, _) = send(
            &r,
            d.request("HEAD", &format!("/v1/attachments/{sha}"), vec![], None),
        )
        .await;
        assert_eq!(n(st), 200, "{who:?} head upload");
        let (st, _) = send(
            &r,
            d.request(
                "PATCH",
                &format!("/v1/attachments/{sha}"),
                p.clone(),
                Some((0, p.len() as u64)),
            ),
        )
        .await;
        assert_eq!(n(st), 200, "{who:?} patch upload");
        // PUT /v1/window/cases/{id}: a village case is nobody's window case (agents may not use
        // the window; the case's number names the agent's phone, not a tablet).
        let window = bianmin_protocol::window::WindowIntake {
            submission: sub.clone(),
            staff: String::new(),
            pin: None,
        };
        let (st, _) = send(
            &r,
            d.json("PUT", &format!("/v1/window/cases/{}", sub.id), &window),
        )
        .await;
        assert_eq!(n(st), 403, "{who:?} window intake");
        // GET /v1/inbox: staff only, own town's villages only.
        let (st, _) = send(&r, d.get("/v1/inbox")).await;
        assert_eq!(
            n(st),
            if matches!(who, StaffOwn | StaffOther) {
                200
            } else {
                403
            },
            "{who:?} inbox"
        );
        let (st, _) = send(&r, d.get(&format!("/v1/inbox?village={NANGUAN}"))).await;
        assert_eq!(
            n(st),
            if matches!(who, StaffOwn) { 200 } else { 403 },
            "{who:?} inbox of village"
        );
        // GET /v1/changes: everyone gets a feed, but only of their own scope.
        let (st, body) = send(&r, d.get("/v1/changes?cursor=0")).await;
        assert_eq!(n(st), 200);
        let page: ChangesPage = serde_json::from_str(&body).unwrap();
        let sees = page.entries.iter().any(|e| e.event.case_id == sub.id);
        assert_eq!(sees, matches!(who, Owner | StaffOwn), "{who:?} feed scope");
        // POST actions: the owning town's staff only (a forward is allowed from no state here, so 409 is success of authz).
        let (st, _) = send(
            &r,
            d.json(
                "POST",
                &format!("{case}/actions"),
                &action(TownAction::Forward { note: "x".into() }),
            ),
        )
        .await;
        assert_eq!(
            n(st),
            if matches!(who, StaffOwn) { 409 } else { 403 },
            "{who:?} act"
        );
    }
    // Unauthenticated: every protected route is 401; enrol and healthz are open.
    for (m, uri) in [
        ("GET", "/v1/me".to_string()),
        ("GET", case.clone()),
        ("PUT", case.clone()),
        ("POST", format!("{case}/actions")),
        ("GET", format!("{case}/attachments/{sha}")),
        ("HEAD", format!("/v1/attachments/{sha}")),
        ("PATCH", format!("/v1/attachments/{sha}")),
        ("PUT", format!("/v1/window/cases/{}", sub.id)),
        ("GET", "/v1/inbox".to_string()),
        ("GET", "/v1/changes".to_string()),
    ] {
        let req = axum::http::Request::builder()
            .method(m)
            .uri(&uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let (st, _) = send(&r, req).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {uri}");
    }
}

#[tokio::test]
async fn correction_resubmission_acceptance_and_completion() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let s = t.staff(GUHAN).await;
    let p1 = page(21, 3000);
    a.upload(&r, &p1).await;
    let sub = a.submission(&a.next_case_id(), 1, &[&p1]);
    let case = format!("/v1/cases/{}", sub.id);
    assert_eq!(
        send(&r, a.json("PUT", &case, &sub)).await.0,
        StatusCode::CREATED
    );

    // Inbox filters.
    let (_, body) = send(&r, s.get("/v1/inbox?state=received")).await;
    let rows: Vec<InboxRow> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id_number, "**************001X");
    assert_eq!(rows[0].responsible.device_id, a.id);
    let (_, body) = send(&r, s.get("/v1/inbox?state=accepted")).await;
    assert_eq!(
        serde_json::from_str::<Vec<InboxRow>>(&body).unwrap().len(),
        0
    );
    let (_, body) = send(&r, s.get("/v1/inbox?overdue=true")).await;
    assert_eq!(
        serde_json::from_str::<Vec<InboxRow>>(&body).unwrap().len(),
        0
    );
    let (st, _) = send(&r, s.get("/v1/inbox?state=bogus")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Search by part of the case number or the applicant's name (sent percent-encoded, matched
    // unmasked on the server, answered masked).
    let found = |body: &str| serde_json::from_str::<Vec<InboxRow>>(body).unwrap();
    let tail = &sub.id[sub.id.len() - 6..];
    let (_, body) = send(&r, s.get(&format!("/v1/inbox?q={tail}"))).await;
    assert_eq!(found(&body).len(), 1, "by case number");
    let (_, body) = send(&r, s.get("/v1/inbox?q=%E5%BC%A0%E4%B8%89")).await;
    let rows = found(&body);
    assert_eq!(rows.len(), 1, "by the applicant's name 张三");
    assert!(
        !rows[0].applicant.contains('三'),
        "still masked: {}",
        rows[0].applicant
    );
    let (_, body) = send(&r, s.get("/v1/inbox?q=%E6%9D%8E%E5%9B%9B")).await;
    assert!(found(&body).is_empty(), "李四 filed nothing");

    // An empty or unknown-key correction is refused; a complete one goes through once.
    let (st, _) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::RequestCorrection {
                missing: vec![],
                note: String::new(),
            }),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = vec![MissingItem {
        key: "nonsense".into(),
        note: "x".into(),
    }];
    let (st, _) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::RequestCorrection {
                missing: bad,
                note: String::new(),
            }),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = vec![
        MissingItem {
            key: "household_register".into(),
            note: "缺户口簿本人页".into(),
        },
        MissingItem {
            key: "photo".into(),
            note: "缺一寸照片".into(),
        },
    ];
    let (st, body) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::RequestCorrection {
                missing: missing.clone(),
                note: "请一次补齐".into(),
            }),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // The village sees it on the feed.
    let (_, body) = send(&r, a.get("/v1/changes?cursor=0")).await;
    let feed: ChangesPage = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&Decision> = feed.entries.iter().map(|e| &e.event.decision).collect();
    assert!(matches!(kinds[0], Decision::Received));
    assert!(matches!(kinds[1], Decision::CorrectionRequested { missing: m, .. } if *m == missing));
    let (_, body) = send(&r, a.get(&format!("/v1/changes?cursor={}", feed.cursor))).await;
    assert!(serde_json::from_str::<ChangesPage>(&body)
        .unwrap()
        .entries
        .is_empty());

    // Resubmission as version 2 (with the added pages); version 1 replays still give the v1 receipt.
    let p2 = page(22, 4000);
    let p3 = page(23, 1000);
    a.upload(&r, &p2).await;
    a.upload(&r, &p3).await;
    let sub2 = a.submission(&sub.id, 2, &[&p1, &p2, &p3]);
    let (st, body) = send(&r, a.json("PUT", &case, &sub2)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(serde_json::from_str::<Receipt>(&body).unwrap().version, 2);
    let (st, body) = send(&r, a.json("PUT", &case, &sub)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Receipt>(&body).unwrap().version, 1);
    // A second correction is refused: 补正 happens once.
    let (st, body) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::RequestCorrection {
                missing: missing.clone(),
                note: String::new(),
            }),
        ),
    )
    .await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::CONFLICT, "correction_already_requested")
    );

    // Accept: deadline from the item's promised days; complete by mail needs a tracking number.
    let (st, body) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::Accept),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let res: ActionResult = serde_json::from_str(&body).unwrap();
    assert_eq!(res.state, CaseState::Accepted);
    let expected = bianmin_engine::case::Case::accept_decision(
        bianmin_town::time::china_today(),
        3,
        &bianmin_engine::deadline::WorkCalendar::shipped(),
    );
    assert_eq!(res.decision, expected);
    let (st, _) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::Accept),
        ),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "accepting twice is not a legal transition"
    );
    let no_tracking = TownAction::Complete {
        result: "已登记".into(),
        delivery: Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: " ".into(),
        },
    };
    let (st, _) = send(
        &r,
        s.json("POST", &format!("{case}/actions"), &action(no_tracking)),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let done = TownAction::Complete {
        result: "已登记".into(),
        delivery: Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: "1180000000001".into(),
        },
    };
    let (st, _) = send(
        &r,
        s.json("POST", &format!("{case}/actions"), &action(done)),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = send(
        &r,
        s.json(
            "POST",
            &format!("{case}/actions"),
            &action(TownAction::Refuse { reason: "x".into() }),
        ),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "a completed case cannot be refused"
    );

    let stored = t.store.case(&sub.id).unwrap().unwrap();
    assert_eq!(stored.case.state, CaseState::Completed);
    assert_eq!(stored.case.version, 2);
    assert_eq!(stored.case.responsible.device_id, a.id, "首问负责 kept");
    assert_eq!(stored.versions.len(), 2);
    let (_, body) = send(&r, a.get("/v1/changes?cursor=0")).await;
    let feed: ChangesPage = serde_json::from_str(&body).unwrap();
    assert!(
        matches!(&feed.entries.last().unwrap().event.decision, Decision::Completed { delivery: Delivery::Mail { tracking_number, .. }, .. } if tracking_number == "1180000000001")
    );
}

#[tokio::test]
async fn a_village_references_only_pages_it_has_sent_itself() {
    let t = Town::new();
    let r = t.router();
    let owner = t.agent(NANGUAN).await;
    let snoop = t.agent(WANGQIAO_VILLAGE).await;
    let p = page(41, 5000);
    let sha = owner.upload(&r, &p).await;
    let theirs = owner.submission(&owner.next_case_id(), 1, &[&p]);
    assert_eq!(
        send(
            &r,
            owner.json("PUT", &format!("/v1/cases/{}", theirs.id), &theirs)
        )
        .await
        .0,
        StatusCode::CREATED
    );

    // Another village knows the hash (and size) but never sent the bytes: to it the page is not
    // on the server, and a case listing it is refused as missing that page.
    let uri = format!("/v1/attachments/{sha}");
    let resp = send_raw(&r, snoop.request("HEAD", &uri, Vec::new(), None)).await;
    assert_eq!(
        (
            resp.headers()["upload-offset"].to_str().unwrap(),
            resp.headers()["upload-complete"].to_str().unwrap()
        ),
        ("0", "0")
    );
    let stolen = snoop.submission(&snoop.next_case_id(), 1, &[&p]);
    let case = format!("/v1/cases/{}", stolen.id);
    let (st, body) = send(&r, snoop.json("PUT", &case, &stolen)).await;
    assert_eq!(
        (st, err(&body).error.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "missing_attachments")
    );
    assert_eq!(
        send(&r, snoop.get(&format!("{case}/attachments/{sha}")))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Wrong bytes under that name do not count; sending the real bytes does (same photo, two villages).
    let (st, _) = send(
        &r,
        snoop.request("PATCH", &uri, page(42, 5000), Some((0, 5000))),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        send(
            &r,
            owner.get(&format!("/v1/cases/{}/attachments/{sha}", theirs.id))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        std::fs::read(t.state.files.attachment_path(&sha)).unwrap(),
        p,
        "the owner's page is intact"
    );
    snoop.upload(&r, &p).await;
    assert_eq!(
        send(&r, snoop.json("PUT", &case, &stolen)).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn delivery_is_marked_by_staff_or_by_the_agent_who_brings_it() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let other = t.agent(WANGQIAO_VILLAGE).await;
    let s = t.staff(GUHAN).await;
    let p = page(31, 2000);
    a.upload(&r, &p).await;
    let brought = a.submission(&a.next_case_id(), 1, &[&p]);
    let mailed = a.submission(&a.next_case_id(), 1, &[&p]);
    let acts = |sub: &bianmin_protocol::CaseSubmission| format!("/v1/cases/{}/actions", sub.id);
    let deliver = || {
        action(TownAction::Deliver {
            note: String::new(),
        })
    };
    for sub in [&brought, &mailed] {
        assert_eq!(
            send(&r, a.json("PUT", &format!("/v1/cases/{}", sub.id), sub))
                .await
                .0,
            StatusCode::CREATED
        );
        assert_eq!(
            send(&r, s.json("POST", &acts(sub), &action(TownAction::Accept)))
                .await
                .0,
            StatusCode::OK
        );
    }
    // Not completed yet: nobody can mark it delivered.
    assert_eq!(
        send(&r, s.json("POST", &acts(&brought), &deliver()))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let by_agent = TownAction::Complete {
        result: "已批准".into(),
        delivery: Delivery::AgentDelivery,
    };
    let by_mail = TownAction::Complete {
        result: "已批准".into(),
        delivery: Delivery::Mail {
            carrier: "EMS".into(),
            tracking_number: "1180000000002".into(),
        },
    };
    assert_eq!(
        send(&r, s.json("POST", &acts(&brought), &action(by_agent)))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&r, s.json("POST", &acts(&mailed), &action(by_mail)))
            .await
            .0,
        StatusCode::OK
    );

    // The agent may not mark a mailed result, nor take any staff action; another village's agent
    // does not see the case at all.
    assert_eq!(
        send(&r, a.json("POST", &acts(&mailed), &deliver())).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &r,
            a.json(
                "POST",
                &acts(&brought),
                &action(TownAction::Refuse { reason: "x".into() })
            )
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&r, other.json("POST", &acts(&brought), &deliver()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // The agent who brings it marks it; the phone learns it from the feed. Marking again (a phone
    // resending a mark whose answer it lost) answers the same and adds nothing to the feed.
    let (st, body) = send(&r, a.json("POST", &acts(&brought), &deliver())).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<ActionResult>(&body).unwrap().state,
        CaseState::Delivered
    );
    let (st, body) = send(&r, a.json("POST", &acts(&brought), &deliver())).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<ActionResult>(&body).unwrap().state,
        CaseState::Delivered
    );
    let (_, body) = send(&r, a.get("/v1/changes?cursor=0")).await;
    let feed: ChangesPage = serde_json::from_str(&body).unwrap();
    let marks = feed
        .entries
        .iter()
        .filter(|e| e.event.case_id == brought.id && e.event.decision == Decision::Delivered)
        .count();
    assert_eq!(marks, 1);
    // Staff mark the mailed one once the post office confirms it.
    assert_eq!(
        send(&r, s.json("POST", &acts(&mailed), &deliver())).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.store.case(&mailed.id).unwrap().unwrap().case.state,
        CaseState::Delivered
    );
}

#[tokio::test]
async fn audit_log_records_actions_and_reads_and_detects_tampering() {
    let t = Town::new();
    let r = t.router();
    let a = t.agent(NANGUAN).await;
    let s = t.staff(GUHAN).await;
    let sub = a.submission(&a.next_case_id(), 1, &[]);
    let case = format!("/v1/cases/{}", sub.id);
    assert_eq!(
        send(&r, a.json("PUT", &case, &sub)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(send(&r, s.get(&case)).await.0, StatusCode::OK);
    assert_eq!(send(&r, s.get("/v1/inbox")).await.0, StatusCode::OK);
    assert_eq!(
        send(
            &r,
            s.json(
                "POST",
                &format!("{case}/actions"),
                &action(TownAction::Refuse {
                    reason: "不符合条件".into()
                })
            )
        )
        .await
        .0,
        StatusCode::OK
    );
    let log = t.store.audit_log().unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.draft.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            // The built-in catalog, published as version 1 on the town's first start.
            "catalog_import",
            "catalog_publish",
            "enrol",
            "enrol",
            "submit",
            "view_case",
            "view_inbox",
            "refuse"
        ]
    );
    verify_chain(&log).unwrap();

    // Tamper with a stored entry on disk: the chain breaks at that entry.
    let tree = t.store.raw_tree("audit").unwrap();
    let key = 4u64.to_be_bytes();
    let mut v: serde_json::Value =
        serde_json::from_slice(&tree.get(key).unwrap().unwrap()).unwrap();
    v["actor"] = "SOMEONE".into();
    tree.insert(key, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(
        verify_chain(&t.store.audit_log().unwrap()),
        Err(bianmin_town::audit::AuditError::Edited { seq: 4 })
    );
    // Deleting an entry is detected too.
    tree.remove(3u64.to_be_bytes()).unwrap();
    assert!(verify_chain(&t.store.audit_log().unwrap()).is_err());
}
