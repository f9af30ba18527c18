//! The case form: the applicant block and the item's questions, each field saved to the book as
//! it is typed (through [`Autosave`]), with live validation.

use bianmin_engine::case::Case;
use bianmin_engine::catalog::{FieldDef, FieldKind, Item};
use chrono::Local;
use dioxus::prelude::*;

use super::autosave::Autosave;
use super::{form_problems, guide_or_empty};

/// The applicant fields every item has: key, label, input type.
pub const APPLICANT: [(&str, &str, &str); 4] = [
    ("applicant.name", "申请人姓名", "text"),
    ("applicant.id_number", "身份证号码", "text"),
    ("applicant.phone", "联系电话", "tel"),
    ("applicant.address", "住址", "text"),
];

/// The applicant block and the item's fields.
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
    let problems = form_problems(&item, &current, Local::now().date_naive());
    let row = |key: String, label: String, kind: &'static str, def: Option<FieldDef>| {
        let value = current.field(&key);
        let problem = problems
            .get(&key)
            .filter(|_| tried() || !value.trim().is_empty())
            .map(|p| p.message.clone());
        rsx! {
            FieldRow { key: "{key}", case, field: key.clone(), label, kind, def, value, problem, editable: current.is_editable(), autosave: autosave.clone() }
        }
    };
    rsx! {
        section { class: "form",
            h2 { "申请人" }
            for (key, label, kind) in APPLICANT {
                {row(key.to_string(), label.to_string(), kind, None)}
            }
            if !guide.fields.is_empty() { h2 { "申请信息" } }
            for def in guide.fields.iter().cloned() {
                {row(def.key.clone(), def.label.clone(), "text", Some(def))}
            }
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
    value: String,
    problem: Option<String>,
    editable: bool,
    autosave: Autosave,
) -> Element {
    let required = def
        .as_ref()
        .map(|d| d.required)
        .unwrap_or(field != "applicant.address");
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
            if !help.is_empty() { small { class: "muted", "{help}" } }
            if let Some(p) = problem { small { class: "problem", "data-for": "{field}", "{p}" } }
        }
    }
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
