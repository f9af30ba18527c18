//! The Bianmin town centre (镇综合便民服务中心): receives cases from village devices, lets town staff
//! process them, and feeds decisions back to the villages. See `docs/protocol.md`.
//!
//! `app(state)` builds the whole HTTP API; `main.rs` only parses the command line.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod bad_review_desk;
pub mod bucket;
pub mod case_sheet;
pub mod catalog;
pub mod clock;
pub mod county_catalog;
pub mod county_inbox;
pub mod county_status;
pub mod digest;
pub mod divisions;
pub mod edge;
pub mod error;
pub mod feedback;
pub mod files;
pub mod metrics;
pub mod notice_pdf;
pub mod notify;
pub mod objects;
pub mod oversight;
pub mod page;
pub mod printers;
pub mod ratelimit;
pub mod rectification_photos;
pub mod resident;
pub mod resident_link;
pub mod roster;
pub mod routes;
pub mod segments;
pub mod server;
pub mod staff;
pub mod store;
pub mod time;
pub mod tls;
pub mod uploads;
pub mod warning_signs;
pub mod window;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::routing::{get, head, post, put};
use axum::Router;
use bianmin_engine::deadline::WorkCalendar;
use ed25519_dalek::SigningKey;
use thiserror::Error;

pub use crate::divisions::Divisions;
pub use crate::error::ApiError;
pub use crate::files::Files;
pub use crate::store::{AdminStore, SledStore, TownStore};

