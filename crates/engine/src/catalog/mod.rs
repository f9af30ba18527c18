//! The item catalog (事项清单) with service guides (办事指南), loaded and validated from `assets/catalog/*.toml`.
//!
//! The county edits these lists (动态更新), so they are data, not code. Every file is validated on load and
//! any problem is reported with the file name and the item code, because the person fixing it is editing a
//! TOML file by hand, not reading Rust.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use bianmin_protocol::Answer;

use crate::deadline::{HolidayYear, WorkCalendar};
use crate::form::Expr;

mod check;
mod diff;
pub mod divisions;
mod notice;
mod parts;
pub mod receivers;

pub use diff::{changes, item_changes, Change, ItemChange};
pub use divisions::{County, Divisions, Town, Village};
pub use notice::contact_text;
pub use parts::content_hash;
pub use receivers::Receiver;

/// Which list a file belongs to; decides the code prefix and whether a guide is mandatory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// 村级政务服务事项 (codes `V..`): every item needs a full guide, the village agent works from it.
    Village,
    /// 镇级政务服务事项 (codes `T..`): the guide is optional.
    Town,
}

impl ListKind {
    /// The code prefix of the list's items.
    pub fn prefix(self) -> char {
        match self {
            ListKind::Village => 'V',
            ListKind::Town => 'T',
        }
    }
}

/// The `[meta]` table of one catalog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogMeta {
    pub list: ListKind,
    pub title: String,
    pub source: String,
}

/// One item (事项) as listed in the county's plan, with its guide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Stable code (`V01`, `T17`); cases refer to items by this code, never by name or position.
    pub code: String,
    /// 序号 in the county's list.
    pub seq: u32,
    /// 事项名称, character for character as published.
    pub name: String,
    /// 事项类型 (行政确认, 公共服务, ...).
    pub kind: String,
    /// 办理方式; empty where the published list leaves it blank.
    #[serde(default)]
    pub method: String,
    /// Who applies: a resident (the default) or, for reports such as 到龄死亡月报表, the village itself.
    #[serde(default, skip_serializing_if = "ApplicantKind::is_resident")]
    pub applicant: ApplicantKind,
    #[serde(default)]
    pub guide: Option<Guide>,
}

/// Whether an item has a resident applicant, with an ID number, a receipt and a 好差评 rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantKind {
    #[default]
    Resident,
    /// A report the village agent files for the village: no resident, no receipt, no rating.
    Village,
}

impl ApplicantKind {
    pub fn is_resident(&self) -> bool {
        *self == ApplicantKind::Resident
    }
}

impl Item {
    /// True for village-level items (code prefix `V`).
    pub fn is_village(&self) -> bool {
        self.code.starts_with('V')
    }
}

/// 办事指南: everything the agent tells the resident and checks before handing the case on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guide {
    /// The content was written from general knowledge and awaits confirmation by the county.
    #[serde(default)]
    pub draft: bool,
    /// Points the county still has to confirm, shown to agents and residents as such (待县确认).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_confirm: Vec<String>,
    /// What the item is, in a sentence or two.
    pub summary: String,
    /// 申请条件, one per line, each citing its rule.
    #[serde(default)]
    pub conditions: Vec<String>,
    /// 设定依据.
    #[serde(default)]
    pub legal_basis: Vec<String>,
    /// 办理流程, starting at the village service point.
    #[serde(default)]
    pub procedure: Vec<String>,
    /// 承诺时限 in working days, counted from the day after acceptance.
    pub promised_days: u32,
    /// 收费标准; "不收费" is written out because the plan requires it to be stated.
    pub fee: String,
    /// 办理层级.
    pub handling_level: String,
    /// Key of the county contact ([`Contact`]) residents call to supervise this item (监督电话).
    #[serde(default = "default_contact")]
    pub contact: String,
    /// 示范文本 of the application.
    #[serde(default)]
    pub sample_form: String,
    #[serde(default)]
    pub materials: Vec<Material>,
    /// Form fields beyond the applicant block common to all items.
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    /// Eligibility rules over the whole case, checked at 初审 (年满80周岁, 男性 …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

fn default_contact() -> String {
    "supervision".to_string()
}

