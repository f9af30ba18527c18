//! Validation of what residents give us: ID numbers (GB 11643), mobile numbers, form answers, and the 初审 check.
//!
//! Every error has an English `Display` for logs and CLIs and a Chinese `message()` for the UI,
//! phrased so a village agent knows what to do next.

use std::collections::BTreeMap;

use bianmin_protocol::{Answer, Applicant, MaterialPages};
use chrono::NaiveDate;
use thiserror::Error;

use crate::catalog::{FieldDef, FieldKind, Item};
use crate::form::{self, Env, Expr};

/// Weights of the ISO 7064 MOD 11-2 checksum used by GB 11643.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Checksum character for each remainder mod 11.
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// Province-level codes (first two digits) in use, including Hong Kong, Macao and Taiwan.
const PROVINCES: [u32; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// Why a resident ID number is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdNumberError {
    #[error("ID number must have 18 characters, got {0}")]
    Length(usize),
    #[error("ID number must be 17 digits followed by a digit or X")]
    Characters,
    #[error("ID number region code {0} is not a valid division code")]
    Region(String),
    #[error("ID number birth date {0} is not a real date")]
    BirthDate(String),
    #[error("ID number birth date {0} is in the future")]
    FutureBirth(NaiveDate),
    #[error("ID number checksum is {found}, expected {expected}")]
    Checksum { expected: char, found: char },
}

impl IdNumberError {
    /// What the agent sees.
    pub fn message(&self) -> String {
        match self {
            IdNumberError::Length(n) => format!("身份证号码应为18位，当前为{n}位，请核对"),
            IdNumberError::Characters => "身份证号码前17位应为数字，最后一位为数字或X".to_string(),
            IdNumberError::Region(_) => "身份证号码前6位地区码不正确，请核对".to_string(),
            IdNumberError::BirthDate(_) => "身份证号码中的出生日期不存在，请核对".to_string(),
            IdNumberError::FutureBirth(_) => "身份证号码中的出生日期晚于今天，请核对".to_string(),
            IdNumberError::Checksum { .. } => {
                "身份证号码校验位不正确，可能有数字输错，请逐位核对".to_string()
            }
        }
    }
}

/// A checked resident ID number, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdNumber {
    normalized: String,
    birth: NaiveDate,
}

impl IdNumber {
    /// Checks `raw` per GB 11643: 18 characters, a plausible region code, a real birth date not
    /// after `today`, and the MOD 11-2 checksum (where `X` stands for 10).
    pub fn parse(raw: &str, today: NaiveDate) -> Result<IdNumber, IdNumberError> {
        let s: String = raw.trim().to_ascii_uppercase();
        let n = s.chars().count();
        if n != 18 {
            return Err(IdNumberError::Length(n));
        }
        let bytes = s.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit)
            || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
        {
            return Err(IdNumberError::Characters);
        }
        let province: u32 = s[..2].parse().expect("digits");
        // The prefecture part is never 00 for a real person's registration place.
        if !PROVINCES.contains(&province) || (province < 71 && &s[2..4] == "00" && &s[4..6] == "00")
        {
            return Err(IdNumberError::Region(s[..6].to_string()));
        }
        let birth = NaiveDate::parse_from_str(&s[6..14], "%Y%m%d")
            .ok()
            .filter(|d| chrono::Datelike::year(d) >= 1900)
            .ok_or_else(|| IdNumberError::BirthDate(s[6..14].to_string()))?;
        if birth > today {
            return Err(IdNumberError::FutureBirth(birth));
        }
        let expected = checksum_char(&bytes[..17]);
        let found = bytes[17] as char;
        if expected != found {
            return Err(IdNumberError::Checksum { expected, found });
        }
        Ok(IdNumber {
            normalized: s,
            birth,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth
    }

    /// GB 11643: the 17th digit is odd for men and even for women.
    pub fn is_male(&self) -> bool {
        (self.normalized.as_bytes()[16] - b'0') % 2 == 1
    }

    /// Full years of age on `on`.
    pub fn age_on(&self, on: NaiveDate) -> u32 {
        use chrono::Datelike;
        let mut age = on.year() - self.birth.year();
        if (on.month(), on.day()) < (self.birth.month(), self.birth.day()) {
            age -= 1;
        }
        age.max(0) as u32
    }
}

/// The checksum character for the first 17 digits (ASCII) of an ID number.
pub fn checksum_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    ID_CHECK[(sum % 11) as usize]
}

