//! The living catalog on the town: versions imported as drafts, published (audited) and delivered
//! to the phones as a signed manifest and content-addressed parts.
//!
//! The store holds every version ([`TownStore::catalog_versions`]); this module keeps the
//! published ones a server has seen in memory, parsed and with their manifest signed, because
//! every sync of every phone asks for the manifest and every inbox row names an item. A version
//! published by another server or by the CLI is noticed on the next manifest request (the store's
//! head is one cheap query) or when a case names a version this server has not seen yet.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::Json;
use bianmin_engine::catalog::{changes, Catalog, CatalogError};
use bianmin_protocol::sync::{
    CatalogManifest, CatalogPart, CatalogPartsRequest, CatalogPartsResponse,
};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serde::Deserialize;
use thiserror::Error;

use crate::audit::AuditDraft;
use crate::divisions::{self, Divisions};
use crate::error::{blocking, ApiError};
use crate::store::{CatalogState, CatalogStoreError, CatalogVersion, StoreError, TownStore};
use crate::AppState;

/// Who publishes the built-in catalog as version 1 on a town's first start.
pub const SYSTEM: &str = "system";

/// One published version, ready to serve.
#[derive(Debug)]
pub struct Published {
    pub version: u32,
    pub catalog: Catalog,
    /// Signed by this server's key.
    pub manifest: CatalogManifest,
    /// Part name → body, exactly as [`Catalog::parts`] cuts them.
    parts: BTreeMap<String, String>,
    /// The version's administrative tree, or the town's own when the version carries none.
    pub divisions: Arc<Divisions>,
}

impl Published {
    fn load(
        v: &CatalogVersion,
        key: &SigningKey,
        local: &Arc<Divisions>,
    ) -> Result<Published, CatalogOpError> {
        let catalog = Catalog::from_json(&format!("catalog version {}", v.version), &v.json)?;
        if catalog.hash() != v.hash {
            return Err(StoreError::Corrupt(format!(
                "catalog version {} does not match its stored hash",
                v.version
            ))
            .into());
        }
        let published_at = v.published_at.unwrap_or(v.created_at);
        let mut manifest = CatalogManifest {
            version: v.version,
            hash: v.hash.clone(),
            signature: String::new(),
            published_at,
            changes: v.changes.clone(),
            parts: catalog.part_refs(),
        };
        manifest.signature = hex::encode(key.sign(manifest.signing_string().as_bytes()).to_bytes());
        let parts = catalog
            .parts()
            .into_iter()
            .map(|p| (p.name, p.body))
            .collect();
        let divisions = match catalog.divisions() {
            Some(d) => Arc::new(d.clone()),
            None => local.clone(),
        };
        Ok(Published {
            version: v.version,
            catalog,
            manifest,
            parts,
            divisions,
        })
    }
}

/// Why a catalog operation failed.
#[derive(Debug, Error)]
pub enum CatalogOpError {
    /// The catalog itself does not validate (an import, or a stored version that no longer does).
    #[error(transparent)]
    Invalid(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] CatalogStoreError),
    /// Writing a version as a spreadsheet failed.
    #[error(transparent)]
    Sheet(#[from] bianmin_sheet::SheetError),
}

impl From<StoreError> for CatalogOpError {
    fn from(e: StoreError) -> CatalogOpError {
        CatalogOpError::Store(CatalogStoreError::Store(e))
    }
}

/// The published versions this server has seen.
pub struct Catalogs {
    known: RwLock<BTreeMap<u32, Arc<Published>>>,
    key: SigningKey,
    /// The town's own tree (`DATA/divisions.toml` or the shipped one), for versions without one.
    local: Arc<Divisions>,
    /// The data directory to mirror the newest tree into, for the administration commands.
    mirror: Option<std::path::PathBuf>,
}

impl Catalogs {
    /// Loads every published version, publishing the built-in catalog as version 1 first when the
    /// town has none yet.
    pub fn open(store: &dyn TownStore, key: &SigningKey) -> Result<Catalogs, CatalogOpError> {
        Catalogs::open_in(store, key, divisions::embedded(), None)
    }

    /// [`Catalogs::open`] for a town whose own tree is `local` (its version 1 carries it), mirroring
    /// the newest published tree into the data directory `mirror`.
    pub fn open_in(
        store: &dyn TownStore,
        key: &SigningKey,
        local: Divisions,
        mirror: Option<std::path::PathBuf>,
    ) -> Result<Catalogs, CatalogOpError> {
        ensure_first_with(store, &local)?;
        let catalogs = Catalogs {
            known: RwLock::default(),
            key: key.clone(),
            local: Arc::new(local),
            mirror,
        };
        catalogs.refresh(store)?;
        Ok(catalogs)
    }

