//! Shared helpers of the town tests: a town in a temp dir, enrolled devices, signed requests, sample cases.
#![allow(dead_code)]

pub mod backends;
pub mod outbox;
pub mod proxy;
pub mod s3;
pub mod sync;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use bianmin_engine::number::device_code_from;
use bianmin_protocol::sync::{
    signing_string, DeviceRole, EnrolRequest, SignedParts, H_CONTENT_SHA256, H_DEVICE, H_NONCE,
    H_SIGNATURE, H_TIMESTAMP, H_UPLOAD_LENGTH, H_UPLOAD_OFFSET, UNSIGNED_PAYLOAD,
};
use bianmin_protocol::{AgentRef, Applicant, AttachmentRef, CaseSubmission, MaterialPages};
use bianmin_town::files::{sha256_hex, Ticket};
use bianmin_town::{app, AppState, SledStore};
use ed25519_dalek::{Signer, SigningKey};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const NANGUAN: &str = "140423100201";
pub const GUHAN: &str = "140423100";
pub const SHANFU_VILLAGE: &str = "140423108201";
pub const SHANFU: &str = "140423108";
pub const WANGQIAO_VILLAGE: &str = "140423101201";

/// Starts the real `bianmin-town` binary serving `data` on 127.0.0.1:0 (plus `extra` arguments) and
/// returns it with the URL it prints alone on its first stdout line.
pub fn serve_binary(data: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    serve_binary_env(data, extra, &[])
}

