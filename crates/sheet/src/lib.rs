//! The catalog as a spreadsheet: county staff edit items in Excel, WPS or LibreOffice instead of
//! TOML or JSON. [`export`] writes a catalog to `.xlsx`; [`import`] reads one back, reporting
//! every problem it finds by file, sheet, row and item, then validates the result with
//! [`bianmin_engine::catalog::Catalog::new`]. No UI, no network.
//!
//! The sheets follow XLSForm, the format ODK and KoBoToolbox users already know: `settings` (the
//! lists), `items` (one row per item, the guide's single values), `texts` (the guide's line lists:
//! conditions, legal basis, procedure, points to confirm, one row per line), `survey` (form fields,
//! repeat groups as `begin_group`/`end_group` rows), `choices` (`list_name`, `label`),
//! `materials`, `checks`, `contacts`, `holidays` (the 放假安排 table) and `divisions` (county, towns,
//! villages).

mod read;
mod write;

use std::fmt;

use thiserror::Error;

pub use read::{import, import_bytes};
pub use write::{export, export_bytes};

/// Columns of each sheet, in the order they are written. Import accepts them in any order and
/// refuses unknown ones (a misspelt header would otherwise drop a column silently).
pub(crate) const SHEETS: &[(&str, &[&str])] = &[
    ("settings", &["list", "title", "source"]),
    (
        "items",
        &[
            "code",
            "seq",
            "name",
            "kind",
            "method",
            "applicant",
            "guide",
            "draft",
            "summary",
            "promised_days",
            "fee",
            "handling_level",
            "contact",
            "sample_form",
        ],
    ),
    ("texts", &["item", "section", "text"]),
    (
        "survey",
        &[
            "item",
            "type",
            "name",
            "label",
            "required",
            "required_if",
            "relevant",
            "constraint",
            "constraint_message",
            "choice_list",
            "min",
            "max",
            "max_len",
            "help",
            "min_rows",
            "max_rows",
        ],
    ),
    ("choices", &["list_name", "label"]),
    (
        "materials",
        &[
            "item",
            "key",
            "name",
            "form",
            "required",
            "required_if",
            "relevant",
            "capture",
            "color",
            "pages",
            "per",
            "per_if",
            "more_pages",
            "note",
        ],
    ),
    ("checks", &["item", "rule", "message"]),
    ("contacts", &["key", "label", "phone"]),
    ("holidays", &["year", "type", "date"]),
    // One row per county, town and village; a village belongs to the town its code starts with.
    (
        "divisions",
        &["level", "code", "name", "pilot", "confirmed"],
    ),
    // One row per county office receiving forwarded cases (转县); `items` lists item codes,
    // separated by commas.
    ("receivers", &["key", "name", "phone", "default", "items"]),
];

/// The guide's line lists in sheet `texts`.
pub(crate) const SECTIONS: &[&str] = &["conditions", "legal_basis", "procedure", "to_confirm"];

/// How the photos of one material are joined in one cell (the full-width semicolon Chinese text uses).
pub const PAGE_SEPARATOR: &str = "；";

/// One problem of a spreadsheet, located as precisely as it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub sheet: Option<String>,
    /// 1-based, as the spreadsheet shows it.
    pub row: Option<usize>,
    pub item: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        let mut sep = ": ";
        if let Some(s) = &self.sheet {
            write!(f, "{sep}sheet {s}")?;
            sep = ", ";
        }
        if let Some(r) = self.row {
            write!(f, "{sep}row {r}")?;
            sep = ", ";
        }
        if let Some(i) = &self.item {
            write!(f, "{sep}item {i}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a spreadsheet could not be written or read.
#[derive(Debug, Error)]
pub enum SheetError {
    #[error("{file}: cannot write the workbook: {message}")]
    Write { file: String, message: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a readable .xlsx workbook: {message}")]
    Workbook { file: String, message: String },
    /// Every problem found, one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl SheetError {
    /// The problems of an invalid spreadsheet (empty for the other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            SheetError::Invalid(p) => p,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests;
