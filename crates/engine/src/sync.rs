//! The sync loop: uploads sealed cases with their attachments and brings town decisions back.
//!
//! One run (`sync_once`): for every queued case, each attachment is uploaded from the byte the
//! server already holds (HEAD, then PATCH from there), the case is submitted by its own id, the
//! server's signed receipt is checked and recorded; then 已送达 marks the agent recorded offline
//! are sent; then the changes feed is read from the stored cursor and every decision applied; then a
//! newer published catalog, if any, is fetched part by part, verified and installed.
//! Runs are retried with exponential backoff and full jitter
//! (`sync_with_retry`), and [`spawn_sync_loop`] runs them on enqueue, when the town centre becomes
//! reachable again, and periodically, reporting progress (cases and bytes) through a channel.
//!
//! The outbox is reached through the small [`SyncStore`] trait, so this file does not depend on how
//! the outbox stores cases.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bianmin_protocol::sync::{
    ActionRequest, CatalogManifest, CatalogPartsRequest, Receipt, TownAction,
};
use bianmin_protocol::{CaseSubmission, DecisionEvent};
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use rand::Rng;
use thiserror::Error;
use tokio::sync::mpsc;

use crate::catalog::{content_hash, Catalog};
use crate::outbox::InstalledCatalog;
use crate::transport::{verify_receipt, Transport, TransportError};

/// A failure inside the device's own store.
pub type StoreFailure = Box<dyn std::error::Error + Send + Sync>;

/// What the sync loop needs from the outbox.
pub trait SyncStore: Send + Sync {
    /// Sealed versions that have no receipt yet, oldest first.
    fn pending(&self) -> Result<Vec<CaseSubmission>, StoreFailure>;
    /// Up to `max` plain bytes of an attachment, from `offset`.
    fn read_attachment(
        &self,
        sha256: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, StoreFailure>;
    /// Records the town's receipt; the version leaves the queue.
    fn mark_uploaded(&self, receipt: &Receipt) -> Result<(), StoreFailure>;
    /// Applies a decision from the changes feed. `seq` is the feed's own position of the event and
    /// the idempotency key: applying the same `seq` twice changes nothing.
    fn apply_town_event(&self, seq: u64, event: &DecisionEvent) -> Result<(), StoreFailure>;
    /// The changes-feed cursor (0 before the first fetch).
    fn cursor(&self) -> Result<u64, StoreFailure>;
    fn set_cursor(&self, cursor: u64) -> Result<(), StoreFailure>;
    /// 已送达 marks recorded on the phone and not yet answered by the town, oldest first. A store
    /// that cannot record them (a staff device, a test double) has none.
    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreFailure> {
        Ok(Vec::new())
    }
    /// The town answered a mark: `None` when it recorded it, `Some(reason)` when it refused.
    /// Either way the mark leaves the queue; a refusal is kept for the agent to read.
    fn delivery_settled(&self, case_id: &str, refused: Option<&str>) -> Result<(), StoreFailure> {
        let _ = (case_id, refused);
        Ok(())
    }
    /// The newest catalog version held (`None` before the first), or `Err` when the store does not
    /// keep catalogs at all (a test double): then sync leaves catalogs alone.
    fn held_catalog(&self) -> Result<Option<InstalledCatalog>, StoreFailure> {
        Err("this store keeps no catalogs".into())
    }
    /// Installs a version whose signature and parts were verified.
    fn install_catalog(
        &self,
        manifest: &CatalogManifest,
        catalog: &Catalog,
    ) -> Result<(), StoreFailure> {
        let _ = (manifest, catalog);
        Ok(())
    }
}

/// The village agent handed a completed result to the resident (代办员送达), possibly where
/// there is no signal; the mark waits in the outbox until a run sends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingDelivery {
    pub case_id: String,
    /// The agent's name, as on their other actions.
    pub person: String,
    /// When the result was handed over, by the phone's clock.
    pub at: DateTime<Utc>,
}