/// Shows only the last four characters, for lists and receipts: `**************123X`.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let keep = chars.len().min(4);
    let mut out = "*".repeat(chars.len() - keep);
    out.extend(&chars[chars.len() - keep..]);
    out
}

/// Masks a person's name for lists: the surname stays, the rest becomes `*` (张*, 欧阳**).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_string(),
        n => {
            let mut s: String = chars[..1].iter().collect();
            s.push_str(&"*".repeat(n - 1));
            s
        }
    }
}

/// Masks a mobile number for lists: 138****5678.
pub fn mask_phone(phone: &str) -> String {
    let p = phone.trim();
    if p.len() == 11 && p.is_ascii() {
        format!("{}****{}", &p[..3], &p[7..])
    } else {
        "*".repeat(p.chars().count())
    }
}

/// Why a mobile number is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("mobile number must be 11 digits starting with 1[3-9]")]
    Shape,
}

impl PhoneError {
    pub fn message(&self) -> String {
        "手机号码应为11位数字，以13至19开头，请核对".to_string()
    }
}

/// Checks a mainland mobile number (11 digits, `1[3-9]` prefix); spaces and dashes are ignored.
pub fn phone(raw: &str) -> Result<String, PhoneError> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let b = digits.as_bytes();
    if b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
    {
        Ok(digits)
    } else {
        Err(PhoneError::Shape)
    }
}

/// A problem with one input of the form, for showing next to that input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// `applicant.name`, `applicant.id_number`, …, or the item's field key.
    pub key: String,
    pub label: String,
    /// Chinese, for the UI.
    pub message: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}（{}）：{}", self.label, self.key, self.message)
    }
}

/// Checks the applicant block common to every item.
pub fn applicant(a: &Applicant, today: NaiveDate) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let name = a.name.trim();
    if name.is_empty() {
        out.push(problem("applicant.name", "申请人姓名", "请填写申请人姓名"));
    } else if name.chars().count() > 30 {
        out.push(problem(
            "applicant.name",
            "申请人姓名",
            "姓名过长，最多30个字",
        ));
    }
    if a.id_number.trim().is_empty() {
        out.push(problem(
            "applicant.id_number",
            "身份证号码",
            "请填写身份证号码",
        ));
    } else if let Err(e) = IdNumber::parse(&a.id_number, today) {
        out.push(problem("applicant.id_number", "身份证号码", &e.message()));
    }
    if a.phone.trim().is_empty() {
        out.push(problem("applicant.phone", "联系电话", "请填写联系电话"));
    } else if let Err(e) = phone(&a.phone) {
        out.push(problem("applicant.phone", "联系电话", &e.message()));
    }
    if a.address.chars().count() > 200 {
        out.push(problem(
            "applicant.address",
            "住址",
            "住址过长，最多200个字",
        ));
    }
    out
}