/// An eligibility rule of an item: when `rule` does not hold, 初审 shows `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub rule: Expr,
    /// Chinese, naming the condition and its source.
    pub message: String,
}

/// A county phone number residents may call (监督电话, 咨询电话): reference data the county publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub key: String,
    /// What the number is for, e.g. 县政务服务投诉监督电话.
    pub label: String,
    /// Empty until the county publishes it; the app then says so instead of showing a number.
    #[serde(default)]
    pub phone: String,
}

/// Whether the resident brings the original, a copy, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    Original,
    Copy,
    OriginalAndCopy,
}

impl MaterialForm {
    /// The wording used in notices.
    pub fn label(self) -> &'static str {
        match self {
            MaterialForm::Original => "原件",
            MaterialForm::Copy => "复印件",
            MaterialForm::OriginalAndCopy => "原件及复印件",
        }
    }
}

/// How a material is photographed: the scanner crops to an ID-card or an A4 outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureKind {
    Card,
    Page,
}

/// One document the resident must (or may) bring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Material {
    /// Stable within the item; cases store pages under this key.
    pub key: String,
    pub name: String,
    pub form: MaterialForm,
    /// Required whenever it is shown.
    #[serde(default)]
    pub required: bool,
    /// Required only when this holds over the answers (视情提交 made precise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if: Option<Expr>,
    /// Shown only when this holds; a hidden material is neither asked for nor checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<Expr>,
    pub capture: CaptureKind,
    /// Colour matters (red seals, certificates), so the scanner must not convert to grayscale.
    #[serde(default)]
    pub color: bool,
    /// The photos to take, in order, by what each shows (正面, 反面, 户主页 …).
    pub pages: Vec<String>,
    /// Take `pages` once per row of this repeat group (每人), e.g. each member's ID card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<String>,
    /// With `per`: only for the rows where this holds over `row` (e.g. `row.id_number_age >= 16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_if: Option<Expr>,
    /// More pages than listed may follow (a certificate of several pages).
    #[serde(default)]
    pub more_pages: bool,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    #[default]
    Text,
    Textarea,
    Number,
    Date,
    Choice,
    Bool,
    IdNumber,
    Phone,
    /// Several of `choices`.
    Multi,
    /// A repeat group: rows of `fields` (household members).
    Group,
}

/// A form field an item needs beyond the applicant's name, ID number, phone and address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    /// Required only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if: Option<Expr>,
    /// Shown only when this holds; a hidden field's answer is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<Expr>,
    /// Must hold over `value` (and the other answers) when answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Expr>,
    /// Shown when `constraint` fails.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub constraint_message: String,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub help: String,
    /// The columns of a repeat group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDef>,
    /// Fewest and most rows of a repeat group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
}

impl FieldDef {
    /// A value that passes this field's own validation, for forms filled by scripts (the agent's crash
    /// loop, tests, benchmarks); `id_number` is the answer for ID-number fields. Conditions and
    /// constraints across fields are not considered: scripts that need them pass real answers.
    pub fn sample_answer(&self, id_number: &str) -> Answer {
        match self.kind {
            FieldKind::Multi => Answer::Choices(self.choices.iter().take(1).cloned().collect()),
            FieldKind::Group => {
                let rows = self.min_rows.unwrap_or(1).max(1) as usize;
                Answer::Rows(
                    (0..rows)
                        .map(|_| {
                            self.fields
                                .iter()
                                .map(|f| (f.key.clone(), f.sample_text(id_number)))
                                .collect()
                        })
                        .collect(),
                )
            }
            _ => Answer::Text(self.sample_text(id_number)),
        }
    }

    fn sample_text(&self, id_number: &str) -> String {
        match self.kind {
            FieldKind::Text | FieldKind::Textarea => "情况属实".to_string(),
            FieldKind::Number => self
                .min
                .unwrap_or(0)
                .max(1)
                .min(self.max.unwrap_or(i64::MAX))
                .to_string(),
            FieldKind::Date => "2026-11-20".to_string(),
            FieldKind::Choice | FieldKind::Multi => {
                self.choices.first().cloned().unwrap_or_default()
            }
            FieldKind::Bool => "是".to_string(),
            FieldKind::IdNumber => id_number.to_string(),
            FieldKind::Phone => "13934561234".to_string(),
            FieldKind::Group => String::new(),
        }
    }
}

