//! Catalog versions on the town: the store contract on every backend (version 1 is the built-in
//! catalog, one draft replaced by each import, publishing audited, stale drafts refused, old
//! versions kept), and delivery to devices (`GET /v1/catalog`, `POST /v1/catalog/parts`): a signed
//! manifest, parts exactly as `Catalog::parts` cuts them, a publish seen without a restart; and the
//! county's pages (upload, report, preview, diff, CSRF-protected publish).

mod common;
mod haochaping;

use axum::http::StatusCode;
use bianmin_engine::catalog::{content_hash, Catalog};
use bianmin_protocol::sync::{CatalogManifest, CatalogPartsRequest, CatalogPartsResponse};
use bianmin_town::catalog::{self, Catalogs, SYSTEM};
use bianmin_town::store::{CatalogState, CatalogStoreError, TownStore};
use common::backends::backends;
use common::{send, send_raw, Town, NANGUAN};
use ed25519_dalek::{SigningKey, VerifyingKey};
use haochaping::{form, get};

/// The built-in catalog with a required 残疾证 added to V03.
fn with_disability_card(base: &Catalog) -> Catalog {
    let mut items = base.items().to_vec();
    let v03 = items.iter_mut().find(|i| i.code == "V03").unwrap();
    let g = v03.guide.as_mut().unwrap();
    let mut extra = g.materials[0].clone();
    extra.key = "disability_card".into();
    extra.name = "残疾证".into();
    extra.required = true;
    extra.required_if = None;
    extra.relevant = None;
    extra.per = None;
    extra.per_if = None;
    g.materials.push(extra);
    base.with_items("test", items).unwrap()
}

fn on_its_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // The PostgreSQL client blocks; these tests are plain threads anyway, but keep it explicit.
    std::thread::spawn(f).join().unwrap()
}

#[test]
fn versions_are_drafted_replaced_published_and_audited_on_every_backend() {
    for b in backends() {
        let store = b.store.clone();
        on_its_own_thread(move || check_store(store.as_ref()));
        eprintln!("{}: ok", b.name);
    }
}

fn check_store(store: &dyn TownStore) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let catalogs = Catalogs::open(store, &key).unwrap();
    assert_eq!(store.catalog_head().unwrap(), Some(1));
    let v1 = store.catalog_version(1).unwrap().unwrap();
    assert_eq!(v1.state, CatalogState::Published);
    assert_eq!(v1.published_by.as_deref(), Some(SYSTEM));
    let embedded = Catalog::embedded().unwrap();
    assert_eq!(v1.hash, embedded.hash());
    assert_eq!(catalogs.latest().version, 1);
    // Opening again publishes nothing more.
    Catalogs::open(store, &key).unwrap();
    assert_eq!(store.catalog_versions().unwrap().len(), 1);

    let edited = with_disability_card(&embedded);
    let d = catalog::import_draft(store, &embedded, "same.xlsx", "王科员").unwrap();
    assert_eq!((d.version, d.changes.len()), (2, 0));
    // A second import replaces the draft under the same number.
    let d = catalog::import_draft(store, &edited, "new.xlsx", "王科员").unwrap();
    assert_eq!(d.version, 2);
    assert_eq!(d.changes, vec!["V03 新增材料：残疾证（必交）".to_string()]);
    let all = store.catalog_versions().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].source, "new.xlsx");
    assert_eq!(all[1].state, CatalogState::Draft);
    assert_eq!(store.catalog_head().unwrap(), Some(1));

    // A draft computed against a version that is no longer the newest is refused.
    let stale = store.put_catalog_draft(
        &all[1],
        0,
        bianmin_town::audit::AuditDraft::new("x", "catalog_import", None, ""),
    );
    assert!(
        matches!(stale, Err(CatalogStoreError::Stale { base: 0, found: 1 })),
        "{stale:?}"
    );

    let p = catalog::publish(store, 2, "李科长").unwrap();
    assert_eq!(p.state, CatalogState::Published);
    assert_eq!(p.published_by.as_deref(), Some("李科长"));
    assert_eq!(store.catalog_head().unwrap(), Some(2));
    assert!(matches!(
        catalog::publish(store, 2, "李科长"),
        Err(catalog::CatalogOpError::Store(
            CatalogStoreError::AlreadyPublished(2)
        ))
    ));
    assert!(matches!(
        catalog::discard(store, 2, "x"),
        Err(catalog::CatalogOpError::Store(
            CatalogStoreError::AlreadyPublished(2)
        ))
    ));
    // The server sees it without a restart, and still has version 1.
    catalogs.refresh(store).unwrap();
    assert_eq!(catalogs.latest().version, 2);
    assert_eq!(catalogs.for_case(0).version, 1);
    assert_eq!(catalogs.for_case(1).catalog, embedded);
    let (_, old) = catalog::load(store, 1).unwrap();
    assert_eq!(old, embedded);

    // A later draft can be discarded; the next import takes its number again.
    let d3 = catalog::import_draft(store, &embedded, "back.xlsx", "王科员").unwrap();
    assert_eq!(d3.version, 3);
    catalog::discard(store, 3, "王科员").unwrap();
    assert!(store.catalog_version(3).unwrap().is_none());
    assert!(matches!(
        catalog::discard(store, 3, "王科员"),
        Err(catalog::CatalogOpError::Store(CatalogStoreError::NotFound(
            3
        )))
    ));

    let audit = store.audit_log().unwrap();
    bianmin_town::audit::verify_chain(&audit).unwrap();
    let publish = audit
        .iter()
        .find(|e| e.draft.action == "catalog_publish" && e.draft.actor == "李科长")
        .expect("publishing is audited");
    assert!(
        publish.draft.detail.contains("version 2"),
        "{}",
        publish.draft.detail
    );
    assert!(
        publish.draft.detail.contains("残疾证"),
        "{}",
        publish.draft.detail
    );
    assert!(audit.iter().any(|e| e.draft.action == "catalog_discard"));
}