    /// Loads the published versions newer than the newest this server has seen.
    pub fn refresh(&self, store: &dyn TownStore) -> Result<(), CatalogOpError> {
        let known = self.latest_version();
        let Some(head) = store.catalog_head()? else {
            return Ok(());
        };
        let mut added = false;
        for n in known + 1..=head {
            if let Some(v) = store.catalog_version(n)? {
                if v.state == CatalogState::Published {
                    let p = Arc::new(Published::load(&v, &self.key, &self.local)?);
                    self.write().insert(n, p);
                    added = true;
                }
            }
        }
        if let (true, Some(dir)) = (added, &self.mirror) {
            // The mirror only spares the commands a stale tree; serving goes on without it.
            if let Err(e) = divisions::write_mirror(dir, &self.latest().divisions) {
                tracing::warn!(error = %e, "cannot mirror the published divisions into the data directory");
            }
        }
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, Arc<Published>>> {
        self.known.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<Published>>> {
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }

    fn latest_version(&self) -> u32 {
        self.read().keys().next_back().copied().unwrap_or(0)
    }

    /// The newest published version: what new cases are made with and what the pages show.
    pub fn latest(&self) -> Arc<Published> {
        self.read()
            .values()
            .next_back()
            .cloned()
            .expect("version 1 is published when the catalogs open")
    }

    /// A published version, if this server has seen it.
    pub fn get(&self, version: u32) -> Option<Arc<Published>> {
        self.read().get(&version).cloned()
    }

    /// The definition a case was made with: its `catalog_version` (0, a case from before
    /// versioning, reads as 1); the newest when this server has not seen that version.
    pub fn for_case(&self, catalog_version: u32) -> Arc<Published> {
        self.get(catalog_version.max(1))
            .unwrap_or_else(|| self.latest())
    }
}

/// Publishes the built-in catalog as version 1 when the town has no published version. Two
/// servers starting at once on one database both try; the loser finds it done.
pub fn ensure_first(store: &dyn TownStore) -> Result<(), CatalogOpError> {
    ensure_first_with(store, &divisions::embedded())
}

/// [`ensure_first`] for a town whose own administrative tree is `local`.
pub fn ensure_first_with(store: &dyn TownStore, local: &Divisions) -> Result<(), CatalogOpError> {
    if store.catalog_head()?.is_some() {
        return Ok(());
    }
    let catalog = Catalog::embedded()?.with_divisions("divisions.toml", Some(local.clone()))?;
    let draft = new_draft(&catalog, "embedded", SYSTEM, vec![]);
    let audit = AuditDraft::new(SYSTEM, "catalog_import", None, import_detail(&draft));
    match store.put_catalog_draft(&draft, 0, audit) {
        Ok(n) => {
            match store.publish_catalog(n, SYSTEM, Utc::now(), publish_audit(SYSTEM, &draft, n)) {
                Ok(_) => Ok(()),
                Err(CatalogStoreError::AlreadyPublished(_)) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(CatalogStoreError::Stale { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn new_draft(catalog: &Catalog, source: &str, by: &str, changes: Vec<String>) -> CatalogVersion {
    CatalogVersion {
        version: 0,
        state: CatalogState::Draft,
        hash: catalog.hash(),
        json: catalog.to_json(),
        source: source.to_string(),
        created_by: by.to_string(),
        created_at: Utc::now(),
        published_by: None,
        published_at: None,
        changes,
    }
}

fn import_detail(v: &CatalogVersion) -> String {
    format!(
        "from {} sha256 {}; {} changes",
        v.source,
        v.hash,
        v.changes.len()
    )
}

fn publish_audit(by: &str, v: &CatalogVersion, version: u32) -> AuditDraft {
    AuditDraft::new(
        by,
        "catalog_publish",
        None,
        format!(
            "version {version} sha256 {}; {} changes: {}",
            v.hash,
            v.changes.len(),
            v.changes.join("; ")
        ),
    )
}

/// The published version a draft is compared with, and its catalog.
pub fn head_catalog(store: &dyn TownStore) -> Result<Option<(u32, Catalog)>, CatalogOpError> {
    let Some(head) = store.catalog_head()? else {
        return Ok(None);
    };
    let v = store
        .catalog_version(head)?
        .ok_or(CatalogStoreError::NotFound(head))?;
    Ok(Some((
        head,
        Catalog::from_json(&format!("catalog version {head}"), &v.json)?,
    )))
}

/// Stores `catalog` (validated by its constructor) as the draft, with its changes against the
/// newest published version; audited. Replaces an earlier draft.
pub fn import_draft(
    store: &dyn TownStore,
    catalog: &Catalog,
    source: &str,
    by: &str,
) -> Result<CatalogVersion, CatalogOpError> {
    ensure_first(store)?;
    let (base, old) = head_catalog(store)?.ok_or(CatalogStoreError::NotFound(1))?;
    let lines = changes(&old, catalog)
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut draft = new_draft(catalog, source, by, lines);
    let audit = AuditDraft::new(by, "catalog_import", None, import_detail(&draft));
    draft.version = store.put_catalog_draft(&draft, base, audit)?;
    Ok(draft)
}

/// Publishes the draft `version`; audited with its changes.
pub fn publish(
    store: &dyn TownStore,
    version: u32,
    by: &str,
) -> Result<CatalogVersion, CatalogOpError> {
    let v = store
        .catalog_version(version)?
        .ok_or(CatalogStoreError::NotFound(version))?;
    let audit = publish_audit(by, &v, version);
    Ok(store.publish_catalog(version, by, Utc::now(), audit)?)
}

/// Removes the draft `version`; audited.
pub fn discard(store: &dyn TownStore, version: u32, by: &str) -> Result<(), CatalogOpError> {
    let audit = AuditDraft::new(by, "catalog_discard", None, format!("version {version}"));
    Ok(store.discard_catalog_draft(version, audit)?)
}

/// A stored version (draft or published) as a catalog, for export and preview.
pub fn load(
    store: &dyn TownStore,
    version: u32,
) -> Result<(CatalogVersion, Catalog), CatalogOpError> {
    let v = store
        .catalog_version(version)?
        .ok_or(CatalogStoreError::NotFound(version))?;
    let c = Catalog::from_json(&format!("catalog version {version}"), &v.json)?;
    Ok((v, c))
}

/// A version's summary for listings (`catalog versions --json`, the county page).
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionSummary {
    pub version: u32,
    pub state: CatalogState,
    pub hash: String,
    pub source: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub published_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub changes: usize,
}

impl From<&CatalogVersion> for VersionSummary {
    fn from(v: &CatalogVersion) -> VersionSummary {
        VersionSummary {
            version: v.version,
            state: v.state,
            hash: v.hash.clone(),
            source: v.source.clone(),
            created_by: v.created_by.clone(),
            created_at: v.created_at,
            published_by: v.published_by.clone(),
            published_at: v.published_at,
            changes: v.changes.len(),
        }
    }
}

#[derive(Deserialize)]
pub struct ManifestQuery {
    version: Option<u32>,
}

/// Refreshes from the store (another server or the CLI may have published) and answers `version`
/// or the newest.
pub async fn published(state: &AppState, version: Option<u32>) -> Result<Arc<Published>, ApiError> {
    let known = match version {
        Some(v) => state.catalogs.get(v),
        None => None,
    };
    if let Some(p) = known {
        return Ok(p);
    }
    let st = state.clone();
    blocking(move || {
        st.catalogs.refresh(st.store.as_ref()).map_err(|e| match e {
            CatalogOpError::Store(CatalogStoreError::Store(s)) => s,
            other => StoreError::Corrupt(other.to_string()),
        })
    })
    .await?;
    match version {
        None => Ok(state.catalogs.latest()),
        Some(v) => state
            .catalogs
            .get(v)
            .ok_or_else(|| ApiError::not_found(format!("no published catalog version {v}"))),
    }
}

/// `GET /v1/catalog[?version=N]`: the signed manifest of the newest published version (or of N),
/// with what changed since the one before.
pub async fn manifest(
    State(state): State<AppState>,
    Query(q): Query<ManifestQuery>,
) -> Result<Json<CatalogManifest>, ApiError> {
    Ok(Json(published(&state, q.version).await?.manifest.clone()))
}

/// Most parts one request may ask for: a whole catalog (lists, contacts, holidays and every item)
/// with room to grow.
pub const MAX_PARTS_PER_REQUEST: usize = 1000;

/// `POST /v1/catalog/parts`: the bodies of the named parts of one published version, in the order
/// asked, exactly as [`Catalog::parts`] cuts them (the phone checks each against the manifest).
pub async fn parts(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<CatalogPartsResponse>, ApiError> {
    let req: CatalogPartsRequest =
        serde_json::from_slice(&body).map_err(ApiError::malformed_json)?;
    if req.names.len() > MAX_PARTS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_PARTS_PER_REQUEST} parts per request"
        )));
    }
    let p = published(&state, Some(req.version)).await?;
    let parts = req
        .names
        .iter()
        .map(|name| {
            p.parts
                .get(name)
                .map(|body| CatalogPart {
                    name: name.clone(),
                    body: body.clone(),
                })
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "catalog version {} has no part {name}",
                        req.version
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(CatalogPartsResponse { parts }))
}
