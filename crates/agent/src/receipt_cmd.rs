//! `bianmin-agent receipt CASE_ID`: the resident's receipt link (回执二维码), minted offline.
//!
//! The link is signed with the device's enrolled key (kept encrypted in the outbox by `enroll`) and
//! bound to the case number, so the town centre can check it although it may not have the case yet.
//! The issue date is the case's creation day (China time), so printing the receipt again gives the
//! same link.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::receipt;
use chrono::FixedOffset;
use clap::Args;

use crate::cases::open_outbox;

#[derive(Args)]
pub struct ReceiptArgs {
    /// The case number (办件编号).
    pub case: String,
}

/// Prints the URL alone on the first line of stdout.
pub fn receipt(data: &Path, args: &ReceiptArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let enrolment = Enrolment::load(&outbox)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("this device is not enrolled; run `bianmin-agent enroll --server URL --code CODE` first"))?;
    let case = outbox
        .get(&args.case)
        .map_err(|e| anyhow!("no case {} on this device: {e}", args.case))?;
    let catalog = outbox
        .catalog_for(case.catalog_version)
        .map_err(|e| anyhow!("{e}"))?;
    if catalog
        .item(&case.item)
        .is_some_and(|i| !i.applicant.is_resident())
    {
        anyhow::bail!(
            "case {} is a village report ({}): it has no resident, so no receipt and no rating",
            case.id,
            case.item
        );
    }
    let issued = case
        .created_at
        .with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid offset"))
        .date_naive();
    let token = receipt::mint(&enrolment.signing_key, &case.id, issued);
    let url = receipt::url(&enrolment.server, &case.id, &token);
    println!("{url}");
    Ok(ExitCode::SUCCESS)
}
