//! Published catalog versions held on the device: one file per version under `catalogs/`, written
//! atomically, so a phone switches to a new version whole or not at all, and keeps every version its
//! cases were made under.

use std::fs;

use bianmin_protocol::sync::CatalogManifest;
use serde::{Deserialize, Serialize};

use super::{disk, Outbox, StoreError};
use crate::catalog::{content_hash, Catalog};

/// A catalog version as the town published it, with the manifest that vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledCatalog {
    pub manifest: CatalogManifest,
    pub catalog: Catalog,
}

/// The file of one version: the manifest and the catalog's canonical JSON, whose hash the manifest
/// names (checked again on every load, so a damaged file is never used).
#[derive(Serialize, Deserialize)]
struct CatalogFile {
    manifest: CatalogManifest,
    catalog: String,
}

impl Outbox {
    fn catalogs_dir(&self) -> std::path::PathBuf {
        self.dir.join("catalogs")
    }

    /// Stores a verified version (the caller checked the server's signature and the parts). Durable
    /// when this returns; installing the same version again changes nothing.
    pub fn install_catalog(
        &self,
        manifest: &CatalogManifest,
        catalog: &Catalog,
    ) -> Result<(), StoreError> {
        let json = catalog.to_json();
        if content_hash(json.as_bytes()) != manifest.hash {
            return Err(StoreError::Corrupt(format!(
                "catalog version {} does not match its hash",
                manifest.version
            )));
        }
        let _w = self.lock();
        let dir = self.catalogs_dir();
        disk::create_dir_durable(&dir)
            .map_err(|e| StoreError::io(format!("create {}", dir.display()), e))?;
        let body = serde_json::to_vec(&CatalogFile {
            manifest: manifest.clone(),
            catalog: json,
        })
        .expect("catalog files serialize");
        self.check_space(body.len() as u64 + (64 << 10))?;
        let path = dir.join(format!("{:08}.json", manifest.version));
        self.disk
            .write_atomic(&path, &body)
            .map_err(|e| StoreError::io(format!("write catalog version {}", manifest.version), e))
    }

    /// The versions held, oldest first.
    pub fn catalog_versions(&self) -> Result<Vec<u32>, StoreError> {
        let dir = self.catalogs_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(format!("list {}", dir.display()), e)),
        };
        let mut out: Vec<u32> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// One held version, checked against its hash; `None` when this device does not hold it.
    pub fn catalog(&self, version: u32) -> Result<Option<InstalledCatalog>, StoreError> {
        let path = self.catalogs_dir().join(format!("{version:08}.json"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("read {}", path.display()), e)),
        };
        let corrupt =
            |why: String| StoreError::Corrupt(format!("catalog version {version}: {why}"));
        let file: CatalogFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if content_hash(file.catalog.as_bytes()) != file.manifest.hash
            || file.manifest.version != version
        {
            return Err(corrupt("content does not match its manifest".into()));
        }
        let catalog = Catalog::from_json(&format!("catalog version {version}"), &file.catalog)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(InstalledCatalog {
            manifest: file.manifest,
            catalog,
        }))
    }

    /// The catalog new cases follow: the newest version held, or the one the app shipped with
    /// (version 0) before the first sync brought one.
    pub fn current_catalog(&self) -> Result<(u32, Catalog), StoreError> {
        match self.latest_catalog()? {
            Some(c) => Ok((c.manifest.version, c.catalog)),
            None => Ok((0, shipped()?)),
        }
    }

    /// The catalog a case was made under: its version, or the shipped one for version 0.
    pub fn catalog_for(&self, version: u32) -> Result<Catalog, StoreError> {
        if version == 0 {
            return shipped();
        }
        self.catalog(version)?.map(|c| c.catalog).ok_or_else(|| {
            StoreError::Corrupt(format!("catalog version {version} is not on this device"))
        })
    }

    /// The newest version held that reads back intact, if any. A damaged newer file is passed over
    /// (and logged) so the phone keeps working on the version before; the next sync installs it again.
    pub fn latest_catalog(&self) -> Result<Option<InstalledCatalog>, StoreError> {
        for v in self.catalog_versions()?.into_iter().rev() {
            match self.catalog(v) {
                Ok(found) => return Ok(found),
                Err(e @ StoreError::Corrupt(_)) => {
                    tracing::error!(version = v, error = %e, "catalog version unreadable; using an older one");
                    let _ = fs::remove_file(self.catalogs_dir().join(format!("{v:08}.json")));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

fn shipped() -> Result<Catalog, StoreError> {
    Catalog::embedded().map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::crypto::MemoryKeyStore;
    use chrono::Utc;

    fn manifest(version: u32, c: &Catalog) -> CatalogManifest {
        CatalogManifest {
            version,
            hash: c.hash(),
            signature: String::new(),
            published_at: Utc::now(),
            changes: vec![],
            parts: c.part_refs(),
        }
    }

    #[test]
    fn versions_are_kept_and_a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), &MemoryKeyStore([7; 32])).unwrap();
        assert!(ob.latest_catalog().unwrap().is_none());
        let c = Catalog::embedded().unwrap();
        ob.install_catalog(&manifest(1, &c), &c).unwrap();
        ob.install_catalog(&manifest(2, &c), &c).unwrap();
        assert_eq!(ob.catalog_versions().unwrap(), vec![1, 2]);
        assert_eq!(ob.latest_catalog().unwrap().unwrap().manifest.version, 2);
        assert_eq!(ob.catalog(1).unwrap().unwrap().catalog, c);
        assert!(ob.catalog(3).unwrap().is_none());

        let mut wrong = manifest(3, &c);
        wrong.hash = "00".repeat(32);
        assert!(ob.install_catalog(&wrong, &c).is_err());

        let path = dir.path().join("catalogs/00000002.json");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("兵役登记", "兵役登记X", 1)).unwrap();
        assert!(matches!(ob.catalog(2), Err(StoreError::Corrupt(_))));
        // The phone falls back to the version before and fetches the damaged one again.
        assert_eq!(ob.latest_catalog().unwrap().unwrap().manifest.version, 1);
        assert_eq!(ob.catalog_versions().unwrap(), vec![1]);
    }
}
