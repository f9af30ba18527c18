//! Sync commands of the agent CLI: `enroll` with the town centre, `sync` the outbox, `status`, and
//! `correct` a case the town returned for 补正 (add what is missing and reseal it as the next version).
//!
//! The device's Ed25519 key is made here, kept encrypted in the outbox (`put_secret`), and only its
//! public half leaves the device. `sync` exits 0 only when every queued case has the town's signed
//! receipt; otherwise it says why and exits 1.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bianmin_engine::catalog::Catalog;
use bianmin_engine::outbox::Outbox;
use bianmin_engine::sync::{sync_with_retry, Backoff, SyncEvent, SyncStore};
use bianmin_engine::transport::{Credential, Transport, TransportError};
use bianmin_protocol::sync::EnrolRequest;
use chrono::Utc;
use clap::Args;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;

use crate::cases::{open_outbox, META_PERSON, META_VILLAGE};

/// Secret name of the device's Ed25519 signing key (32 bytes), also used for resident receipt links.
pub const SECRET_SIGNING_KEY: &str = "device_signing_key";
/// Metadata: the town centre's base URL.
pub const META_SERVER: &str = "server";
/// Metadata: the town centre's receipt key (hex).
pub const META_SERVER_KEY: &str = "server_key";
/// Metadata: the device's role (`agent` or `staff`).
pub const META_ROLE: &str = "role";
/// Metadata: the scope's name, e.g. 古韩镇南关村.
pub const META_SCOPE: &str = "scope_name";

#[derive(Args)]
pub struct EnrollArgs {
    /// The town centre, e.g. https://bm.xiangyuan.gov.cn
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

fn meta(o: &Outbox, key: &str) -> Result<Option<String>> {
    Ok(o.get_meta(key)?
        .map(|b| String::from_utf8_lossy(&b).to_string()))
}

fn credential(o: &Outbox) -> Result<Credential> {
    let raw = o.get_secret(SECRET_SIGNING_KEY)?.ok_or_else(|| {
        anyhow!("this device is not enrolled; run `bianmin-agent enroll --server URL --code CODE`")
    })?;
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| anyhow!("stored signing key is corrupt"))?;
    Ok(Credential {
        device_id: o.device_code().to_string(),
        key: SigningKey::from_bytes(&bytes),
    })
}

fn server_key(o: &Outbox) -> Result<Option<VerifyingKey>> {
    let Some(h) = meta(o, META_SERVER_KEY)? else {
        return Ok(None);
    };
    let bytes: [u8; 32] = hex::decode(h.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("stored server key is corrupt"))?;
    Ok(Some(
        VerifyingKey::from_bytes(&bytes).map_err(|e| anyhow!("stored server key: {e}"))?,
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn enroll(data: &Path, args: &EnrollArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    if outbox.get_secret(SECRET_SIGNING_KEY)?.is_some() && meta(&outbox, META_SERVER_KEY)?.is_some()
    {
        bail!(
            "this device is already enrolled (device {}); use a new data directory to enrol again",
            outbox.device_code()
        );
    }
    // The key is stored before the request, so a lost answer can be checked with the same key.
    let key = match outbox.get_secret(SECRET_SIGNING_KEY)? {
        Some(raw) => SigningKey::from_bytes(
            &raw.try_into()
                .map_err(|_| anyhow!("stored signing key is corrupt"))?,
        ),
        None => {
            let k = SigningKey::generate(&mut rand::rngs::OsRng);
            outbox.put_secret(SECRET_SIGNING_KEY, &k.to_bytes())?;
            k
        }
    };
    let req = EnrolRequest {
        code: args.code.trim().to_string(),
        device_id: outbox.device_code().to_string(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        person: args.person.clone(),
    };
    let open = Transport::new(&args.server, None).map_err(|e| anyhow!("{e}"))?;
    let signed = Transport::new(
        &args.server,
        Some(Credential {
            device_id: req.device_id.clone(),
            key: key.clone(),
        }),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let resp = runtime()?.block_on(async {
        match open.enrol(&req).await {
            Ok(r) => Ok(r),
            // The server may have registered this key and lost the answer: ask who we are. A retry
            // then finds the code used up (401; the town checks the code before the device id).
            Err(
                e @ (TransportError::Retryable(_)
                | TransportError::Rejected {
                    status: 401 | 409, ..
                }),
            ) => signed.me().await.map_err(|_| e),
            Err(e) => Err(e),
        }
    });
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}", e.user_message());
            bail!("enrolment failed: {e}");
        }
    };
    outbox.put_meta(
        META_SERVER,
        args.server.trim().trim_end_matches('/').as_bytes(),
    )?;
    outbox.put_meta(META_SERVER_KEY, resp.server_key.as_bytes())?;
    outbox.put_meta(
        META_ROLE,
        format!("{:?}", resp.role).to_lowercase().as_bytes(),
    )?;
    outbox.put_meta(META_SCOPE, resp.scope_name.as_bytes())?;
    if let Some(v) = &resp.village {
        outbox.put_meta(META_VILLAGE, v.as_bytes())?;
    }
    if !args.person.is_empty() {
        outbox.put_meta(META_PERSON, args.person.as_bytes())?;
    }
    println!("{}", resp.device_id);
    eprintln!(
        "device {} enrolled for {} ({:?})",
        resp.device_id, resp.scope_name, resp.role
    );
    Ok(ExitCode::SUCCESS)
}

pub fn sync(data: &Path, args: &SyncArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let cred = credential(&outbox)?;
    let server = match &args.server {
        Some(s) => s.clone(),
        None => meta(&outbox, META_SERVER)?
            .ok_or_else(|| anyhow!("no town centre address; pass --server URL"))?,
    };
    let key = server_key(&outbox)?;
    let t = Transport::new(&server, Some(cred)).map_err(|e| anyhow!("{e}"))?;
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
    let st = StatusJson {
        device: outbox.device_code().to_string(),
        enrolled: outbox.get_secret(SECRET_SIGNING_KEY)?.is_some()
            && meta(&outbox, META_SERVER_KEY)?.is_some(),
        server: meta(&outbox, META_SERVER)?,
        village: meta(&outbox, META_VILLAGE)?,
        scope: meta(&outbox, META_SCOPE)?,
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
    let person = meta(&outbox, META_PERSON)?.unwrap_or_default();
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
    let catalog = Catalog::embedded()?;
    let item = catalog
        .item(&case.item)
        .ok_or_else(|| anyhow!("unknown item {}", case.item))?;
    let mut edited = case.clone();
    for a in &args.answers {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("--answer must be KEY=VALUE"))?;
        edited.answers.insert(k.to_string(), v.to_string());
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