/// Checks one answer against its field definition. An empty answer is only a problem when required.
pub fn field(def: &FieldDef, value: Option<&str>, today: NaiveDate) -> Option<FieldProblem> {
    let v = value.map(str::trim).unwrap_or("");
    let fail = |msg: String| Some(problem(&def.key, &def.label, &msg));
    if v.is_empty() {
        return if def.required {
            fail(format!("请填写{}", def.label))
        } else {
            None
        };
    }
    match def.kind {
        FieldKind::Text | FieldKind::Textarea => {
            let max = def.max_len.unwrap_or(if def.kind == FieldKind::Text {
                100
            } else {
                1000
            });
            if v.chars().count() > max {
                return fail(format!("最多{max}个字"));
            }
        }
        FieldKind::Number => match v.parse::<i64>() {
            Err(_) => return fail("请填写整数".to_string()),
            Ok(n) => {
                if let Some(min) = def.min.filter(|m| n < *m) {
                    return fail(format!("不能小于{min}"));
                }
                if let Some(max) = def.max.filter(|m| n > *m) {
                    return fail(format!("不能大于{max}"));
                }
            }
        },
        FieldKind::Date => match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Err(_) => return fail("日期格式应为 年-月-日，例如 2021-11-24".to_string()),
            Ok(d) if d > today + chrono::Days::new(3650) => {
                return fail("日期不合理，请核对".to_string())
            }
            Ok(_) => {}
        },
        FieldKind::Choice => {
            if !def.choices.iter().any(|c| c == v) {
                return fail(format!("请从以下选项中选择：{}", def.choices.join("、")));
            }
        }
        FieldKind::Bool => {
            if !matches!(v, "是" | "否" | "true" | "false") {
                return fail("请选择“是”或“否”".to_string());
            }
        }
        FieldKind::IdNumber => {
            if let Err(e) = IdNumber::parse(v, today) {
                return fail(e.message());
            }
        }
        FieldKind::Phone => {
            if let Err(e) = phone(v) {
                return fail(e.message());
            }
        }
        // Lists are checked by `check_field`; a plain text where a list belongs is a wrong shape.
        FieldKind::Multi | FieldKind::Group => return fail("答案格式不对，请重新填写".to_string()),
    }
    None
}

/// Checks all answers for an item: every shown field in order (repeat groups row by row, with their
/// conditions and constraints), answers to unknown fields, and the item's eligibility checks.
pub fn answers(
    item: &Item,
    applicant_data: &Applicant,
    answers: &BTreeMap<String, Answer>,
    today: NaiveDate,
) -> Vec<FieldProblem> {
    let fields = item_fields(item);
    let env = case_env(item, applicant_data, answers, today);
    let mut out = Vec::new();
    for def in fields {
        check_field(
            def,
            answers.get(&def.key),
            &env,
            today,
            &def.key,
            &def.label,
            &mut out,
        );
    }
    for key in answers.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            out.push(problem(key, key, "该事项没有这一项，请删除"));
        }
    }
    for (i, c) in item.guide.iter().flat_map(|g| g.checks.iter()).enumerate() {
        // A rule that cannot be evaluated yet reads an answer that is missing or invalid, and that
        // answer is already reported above; only a rule that evaluates to false is a problem of its own.
        if c.rule.eval_bool(&env) == Ok(false) {
            out.push(problem(&format!("check.{}", i + 1), "申请条件", &c.message));
        }
    }
    out
}

/// The expression environment of a case (answers typed by the item's fields, the applicant unless the
/// item has none), for screens that show or hide fields as answers change.
pub fn case_env(
    item: &Item,
    applicant_data: &Applicant,
    answer_map: &BTreeMap<String, Answer>,
    today: NaiveDate,
) -> Env {
    let applicant_env = item.applicant.is_resident().then_some(applicant_data);
    Env::for_case(item_fields(item), applicant_env, answer_map, today)
}

/// The item's form fields (none for an item without a guide).
fn item_fields(item: &Item) -> &[FieldDef] {
    item.guide
        .as_ref()
        .map(|g| g.fields.as_slice())
        .unwrap_or(&[])
}

/// Whether a field is shown under `env`, and whether it must then be answered.
pub fn field_state(def: &FieldDef, env: &Env) -> (bool, bool) {
    shown_and_required(
        def.relevant.as_ref(),
        def.required,
        def.required_if.as_ref(),
        env,
    )
}

