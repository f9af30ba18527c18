//! Unfinished uploads kept in the object store, so that any server over the same database and
//! bucket resumes them. Each upload request writes the bytes it received as one segment object,
//! `partial/{village}/{sha}/{start}-{attempt}`, then commits it in the store by compare-and-set
//! (`store::partials`): of two requests that wrote from the same offset (on two servers) one
//! wins, and the other deletes its object. The complete page is streamed from its segments into
//! its final object while it is hashed; a page that does not hash to its name is never completed
//! (the multipart upload is aborted), and one that does is read back and hashed again, as a page
//! from a local partial file is, before the store learns of it.

use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::files::Finish;
use crate::objects::{key, verify_remote, ObjectsError, PART};
use crate::store::partials::{Partial, Segment};

/// The object holding one segment.
pub fn segment_key(village: &str, sha: &str, start: u64, attempt: &str) -> ObjectPath {
    ObjectPath::from(format!("partial/{village}/{sha}/{start}-{attempt}"))
}

/// A fresh attempt id: two requests never write the same segment object.
pub fn new_attempt() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// Writes one request's bytes as one segment object, never holding more than a part or two in
/// memory: a short segment is one `PUT`, a long one a multipart upload.
pub struct SegmentWriter {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    start: u64,
    attempt: String,
    buf: Vec<u8>,
    multipart: Option<WriteMultipart>,
    len: u64,
}

impl SegmentWriter {
    /// A new segment of `village`'s upload of `sha` from byte `start`, under a fresh attempt id.
    pub fn new(store: Arc<dyn ObjectStore>, village: &str, sha: &str, start: u64) -> SegmentWriter {
        let attempt = new_attempt();
        SegmentWriter {
            store,
            key: segment_key(village, sha, start, &attempt),
            start,
            attempt,
            buf: Vec::new(),
            multipart: None,
            len: 0,
        }
    }

    /// Appends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ObjectsError> {
        self.len += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= PART {
            if self.multipart.is_none() {
                let upload = self.store.put_multipart(&self.key).await?;
                self.multipart = Some(WriteMultipart::new_with_chunk_size(upload, PART));
            }
            let w = self.multipart.as_mut().expect("just started");
            // Bounded memory: at most two parts in flight.
            w.wait_for_capacity(2).await?;
            w.write(&self.buf);
            self.buf.clear();
        }
        Ok(())
    }

    /// Stores what was written; the segment it makes (of length 0 when nothing was written:
    /// then nothing is stored).
    pub async fn finish(self) -> Result<Segment, ObjectsError> {
        match self.multipart {
            Some(mut w) => {
                w.write(&self.buf);
                w.finish().await?;
            }
            None if self.buf.is_empty() => {}
            None => {
                self.store
                    .put(&self.key, PutPayload::from(self.buf))
                    .await?;
            }
        }
        Ok(Segment {
            start: self.start,
            attempt: self.attempt,
            len: self.len,
        })
    }

    /// Gives up: nothing is stored.
    pub async fn abort(self) {
        if let Some(w) = self.multipart {
            let _ = w.abort().await;
        }
    }
}

/// Streams `p`'s segments, which must cover the whole page, into the page's object while hashing
/// them; completes it only if the bytes hash to the page's name, then reads it back and hashes it
/// again. A missing segment (its object lost) counts as a mismatch: the page must come again.
pub async fn finish(store: &dyn ObjectStore, p: &Partial) -> Result<Finish, ObjectsError> {
    let mut w = WriteMultipart::new_with_chunk_size(store.put_multipart(&key(&p.sha)).await?, PART);
    let mut h = Sha256::new();
    let mut total = 0u64;
    for s in &p.segments {
        let mut stream = match store
            .get(&segment_key(&p.village, &p.sha, s.start, &s.attempt))
            .await
        {
            Ok(r) => r.into_stream(),
            Err(object_store::Error::NotFound { .. }) => {
                tracing::warn!(sha = %p.sha, start = s.start, "segment object missing; the page must be sent again");
                w.abort().await?;
                return Ok(Finish::HashMismatch);
            }
            Err(e) => {
                let _ = w.abort().await;
                return Err(e.into());
            }
        };
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e.into());
                }
            };
            h.update(&chunk);
            total += chunk.len() as u64;
            if let Err(e) = w.wait_for_capacity(2).await {
                let _ = w.abort().await;
                return Err(e.into());
            }
            w.write(&chunk);
        }
    }
    if total != p.length || hex::encode(h.finalize()) != p.sha {
        // Never completed, so never visible: a page already stored under this name (from
        // another village) keeps its bytes.
        w.abort().await?;
        return Ok(Finish::HashMismatch);
    }
    w.finish().await?;
    verify_remote(store, &p.sha).await?;
    Ok(Finish::Stored)
}

/// Deletes the segment objects of `segments` (a missing one is fine).
pub async fn delete(store: &dyn ObjectStore, village: &str, sha: &str, segments: &[Segment]) {
    for s in segments {
        match store
            .delete(&segment_key(village, sha, s.start, &s.attempt))
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            // Left behind, it costs only space; the page is not affected.
            Err(e) => tracing::warn!(%sha, start = s.start, error = %e, "segment not deleted"),
        }
    }
}