/// As `serve_binary`, with extra environment variables (`AWS_*` for an object store).
pub fn serve_binary_env(
    data: &std::path::Path,
    extra: &[&str],
    env: &[(String, String)],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

pub struct Town {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub store: Arc<SledStore>,
}

impl Town {
    pub fn new() -> Town {
        Town::with_limits(bianmin_town::Limits::default())
    }

    /// A town whose limits (body sizes, upload time bounds) are set by the test.
    pub fn with_limits(limits: bianmin_town::Limits) -> Town {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
        let state = AppState::with_store(dir.path(), store.clone())
            .unwrap()
            .with_limits(limits);
        Town { dir, state, store }
    }

    /// The same town keeping attachment bytes in `objects`.
    pub fn with_objects(self, objects: bianmin_town::objects::Objects) -> Town {
        let Town { dir, state, store } = self;
        Town {
            dir,
            state: state.with_objects(objects),
            store,
        }
    }

    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Serves the town on 127.0.0.1:0 in this process; the address it listens on.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    pub fn code(&self, role: DeviceRole, village: Option<&str>, town: &str) -> String {
        self.state
            .admin
            .issue_ticket(&Ticket {
                role,
                village: village.map(str::to_string),
                town: town.to_string(),
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
            })
            .unwrap()
    }

    pub async fn enrol(&self, role: DeviceRole, village: Option<&str>, town: &str) -> Device {
        let code = self.code(role, village, town);
        let dev = Device::fresh(village.unwrap_or(""));
        let req = EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: "测试".into(),
        };
        let (st, body) = send(&self.router(), post_json("/v1/enrol", &req)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        dev
    }

    pub async fn agent(&self, village: &str) -> Device {
        let town = &village[..9];
        self.enrol(DeviceRole::Agent, Some(village), town).await
    }

    pub async fn staff(&self, town: &str) -> Device {
        self.enrol(DeviceRole::Staff, None, town).await
    }
}

#[derive(Clone)]
pub struct Device {
    pub id: String,
    pub key: SigningKey,
    pub village: String,
    seq: Arc<std::sync::atomic::AtomicU32>,
}

impl Device {
    pub fn fresh(village: &str) -> Device {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let id = device_code_from(rand::random());
        Device {
            id,
            key,
            village: village.to_string(),
            seq: Arc::new(0.into()),
        }
    }

    pub fn next_case_id(&self) -> String {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        format!("{}-20261128-{}-{:04}", self.village, self.id, n)
    }

    /// A signed request; `body` is signed by hash unless `unsigned` (attachment chunks).
    pub fn request(
        &self,
        method: &str,
        pq: &str,
        body: Vec<u8>,
        upload: Option<(u64, u64)>,
    ) -> Request<Body> {
        self.request_at(
            method,
            pq,
            body,
            upload,
            chrono::Utc::now().timestamp(),
            &hex::encode(rand::random::<[u8; 16]>()),
        )
    }

    pub fn request_at(
        &self,
        method: &str,
        pq: &str,
        body: Vec<u8>,
        upload: Option<(u64, u64)>,
        ts: i64,
        nonce: &str,
    ) -> Request<Body> {
        let hash = if upload.is_some() {
            UNSIGNED_PAYLOAD.to_string()
        } else {
            sha256_hex(&body)
        };
        let (o, l) = upload
            .map(|(o, l)| (o.to_string(), l.to_string()))
            .unwrap_or_default();
        let msg = signing_string(&SignedParts {
            method,
            path_and_query: pq,
            timestamp: ts,
            nonce,
            content_sha256: &hash,
            upload_offset: &o,
            upload_length: &l,
        });
        let sig = hex::encode(self.key.sign(msg.as_bytes()).to_bytes());
        let mut b = Request::builder()
            .method(method)
            .uri(pq)
            .header(H_DEVICE, &self.id)
            .header(H_TIMESTAMP, ts.to_string())
            .header(H_NONCE, nonce)
            .header(H_CONTENT_SHA256, hash)
            .header(H_SIGNATURE, sig);
        if upload.is_some() {
            b = b.header(H_UPLOAD_OFFSET, o).header(H_UPLOAD_LENGTH, l);
        }
        b.body(Body::from(body)).unwrap()
    }

    pub fn json<T: serde::Serialize>(&self, method: &str, pq: &str, v: &T) -> Request<Body> {
        self.request(method, pq, serde_json::to_vec(v).unwrap(), None)
    }

    pub fn get(&self, pq: &str) -> Request<Body> {
        self.request("GET", pq, Vec::new(), None)
    }

    /// Uploads a whole attachment in one PATCH.
    pub async fn upload(&self, r: &Router, data: &[u8]) -> String {
        let sha = sha256_hex(data);
        let (st, body) = send(
            r,
            self.request(
                "PATCH",
                &format!("/v1/attachments/{sha}"),
                data.to_vec(),
                Some((0, data.len() as u64)),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        sha
    }

    /// A valid V01 submission with one attachment per page given.
    pub fn submission(&self, id: &str, version: u32, pages: &[&[u8]]) -> CaseSubmission {
        CaseSubmission {
            id: id.to_string(),
            version,
            item: "V01".into(),
            village: self.village.clone(),
            applicant: Applicant {
                name: "张三".into(),
                id_number: "14042319800101001X".into(),
                phone: "13800138000".into(),
                address: String::new(),
            },
            answers: Default::default(),
            catalog_version: 0,
            materials: vec![MaterialPages {
                key: "id_card".into(),
                pages: pages
                    .iter()
                    .enumerate()
                    .map(|(i, p)| AttachmentRef {
                        name: format!("page-{i}.jpg"),
                        sha256: sha256_hex(p),
                        bytes: p.len() as u64,
                        mime: "image/jpeg".into(),
                    })
                    .collect(),
            }],
            responsible: AgentRef {
                device_id: self.id.clone(),
                name: "李代办".into(),
                village: self.village.clone(),
            },
            sealed_at: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
        }
    }
}

pub fn post_json<T: serde::Serialize>(uri: &str, v: &T) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

pub async fn send_raw(r: &Router, req: Request<Body>) -> Response<Body> {
    r.clone().oneshot(req).await.unwrap()
}

/// Sends and returns the status with the body as text.
pub async fn send(r: &Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = send_raw(r, req).await;
    let st = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (st, String::from_utf8_lossy(&bytes).to_string())
}

/// A page of pseudo-random bytes, different per seed.
pub fn page(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
