//! Attachment bytes behind one interface: files in the data directory (the default), or any
//! S3-compatible object store (`--objects s3://bucket[/prefix]`, endpoint and credentials from
//! the usual `AWS_*` environment variables).
//!
//! A page arrives as a partial file in `uploads/` (resumable, see `files`); once complete and
//! verified against its SHA-256 name it is moved into place: renamed durably into
//! `attachments/` locally, or streamed to the object store in parts and then read back and
//! hashed again, so that what a case may reference is what the store really holds. Only after
//! that does the database learn the page's hash, size and village (`TownStore::add_attachment`).
//! Downloads stream from either.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::AsyncReadExt;

use crate::files::{Files, Finish};

/// An object store failure.
#[derive(Debug, Error)]
pub enum ObjectsError {
    #[error("--objects must be an s3://bucket URL: {0}")]
    Url(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("attachment files: {0}")]
    Io(#[from] std::io::Error),
    #[error("object {key} holds other bytes than were sent (SHA-256 {got})")]
    Corrupt { key: String, got: String },
}

/// Where attachment bytes live.
#[derive(Clone)]
pub enum Objects {
    /// `attachments/` in the data directory.
    Local(Files),
    /// An S3-compatible bucket (the URL is kept for logs).
    Remote {
        store: Arc<dyn ObjectStore>,
        url: String,
    },
}

/// Part size of uploads to an object store: S3's minimum for all but the last part.
pub(crate) const PART: usize = 5 * 1024 * 1024;

/// A page's object key: two levels like the local layout, so listings stay small.
pub fn key(sha: &str) -> ObjectPath {
    ObjectPath::from(format!("{}/{}", &sha[..2], sha))
}

impl Objects {
    /// The data directory's own attachment files.
    pub fn local(files: Files) -> Objects {
        Objects::Local(files)
    }

    /// An S3-compatible store from `s3://bucket[/prefix]`, configured from the `AWS_*`
    /// environment (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`), then from `options` (`aws_endpoint`, ...) if given.
    pub fn from_url(url: &str, options: &[(String, String)]) -> Result<Objects, ObjectsError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| ObjectsError::Url(url.to_string()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectsError::Url(url.to_string()));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in options {
            let key: AmazonS3ConfigKey = k
                .parse()
                .map_err(|e: object_store::Error| ObjectsError::Url(e.to_string()))?;
            b = b.with_config(key, v);
        }
        let s3: Arc<dyn ObjectStore> = Arc::new(b.build()?);
        let store: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
            s3
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                s3,
                prefix.trim_matches('/'),
            ))
        };
        Ok(Objects::Remote {
            store,
            url: url.to_string(),
        })
    }

    /// Moves `village`'s complete local partial file of `sha` into the store, verified. (The
    /// server's own uploads to a bucket are kept there from the first byte: `segments`.)
    pub async fn finish(
        &self,
        files: &Files,
        village: &str,
        sha: &str,
    ) -> Result<Finish, ObjectsError> {
        match self {
            Objects::Local(local) => {
                let (local, v, s) = (local.clone(), village.to_string(), sha.to_string());
                Ok(
                    tokio::task::spawn_blocking(move || local.finish_upload(&v, &s))
                        .await
                        .map_err(std::io::Error::other)??,
                )
            }
            Objects::Remote { store, .. } => {
                let (f, v, s) = (files.clone(), village.to_string(), sha.to_string());
                let verified = tokio::task::spawn_blocking(move || f.verify_partial(&v, &s))
                    .await
                    .map_err(std::io::Error::other)??;
                if verified == Finish::HashMismatch {
                    return Ok(Finish::HashMismatch);
                }
                let part = files.partial_path(village, sha);
                upload(store.as_ref(), &part, sha).await?;
                verify_remote(store.as_ref(), sha).await?;
                let (f, v, s) = (files.clone(), village.to_string(), sha.to_string());
                tokio::task::spawn_blocking(move || f.discard_partial(&v, &s))
                    .await
                    .map_err(std::io::Error::other)??;
                Ok(Finish::Stored)
            }
        }
    }

    /// The bytes of a stored page, as a stream; `None` if the store does not have it.
    pub async fn open(
        &self,
        sha: &str,
    ) -> Result<Option<BoxStream<'static, std::io::Result<Bytes>>>, ObjectsError> {
        match self {
            Objects::Local(files) => {
                match tokio::fs::File::open(files.attachment_path(sha)).await {
                    Ok(f) => Ok(Some(tokio_util::io::ReaderStream::new(f).boxed())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Objects::Remote { store, .. } => match store.get(&key(sha)).await {
                Ok(r) => Ok(Some(r.into_stream().map_err(std::io::Error::other).boxed())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Copies a local page file into this store (`migrate`), verified like an upload.
    pub async fn put_file(&self, path: &Path, sha: &str) -> Result<(), ObjectsError> {
        match self {
            Objects::Local(files) => {
                let dest: PathBuf = files.attachment_path(sha);
                if dest != path {
                    let (from, to) = (path.to_path_buf(), dest);
                    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                        let bytes = std::fs::read(&from)?;
                        crate::digest::write_atomic(&to, &bytes)
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                }
                Ok(())
            }
            Objects::Remote { store, .. } => {
                upload(store.as_ref(), path, sha).await?;
                verify_remote(store.as_ref(), sha).await
            }
        }
    }

    /// The bucket, when pages go to one: unfinished uploads are then kept there too (`segments`),
    /// so that every server resumes them.
    pub fn bucket(&self) -> Option<Arc<dyn ObjectStore>> {
        match self {
            Objects::Local(_) => None,
            Objects::Remote { store, .. } => Some(store.clone()),
        }
    }

    /// For logs: where the bytes go.
    pub fn describe(&self) -> String {
        match self {
            Objects::Local(files) => files.root().join("attachments").display().to_string(),
            Objects::Remote { url, .. } => url.clone(),
        }
    }
}

/// Streams a file to the store in parts (never the whole page in memory).
async fn upload(store: &dyn ObjectStore, path: &Path, sha: &str) -> Result<(), ObjectsError> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(store.put_multipart(&key(sha)).await?, PART);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        // Bounded memory: at most two parts in flight.
        w.wait_for_capacity(2).await?;
        w.write(&buf[..n]);
    }
    w.finish().await?;
    Ok(())
}

/// Reads the object back and checks its SHA-256 against its name.
pub(crate) async fn verify_remote(store: &dyn ObjectStore, sha: &str) -> Result<(), ObjectsError> {
    let mut stream = store.get(&key(sha)).await?.into_stream();
    let mut h = Sha256::new();
    while let Some(chunk) = stream.next().await {
        h.update(chunk?);
    }
    let got = hex::encode(h.finalize());
    if got != sha {
        // Not referenced by anything yet; removing it lets the phone send the page again.
        let _ = store.delete(&key(sha)).await;
        return Err(ObjectsError::Corrupt {
            key: key(sha).to_string(),
            got,
        });
    }
    Ok(())
}
