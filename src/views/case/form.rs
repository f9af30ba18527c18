//! The case form: the applicant block and the item's questions, each field saved to the book as
//! it is typed (through [`Autosave`]), with live validation.

use std::collections::BTreeMap;

use bianmin_engine::case::Case;
use bianmin_engine::catalog::{FieldDef, FieldKind, Item};
use bianmin_engine::validate;
use bianmin_protocol::Answer;
use chrono::Local;
use dioxus::prelude::*;

use super::autosave::Autosave;
use super::household;
use super::{form_problems, guide_or_empty};
use crate::services::use_book;

/// The applicant fields every item has: key, label, input type.
pub const APPLICANT: [(&str, &str, &str); 4] = [
    ("applicant.name", "申请人姓名", "text"),
    ("applicant.id_number", "身份证号码", "text"),
    ("applicant.phone", "联系电话", "tel"),
    ("applicant.address", "住址", "text"),
];

/// The applicant block and the item's fields: a field whose condition does not hold is not shown,
/// a repeat group (household members) shows one block per row.
#[component]
pub fn CaseForm(
    case: Signal<Option<Case>>,
    item: Item,
    tried: Signal<bool>,
    autosave: Autosave,
) -> Element {
    let Some(current) = case.read().clone() else {
        return rsx! {};
    };
    let guide = guide_or_empty(&item);
    let today = Local::now().date_naive();
    let problems = form_problems(&item, &current, today);
    let env = validate::case_env(&item, &current.applicant, &current.answers, today);
    let editable = current.is_editable();
    let row = |key: String,
               label: String,
               kind: &'static str,
               def: Option<FieldDef>,
               required: bool| {
        let value = current.field(&key);
        let problem = problems
            .get(&key)
            .filter(|_| tried() || !value.trim().is_empty())
            .map(|p| p.message.clone());
        let derived = derived_from_id(&key, def.as_ref(), &value, today);
        rsx! {
            FieldRow { key: "{key}", case, field: key.clone(), label, kind, def, required, value, problem, derived, editable, autosave: autosave.clone() }
        }
    };
    let resident = item.applicant.is_resident();
    rsx! {
        section { class: "form",
            if resident {
                h2 { "申请人" }
                for (key, label, kind) in APPLICANT {
                    {row(key.to_string(), label.to_string(), kind, None, key != "applicant.address")}
                }
            }
            if !guide.fields.is_empty() { h2 { "申请信息" } }
            for def in guide.fields.iter().cloned() {
                {
                    let (shown, required) = validate::field_state(&def, &env);
                    if !shown {
                        rsx! {}
                    } else if def.kind == FieldKind::Group {
                        let problem = problems.get(&def.key).filter(|_| tried()).map(|p| p.message.clone());
                        rsx! { GroupRows { key: "{def.key}", case, item: item.clone(), def: def.clone(), required, problem, tried, autosave: autosave.clone() } }
                    } else if def.kind == FieldKind::Multi {
                        let problem = problems.get(&def.key).filter(|_| tried()).map(|p| p.message.clone());
                        rsx! { MultiChoice { key: "{def.key}", case, def: def.clone(), required, problem, editable, autosave: autosave.clone() } }
                    } else {
                        row(def.key.clone(), def.label.clone(), "text", Some(def.clone()), required)
                    }
                }
            }
        }
    }
}

