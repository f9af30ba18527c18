//! Files of the data directory: attachments by content hash, partial uploads, enrolment tickets,
//! revocations and the server key.
//!
//! Photos are files, not database values (BRIEF §6). A partial upload lives in `uploads/` and is
//! appended to as bytes arrive, so a broken connection resumes at the last byte that reached the
//! disk; it moves to `attachments/` only after its SHA-256 matches its name. Enrolment tickets and
//! revocations are plain files so that the `enroll` and `revoke` commands work while `serve` holds
//! the database lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bianmin_engine::outbox::disk::{create_dir_durable, sync_dir};
use bianmin_protocol::sync::DeviceRole;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Whether `s` is a lower-case hex SHA-256.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}


/// Writes a file atomically and durably (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("path has a parent");
    create_dir_durable(dir)?;
    let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// The data directory's file areas.
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
}

/// Outcome of checking a finished upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    Stored,
    HashMismatch,
}

impl Files {
    pub fn new(root: &Path) -> std::io::Result<Files> {
        for sub in ["attachments", "uploads", "enrolment", "revoked", "holders"] {
            create_dir_durable(&root.join(sub))?;
        }
        Ok(Files { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn attachment_path(&self, sha: &str) -> PathBuf {
        self.root.join("attachments").join(&sha[..2]).join(sha)
    }

    /// Size of a complete, verified attachment.
    pub fn attachment_size(&self, sha: &str) -> Option<u64> {
        fs::metadata(self.attachment_path(sha)).ok().map(|m| m.len())
    }

    pub fn partial_path(&self, sha: &str) -> PathBuf {
        self.root.join("uploads").join(format!("{sha}.part"))
    }

    fn length_path(&self, sha: &str) -> PathBuf {
        self.root.join("uploads").join(format!("{sha}.len"))
    }

    /// Bytes held of a partial upload and its declared length.
    pub fn partial_state(&self, sha: &str) -> (u64, Option<u64>) {
        let offset = fs::metadata(self.partial_path(sha)).map(|m| m.len()).unwrap_or(0);
        let length = fs::read_to_string(self.length_path(sha)).ok().and_then(|s| s.trim().parse().ok());
        (offset, length)
    }

    /// Starts (or continues) an upload of `length` bytes; `Err(existing)` if another length was declared.
    pub fn begin_upload(&self, sha: &str, length: u64) -> std::io::Result<Result<(), u64>> {
        match self.partial_state(sha).1 {
            Some(l) if l != length => Ok(Err(l)),
            Some(_) => Ok(Ok(())),
            None => {
                write_atomic(&self.length_path(sha), length.to_string().as_bytes())?;
                Ok(Ok(()))
            }
        }
    }

    /// Opens the partial file for appending.
    pub fn open_partial(&self, sha: &str) -> std::io::Result<File> {
        OpenOptions::new().create(true).append(true).open(self.partial_path(sha))
    }

    /// Drops a partial upload (after a hash mismatch).
    pub fn discard_partial(&self, sha: &str) -> std::io::Result<()> {
        for p in [self.partial_path(sha), self.length_path(sha)] {
            match fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Verifies the complete partial file against its name and moves it into place.
    pub fn finish_upload(&self, sha: &str) -> std::io::Result<Finish> {
        let part = self.partial_path(sha);
        let mut f = File::open(&part)?;
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
            self.discard_partial(sha)?;
            return Ok(Finish::HashMismatch);
        }
        f.sync_all()?;
        let dest = self.attachment_path(sha);
        let dir = dest.parent().expect("has parent");
        create_dir_durable(dir)?;
        fs::rename(&part, &dest)?;
        sync_dir(dir)?;
        let _ = fs::remove_file(self.length_path(sha));
        Ok(Finish::Stored)
    }

    fn holder_path(&self, sha: &str, village: &str) -> PathBuf {
        self.root.join("holders").join(&sha[..2]).join(format!("{sha}.{village}"))
    }

    /// Whether a device of `village` has sent this attachment's bytes. Attachments are stored once
    /// by content, but a village may only reference what it has shown it holds: knowing another
    /// village's page hash is not enough to put that page into one's own case and read it back.
    pub fn held_by(&self, sha: &str, village: &str) -> bool {
        self.holder_path(sha, village).exists()
    }

    /// Records that `village` sent the bytes (after they were verified against the hash).
    pub fn add_holder(&self, sha: &str, village: &str) -> std::io::Result<()> {
        let path = self.holder_path(sha, village);
        let dir = path.parent().expect("has parent");
        create_dir_durable(dir)?;
        File::create(&path)?.sync_all()?;
        sync_dir(dir)
    }

    /// Loads the server's receipt-signing key, creating it on first start.
    pub fn server_key(&self) -> std::io::Result<SigningKey> {
        let path = self.root.join("server.key");
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes: [u8; 32] = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "server.key is not 32 hex bytes"))?;
                Ok(SigningKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                write_atomic(&path, hex::encode(seed).as_bytes())?;
                Ok(SigningKey::from_bytes(&seed))
            }
            Err(e) => Err(e),
        }
    }

    fn ticket_path(&self, code: &str) -> PathBuf {
        self.root.join("enrolment").join(format!("{}.json", sha256_hex(normalize_code(code).as_bytes())))
    }

    /// Issues a one-time enrolment code; only its hash is stored.
    pub fn issue_ticket(&self, ticket: &Ticket) -> std::io::Result<String> {
        let mut raw = [0u8; ENROL_CODE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let code: String = raw.iter().map(|b| ENROL_ALPHABET[(*b as usize) % ENROL_ALPHABET.len()] as char).collect();
        write_atomic(&self.ticket_path(&code), &serde_json::to_vec(ticket).expect("tickets serialize"))?;
        Ok(code)
    }

    /// Redeems a code once: the rename is atomic, so of two concurrent redemptions only one wins.
    pub fn redeem_ticket(&self, code: &str, now: DateTime<Utc>) -> Result<Ticket, TicketError> {
        let path = self.ticket_path(code);
        let used = path.with_extension("used");
        fs::rename(&path, &used).map_err(|_| TicketError::Unknown)?;
        let ticket: Ticket = fs::read(&used)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TicketError::Unknown)?;
        if now > ticket.expires_at {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }

    /// Puts an unused ticket back (the enrolment failed for a reason that is not the code's fault).
    pub fn restore_ticket(&self, code: &str) {
        let path = self.ticket_path(code);
        let _ = fs::rename(path.with_extension("used"), path);
    }

    pub fn revoke(&self, device: &str) -> std::io::Result<()> {
        write_atomic(&self.root.join("revoked").join(device), Utc::now().to_rfc3339().as_bytes())
    }

    pub fn is_revoked(&self, device: &str) -> bool {
        self.root.join("revoked").join(device).exists()
    }
}

/// Enrolment codes avoid 0/O and 1/I/L so they can be read aloud and typed.
const ENROL_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const ENROL_CODE_LEN: usize = 12;

fn normalize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// What an enrolment code grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub role: DeviceRole,
    pub village: Option<String>,
    pub town: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketError {
    Unknown,
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path()).unwrap();
        let now = Utc::now();
        let t = Ticket { role: DeviceRole::Agent, village: Some("140423100201".into()), town: "140423100".into(), expires_at: now + chrono::Duration::minutes(10) };
        let code = files.issue_ticket(&t).unwrap();
        assert_eq!(files.redeem_ticket(&code.to_lowercase(), now), Ok(t.clone()));
        assert_eq!(files.redeem_ticket(&code, now), Err(TicketError::Unknown));
        let code = files.issue_ticket(&t).unwrap();
        assert_eq!(files.redeem_ticket(&code, now + chrono::Duration::minutes(11)), Err(TicketError::Expired));
    }

    #[test]
    fn upload_is_verified_before_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path()).unwrap();
        let data = b"hello page";
        let sha = sha256_hex(data);
        files.begin_upload(&sha, data.len() as u64).unwrap().unwrap();
        files.open_partial(&sha).unwrap().write_all(b"hello").unwrap();
        assert_eq!(files.partial_state(&sha), (5, Some(10)));
        files.open_partial(&sha).unwrap().write_all(b" page").unwrap();
        assert_eq!(files.finish_upload(&sha).unwrap(), Finish::Stored);
        assert_eq!(fs::read(files.attachment_path(&sha)).unwrap(), data);

        let wrong = sha256_hex(b"other");
        files.begin_upload(&wrong, 5).unwrap().unwrap();
        files.open_partial(&wrong).unwrap().write_all(b"12345").unwrap();
        assert_eq!(files.finish_upload(&wrong).unwrap(), Finish::HashMismatch);
        assert_eq!(files.attachment_size(&wrong), None);
        assert_eq!(files.partial_state(&wrong), (0, None));
    }
}
