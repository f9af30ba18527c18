//! Case commands: list the catalog, create a case from files, list the outbox, and the crash-test loop.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use bianmin_engine::catalog::{ApplicantKind, CaptureKind, Check, FieldDef, FieldKind, Material};
use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::outbox::{FileKeyStore, Outbox, StoreError};
use bianmin_engine::validate;
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::{AgentRef, Answer, Applicant};
use chrono::Utc;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The village used before enrolment: the pilot village 古韩镇南关村.
pub const DEFAULT_VILLAGE: &str = "140423100201";

#[derive(Args)]
pub struct ItemsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Include the 99 town-level items too.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct NewArgs {
    /// Item code, e.g. V11.
    #[arg(long)]
    pub item: String,
    /// JSON file with the applicant: name, id_number, phone, address.
    #[arg(long)]
    pub applicant: PathBuf,
    /// A photographed material: KEY=PHOTO (repeat for more pages or materials).
    #[arg(long = "material", value_name = "KEY=PHOTO")]
    pub materials: Vec<String>,
    /// A form answer: KEY=VALUE.
    #[arg(long = "answer", value_name = "KEY=VALUE")]
    pub answers: Vec<String>,
    /// A JSON file of answers by field key (repeat groups as arrays of objects, multiple choices
    /// as arrays of strings); `--answer` values override it.
    #[arg(long = "answers", value_name = "ANS.json")]
    pub answers_file: Option<PathBuf>,
    /// The village the case belongs to (default: the enrolled village, or the pilot village).
    #[arg(long)]
    pub village: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CrashLoopArgs {
    /// Item to create cases for.
    #[arg(long, default_value = "V41")]
    pub item: String,
    /// Stop after this many cases (default: until killed).
    #[arg(long)]
    pub count: Option<u64>,
}

/// Opens the device's outbox with its desktop key file.
pub fn open_outbox(data: &Path) -> Result<Outbox> {
    bianmin_engine::outbox::disk::create_dir_durable(data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    Outbox::open(data, &FileKeyStore::new(data.join("device.key")))
        .with_context(|| format!("cannot open the outbox in {}", data.display()))
}

/// One item as `items --json` prints it: enough for a script to fill any item (fields with their
/// types, choices and conditions; materials with the photos each needs).
#[derive(Serialize)]
struct ItemJson<'a> {
    code: &'a str,
    name: &'a str,
    kind: &'a str,
    /// The published catalog version the definition comes from (0: the one the app shipped with).
    catalog_version: u32,
    applicant: ApplicantKind,
    promised_days: Option<u32>,
    fields: &'a [FieldDef],
    materials: Vec<MaterialJson<'a>>,
    checks: &'a [Check],
}

#[derive(Serialize)]
struct MaterialJson<'a> {
    #[serde(flatten)]
    material: &'a Material,
    /// `card` or `page`: the outline the scanner crops to.
    kind: &'static str,
}

