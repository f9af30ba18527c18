//! The item catalog (事项清单) with service guides (办事指南), loaded and validated from `assets/catalog/*.toml`.
//!
//! The county edits these lists (动态更新), so they are data, not code. Every file is validated on load and
//! any problem is reported with the file name and the item code, because the person fixing it is editing a
//! TOML file by hand, not reading Rust.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
    #[serde(default)]
    pub guide: Option<Guide>,
}

impl Item {
    /// True for village-level items (code prefix `V`).
    pub fn is_village(&self) -> bool {
        self.code.starts_with('V')
    }
}

/// 办事指南: everything the agent tells the resident and checks before handing the case on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guide {
    /// The content was written from general knowledge and awaits confirmation by the county.
    #[serde(default)]
    pub draft: bool,
    /// What the item is and who may apply (申请条件).
    pub summary: String,
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
    /// 监督电话.
    pub supervision_phone: String,
    /// 示范文本 of the application.
    #[serde(default)]
    pub sample_form: String,
    #[serde(default)]
    pub materials: Vec<Material>,
    /// Form fields beyond the applicant block common to all items.
    #[serde(default)]
    pub fields: Vec<FieldDef>,
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
    /// Copies or pages expected.
    pub count: u32,
    pub required: bool,
    pub capture: CaptureKind,
    /// Colour matters (red seals, certificates), so the scanner must not convert to grayscale.
    #[serde(default)]
    pub color: bool,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Textarea,
    Number,
    Date,
    Choice,
    Bool,
    IdNumber,
    Phone,
}

/// A form field an item needs beyond the applicant's name, ID number, phone and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
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
}

impl FieldDef {
    /// A value that passes this field's validation, for forms filled by scripts (the agent's crash
    /// loop, tests, benchmarks); `id_number` is the answer for ID-number fields.
    pub fn sample_answer(&self, id_number: &str) -> String {
        match self.kind {
            FieldKind::Text | FieldKind::Textarea => "情况属实".to_string(),
            FieldKind::Number => self
                .min
                .unwrap_or(0)
                .max(1)
                .min(self.max.unwrap_or(i64::MAX))
                .to_string(),
            FieldKind::Date => "2026-11-20".to_string(),
            FieldKind::Choice => self.choices[0].clone(),
            FieldKind::Bool => "是".to_string(),
            FieldKind::IdNumber => id_number.to_string(),
            FieldKind::Phone => "13934561234".to_string(),
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
    #[error("{file}: item {code}: material '{key}': count must be at least 1")]
    ZeroCount {
        file: String,
        code: String,
        key: String,
    },
    #[error("{file}: item {code}: field '{key}': {reason}")]
    BadField {
        file: String,
        code: String,
        key: String,
        reason: String,
    },
}

/// The on-disk shape of one catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    meta: CatalogMeta,
    #[serde(default)]
    item: Vec<Item>,
}

/// All items of one or more lists, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    lists: Vec<CatalogMeta>,
    items: Vec<Item>,
}

const EMBEDDED: [(&str, &str); 2] = [
    (
        "village.toml",
        include_str!("../../../assets/catalog/village.toml"),
    ),
    (
        "town.toml",
        include_str!("../../../assets/catalog/town.toml"),
    ),
];

impl Catalog {
    /// Parses and validates one catalog file; `file_name` is only used in error messages.
    pub fn from_toml(file_name: &str, text: &str) -> Result<Catalog, CatalogError> {
        let parsed: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
            file: file_name.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate_file(file_name, &parsed)?;
        Ok(Catalog {
            lists: vec![parsed.meta],
            items: parsed.item,
        })
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
        // Sorted for a deterministic result; list order is fixed afterwards by `merge`.
        files.sort();
        let mut catalog: Option<Catalog> = None;
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|e| io(file, e))?;
            let name = file.display().to_string();
            let one = Catalog::from_toml(&name, &text)?;
            catalog = Some(match catalog {
                None => one,
                Some(c) => c.merge(one, &name)?,
            });
        }
        catalog.ok_or_else(|| CatalogError::Empty {
            file: dir.display().to_string(),
        })
    }

    /// The lists compiled into the binary (village first, then town).
    pub fn embedded() -> Result<Catalog, CatalogError> {
        let mut catalog: Option<Catalog> = None;
        for (name, text) in EMBEDDED {
            let one = Catalog::from_toml(name, text)?;
            catalog = Some(match catalog {
                None => one,
                Some(c) => c.merge(one, name)?,
            });
        }
        Ok(catalog.expect("EMBEDDED is not empty"))
    }

    /// Combines two catalogs; a code present in both is an error attributed to `other_file`.
    fn merge(mut self, other: Catalog, other_file: &str) -> Result<Catalog, CatalogError> {
        let codes: BTreeSet<&str> = self.items.iter().map(|i| i.code.as_str()).collect();
        if let Some(dup) = other.items.iter().find(|i| codes.contains(i.code.as_str())) {
            return Err(CatalogError::DuplicateCode {
                file: other_file.to_string(),
                code: dup.code.clone(),
            });
        }
        self.lists.extend(other.lists);
        self.items.extend(other.items);
        // Village items first: that is what the village agent scrolls through. The sort is stable, so
        // seed order within a list is kept.
        self.lists.sort_by_key(|m| m.list);
        self.items.sort_by_key(|i| !i.is_village());
        Ok(self)
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
}