/// Limits on what clients may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON body (a case submission lists pages, it carries no photos).
    pub json_body: usize,
    /// Largest single attachment.
    pub attachment: u64,
    /// Longest wait for the next piece of an upload's body: a connection silent for longer is
    /// treated as broken (the bytes received so far are kept and the page's slot is freed).
    pub upload_frame: std::time::Duration,
    /// Longest time one upload request may take, however slowly its bytes trickle in.
    pub upload_request: std::time::Duration,
    /// Largest body of a public form (resident rating, county login and steps) or enrolment:
    /// a few short fields; the rating's comment is the longest at 500 characters.
    pub public_form: usize,
    /// Longest pause allowed between two frames of a request body.
    pub body_idle: std::time::Duration,
    /// Unfinished uploads one device may hold at once. A phone uploads pages one after another
    /// and resumes the one it broke off, so it holds one or two; the limit stops a device from
    /// leaving dozens of 32 MiB partials behind.
    pub open_uploads_per_device: usize,
    /// An unfinished upload untouched this long is removed (the phone restarts that page at 0).
    pub upload_max_age: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            json_body: 1024 * 1024,
            attachment: 32 * 1024 * 1024,
            // A phone chunk is at most 1 MiB; 2G at 10 KB/s sends it in under two minutes.
            upload_frame: std::time::Duration::from_secs(30),
            upload_request: std::time::Duration::from_secs(300),
            public_form: 16 * 1024,
            body_idle: std::time::Duration::from_secs(30),
            open_uploads_per_device: 8,
            // A village phone may be out of signal for days; a week keeps its progress.
            upload_max_age: std::time::Duration::from_secs(7 * 86_400),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Divisions(#[from] divisions::DivisionsError),
    #[error("catalog: {0}")]
    Catalog(#[from] bianmin_engine::catalog::CatalogError),
    #[error(transparent)]
    Feedback(#[from] feedback::FeedbackConfigError),
    #[error(transparent)]
    Clock(#[from] clock::ClockConfigError),
    #[error("catalog versions: {0}")]
    Catalogs(#[from] catalog::CatalogOpError),
    #[error(transparent)]
    Printers(#[from] printers::PrintersError),
}

/// Per-key async locks: one upload per attachment, one writer per case.
#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            // Forget idle locks so the map does not grow with every case ever seen.
            if map.len() > 4096 {
                map.retain(|_, v| Arc::strong_count(v) > 1);
            }
            map.entry(key.to_string()).or_default().clone()
        };
        m.lock_owned().await
    }
}

/// Everything the handlers share.
pub struct Inner {
    pub store: Arc<dyn TownStore>,
    /// Tickets, revocations, supervisor accounts, the server key.
    pub admin: Arc<dyn AdminStore>,
    pub files: Files,
    /// What the administration commands present to this server (`Files::admin_token`).
    pub admin_token: String,
    /// Where attachment bytes live (the data directory, or an S3-compatible store).
    pub objects: objects::Objects,
    /// The published catalog versions this server has seen (the newest is the current one).
    pub catalogs: catalog::Catalogs,
    pub server_key: SigningKey,
    /// Nonces of verified requests, kept in the store so a restart does not forget them.
    pub nonces: auth::NonceCache,
    /// Failed enrolment codes per client address (`ratelimit::enrolment`); `configure` it in tests.
    pub enrol_limiter: ratelimit::Limiter,
    /// Requests to the public pages per client address (`ratelimit::public`).
    pub public_limiter: ratelimit::Limiter,
    pub locks: KeyedLocks,
    /// One writer per partial upload; a newer attempt preempts a silent one.
    pub uploads: uploads::Writers,
    pub limits: Limits,
    /// 好差评 settings (the loop's deadline).
    pub feedback: feedback::Feedback,
    /// Clock settings (when a case waiting in 已接收 is flagged).
    pub clock: clock::ClockSettings,
    /// Each town's print command for printed notices (`DATA/printers.toml`).
    pub printers: printers::Printers,
}

/// Shared state of the API.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The working-day calendar of the newest published holiday table (a new year's 放假安排
    /// arrives as a catalog version, without a release).
    pub fn calendar(&self) -> WorkCalendar {
        self.catalogs.latest().catalog.calendar()
    }

    /// The name of item `code` in the catalog version a case was made under (`None` when that
    /// version has no such item).
    pub fn item_name(&self, catalog_version: u32, code: &str) -> Option<String> {
        self.catalogs
            .for_case(catalog_version)
            .catalog
            .item(code)
            .map(|i| i.name.clone())
    }

    /// The administrative tree of the newest published version (a service point opens by
    /// publishing, without a release).
    pub fn divisions(&self) -> Arc<Divisions> {
        self.catalogs.latest().divisions.clone()
    }

    /// Opens the data directory with the embedded sled store.
    pub fn open(data: &Path) -> Result<AppState, StartError> {
        bianmin_engine::outbox::disk::create_dir_durable(data)?;
        let store = Arc::new(SledStore::open(&data.join("db"))?);
        AppState::with_store(data, store)
    }

    /// Uses the given store with the data directory's administration files (a sled store a
    /// test keeps a handle on).
    pub fn with_store(data: &Path, store: Arc<dyn TownStore>) -> Result<AppState, StartError> {
        let admin = Arc::new(store::FileAdmin::new(data));
        AppState::with_stores(data, store, admin)
    }

    /// Uses the given stores (PostgreSQL implements both; the embedded backend is sled plus
    /// the data directory's files). `data` still holds the attachments and configuration.
    pub fn with_stores(
        data: &Path,
        store: Arc<dyn TownStore>,
        admin: Arc<dyn AdminStore>,
    ) -> Result<AppState, StartError> {
        let files = Files::new(data)?;
        let nonces = auth::NonceCache::new(store.clone());
        let server_key = admin.server_key()?;
        Ok(AppState(Arc::new(Inner {
            catalogs: catalog::Catalogs::open_in(
                store.as_ref(),
                &server_key,
                divisions::for_data_dir(data)?,
                Some(data.to_path_buf()),
            )?,
            server_key,
            store,
            admin,
            nonces,
            enrol_limiter: ratelimit::Limiter::new(
                store::BucketKind::Enrolment,
                ratelimit::RateConfig::ENROLMENT,
            ),
            public_limiter: ratelimit::Limiter::new(
                store::BucketKind::Public,
                ratelimit::RateConfig::default(),
            ),
            locks: KeyedLocks::default(),
            uploads: uploads::Writers::default(),
            limits: Limits::default(),
            objects: objects::Objects::local(files.clone()),
            admin_token: files.admin_token()?,
            feedback: feedback::Feedback::open(data)?,
            clock: clock::ClockSettings::open(data)?,
            printers: printers::Printers::open(data)?,
            files,
        })))
    }

    /// Keeps attachment bytes in `objects` instead of the data directory.
    pub fn with_objects(self, objects: objects::Objects) -> AppState {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_objects before the state is shared"));
        AppState(Arc::new(Inner { objects, ..inner }))
    }

    /// Uses these print commands instead of the data directory's `printers.toml`.
    pub fn with_printers(self, printers: printers::Printers) -> AppState {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_printers before the state is shared"));
        AppState(Arc::new(Inner { printers, ..inner }))
    }

    /// Changes the limits (tests of the limits).
    pub fn with_limits(self, limits: Limits) -> AppState {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_limits before the state is shared"));
        AppState(Arc::new(Inner { limits, ..inner }))
    }
}

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let authed = Router::new()
        .route("/v1/me", get(routes::me))
        .route(
            "/v1/cases/{id}",
            put(routes::submit_case).get(routes::get_case),
        )
        .route("/v1/cases/{id}/actions", post(routes::act))
        .route(
            "/v1/cases/{id}/attachments/{sha}",
            get(routes::get_attachment),
        )
        .route(
            "/v1/attachments/{sha}",
            head(routes::upload_offset).patch(routes::upload_chunk),
        )
        .route("/v1/inbox", get(routes::inbox))
        .route("/v1/inbox/page", get(routes::inbox_page))
        .route("/v1/changes", get(routes::changes))
        .route("/v1/catalog", get(catalog::manifest))
        .route("/v1/catalog/parts", post(catalog::parts))
        .merge(staff::routes())
        .merge(window::routes())
        .merge(clock::device_routes())
        .merge(county_status::device_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let enrol = Router::new()
        .route("/v1/enrol", post(routes::enrol))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::enrolment,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.public_form,
        ));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/admin/backup", get(backup::serve))
        .merge(enrol)
        .merge(authed)
        .merge(oversight::routes(state.clone()))
        .merge(county_inbox::routes(&state))
        .merge(bad_review_desk::routes(state.clone()))
        .merge(notice_pdf::routes(state.clone()))
        .merge(case_sheet::routes(state.clone()))
        .merge(clock::county_routes(&state))
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::edge,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}
