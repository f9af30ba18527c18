//! The audit log: every town action and every access to personal data, hash-chained.
//!
//! Each entry stores the previous entry's hash and its own hash over (previous hash, content), so
//! editing, deleting or reordering any stored entry breaks the chain at that point and
//! [`verify_chain`] names the first bad entry. The chain is extended inside the same storage
//! transaction as the change it records, so an action is never stored without its audit entry.
//!
//! A chain alone does not stop someone who can write the database from rewriting its tail and
//! recomputing every hash after the edit. So the head is anchored: `serve` exports an [`Anchor`]
//! at start, periodically (daily by default) and at shutdown, appending it to
//! `audit-anchors.jsonl` in the data directory (copy that file off the machine: to the county,
//! to removable media). Each anchor is signed with the server key and lists the hashes of the
//! entries since the previous one, so [`verify_anchored`] can name the first entry whose stored
//! hash differs from what was exported, even when the rewritten chain is internally consistent.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
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

/// Longest actor, action or case id kept in an entry, in characters.
pub const MAX_FIELD_CHARS: usize = 80;
/// Longest detail kept in an entry, in characters.
pub const MAX_DETAIL_CHARS: usize = 1000;

/// `s` cut to `max` characters, control characters replaced, with a note of what was cut. Parts
/// of an entry may come from a client (a login name, a note); the log must not grow with them.
pub fn bounded(s: &str, max: usize) -> String {
    let n = s.chars().count();
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if n > max {
        out.push_str(&format!("…(+{} chars)", n - max));
    }
    out
}

impl AuditDraft {
    /// A draft stamped now. Every field is bounded (`bounded`): callers may pass client input.
    pub fn new(
        actor: &str,
        action: &str,
        case_id: Option<&str>,
        detail: impl Into<String>,
    ) -> AuditDraft {
        AuditDraft {
            at: Utc::now(),
            actor: bounded(actor, MAX_FIELD_CHARS),
            action: bounded(action, MAX_FIELD_CHARS),
            case_id: case_id.map(|c| bounded(c, MAX_FIELD_CHARS)),
            detail: bounded(&detail.into(), MAX_DETAIL_CHARS),
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
    AuditEntry {
        seq,
        draft,
        prev_hash,
        hash,
    }
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
    #[error("audit entry {seq}: content does not match its hash (edited)")]
    Edited { seq: u64 },
    #[error(
        "audit entry {seq}: does not follow the previous entry (removed, inserted or reordered)"
    )]
    Broken { seq: u64 },
    #[error("audit entry {seq}: differs from the copy of its hash exported in anchor {anchor} (rewritten)")]
    Rewritten { seq: u64, anchor: usize },
    #[error("audit entry {seq}: missing, though anchor {anchor} exported it (log truncated)")]
    Truncated { seq: u64, anchor: usize },
    #[error("anchor {anchor}: not signed by this town's server key, or altered")]
    BadAnchor { anchor: usize },
}

impl AuditError {
    /// The first bad entry's sequence number (`None` for a bad anchor, which names no entry).
    pub fn seq(&self) -> Option<u64> {
        match self {
            AuditError::Edited { seq } | AuditError::Broken { seq } => Some(*seq),
            AuditError::Rewritten { seq, .. } | AuditError::Truncated { seq, .. } => Some(*seq),
            AuditError::BadAnchor { .. } => None,
        }
    }
}

/// The file in the data directory that anchors are appended to, one JSON object a line.
pub const ANCHOR_FILE: &str = "audit-anchors.jsonl";

/// A signed export of the audit chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The head's sequence number (0: empty log).
    pub seq: u64,
    /// The head's hash (`GENESIS` for an empty log).
    pub hash: String,
    pub at: DateTime<Utc>,
    /// Sequence number of `hashes[0]`.
    pub first_seq: u64,
    /// Hashes of the entries `first_seq..=seq`: those since the previous anchor.
    pub hashes: Vec<String>,
    /// Ed25519 (hex) by the server key over [`Anchor::signing_string`].
    pub signature: String,
}

impl Anchor {
    /// The exact text the server signs.
    pub fn signing_string(&self) -> String {
        let mut h = Sha256::new();
        for x in &self.hashes {
            h.update(x.as_bytes());
            h.update(b"\n");
        }
        format!(
            "bianmin-audit-anchor/v1\n{}\n{}\n{}\n{}\n{}",
            self.seq,
            self.hash,
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.first_seq,
            hex::encode(h.finalize())
        )
    }

    fn verifies(&self, key: &VerifyingKey) -> bool {
        hex::decode(&self.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|sig| {
                key.verify_strict(self.signing_string().as_bytes(), &sig)
                    .is_ok()
            })
    }
}

/// The anchor of `log`'s head, covering the entries after `prev` (the last anchor written).
pub fn make_anchor(key: &SigningKey, log: &[AuditEntry], prev: Option<&Anchor>) -> Anchor {
    let after = prev.map_or(0, |a| a.seq);
    let (seq, hash) = log
        .last()
        .map_or((0, GENESIS.to_string()), |e| (e.seq, e.hash.clone()));
    let mut a = Anchor {
        seq,
        hash,
        // Truncated to what the signing string carries, so the stored value re-verifies exactly.
        at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is valid"),
        first_seq: after + 1,
        hashes: log
            .iter()
            .filter(|e| e.seq > after)
            .map(|e| e.hash.clone())
            .collect(),
        signature: String::new(),
    };
    a.signature = hex::encode(key.sign(a.signing_string().as_bytes()).to_bytes());
    a
}

