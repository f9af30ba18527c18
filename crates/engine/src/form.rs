//! The form language's expressions: conditions, constraints and item checks written in CEL over a case's answers.
//!
//! Catalog authors write `relevant`, `required_if`, `constraint`, `per_if` and item `checks` as CEL
//! (Common Expression Language, the `cel` crate) rather than a home-made syntax: it is documented, has no
//! side effects and cannot loop, which is what an expression typed by county staff into a spreadsheet cell
//! needs. This module decides what names an expression sees (the environment, documented in
//! `docs/form-language.md`) and how an answer string becomes a typed value.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bianmin_protocol::{Answer, Applicant};
use cel::objects::Key;
use cel::{Context, Program, Value};
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::{FieldDef, FieldKind};
use crate::validate::IdNumber;

/// A CEL expression from the catalog, compiled once on first use.
#[derive(Clone)]
pub struct Expr {
    source: String,
    program: Arc<OnceLock<Result<Arc<Program>, String>>>,
}

impl Expr {
    pub fn new(source: impl Into<String>) -> Expr {
        Expr {
            source: source.into(),
            program: Arc::new(OnceLock::new()),
        }
    }

    /// The text as written in the catalog.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled program, or the parser's message.
    pub fn program(&self) -> Result<Arc<Program>, String> {
        self.program
            .get_or_init(|| {
                // The ANTLR-generated parser panics on some malformed inputs instead of returning an
                // error; an expression typed into a spreadsheet cell must never take the app down.
                let source = self.source.clone();
                match std::panic::catch_unwind(move || Program::compile(&source)) {
                    Ok(Ok(p)) => Ok(Arc::new(p)),
                    Ok(Err(e)) => Err(e.to_string().trim().to_string()),
                    Err(_) => Err("the expression cannot be parsed".to_string()),
                }
            })
            .clone()
    }

    /// Evaluates to a boolean; `Err` carries an English reason (for the catalog check and logs).
    pub fn eval_bool(&self, env: &Env) -> Result<bool, String> {
        let program = self.program()?;
        let ctx = env.context();
        let value =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(&ctx)))
                .map_err(|_| "evaluation panicked".to_string())?
                .map_err(|e| e.to_string())?;
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(format!("expected true or false, got {other:?}")),
        }
    }

    /// A condition as the form uses it: an expression that cannot be evaluated yet (an answer it
    /// reads is still empty) does not hold.
    pub fn holds(&self, env: &Env) -> bool {
        self.eval_bool(env).unwrap_or(false)
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Expr {}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        Ok(Expr::new(String::deserialize(d)?))
    }
}

/// The names an expression sees: every answer by its key, `applicant`, `today`, and inside a repeat
/// group `row`; in a constraint also `value`.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, Value>,
}

impl Env {
    /// The environment of a whole case: `fields` are the item's field definitions (to type answers).
    pub fn for_case(
        fields: &[FieldDef],
        applicant: Option<&Applicant>,
        answers: &BTreeMap<String, Answer>,
        today: NaiveDate,
    ) -> Env {
        let mut vars = BTreeMap::new();
        for def in fields {
            vars.insert(def.key.clone(), typed(def, answers.get(&def.key), today));
        }
        if let Some(a) = applicant {
            vars.insert("applicant".into(), applicant_value(a, today));
        }
        vars.insert("today".into(), text(&today.format("%Y-%m-%d").to_string()));
        // Rules such as "年满18周岁的当年" count in calendar years, not birthdays.
        vars.insert(
            "year".into(),
            Value::Int(i64::from(chrono::Datelike::year(&today))),
        );
        Env { vars }
    }

    /// This environment plus `row`, for the fields and materials of one repeat-group row.
    pub fn with_row(&self, row: Value) -> Env {
        let mut e = self.clone();
        e.vars.insert("row".into(), row);
        e
    }

    /// This environment plus `value`, for a field's own constraint.
    pub fn with_value(&self, value: Value) -> Env {
        let mut e = self.clone();
        e.vars.insert("value".into(), value);
        e
    }

    /// The value bound to `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    fn context(&self) -> Context<'static, 'static> {
        let mut ctx = Context::default();
        for (k, v) in &self.vars {
            ctx.add_variable_from_value(k.clone(), v.clone());
        }
        ctx
    }
}

