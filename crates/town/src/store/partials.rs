//! Unfinished uploads whose bytes sit in the object store, so that every server over one database
//! and bucket can resume them: the bookkeeping of each (declared length, the device that opened
//! it, the byte offset committed so far and the segment objects that hold those bytes) is kept
//! here, and the offset only moves by compare-and-set. Two servers that each received the bytes
//! after the same offset (a phone that gave up on one and resumed on the other) cannot both
//! commit them: exactly one wins, and the other learns the offset that won.
//!
//! The segment bytes themselves are `segments`' business; the embedded default without an object
//! store keeps its partial files on the local disk instead (`files`).

use serde::{Deserialize, Serialize};

use super::StoreError;

/// One piece of an unfinished upload, held as an object of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Offset of its first byte in the page.
    pub start: u64,
    /// Random id of the request that wrote it: two requests writing from the same offset write
    /// different objects, so the loser's bytes never replace the winner's.
    pub attempt: String,
    /// Bytes it holds (never 0).
    pub len: u64,
}

/// An unfinished upload of one page by one village.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub village: String,
    pub sha: String,
    /// The `Upload-Length` it was opened with.
    pub length: u64,
    /// The device that opened it (per-device limit on open uploads).
    pub device: String,
    /// Bytes committed: the segments cover `0..offset` without gaps.
    pub offset: u64,
    /// In order of `start`.
    pub segments: Vec<Segment>,
    /// Unix seconds of its opening or last commit (expiry).
    pub touched: i64,
}

/// Outcome of opening (or continuing) an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Open, as stored (new or continued).
    Open(Partial),
    /// This village's upload of the page was opened with another length.
    LengthMismatch(u64),
    /// The device already holds this many unfinished uploads.
    TooManyOpen(usize),
}

/// Outcome of committing a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    /// Committed; the upload as stored after.
    Won(Partial),
    /// Another request committed first: the offset now committed.
    Lost(u64),
    /// No such upload any more (finished, expired or discarded).
    Gone,
}

/// The stored bookkeeping of unfinished uploads (see the module comment).
pub trait PartialStore: Send + Sync {
    /// `village`'s unfinished upload of `sha`.
    fn partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError>;
    /// Opens `village`'s upload of `sha` of `length` bytes for `device` at `now` unless open
    /// already; a new one is refused while `device` holds `max_open` unfinished ones in `village`.
    /// Durable before returning; concurrent calls for one device are counted one at a time.
    fn begin_partial(
        &self,
        village: &str,
        sha: &str,
        length: u64,
        device: &str,
        max_open: usize,
        now: i64,
    ) -> Result<Begin, StoreError>;
    /// Appends `segment` if the committed offset is still `segment.start` (and the segment stays
    /// within the declared length): compare-and-set, of any number of concurrent calls from any
    /// number of servers with the same start exactly one wins. Durable before returning.
    fn advance_partial(
        &self,
        village: &str,
        sha: &str,
        segment: &Segment,
        now: i64,
    ) -> Result<Advance, StoreError>;
    /// Forgets an upload (finished or refused); what it was, if it existed.
    fn remove_partial(&self, village: &str, sha: &str) -> Result<Option<Partial>, StoreError>;
    /// Forgets every upload last touched before `before` (Unix seconds) and returns them, so
    /// that their segment objects can be deleted.
    fn take_stale_partials(&self, before: i64) -> Result<Vec<Partial>, StoreError>;
    /// Every unfinished upload (backup, migrate).
    fn all_partials(&self) -> Result<Vec<Partial>, StoreError>;
}

/// Checks a segment against the upload it extends: the compare-and-set rule both backends share.
pub(crate) fn advance(p: &mut Partial, segment: &Segment, now: i64) -> Result<(), u64> {
    if p.offset != segment.start
        || segment.len == 0
        || segment
            .start
            .checked_add(segment.len)
            .is_none_or(|end| end > p.length)
    {
        return Err(p.offset);
    }
    p.offset += segment.len;
    p.segments.push(segment.clone());
    p.touched = now;
    Ok(())
}
