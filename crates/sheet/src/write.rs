//! Export: one workbook with every sheet of [`crate::SHEETS`], header row first, frozen.

use std::path::Path;

use bianmin_engine::catalog::{
    ApplicantKind, CaptureKind, Catalog, FieldDef, FieldKind, ListKind, MaterialForm,
};
use bianmin_engine::form::Expr;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::{SheetError, PAGE_SEPARATOR, SHEETS};

/// One cell's value.
pub(crate) enum Cell {
    Text(String),
    Number(f64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

fn num(n: impl Into<f64>) -> Cell {
    Cell::Number(n.into())
}

fn opt_num<T: Copy + Into<f64>>(n: Option<T>) -> Cell {
    n.map(num).unwrap_or_else(|| "".into())
}

fn opt_i64(n: Option<i64>) -> Cell {
    // Form limits are small (ages, counts): exact in a spreadsheet's f64.
    n.map(|v| Cell::Number(v as f64))
        .unwrap_or_else(|| "".into())
}

fn yes(b: bool) -> Cell {
    if b { "yes" } else { "no" }.into()
}

fn expr(e: &Option<Expr>) -> Cell {
    e.as_ref().map(|e| e.source()).unwrap_or("").into()
}

pub(crate) fn list_name(l: ListKind) -> &'static str {
    match l {
        ListKind::Village => "village",
        ListKind::Town => "town",
    }
}

pub(crate) fn applicant_name(a: ApplicantKind) -> &'static str {
    match a {
        ApplicantKind::Resident => "resident",
        ApplicantKind::Village => "village",
    }
}

pub(crate) fn form_name(f: MaterialForm) -> &'static str {
    match f {
        MaterialForm::Original => "original",
        MaterialForm::Copy => "copy",
        MaterialForm::OriginalAndCopy => "original_and_copy",
    }
}

pub(crate) fn capture_name(c: CaptureKind) -> &'static str {
    match c {
        CaptureKind::Card => "card",
        CaptureKind::Page => "page",
    }
}

/// XLSForm's names where it has one (`integer` is not used: a number may be negative or large).
pub(crate) fn type_name(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "text",
        FieldKind::Textarea => "textarea",
        FieldKind::Number => "number",
        FieldKind::Date => "date",
        FieldKind::Choice => "select_one",
        FieldKind::Bool => "bool",
        FieldKind::IdNumber => "id_number",
        FieldKind::Phone => "phone",
        FieldKind::Multi => "select_multiple",
        FieldKind::Group => "begin_group",
    }
}