/// The rows of a repeat group, one block per person, with add and remove.
#[component]
fn GroupRows(
    case: Signal<Option<Case>>,
    item: Item,
    def: FieldDef,
    required: bool,
    problem: Option<String>,
    tried: Signal<bool>,
    autosave: Autosave,
) -> Element {
    let book = use_book();
    let Some(current) = case.read().clone() else {
        return rsx! {};
    };
    let item_today = Local::now().date_naive();
    let rows: Vec<BTreeMap<String, String>> = current
        .answers
        .get(&def.key)
        .map(|a| a.rows().to_vec())
        .unwrap_or_default();
    let editable = current.is_editable();
    let can_add = editable && def.max_rows.is_none_or(|m| rows.len() < m as usize);
    let min = def.min_rows.unwrap_or(0);
    let group_key = def.key.clone();
    let writer = autosave.clone();
    // Adding or removing a row rewrites the whole group, after the typed cells are stored, so a cell
    // still being saved cannot bring a removed row back.
    let change_rows = move |new_rows: Vec<BTreeMap<String, String>>| {
        let (book, autosave, key) = (book.clone(), writer.clone(), group_key.clone());
        let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
            return;
        };
        spawn(async move {
            autosave.settled().await;
            match book.set_answer(&id, &key, Some(Answer::Rows(new_rows))) {
                Ok(stored) => case.set(Some(stored)),
                Err(e) => tracing::warn!(error = %e, "group rows not stored"),
            }
        });
    };
    let problems = form_problems(&item, &current, item_today);
    let env = validate::case_env(&item, &current.applicant, &current.answers, item_today);
    let self_offer = editable
        .then(|| household::offer(&def, &rows, &current.applicant))
        .flatten();
    let self_col = household::self_relation_column(&def).map(|c| c.key.clone());
    let self_col = self_col.as_deref();
    let is_self_row = |r: &BTreeMap<String, String>| {
        self_col.is_some_and(|k| r.get(k).is_some_and(|v| v == household::SELF_RELATION))
    };
    rsx! {
        fieldset { class: "group", id: "group-{def.key}",
            legend { "{def.label}" if required { b { class: "req", " *" } } span { class: "muted", "（共{rows.len()}人）" } }
            if !def.help.is_empty() { small { class: "muted", "{def.help}" } }
            for (i, r) in rows.iter().enumerate() {
                div { key: "{def.key}-{i}", class: "group-row", "data-row": "{i}",
                    h3 { "第{i + 1}人" if is_self_row(r) { "（申请人本人）" } }
                    for col in def.fields.iter().cloned() {
                        {
                            let is_self = is_self_row(r);
                            let renv = validate::row_env(&env, &def, r, item_today);
                            let (shown, col_required) = validate::field_state(&col, &renv);
                            let key = format!("{}.{i}.{}", def.key, col.key);
                            let value = current.field(&key);
                            let problem = problems.get(&key)
                                .filter(|_| tried() || !value.trim().is_empty())
                                .map(|p| p.message.clone());
                            let derived = derived_from_id(&key, Some(&col), &value, item_today)
                                .or_else(|| (is_self && Some(col.key.as_str()) == self_col).then(|| "按申请人本人带入，可修改".to_string()));
                            if shown {
                                rsx! { FieldRow { key: "{key}", case, field: key.clone(), label: col.label.clone(), kind: "text", def: Some(col.clone()), required: col_required, value, problem, derived, editable, autosave: autosave.clone() } }
                            } else {
                                rsx! {}
                            }
                        }
                    }
                    if editable && rows.len() > min as usize {
                        button { class: "btn small", id: "remove-{def.key}-{i}",
                            onclick: {
                                let mut rows = rows.clone();
                                let change_rows = change_rows.clone();
                                move |_| { rows.remove(i); change_rows(rows.clone()); }
                            },
                            "删除第{i + 1}人"
                        }
                    }
                }
            }
            if let Some(me) = self_offer.filter(|_| can_add) {
                // One tap lists the applicant first, copied from the applicant block.
                button { class: "btn", id: "add-self-{def.key}",
                    onclick: {
                        let mut rows = rows.clone();
                        let change_rows = change_rows.clone();
                        move |_| { rows.insert(0, me.clone()); change_rows(rows.clone()); }
                    },
                    "＋ 申请人本人"
                }
            }
            if can_add {
                button { class: "btn", id: "add-{def.key}",
                    onclick: {
                        let mut rows = rows.clone();
                        let change_rows = change_rows.clone();
                        move |_| { rows.push(BTreeMap::new()); change_rows(rows.clone()); }
                    },
                    "＋ 添加一人"
                }
            }
            if let Some(p) = problem { small { class: "problem", "data-for": "{def.key}", "{p}" } }
        }
    }
}

