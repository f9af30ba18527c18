//! Validation of a catalog on load: every rule of the form language, each failure naming file, item and place.
//!
//! The person fixing a failure is editing a TOML file or a spreadsheet, not reading Rust, so the message says
//! where and what, in the catalog's own words (keys, row labels), and the first failure stops the load.

use std::collections::{BTreeMap, BTreeSet};

use bianmin_protocol::Applicant;
use chrono::NaiveDate;

use super::{
    code_matches, is_snake_case, CaptureKind, Catalog, CatalogError, CatalogMeta, FieldDef,
    FieldKind, Guide, Item, ListKind,
};
use crate::form::{Env, Expr};

/// Rules of one file: codes match its list, seqs are unique, village items have guides.
pub(super) fn file(
    file: &str,
    meta: Option<&CatalogMeta>,
    items: &[Item],
) -> Result<(), CatalogError> {
    let f = || file.to_string();
    let Some(meta) = meta else {
        return if items.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::MissingMeta { file: f() })
        };
    };
    let mut seqs = BTreeSet::new();
    for item in items {
        let code = &item.code;
        if !code_matches(code, meta.list) {
            return Err(CatalogError::CodeMismatch {
                file: f(),
                code: code.clone(),
                list: meta.list,
                prefix: meta.list.prefix(),
            });
        }
        if !seqs.insert(item.seq) {
            return Err(CatalogError::DuplicateSeq {
                file: f(),
                code: code.clone(),
                seq: item.seq,
            });
        }
        if item.guide.is_none() && meta.list == ListKind::Village {
            return Err(CatalogError::MissingGuide {
                file: f(),
                code: code.clone(),
            });
        }
    }
    Ok(())
}

