//! Sync commands of the agent CLI: `enroll` with the town centre, `sync` the outbox, `status`, and
//! `correct` a case the town returned for 补正 (add what is missing and reseal it as the next version).
//!
//! Enrolment is the engine's (`bianmin_engine::enrolment`, shared with the app): the device's
//! Ed25519 key is kept encrypted in the outbox and only its public half leaves the device. `sync`
//! exits 0 only when every queued case has the town's signed receipt; otherwise it says why and
//! exits 1.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::outbox::Outbox;
use bianmin_engine::sync::{sync_with_retry, Backoff, SyncEvent, SyncStore};
use bianmin_engine::transport::Transport;
use bianmin_protocol::sync::DeviceRole;
use chrono::Utc;
use clap::Args;
use serde::Serialize;

use crate::cases::open_outbox;

#[derive(Args)]
pub struct EnrollArgs {
    /// The town centre, e.g. `https://bm.xiangyuan.gov.cn`
    #[arg(long)]
    pub server: String,
    /// The one-time enrolment code from `bianmin-town enroll`.
    #[arg(long)]
    pub code: String,
    /// The agent's name (首问负责 records it on every case).
    #[arg(long, default_value = "")]
    pub person: String,
}

#[derive(Args)]
pub struct SyncArgs {
    /// Override the enrolled town centre address (e.g. another route to the same server).
    #[arg(long)]
    pub server: Option<String>,
    /// Attempts before giving up on a dead connection (backoff with full jitter between them).
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CorrectArgs {
    /// The case to correct.
    pub case: String,
    /// A new photographed page: KEY=PHOTO (repeat).
    #[arg(long = "material", value_name = "KEY=PHOTO")]
    pub materials: Vec<String>,
    /// A corrected form answer: KEY=VALUE.
    #[arg(long = "answer", value_name = "KEY=VALUE")]
    pub answers: Vec<String>,
}

#[derive(Args)]
pub struct DeliverArgs {
    /// The completed case whose result was handed to the resident.
    pub case: String,
}

/// The stored enrolment, or an error telling how to enrol.
fn enrolment(o: &Outbox) -> Result<Enrolment> {
    Enrolment::load(o)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| {
            anyhow!(
                "this device is not enrolled; run `bianmin-agent enroll --server URL --code CODE`"
            )
        })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn enroll(data: &Path, args: &EnrollArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    if let Some(e) = Enrolment::load(&outbox).map_err(|e| anyhow!("{e}"))? {
        if e.confirmed() {
            bail!(
                "this device is already enrolled (device {}); use a new data directory to enrol again",
                e.device_code
            );
        }
    }
    let result = runtime()?.block_on(Enrolment::online(
        &outbox,
        &args.server,
        &args.code,
        &args.person,
        Utc::now(),
    ));
    let e = match result {
        Ok(e) => e,
        Err(err) => {
            eprintln!("{}", err.user_message());
            bail!("enrolment failed: {err}");
        }
    };
    e.save(&outbox).map_err(|e| anyhow!("{e}"))?;
    println!("{}", e.device_code);
    eprintln!(
        "device {} enrolled for {} ({:?})",
        e.device_code, e.place_name, e.role
    );
    Ok(ExitCode::SUCCESS)
}

pub fn sync(data: &Path, args: &SyncArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let enrolment = enrolment(&outbox)?;
    let server = args.server.clone().unwrap_or(enrolment.server.clone());
    let key = enrolment.server_key;
    let t = Transport::new(&server, Some(enrolment.credential())).map_err(|e| anyhow!("{e}"))?;
    let backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(5),
        max_attempts: args.attempts.max(1),
    };
    let progress = |e: SyncEvent| match e {
        SyncEvent::Started { cases, bytes } if cases > 0 => {
            eprintln!("sending {cases} case(s), {bytes} bytes of pages")
        }
        SyncEvent::Acknowledged { case_id, version } => {
            eprintln!("acknowledged {case_id} v{version}")
        }
        SyncEvent::Rejected {
            case_id,
            status,
            message,
        } => eprintln!("refused {case_id} ({status}): {message}"),
        SyncEvent::DeliveryRecorded { case_id } => {
            eprintln!("delivery of {case_id} recorded by the town centre")
        }
        SyncEvent::DeliveryRefused {
            case_id,
            status,
            message,
        } => eprintln!("delivery of {case_id} refused ({status}): {message}"),
        SyncEvent::Decision(d) => eprintln!(
            "town: {} v{} → {}",
            d.case_id,
            d.version,
            d.decision.resulting_state().as_str()
        ),
        SyncEvent::Failed {
            message: _,
            retry_in: Some(w),
        } => eprintln!("connection problem; retrying in {} ms", w.as_millis()),
        SyncEvent::CatalogUpdated { version, changes } => {
            eprintln!(
                "catalog version {version} installed ({} changes)",
                changes.len()
            );
            for c in changes {
                eprintln!("  {c}");
            }
        }
        SyncEvent::ClockNotice { offset_secs, .. } => {
            eprintln!("warning: this device's clock is {offset_secs} s off the town centre's (town minus device); set its date and time")
        }
        _ => {}
    };
    let result = runtime()?.block_on(sync_with_retry(
        &outbox,
        &t,
        key.as_ref(),
        &backoff,
        &progress,
    ));
    let waiting = outbox.pending().map_err(|e| anyhow!("{e}"))?;
    match result {
        Ok(report) if report.rejected.is_empty() && waiting.is_empty() => {
            println!(
                "ok: {} acknowledged, {} decisions received, nothing waiting",
                report.acknowledged.len(),
                report.decisions
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(report) => {
            for (id, status, msg) in &report.rejected {
                println!("not acknowledged: {id}: refused by the town centre ({status}): {msg}");
            }
            println!("{} case(s) still waiting", waiting.len());
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            println!("not synced: {e}; {} case(s) still waiting", waiting.len());
            eprintln!("{}", e.user_message());
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Serialize)]
struct StatusJson {
    device: String,
    enrolled: bool,
    server: Option<String>,
    village: Option<String>,
    scope: Option<String>,
    queued: usize,
    cursor: u64,
    cases: Vec<CaseStatus>,
}

#[derive(Serialize)]
struct CaseStatus {
    id: String,
    item: String,
    version: u32,
    state: &'static str,
    label: &'static str,
    deadline: Option<chrono::NaiveDate>,
    /// The open 补正 list.
    correction: Vec<bianmin_protocol::MissingItem>,
    last_decision: Option<bianmin_protocol::Decision>,
    /// The town's receipt for the current version.
    acknowledged: bool,
    /// The agent's 已送达 mark, while the phone holds one.
    delivery: Option<bianmin_engine::outbox::DeliveryMark>,
}

pub fn status(data: &Path, args: &StatusArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let mut cases = Vec::new();
    for s in outbox.list()? {
        let c = outbox.get(&s.id)?;
        cases.push(CaseStatus {
            acknowledged: outbox.receipt(&c.id, c.version)?.is_some(),
            delivery: outbox.delivery(&c.id)?,
            id: c.id,
            item: c.item,
            version: c.version,
            state: c.state.as_str(),
            label: c.state.label(),
            deadline: c.deadline,
            correction: c.correction,
            last_decision: c.last_decision,
        });
    }
    let enrolment = Enrolment::load(&outbox).map_err(|e| anyhow!("{e}"))?;
    let st = StatusJson {
        device: outbox.device_code().to_string(),
        enrolled: enrolment.as_ref().is_some_and(|e| e.confirmed()),
        server: enrolment.as_ref().map(|e| e.server.clone()),
        village: enrolment
            .as_ref()
            .filter(|e| e.role == DeviceRole::Agent)
            .map(|e| e.place.clone()),
        scope: enrolment.as_ref().map(|e| e.place_name.clone()),
        queued: outbox.queued(),
        cursor: outbox.cursor().map_err(|e| anyhow!("{e}"))?,
        cases,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        println!(
            "device {} {}",
            st.device,
            if st.enrolled {
                "enrolled"
            } else {
                "not enrolled"
            }
        );
        if let (Some(s), Some(scope)) = (&st.server, &st.scope) {
            println!("town centre {s} ({scope})");
        }
        println!("{} case(s) waiting to be sent", st.queued);
        for c in &st.cases {
            println!("{}  v{}  {}  {}", c.id, c.version, c.state, c.label);
            for m in &c.correction {
                println!("    补正: {} — {}", m.key, m.note);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// 已送达: records on the device that the result reached the resident; the next `sync` sends it.
pub fn deliver(data: &Path, args: &DeliverArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let person = Enrolment::load(&outbox)
        .map_err(|e| anyhow!("{e}"))?
        .map(|e| e.person)
        .unwrap_or_default();
    let mark = outbox
        .record_delivery(&args.case, &person, Utc::now())
        .map_err(|e| anyhow!("{e}"))?;
    println!("{}", args.case);
    eprintln!(
        "delivery recorded at {}; it reaches the town centre with the next sync",
        mark.at.to_rfc3339()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn correct(data: &Path, args: &CorrectArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let case = outbox.get(&args.case).map_err(|e| anyhow!("{e}"))?;
    if case.state != bianmin_protocol::CaseState::CorrectionRequested {
        bail!(
            "case {} is {} and was not returned for correction",
            case.id,
            case.state.as_str()
        );
    }
    // Corrected under the definition the case was made under, which the town checks it against.
    let catalog = outbox
        .catalog_for(case.catalog_version)
        .map_err(|e| anyhow!("{e}"))?;
    let item = catalog
        .item(&case.item)
        .ok_or_else(|| anyhow!("unknown item {}", case.item))?;
    let mut edited = case.clone();
    for a in &args.answers {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("--answer must be KEY=VALUE"))?;
        edited.set_field(k, v);
    }
    if edited.answers != case.answers {
        outbox.save_draft(&edited).map_err(|e| anyhow!("{e}"))?;
    }
    for m in &args.materials {
        let (k, path) = m
            .split_once('=')
            .ok_or_else(|| anyhow!("--material must be KEY=PHOTO"))?;
        let bytes = std::fs::read(path).with_context(|| format!("cannot read photo {path}"))?;
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        outbox
            .add_page(&case.id, k, &name, &bytes)
            .map_err(|e| anyhow!("{e}"))?;
    }
    let sealed = outbox
        .seal(&case.id, item, Utc::now())
        .map_err(|e| anyhow!("{e}"))?;
    println!("{}", sealed.id);
    eprintln!(
        "case {} resealed as version {} ({} queued)",
        sealed.id,
        sealed.version,
        outbox.queued()
    );
    Ok(ExitCode::SUCCESS)
}