impl Guide {
    /// The complete 一次性告知 notice for `item`, as plain text the app prints or shows.
    pub fn notice(&self, item: &Item) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(s, "一次性告知书");
        let _ = writeln!(s, "事项名称：{}（编码 {}）", item.name, item.code);
        let _ = writeln!(s, "事项类型：{}", item.kind);
        if !item.method.is_empty() {
            let _ = writeln!(s, "办理方式：{}", item.method);
        }
        let _ = writeln!(s, "办理层级：{}", self.handling_level);
        let _ = writeln!(s, "\n一、申请条件\n{}", self.summary);
        if !self.legal_basis.is_empty() {
            let _ = writeln!(s, "\n二、设定依据");
            for (i, b) in self.legal_basis.iter().enumerate() {
                let _ = writeln!(s, "{}. {}", i + 1, b);
            }
        }
        let _ = writeln!(s, "\n三、申请材料（请一次性备齐）");
        for (i, m) in self.materials.iter().enumerate() {
            let need = if m.required { "必交" } else { "视情提交" };
            // Count is what the agent photographs: pages of a document, or cards.
            let unit = match m.capture {
                CaptureKind::Card => "张",
                CaptureKind::Page => "页",
            };
            let _ = write!(
                s,
                "{}. {}：{}，{} {}（{}）",
                i + 1,
                m.name,
                m.form.label(),
                m.count,
                unit,
                need
            );
            if !m.note.is_empty() {
                let _ = write!(s, "；{}", m.note);
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "\n四、收费标准\n{}", self.fee);
        let _ = writeln!(
            s,
            "\n五、承诺时限\n{} 个工作日（自受理之日的次日起计算，补正材料后重新计算）",
            self.promised_days
        );
        if !self.procedure.is_empty() {
            let _ = writeln!(s, "\n六、办理流程");
            for (i, p) in self.procedure.iter().enumerate() {
                let _ = writeln!(s, "{}. {}", i + 1, p);
            }
        }
        let _ = writeln!(s, "\n七、监督电话\n{}", self.supervision_phone);
        if self.draft {
            let _ = writeln!(
                s,
                "\n说明：本办事指南为草稿，具体内容以县行政审批局最终确认为准。"
            );
        }
        s
    }
}