/// The environment for one row of a repeat group.
pub fn row_env(
    env: &Env,
    group: &FieldDef,
    row: &BTreeMap<String, String>,
    today: NaiveDate,
) -> Env {
    env.with_row(form::row_value(&group.fields, row, today))
}

/// Whether a field or material is shown, and whether it must be answered, under `env`.
fn shown_and_required(
    relevant: Option<&Expr>,
    required: bool,
    required_if: Option<&Expr>,
    env: &Env,
) -> (bool, bool) {
    let shown = relevant.is_none_or(|e| e.holds(env));
    (
        shown,
        shown && (required || required_if.is_some_and(|e| e.holds(env))),
    )
}

/// Checks one field (key and label as shown: `members.1.name`, "家庭成员第2人：姓名").
fn check_field(
    def: &FieldDef,
    answer: Option<&Answer>,
    env: &Env,
    today: NaiveDate,
    key: &str,
    label: &str,
    out: &mut Vec<FieldProblem>,
) {
    let (shown, required) = shown_and_required(
        def.relevant.as_ref(),
        def.required,
        def.required_if.as_ref(),
        env,
    );
    if !shown {
        return;
    }
    let empty = answer.is_none_or(Answer::is_empty);
    match def.kind {
        FieldKind::Group => {
            let rows = answer.map(Answer::rows).unwrap_or(&[]);
            let min = def.min_rows.unwrap_or(u32::from(required)) as usize;
            if rows.len() < min.max(usize::from(required)) {
                out.push(problem(
                    key,
                    label,
                    &format!("请填写{label}，至少{}人", min.max(1)),
                ));
            }
            if let Some(max) = def.max_rows.filter(|m| rows.len() > *m as usize) {
                out.push(problem(key, label, &format!("{label}最多{max}人")));
            }
            for (i, row) in rows.iter().enumerate() {
                let row_env = env.with_row(form::row_value(&def.fields, row, today));
                for col in &def.fields {
                    let cell = row.get(&col.key).map(|v| Answer::Text(v.clone()));
                    check_field(
                        col,
                        cell.as_ref(),
                        &row_env,
                        today,
                        &format!("{key}.{i}.{}", col.key),
                        &format!("{label}第{}人：{}", i + 1, col.label),
                        out,
                    );
                }
            }
        }
        FieldKind::Multi => {
            let chosen = answer.map(Answer::choices).unwrap_or_default();
            if chosen.is_empty() {
                if required {
                    out.push(problem(key, label, &format!("请选择{label}")));
                }
                return;
            }
            if let Some(bad) = chosen.iter().find(|c| !def.choices.iter().any(|d| d == *c)) {
                out.push(problem(
                    key,
                    label,
                    &format!(
                        "“{bad}”不是可选项，请从以下选项中选择：{}",
                        def.choices.join("、")
                    ),
                ));
                return;
            }
        }
        _ => {
            let text = answer.map(Answer::text);
            let mut def_here = def.clone();
            def_here.required = required;
            if let Some(mut p) = field(&def_here, text, today) {
                p.key = key.to_string();
                p.label = label.to_string();
                out.push(p);
                return;
            }
        }
    }
    if empty {
        return;
    }
    if let Some(c) = &def.constraint {
        let value = form::typed(def, answer, today);
        if c.eval_bool(&env.with_value(value)) == Ok(false) {
            out.push(problem(key, label, &def.constraint_message));
        }
    }
}

/// The result of 初审: everything that stops the case from being sealed, listed at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Precheck {
    pub fields: Vec<FieldProblem>,
    /// Required materials with fewer pages than the guide asks for.
    pub missing_materials: Vec<MissingMaterial>,
}

/// A required material that is not (fully) captured yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingMaterial {
    pub key: String,
    pub name: String,
    pub have: u32,
    pub need: u32,
    /// What the photos still to take show, in order ("反面", "李四：正面").
    pub still: Vec<String>,
}

