//! The audit log: every town action and every access to personal data, hash-chained.
//!
//! Each entry stores the previous entry's hash and its own hash over (previous hash, content), so
//! editing, deleting or reordering any stored entry breaks the chain at that point and
//! [`verify_chain`] names the first bad entry. The chain is extended inside the same storage
//! transaction as the change it records, so an action is never stored without its audit entry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is being recorded, before it gets its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub at: DateTime<Utc>,
    /// Device id (or `admin` for the CLI).
    pub actor: String,
    /// `enrol`, `submit`, `resubmit`, `accept`, `view_case`, `view_inbox`, ...
    pub action: String,
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub detail: String,
}

impl AuditDraft {
    pub fn new(actor: &str, action: &str, case_id: Option<&str>, detail: impl Into<String>) -> AuditDraft {
        AuditDraft {
            at: Utc::now(),
            actor: actor.to_string(),
            action: action.to_string(),
            case_id: case_id.map(str::to_string),
            detail: detail.into(),
        }
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub draft: AuditDraft,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over the previous hash, the sequence number and the content.
pub fn entry_hash(prev_hash: &str, seq: u64, draft: &AuditDraft) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(seq.to_be_bytes());
    h.update(serde_json::to_vec(draft).expect("audit drafts serialize"));
    hex::encode(h.finalize())
}

/// Chains a draft after `prev` (`None` for the first entry).
pub fn chain(prev: Option<(u64, &str)>, draft: AuditDraft) -> AuditEntry {
    let (seq, prev_hash) = match prev {
        Some((s, h)) => (s + 1, h.to_string()),
        None => (1, GENESIS.to_string()),
    };
    let hash = entry_hash(&prev_hash, seq, &draft);
    AuditEntry { seq, draft, prev_hash, hash }
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
    #[error("audit entry {seq}: content does not match its hash (edited)")]
    Edited { seq: u64 },
    #[error("audit entry {seq}: does not follow the previous entry (removed, inserted or reordered)")]
    Broken { seq: u64 },
}

/// Checks the whole log, oldest first.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), AuditError> {
    let mut prev_hash = GENESIS.to_string();
    let mut prev_seq = 0u64;
    for e in entries {
        if e.seq != prev_seq + 1 || e.prev_hash != prev_hash {
            return Err(AuditError::Broken { seq: e.seq });
        }
        if entry_hash(&e.prev_hash, e.seq, &e.draft) != e.hash {
            return Err(AuditError::Edited { seq: e.seq });
        }
        prev_hash = e.hash.clone();
        prev_seq = e.seq;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            let e = chain(prev, AuditDraft::new("K7Q2MX", "view_case", Some("c"), format!("{i}")));
            out.push(e);
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        verify_chain(&log(5)).unwrap();
    }

    #[test]
    fn edits_removals_and_reorders_are_detected() {
        let mut edited = log(5);
        edited[2].draft.actor = "someone else".into();
        assert_eq!(verify_chain(&edited), Err(AuditError::Edited { seq: 3 }));

        let mut removed = log(5);
        removed.remove(1);
        assert_eq!(verify_chain(&removed), Err(AuditError::Broken { seq: 3 }));

        let mut swapped = log(5);
        swapped.swap(1, 2);
        assert!(verify_chain(&swapped).is_err());

        // Recomputing one entry's hash does not help: the next entry still points at the old one.
        let mut rehashed = log(5);
        rehashed[2].draft.detail = "forged".into();
        rehashed[2].hash = entry_hash(&rehashed[2].prev_hash, 3, &rehashed[2].draft);
        assert_eq!(verify_chain(&rehashed), Err(AuditError::Broken { seq: 4 }));
    }
}
