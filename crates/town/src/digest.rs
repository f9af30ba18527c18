//! Content digests and durable writes of whole files: the SHA-256 names attachments go by, and
//! temp-fsync-rename-fsync for a file that must survive a power cut once written.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use bianmin_engine::outbox::disk::{create_dir_durable, sync_dir};
use sha2::{Digest, Sha256};

/// Whether `s` is a lower-case hex SHA-256.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