/// Rows of every sheet, by sheet name.
pub(crate) struct Rows(pub(crate) Vec<(&'static str, Vec<Vec<Cell>>)>);

impl Rows {
    pub(crate) fn sheet(&mut self, name: &str) -> &mut Vec<Vec<Cell>> {
        &mut self
            .0
            .iter_mut()
            .find(|(n, _)| *n == name)
            .expect("a known sheet")
            .1
    }
}

fn survey_rows(code: &str, prefix: &str, fields: &[FieldDef], rows: &mut Rows) {
    for f in fields {
        let list = if f.choices.is_empty() {
            String::new()
        } else {
            let name = format!("{code}_{prefix}{}", f.key);
            for c in &f.choices {
                rows.sheet("choices")
                    .push(vec![name.clone().into(), c.as_str().into()]);
            }
            name
        };
        rows.sheet("survey").push(vec![
            code.into(),
            type_name(f.kind).into(),
            f.key.as_str().into(),
            f.label.as_str().into(),
            yes(f.required),
            expr(&f.required_if),
            expr(&f.relevant),
            expr(&f.constraint),
            f.constraint_message.as_str().into(),
            list.into(),
            opt_i64(f.min),
            opt_i64(f.max),
            opt_num(f.max_len.map(|n| n as u32)),
            f.help.as_str().into(),
            opt_num(f.min_rows),
            opt_num(f.max_rows),
        ]);
        if f.kind == FieldKind::Group {
            survey_rows(code, &format!("{prefix}{}_", f.key), &f.fields, rows);
            rows.sheet("survey")
                .push(vec![code.into(), "end_group".into(), f.key.as_str().into()]);
        }
    }
}

pub(crate) fn rows(catalog: &Catalog) -> Rows {
    let mut rows = Rows(SHEETS.iter().map(|(n, _)| (*n, Vec::new())).collect());
    for l in catalog.lists() {
        rows.sheet("settings").push(vec![
            list_name(l.list).into(),
            l.title.as_str().into(),
            l.source.as_str().into(),
        ]);
    }
    for item in catalog.items() {
        let code = item.code.as_str();
        let mut row: Vec<Cell> = vec![
            code.into(),
            num(item.seq),
            item.name.as_str().into(),
            item.kind.as_str().into(),
            item.method.as_str().into(),
            applicant_name(item.applicant).into(),
            yes(item.guide.is_some()),
        ];
        let Some(g) = &item.guide else {
            rows.sheet("items").push(row);
            continue;
        };
        row.extend([
            yes(g.draft),
            g.summary.as_str().into(),
            num(g.promised_days),
            g.fee.as_str().into(),
            g.handling_level.as_str().into(),
            g.contact.as_str().into(),
            g.sample_form.as_str().into(),
        ]);
        rows.sheet("items").push(row);
        for (section, lines) in [
            ("conditions", &g.conditions),
            ("legal_basis", &g.legal_basis),
            ("procedure", &g.procedure),
            ("to_confirm", &g.to_confirm),
        ] {
            for l in lines {
                rows.sheet("texts")
                    .push(vec![code.into(), section.into(), l.as_str().into()]);
            }
        }
        survey_rows(code, "", &g.fields, &mut rows);
        for m in &g.materials {
            rows.sheet("materials").push(vec![
                code.into(),
                m.key.as_str().into(),
                m.name.as_str().into(),
                form_name(m.form).into(),
                yes(m.required),
                expr(&m.required_if),
                expr(&m.relevant),
                capture_name(m.capture).into(),
                yes(m.color),
                m.pages.join(PAGE_SEPARATOR).into(),
                m.per.as_deref().unwrap_or("").into(),
                expr(&m.per_if),
                yes(m.more_pages),
                m.note.as_str().into(),
            ]);
        }
        for c in &g.checks {
            rows.sheet("checks").push(vec![
                code.into(),
                c.rule.source().into(),
                c.message.as_str().into(),
            ]);
        }
    }
    for c in catalog.contacts() {
        rows.sheet("contacts").push(vec![
            c.key.as_str().into(),
            c.label.as_str().into(),
            c.phone.as_str().into(),
        ]);
    }
    for r in catalog.receivers() {
        rows.sheet("receivers").push(vec![
            r.key.as_str().into(),
            r.name.as_str().into(),
            r.phone.as_str().into(),
            yes(r.default),
            r.items.join(",").into(),
        ]);
    }
    for y in catalog.holidays() {
        for (kind, dates) in [("off", &y.off), ("work", &y.work)] {
            for d in dates {
                rows.sheet("holidays")
                    .push(vec![num(y.year), kind.into(), d.as_str().into()]);
            }
        }
    }
    if let Some(d) = catalog.divisions() {
        let sheet = rows.sheet("divisions");
        sheet.push(vec![
            "county".into(),
            d.county.code.as_str().into(),
            d.county.name.as_str().into(),
            yes(false),
            yes(true),
        ]);
        for t in &d.towns {
            sheet.push(vec![
                "town".into(),
                t.code.as_str().into(),
                t.name.as_str().into(),
                yes(false),
                yes(t.confirmed),
            ]);
            for v in &t.villages {
                sheet.push(vec![
                    "village".into(),
                    v.code.as_str().into(),
                    v.name.as_str().into(),
                    yes(v.pilot),
                    yes(v.confirmed),
                ]);
            }
        }
    }
    rows
}

fn fill(ws: &mut Worksheet, header: &[&str], rows: &[Vec<Cell>]) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
        ws.set_column_width(c as u16, 16)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell {
                // An empty cell is left out, as a person would leave it.
                Cell::Text(s) if s.is_empty() => {}
                Cell::Text(s) => {
                    ws.write_string(r, c, s)?;
                }
                Cell::Number(n) => {
                    ws.write_number(r, c, *n)?;
                }
            }
        }
    }
    Ok(())
}

/// The workbook's bytes.
pub fn export_bytes(catalog: &Catalog) -> Result<Vec<u8>, SheetError> {
    workbook(&rows(catalog))
}

/// The workbook of these rows.
pub(crate) fn workbook(rows: &Rows) -> Result<Vec<u8>, SheetError> {
    let err = |e: XlsxError| SheetError::Write {
        file: "catalog.xlsx".into(),
        message: e.to_string(),
    };
    let mut wb = Workbook::new();
    for ((name, header), (_, rows)) in SHEETS.iter().zip(&rows.0) {
        let ws = wb.add_worksheet();
        ws.set_name(*name).map_err(err)?;
        fill(ws, header, rows).map_err(err)?;
    }
    wb.save_to_buffer().map_err(err)
}

/// Writes the workbook to `path` (replacing it).
pub fn export(catalog: &Catalog, path: &Path) -> Result<(), SheetError> {
    let bytes = export_bytes(catalog)?;
    std::fs::write(path, bytes).map_err(|source| SheetError::Io {
        file: path.display().to_string(),
        source,
    })
}
