//! `bianmin-agent receipt CASE_ID`: the resident's receipt link (回执二维码), minted offline.
//!
//! The link is signed with the device's enrolled key (kept encrypted in the outbox by `enroll`) and
//! bound to the case number, so the town centre can check it although it may not have the case yet.
//! The issue date is the case's creation day (China time), so printing the receipt again gives the
//! same link.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use bianmin_engine::receipt;
use chrono::FixedOffset;
use clap::Args;
use ed25519_dalek::SigningKey;

use crate::cases::open_outbox;
use crate::sync_cmd::{META_SERVER, SECRET_SIGNING_KEY};

#[derive(Args)]
pub struct ReceiptArgs {
    /// The case number (办件编号).
    pub case: String,
}

/// Prints the URL alone on the first line of stdout.
pub fn receipt(data: &Path, args: &ReceiptArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let raw = outbox
        .get_secret(SECRET_SIGNING_KEY)?
        .ok_or_else(|| anyhow!("this device is not enrolled; run `bianmin-agent enroll --server URL --code CODE` first"))?;
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| anyhow!("stored signing key is corrupt"))?;
    let key = SigningKey::from_bytes(&bytes);
    let server = outbox
        .get_meta(META_SERVER)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .ok_or_else(|| anyhow!("no town centre address stored; enrol the device first"))?;
    let case = outbox
        .get(&args.case)
        .map_err(|e| anyhow!("no case {} on this device: {e}", args.case))?;
    let issued = case
        .created_at
        .with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid offset"))
        .date_naive();
    let token = receipt::mint(&key, &case.id, issued);
    let url = receipt::url(&server, &case.id, &token);
    println!("{url}");
    Ok(ExitCode::SUCCESS)
}