impl Precheck {
    pub fn passed(&self) -> bool {
        self.fields.is_empty() && self.missing_materials.is_empty()
    }

    /// One line per problem, in Chinese, for the checklist screen and the CLI's stderr.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .fields
            .iter()
            .map(|p| format!("{}：{}", p.label, p.message))
            .collect();
        out.extend(self.missing_materials.iter().map(|m| {
            if m.have == 0 {
                format!(
                    "缺少材料：{}（需拍{}张：{}）",
                    m.name,
                    m.need,
                    m.still.join("、")
                )
            } else {
                format!(
                    "材料不全：{}（已拍{}张，需{}张，还缺：{}）",
                    m.name,
                    m.have,
                    m.need,
                    m.still.join("、")
                )
            }
        }));
        out
    }
}

/// What one material asks for in this case, given the answers so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialNeed {
    pub key: String,
    pub name: String,
    /// Every photo to take, in order, labelled ("正面", "张三：反面").
    pub pages: Vec<String>,
    pub required: bool,
    /// More pages than `pages` may be added.
    pub more_pages: bool,
}

/// The materials shown for this case, each with the photos it needs: conditions decide which are shown
/// and required, a per-member material takes its pages once for each member that matches.
pub fn material_needs(
    item: &Item,
    applicant_data: &Applicant,
    answer_map: &BTreeMap<String, Answer>,
    today: NaiveDate,
) -> Vec<MaterialNeed> {
    let Some(guide) = &item.guide else {
        return Vec::new();
    };
    let env = case_env(item, applicant_data, answer_map, today);
    let mut out = Vec::new();
    for m in &guide.materials {
        let (shown, required) = shown_and_required(
            m.relevant.as_ref(),
            m.required,
            m.required_if.as_ref(),
            &env,
        );
        if !shown {
            continue;
        }
        let pages = match &m.per {
            None => m.pages.clone(),
            Some(group) => {
                let def = guide.fields.iter().find(|f| &f.key == group);
                let rows = answer_map.get(group).map(Answer::rows).unwrap_or(&[]);
                let mut pages = Vec::new();
                for (i, row) in rows.iter().enumerate() {
                    if let (Some(def), Some(cond)) = (def, &m.per_if) {
                        let row_env = env.with_row(form::row_value(&def.fields, row, today));
                        if !cond.holds(&row_env) {
                            continue;
                        }
                    }
                    let who = row
                        .get("name")
                        .filter(|n| !n.trim().is_empty())
                        .cloned()
                        .unwrap_or_else(|| format!("第{}人", i + 1));
                    pages.extend(m.pages.iter().map(|p| format!("{who}：{p}")));
                }
                pages
            }
        };
        out.push(MaterialNeed {
            key: m.key.clone(),
            name: m.name.clone(),
            pages,
            required,
            more_pages: m.more_pages,
        });
    }
    out
}

/// 初审: the applicant, every form answer and condition, and every required material of the item's
/// guide with all its pages.
pub fn precheck(
    item: &Item,
    applicant_data: &Applicant,
    answer_map: &BTreeMap<String, Answer>,
    materials: &[MaterialPages],
    today: NaiveDate,
) -> Precheck {
    let mut fields = if item.applicant.is_resident() {
        applicant(applicant_data, today)
    } else {
        Vec::new()
    };
    fields.extend(answers(item, applicant_data, answer_map, today));
    let mut missing_materials = Vec::new();
    for need in material_needs(item, applicant_data, answer_map, today) {
        if !need.required {
            continue;
        }
        let have = materials
            .iter()
            .find(|p| p.key == need.key)
            .map(|p| p.pages.len())
            .unwrap_or(0);
        if have < need.pages.len() {
            missing_materials.push(MissingMaterial {
                key: need.key,
                name: need.name,
                have: have as u32,
                need: need.pages.len() as u32,
                still: need.pages[have..].to_vec(),
            });
        }
    }
    Precheck {
        fields,
        missing_materials,
    }
}