/// Reads the anchors of `path` (none if it does not exist). A line that is not an anchor is
/// reported as a bad anchor by [`verify_anchored`], not skipped.
pub fn read_anchors(path: &Path) -> std::io::Result<Vec<Option<Anchor>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Appends an anchor of the store's current head to `path`, durably, unless the last anchor
/// there already covers it; the anchor written, if any.
pub fn export_anchor(
    store: &dyn crate::store::TownStore,
    key: &SigningKey,
    path: &Path,
) -> Result<Option<Anchor>, AnchorError> {
    let log = store.audit_log()?;
    let prev = read_anchors(path)?.into_iter().flatten().last();
    if prev
        .as_ref()
        .is_some_and(|p| p.seq >= log.last().map_or(0, |e| e.seq))
    {
        return Ok(None);
    }
    let a = make_anchor(key, &log, prev.as_ref());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_vec(&a).expect("anchors serialize");
    line.push(b'\n');
    f.write_all(&line)?;
    f.sync_all()?;
    Ok(Some(a))
}

/// Why an anchor could not be written.
#[derive(Debug, Error)]
pub enum AnchorError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("anchor file: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks the chain and every anchor against it; the first bad entry (lowest sequence number)
/// when something is wrong. `anchors` as read by [`read_anchors`], oldest first.
pub fn verify_anchored(
    entries: &[AuditEntry],
    anchors: &[Option<Anchor>],
    key: &VerifyingKey,
) -> Result<(), AuditError> {
    let chain = verify_chain(entries).err();
    let mut anchored = None;
    'anchors: for (i, a) in anchors.iter().enumerate() {
        let n = i + 1;
        let Some(a) = a.as_ref().filter(|a| a.verifies(key)) else {
            anchored = Some(AuditError::BadAnchor { anchor: n });
            break;
        };
        for (k, h) in a.hashes.iter().enumerate() {
            let seq = a.first_seq + k as u64;
            // After `verify_chain` entry `seq` sits at index `seq - 1`; a broken chain is caught
            // by `chain` and compared below.
            match entries.iter().find(|e| e.seq == seq) {
                None => {
                    anchored = Some(AuditError::Truncated { seq, anchor: n });
                    break 'anchors;
                }
                Some(e) if &e.hash != h => {
                    anchored = Some(AuditError::Rewritten { seq, anchor: n });
                    break 'anchors;
                }
                Some(_) => {}
            }
        }
    }
    match (chain, anchored) {
        (None, None) => Ok(()),
        (Some(e), None) | (None, Some(e)) => Err(e),
        (Some(c), Some(a)) => Err(match (c.seq(), a.seq()) {
            (Some(x), Some(y)) if y < x => a,
            (_, None) => a,
            _ => c,
        }),
    }
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
            let e = chain(
                prev,
                AuditDraft::new("K7Q2MX", "view_case", Some("c"), format!("{i}")),
            );
            out.push(e);
        }
        out
    }

    /// Rewrites entry `from` and re-chains everything after it: internally consistent.
    fn rewrite_tail(log: &mut [AuditEntry], from: usize) {
        log[from - 1].draft.detail = "forged".into();
        for i in from - 1..log.len() {
            let prev = if i == 0 {
                GENESIS.to_string()
            } else {
                log[i - 1].hash.clone()
            };
            log[i].prev_hash = prev.clone();
            log[i].hash = entry_hash(&prev, log[i].seq, &log[i].draft);
        }
    }

    #[test]
    fn anchors_catch_a_consistently_rewritten_tail_and_name_its_first_entry() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let vk = key.verifying_key();
        let mut full = log(9);
        let a1 = make_anchor(&key, &full[..4], None);
        let a2 = make_anchor(&key, &full[..7], Some(&a1));
        assert_eq!((a2.first_seq, a2.hashes.len()), (5, 3));
        let anchors = vec![Some(a1.clone()), Some(a2.clone())];
        verify_anchored(&full, &anchors, &vk).unwrap();
        let original = full.clone();
        rewrite_tail(&mut full, 6);
        // The chain alone is fooled; the anchors are not.
        verify_chain(&full).unwrap();
        assert_eq!(
            verify_anchored(&full, &anchors, &vk),
            Err(AuditError::Rewritten { seq: 6, anchor: 2 })
        );
        // Cutting the log back before the anchored head is caught too.
        assert_eq!(
            verify_anchored(&original[..5], &anchors, &vk),
            Err(AuditError::Truncated { seq: 6, anchor: 2 })
        );
        // An anchor the attacker re-made without the server key does not count.
        let mut forged = a2;
        forged.hashes[1] = full[5].hash.clone();
        assert_eq!(
            verify_anchored(&full, &[Some(a1), Some(forged)], &vk),
            Err(AuditError::BadAnchor { anchor: 2 })
        );
        assert_eq!(
            verify_anchored(&full, &[None], &vk),
            Err(AuditError::BadAnchor { anchor: 1 })
        );
    }

    #[test]
    fn audit_fields_are_bounded() {
        let d = AuditDraft::new(
            &"x".repeat(2_000_000),
            "login",
            Some("c"),
            "y\n".repeat(600_000),
        );
        assert!(
            d.actor.chars().count() < MAX_FIELD_CHARS + 20,
            "{}",
            d.actor.len()
        );
        assert!(d.detail.chars().count() < MAX_DETAIL_CHARS + 20);
        assert!(!d.detail.contains('\n'));
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