fn verify(manifest: &CatalogManifest, key: &VerifyingKey) {
    let sig =
        ed25519_dalek::Signature::from_slice(&hex::decode(&manifest.signature).unwrap()).unwrap();
    key.verify_strict(manifest.signing_string().as_bytes(), &sig)
        .expect("the manifest is signed by the server key");
}

#[tokio::test]
async fn devices_get_a_signed_manifest_and_exact_parts_and_see_a_publish_without_a_restart() {
    let town = Town::new();
    let agent = town.agent(NANGUAN).await;
    let r = town.router();
    let key = town.state.server_key.verifying_key();
    let embedded = Catalog::embedded().unwrap();

    let (st, body) = send(&r, agent.get("/v1/catalog")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m1: CatalogManifest = serde_json::from_str(&body).unwrap();
    assert_eq!((m1.version, m1.hash.clone()), (1, embedded.hash()));
    assert_eq!(m1.parts, embedded.part_refs());
    verify(&m1, &key);

    // Unsigned requests are refused like on every device route.
    let (st, _) = send(
        &r,
        axum::http::Request::get("/v1/catalog")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let edited = with_disability_card(&embedded);
    let store = town.state.store.clone();
    let e = edited.clone();
    tokio::task::spawn_blocking(move || {
        let d = catalog::import_draft(store.as_ref(), &e, "t.xlsx", "王科员").unwrap();
        catalog::publish(store.as_ref(), d.version, "李科长").unwrap();
    })
    .await
    .unwrap();

    let (st, body) = send(&r, agent.get("/v1/catalog")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m2: CatalogManifest = serde_json::from_str(&body).unwrap();
    assert_eq!((m2.version, m2.hash.clone()), (2, edited.hash()));
    verify(&m2, &key);
    assert_eq!(m2.changes, vec!["V03 新增材料：残疾证（必交）".to_string()]);
    let changed: Vec<&str> = m2
        .parts
        .iter()
        .zip(&m1.parts)
        .filter(|(a, b)| a.hash != b.hash)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, vec!["item/V03"]);

    // The parts a phone lacks, exactly as `Catalog::parts` cuts them.
    let req = CatalogPartsRequest {
        version: 2,
        names: vec!["item/V03".into(), "lists".into()],
    };
    let (st, body) = send(&r, agent.json("POST", "/v1/catalog/parts", &req)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let got: CatalogPartsResponse = serde_json::from_str(&body).unwrap();
    let want = edited.parts();
    assert_eq!(got.parts.len(), 2);
    for p in &got.parts {
        let w = want.iter().find(|w| w.name == p.name).unwrap();
        assert_eq!(p, w);
        let r = m2.parts.iter().find(|r| r.name == p.name).unwrap();
        assert_eq!(content_hash(p.body.as_bytes()), r.hash);
    }
    // Every part, reassembled, gives the signed hash.
    let all = CatalogPartsRequest {
        version: 2,
        names: m2.parts.iter().map(|p| p.name.clone()).collect(),
    };
    let (_, body) = send(&r, agent.json("POST", "/v1/catalog/parts", &all)).await;
    let got: CatalogPartsResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(
        Catalog::from_parts("t", &got.parts).unwrap().hash(),
        m2.hash
    );

    // Old versions stay readable; unknown versions and parts are 404.
    let (st, body) = send(&r, agent.get("/v1/catalog?version=1")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(serde_json::from_str::<CatalogManifest>(&body).unwrap(), m1);
    let (st, _) = send(&r, agent.get("/v1/catalog?version=9")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let bad = CatalogPartsRequest {
        version: 2,
        names: vec!["item/V99".into()],
    };
    let (st, _) = send(&r, agent.json("POST", "/v1/catalog/parts", &bad)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_case_is_checked_against_the_version_it_names() {
    let town = Town::new();
    let agent = town.agent(NANGUAN).await;
    let r = town.router();
    let id = agent.next_case_id();
    let mut sub = agent.submission(&id, 1, &[]);
    sub.catalog_version = 5;
    let (st, body) = send(&r, agent.json("PUT", &format!("/v1/cases/{id}"), &sub)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("unknown_catalog_version"), "{body}");
    sub.catalog_version = 1;
    let (st, body) = send(&r, agent.json("PUT", &format!("/v1/cases/{id}"), &sub)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
}

fn multipart(
    uri: &str,
    csrf: &str,
    file: &str,
    bytes: &[u8],
    cookie: &str,
) -> axum::http::Request<axum::body::Body> {
    let b = "bianmin-test-boundary";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    axum::http::Request::post(uri)
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .header("cookie", cookie)
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_county_uploads_previews_compares_and_publishes_a_spreadsheet() {
    let town = Town::new();
    let r = town.router();
    let password =
        bianmin_town::oversight::supervisor_add(town.state.admin.as_ref(), "张科长").unwrap();
    let resp = send_raw(
        &r,
        form(
            "/county/login",
            &[("name", "张科长"), ("password", &password)],
            None,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = bianmin_town::feedback::csrf_token(cookie.split_once('=').unwrap().1);

    // Not logged in: to the login page.
    let resp = send_raw(&r, get("/county/catalog", None)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (st, body) = send(&r, get("/county/catalog", Some(&cookie))).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("第1版") && body.contains("已发布"), "{body}");

    // The published version as a spreadsheet to edit.
    let embedded = Catalog::embedded().unwrap();
    let resp = send_raw(&r, get("/county/catalog/1/catalog.xlsx", Some(&cookie))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        bianmin_sheet::import_bytes("v1.xlsx", &bytes).unwrap(),
        embedded
    );
    assert_eq!(
        send_raw(&r, get("/county/catalog/1/catalog.xlsx", None))
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    // A broken spreadsheet: the report names every problem; nothing is stored.
    let (st, body) = send(
        &r,
        multipart(
            "/county/catalog/upload",
            &csrf,
            "坏表.xlsx",
            b"not a workbook",
            &cookie,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("表格检查未通过") && body.contains("坏表.xlsx"),
        "{body}"
    );
    // A wrong CSRF token: refused.
    let good = bianmin_sheet::export_bytes(&with_disability_card(&embedded)).unwrap();
    let (st, _) = send(
        &r,
        multipart(
            "/county/catalog/upload",
            "forged",
            "v03.xlsx",
            &good,
            &cookie,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(town.state.store.catalog_versions().unwrap().len(), 1);

    let resp = send_raw(
        &r,
        multipart("/county/catalog/upload", &csrf, "v03.xlsx", &good, &cookie),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/county/catalog/2");
    let (st, body) = send(&r, get("/county/catalog/2", Some(&cookie))).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("草稿") && body.contains("与已发布的第1版相比"),
        "{body}"
    );
    assert!(body.contains("V03 新增材料：残疾证（必交）"), "{body}");
    assert!(body.contains("/county/catalog/2/publish"), "{body}");

    // The item as the phone shows it: conditions, materials with their photos, fields, sample text.
    let (st, body) = send(&r, get("/county/catalog/2/items/V03", Some(&cookie))).await;
    assert_eq!(st, StatusCode::OK);
    for want in ["申请条件", "残疾证", "正面", "填写项", "申请材料"] {
        assert!(body.contains(want), "{want} missing: {body}");
    }
    let with_members = embedded
        .items()
        .iter()
        .find(|i| {
            i.guide
                .as_ref()
                .is_some_and(|g| g.materials.iter().any(|m| m.per.is_some()))
        })
        .unwrap();
    let (_, body) = send(
        &r,
        get(
            &format!("/county/catalog/2/items/{}", with_members.code),
            Some(&cookie),
        ),
    )
    .await;
    assert!(body.contains("中每人各一套"), "{body}");

    // Publishing needs the session's CSRF token; then it is served at once.
    let (st, _) = send(
        &r,
        form(
            "/county/catalog/2/publish",
            &[("csrf", "forged")],
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(town.state.catalogs.latest().version, 1);
    let resp = send_raw(
        &r,
        form(
            "/county/catalog/2/publish",
            &[("csrf", &csrf)],
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(town.state.catalogs.latest().version, 2);
    let v2 = town.state.store.catalog_version(2).unwrap().unwrap();
    assert_eq!(v2.published_by.as_deref(), Some("supervisor:张科长"));
    let audit = town.state.store.audit_log().unwrap();
    assert!(audit.iter().any(|e| e.draft.action == "catalog_publish"
        && e.draft.actor == "supervisor:张科长"
        && e.draft.detail.contains("残疾证")));
    let (_, body) = send(&r, get("/county/catalog/2", Some(&cookie))).await;
    assert!(
        body.contains("已发布") && !body.contains("/county/catalog/2/publish"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_sync_client_installs_a_published_version_from_a_real_server() {
    use bianmin_engine::outbox::{MemoryKeyStore, Outbox};
    use bianmin_engine::sync::{pull_catalog, SyncEvent};
    use bianmin_engine::transport::{Credential, Transport};

    let town = Town::new();
    let addr = town.serve().await;
    let agent = town.agent(NANGUAN).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path(), &MemoryKeyStore([3; 32])).unwrap();
    let t = Transport::new(
        &format!("http://{addr}"),
        Some(Credential {
            device_id: agent.id.clone(),
            key: agent.key.clone(),
        }),
    )
    .unwrap();
    let key = town.state.server_key.verifying_key();
    let events = std::sync::Mutex::new(Vec::new());
    let record = |e: SyncEvent| events.lock().unwrap().push(e);

    // Version 1 is the catalog the phone shipped with: nothing to fetch but the manifest.
    assert_eq!(
        pull_catalog(&outbox, &t, Some(&key), &record)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        pull_catalog(&outbox, &t, Some(&key), &record)
            .await
            .unwrap(),
        None
    );

    let embedded = Catalog::embedded().unwrap();
    let edited = with_disability_card(&embedded);
    let store = town.state.store.clone();
    tokio::task::spawn_blocking(move || {
        let d = catalog::import_draft(store.as_ref(), &edited, "t.xlsx", "王科员").unwrap();
        catalog::publish(store.as_ref(), d.version, "李科长").unwrap();
    })
    .await
    .unwrap();
    assert_eq!(
        pull_catalog(&outbox, &t, Some(&key), &record)
            .await
            .unwrap(),
        Some(2)
    );
    let v2 = outbox.catalog_for(2).unwrap();
    let v03 = v2.item("V03").unwrap().guide.as_ref().unwrap();
    assert!(v03
        .materials
        .iter()
        .any(|m| m.name == "残疾证" && m.required));
    assert_eq!(outbox.catalog_for(1).unwrap(), embedded);
    let updates: Vec<(u32, Vec<String>)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SyncEvent::CatalogUpdated { version, changes } => Some((*version, changes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        updates.last().unwrap(),
        &(2, vec!["V03 新增材料：残疾证（必交）".to_string()])
    );
}

/// What a hostile server (or a proxy on the way) does to a published version.
#[derive(Clone, Copy, PartialEq)]
enum Tamper {
    /// One item's body changed after signing.
    PartBody,
    /// A higher version number claimed with the real hash and signature.
    Version,
    /// Signed with another key.
    ForeignKey,
}

/// A server that answers `/v1/catalog` and `/v1/catalog/parts` from `catalog` (version 2), altered as
/// `tamper` says; devices' request signatures are not checked, as an impostor would not.
async fn hostile_server(catalog: Catalog, key: SigningKey, tamper: Tamper) -> std::net::SocketAddr {
    use axum::routing::{get, post};
    use ed25519_dalek::Signer;
    let mut manifest = CatalogManifest {
        version: 2,
        hash: catalog.hash(),
        signature: String::new(),
        published_at: chrono::Utc::now(),
        changes: vec!["V03 新增材料：残疾证（必交）".into()],
        parts: catalog.part_refs(),
    };
    let signer = if tamper == Tamper::ForeignKey {
        SigningKey::from_bytes(&[42; 32])
    } else {
        key
    };
    manifest.signature = hex::encode(signer.sign(manifest.signing_string().as_bytes()).to_bytes());
    if tamper == Tamper::Version {
        manifest.version = 3;
    }
    let mut parts = catalog.parts();
    if tamper == Tamper::PartBody {
        let v03 = parts.iter_mut().find(|p| p.name == "item/V03").unwrap();
        v03.body = v03.body.replace("残疾证", "残疾人证明");
    }
    let router = axum::Router::new()
        .route(
            "/v1/catalog",
            get(move || {
                let m = manifest.clone();
                async move { axum::Json(m) }
            }),
        )
        .route(
            "/v1/catalog/parts",
            post(move |axum::Json(req): axum::Json<CatalogPartsRequest>| {
                let parts = parts.clone();
                async move {
                    axum::Json(CatalogPartsResponse {
                        parts: parts
                            .into_iter()
                            .filter(|p| req.names.contains(&p.name))
                            .collect(),
                    })
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_refuses_a_catalog_altered_after_signing_and_keeps_its_own() {
    use bianmin_engine::outbox::{MemoryKeyStore, Outbox};
    use bianmin_engine::sync::{pull_catalog, SyncError};
    use bianmin_engine::transport::{Credential, Transport};

    let town = Town::new();
    let server_key = town.state.server_key.clone();
    let trusted = server_key.verifying_key();
    let edited = with_disability_card(&Catalog::embedded().unwrap());
    for tamper in [Tamper::PartBody, Tamper::Version, Tamper::ForeignKey] {
        let addr = hostile_server(edited.clone(), server_key.clone(), tamper).await;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), &MemoryKeyStore([5; 32])).unwrap();
        let t = Transport::new(
            &format!("http://{addr}"),
            Some(Credential {
                device_id: "ABC234".into(),
                key: SigningKey::from_bytes(&[6; 32]),
            }),
        )
        .unwrap();
        let err = pull_catalog(&outbox, &t, Some(&trusted), &|_| {})
            .await
            .expect_err("an altered catalog must be refused");
        assert!(matches!(err, SyncError::BadCatalog { .. }), "{err}");
        assert!(!err.user_message().is_empty());
        assert!(
            outbox.catalog_versions().unwrap().is_empty(),
            "nothing installed"
        );
        assert_eq!(
            outbox.current_catalog().unwrap().0,
            0,
            "the phone keeps its catalog"
        );
    }
}