fn text(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}

fn map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    let m: std::collections::HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k)), v))
        .collect();
    Value::Map(cel::objects::Map { map: Arc::new(m) })
}

/// `applicant`: name, id_number, phone, address, and when the ID number is valid also age, sex and birth.
fn applicant_value(a: &Applicant, today: NaiveDate) -> Value {
    let mut entries = vec![
        ("name".to_string(), text(a.name.trim())),
        ("id_number".to_string(), text(a.id_number.trim())),
        ("phone".to_string(), text(a.phone.trim())),
        ("address".to_string(), text(a.address.trim())),
    ];
    entries.extend(id_entries(&a.id_number, today));
    map(entries)
}

/// age, sex and birth of an ID number, when it is valid.
fn id_entries(id: &str, today: NaiveDate) -> Vec<(String, Value)> {
    match IdNumber::parse(id, today) {
        Ok(id) => vec![
            ("age".to_string(), Value::Int(i64::from(id.age_on(today)))),
            (
                "sex".to_string(),
                text(if id.is_male() { "男" } else { "女" }),
            ),
            (
                "birth".to_string(),
                text(&id.birth_date().format("%Y-%m-%d").to_string()),
            ),
            (
                "birth_year".to_string(),
                Value::Int(i64::from(chrono::Datelike::year(&id.birth_date()))),
            ),
        ],
        Err(_) => Vec::new(),
    }
}

/// One answer as CEL sees it: numbers as ints, yes/no as bools, multiple choices as a list, a repeat
/// group as a list of maps; an empty answer is `null`.
pub fn typed(def: &FieldDef, answer: Option<&Answer>, today: NaiveDate) -> Value {
    match (def.kind, answer) {
        (FieldKind::Group, Some(a)) => Value::List(Arc::new(
            a.rows()
                .iter()
                .map(|row| row_value(&def.fields, row, today))
                .collect(),
        )),
        (FieldKind::Group, None) | (FieldKind::Multi, None) => Value::List(Arc::new(Vec::new())),
        (FieldKind::Multi, Some(a)) => {
            Value::List(Arc::new(a.choices().iter().map(|c| text(c)).collect()))
        }
        (_, Some(Answer::Text(s))) => scalar(def.kind, s),
        _ => Value::Null,
    }
}

/// One row of a repeat group as a map; ID-number columns add `<key>_age` and `<key>_sex`.
pub fn row_value(fields: &[FieldDef], row: &BTreeMap<String, String>, today: NaiveDate) -> Value {
    let mut entries = Vec::new();
    for def in fields {
        let v = row.get(&def.key).map(String::as_str).unwrap_or("");
        entries.push((def.key.clone(), scalar(def.kind, v)));
        if def.kind == FieldKind::IdNumber {
            for (k, val) in id_entries(v, today) {
                entries.push((format!("{}_{k}", def.key), val));
            }
        }
    }
    map(entries)
}