/// Why a catalog could not be loaded; every variant names the file, and the item where there is one.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: invalid TOML: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: county receivers: {reason}")]
    BadReceivers { file: String, reason: String },
    #[error("{file}: divisions: {reason}")]
    BadDivisions { file: String, reason: String },
    #[error("{file}: no catalog files (*.toml) found")]
    Empty { file: String },
    #[error("{file}: item {code}: duplicate item code")]
    DuplicateCode { file: String, code: String },
    #[error("{file}: item {code}: code does not match the {list:?} list (expected '{prefix}' followed by digits, e.g. {prefix}01)")]
    CodeMismatch {
        file: String,
        code: String,
        list: ListKind,
        prefix: char,
    },
    #[error("{file}: item {code}: duplicate seq {seq}")]
    DuplicateSeq {
        file: String,
        code: String,
        seq: u32,
    },
    #[error("{file}: item {code}: {field} is empty")]
    EmptyField {
        file: String,
        code: String,
        field: String,
    },
    #[error("{file}: item {code}: village items must have a guide ([item.guide])")]
    MissingGuide { file: String, code: String },
    #[error("{file}: item {code}: the guide has no required material")]
    NoRequiredMaterial { file: String, code: String },
    #[error("{file}: item {code}: promised_days must be greater than 0")]
    ZeroDays { file: String, code: String },
    #[error("{file}: item {code}: {what} key '{key}' is not ascii snake_case")]
    BadKey {
        file: String,
        code: String,
        what: &'static str,
        key: String,
    },
    #[error("{file}: item {code}: duplicate {what} key '{key}'")]
    DuplicateKey {
        file: String,
        code: String,
        what: &'static str,
        key: String,
    },
    #[error("{file}: item {code}: material '{key}': {reason}")]
    BadMaterial {
        file: String,
        code: String,
        key: String,
        reason: String,
    },
    #[error("{file}: item {code}: {place}: expression `{expr}`: {reason}")]
    BadExpr {
        file: String,
        code: String,
        place: String,
        expr: String,
        reason: String,
    },
    #[error(
        "{file}: items are listed but there is no [meta] table saying which list they belong to"
    )]
    MissingMeta { file: String },
    #[error("{file}: contact '{key}': {reason}")]
    BadContact {
        file: String,
        key: String,
        reason: String,
    },
    #[error("{file}: item {code}: field '{key}': {reason}")]
    BadField {
        file: String,
        code: String,
        key: String,
        reason: String,
    },
}

/// The on-disk shape of one catalog file: a list (`[meta]` and `[[item]]`) and/or county reference data
/// (`[[contact]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    meta: Option<CatalogMeta>,
    #[serde(default)]
    item: Vec<Item>,
    #[serde(default)]
    contact: Vec<Contact>,
    /// The holiday table (`holidays.toml`): one `[[year]]` per published 放假安排.
    #[serde(default)]
    year: Vec<HolidayYear>,
    /// The administrative tree (`divisions.toml`): `[county]` and its `[[town]]`s with their
    /// `[[town.village]]`s.
    #[serde(default)]
    county: Option<County>,
    #[serde(default)]
    town: Vec<Town>,
    /// The county offices that receive forwarded cases (`[[receiver]]`, in `county.toml`).
    #[serde(default)]
    receiver: Vec<Receiver>,
}

/// All items of one or more lists with the county's reference data (contacts, the holiday table),
/// validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    lists: Vec<CatalogMeta>,
    items: Vec<Item>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    holidays: Vec<HolidayYear>,
    /// Absent in versions published before divisions were reference data (their canonical JSON, and
    /// so their hash, stays as it was); the town then uses its own file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    divisions: Option<Divisions>,
    /// Absent (and so not in the canonical JSON) in versions published before the county offices
    /// were reference data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    receivers: Vec<Receiver>,
}

const EMBEDDED: [(&str, &str); 5] = [
    ("holidays.toml", crate::deadline::DEFAULT_HOLIDAYS),
    (
        "village.toml",
        include_str!("../../../../assets/catalog/village.toml"),
    ),
    (
        "town.toml",
        include_str!("../../../../assets/catalog/town.toml"),
    ),
    (
        "county.toml",
        include_str!("../../../../assets/catalog/county.toml"),
    ),
    (
        "divisions.toml",
        include_str!("../../../../assets/catalog/divisions.toml"),
    ),
];

