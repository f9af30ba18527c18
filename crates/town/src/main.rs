//! `bianmin-town`: the town centre's server and its administration commands.
//!
//! `serve` runs the HTTP API and prints the bound address alone on the first line of stdout (so
//! `--listen 127.0.0.1:0` works in tests). The store is the embedded one in `--data` unless
//! `--database postgres://…` (or `BIANMIN_DATABASE_URL`) names a PostgreSQL database; every
//! subcommand honours it. On the embedded store `enroll`, `revoke` and `supervisor add` write
//! files the running server reads, so they work while it runs; `cases` and `audit` open the
//! database and need it stopped. On PostgreSQL everything works while servers run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bianmin_protocol::sync::{AttachmentInfo, DeviceRole};
use bianmin_protocol::CaseState;
use bianmin_town::audit::ANCHOR_FILE;
use bianmin_town::files::{write_atomic, Ticket};
use bianmin_town::server::ServerConfig;
use bianmin_town::store::{AdminStore, FileAdmin, PgStore, SledStore, TownStore};
use bianmin_town::{app, divisions, AppState, Divisions};
use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "bianmin-town",
    about = "Bianmin town centre (镇综合便民服务中心)"
)]
struct Cli {
    /// Data directory (embedded database, attachments, keys, configuration).
    #[arg(long, global = true, default_value = "town-data")]
    data: PathBuf,
    /// PostgreSQL database (`postgres://user:password@host/db`) instead of the embedded store.
    #[arg(long, global = true, env = "BIANMIN_DATABASE_URL")]
    database: Option<String>,
    /// Attachment store (`s3://bucket[/prefix]`, endpoint and credentials from `AWS_*`) instead
    /// of `--data`'s attachments directory.
    #[arg(long, global = true, env = "BIANMIN_OBJECTS_URL")]
    objects: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8714")]
        listen: String,
        /// PEM certificate chain: serve HTTPS (production must use TLS, here or in a reverse proxy).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Seconds between exports of the signed audit anchor (also written at start and stop).
        #[arg(long, default_value_t = 86_400)]
        anchor_every_secs: u64,
        #[command(flatten)]
        sms: SmsArgs,
    },
    /// List the county's towns and villages with their codes.
    Villages {
        #[arg(long)]
        json: bool,
    },
    /// Issue a one-time enrolment code (valid 10 minutes) for a village phone or a town tablet.
    Enroll {
        #[arg(long, conflicts_with = "town", required_unless_present = "town")]
        village: Option<String>,
        #[arg(long)]
        town: Option<String>,
        /// The server address phones should use; put into the QR code.
        #[arg(long)]
        server: Option<String>,
    },
    /// Disable a device: its requests get 401 from now on.
    Revoke { device: String },
    /// List received cases.
    Cases {
        #[arg(long)]
        json: bool,
    },
    /// Check the audit log's hash chain against the signed anchors exported by `serve`; names
    /// the first bad entry.
    Audit {
        #[arg(long)]
        json: bool,
        /// The anchor file to check against (default: the data directory's; pass the copy kept
        /// off this machine).
        #[arg(long)]
        anchors: Option<PathBuf>,
    },
    /// Export a signed audit anchor now (`serve` does this itself; needs it stopped).
    Anchor,
    /// Move this embedded town (`--data`, with `serve` stopped) into an empty PostgreSQL database,
    /// and its attachments into `--objects` if given; then check that everything arrived and the
    /// audit chain still verifies against the anchors.
    Migrate {
        /// The target database (`postgres://…`).
        #[arg(long)]
        to: String,
    },
    /// Write a backup of the embedded town to FILE: consistent even while `serve` runs on the data
    /// directory (then the server writes it), with every attachment.
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into an empty `--data` directory (embedded store), checking every
    /// attachment's hash and the audit chain.
    Restore { file: PathBuf },
    /// The item catalog's versions: export to a spreadsheet, import one as a draft, publish it.
    /// On the embedded store these open the database and need `serve` stopped (the county's
    /// catalog page works while it runs); on PostgreSQL they work while servers run.
    Catalog {
        #[command(subcommand)]
        cmd: CatalogCmd,
    },
    /// County supervisor accounts for the 好差评 oversight pages.
    Supervisor {
        #[command(subcommand)]
        cmd: SupervisorCmd,
    },
    /// Town staff accounts: each person signs in on the shared tablets with a PIN.
    Staff {
        #[command(subcommand)]
        cmd: StaffCmd,
    },
    /// County staff accounts for the county inbox (转县), each working one county office's cases.
    CountyStaff {
        #[command(subcommand)]
        cmd: CountyStaffCmd,
    },
}

