//! Import: reads every sheet, collects every problem it can find (by file, sheet, row and item)
//! instead of stopping at the first, and only then builds and validates the catalog.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use bianmin_engine::catalog::{
    ApplicantKind, CaptureKind, Catalog, CatalogError, CatalogMeta, Check, Contact, County,
    Divisions, FieldDef, FieldKind, Guide, Item, ListKind, Material, MaterialForm, Receiver, Town,
    Village,
};
use bianmin_engine::deadline::HolidayYear;
use bianmin_engine::form::Expr;
use calamine::{Data, Reader, Xlsx};

use crate::write::{applicant_name, capture_name, form_name, list_name, type_name};
use crate::{Problem, SheetError, PAGE_SEPARATOR, SECTIONS, SHEETS};

/// One sheet: its columns by header and its non-blank rows with their 1-based numbers.
struct Sheet {
    name: &'static str,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<Data>)>,
}

/// One row being read.
struct Row<'a> {
    sheet: &'a Sheet,
    number: usize,
    cells: &'a [Data],
    item: Option<String>,
}

/// The cell as text: numbers without a trailing `.0`, booleans as `yes`/`no`.
fn cell_text(d: &Data) -> String {
    match d {
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Data::DateTime(d) => {
            // A date typed into a cell becomes a serial day number; read it back as YYYY-MM-DD.
            let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid date");
            base.checked_add_signed(chrono::Duration::days(d.as_f64().floor() as i64))
                .map(|d| d.to_string())
                .unwrap_or_default()
        }
        Data::Error(e) => format!("#{e:?}"),
        Data::Empty => String::new(),
    }
}

struct Import {
    file: String,
    problems: Vec<Problem>,
}

impl Import {
    fn problem(&mut self, row: &Row, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            sheet: Some(row.sheet.name.to_string()),
            row: Some(row.number),
            item: row.item.clone(),
            message: message.into(),
        });
    }

    fn text(&self, row: &Row, col: &str) -> String {
        row.sheet
            .columns
            .get(col)
            .and_then(|&c| row.cells.get(c))
            .map(cell_text)
            .unwrap_or_default()
    }

    /// A name, code or keyword: surrounding spaces do not count.
    fn word(&self, row: &Row, col: &str) -> String {
        self.text(row, col).trim().to_string()
    }

    fn required(&mut self, row: &Row, col: &str) -> String {
        let t = self.text(row, col);
        if t.trim().is_empty() {
            self.problem(row, format!("{col} is empty"));
        }
        t
    }

    fn expr(&self, row: &Row, col: &str) -> Option<Expr> {
        let t = self.text(row, col);
        (!t.trim().is_empty()).then(|| Expr::new(t.trim()))
    }

    fn flag(&mut self, row: &Row, col: &str) -> bool {
        match self.word(row, col).to_lowercase().as_str() {
            "" | "no" | "false" | "0" | "否" => false,
            "yes" | "true" | "1" | "是" => true,
            other => {
                self.problem(row, format!("{col} must be yes or no, not '{other}'"));
                false
            }
        }
    }

    fn number<T: std::str::FromStr>(&mut self, row: &Row, col: &str) -> Option<T> {
        let t = self.word(row, col);
        if t.is_empty() {
            return None;
        }
        match t.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                self.problem(row, format!("{col} must be a whole number, not '{t}'"));
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        row: &Row,
        col: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Option<T> {
        let t = self.word(row, col);
        let found = all.iter().copied().find(|v| name(*v) == t);
        if found.is_none() {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            self.problem(
                row,
                format!("{col} must be one of {}, not '{t}'", names.join(", ")),
            );
        }
        found
    }
}

const LISTS: [ListKind; 2] = [ListKind::Village, ListKind::Town];
const APPLICANTS: [ApplicantKind; 2] = [ApplicantKind::Resident, ApplicantKind::Village];
const FORMS: [MaterialForm; 3] = [
    MaterialForm::Original,
    MaterialForm::Copy,
    MaterialForm::OriginalAndCopy,
];
const CAPTURES: [CaptureKind; 2] = [CaptureKind::Card, CaptureKind::Page];
const TYPES: [FieldKind; 10] = [
    FieldKind::Text,
    FieldKind::Textarea,
    FieldKind::Number,
    FieldKind::Date,
    FieldKind::Choice,
    FieldKind::Bool,
    FieldKind::IdNumber,
    FieldKind::Phone,
    FieldKind::Multi,
    FieldKind::Group,
];

