//! Encryption at rest: a device key from a key store wraps one random key per case (XChaCha20-Poly1305).
//!
//! A lost phone leaks nothing readable: personal fields and every photo are sealed with the
//! case's key, the case key is sealed with the device key, and file names are keyed hashes so
//! not even the hash of a photo is visible. On Android the device key lives in the Keystore
//! (behind `KeyStore`); on desktop it is a 0600 file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use thiserror::Error;

/// A 256-bit symmetric key.
pub type Key = [u8; 32];

const NONCE: usize = 24;

/// Where the device key comes from.
pub trait KeyStore: Send + Sync {
    /// The device key, created on first use.
    fn device_key(&self) -> Result<Key, KeyStoreError>;
}

/// The device key could not be had.
#[derive(Debug, Error)]
pub enum KeyStoreError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {0} is not a 32-byte key")]
    Corrupt(PathBuf),
    /// The platform's key store (Android Keystore) refused or failed.
    #[error("platform key store: {0}")]
    Platform(String),
}

/// Desktop key store: a 32-byte key in a file only the owner may read.
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    pub fn new(path: impl Into<PathBuf>) -> FileKeyStore {
        FileKeyStore { path: path.into() }
    }
}

impl KeyStore for FileKeyStore {
    fn device_key(&self) -> Result<Key, KeyStoreError> {
        let io = |source| KeyStoreError::Io {
            path: self.path.clone(),
            source,
        };
        match fs::read(&self.path) {
            Ok(bytes) => bytes
                .try_into()
                .map_err(|_| KeyStoreError::Corrupt(self.path.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let tmp = self.path.with_extension("tmp");
                let mut opts = fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(&tmp).map_err(io)?;
                f.write_all(&key).map_err(io)?;
                f.sync_all().map_err(io)?;
                fs::rename(&tmp, &self.path).map_err(io)?;
                super::disk::sync_dir(self.path.parent().unwrap_or(Path::new("."))).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// A fixed key, for tests and for platforms that hand the key over directly.
pub struct MemoryKeyStore(pub Key);

impl KeyStore for MemoryKeyStore {
    fn device_key(&self) -> Result<Key, KeyStoreError> {
        Ok(self.0)
    }
}

/// Decryption failed: wrong key or altered bytes.
#[derive(Debug, Error)]
#[error("ciphertext does not authenticate (wrong key or altered data)")]
pub struct Tampered;

/// A fresh random key.
pub fn random_key() -> Key {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

/// `nonce || ciphertext+tag`; `aad` binds the bytes to their purpose (e.g. the case id).
pub fn seal(key: &Key, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            chacha20poly1305::aead::Payload { msg: plain, aad },
        )
        .expect("XChaCha20Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Reverses [`seal`].
pub fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Tampered> {
    if sealed.len() < NONCE + 16 {
        return Err(Tampered);
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            XNonce::from_slice(&sealed[..NONCE]),
            chacha20poly1305::aead::Payload {
                msg: &sealed[NONCE..],
                aad,
            },
        )
        .map_err(|_| Tampered)
}

/// Keys derived from the device key for separate purposes, so one never stands in for another.
pub struct DeviceKeys {
    /// Wraps per-case keys and secret metadata.
    pub wrap: Key,
    /// Names files: keyed hashes of case ids and photo hashes.
    pub names: Key,
}

impl DeviceKeys {
    pub fn derive(device: &Key) -> DeviceKeys {
        DeviceKeys {
            wrap: blake3::derive_key("bianmin outbox 2026 case-key wrapping", device),
            names: blake3::derive_key("bianmin outbox 2026 file names", device),
        }
    }

    /// A file name for `what` that reveals nothing about it.
    pub fn name(&self, what: &str) -> String {
        blake3::keyed_hash(&self.names, what.as_bytes()).to_hex()[..40].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let k = random_key();
        let s = seal(&k, b"case-1", b"hello");
        assert_eq!(open(&k, b"case-1", &s).unwrap(), b"hello");
        assert!(open(&k, b"case-2", &s).is_err(), "aad binds the purpose");
        let mut t = s.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(open(&k, b"case-1", &t).is_err());
        assert!(open(&random_key(), b"case-1", &s).is_err());
    }

    #[test]
    fn file_key_store_creates_a_private_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::new(dir.path().join("device.key"));
        let a = ks.device_key().unwrap();
        assert_eq!(a, ks.device_key().unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("device.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