#[derive(Subcommand)]
enum CountyStaffCmd {
    /// Create an account (or reset its password) for one county office; prints the new password
    /// once on standard output.
    Add {
        /// The office's key in the published catalog's receivers (e.g. approval_centre).
        #[arg(long)]
        receiver: String,
        name: String,
    },
    /// Disable an account: it can no longer sign in and its sessions stop working.
    Disable { name: String },
    /// List accounts (name, office, active or disabled).
    List,
}

#[derive(Subcommand)]
enum StaffCmd {
    /// Create an account (or give it a new PIN); reads the 6-digit PIN from the first line of
    /// standard input, so it never shows in the process list or the shell history.
    Add {
        /// The town's 9-digit division code.
        #[arg(long)]
        town: String,
        #[arg(long)]
        name: String,
    },
    /// Disable an account (the person left): their PIN unlocks nothing from now on.
    Disable {
        #[arg(long)]
        town: String,
        #[arg(long)]
        name: String,
    },
    /// List the accounts (no PINs).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Write a version (default: the newest published) as an .xlsx spreadsheet.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Read an .xlsx spreadsheet and store it as the draft (replacing an earlier draft); prints
    /// the draft's version number alone on the first line, the report on stderr.
    Import {
        file: PathBuf,
        /// Who imports it (recorded in the audit log).
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Publish a draft: the phones get it on their next sync.
    Publish {
        version: u32,
        /// Who publishes it (recorded in the audit log).
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Remove a draft.
    Discard {
        version: u32,
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// List the versions, drafts and published.
    Versions {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SupervisorCmd {
    /// Create (or reset) an account; prints its one-time password alone on the first line.
    Add {
        #[arg(long)]
        name: String,
    },
}

/// Where the records are: the embedded store in the data directory, or PostgreSQL.
enum Backend {
    Embedded(PathBuf),
    Postgres(String),
}

impl Backend {
    fn of(cli: &Cli) -> Result<Backend> {
        match cli.database.as_deref().map(str::trim) {
            None | Some("") => Ok(Backend::Embedded(cli.data.clone())),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Backend::Postgres(u.to_string()))
            }
            Some(_) => bail!("--database must be a postgres:// URL"),
        }
    }

    /// The record store (the embedded one needs `serve` stopped: sled locks its files).
    fn store(&self) -> Result<Arc<dyn TownStore>> {
        Ok(match self {
            Backend::Embedded(data) => Arc::new(open_store(data)?),
            Backend::Postgres(url) => Arc::new(open_pg(url)?),
        })
    }

    /// The administration records (on the embedded backend: files, usable while `serve` runs).
    fn admin(&self) -> Result<Arc<dyn AdminStore>> {
        Ok(match self {
            Backend::Embedded(data) => Arc::new(FileAdmin::new(data)),
            Backend::Postgres(url) => Arc::new(open_pg(url)?),
        })
    }

    /// The administrative tree the commands check codes against: the newest published version's
    /// on PostgreSQL (shared by every server), on the embedded store the mirror `serve` keeps of it
    /// (sled's lock keeps the commands out of the store), else the data directory's own tree.
    fn divisions(&self, data: &Path) -> Result<Divisions> {
        match self {
            Backend::Embedded(_) => Ok(divisions::for_commands(data)?),
            Backend::Postgres(_) => {
                let store = self.store()?;
                let local = divisions::for_data_dir(data)?;
                bianmin_town::catalog::ensure_first_with(store.as_ref(), &local)?;
                Ok(match bianmin_town::catalog::head_catalog(store.as_ref())? {
                    Some((_, c)) => c.divisions().cloned().unwrap_or(local),
                    None => local,
                })
            }
        }
    }

    /// Both, for `serve`.
    fn stores(&self) -> Result<(Arc<dyn TownStore>, Arc<dyn AdminStore>)> {
        Ok(match self {
            Backend::Embedded(data) => {
                (Arc::new(open_store(data)?), Arc::new(FileAdmin::new(data)))
            }
            Backend::Postgres(url) => {
                let pg = Arc::new(open_pg(url)?);
                (pg.clone(), pg)
            }
        })
    }
}

fn open_pg(url: &str) -> Result<PgStore> {
    // The URL may carry a password: it is not echoed.
    PgStore::open(url, 32).context("cannot open the PostgreSQL database given by --database")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let backend = Backend::of(&cli)?;
    match cli.cmd {
        Cmd::Serve {
            listen,
            tls_cert,
            tls_key,
            anchor_every_secs,
            sms,
        } => serve(
            &cli.data,
            &backend,
            cli.objects.as_deref(),
            &listen,
            tls_cert.zip(tls_key),
            Duration::from_secs(anchor_every_secs.max(1)),
            &sms,
        ),
        Cmd::Villages { json } => villages(&backend.divisions(&cli.data)?, json),
        Cmd::Enroll {
            village,
            town,
            server,
        } => enroll(&cli.data, &backend, village, town, server),
        Cmd::Revoke { device } => revoke(&backend, &device),
        Cmd::Cases { json } => cases(&backend, json),
        Cmd::Audit { json, anchors } => audit(&cli.data, &backend, json, anchors),
        Cmd::Anchor => {
            let store = backend.store()?;
            let key = backend.admin()?.server_key()?;
            match bianmin_town::audit::export_anchor(
                store.as_ref(),
                &key,
                &cli.data.join(ANCHOR_FILE),
            )? {
                Some(a) => println!("anchored audit entry {} ({})", a.seq, a.hash),
                None => println!("the last anchor already covers the audit log"),
            }
            Ok(())
        }
        Cmd::Backup { out } => backup(&cli.data, &backend, &out),
        Cmd::Restore { file } => restore(&cli.data, &backend, &file),
        Cmd::Migrate { to } => migrate(&cli.data, &to, cli.objects.as_deref()),
        Cmd::Catalog { cmd } => catalog(&cli.data, &backend, cmd),
        Cmd::Supervisor {
            cmd: SupervisorCmd::Add { name },
        } => {
            let admin = backend.admin()?;
            let password = bianmin_town::oversight::supervisor_add(admin.as_ref(), &name)?;
            println!("{password}");
            eprintln!("supervisor {name} created; log in at /county/login (the password is shown only now)");
            Ok(())
        }
        Cmd::Staff { cmd } => staff(&backend, cmd),
        Cmd::CountyStaff { cmd } => county_staff(&backend, cmd),
    }
}

fn county_staff(backend: &Backend, cmd: CountyStaffCmd) -> Result<()> {
    let admin = backend.admin()?;
    match cmd {
        CountyStaffCmd::Add { receiver, name } => {
            let store = backend.store()?;
            let head = bianmin_town::catalog::head_catalog(store.as_ref())?;
            let catalog = match head {
                Some((_, c)) => c,
                None => bianmin_engine::catalog::Catalog::embedded()?,
            };
            let password = bianmin_town::county_inbox::add_staff(
                admin.as_ref(),
                catalog.receivers(),
                &name,
                &receiver,
            )?;
            println!("{password}");
            eprintln!(
                "county staff {name} of {receiver} created; sign in at /county/inbox/login (the password is shown only now)"
            );
        }
        CountyStaffCmd::Disable { name } => {
            bianmin_town::county_inbox::disable_staff(admin.as_ref(), &name)?;
            eprintln!("county staff account {name} is disabled");
        }
        CountyStaffCmd::List => {
            for a in admin.county_staff_list()? {
                let state = if a.active { "active" } else { "disabled" };
                println!("{}\t{}\t{state}", a.name, a.receiver);
            }
        }
    }
    Ok(())
}

fn staff(backend: &Backend, cmd: StaffCmd) -> Result<()> {
    let admin = backend.admin()?;
    match cmd {
        StaffCmd::Add { town, name } => {
            let mut pin = String::new();
            std::io::stdin()
                .read_line(&mut pin)
                .context("reading the PIN from standard input")?;
            let a = bianmin_town::staff::add_staff(admin.as_ref(), &town, &name, pin.trim())?;
            eprintln!(
                "staff account {} of town {} is ready; they sign in on the town tablets with the PIN",
                a.name, a.town
            );
        }
        StaffCmd::Disable { town, name } => {
            bianmin_town::staff::disable_staff(admin.as_ref(), &town, &name)?;
            eprintln!("staff account {name} of town {town} is disabled");
        }
        StaffCmd::List { json } => {
            let all = admin.staff_accounts()?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|a| {
                        serde_json::json!({"town": a.town, "name": a.name, "active": a.active,
                            "created_at": a.created_at})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for a in &all {
                    let state = if a.active { "active" } else { "disabled" };
                    println!("{}\t{}\t{state}", a.town, a.name);
                }
            }
        }
    }
    Ok(())
}

/// Writes an anchor of the audit head, logging (not failing on) errors: a full disk must not stop
/// the town centre, and the next export covers everything since the last good one.
async fn anchor_now(state: &AppState, path: &Path) {
    let (st, path) = (state.clone(), path.to_path_buf());
    match tokio::task::spawn_blocking(move || {
        bianmin_town::audit::export_anchor(st.store.as_ref(), &st.server_key, &path)
    })
    .await
    {
        Ok(Ok(Some(a))) => tracing::info!(seq = a.seq, "audit anchor exported"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "audit anchor export failed"),
        Err(e) => tracing::error!(error = %e, "audit anchor export failed"),
    }
}

/// Resident SMS notifications (`serve`).
#[derive(clap::Args)]
struct SmsArgs {
    /// The public address residents open (`https://bm.example.cn`): SMS links are `{url}/s/{code}`.
    /// Without it no notices are queued; the changes feed keeps every event until it is set.
    #[arg(long, env = "BIANMIN_PUBLIC_URL")]
    public_url: Option<String>,
    /// SMS provider: `aliyun` (Alibaba Cloud SMS). Without it notices wait in the outbox.
    #[arg(long, env = "BIANMIN_SMS_PROVIDER", value_parser = ["aliyun"])]
    sms_provider: Option<String>,
    #[arg(long, env = "BIANMIN_SMS_ENDPOINT", default_value = bianmin_town::notify::aliyun::DEFAULT_ENDPOINT)]
    sms_endpoint: String,
    #[arg(long, env = "BIANMIN_SMS_ACCESS_KEY_ID", default_value = "")]
    sms_access_key_id: String,
    /// Prefer the environment variable: a command line is visible to other users.
    #[arg(
        long,
        env = "BIANMIN_SMS_ACCESS_KEY_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    sms_access_key_secret: String,
    /// The approved SMS signature, shown as 【…】.
    #[arg(long, env = "BIANMIN_SMS_SIGN_NAME", default_value = "便民服务")]
    sms_sign_name: String,
    /// The approved template's code; its text must be `办件${no}${event}，详见${url}`.
    #[arg(long, env = "BIANMIN_SMS_TEMPLATE", default_value = "")]
    sms_template: String,
    /// Seconds one provider request may take.
    #[arg(long, env = "BIANMIN_SMS_TIMEOUT_SECS", default_value_t = 10)]
    sms_timeout_secs: u64,
    /// Seconds between outbox passes.
    #[arg(long, env = "BIANMIN_SMS_EVERY_SECS", default_value_t = 10)]
    sms_every_secs: u64,
}

/// The notifier, when a public URL is set; refuses settings that cannot work (before `serve`
/// listens).
fn notifier(state: &AppState, sms: &SmsArgs) -> Result<Option<bianmin_town::notify::Notifier>> {
    use bianmin_town::notify::{aliyun, Notifier, NotifyConfig, SmsProvider};
    let Some(url) = sms
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        tracing::warn!("no --public-url: resident SMS notifications are not queued (the changes feed keeps every event until it is set)");
        return Ok(None);
    };
    let config = NotifyConfig::new(url, &sms.sms_sign_name).context("SMS settings")?;
    let timeout = Duration::from_secs(sms.sms_timeout_secs.max(1));
    let provider: Option<std::sync::Arc<dyn SmsProvider>> = match sms.sms_provider.as_deref() {
        Some("aliyun") => {
            if sms.sms_access_key_id.is_empty()
                || sms.sms_access_key_secret.is_empty()
                || sms.sms_template.is_empty()
            {
                anyhow::bail!("--sms-provider aliyun needs --sms-access-key-id, BIANMIN_SMS_ACCESS_KEY_SECRET and --sms-template");
            }
            Some(std::sync::Arc::new(aliyun::AliyunSms::new(
                aliyun::AliyunConfig {
                    endpoint: sms.sms_endpoint.clone(),
                    access_key_id: sms.sms_access_key_id.clone(),
                    access_key_secret: sms.sms_access_key_secret.clone(),
                    sign_name: sms.sms_sign_name.clone(),
                    template_code: sms.sms_template.clone(),
                    timeout,
                },
            )?))
        }
        _ => {
            tracing::warn!("no --sms-provider: resident notifications are kept in the outbox and logged, not sent");
            None
        }
    };
    Ok(Some(Notifier::new(
        state.clone(),
        config,
        provider,
        timeout * 3,
    )))
}

fn serve(
    data: &Path,
    backend: &Backend,
    objects: Option<&str>,
    listen: &str,
    tls: Option<(PathBuf, PathBuf)>,
    anchor_every: Duration,
    sms: &SmsArgs,
) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // One JSON object a line for a log collector (`BIANMIN_LOG_FORMAT=json`); every line of a
    // request carries its request id (the `request` span).
    if std::env::var("BIANMIN_LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    // Opened before the runtime starts: the PostgreSQL client blocks, which an async context forbids.
    let (store, admin) = backend
        .stores()
        .with_context(|| format!("opening {}", data.display()))?;
    let mut state = AppState::with_stores(data, store, admin)
        .with_context(|| format!("opening {}", data.display()))?;
    if let Some(url) = objects.map(str::trim).filter(|u| !u.is_empty()) {
        state = state.with_objects(
            bianmin_town::objects::Objects::from_url(url, &[])
                .context("cannot use the object store given by --objects")?,
        );
    }
    tracing::info!(attachments = %state.objects.describe(), "attachment store");
    let notifier = notifier(&state, sms)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let acceptor = match &tls {
            Some((cert, key)) => Some(bianmin_town::tls::acceptor(cert, key)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        write_atomic(&data.join("server.addr"), addr.to_string().as_bytes())?;
        // The address alone on the first line: tests and scripts read it to find a `:0` port.
        let mut out = std::io::stdout();
        writeln!(
            out,
            "{}://{addr}",
            if acceptor.is_some() { "https" } else { "http" }
        )?;
        out.flush()?;
        tracing::info!(%addr, tls = acceptor.is_some(), "town centre listening");
        bianmin_town::feedback::warm_up();
        let notifier = notifier.map(|n| n.spawn(Duration::from_secs(sms.sms_every_secs.max(1))));
        let anchors = data.join(ANCHOR_FILE);
        anchor_now(&state, &anchors).await;
        let periodic = {
            let (state, anchors) = (state.clone(), anchors.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + anchor_every,
                    anchor_every,
                );
                loop {
                    tick.tick().await;
                    anchor_now(&state, &anchors).await;
                }
            })
        };
        bianmin_town::server::serve(
            listener,
            app(state.clone()),
            acceptor,
            ServerConfig::default(),
            shutdown_signal(),
        )
        .await;
        periodic.abort();
        if let Some(n) = notifier {
            n.abort();
        }
        anchor_now(&state, &anchors).await;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM: stop accepting, let running requests finish (every answered write is already flushed).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

fn villages(d: &Divisions, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    println!("{} {}", d.county.code, d.county.name);
    for t in &d.towns {
        println!(
            "  {} {}{}",
            t.code,
            t.name,
            if t.confirmed {
                ""
            } else {
                " (code to be confirmed)"
            }
        );
        for v in &t.villages {
            println!(
                "    {} {}{}",
                v.code,
                v.name,
                if v.confirmed {
                    ""
                } else {
                    " (code to be confirmed)"
                }
            );
        }
    }
    Ok(())
}

fn enroll(
    data: &Path,
    backend: &Backend,
    village: Option<String>,
    town: Option<String>,
    server: Option<String>,
) -> Result<()> {
    let d = backend.divisions(data)?;
    let (ticket, scope) = match (village, town) {
        (Some(v), _) => {
            let Some((t, vil)) = d.village(&v) else {
                bail!("unknown village code {v}; see `villages`")
            };
            (
                Ticket {
                    role: DeviceRole::Agent,
                    village: Some(v.clone()),
                    town: t.code.clone(),
                    expires_at: expiry(),
                },
                format!("{}{}", t.name, vil.name),
            )
        }
        (None, Some(t)) => {
            let Some(town) = d.town(&t) else {
                bail!("unknown town code {t}; see `villages`")
            };
            (
                Ticket {
                    role: DeviceRole::Staff,
                    village: None,
                    town: t.clone(),
                    expires_at: expiry(),
                },
                town.name.clone(),
            )
        }
        (None, None) => bail!("give --village CODE or --town CODE"),
    };
    let code = backend.admin()?.issue_ticket(&ticket)?;
    let server = server.or_else(|| {
        std::fs::read_to_string(data.join("server.addr"))
            .ok()
            .map(|a| format!("http://{}", a.trim()))
    });
    let payload = match &server {
        Some(s) => format!("bianmin:enrol?server={s}&code={code}"),
        None => format!("bianmin:enrol?code={code}"),
    };
    let qr = qrcode::QrCode::new(payload.as_bytes())?;
    let art = qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    println!("{code}");
    println!(
        "enrolment code for {scope} ({:?}), valid until {} (single use)",
        ticket.role,
        ticket.expires_at.to_rfc3339()
    );
    println!("{payload}");
    println!("{art}");
    Ok(())
}

fn expiry() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::minutes(10)
}

fn revoke(backend: &Backend, device: &str) -> Result<()> {
    bianmin_engine::number::check_device(device).map_err(|e| anyhow::anyhow!("{e}"))?;
    backend.admin()?.revoke(device)?;
    println!("device {device} revoked");
    Ok(())
}

fn open_store(data: &Path) -> Result<SledStore> {
    SledStore::open(&data.join("db")).with_context(|| {
        format!(
            "cannot open the database in {} (is `serve` running on it? stop it first)",
            data.display()
        )
    })
}

#[derive(Serialize)]
struct CaseRow {
    id: String,
    version: u32,
    village: String,
    item: String,
    state: CaseState,
    responsible: String,
    attachments: Vec<AttachmentInfo>,
}

fn catalog(data: &Path, backend: &Backend, cmd: CatalogCmd) -> Result<()> {
    use bianmin_town::catalog as versions;
    let store = backend.store()?;
    let store = store.as_ref();
    versions::ensure_first_with(store, &divisions::for_data_dir(data)?)?;
    match cmd {
        CatalogCmd::Export { out, version } => {
            let version = match version {
                Some(v) => v,
                None => store
                    .catalog_head()?
                    .context("no catalog version is published")?,
            };
            let (_, catalog) = versions::load(store, version)?;
            bianmin_sheet::export(&catalog, &out)?;
            eprintln!(
                "catalog version {version} written to {} ({} items)",
                out.display(),
                catalog.items().len()
            );
        }
        CatalogCmd::Import { file, by } => {
            let catalog = match bianmin_sheet::import(&file) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    bail!("{} was not imported", file.display());
                }
            };
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let draft = versions::import_draft(store, &catalog, &name, &by)?;
            println!("{}", draft.version);
            eprintln!(
                "{name}: {} items, valid; stored as draft version {} with {} changes:",
                catalog.items().len(),
                draft.version,
                draft.changes.len()
            );
            for line in &draft.changes {
                eprintln!("  {line}");
            }
        }
        CatalogCmd::Publish { version, by } => {
            let v = versions::publish(store, version, &by)?;
            println!("{}", v.version);
            eprintln!(
                "catalog version {} published ({} changes); phones get it on their next sync",
                v.version,
                v.changes.len()
            );
        }
        CatalogCmd::Discard { version, by } => {
            versions::discard(store, version, &by)?;
            eprintln!("draft version {version} discarded");
        }
        CatalogCmd::Versions { json } => {
            let all: Vec<versions::VersionSummary> = store
                .catalog_versions()?
                .iter()
                .map(versions::VersionSummary::from)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for v in &all {
                    println!(
                        "{}\t{:?}\t{}\t{} changes\tby {} at {}{}",
                        v.version,
                        v.state,
                        &v.hash[..12],
                        v.changes,
                        v.created_by,
                        v.created_at.format("%Y-%m-%d %H:%M"),
                        match (&v.published_by, v.published_at) {
                            (Some(b), Some(at)) =>
                                format!("\tpublished by {b} at {}", at.format("%Y-%m-%d %H:%M")),
                            _ => String::new(),
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

fn cases(backend: &Backend, json: bool) -> Result<()> {
    let store = backend.store()?;
    let mut rows: Vec<CaseRow> = store
        .cases()?
        .into_iter()
        .map(|sc| CaseRow {
            id: sc.case.id.clone(),
            version: sc.case.version,
            village: sc.case.village.clone(),
            item: sc.case.item.clone(),
            state: sc.case.state,
            responsible: sc.case.responsible.device_id.clone(),
            attachments: sc
                .case
                .materials
                .iter()
                .flat_map(|m| &m.pages)
                .map(|p| AttachmentInfo {
                    name: p.name.clone(),
                    bytes: p.bytes,
                    sha256: p.sha256.clone(),
                })
                .collect(),
        })
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            println!(
                "{}  v{}  {}  {}  {}  {} attachments",
                r.id,
                r.version,
                r.item,
                r.state.as_str(),
                r.state.label(),
                r.attachments.len()
            );
        }
    }
    Ok(())
}

fn audit(data: &Path, backend: &Backend, json: bool, anchors: Option<PathBuf>) -> Result<()> {
    let store = backend.store()?;
    let log = store.audit_log()?;
    let key = backend.admin()?.server_key()?.verifying_key();
    let path = anchors.unwrap_or_else(|| data.join(ANCHOR_FILE));
    let anchors = bianmin_town::audit::read_anchors(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    if anchors.is_empty() {
        eprintln!(
            "warning: no audit anchors in {}; only the hash chain is checked",
            path.display()
        );
    }
    let verdict = bianmin_town::audit::verify_anchored(&log, &anchors, &key);
    if json {
        println!("{}", serde_json::to_string_pretty(&log)?);
    }
    match verdict {
        Ok(()) => {
            eprintln!(
                "audit log intact: {} entries, {} anchors",
                log.len(),
                anchors.len()
            );
            Ok(())
        }
        Err(e) => bail!("audit log TAMPERED: {e}"),
    }
}

fn migrate(data: &Path, to: &str, objects: Option<&str>) -> Result<()> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a postgres:// URL");
    }
    let sled = open_store(data)?;
    let admin = FileAdmin::new(data);
    let mut snap = bianmin_town::store::Snapshot::default();
    sled.export_into(&mut snap)?;
    admin.export_into(&mut snap)?;
    let pg = open_pg(to)?;
    if !pg.is_empty()? {
        bail!("the target database already holds a town; migrate into an empty one");
    }
    // Attachments first: the database must not name a page the store lacks.
    if let Some(url) = objects.map(str::trim).filter(|u| !u.is_empty()) {
        let target = bianmin_town::objects::Objects::from_url(url, &[])
            .context("cannot use the object store given by --objects")?;
        let files = bianmin_town::Files::new(data)?;
        let rt = tokio::runtime::Runtime::new()?;
        for (i, (sha, _, _)) in snap.attachments.iter().enumerate() {
            rt.block_on(target.put_file(&files.attachment_path(sha), sha))
                .with_context(|| format!("copying attachment {sha}"))?;
            if (i + 1) % 100 == 0 {
                eprintln!("{} of {} attachments copied", i + 1, snap.attachments.len());
            }
        }
    }
    pg.import(&snap)?;
    // Check what arrived against what left.
    let log = pg.audit_log()?;
    if log != snap.audit {
        bail!("the audit log in the database differs from the embedded one");
    }
    let key = pg.server_key()?.verifying_key();
    let anchors = bianmin_town::audit::read_anchors(&data.join(ANCHOR_FILE))?;
    bianmin_town::audit::verify_anchored(&log, &anchors, &key)
        .map_err(|e| anyhow::anyhow!("audit chain after migration: {e}"))?;
    let (cases, ratings) = (pg.cases()?.len(), pg.ratings()?.len());
    if cases != snap.cases.len()
        || ratings != snap.ratings.len()
        || pg.catalog_versions()? != snap.catalog
    {
        bail!("counts differ after migration");
    }
    for (sha, size, villages) in &snap.attachments {
        if pg.attachment_size(sha)? != Some(*size)
            || !villages.iter().all(|v| pg.held_by(sha, v).unwrap_or(false))
        {
            bail!("attachment {sha} differs after migration");
        }
    }
    println!(
        "migrated {} cases, {} devices, {} audit entries (chain verified against {} anchors), {} ratings, {} attachments",
        cases,
        snap.devices.len(),
        log.len(),
        anchors.len(),
        ratings,
        snap.attachments.len()
    );
    Ok(())
}

fn backup(data: &Path, backend: &Backend, out: &Path) -> Result<()> {
    if matches!(backend, Backend::Postgres(_)) {
        bail!("back up a PostgreSQL town with pg_dump (or base backups) and its bucket with the object store's tools");
    }
    let tmp = out.with_extension("partial");
    let from_server = match std::fs::read_to_string(data.join("server.addr")) {
        Ok(addr) => backup_from_server(data, addr.trim(), &tmp)?,
        Err(_) => false,
    };
    if !from_server {
        // No server on this data directory: read the store directly.
        let store = open_store(data)?;
        let mut snap = store.snapshot()?;
        FileAdmin::new(data).export_into(&mut snap)?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        bianmin_town::backup::write(&mut w, &snap, &bianmin_town::Files::new(data)?)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, out)?;
    let size = std::fs::metadata(out)?.len();
    println!(
        "backup written to {} ({size} bytes{})",
        out.display(),
        if from_server {
            ", by the running server"
        } else {
            ""
        }
    );
    Ok(())
}

/// Asks the server running on `data` (at `addr`, loopback) for a backup; `false` if none answers.
fn backup_from_server(data: &Path, addr: &str, tmp: &Path) -> Result<bool> {
    use std::io::{BufRead, Read};
    let Ok(sock) = addr.parse::<std::net::SocketAddr>() else {
        return Ok(false);
    };
    let Ok(mut conn) = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)) else {
        return Ok(false);
    };
    let token = bianmin_town::Files::new(data)?.admin_token()?;
    write!(
        conn,
        "GET /admin/backup HTTP/1.1\r\nHost: {addr}\r\n{}: {token}\r\nConnection: close\r\n\r\n",
        bianmin_town::backup::H_ADMIN_TOKEN
    )?;
    let mut r = std::io::BufReader::new(conn);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let mut length = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<u64>().ok();
            }
        }
    }
    if status.split(' ').nth(1) != Some("200") {
        let mut body = String::new();
        let _ = r.take(4096).read_to_string(&mut body);
        bail!(
            "the running server refused the backup: {} {body}",
            status.trim()
        );
    }
    let length = length.context("the server's backup answer has no length")?;
    let mut f = std::fs::File::create(tmp)?;
    let copied = std::io::copy(&mut r.take(length), &mut f)?;
    if copied != length {
        bail!("the backup transfer broke off after {copied} of {length} bytes");
    }
    f.sync_all()?;
    Ok(true)
}

fn restore(data: &Path, backend: &Backend, file: &Path) -> Result<()> {
    if matches!(backend, Backend::Postgres(_)) {
        bail!("restore writes an embedded town; to move one to PostgreSQL, restore it and then `migrate`");
    }
    let store = open_store(data)?;
    if !store.cases()?.is_empty() || !store.audit_log()?.is_empty() {
        bail!(
            "{} already holds a town; restore into an empty data directory",
            data.display()
        );
    }
    let files = bianmin_town::Files::new(data)?;
    let mut input = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    // Attachments are written (and verified) first: no record may name a page that is missing.
    let snap = bianmin_town::backup::read(&mut input, &files)?;
    store.import(&snap)?;
    FileAdmin::new(data).import(&snap)?;
    let log = store.audit_log()?;
    bianmin_town::audit::verify_chain(&log).map_err(|e| anyhow::anyhow!("audit chain: {e}"))?;
    println!(
        "restored {} cases, {} audit entries (chain verified), {} ratings, {} attachments into {}",
        snap.cases.len(),
        log.len(),
        snap.ratings.len(),
        snap.attachments.len(),
        data.display()
    );
    Ok(())
}