pub fn items(data: &Path, args: &ItemsArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let (version, catalog) = outbox.current_catalog().map_err(store)?;
    let list: Vec<ItemJson> = catalog
        .items()
        .iter()
        .filter(|i| args.all || i.is_village())
        .map(|i| ItemJson {
            code: &i.code,
            name: &i.name,
            kind: &i.kind,
            catalog_version: version,
            applicant: i.applicant,
            promised_days: i.guide.as_ref().map(|g| g.promised_days),
            fields: i.guide.as_ref().map(|g| g.fields.as_slice()).unwrap_or(&[]),
            materials: i
                .guide
                .iter()
                .flat_map(|g| g.materials.iter())
                .map(|m| MaterialJson {
                    material: m,
                    kind: match m.capture {
                        CaptureKind::Card => "card",
                        CaptureKind::Page => "page",
                    },
                })
                .collect(),
            checks: i.guide.as_ref().map(|g| g.checks.as_slice()).unwrap_or(&[]),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for i in &list {
            println!("{}\t{}\t{} materials", i.code, i.name, i.materials.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `--answers ANS.json`: an object of answers by field key. A string is a plain answer, a
/// number or true/false is written as the form would (是/否), a list of strings is a multiple choice,
/// a list of objects the rows of a repeat group.
fn answers_file(path: &Path) -> Result<BTreeMap<String, Answer>> {
    use serde_json::Value;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read answers file {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("answers file {} is not valid JSON", path.display()))?;
    let Value::Object(map) = value else {
        bail!(
            "answers file {} must hold a JSON object of answers by field key",
            path.display()
        );
    };
    let scalar = |k: &str, v: &Value| -> Result<String> {
        Ok(match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(true) => "是".into(),
            Value::Bool(false) => "否".into(),
            other => bail!("answer {k:?}: {other} is not a text, number or true/false"),
        })
    };
    let mut out = BTreeMap::new();
    for (k, v) in &map {
        let answer = match v {
            Value::Array(list) if list.iter().all(Value::is_object) && !list.is_empty() => {
                let mut rows = Vec::new();
                for row in list {
                    let mut cells = BTreeMap::new();
                    for (col, cell) in row.as_object().expect("checked") {
                        cells.insert(col.clone(), scalar(&format!("{k}.{col}"), cell)?);
                    }
                    rows.push(cells);
                }
                Answer::Rows(rows)
            }
            Value::Array(list) => Answer::Choices(
                list.iter()
                    .map(|c| scalar(k, c))
                    .collect::<Result<Vec<_>>>()?,
            ),
            other => Answer::Text(scalar(k, other)?),
        };
        out.insert(k.clone(), answer);
    }
    Ok(out)
}

fn split_pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow!("{what} must be KEY=VALUE, got {s:?}"))
}

pub fn new(data: &Path, args: &NewArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let (_, catalog) = outbox.current_catalog().map_err(store)?;
    let item = catalog
        .item(&args.item)
        .ok_or_else(|| anyhow!("unknown item {:?} (see `bianmin-agent items`)", args.item))?;
    if !item.is_village() {
        bail!(
            "item {} is a town-level item; village agents file village items (V01-V43)",
            item.code
        );
    }
    let guide = item
        .guide
        .as_ref()
        .expect("village items have guides (checked by the catalog loader)");

    // Everything is read and checked before anything is stored: bad input stores nothing.
    let text = std::fs::read_to_string(&args.applicant)
        .with_context(|| format!("cannot read applicant file {}", args.applicant.display()))?;
    let applicant: Applicant = serde_json::from_str(&text).with_context(|| {
        format!(
            "applicant file {} is not valid JSON with name, id_number, phone",
            args.applicant.display()
        )
    })?;
    let today = chrono::Local::now().date_naive();
    let problems = validate::applicant(&applicant, today);
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.key, english(&p.key)))
            .collect();
        bail!("invalid applicant: {}", lines.join("; "));
    }
    let mut answers = match &args.answers_file {
        Some(path) => answers_file(path)?,
        None => BTreeMap::new(),
    };
    if let Some(k) = answers
        .keys()
        .find(|k| !guide.fields.iter().any(|f| &f.key == *k))
    {
        bail!("item {} has no form field {k:?}", item.code);
    }
    for a in &args.answers {
        let (k, v) = split_pair(a, "--answer")?;
        let Some(def) = guide.fields.iter().find(|f| f.key == k) else {
            bail!("item {} has no form field {k:?}", item.code);
        };
        let answer = match def.kind {
            // KEY=A,B (or A、B, as the app shows them) for a multiple choice.
            FieldKind::Multi => Answer::Choices(
                v.split([',', '、'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            FieldKind::Group => {
                bail!("field {k:?} is a repeat group: give its rows in --answers ANS.json")
            }
            _ => Answer::Text(v.to_string()),
        };
        answers.insert(k.to_string(), answer);
    }
    let mut photos = Vec::new();
    for m in &args.materials {
        let (k, path) = split_pair(m, "--material")?;
        if !guide.materials.iter().any(|g| g.key == k) {
            bail!("item {} has no material {k:?}", item.code);
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read photo {path}"))?;
        if bytes.is_empty() {
            bail!("photo {path} is empty");
        }
        photos.push((
            k.to_string(),
            Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            bytes,
        ));
    }

    // The enrolment names the village and the agent; before enrolment the pilot village is used.
    let enrolment = Enrolment::load(&outbox).map_err(|e| anyhow!("{e}"))?;
    let village = match (&args.village, &enrolment) {
        (Some(v), _) => v.clone(),
        (None, Some(e)) if e.role == DeviceRole::Agent => e.place.clone(),
        _ => DEFAULT_VILLAGE.to_string(),
    };
    bianmin_engine::number::check_village(&village).map_err(|e| anyhow!("{e}"))?;
    let agent = AgentRef {
        device_id: outbox.device_code().to_string(),
        name: enrolment.map(|e| e.person).unwrap_or_default(),
        village,
    };
    let mut case = outbox
        .create_draft(&item.code, applicant, agent, Utc::now())
        .map_err(store)?;
    case.answers = answers;
    outbox.save_draft(&case).map_err(store)?;
    for (key, name, bytes) in &photos {
        outbox.add_page(&case.id, key, name, bytes).map_err(store)?;
    }
    match outbox.seal(&case.id, item, Utc::now()) {
        Ok(sealed) => {
            println!("{}", sealed.id);
            eprintln!(
                "case {} sealed into the outbox ({} queued)",
                sealed.id,
                outbox.queued()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::Precheck { problems, .. }) => {
            // The draft is durable; the agent completes it later.
            println!("{}", case.id);
            eprintln!(
                "case {} kept as a draft; the pre-check (初审) found:",
                case.id
            );
            let current = outbox.get(&case.id)?;
            let check = validate::precheck(
                item,
                &current.applicant,
                &current.answers,
                &current.materials,
                today,
            );
            for m in &check.missing_materials {
                eprintln!(
                    "  missing material: {} ({}), {} of {} photos; still to take: {}",
                    m.key,
                    m.name,
                    m.have,
                    m.need,
                    m.still.join(", ")
                );
            }
            for p in &check.fields {
                eprintln!("  field {}: {}", p.key, p.message);
            }
            if check.passed() {
                eprintln!("  {}", problems.join("; "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(store(e)),
    }
}

/// English wording for CLI errors about the applicant block.
fn english(key: &str) -> &'static str {
    match key {
        "applicant.name" => "name is missing or longer than 30 characters",
        "applicant.id_number" => {
            "not a valid resident ID number (GB 11643: 18 characters, region, birth date, checksum)"
        }
        "applicant.phone" => "not a valid mainland mobile number (11 digits, 1[3-9]...)",
        "applicant.address" => "address is longer than 200 characters",
        _ => "invalid",
    }
}

fn store(e: StoreError) -> anyhow::Error {
    anyhow!("{e}")
}

#[derive(Serialize)]
struct CaseJson {
    id: String,
    item: String,
    state: &'static str,
    version: u32,
    applicant: String,
    id_number: String,
    pages: usize,
    updated_at: String,
    /// The catalog version whose definition of the item the case follows.
    catalog_version: u32,
}

pub fn list(data: &Path, args: &ListArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    let cases: Vec<CaseJson> = outbox
        .list()?
        .into_iter()
        .map(|s| CaseJson {
            id: s.id,
            item: s.item,
            state: s.state.as_str(),
            version: s.version,
            applicant: s.applicant,
            id_number: s.id_number,
            pages: s.pages,
            updated_at: s.updated_at.to_rfc3339(),
            catalog_version: s.catalog_version,
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cases)?);
    } else {
        for c in &cases {
            println!(
                "{}\t{}\t{}\tv{}\t{}\t{}",
                c.id, c.item, c.state, c.version, c.applicant, c.id_number
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The photo bytes the crash loop stores for page `n` of case number `seq`: reproducible, so a
/// test can check what it reads back; 96 KB keeps 200 kill cycles quick in a debug build.
pub fn crash_photo(seq: u64, n: u32) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut block: [u8; 32] = Sha256::digest(format!("{seq}/{n}")).into();
    while out.len() < 96_000 {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out
}

/// A valid applicant for the crash loop.
pub fn crash_applicant(seq: u64) -> Applicant {
    let first17 = format!("14042319800101{:03}", seq % 1000);
    let id = format!("{first17}{}", validate::checksum_char(first17.as_bytes()));
    Applicant {
        name: format!("测试{seq}"),
        id_number: id,
        phone: "13934561234".into(),
        address: String::new(),
    }
}

pub fn crash_loop(data: &Path, args: &CrashLoopArgs) -> Result<ExitCode> {
    let outbox = open_outbox(data)?;
    // Cases follow the newest catalog version held, like every case the CLI makes.
    let (_, catalog) = outbox.current_catalog().map_err(store)?;
    let item = catalog
        .item(&args.item)
        .filter(|i| i.guide.is_some())
        .ok_or_else(|| anyhow!("unknown village item {}", args.item))?;
    let agent = AgentRef {
        device_id: outbox.device_code().to_string(),
        name: String::new(),
        village: DEFAULT_VILLAGE.into(),
    };
    let mut stdout = std::io::stdout().lock();
    let mut made = 0u64;
    while args.count.is_none_or(|c| made < c) {
        let case = outbox
            .create_draft(&item.code, crash_applicant(made), agent.clone(), Utc::now())
            .map_err(store)?;
        let mut c = case.clone();
        c.answers = crash_answers(item);
        outbox.save_draft(&c).map_err(store)?;
        let seq: u64 = case
            .id
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut n = 0;
        for (key, pages) in required_pages(item, &c.applicant, &c.answers) {
            for _ in 0..pages {
                n += 1;
                outbox
                    .add_page(
                        &case.id,
                        &key,
                        &format!("{key}-{n}.jpg"),
                        &crash_photo(seq, n),
                    )
                    .map_err(store)?;
            }
        }
        outbox.seal(&case.id, item, Utc::now()).map_err(store)?;
        // Printed only now: the id on stdout is the promise that the case is durable.
        writeln!(stdout, "{}", case.id)?;
        stdout.flush()?;
        made += 1;
    }
    Ok(ExitCode::SUCCESS)
}

/// The photos 初审 requires for these answers: (material key, pages), in the guide's order. Scripts
/// that fill forms mechanically take exactly these.
pub fn required_pages(
    item: &bianmin_engine::catalog::Item,
    applicant: &Applicant,
    answers: &BTreeMap<String, Answer>,
) -> Vec<(String, usize)> {
    let today = chrono::Local::now().date_naive();
    validate::material_needs(item, applicant, answers, today)
        .into_iter()
        .filter(|m| m.required)
        .map(|m| (m.key, m.pages.len()))
        .collect()
}

/// Valid answers for every field of an item (the crash loop fills forms mechanically).
pub fn crash_answers(item: &bianmin_engine::catalog::Item) -> BTreeMap<String, Answer> {
    let id = crash_applicant(0).id_number;
    item.guide
        .iter()
        .flat_map(|g| g.fields.iter())
        .map(|f| (f.key.clone(), f.sample_answer(&id)))
        .collect()
}