impl PendingDelivery {
    /// The action sent for the mark. The town records its own time; the handover time goes in
    /// the note (China time) so staff see when it really happened.
    pub fn action(&self) -> ActionRequest {
        let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
        let note = format!(
            "送达时间：{}",
            self.at.with_timezone(&china).format("%Y-%m-%d %H:%M")
        );
        ActionRequest {
            action: TownAction::Deliver { note },
            staff: self.person.clone(),
            expected_version: None,
            pin: None,
        }
    }
}

/// Why a sync run stopped.
#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("local store: {0}")]
    Store(String),
    #[error("receipt for {case_id} v{version} does not verify with the town centre's key")]
    BadReceipt { case_id: String, version: u32 },
    /// A town decision could not be stored; the feed's cursor stays before it, so the next run
    /// tries it again instead of losing it.
    #[error("town event {seq} for {case_id} could not be applied: {reason}")]
    Apply {
        seq: u64,
        case_id: String,
        reason: String,
    },
    /// A published catalog failed a check (signature, a part's hash, validation); the device keeps
    /// the version it has.
    #[error("catalog version {version} refused: {reason}")]
    BadCatalog { version: u32, reason: String },
}

impl SyncError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SyncError::Transport(t) if t.is_transient())
    }

    /// Plain Chinese for the agent.
    pub fn user_message(&self) -> String {
        match self {
            SyncError::Transport(t) => t.user_message(),
            SyncError::Store(_) => {
                "手机存储读写出错，办件未上传。请检查存储空间后重试。".to_string()
            }
            SyncError::BadReceipt { .. } => {
                "镇中心回执校验失败，可能连到了错误的服务器。请联系镇中心。".to_string()
            }
            SyncError::BadCatalog { .. } => {
                "镇中心发来的事项清单校验不通过，手机继续使用原来的版本。请联系镇中心。".to_string()
            }
            SyncError::Apply { case_id, .. } => format!(
                "镇中心发来的办件 {case_id} 的消息没能存进手机，下次同步会再试。请检查手机存储空间。"
            ),
        }
    }
}

fn store_err(e: StoreFailure) -> SyncError {
    SyncError::Store(e.to_string())
}

/// Progress and outcomes, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A run starts with this much to send.
    Started { cases: usize, bytes: u64 },
    /// Bytes and cases done so far in this run.
    Progress {
        cases_done: usize,
        cases_total: usize,
        bytes_done: u64,
        bytes_total: u64,
    },
    /// The town holds this version (signed receipt recorded).
    Acknowledged { case_id: String, version: u32 },
    /// The town refused this case; it stays in the outbox with the reason.
    Rejected {
        case_id: String,
        status: u16,
        message: String,
    },
    /// The town recorded the agent's 已送达 for this case.
    DeliveryRecorded { case_id: String },
    /// The town refused the agent's 已送达 (e.g. it changed how the result is delivered).
    DeliveryRefused {
        case_id: String,
        status: u16,
        message: String,
    },
    /// A town decision was applied.
    Decision(DecisionEvent),
    /// A newer catalog version was installed (事项已更新); `changes` are Chinese lines.
    CatalogUpdated { version: u32, changes: Vec<String> },
    /// The run ended.
    Finished {
        acknowledged: usize,
        rejected: usize,
        decisions: usize,
    },
    /// The run failed; `retry_in` when another attempt is scheduled. `message` is Chinese.
    Failed {
        message: String,
        retry_in: Option<Duration>,
    },
    /// The town centre became reachable or unreachable.
    Reachability { online: bool },
    /// The phone's clock is far off the town's (`offset_secs` = town − phone): the run used the
    /// town's time, and `message` asks the agent, in Chinese, to set the phone's clock.
    ClockNotice { offset_secs: i64, message: String },
}