/// Rules of a whole catalog: unique codes and contacts, and every item and guide.
pub(super) fn catalog(source: &str, c: &Catalog) -> Result<(), CatalogError> {
    let f = || source.to_string();
    let mut contacts = BTreeSet::new();
    for contact in &c.contacts {
        let bad = |reason: &str| CatalogError::BadContact {
            file: f(),
            key: contact.key.clone(),
            reason: reason.to_string(),
        };
        if !is_snake_case(&contact.key) {
            return Err(bad("the key is not ascii snake_case"));
        }
        if !contacts.insert(contact.key.as_str()) {
            return Err(bad("listed twice"));
        }
        if contact.label.trim().is_empty() {
            return Err(bad("label is empty"));
        }
        let digits = contact.phone.chars().filter(char::is_ascii_digit).count();
        let shape_ok = contact
            .phone
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch == '-' || ch == ' ');
        if !contact.phone.trim().is_empty() && (!shape_ok || !(5..=12).contains(&digits)) {
            return Err(bad(
                "phone must be digits and dashes (e.g. 0355-1234567 or 12345), or empty until published",
            ));
        }
    }
    let mut codes = BTreeSet::new();
    for item in &c.items {
        if !codes.insert(item.code.as_str()) {
            return Err(CatalogError::DuplicateCode {
                file: f(),
                code: item.code.clone(),
            });
        }
        for (field, value) in [("name", &item.name), ("kind", &item.kind)] {
            if value.trim().is_empty() {
                return Err(CatalogError::EmptyField {
                    file: f(),
                    code: item.code.clone(),
                    field: field.into(),
                });
            }
        }
        if let Some(g) = &item.guide {
            guide(source, item, g)?;
            if !contacts.contains(g.contact.as_str()) {
                return Err(CatalogError::EmptyField {
                    file: f(),
                    code: item.code.clone(),
                    field: format!(
                        "guide.contact '{}' (no such contact in the county's list)",
                        g.contact
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Where a catalog problem was found, for messages.
struct At<'a> {
    file: &'a str,
    code: &'a str,
}

impl At<'_> {
    fn empty(&self, field: &str) -> CatalogError {
        CatalogError::EmptyField {
            file: self.file.to_string(),
            code: self.code.to_string(),
            field: field.to_string(),
        }
    }

    fn key(
        &self,
        what: &'static str,
        key: &str,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), CatalogError> {
        if !is_snake_case(key) {
            return Err(CatalogError::BadKey {
                file: self.file.to_string(),
                code: self.code.to_string(),
                what,
                key: key.to_string(),
            });
        }
        if !seen.insert(key.to_string()) {
            return Err(CatalogError::DuplicateKey {
                file: self.file.to_string(),
                code: self.code.to_string(),
                what,
                key: key.to_string(),
            });
        }
        Ok(())
    }

    fn material(&self, key: &str, reason: impl Into<String>) -> CatalogError {
        CatalogError::BadMaterial {
            file: self.file.to_string(),
            code: self.code.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn field(&self, key: &str, reason: impl Into<String>) -> CatalogError {
        CatalogError::BadField {
            file: self.file.to_string(),
            code: self.code.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Compiles `expr` and runs it once over sample answers, so a typo in a name is caught on load
    /// rather than on a phone in a village.
    fn expr(&self, place: &str, expr: &Expr, env: &Env) -> Result<(), CatalogError> {
        let fail = |reason: String| CatalogError::BadExpr {
            file: self.file.to_string(),
            code: self.code.to_string(),
            place: place.to_string(),
            expr: expr.source().to_string(),
            reason,
        };
        if expr.source().trim().is_empty() {
            return Err(fail("is empty".into()));
        }
        expr.program().map_err(fail)?;
        match expr.eval_bool(env) {
            Err(e)
                if e.starts_with("Undeclared reference")
                    || e.starts_with("expected true or false") =>
            {
                Err(fail(e))
            }
            // Other failures come from sample answers that do not fit (a null compared with a number);
            // on a real form such a condition simply does not hold yet.
            _ => Ok(()),
        }
    }
}

/// A fixed day for sample evaluation, so loading does not depend on the clock.
fn sample_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date")
}

/// An environment where every field has a sample answer.
fn sample_env(fields: &[FieldDef]) -> Env {
    let id = "11010519491231002X";
    let answers: BTreeMap<_, _> = fields
        .iter()
        .map(|f| (f.key.clone(), f.sample_answer(id)))
        .collect();
    let applicant = Applicant {
        name: "张三".into(),
        id_number: id.into(),
        phone: "13934561234".into(),
        address: "某村".into(),
    };
    Env::for_case(fields, Some(&applicant), &answers, sample_day())
}

fn guide(file: &str, item: &Item, g: &Guide) -> Result<(), CatalogError> {
    let at = At {
        file,
        code: &item.code,
    };
    for (field, value) in [
        ("guide.summary", &g.summary),
        ("guide.fee", &g.fee),
        ("guide.handling_level", &g.handling_level),
        ("guide.sample_form", &g.sample_form),
    ] {
        if value.trim().is_empty() {
            return Err(at.empty(field));
        }
    }
    for (field, list) in [
        ("guide.legal_basis", &g.legal_basis),
        ("guide.procedure", &g.procedure),
    ] {
        if list.is_empty() || list.iter().any(|b| b.trim().is_empty()) {
            return Err(at.empty(field));
        }
    }
    if g.conditions
        .iter()
        .chain(&g.to_confirm)
        .any(|c| c.trim().is_empty())
    {
        return Err(at.empty("guide.conditions or guide.to_confirm line"));
    }
    if g.promised_days == 0 {
        return Err(CatalogError::ZeroDays {
            file: file.to_string(),
            code: item.code.clone(),
        });
    }
    let env = sample_env(&g.fields);
    fields(&at, &g.fields, &env, false)?;
    let groups: BTreeMap<&str, &FieldDef> = g
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::Group)
        .map(|f| (f.key.as_str(), f))
        .collect();
    let mut keys = BTreeSet::new();
    for m in &g.materials {
        at.key("material", &m.key, &mut keys)?;
        if m.name.trim().is_empty() {
            return Err(at.material(&m.key, "name is empty"));
        }
        if m.pages.is_empty() || m.pages.iter().any(|p| p.trim().is_empty()) {
            return Err(at.material(
                &m.key,
                "pages must list at least one photo, each by what it shows (e.g. [\"正面\", \"反面\"])",
            ));
        }
        // The finding that started the form language: "正反面各拍一张" beside a single photo.
        let both_sides = m.note.contains("正反面") || m.name.contains("正反面");
        if both_sides && m.capture == CaptureKind::Card && m.pages.len() < 2 {
            return Err(at.material(
                &m.key,
                "the note asks for both sides but pages lists only one photo",
            ));
        }
        if m.required && m.required_if.is_some() {
            return Err(at.material(
                &m.key,
                "required = true and required_if contradict each other; keep one",
            ));
        }
        let mut row_env = env.clone();
        match (&m.per, &m.per_if) {
            (Some(group), _) => {
                let Some(def) = groups.get(group.as_str()) else {
                    return Err(at.material(
                        &m.key,
                        format!(
                            "per = '{group}' is not a repeat group (type = \"group\") of this item"
                        ),
                    ));
                };
                row_env = env.with_row(crate::form::row_value(
                    &def.fields,
                    &sample_row(def),
                    sample_day(),
                ));
            }
            (None, Some(_)) => {
                return Err(at.material(&m.key, "per_if needs per (the repeat group it filters)"))
            }
            (None, None) => {}
        }
        let place = format!("material '{}'", m.key);
        for (name, e) in [("required_if", &m.required_if), ("relevant", &m.relevant)] {
            if let Some(e) = e {
                at.expr(&format!("{place} {name}"), e, &env)?;
            }
        }
        if let Some(e) = &m.per_if {
            at.expr(&format!("{place} per_if"), e, &row_env)?;
        }
    }
    if !g
        .materials
        .iter()
        .any(|m| m.required || m.required_if.is_some())
    {
        return Err(CatalogError::NoRequiredMaterial {
            file: file.to_string(),
            code: item.code.clone(),
        });
    }
    for (i, c) in g.checks.iter().enumerate() {
        let place = format!("check {}", i + 1);
        if c.message.trim().is_empty() {
            return Err(at.empty(&format!("{place} message")));
        }
        at.expr(&place, &c.rule, &env)?;
    }
    Ok(())
}

fn sample_row(def: &FieldDef) -> BTreeMap<String, String> {
    def.sample_answer("11010519491231002X")
        .rows()
        .first()
        .cloned()
        .unwrap_or_default()
}

fn fields(at: &At, defs: &[FieldDef], env: &Env, in_group: bool) -> Result<(), CatalogError> {
    let mut keys = BTreeSet::new();
    for d in defs {
        at.key("field", &d.key, &mut keys)?;
        let bad = |reason: String| at.field(&d.key, reason);
        if d.label.trim().is_empty() {
            return Err(bad("label is empty".into()));
        }
        let has_choices = matches!(d.kind, FieldKind::Choice | FieldKind::Multi);
        if has_choices {
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
                "choices are only allowed on choice and multi fields, not {:?}",
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
        if d.required && d.required_if.is_some() {
            return Err(bad(
                "required = true and required_if contradict each other; keep one".into(),
            ));
        }
        if d.constraint.is_some() && d.constraint_message.trim().is_empty() {
            return Err(bad(
                "a constraint needs a constraint_message telling the agent what is wrong".into(),
            ));
        }
        let sample = d.sample_answer("11010519491231002X");
        let own_env = env.with_value(crate::form::typed(d, Some(&sample), sample_day()));
        if d.kind == FieldKind::Group {
            if in_group {
                return Err(bad("a repeat group cannot hold another repeat group".into()));
            }
            if d.fields.is_empty() {
                return Err(bad("a repeat group needs its columns (fields)".into()));
            }
            if let Some(bad_col) = d.fields.iter().find(|c| c.kind == FieldKind::Multi) {
                return Err(at.field(
                    &format!("{}.{}", d.key, bad_col.key),
                    "a column of a repeat group cannot be a multiple choice",
                ));
            }
            if let (Some(min), Some(max)) = (d.min_rows, d.max_rows) {
                if min > max || max == 0 {
                    return Err(bad(format!(
                        "min_rows {min} / max_rows {max} are inconsistent"
                    )));
                }
            }
            let row_env = env.with_row(crate::form::row_value(
                &d.fields,
                &sample_row(d),
                sample_day(),
            ));
            fields(at, &d.fields, &row_env, true)?;
        } else {
            if !d.fields.is_empty() || d.min_rows.is_some() || d.max_rows.is_some() {
                return Err(bad(
                    "fields, min_rows and max_rows are only allowed on repeat groups".into(),
                ));
            }
        }
        let place = |what: &str| format!("field '{}' {what}", d.key);
        if let Some(e) = &d.required_if {
            at.expr(&place("required_if"), e, env)?;
        }
        if let Some(e) = &d.relevant {
            at.expr(&place("relevant"), e, env)?;
        }
        if let Some(e) = &d.constraint {
            at.expr(&place("constraint"), e, &own_env)?;
        }
    }
    Ok(())
}
