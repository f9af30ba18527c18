//! Backup and restore of an embedded town: one file holding a consistent snapshot of every record
//! (`TownStore::snapshot`, taken under the store's write lock, so a running server keeps serving)
//! and every attachment the snapshot names.
//!
//! Format, line-oriented so a damaged file is easy to inspect:
//! `BIANMIN-BACKUP 1\n`, the snapshot as one line of JSON, then per attachment
//! `A {sha256} {length}\n` followed by the bytes and `\n`, and `END\n`. Restore checks every
//! attachment against its SHA-256 and the audit chain before it reports success.

use std::io::{BufRead, Read, Write};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::files::Files;
use crate::store::{Snapshot, StoreError};

const MAGIC: &str = "BIANMIN-BACKUP 1";

/// Why a backup could not be written or read.
#[derive(Debug, Error)]
pub enum BackupError {
    #[error("backup file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not a Bianmin backup, or damaged: {0}")]
    Format(String),
    #[error("attachment {0} in the backup does not hash to its name")]
    Attachment(String),
}

/// Writes `snap` and the attachments it names (read from `files`) to `out`.
pub fn write(out: &mut impl Write, snap: &Snapshot, files: &Files) -> Result<(), BackupError> {
    writeln!(out, "{MAGIC}")?;
    serde_json::to_writer(&mut *out, snap).map_err(|e| BackupError::Format(e.to_string()))?;
    writeln!(out)?;
    for (sha, size, _) in &snap.attachments {
        let mut f = std::fs::File::open(files.attachment_path(sha))?;
        writeln!(out, "A {sha} {size}")?;
        let copied = std::io::copy(&mut (&mut f).take(*size), out)?;
        if copied != *size {
            return Err(BackupError::Format(format!(
                "attachment {sha} is shorter than recorded"
            )));
        }
        writeln!(out)?;
    }
    writeln!(out, "END")?;
    out.flush()?;
    Ok(())
}

fn line(input: &mut impl BufRead) -> Result<String, BackupError> {
    let mut l = String::new();
    if input.read_line(&mut l)? == 0 {
        return Err(BackupError::Format("ends early".into()));
    }
    Ok(l.trim_end_matches('\n').to_string())
}

/// Reads a backup: the snapshot, with every attachment written into `files` (verified).
pub fn read(input: &mut impl BufRead, files: &Files) -> Result<Snapshot, BackupError> {
    if line(input)? != MAGIC {
        return Err(BackupError::Format("no header".into()));
    }
    let snap: Snapshot =
        serde_json::from_str(&line(input)?).map_err(|e| BackupError::Format(e.to_string()))?;
    loop {
        let l = line(input)?;
        if l == "END" {
            break;
        }
        let mut parts = l.split(' ');
        let (Some("A"), Some(sha), Some(len), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BackupError::Format(format!("unexpected line {l:?}")));
        };
        if !crate::digest::is_sha256(sha) {
            return Err(BackupError::Format(format!("bad attachment name {sha:?}")));
        }
        let len: u64 = len
            .parse()
            .map_err(|_| BackupError::Format(format!("bad length in {l:?}")))?;
        let mut bytes = Vec::with_capacity(len.min(64 << 20) as usize);
        input.take(len).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != len || !line(input)?.is_empty() {
            return Err(BackupError::Format(format!(
                "attachment {sha} is cut short"
            )));
        }
        if hex::encode(Sha256::digest(&bytes)) != sha {
            return Err(BackupError::Attachment(sha.to_string()));
        }
        crate::digest::write_atomic(&files.attachment_path(sha), &bytes)?;
    }
    Ok(snap)
}

/// The header the `backup` command sends with the data directory's admin token.
pub const H_ADMIN_TOKEN: &str = "x-bianmin-admin-token";

/// GET /admin/backup: a backup of the running embedded town, for `bianmin-town backup` on the
/// same machine (loopback only, and only with the token in the data directory, which only who
/// may read the data anyway can present).
pub async fn serve(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let loopback = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_none_or(|c| c.0.ip().is_loopback());
    let token_ok = req
        .headers()
        .get(H_ADMIN_TOKEN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            crate::digest::sha256_hex(t.as_bytes())
                == crate::digest::sha256_hex(state.admin_token.as_bytes())
        });
    if !loopback || !token_ok {
        return crate::ApiError::not_found("no such route").into_response();
    }
    let st = state.clone();
    let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, BackupError> {
        let mut snap = st.store.snapshot()?;
        crate::store::FileAdmin::new(st.files.root()).export_into(&mut snap)?;
        // Unnamed: nothing is left behind if the transfer breaks.
        let mut f = tempfile::tempfile_in(st.files.root())?;
        let mut w = std::io::BufWriter::new(&mut f);
        write(&mut w, &snap, &st.files)?;
        drop(w);
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0))?;
        Ok(f)
    })
    .await;
    match file {
        Ok(Ok(f)) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(f));
            // A length, not chunks: the `backup` command reads the answer with a plain socket.
            (
                [(axum::http::header::CONTENT_LENGTH, len.to_string())],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Ok(Err(BackupError::Store(StoreError::Unsupported(why)))) => {
            crate::ApiError::new(axum::http::StatusCode::NOT_IMPLEMENTED, "unsupported", why)
                .into_response()
        }
        Ok(Err(e)) => crate::ApiError::internal(e).into_response(),
        Err(e) => crate::ApiError::internal(e).into_response(),
    }
}