/// Reads and validates the workbook at `path`; errors name the file as given.
pub fn import(path: &Path) -> Result<Catalog, SheetError> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string());
    let bytes = std::fs::read(path).map_err(|source| SheetError::Io {
        file: file.clone(),
        source,
    })?;
    import_bytes(&file, &bytes)
}

/// Reads and validates a workbook's bytes; `file` names it in every message.
pub fn import_bytes(file: &str, bytes: &[u8]) -> Result<Catalog, SheetError> {
    let mut wb: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(|e: calamine::XlsxError| {
            SheetError::Workbook {
                file: file.to_string(),
                message: e.to_string(),
            }
        })?;
    let mut imp = Import {
        file: file.to_string(),
        problems: Vec::new(),
    };
    let present = wb.sheet_names();
    let mut sheets = Vec::new();
    for (name, header) in SHEETS {
        let mut sheet = Sheet {
            name,
            columns: HashMap::new(),
            rows: Vec::new(),
        };
        if !present.iter().any(|p| p == name) {
            // Only the lists and items are indispensable; the other sheets may be left out.
            if matches!(*name, "settings" | "items") {
                imp.problems.push(Problem {
                    file: file.to_string(),
                    sheet: Some(name.to_string()),
                    row: None,
                    item: None,
                    message: "the sheet is missing".into(),
                });
            }
            sheets.push(sheet);
            continue;
        }
        let range = wb.worksheet_range(name).map_err(|e| SheetError::Workbook {
            file: file.to_string(),
            message: format!("sheet {name}: {e}"),
        })?;
        // calamine's range starts at the first used cell: rows and columns are offset by it.
        let (row0, col0) = range
            .start()
            .map(|(r, c)| (r as usize, c as usize))
            .unwrap_or((0, 0));
        let mut rows = range.rows().enumerate();
        if let Some((_, head)) = rows.next() {
            for (i, h) in head.iter().enumerate() {
                let h = cell_text(h).trim().to_string();
                if h.is_empty() {
                    continue;
                }
                if !header.contains(&h.as_str()) {
                    imp.problems.push(Problem {
                        file: file.to_string(),
                        sheet: Some(name.to_string()),
                        row: Some(row0 + 1),
                        item: None,
                        message: format!(
                            "unknown column '{h}' (the columns are {})",
                            header.join(", ")
                        ),
                    });
                }
                sheet.columns.insert(h, col0 + i);
            }
            for col in *header {
                if !sheet.columns.contains_key(*col) {
                    imp.problems.push(Problem {
                        file: file.to_string(),
                        sheet: Some(name.to_string()),
                        row: Some(row0 + 1),
                        item: None,
                        message: format!("column '{col}' is missing"),
                    });
                }
            }
        }
        for (i, cells) in rows {
            if cells.iter().all(|c| cell_text(c).trim().is_empty()) {
                continue;
            }
            // Cells are indexed from the sheet's first column, as the header was.
            let mut full = vec![Data::Empty; col0];
            full.extend(cells.iter().cloned());
            sheet.rows.push((row0 + i + 1, full));
        }
        sheets.push(sheet);
    }
    let sheet = |n: &str| sheets.iter().find(|s| s.name == n).expect("every sheet");
    let rows_of = |s: &'static str| {
        sheet(s).rows.iter().map(move |(n, cells)| Row {
            sheet: sheet(s),
            number: *n,
            cells,
            item: None,
        })
    };

    let mut lists = Vec::new();
    for row in rows_of("settings") {
        let list = imp.choice(&row, "list", &LISTS, list_name);
        let title = imp.required(&row, "title");
        let source = imp.text(&row, "source");
        if let Some(list) = list {
            lists.push(CatalogMeta {
                list,
                title,
                source,
            });
        }
    }

    // Where each item, material and field was, to place what validation finds.
    let mut item_rows: HashMap<String, usize> = HashMap::new();
    let mut material_rows: HashMap<(String, String), usize> = HashMap::new();
    let mut field_rows: HashMap<(String, String), usize> = HashMap::new();
    let mut check_rows: HashMap<String, Vec<usize>> = HashMap::new();
    let mut items: Vec<Item> = Vec::new();
    for mut row in rows_of("items") {
        let code = imp.word(&row, "code");
        row.item = Some(code.clone()).filter(|c| !c.is_empty());
        if code.is_empty() {
            imp.problem(&row, "code is empty");
            continue;
        }
        if item_rows.contains_key(&code) {
            imp.problem(&row, format!("item {code} is listed twice"));
            continue;
        }
        item_rows.insert(code.clone(), row.number);
        let seq = imp.number(&row, "seq");
        if seq.is_none() && imp.word(&row, "seq").is_empty() {
            imp.problem(&row, "seq is empty");
        }
        let applicant = imp.choice(&row, "applicant", &APPLICANTS, applicant_name);
        let guide = if imp.flag(&row, "guide") {
            let promised_days = imp.number(&row, "promised_days");
            if imp.word(&row, "promised_days").is_empty() {
                imp.problem(&row, "promised_days is empty");
            }
            let contact = imp.word(&row, "contact");
            Some(Guide {
                draft: imp.flag(&row, "draft"),
                summary: imp.text(&row, "summary"),
                promised_days: promised_days.unwrap_or(0),
                fee: imp.text(&row, "fee"),
                handling_level: imp.text(&row, "handling_level"),
                contact: if contact.is_empty() {
                    "supervision".into()
                } else {
                    contact
                },
                sample_form: imp.text(&row, "sample_form"),
                ..Guide::default()
            })
        } else {
            None
        };
        items.push(Item {
            code,
            seq: seq.unwrap_or(0),
            name: imp.text(&row, "name"),
            kind: imp.text(&row, "kind"),
            method: imp.text(&row, "method"),
            applicant: applicant.unwrap_or_default(),
            guide,
        });
    }
    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.code.clone(), i))
        .collect();
    // The guide of the row's item, or a problem saying why there is none.
    fn guide_of<'g>(
        imp: &mut Import,
        row: &mut Row,
        index: &HashMap<String, usize>,
        items: &'g mut [Item],
    ) -> Option<&'g mut Guide> {
        let code = imp.word(row, "item");
        row.item = Some(code.clone()).filter(|c| !c.is_empty());
        let Some(&i) = index.get(&code) else {
            imp.problem(
                row,
                if code.is_empty() {
                    "item is empty".to_string()
                } else {
                    "no such item in sheet items".to_string()
                },
            );
            return None;
        };
        if items[i].guide.is_none() {
            imp.problem(
                row,
                "the item has no guide (guide is not yes in sheet items)",
            );
            return None;
        }
        items[i].guide.as_mut()
    }

    for mut row in rows_of("texts") {
        row.item = Some(imp.word(&row, "item")).filter(|c| !c.is_empty());
        let section = imp.word(&row, "section");
        let text = imp.required(&row, "text");
        let Some(g) = guide_of(&mut imp, &mut row, &index, &mut items) else {
            continue;
        };
        let lines = match section.as_str() {
            "conditions" => &mut g.conditions,
            "legal_basis" => &mut g.legal_basis,
            "procedure" => &mut g.procedure,
            "to_confirm" => &mut g.to_confirm,
            other => {
                imp.problem(
                    &row,
                    format!(
                        "section must be one of {}, not '{other}'",
                        SECTIONS.join(", ")
                    ),
                );
                continue;
            }
        };
        lines.push(text);
    }

    let mut choices: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows_of("choices") {
        let list = imp.word(&row, "list_name");
        let label = imp.required(&row, "label");
        if list.is_empty() {
            imp.problem(&row, "list_name is empty");
            continue;
        }
        choices.entry(list).or_default().push(label);
    }

    // Repeat groups open with `begin_group` and close with `end_group`, as in XLSForm.
    let mut open: Vec<(FieldDef, usize)> = Vec::new();
    let mut open_item: Option<(String, usize)> = None;
    let close_all = |imp: &mut Import, open: &mut Vec<(FieldDef, usize)>, code: &str| {
        for (g, at) in open.drain(..) {
            imp.problems.push(Problem {
                file: imp.file.clone(),
                sheet: Some("survey".into()),
                row: Some(at),
                item: Some(code.to_string()),
                message: format!("begin_group '{}' has no end_group", g.key),
            });
        }
    };
    for mut row in rows_of("survey") {
        let code = imp.word(&row, "item");
        if open_item.as_ref().is_some_and(|(c, _)| *c != code) && !open.is_empty() {
            let (c, _) = open_item.clone().expect("checked");
            close_all(&mut imp, &mut open, &c);
        }
        let Some(&i) = index.get(&code) else {
            let _ = guide_of(&mut imp, &mut row, &index, &mut items);
            continue;
        };
        row.item = Some(code.clone());
        open_item = Some((code.clone(), i));
        let kind = imp.word(&row, "type");
        if kind == "end_group" {
            let Some((group, _)) = open.pop() else {
                imp.problem(&row, "end_group without a begin_group");
                continue;
            };
            let name = imp.word(&row, "name");
            if !name.is_empty() && name != group.key {
                imp.problem(
                    &row,
                    format!("end_group '{name}' closes begin_group '{}'", group.key),
                );
            }
            match open.last_mut() {
                Some((parent, _)) => parent.fields.push(group),
                None => {
                    if let Some(g) = guide_of(&mut imp, &mut row, &index, &mut items) {
                        g.fields.push(group)
                    }
                }
            }
            continue;
        }
        let Some(kind) = imp.choice(&row, "type", &TYPES, type_name) else {
            continue;
        };
        let key = imp.word(&row, "name");
        if key.is_empty() {
            imp.problem(&row, "name is empty");
        }
        field_rows
            .entry((code.clone(), key.clone()))
            .or_insert(row.number);
        let list = imp.word(&row, "choice_list");
        let field_choices = if list.is_empty() {
            if matches!(kind, FieldKind::Choice | FieldKind::Multi) {
                imp.problem(&row, "a select_one or select_multiple needs a choice_list");
            }
            Vec::new()
        } else {
            match choices.get(&list) {
                Some(c) => c.clone(),
                None => {
                    imp.problem(
                        &row,
                        format!("choice_list '{list}' is not in sheet choices"),
                    );
                    Vec::new()
                }
            }
        };
        let field = FieldDef {
            key,
            label: imp.text(&row, "label"),
            kind,
            required: imp.flag(&row, "required"),
            required_if: imp.expr(&row, "required_if"),
            relevant: imp.expr(&row, "relevant"),
            constraint: imp.expr(&row, "constraint"),
            constraint_message: imp.text(&row, "constraint_message"),
            min: imp.number(&row, "min"),
            max: imp.number(&row, "max"),
            max_len: imp.number(&row, "max_len"),
            choices: field_choices,
            help: imp.text(&row, "help"),
            fields: Vec::new(),
            min_rows: imp.number(&row, "min_rows"),
            max_rows: imp.number(&row, "max_rows"),
        };
        if kind == FieldKind::Group {
            open.push((field, row.number));
            continue;
        }
        match open.last_mut() {
            Some((parent, _)) => parent.fields.push(field),
            None => {
                if let Some(g) = guide_of(&mut imp, &mut row, &index, &mut items) {
                    g.fields.push(field)
                }
            }
        }
    }
    if let Some((c, _)) = open_item {
        close_all(&mut imp, &mut open, &c);
    }

    for mut row in rows_of("materials") {
        row.item = Some(imp.word(&row, "item")).filter(|c| !c.is_empty());
        let key = imp.word(&row, "key");
        if key.is_empty() {
            imp.problem(&row, "key is empty");
        }
        let name = imp.required(&row, "name");
        let form = imp.choice(&row, "form", &FORMS, form_name);
        let capture = imp.choice(&row, "capture", &CAPTURES, capture_name);
        let pages: Vec<String> = imp
            .text(&row, "pages")
            .split(PAGE_SEPARATOR)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if pages.is_empty() {
            imp.problem(
                &row,
                format!("pages is empty (name each photo, separated by '{PAGE_SEPARATOR}')"),
            );
        }
        let per = Some(imp.word(&row, "per")).filter(|p| !p.is_empty());
        let material = Material {
            key: key.clone(),
            name,
            form: form.unwrap_or(MaterialForm::Original),
            required: imp.flag(&row, "required"),
            required_if: imp.expr(&row, "required_if"),
            relevant: imp.expr(&row, "relevant"),
            capture: capture.unwrap_or(CaptureKind::Page),
            color: imp.flag(&row, "color"),
            pages,
            per,
            per_if: imp.expr(&row, "per_if"),
            more_pages: imp.flag(&row, "more_pages"),
            note: imp.text(&row, "note"),
        };
        let number = row.number;
        if let Some(g) = guide_of(&mut imp, &mut row, &index, &mut items) {
            g.materials.push(material);
            material_rows.insert((row.item.clone().unwrap_or_default(), key), number);
        }
    }

    for mut row in rows_of("checks") {
        row.item = Some(imp.word(&row, "item")).filter(|c| !c.is_empty());
        let rule = imp.required(&row, "rule");
        let message = imp.required(&row, "message");
        let number = row.number;
        if let Some(g) = guide_of(&mut imp, &mut row, &index, &mut items) {
            check_rows
                .entry(row.item.clone().unwrap_or_default())
                .or_default()
                .push(number);
            g.checks.push(Check {
                rule: Expr::new(rule.trim()),
                message,
            });
        }
    }

    let mut contacts = Vec::new();
    for row in rows_of("contacts") {
        let key = imp.word(&row, "key");
        if key.is_empty() {
            imp.problem(&row, "key is empty");
        }
        contacts.push(Contact {
            key,
            label: imp.required(&row, "label"),
            phone: imp.word(&row, "phone"),
        });
    }

    let mut receivers = Vec::new();
    for row in rows_of("receivers") {
        let key = imp.word(&row, "key");
        if key.is_empty() {
            imp.problem(&row, "key is empty");
        }
        receivers.push(Receiver {
            key,
            name: imp.required(&row, "name"),
            phone: imp.word(&row, "phone"),
            default: imp.flag(&row, "default"),
            items: imp
                .text(&row, "items")
                .split([',', '，', '、', ' '])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }

    let mut years: Vec<HolidayYear> = Vec::new();
    for row in rows_of("holidays") {
        let Some(year) = imp.number::<i32>(&row, "year") else {
            imp.problem(&row, "year is empty");
            continue;
        };
        let date = imp.required(&row, "date").trim().to_string();
        let kind = imp.word(&row, "type");
        let entry = match years.iter_mut().find(|y| y.year == year) {
            Some(y) => y,
            None => {
                years.push(HolidayYear {
                    year,
                    off: Vec::new(),
                    work: Vec::new(),
                });
                years.last_mut().expect("just pushed")
            }
        };
        match kind.as_str() {
            "off" => entry.off.push(date),
            "work" => entry.work.push(date),
            other => imp.problem(&row, format!("type must be off or work, not '{other}'")),
        }
    }

    // A workbook without the sheet (or with it empty) carries no tree: the town keeps its own.
    let mut county: Option<County> = None;
    let mut towns: Vec<Town> = Vec::new();
    let mut villages: Vec<(usize, Village)> = Vec::new();
    for row in rows_of("divisions") {
        let level = imp.word(&row, "level");
        let code = imp.word(&row, "code");
        let name = imp.required(&row, "name");
        let pilot = imp.flag(&row, "pilot");
        let confirmed = imp.word(&row, "confirmed").is_empty() || imp.flag(&row, "confirmed");
        match level.as_str() {
            "county" if county.is_some() => imp.problem(&row, "a second county row"),
            "county" => county = Some(County { code, name }),
            "town" => towns.push(Town {
                code,
                name,
                confirmed,
                villages: Vec::new(),
            }),
            "village" => villages.push((
                row.number,
                Village {
                    code,
                    name,
                    pilot,
                    confirmed,
                },
            )),
            other => imp.problem(
                &row,
                format!("level must be county, town or village, not '{other}'"),
            ),
        }
    }
    for (number, v) in villages {
        match towns.iter_mut().find(|t| v.code.starts_with(&t.code)) {
            Some(t) => t.villages.push(v),
            None => imp.problems.push(Problem {
                file: file.to_string(),
                sheet: Some("divisions".into()),
                row: Some(number),
                item: None,
                message: format!(
                    "village {} {}: no town row whose code its code starts with",
                    v.code, v.name
                ),
            }),
        }
    }
    let divisions = match county {
        Some(county) => Some(Divisions { county, towns }),
        None if towns.is_empty() => None,
        None => {
            imp.problems.push(Problem {
                file: file.to_string(),
                sheet: Some("divisions".into()),
                row: None,
                item: None,
                message: "the towns need a county row".into(),
            });
            None
        }
    };

    if !imp.problems.is_empty() {
        return Err(SheetError::Invalid(imp.problems));
    }
    Catalog::new(file, lists, items, contacts)
        .and_then(|c| c.with_holidays(file, years))
        .and_then(|c| c.with_divisions(file, divisions))
        .and_then(|c| c.with_receivers(file, receivers))
        .map_err(|e| {
            let rows = Rows {
                items: &item_rows,
                materials: &material_rows,
                fields: &field_rows,
                checks: &check_rows,
            };
            SheetError::Invalid(vec![locate(file, &e, &rows)])
        })
}

/// Where the import found each item, material, field and check.
struct Rows<'a> {
    items: &'a HashMap<String, usize>,
    materials: &'a HashMap<(String, String), usize>,
    fields: &'a HashMap<(String, String), usize>,
    checks: &'a HashMap<String, Vec<usize>>,
}