/// Reports a wrong phone clock the transport learned about during a run.
fn clock_notice(t: &Transport, progress: &(dyn Fn(SyncEvent) + Send + Sync)) {
    if let Some(message) = t.clock_notice() {
        progress(SyncEvent::ClockNotice {
            offset_secs: t.clock_offset_secs(),
            message,
        });
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub acknowledged: Vec<(String, u32)>,
    /// Cases the server refused, with status and message.
    pub rejected: Vec<(String, u16, String)>,
    pub decisions: usize,
    /// 已送达 marks the town recorded in this run.
    pub deliveries: usize,
    /// Attachment bytes sent in PATCH bodies (including chunks cut off by a broken connection).
    pub bytes_sent: u64,
    /// Attachment bytes the server confirmed holding during this run.
    pub bytes_acked: u64,
    /// Cases still waiting after the run (rejected ones).
    pub remaining: usize,
}

/// Quick retries of one request inside a run before the whole run backs off: every request of
/// the protocol is idempotent, and on a link that drops a third of all connections a run that
/// needs a dozen requests in a row would otherwise almost never finish.
const IN_RUN_RETRIES: u32 = 3;

async fn pause(n: u32) {
    let ms = rand::thread_rng().gen_range(0..=(25u64 << n.min(6)));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Runs one idempotent request, retrying transient failures a few times within the run.
async fn in_run_retry<T, F, Fut>(mut request: F) -> Result<T, TransportError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, TransportError>>,
{
    let mut n = 0;
    loop {
        match request().await {
            Err(e) if e.is_transient() && n < IN_RUN_RETRIES => {
                n += 1;
                pause(n).await;
            }
            r => return r,
        }
    }
}

async fn head_retry(
    t: &Transport,
    sha: &str,
) -> Result<bianmin_protocol::sync::UploadOffset, TransportError> {
    in_run_retry(|| t.upload_offset(sha)).await
}

async fn submit_retry(t: &Transport, sub: &CaseSubmission) -> Result<Receipt, TransportError> {
    in_run_retry(|| t.submit(sub)).await
}

async fn act_retry(
    t: &Transport,
    case_id: &str,
    req: &ActionRequest,
) -> Result<(), TransportError> {
    in_run_retry(|| t.act(case_id, req)).await.map(|_| ())
}

async fn changes_retry(
    t: &Transport,
    cursor: u64,
) -> Result<bianmin_protocol::sync::ChangesPage, TransportError> {
    in_run_retry(|| t.changes(cursor)).await
}

/// Largest chunk per PATCH: bounds memory on a cheap phone and the time one request takes.
pub const CHUNK: usize = 1024 * 1024;

pub(crate) async fn upload_attachment(
    store: &dyn SyncStore,
    t: &Transport,
    sha: &str,
    length: u64,
    on_bytes: &mut (dyn FnMut(u64) + Send),
    report: &mut SyncReport,
    known: &mut BTreeMap<String, u64>,
) -> Result<(), SyncError> {
    let state = head_retry(t, sha).await?;
    // Bytes that reached the server during an earlier, broken attempt count as progress now.
    let prev = known.get(sha).copied().unwrap_or(0);
    if state.offset > prev {
        report.bytes_acked += state.offset - prev;
        known.insert(sha.to_string(), state.offset);
    }
    if state.complete {
        on_bytes(length);
        return Ok(());
    }
    let mut offset = state.offset;
    on_bytes(offset);
    let mut broken = 0;
    loop {
        let chunk = store
            .read_attachment(sha, offset, CHUNK)
            .map_err(store_err)?;
        if chunk.is_empty() && offset < length {
            return Err(SyncError::Store(format!(
                "attachment {sha} is shorter than recorded"
            )));
        }
        let n = chunk.len() as u64;
        report.bytes_sent += n;
        match t.upload_chunk(sha, offset, length, chunk).await {
            Ok(u) => {
                report.bytes_acked += u.offset.saturating_sub(offset);
                known.insert(sha.to_string(), u.offset);
                on_bytes(u.offset.saturating_sub(offset));
                offset = u.offset;
                if u.complete {
                    return Ok(());
                }
            }
            // The server holds a different amount (an earlier chunk landed after all): resume there.
            Err(TransportError::Rejected {
                status: 409,
                upload_offset: Some(o),
                ..
            }) if o != offset => {
                report.bytes_acked += o.saturating_sub(offset);
                known.insert(sha.to_string(), o);
                on_bytes(o.saturating_sub(offset));
                offset = o;
            }
            // The connection broke mid-chunk: ask where the server got to and go on from there.
            Err(e) if e.is_transient() && broken < IN_RUN_RETRIES => {
                broken += 1;
                pause(broken).await;
                let u = head_retry(t, sha).await?;
                if u.offset > offset {
                    report.bytes_acked += u.offset - offset;
                    known.insert(sha.to_string(), u.offset);
                    on_bytes(u.offset - offset);
                }
                if u.complete {
                    return Ok(());
                }
                offset = u.offset;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One sync run. Transient failures end the run with an error (the caller retries); a case the
/// server refuses is reported and the others continue.
pub async fn sync_once(
    store: &dyn SyncStore,
    t: &Transport,
    server_key: Option<&VerifyingKey>,
    progress: &(dyn Fn(SyncEvent) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let r = sync_run(
        store,
        t,
        server_key,
        progress,
        &mut report,
        &mut BTreeMap::new(),
    )
    .await;
    clock_notice(t, progress);
    r?;
    Ok(report)
}

/// One run, recording what it achieved in `report` even when it fails half-way.
async fn sync_run(
    store: &dyn SyncStore,
    t: &Transport,
    server_key: Option<&VerifyingKey>,
    progress: &(dyn Fn(SyncEvent) + Send + Sync),
    report: &mut SyncReport,
    known: &mut BTreeMap<String, u64>,
) -> Result<(), SyncError> {
    let pending = store.pending().map_err(store_err)?;
    let mut seen = BTreeSet::new();
    let bytes_total: u64 = pending
        .iter()
        .flat_map(|s| s.materials.iter().flat_map(|m| &m.pages))
        .filter(|p| seen.insert(p.sha256.clone()))
        .map(|p| p.bytes)
        .sum();
    progress(SyncEvent::Started {
        cases: pending.len(),
        bytes: bytes_total,
    });
    let mut bytes_done = 0u64;
    let mut uploaded = BTreeSet::new();
    let cases_total = pending.len();
    for (i, sub) in pending.iter().enumerate() {
        for p in sub.materials.iter().flat_map(|m| &m.pages) {
            if !uploaded.insert(p.sha256.clone()) {
                continue;
            }
            let mut on_bytes = |n: u64| {
                bytes_done += n;
                progress(SyncEvent::Progress {
                    cases_done: i,
                    cases_total,
                    bytes_done,
                    bytes_total,
                });
            };
            upload_attachment(store, t, &p.sha256, p.bytes, &mut on_bytes, report, known).await?;
        }
        match submit_retry(t, sub).await {
            Ok(receipt) => {
                if let Some(k) = server_key {
                    if !verify_receipt(k, &receipt)
                        || receipt.case_id != sub.id
                        || receipt.version != sub.version
                    {
                        return Err(SyncError::BadReceipt {
                            case_id: sub.id.clone(),
                            version: sub.version,
                        });
                    }
                }
                store.mark_uploaded(&receipt).map_err(store_err)?;
                report.acknowledged.push((sub.id.clone(), sub.version));
                progress(SyncEvent::Acknowledged {
                    case_id: sub.id.clone(),
                    version: sub.version,
                });
            }
            Err(TransportError::Rejected {
                status, message, ..
            }) if status != 401 => {
                report
                    .rejected
                    .push((sub.id.clone(), status, message.clone()));
                progress(SyncEvent::Rejected {
                    case_id: sub.id.clone(),
                    status,
                    message,
                });
            }
            Err(e) => return Err(e.into()),
        }
        progress(SyncEvent::Progress {
            cases_done: i + 1,
            cases_total,
            bytes_done,
            bytes_total,
        });
    }
    report.remaining = report.rejected.len();
    send_deliveries(store, t, progress, report).await?;
    pull_changes(store, t, progress, report).await?;
    pull_catalog(store, t, server_key, progress).await?;
    progress(SyncEvent::Finished {
        acknowledged: report.acknowledged.len(),
        rejected: report.rejected.len(),
        decisions: report.decisions,
    });
    Ok(())
}

/// Sends the 已送达 marks recorded offline. The town answers a repeated mark as it answered the
/// first, so a mark whose answer was lost is simply sent again.
async fn send_deliveries(
    store: &dyn SyncStore,
    t: &Transport,
    progress: &(dyn Fn(SyncEvent) + Send + Sync),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    for d in store.pending_deliveries().map_err(store_err)? {
        match act_retry(t, &d.case_id, &d.action()).await {
            Ok(()) => {
                store
                    .delivery_settled(&d.case_id, None)
                    .map_err(store_err)?;
                report.deliveries += 1;
                progress(SyncEvent::DeliveryRecorded { case_id: d.case_id });
            }
            Err(TransportError::Rejected {
                status, message, ..
            }) if status != 401 => {
                tracing::warn!(case = %d.case_id, status, %message, "town refused a delivery mark");
                store
                    .delivery_settled(&d.case_id, Some(&delivery_refusal(status)))
                    .map_err(store_err)?;
                progress(SyncEvent::DeliveryRefused {
                    case_id: d.case_id,
                    status,
                    message,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Plain Chinese for a refused 已送达, kept on the case for the agent.
fn delivery_refusal(status: u16) -> String {
    match status {
        403 => "镇中心没有接受您的送达记录：这件的结果已改为其他送达方式。请联系镇中心核实。"
            .to_string(),
        404 => "镇中心找不到这件办件，送达未记录。请联系镇中心。".to_string(),
        409 => "镇中心的办件状态已经变化，送达未记录。请同步后查看最新进度。".to_string(),
        _ => format!("镇中心没有接受送达记录（错误 {status}）。请联系镇中心。"),
    }
}

/// Reads the changes feed from the stored cursor and applies every decision in order. The cursor
/// only moves past an event once it is applied: an event that fails to apply stops the run with
/// [`SyncError::Apply`], and the next run starts from that event again.
pub async fn pull_changes(
    store: &dyn SyncStore,
    t: &Transport,
    progress: &(dyn Fn(SyncEvent) + Send + Sync),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut cursor = store.cursor().map_err(store_err)?;
    loop {
        let page = changes_retry(t, cursor).await?;
        for e in &page.entries {
            if let Err(err) = store.apply_town_event(e.seq, &e.event) {
                tracing::error!(seq = e.seq, case = %e.event.case_id, error = %err, "town event not applied; the cursor stays before it");
                store.set_cursor(cursor).map_err(store_err)?;
                return Err(SyncError::Apply {
                    seq: e.seq,
                    case_id: e.event.case_id.clone(),
                    reason: err.to_string(),
                });
            }
            cursor = e.seq;
            report.decisions += 1;
            progress(SyncEvent::Decision(e.event.clone()));
        }
        cursor = cursor.max(page.cursor);
        store.set_cursor(cursor).map_err(store_err)?;
        if !page.more {
            return Ok(());
        }
    }
}

/// Fetches the newest published catalog when it is newer than the one held: only the parts this
/// device lacks, each checked against the manifest's hash, the whole checked against the signed hash
/// and validated, then installed in one atomic write. Without a server key (an unenrolled test run) no
/// catalog is trusted, so none is fetched.
pub async fn pull_catalog(
    store: &dyn SyncStore,
    t: &Transport,
    server_key: Option<&VerifyingKey>,
    progress: &(dyn Fn(SyncEvent) + Send + Sync),
) -> Result<Option<u32>, SyncError> {
    let (Some(key), Ok(held)) = (server_key, store.held_catalog()) else {
        return Ok(None);
    };
    let manifest = match in_run_retry(|| t.catalog_manifest(None)).await {
        Ok(m) => m,
        // A town centre from before published catalogs: the phone keeps the catalog it has.
        Err(TransportError::Rejected { status: 404, .. }) => {
            tracing::warn!("the town centre publishes no catalog versions; keeping the one held");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let held_version = held.as_ref().map(|h| h.manifest.version).unwrap_or(0);
    if manifest.version <= held_version {
        return Ok(None);
    }
    let version = manifest.version;
    let changes = manifest.changes.clone();
    install_manifest(store, t, key, manifest, held).await?;
    tracing::info!(
        version,
        changes = changes.len(),
        "catalog version installed"
    );
    progress(SyncEvent::CatalogUpdated { version, changes });
    Ok(Some(version))
}

/// Fetches one published version by number (a tablet opening a case made under a version it does
/// not hold), with the same checks as [`pull_catalog`].
pub async fn fetch_catalog_version(
    store: &dyn SyncStore,
    t: &Transport,
    server_key: &VerifyingKey,
    version: u32,
) -> Result<(), SyncError> {
    let held = store.held_catalog().map_err(store_err)?;
    let manifest = in_run_retry(|| t.catalog_manifest(Some(version))).await?;
    if manifest.version != version {
        return Err(SyncError::BadCatalog {
            version,
            reason: format!("the server answered with version {}", manifest.version),
        });
    }
    install_manifest(store, t, server_key, manifest, held).await
}

/// Verifies `manifest`, fetches the parts not in `held` (or the shipped catalog), assembles, checks
/// and installs the version.
async fn install_manifest(
    store: &dyn SyncStore,
    t: &Transport,
    key: &VerifyingKey,
    manifest: CatalogManifest,
    held: Option<InstalledCatalog>,
) -> Result<(), SyncError> {
    let bad = |why: String| SyncError::BadCatalog {
        version: manifest.version,
        reason: why,
    };
    let signature = hex::decode(&manifest.signature)
        .ok()
        .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
        .ok_or_else(|| bad("the signature is malformed".into()))?;
    key.verify_strict(manifest.signing_string().as_bytes(), &signature)
        .map_err(|_| bad("the server's signature does not verify".into()))?;
    // Parts this device already has, from the catalog it holds (or the one it shipped with).
    let base = match held {
        Some(h) => h.catalog,
        None => Catalog::embedded().map_err(|e| bad(e.to_string()))?,
    };
    let mut have: BTreeMap<String, bianmin_protocol::sync::CatalogPart> = base
        .parts()
        .into_iter()
        .map(|p| (content_hash(p.body.as_bytes()), p))
        .collect();
    let missing: Vec<String> = manifest
        .parts
        .iter()
        .filter(|r| !have.contains_key(&r.hash))
        .map(|r| r.name.clone())
        .collect();
    if !missing.is_empty() {
        let req = CatalogPartsRequest {
            version: manifest.version,
            names: missing,
        };
        let got = in_run_retry(|| t.catalog_parts(&req)).await?;
        for p in got.parts {
            have.insert(content_hash(p.body.as_bytes()), p);
        }
    }
    let mut parts = Vec::with_capacity(manifest.parts.len());
    for r in &manifest.parts {
        let mut p = have.get(&r.hash).cloned().ok_or_else(|| {
            bad(format!(
                "part {} is missing or does not match its hash",
                r.name
            ))
        })?;
        // A part with the same content may have come under another name (an item renumbered).
        p.name = r.name.clone();
        parts.push(p);
    }
    let catalog = Catalog::from_parts(&format!("catalog version {}", manifest.version), &parts)
        .map_err(|e| bad(e.to_string()))?;
    if catalog.hash() != manifest.hash {
        return Err(bad(
            "the assembled catalog does not match the signed hash".into()
        ));
    }
    store
        .install_catalog(&manifest, &catalog)
        .map_err(store_err)
}

/// Exponential backoff with full jitter: attempt n waits a uniform time in `[0, min(cap, base·2ⁿ)]`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts per `sync_with_retry` call (at least 1).
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0-based).
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(if ms == 0 { 0 } else { rng.gen_range(0..=ms) })
    }
}

/// Runs sync until it succeeds, a non-transient error happens, or `max_attempts` runs in a row made
/// no progress. A run that moved bytes, got a receipt or applied a decision before failing resets
/// the backoff: on a flaky link every attempt gets further, and the wait must not grow meanwhile.
pub async fn sync_with_retry(
    store: &dyn SyncStore,
    t: &Transport,
    server_key: Option<&VerifyingKey>,
    backoff: &Backoff,
    progress: &(dyn Fn(SyncEvent) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    let mut attempt = 0;
    let mut total = SyncReport::default();
    // Server offsets seen so far, so bytes that arrived before a connection broke count as progress.
    let mut known = BTreeMap::new();
    loop {
        let mut run = SyncReport::default();
        let result = sync_run(store, t, server_key, progress, &mut run, &mut known).await;
        clock_notice(t, progress);
        let advanced = run.bytes_acked > 0 || !run.acknowledged.is_empty() || run.decisions > 0;
        total.acknowledged.extend(run.acknowledged);
        total.decisions += run.decisions;
        total.bytes_sent += run.bytes_sent;
        total.bytes_acked += run.bytes_acked;
        total.rejected = run.rejected;
        total.remaining = run.remaining;
        if advanced {
            attempt = 0;
        }
        match result {
            Ok(()) => return Ok(total),
            Err(e) if e.is_transient() && attempt + 1 < backoff.max_attempts.max(1) => {
                let wait = backoff.delay(attempt, &mut rand::thread_rng());
                progress(SyncEvent::Failed {
                    message: e.user_message(),
                    retry_in: Some(wait),
                });
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => {
                progress(SyncEvent::Failed {
                    message: e.user_message(),
                    retry_in: None,
                });
                return Err(e);
            }
        }
    }
}

/// When the background loop runs.
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// A full run this often even without triggers (decisions arrive this way).
    pub periodic: Duration,
    /// How often to probe `/healthz` while the town centre is unreachable.
    pub probe: Duration,
    pub backoff: Backoff,
}

impl Default for LoopConfig {
    fn default() -> LoopConfig {
        LoopConfig {
            periodic: Duration::from_secs(300),
            probe: Duration::from_secs(15),
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Enqueued,
    NetworkChanged,
    Stop,
}

/// Controls a running sync loop.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    tx: mpsc::UnboundedSender<Trigger>,
}

impl SyncHandle {
    /// A case was sealed into the outbox: sync now.
    pub fn enqueued(&self) {
        let _ = self.tx.send(Trigger::Enqueued);
    }
    /// The platform reports a network change (or the user pressed 立即同步): probe and sync.
    pub fn network_changed(&self) {
        let _ = self.tx.send(Trigger::NetworkChanged);
    }
    pub fn stop(&self) {
        let _ = self.tx.send(Trigger::Stop);
    }
}

/// Starts the background loop on the current tokio runtime; events go to `events`.
pub fn spawn_sync_loop(
    store: Arc<dyn SyncStore>,
    transport: Transport,
    server_key: Option<VerifyingKey>,
    cfg: LoopConfig,
    events: mpsc::UnboundedSender<SyncEvent>,
) -> SyncHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let emit = move |e: SyncEvent| {
            let _ = events.send(e);
        };
        let mut online: Option<bool> = None;
        let mut periodic = tokio::time::interval(cfg.periodic);
        let mut probe = tokio::time::interval(cfg.probe);
        loop {
            let run = tokio::select! {
                t = rx.recv() => match t {
                    None | Some(Trigger::Stop) => return,
                    Some(_) => true,
                },
                _ = periodic.tick() => true,
                _ = probe.tick() => {
                    // Only a change from unreachable to reachable triggers a run.
                    let now = transport.health().await.is_ok();
                    let regained = online == Some(false) && now;
                    if online != Some(now) {
                        emit(SyncEvent::Reachability { online: now });
                    }
                    online = Some(now);
                    regained
                }
            };
            if run {
                match sync_with_retry(
                    store.as_ref(),
                    &transport,
                    server_key.as_ref(),
                    &cfg.backoff,
                    &emit,
                )
                .await
                {
                    Ok(_) => {
                        if online != Some(true) {
                            emit(SyncEvent::Reachability { online: true });
                        }
                        online = Some(true);
                    }
                    Err(e) if e.is_transient() => {
                        if online != Some(false) {
                            emit(SyncEvent::Reachability { online: false });
                        }
                        online = Some(false);
                    }
                    Err(_) => {}
                }
            }
        }
    });
    SyncHandle { tx }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            max_attempts: 5,
        };
        let mut rng = rand::thread_rng();
        for attempt in 0..40 {
            let ceiling = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(20)))
                .min(Duration::from_secs(5));
            for _ in 0..50 {
                assert!(b.delay(attempt, &mut rng) <= ceiling);
            }
        }
        // Jitter spreads retries: not all equal.
        let samples: BTreeSet<Duration> = (0..50).map(|_| b.delay(6, &mut rng)).collect();
        assert!(samples.len() > 10);
    }
}
