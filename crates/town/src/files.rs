//! Files of the data directory: attachments by content hash and partial uploads.
//!
//! Photos are files, not database values (BRIEF §6). A partial upload lives in
//! `uploads/{village}/` and is appended to as bytes arrive, so a broken connection resumes at the
//! last byte that reached the disk; it moves to `attachments/` only after its SHA-256 matches its
//! name. Partials are kept per village: another village that knows a page's hash cannot start it
//! with a wrong length and block the owner, nor learn its size. Each records the device that
//! opened it, so a device may hold only a few open at once, and untouched ones expire. The
//! embedded store's administration files (tickets, revocations) are `store::FileAdmin`'s.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bianmin_engine::outbox::disk::{create_dir_durable, sync_dir};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::digest::{is_sha256, sha256_hex, write_atomic};
use crate::store::{AdminStore, StoreError};
pub use crate::store::{FileAdmin, Ticket, TicketError};

/// The data directory's file areas.
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
}

/// Bookkeeping of an open upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartialMeta {
    length: u64,
    /// The device that started it (per-device limit on open uploads).
    device: String,
}

/// Why an upload may not start or continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This village's upload of the page was started with another length.
    LengthMismatch(u64),
    /// The device already holds this many unfinished uploads.
    TooManyOpen(usize),
}

/// Outcome of checking a finished upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    Stored,
    HashMismatch,
}