impl Catalog {
    /// Builds a catalog from parts and validates it; `source` names where they came from (a file, a
    /// spreadsheet, a published version) in error messages.
    pub fn new(
        source: &str,
        lists: Vec<CatalogMeta>,
        items: Vec<Item>,
        contacts: Vec<Contact>,
    ) -> Result<Catalog, CatalogError> {
        let mut c = Catalog {
            lists,
            items,
            contacts,
            holidays: Vec::new(),
            divisions: None,
            receivers: Vec::new(),
        };
        c.sort();
        check::catalog(source, &c)?;
        Ok(c)
    }

    /// The same lists and reference data with `items` instead (an edited version), validated.
    pub fn with_items(&self, source: &str, items: Vec<Item>) -> Result<Catalog, CatalogError> {
        Catalog::new(source, self.lists.clone(), items, self.contacts.clone())?
            .with_holidays(source, self.holidays.clone())?
            .with_divisions(source, self.divisions.clone())?
            .with_receivers(source, self.receivers.clone())
    }

    /// This catalog with `divisions` as its administrative tree (checked: codes nest, none twice).
    pub fn with_divisions(
        mut self,
        source: &str,
        divisions: Option<Divisions>,
    ) -> Result<Catalog, CatalogError> {
        if let Some(d) = &divisions {
            d.check().map_err(|reason| CatalogError::BadDivisions {
                file: source.to_string(),
                reason,
            })?;
        }
        self.divisions = divisions;
        Ok(self)
    }

    /// The administrative tree, when this version carries one.
    pub fn divisions(&self) -> Option<&Divisions> {
        self.divisions.as_ref()
    }

    /// This catalog with `years` as its holiday table (checked: every entry a real date or range).
    pub fn with_holidays(
        mut self,
        source: &str,
        mut years: Vec<HolidayYear>,
    ) -> Result<Catalog, CatalogError> {
        years.sort_by_key(|y| y.year);
        WorkCalendar::from_years(&years).map_err(|e| CatalogError::Parse {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        if let Some(w) = years.windows(2).find(|w| w[0].year == w[1].year) {
            return Err(CatalogError::Parse {
                file: source.to_string(),
                message: format!("holiday table lists year {} twice", w[0].year),
            });
        }
        self.holidays = years;
        Ok(self)
    }

    /// The published holiday tables, oldest year first.
    pub fn holidays(&self) -> &[HolidayYear] {
        &self.holidays
    }

    /// The working-day calendar of this catalog's holiday table.
    pub fn calendar(&self) -> WorkCalendar {
        WorkCalendar::from_years(&self.holidays).expect("holiday tables are checked on load")
    }

    /// Parses and validates one catalog file; `file_name` is only used in error messages.
    pub fn from_toml(file_name: &str, text: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_tomls(&[(file_name, text)])
    }

    /// Parses several catalog files into one catalog.
    pub fn from_tomls(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut lists = Vec::new();
        let mut items = Vec::new();
        let mut contacts = Vec::new();
        let mut years = Vec::new();
        let mut divisions: Option<(String, County, Vec<Town>)> = None;
        let mut receivers = Vec::new();
        let mut names = Vec::new();
        for (name, text) in files {
            let parsed: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
                file: name.to_string(),
                message: e.to_string().trim_end().to_string(),
            })?;
            check::file(name, parsed.meta.as_ref(), &parsed.item)?;
            // A duplicate across files is reported against the later file, the one to fix.
            if let Some(dup) = parsed
                .item
                .iter()
                .find(|i| items.iter().any(|o: &Item| o.code == i.code))
            {
                return Err(CatalogError::DuplicateCode {
                    file: name.to_string(),
                    code: dup.code.clone(),
                });
            }
            if let Some(dup) = parsed
                .contact
                .iter()
                .find(|c| contacts.iter().any(|o: &Contact| o.key == c.key))
            {
                return Err(CatalogError::BadContact {
                    file: name.to_string(),
                    key: dup.key.clone(),
                    reason: "already listed in an earlier file".into(),
                });
            }
            lists.extend(parsed.meta);
            items.extend(parsed.item);
            contacts.extend(parsed.contact);
            years.extend(parsed.year);
            receivers.extend(parsed.receiver);
            match (parsed.county, &divisions) {
                (Some(_), Some((first, _, _))) => {
                    return Err(CatalogError::BadDivisions {
                        file: name.to_string(),
                        reason: format!("[county] is already given in {first}"),
                    })
                }
                (Some(county), None) => divisions = Some((name.to_string(), county, parsed.town)),
                (None, _) if !parsed.town.is_empty() => {
                    return Err(CatalogError::BadDivisions {
                        file: name.to_string(),
                        reason:
                            "[[town]] entries need the [county] they belong to in the same file"
                                .into(),
                    })
                }
                (None, _) => {}
            }
            names.push(*name);
        }
        let source = names.join(", ");
        let divisions = divisions.map(|(_, county, towns)| Divisions { county, towns });
        Catalog::new(&source, lists, items, contacts)?
            .with_holidays(&source, years)?
            .with_divisions(&source, divisions)?
            .with_receivers(&source, receivers)
    }