/// A scalar answer typed by its field kind; empty or unparsable is `null`.
pub fn scalar(kind: FieldKind, raw: &str) -> Value {
    let v = raw.trim();
    if v.is_empty() {
        return Value::Null;
    }
    match kind {
        FieldKind::Number => v.parse::<i64>().map(Value::Int).unwrap_or(Value::Null),
        FieldKind::Bool => match v {
            "是" | "true" => Value::Bool(true),
            "否" | "false" => Value::Bool(false),
            _ => Value::Null,
        },
        _ => text(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    }

    fn field(key: &str, kind: FieldKind) -> FieldDef {
        FieldDef {
            key: key.into(),
            label: key.into(),
            kind,
            ..FieldDef::default()
        }
    }

    #[test]
    fn answers_are_typed() {
        let fields = vec![
            field("n", FieldKind::Number),
            field("b", FieldKind::Bool),
            field("s", FieldKind::Choice),
            field("m", FieldKind::Multi),
            field("empty", FieldKind::Number),
        ];
        let mut answers = BTreeMap::new();
        answers.insert("n".into(), Answer::Text("42".into()));
        answers.insert("b".into(), Answer::Text("是".into()));
        answers.insert("s".into(), Answer::Text("已婚".into()));
        answers.insert(
            "m".into(),
            Answer::Choices(vec!["低保".into(), "残疾".into()]),
        );
        let env = Env::for_case(&fields, None, &answers, today());
        for (src, want) in [
            ("n == 42 && n > 40", true),
            ("b", true),
            ("s == '已婚'", true),
            ("'残疾' in m && size(m) == 2", true),
            ("empty == null", true),
            ("today == '2026-11-30'", true),
        ] {
            assert_eq!(Expr::new(src).eval_bool(&env), Ok(want), "{src}");
        }
        // An empty answer compared as a number cannot be evaluated: the condition does not hold.
        assert!(!Expr::new("empty > 3").holds(&env));
    }

    #[test]
    fn applicant_facts_come_from_the_id_number() {
        let a = Applicant {
            name: "张三".into(),
            id_number: "11010519491231002X".into(),
            phone: String::new(),
            address: String::new(),
        };
        let env = Env::for_case(&[], Some(&a), &BTreeMap::new(), today());
        let e = |s: &str| Expr::new(s).eval_bool(&env);
        assert_eq!(e("applicant.age == 76"), Ok(true));
        assert_eq!(e("applicant.sex == '女'"), Ok(true));
        assert_eq!(e("applicant.birth == '1949-12-31'"), Ok(true));
        assert_eq!(e("year - applicant.birth_year == 77"), Ok(true));
        // An invalid ID number gives no age: a condition on it does not hold.
        let bad = Applicant {
            id_number: "123".into(),
            ..a
        };
        let env = Env::for_case(&[], Some(&bad), &BTreeMap::new(), today());
        assert!(!Expr::new("applicant.age >= 60").holds(&env));
    }

    #[test]
    fn rows_of_a_group() {
        let mut members = field("members", FieldKind::Group);
        members.fields = vec![
            field("name", FieldKind::Text),
            field("id_number", FieldKind::IdNumber),
            field("income", FieldKind::Number),
        ];
        let rows = vec![
            BTreeMap::from([
                ("name".to_string(), "张三".to_string()),
                ("id_number".to_string(), "11010519491231002X".to_string()),
                ("income".to_string(), "1200".to_string()),
            ]),
            BTreeMap::from([("name".to_string(), "李四".to_string())]),
        ];
        let mut answers = BTreeMap::new();
        answers.insert("members".into(), Answer::Rows(rows));
        let env = Env::for_case(&[members], None, &answers, today());
        let e = |s: &str| Expr::new(s).eval_bool(&env);
        assert_eq!(e("size(members) == 2"), Ok(true));
        assert_eq!(e("members.exists(m, m.id_number_age >= 60)"), Ok(true));
        assert_eq!(e("members[0].income == 1200"), Ok(true));
        assert_eq!(e("members[1].income == null"), Ok(true));
    }

    #[test]
    fn malformed_expressions_are_errors_not_panics() {
        let env = Env::default();
        for src in [
            "",
            "(",
            "a &&",
            "1 +",
            "'unterminated",
            "x.",
            "))((",
            "[1,2",
        ] {
            assert!(Expr::new(src).eval_bool(&env).is_err(), "{src:?}");
        }
        assert!(Expr::new("undeclared_name == 1").eval_bool(&env).is_err());
        assert!(Expr::new("1 + 1").eval_bool(&env).is_err(), "not a bool");
    }

    proptest! {
        /// Any text typed into a condition cell either evaluates or is an error; it never panics.
        #[test]
        fn arbitrary_text_never_panics(src in "[a-z0-9 ()'.=<>!&|+\\-\\[\\],]{0,24}") {
            let env = Env::default();
            let _ = Expr::new(src).eval_bool(&env);
        }

        /// Number comparisons agree with Rust's for any answer.
        #[test]
        fn number_comparisons_agree(n in -100_000i64..100_000, k in -100_000i64..100_000) {
            let fields = vec![field("n", FieldKind::Number)];
            let answers = BTreeMap::from([("n".to_string(), Answer::Text(n.to_string()))]);
            let env = Env::for_case(&fields, None, &answers, today());
            prop_assert_eq!(Expr::new(format!("n >= {k}")).eval_bool(&env), Ok(n >= k));
            prop_assert_eq!(Expr::new(format!("n < {k} || n == {k}")).eval_bool(&env), Ok(n <= k));
        }
    }
}
