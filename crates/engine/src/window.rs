//! Sending a town window case (窗口收件) from a staff tablet: its pages go up through the same
//! resumable, hash-checked upload a phone's sync uses, then the case goes to the town's window
//! route with the clerk's PIN, and the signed receipt is checked against the town's key.

use std::collections::{BTreeMap, BTreeSet};

use bianmin_protocol::sync::Receipt;
use bianmin_protocol::window::WindowIntake;
use ed25519_dalek::VerifyingKey;

use crate::sync::{upload_attachment, SyncError, SyncReport, SyncStore};
use crate::transport::{verify_receipt, Transport};

/// Uploads every page of `intake` not yet on the server, then submits it; the receipt, verified
/// with `server_key` when the tablet holds it. Sending the same intake again is harmless (the
/// town answers the first receipt).
pub async fn send(
    store: &dyn SyncStore,
    t: &Transport,
    server_key: Option<&VerifyingKey>,
    intake: &WindowIntake,
) -> Result<Receipt, SyncError> {
    let mut seen = BTreeSet::new();
    let mut report = SyncReport::default();
    let mut known = BTreeMap::new();
    for p in intake
        .submission
        .materials
        .iter()
        .flat_map(|m| &m.pages)
        .filter(|p| seen.insert(p.sha256.clone()))
    {
        upload_attachment(
            store,
            t,
            &p.sha256,
            p.bytes,
            &mut |_| {},
            &mut report,
            &mut known,
        )
        .await?;
    }
    let receipt = t.submit_window(intake).await?;
    let sub = &intake.submission;
    let bound = receipt.case_id == sub.id
        && receipt.version == sub.version
        && receipt.content_sha256 == crate::transport::submission_sha256(sub);
    if !bound || server_key.is_some_and(|k| !verify_receipt(k, &receipt)) {
        return Err(SyncError::BadReceipt {
            case_id: sub.id.clone(),
            version: sub.version,
        });
    }
    Ok(receipt)
}