    /// Parses and validates the JSON form a published version is stored and delivered in.
    pub fn from_json(source: &str, text: &str) -> Result<Catalog, CatalogError> {
        let c: Catalog = serde_json::from_str(text).map_err(|e| CatalogError::Parse {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        Catalog::new(source, c.lists, c.items, c.contacts)?
            .with_holidays(source, c.holidays)?
            .with_divisions(source, c.divisions)?
            .with_receivers(source, c.receivers)
    }

    /// The canonical JSON of this catalog: what is hashed, signed, stored and delivered.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a catalog always serializes")
    }

    /// Loads every `*.toml` in `path`, so the county can drop in an edited list without a rebuild.
    pub fn load_dir(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let dir = path.as_ref();
        let io = |p: &Path, source| CatalogError::Io {
            file: p.display().to_string(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| io(dir, e))?;
        files.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"));
        if files.is_empty() {
            return Err(CatalogError::Empty {
                file: dir.display().to_string(),
            });
        }
        // Sorted for a deterministic result; list order is fixed afterwards by `sort`.
        files.sort();
        let mut texts = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|e| io(file, e))?;
            texts.push((file.display().to_string(), text));
        }
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Catalog::from_tomls(&refs)
    }

    /// The lists compiled into the binary (village first, then town): the catalog a phone starts with
    /// before its first sync, and the first version a new town centre publishes.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        Catalog::from_tomls(&EMBEDDED)
    }

    /// Village items first: that is what the village agent scrolls through; within a list, published order.
    fn sort(&mut self) {
        self.lists.sort_by_key(|m| m.list);
        self.items.sort_by_key(|i| (!i.is_village(), i.seq));
    }

    /// The `[meta]` of every loaded file.
    pub fn lists(&self) -> &[CatalogMeta] {
        &self.lists
    }

    /// Every item, village items first, each list in published order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn village_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.is_village())
    }

    pub fn town_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.is_village())
    }

    pub fn item(&self, code: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.code == code)
    }

    /// The county's contacts (监督电话 and others).
    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    /// The contact a guide names, if the county has listed it.
    pub fn contact(&self, key: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.key == key)
    }
}

/// Ascii snake_case: starts with a lowercase letter, then lowercase letters, digits and single underscores.
pub fn is_snake_case(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && !key.ends_with('_')
        && !key.contains("__")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn code_matches(code: &str, list: ListKind) -> bool {
    let mut chars = code.chars();
    chars.next() == Some(list.prefix()) && {
        let digits = chars.as_str();
        digits.len() >= 2 && digits.bytes().all(|c| c.is_ascii_digit())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_keys() {
        for ok in ["id_card", "a", "photo_2", "household_size"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in ["", "IdCard", "_x", "x_", "a__b", "1a", "身份证", "id-card"] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }

    #[test]
    fn codes() {
        assert!(code_matches("V01", ListKind::Village));
        assert!(code_matches("T100", ListKind::Town));
        assert!(!code_matches("T01", ListKind::Village));
        assert!(!code_matches("V1", ListKind::Village));
        assert!(!code_matches("V0a", ListKind::Village));
    }
}