/// Ascii snake_case: starts with a lowercase letter, then lowercase letters, digits and single underscores.
fn is_snake_case(key: &str) -> bool {
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

fn validate_file(file: &str, parsed: &CatalogFile) -> Result<(), CatalogError> {
    let f = || file.to_string();
    let mut codes = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    for item in &parsed.item {
        let code = &item.code;
        let c = || code.clone();
        if !code_matches(code, parsed.meta.list) {
            return Err(CatalogError::CodeMismatch {
                file: f(),
                code: c(),
                list: parsed.meta.list,
                prefix: parsed.meta.list.prefix(),
            });
        }
        if !codes.insert(code.as_str()) {
            return Err(CatalogError::DuplicateCode {
                file: f(),
                code: c(),
            });
        }
        if !seqs.insert(item.seq) {
            return Err(CatalogError::DuplicateSeq {
                file: f(),
                code: c(),
                seq: item.seq,
            });
        }
        for (field, value) in [("name", &item.name), ("kind", &item.kind)] {
            if value.trim().is_empty() {
                return Err(CatalogError::EmptyField {
                    file: f(),
                    code: c(),
                    field: field.into(),
                });
            }
        }
        match &item.guide {
            None if parsed.meta.list == ListKind::Village => {
                return Err(CatalogError::MissingGuide {
                    file: f(),
                    code: c(),
                })
            }
            None => {}
            Some(guide) => validate_guide(file, code, guide)?,
        }
    }
    Ok(())
}

fn validate_guide(file: &str, code: &str, g: &Guide) -> Result<(), CatalogError> {
    let f = || file.to_string();
    let c = || code.to_string();
    let empty = |field: &str| CatalogError::EmptyField {
        file: f(),
        code: c(),
        field: field.to_string(),
    };
    for (field, value) in [
        ("guide.summary", &g.summary),
        ("guide.fee", &g.fee),
        ("guide.handling_level", &g.handling_level),
        ("guide.supervision_phone", &g.supervision_phone),
        ("guide.sample_form", &g.sample_form),
    ] {
        if value.trim().is_empty() {
            return Err(empty(field));
        }
    }
    if g.legal_basis.is_empty() || g.legal_basis.iter().any(|b| b.trim().is_empty()) {
        return Err(empty("guide.legal_basis"));
    }
    if g.procedure.is_empty() || g.procedure.iter().any(|p| p.trim().is_empty()) {
        return Err(empty("guide.procedure"));
    }
    if g.promised_days == 0 {
        return Err(CatalogError::ZeroDays {
            file: f(),
            code: c(),
        });
    }
    let mut keys = BTreeSet::new();
    for m in &g.materials {
        if !is_snake_case(&m.key) {
            return Err(CatalogError::BadKey {
                file: f(),
                code: c(),
                what: "material",
                key: m.key.clone(),
            });
        }
        if !keys.insert(m.key.as_str()) {
            return Err(CatalogError::DuplicateKey {
                file: f(),
                code: c(),
                what: "material",
                key: m.key.clone(),
            });
        }
        if m.name.trim().is_empty() {
            return Err(empty(&format!("material '{}' name", m.key)));
        }
        if m.count == 0 {
            return Err(CatalogError::ZeroCount {
                file: f(),
                code: c(),
                key: m.key.clone(),
            });
        }
    }
    if !g.materials.iter().any(|m| m.required) {
        return Err(CatalogError::NoRequiredMaterial {
            file: f(),
            code: c(),
        });
    }
    let mut keys = BTreeSet::new();
    for d in &g.fields {
        if !is_snake_case(&d.key) {
            return Err(CatalogError::BadKey {
                file: f(),
                code: c(),
                what: "field",
                key: d.key.clone(),
            });
        }
        if !keys.insert(d.key.as_str()) {
            return Err(CatalogError::DuplicateKey {
                file: f(),
                code: c(),
                what: "field",
                key: d.key.clone(),
            });
        }
        let bad = |reason: String| CatalogError::BadField {
            file: f(),
            code: c(),
            key: d.key.clone(),
            reason,
        };
        if d.label.trim().is_empty() {
            return Err(bad("label is empty".into()));
        }
        if d.kind == FieldKind::Choice {
            if d.choices.is_empty() || d.choices.iter().any(|x| x.trim().is_empty()) {
                return Err(bad(
                    "a choice field needs a non-empty list of non-empty choices".into(),
                ));
            }
            let distinct: BTreeSet<&String> = d.choices.iter().collect();
            if distinct.len() != d.choices.len() {
                return Err(bad("choices contain duplicates".into()));
            }
        } else if !d.choices.is_empty() {
            return Err(bad(format!(
                "choices are only allowed on choice fields, not {:?}",
                d.kind
            )));
        }
        if d.kind != FieldKind::Number && (d.min.is_some() || d.max.is_some()) {
            return Err(bad(format!(
                "min/max are only allowed on number fields, not {:?}",
                d.kind
            )));
        }
        if let (Some(min), Some(max)) = (d.min, d.max) {
            if min > max {
                return Err(bad(format!("min {min} is greater than max {max}")));
            }
        }
        match d.max_len {
            Some(_) if !matches!(d.kind, FieldKind::Text | FieldKind::Textarea) => {
                return Err(bad(format!(
                    "max_len is only allowed on text and textarea fields, not {:?}",
                    d.kind
                )))
            }
            Some(0) => return Err(bad("max_len must be at least 1".into())),
            _ => {}
        }
    }
    Ok(())
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