fn problem(key: &str, label: &str, message: &str) -> FieldProblem {
    FieldProblem {
        key: key.to_string(),
        label: label.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    /// Builds a valid ID number from a region, a birth date and a sequence.
    fn make_id(region: &str, birth: &str, seq: u32) -> String {
        let first17 = format!("{region}{birth}{seq:03}");
        let c = checksum_char(first17.as_bytes());
        format!("{first17}{c}")
    }

    #[test]
    fn known_valid_numbers() {
        // The example number from GB 11643's annex.
        assert!(IdNumber::parse("11010519491231002X", today()).is_ok());
        assert!(
            IdNumber::parse("11010519491231002x", today()).is_ok(),
            "lower-case x is accepted"
        );
        let id = IdNumber::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert!(!id.is_male());
        assert_eq!(id.age_on(today()), 76);
    }

    #[test]
    fn rejections_are_precise() {
        assert_eq!(
            IdNumber::parse("1234", today()),
            Err(IdNumberError::Length(4))
        );
        assert_eq!(
            IdNumber::parse("11010519491231002Y", today()),
            Err(IdNumberError::Characters)
        );
        assert!(matches!(
            IdNumber::parse(&make_id("990105", "19491231", 2), today()),
            Err(IdNumberError::Region(_))
        ));
        assert!(matches!(
            IdNumber::parse(&make_id("140423", "19490230", 2), today()),
            Err(IdNumberError::BirthDate(_))
        ));
        assert!(matches!(
            IdNumber::parse(&make_id("140423", "20301231", 2), today()),
            Err(IdNumberError::FutureBirth(_))
        ));
        assert_eq!(
            IdNumber::parse("110105194912310021", today()),
            Err(IdNumberError::Checksum {
                expected: 'X',
                found: '1'
            })
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask_id_number("11010519491231002X"), "**************002X");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_phone("13812345678"), "138****5678");
    }

    #[test]
    fn phones() {
        assert_eq!(phone("138 1234-5678"), Ok("13812345678".to_string()));
        assert!(phone("12812345678").is_err());
        assert!(phone("1381234567").is_err());
        assert!(phone("0355-1234567").is_err());
    }

    proptest! {
        #[test]
        fn any_generated_number_is_valid(days in 0i64..40000, seq in 0u32..1000, region in prop::sample::select(vec!["140423", "110105", "440305", "650102"])) {
            let birth = NaiveDate::from_ymd_opt(1910, 1, 1).unwrap() + chrono::Days::new(days as u64);
            prop_assume!(birth <= today());
            let id = make_id(region, &birth.format("%Y%m%d").to_string(), seq);
            let parsed = IdNumber::parse(&id, today()).unwrap();
            prop_assert_eq!(parsed.birth_date(), birth);
        }

        #[test]
        fn any_single_digit_change_breaks_the_checksum(days in 0i64..30000, seq in 0u32..1000, pos in 14usize..17, delta in 1u8..10) {
            // Positions 14..17 are the sequence digits: changing one keeps region and date valid,
            // so only the checksum can catch it.
            let birth = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let id = make_id("140423", &birth.format("%Y%m%d").to_string(), seq);
            let mut b = id.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            let is_checksum_error = matches!(IdNumber::parse(&changed, today()), Err(IdNumberError::Checksum { .. }));
            prop_assert!(is_checksum_error);
        }

        #[test]
        fn adjacent_swaps_are_caught(days in 0i64..30000, seq in 0u32..1000, pos in 14usize..16) {
            let birth = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let id = make_id("140423", &birth.format("%Y%m%d").to_string(), seq);
            let mut b = id.clone().into_bytes();
            prop_assume!(b[pos] != b[pos + 1]);
            b.swap(pos, pos + 1);
            let swapped = String::from_utf8(b).unwrap();
            prop_assert!(IdNumber::parse(&swapped, today()).is_err());
        }
    }
}