/// A multiple choice as checkboxes; each tick rewrites the chosen list.
#[component]
fn MultiChoice(
    case: Signal<Option<Case>>,
    def: FieldDef,
    required: bool,
    problem: Option<String>,
    editable: bool,
    autosave: Autosave,
) -> Element {
    let book = use_book();
    let Some(current) = case.read().clone() else {
        return rsx! {};
    };
    let chosen: Vec<String> = current
        .answers
        .get(&def.key)
        .map(|a| a.choices().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    rsx! {
        fieldset { class: "multi", id: "f-{def.key}",
            legend { "{def.label}" if required { b { class: "req", " *" } } }
            for c in def.choices.iter().cloned() {
                label { key: "{c}", class: "check",
                    input { r#type: "checkbox", disabled: !editable, checked: chosen.contains(&c), "data-choice": "{c}",
                        onchange: {
                            let (book, autosave, def, chosen, c) = (book.clone(), autosave.clone(), def.clone(), chosen.clone(), c.clone());
                            move |_| {
                                // Kept in the catalog's order, whatever order they were ticked in.
                                let mut now = chosen.clone();
                                if let Some(pos) = now.iter().position(|x| *x == c) { now.remove(pos); } else { now.push(c.clone()); }
                                let ordered: Vec<String> = def.choices.iter().filter(|x| now.contains(x)).cloned().collect();
                                let (book, autosave, key) = (book.clone(), autosave.clone(), def.key.clone());
                                let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else { return };
                                spawn(async move {
                                    autosave.settled().await;
                                    match book.set_answer(&id, &key, Some(Answer::Choices(ordered))) {
                                        Ok(stored) => case.set(Some(stored)),
                                        Err(e) => tracing::warn!(error = %e, "choices not stored"),
                                    }
                                });
                            }
                        }
                    }
                    " {c}"
                }
            }
            if let Some(p) = problem { small { class: "problem", "data-for": "{def.key}", "{p}" } }
        }
    }
}

/// One labelled field with its help and its problem.
#[component]
fn FieldRow(
    case: Signal<Option<Case>>,
    field: String,
    label: String,
    kind: &'static str,
    def: Option<FieldDef>,
    required: bool,
    value: String,
    problem: Option<String>,
    derived: Option<String>,
    editable: bool,
    autosave: Autosave,
) -> Element {
    let help = def.as_ref().map(|d| d.help.clone()).unwrap_or_default();
    let key = field.clone();
    // On screen at once; to the book by the autosave writer (a failed save is shown by the case
    // screen, and the typed text stays).
    let on_value = move |v: String| {
        if let Some(c) = case.write().as_mut() {
            c.set_field(&key, &v);
        }
        autosave.set(&key, &v);
    };
    let class = if problem.is_some() {
        "field bad"
    } else {
        "field"
    };
    rsx! {
        label { class,
            span { "{label}" if required { b { class: "req", " *" } } }
            {field_input(&field, kind, def.as_ref(), value, editable, on_value)}
            if let Some(d) = derived { small { class: "derived", "data-derived": "{field}", "{d}" } }
            if !help.is_empty() { small { class: "muted", "{help}" } }
            if let Some(p) = problem { small { class: "problem", "data-for": "{field}", "{p}" } }
        }
    }
}

/// Under a valid ID number, what follows from it (sex, birth date, age), so the form never asks
/// it: the catalog's conditions read the same facts from the number (`applicant.age`,
/// `row.id_number_age`).
fn derived_from_id(
    field: &str,
    def: Option<&FieldDef>,
    value: &str,
    today: chrono::NaiveDate,
) -> Option<String> {
    let is_id =
        field == "applicant.id_number" || def.is_some_and(|d| d.kind == FieldKind::IdNumber);
    if !is_id {
        return None;
    }
    household::id_facts(value, today).map(|f| format!("按身份证号码：{f}"))
}

/// The input for a field kind; choice and yes/no become selects so nothing can be mistyped.
fn field_input(
    key: &str,
    kind: &'static str,
    def: Option<&FieldDef>,
    value: String,
    editable: bool,
    mut on_value: impl FnMut(String) + 'static,
) -> Element {
    let id = format!("f-{}", key.replace('.', "-"));
    match def.map(|d| d.kind) {
        Some(FieldKind::Choice) | Some(FieldKind::Bool) => {
            let choices: Vec<String> = match def.map(|d| d.kind) {
                Some(FieldKind::Bool) => vec!["是".into(), "否".into()],
                _ => def.map(|d| d.choices.clone()).unwrap_or_default(),
            };
            rsx! {
                select { id: "{id}", disabled: !editable, value: "{value}", onchange: move |e| on_value(e.value()),
                    option { value: "", "请选择" }
                    for c in choices { option { value: "{c}", selected: c == value, "{c}" } }
                }
            }
        }
        Some(FieldKind::Textarea) => rsx! {
            textarea { id: "{id}", disabled: !editable, value: "{value}", oninput: move |e| on_value(e.value()) }
        },
        other => {
            let (ty, mode) = match other {
                Some(FieldKind::Number) => ("text", "numeric"),
                Some(FieldKind::Date) => ("date", "none"),
                Some(FieldKind::Phone) => ("tel", "tel"),
                _ if kind == "tel" => ("tel", "tel"),
                _ => ("text", "text"),
            };
            rsx! {
                input { id: "{id}", r#type: ty, inputmode: mode, disabled: !editable, value: "{value}",
                    oninput: move |e| on_value(e.value()) }
            }
        }
    }
}