impl Rows<'_> {
    fn of(&self, sheet: &'static str, code: &str, key: &str) -> (&'static str, Option<usize>) {
        let at = (code.to_string(), key.to_string());
        let row = match sheet {
            "materials" => self.materials.get(&at),
            "survey" => self.fields.get(&at),
            _ => None,
        };
        match row {
            Some(r) => (sheet, Some(*r)),
            None => ("items", self.items.get(code).copied()),
        }
    }

    /// A validation `place` ("material 'x' relevant", "field 'y' constraint", "check 2").
    fn of_place(&self, code: &str, place: &str) -> (&'static str, Option<usize>) {
        let quoted = |p: &str| p.split('\'').nth(1).unwrap_or("").to_string();
        if place.starts_with("material '") {
            self.of("materials", code, &quoted(place))
        } else if place.starts_with("field '") {
            self.of("survey", code, &quoted(place))
        } else if let Some(n) = place
            .strip_prefix("check ")
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            match self.checks.get(code).and_then(|r| r.get(n.wrapping_sub(1))) {
                Some(r) => ("checks", Some(*r)),
                None => ("items", self.items.get(code).copied()),
            }
        } else {
            ("items", self.items.get(code).copied())
        }
    }
}

/// Places a validation error on the row it comes from, as far as the error says.
fn locate(file: &str, e: &CatalogError, rows: &Rows) -> Problem {
    let full = e.to_string();
    let ((sheet, row), code) = match e {
        CatalogError::BadMaterial { code, key, .. } => {
            (rows.of("materials", code, key), Some(code))
        }
        CatalogError::BadField { code, key, .. } => (rows.of("survey", code, key), Some(code)),
        CatalogError::BadKey {
            code, what, key, ..
        }
        | CatalogError::DuplicateKey {
            code, what, key, ..
        } => {
            let sheet = if *what == "material" {
                "materials"
            } else {
                "survey"
            };
            (rows.of(sheet, code, key), Some(code))
        }
        CatalogError::BadExpr { code, place, .. } => (rows.of_place(code, place), Some(code)),
        CatalogError::DuplicateCode { code, .. }
        | CatalogError::CodeMismatch { code, .. }
        | CatalogError::DuplicateSeq { code, .. }
        | CatalogError::EmptyField { code, .. }
        | CatalogError::MissingGuide { code, .. }
        | CatalogError::NoRequiredMaterial { code, .. }
        | CatalogError::ZeroDays { code, .. } => {
            (("items", rows.items.get(code).copied()), Some(code))
        }
        CatalogError::BadContact { .. } => (("contacts", None), None),
        CatalogError::BadDivisions { .. } => (("divisions", None), None),
        CatalogError::BadReceivers { .. } => (("receivers", None), None),
        CatalogError::Parse { .. } => (("holidays", None), None),
        _ => (("settings", None), None),
    };
    // The error's own "file: item X: " prefix is replaced by the fuller location.
    let message = match code {
        Some(c) => full
            .strip_prefix(&format!("{file}: item {c}: "))
            .unwrap_or(&full)
            .to_string(),
        None => full
            .strip_prefix(&format!("{file}: "))
            .unwrap_or(&full)
            .to_string(),
    };
    Problem {
        file: file.to_string(),
        sheet: Some(sheet.to_string()),
        row,
        item: code.cloned(),
        message,
    }
}