impl Files {
    pub fn new(root: &Path) -> std::io::Result<Files> {
        for sub in ["attachments", "uploads"] {
            create_dir_durable(&root.join(sub))?;
        }
        Ok(Files {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn attachment_path(&self, sha: &str) -> PathBuf {
        self.root.join("attachments").join(&sha[..2]).join(sha)
    }

    /// Size of a complete, verified attachment.
    pub fn attachment_size(&self, sha: &str) -> Option<u64> {
        fs::metadata(self.attachment_path(sha))
            .ok()
            .map(|m| m.len())
    }

    fn village_uploads(&self, village: &str) -> PathBuf {
        self.root.join("uploads").join(village)
    }

    /// The partial file of `village`'s upload of `sha`.
    pub fn partial_path(&self, village: &str, sha: &str) -> PathBuf {
        self.village_uploads(village).join(format!("{sha}.part"))
    }

    fn meta_path(&self, village: &str, sha: &str) -> PathBuf {
        self.village_uploads(village).join(format!("{sha}.meta"))
    }

    fn partial_meta(&self, village: &str, sha: &str) -> Option<PartialMeta> {
        fs::read(self.meta_path(village, sha))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Bytes held of `village`'s partial upload of `sha`, and its declared length.
    pub fn partial_state(&self, village: &str, sha: &str) -> (u64, Option<u64>) {
        let offset = fs::metadata(self.partial_path(village, sha))
            .map(|m| m.len())
            .unwrap_or(0);
        (offset, self.partial_meta(village, sha).map(|m| m.length))
    }

    /// Open uploads `device` started in `village`.
    pub fn open_uploads_of(&self, village: &str, device: &str) -> usize {
        let Ok(dir) = fs::read_dir(self.village_uploads(village)) else {
            return 0;
        };
        dir.flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".meta")
                    .map(str::to_string)
            })
            // A finished page whose bookkeeping came back after a power cut (its removal was
            // not yet on disk) is not open; forget it instead of counting it.
            .filter(|sha| {
                let done = is_sha256(sha) && self.attachment_size(sha).is_some();
                if done {
                    let _ = self.discard_partial(village, sha);
                }
                !done
            })
            .filter_map(|sha| self.partial_meta(village, &sha))
            .filter(|m| m.device == device)
            .count()
    }

    /// Starts (or continues) `village`'s upload of `sha`, `length` bytes, for `device`.
    /// A new upload first sweeps partials untouched for `max_age`, then counts the device's open
    /// ones against `max_open`. Callers serialise calls per device (the count is not atomic).
    pub fn begin_upload(
        &self,
        village: &str,
        sha: &str,
        length: u64,
        device: &str,
        max_open: usize,
        max_age: Duration,
    ) -> std::io::Result<Result<(), Refusal>> {
        if let Some(m) = self.partial_meta(village, sha) {
            return Ok(if m.length == length {
                Ok(())
            } else {
                Err(Refusal::LengthMismatch(m.length))
            });
        }
        let swept = self.expire_partials(SystemTime::now(), max_age)?;
        if swept > 0 {
            tracing::info!(swept, "expired partial uploads removed");
        }
        if self.open_uploads_of(village, device) >= max_open {
            return Ok(Err(Refusal::TooManyOpen(max_open)));
        }
        let meta = PartialMeta {
            length,
            device: device.to_string(),
        };
        write_atomic(
            &self.meta_path(village, sha),
            &serde_json::to_vec(&meta).expect("metas serialize"),
        )?;
        Ok(Ok(()))
    }

    /// Opens `village`'s partial file of `sha` for appending.
    pub fn open_partial(&self, village: &str, sha: &str) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.partial_path(village, sha))
    }

    /// Drops a partial upload (after a hash mismatch, or expired).
    pub fn discard_partial(&self, village: &str, sha: &str) -> std::io::Result<()> {
        for p in [
            self.partial_path(village, sha),
            self.meta_path(village, sha),
        ] {
            match fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes partial uploads whose last byte (or start) is older than `max_age` at `now`; how
    /// many it removed. A phone that comes back later starts that page again at 0.
    pub fn expire_partials(&self, now: SystemTime, max_age: Duration) -> std::io::Result<usize> {
        let stale = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > max_age))
        };
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join("uploads"))?.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                // Partials of the layout before uploads were kept per village.
                if stale(&path) {
                    let _ = fs::remove_file(&path);
                    removed += 1;
                }
                continue;
            }
            for f in fs::read_dir(&path)?.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                let Some(sha) = name.strip_suffix(".meta") else {
                    continue;
                };
                let village = entry.file_name().to_string_lossy().to_string();
                let part = self.partial_path(&village, sha);
                // The part file's time is that of its last byte; before any byte, the start.
                let last = if part.exists() { part } else { f.path() };
                if stale(&last) {
                    self.discard_partial(&village, sha)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Verifies `village`'s complete partial file against its name and moves it into place.
    pub fn finish_upload(&self, village: &str, sha: &str) -> std::io::Result<Finish> {
        if self.verify_partial(village, sha)? == Finish::HashMismatch {
            return Ok(Finish::HashMismatch);
        }
        let part = self.partial_path(village, sha);
        File::open(&part)?.sync_all()?;
        let dest = self.attachment_path(sha);
        let dir = dest.parent().expect("has parent");
        create_dir_durable(dir)?;
        fs::rename(&part, &dest)?;
        sync_dir(dir)?;
        let _ = fs::remove_file(self.meta_path(village, sha));
        // The upload is closed for good only once its bookkeeping is gone from the disk too.
        sync_dir(&self.village_uploads(village))?;
        Ok(Finish::Stored)
    }

    /// Checks `village`'s complete partial file against its name; a mismatch discards it.
    pub fn verify_partial(&self, village: &str, sha: &str) -> std::io::Result<Finish> {
        let mut f = File::open(self.partial_path(village, sha))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        if hex::encode(h.finalize()) != sha {
            self.discard_partial(village, sha)?;
            return Ok(Finish::HashMismatch);
        }
        Ok(Finish::Stored)
    }

    /// The secret the administration commands on this machine present to a running server
    /// (`backup`), created on first use, readable by the owner only.
    pub fn admin_token(&self) -> std::io::Result<String> {
        let path = self.root.join("admin.token");
        if let Ok(t) = fs::read_to_string(&path) {
            if t.trim().len() >= 32 {
                return Ok(t.trim().to_string());
            }
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        write_atomic(&path, token.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        Ok(token)
    }

    /// The embedded store's administration files (tickets, revocations, supervisors, server
    /// key) in the same data directory.
    pub fn admin(&self) -> FileAdmin {
        FileAdmin::new(&self.root)
    }

    /// Issues a one-time enrolment code in this data directory (see [`FileAdmin`]).
    pub fn issue_ticket(&self, ticket: &Ticket) -> Result<String, StoreError> {
        self.admin().issue_ticket(ticket)
    }

    /// Disables a device of this data directory (see [`FileAdmin`]).
    pub fn revoke(&self, device: &str) -> Result<(), StoreError> {
        self.admin().revoke(device)
    }

    /// Loads the server key of this data directory, creating it on first start.
    pub fn server_key(&self) -> Result<SigningKey, StoreError> {
        self.admin().server_key()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn upload_is_verified_before_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path()).unwrap();
        let data = b"hello page";
        let sha = sha256_hex(data);
        let (v, dev, day) = ("140423100201", "K7Q2MX", Duration::from_secs(86_400));
        files
            .begin_upload(v, &sha, data.len() as u64, dev, 8, day)
            .unwrap()
            .unwrap();
        files
            .open_partial(v, &sha)
            .unwrap()
            .write_all(b"hello")
            .unwrap();
        assert_eq!(files.partial_state(v, &sha), (5, Some(10)));
        files
            .open_partial(v, &sha)
            .unwrap()
            .write_all(b" page")
            .unwrap();
        assert_eq!(files.finish_upload(v, &sha).unwrap(), Finish::Stored);
        assert_eq!(fs::read(files.attachment_path(&sha)).unwrap(), data);

        let wrong = sha256_hex(b"other");
        files
            .begin_upload(v, &wrong, 5, dev, 8, day)
            .unwrap()
            .unwrap();
        files
            .open_partial(v, &wrong)
            .unwrap()
            .write_all(b"12345")
            .unwrap();
        assert_eq!(
            files.finish_upload(v, &wrong).unwrap(),
            Finish::HashMismatch
        );
        assert_eq!(files.attachment_size(&wrong), None);
        assert_eq!(files.partial_state(v, &wrong), (0, None));

        // A power cut may bring back the bookkeeping of a finished page: it does not count as open.
        files
            .begin_upload(v, &wrong, 5, dev, 8, day)
            .unwrap()
            .unwrap();
        assert_eq!(files.open_uploads_of(v, dev), 1);
        fs::copy(files.meta_path(v, &wrong), files.meta_path(v, &sha)).unwrap();
        assert_eq!(
            files.open_uploads_of(v, dev),
            1,
            "the finished page's resurrected meta is not counted"
        );
        assert_eq!(files.partial_state(v, &sha).1, None, "and it is forgotten");
    }
}
