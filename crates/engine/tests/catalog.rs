//! Tests of the item catalog: the data matches the county's published lists, every village guide is complete,
//! the loader rejects broken files with errors naming file and item, and the 一次性告知 notice is complete.

use std::path::PathBuf;

use bianmin_engine::catalog::{Catalog, CatalogError, FieldKind};

/// The seed lives beside the repository checkout (`../shared` from the repo root), locally and in CI.
fn seed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/000_333d64b663416e61.txt")
}

/// One row of a seed table: (序号, 名称, 类型, 办理方式).
type Row = (u32, String, String, String);

/// Parses the tab-indented tables of the seed: cells are lines starting with a tab, rows are separated by
/// blank lines, and a line without a tab inside a row continues the previous cell (a page break split
/// town row 34 that way).
fn parse_table(lines: &[&str]) -> Vec<Row> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in lines {
        if let Some(cell) = line.strip_prefix('\t') {
            cur.get_or_insert_with(Vec::new).push(cell.to_string());
        } else if line.trim().is_empty() {
            rows.extend(cur.take());
        } else if let Some(cells) = cur.as_mut() {
            if let Some(last) = cells.last_mut() {
                last.push_str(line.trim());
            }
        }
    }
    rows.extend(cur.take());
    rows.into_iter()
        .filter_map(|r| {
            let seq = r.first()?.trim().parse().ok()?;
            let cell = |i: usize| r.get(i).cloned().unwrap_or_default();
            Some((seq, cell(1), cell(2), cell(3)))
        })
        .collect()
}

/// (town rows of Annex 1, village rows of Annex 2), read from the seed; panics clearly if it is missing.
fn seed_tables() -> (Vec<Row>, Vec<Row>) {
    let path = seed_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the seed file {} is required by this test (it sits in ../shared beside the repo): {e}",
            path.display()
        )
    });
    let lines: Vec<&str> = text.lines().collect();
    // The annex headings also occur in the table of contents ("附件1．..."), so match whole lines.
    let a1 = lines
        .iter()
        .position(|l| l.trim() == "附件1")
        .expect("seed has an 附件1 heading");
    let a2 = a1
        + lines[a1..]
            .iter()
            .position(|l| l.trim() == "附件2")
            .expect("seed has an 附件2 heading");
    (parse_table(&lines[a1..a2]), parse_table(&lines[a2..]))
}

fn catalog() -> Catalog {
    Catalog::embedded().unwrap_or_else(|e| panic!("embedded catalog does not load: {e}"))
}

#[test]
fn seed_tables_have_the_published_sizes() {
    let (town, village) = seed_tables();
    assert_eq!(village.len(), 43, "Annex 2 lists 43 village items");
    assert_eq!(town.len(), 99, "Annex 1 lists 99 town items");
    assert!(town.iter().zip(1..).all(|(r, i)| r.0 == i));
    assert!(village.iter().zip(1..).all(|(r, i)| r.0 == i));
}

#[test]
fn every_seed_item_is_in_the_catalog_in_order() {
    let (town, village) = seed_tables();
    let cat = catalog();
    for (prefix, rows, items) in [
        ('V', &village, cat.village_items().collect::<Vec<_>>()),
        ('T', &town, cat.town_items().collect::<Vec<_>>()),
    ] {
        assert_eq!(items.len(), rows.len(), "{prefix} list length");
        for ((seq, name, kind, method), item) in rows.iter().zip(items) {
            let code = format!("{prefix}{seq:02}");
            assert_eq!(item.code, code);
            assert_eq!(item.seq, *seq, "{code} seq");
            assert_eq!(
                &item.name, name,
                "{code} name must match the seed character for character"
            );
            assert_eq!(&item.kind, kind, "{code} kind");
            assert_eq!(&item.method, method, "{code} method");
            assert_eq!(cat.item(&code), Some(item));
        }
    }
    assert_eq!(cat.items().len(), 142);
    assert_eq!(
        cat.item("T34").unwrap().name,
        "城乡居民基本养老保险变更登记（性别、民族、居住地址、联系电话变更）",
        "the row split by a page break is merged"
    );
    assert!(cat.item("V44").is_none());
}

#[test]
fn village_guides_are_complete() {
    let cat = catalog();
    for item in cat.village_items() {
        let code = &item.code;
        let g = item
            .guide
            .as_ref()
            .unwrap_or_else(|| panic!("{code} has no guide"));
        assert!(
            g.draft,
            "{code}: guides stay drafts until the county confirms them"
        );
        assert!(g.summary.chars().count() >= 20, "{code}: summary too short");
        // Provincial rules whose exact titles the county must fill in are named generically, so only one
        // citation of a published document (《…》) is demanded.
        assert!(
            g.legal_basis.iter().any(|b| b.contains('《')),
            "{code}: legal basis cites a document"
        );
        assert!(
            g.procedure.len() >= 3,
            "{code}: procedure has at least 3 steps"
        );
        assert!(
            g.procedure[0].contains("村便民服务点"),
            "{code}: procedure starts at the village service point"
        );
        assert!(
            g.promised_days > 0 && g.promised_days <= 60,
            "{code}: promised days"
        );
        assert!(
            !g.fee.is_empty() && g.fee.starts_with("不收费"),
            "{code}: every village item is free and must say so"
        );
        assert!(
            cat.contact(&g.contact).is_some(),
            "{code}: the supervision contact is one the county lists"
        );
        assert!(
            g.sample_form.contains("____"),
            "{code}: sample form has blanks"
        );
        assert!(
            g.materials.iter().any(|m| m.required),
            "{code}: at least one required material"
        );
        assert!(g.materials.iter().all(|m| !m.pages.is_empty()));
        assert!(
            !g.fields.is_empty() && g.fields.len() <= 6,
            "{code}: 1-6 fields"
        );
        for f in &g.fields {
            if f.kind == FieldKind::Choice {
                assert!(!f.choices.is_empty(), "{code}.{}", f.key);
            }
        }
    }
    assert!(cat
        .town_items()
        .all(|i| i.guide.is_none() || i.guide.as_ref().unwrap().promised_days > 0));
}

#[test]
fn notice_lists_every_material_and_the_essentials() {
    let cat = catalog();
    for item in cat.village_items() {
        let g = item.guide.as_ref().unwrap();
        let contact = cat.contact(&g.contact);
        let n = g.notice(item, contact);
        assert!(n.contains(&item.name), "{}", item.code);
        for m in &g.materials {
            assert!(
                n.contains(&m.name),
                "{}: notice misses material {}",
                item.code,
                m.name
            );
            assert!(n.contains(m.form.label()));
        }
        for p in &g.procedure {
            assert!(n.contains(p.as_str()));
        }
        assert!(n.contains(&g.fee));
        assert!(n.contains(&format!("{} 个工作日", g.promised_days)));
        // No number is invented: an unpublished one is said to be unpublished.
        match contact {
            Some(c) if !c.phone.is_empty() => assert!(n.contains(&c.phone)),
            _ => assert!(n.contains("待县行政审批局公布"), "{}", item.code),
        }
        assert!(n.contains("草稿"), "draft guides say so");
        assert!(n.contains("必交"));
    }
    let v01 = cat.item("V01").unwrap();
    let mut confirmed = v01.guide.clone().unwrap();
    confirmed.draft = false;
    assert!(!confirmed.notice(v01, None).contains("草稿"));
}

/// A small valid village file; the broken inputs below each change one thing.
const GOOD: &str = r#"
[meta]
list = "village"
title = "测试清单"
source = "测试"

[[item]]
code = "V01"
seq = 1
name = "兵役登记"
kind = "行政确认"
method = "初审或帮办代办"

[item.guide]
draft = true
summary = "适龄男性公民进行兵役登记。"
legal_basis = ["《中华人民共和国兵役法》"]
procedure = ["申请人到村便民服务点提出申请"]
promised_days = 5
fee = "不收费"
handling_level = "村级初审"
sample_form = "申请书 ____"

[[item.guide.materials]]
key = "id_card"
name = "申请人居民身份证"
form = "original"
pages = ["正面", "反面"]
required = true
capture = "card"

[[item.guide.fields]]
key = "education"
label = "文化程度"
type = "choice"
required = true
choices = ["高中", "大专"]

[[item]]
code = "V02"
seq = 2
name = "生育服务登记"
kind = "行政确认"
method = "初审或帮办代办"

[item.guide]
summary = "生育服务登记。"
legal_basis = ["《中华人民共和国人口与计划生育法》"]
procedure = ["申请人到村便民服务点提出申请"]
promised_days = 3
fee = "不收费"
handling_level = "村级初审"
sample_form = "申请书 ____"

[[item.guide.materials]]
key = "id_card"
name = "夫妻双方居民身份证"
form = "original"
pages = ["男方正面", "男方反面", "女方正面", "女方反面"]
required = true
capture = "card"

[[contact]]
key = "supervision"
label = "县政务服务监督电话"
phone = ""
"#;

fn load(text: &str) -> Result<Catalog, CatalogError> {
    Catalog::from_toml("broken.toml", text)
}

/// Loads a broken variant of GOOD and returns the error message, checking it names file and item.
fn error_of(text: &str, code: &str) -> String {
    let err = load(text).expect_err("broken input must be rejected");
    let msg = err.to_string();
    assert!(msg.contains("broken.toml"), "message names the file: {msg}");
    assert!(msg.contains(code), "message names item {code}: {msg}");
    msg
}

#[test]
fn good_input_loads() {
    let cat = load(GOOD).unwrap();
    assert_eq!(cat.items().len(), 2);
    assert_eq!(
        cat.item("V02").unwrap().guide.as_ref().unwrap().materials[0]
            .pages
            .len(),
        4
    );
}

#[test]
fn duplicate_code_is_rejected() {
    let text = GOOD.replace("code = \"V02\"", "code = \"V01\"");
    let msg = error_of(&text, "V01");
    assert!(msg.contains("duplicate item code"), "{msg}");
}

#[test]
fn code_of_the_wrong_list_is_rejected() {
    let msg = error_of(&GOOD.replace("code = \"V02\"", "code = \"T02\""), "T02");
    assert!(msg.contains("does not match"), "{msg}");
}

#[test]
fn no_required_material_is_rejected() {
    let text = GOOD.replace(
        "\"女方反面\"]\nrequired = true",
        "\"女方反面\"]\nrequired = false",
    );
    let msg = error_of(&text, "V02");
    assert!(msg.contains("no required material"), "{msg}");
}

#[test]
fn zero_days_is_rejected() {
    let msg = error_of(
        &GOOD.replace("promised_days = 3", "promised_days = 0"),
        "V02",
    );
    assert!(msg.contains("promised_days"), "{msg}");
}

#[test]
fn missing_village_guide_is_rejected() {
    let cut = GOOD.find("[item.guide]\nsummary = \"生育").unwrap();
    let msg = error_of(&GOOD[..cut], "V02");
    assert!(msg.contains("guide"), "{msg}");
}

#[test]
fn bad_field_definitions_are_rejected() {
    let msg = error_of(
        &GOOD.replace("choices = [\"高中\", \"大专\"]", "choices = []"),
        "V01",
    );
    assert!(msg.contains("education") && msg.contains("choice"), "{msg}");

    let number = GOOD.replace(
        "type = \"choice\"\nrequired = true\nchoices = [\"高中\", \"大专\"]",
        "type = \"number\"\nmin = 9\nmax = 1",
    );
    let msg = error_of(&number, "V01");
    assert!(msg.contains("min 9 is greater than max 1"), "{msg}");

    let msg = error_of(
        &GOOD.replace("key = \"education\"", "key = \"Education-Level\""),
        "V01",
    );
    assert!(msg.contains("snake_case"), "{msg}");

    let msg = error_of(&GOOD.replace("type = \"choice\"", "type = \"text\""), "V01");
    assert!(msg.contains("choices are only allowed"), "{msg}");
}

#[test]
fn duplicate_and_bad_material_keys_are_rejected() {
    let dup = GOOD.replace(
        "[[item.guide.fields]]",
        "[[item.guide.materials]]\nkey = \"id_card\"\nname = \"户口簿\"\nform = \"copy\"\npages = [\"第1页\"]\nrequired = false\ncapture = \"page\"\n\n[[item.guide.fields]]",
    );
    let msg = error_of(&dup, "V01");
    assert!(msg.contains("duplicate material key 'id_card'"), "{msg}");

    let msg = error_of(
        &GOOD.replace("pages = [\"正面\", \"反面\"]", "pages = []"),
        "V01",
    );
    assert!(msg.contains("pages must list"), "{msg}");
}

#[test]
fn typos_and_syntax_errors_name_the_file() {
    // deny_unknown_fields: a misspelt key must not silently drop data the county entered.
    let err = load(&GOOD.replace("promised_days = 3", "promised_day = 3")).unwrap_err();
    assert!(matches!(err, CatalogError::Parse { .. }), "{err}");
    assert!(err.to_string().starts_with("broken.toml: "), "{err}");
    let err = load("[meta\n").unwrap_err();
    assert!(err.to_string().starts_with("broken.toml: "), "{err}");
}

#[test]
fn load_dir_merges_files_village_first_and_rejects_cross_file_duplicates() {
    let repo_assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/catalog");
    let from_disk = Catalog::load_dir(&repo_assets).unwrap();
    assert_eq!(from_disk.items(), catalog().items());
    assert_eq!(from_disk.items()[0].code, "V01");
    assert_eq!(from_disk.items()[43].code, "T01");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
    std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
    let msg = Catalog::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("b.toml") && msg.contains("V01") && msg.contains("duplicate"),
        "{msg}"
    );

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Catalog::load_dir(empty.path()),
        Err(CatalogError::Empty { .. })
    ));
}

#[test]
fn a_new_years_holiday_table_is_published_with_the_catalog() {
    use bianmin_engine::deadline::HolidayYear;
    use chrono::NaiveDate;
    let shipped = catalog();
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    // 2027 is not in the shipped table: its Spring Festival week counts as working days, provisionally.
    let cal = shipped.calendar();
    assert!(cal.is_working_day(d(2027, 2, 8)));
    assert!(cal.is_provisional(d(2027, 1, 4), d(2027, 2, 20)));

    let mut years = shipped.holidays().to_vec();
    years.push(HolidayYear {
        year: 2027,
        off: vec!["2027-01-01".into(), "2027-02-06..2027-02-13".into()],
        work: vec!["2027-02-20".into()],
    });
    let next = shipped
        .clone()
        .with_holidays("edited", years.clone())
        .unwrap();
    let cal = next.calendar();
    assert!(!cal.is_working_day(d(2027, 2, 8)));
    assert!(cal.is_working_day(d(2027, 2, 20)), "调休上班 on a Saturday");
    assert!(!cal.is_provisional(d(2027, 1, 4), d(2027, 2, 20)));
    // Delivered like any other part, and named among the changes.
    let back = Catalog::from_parts("delivered", &next.parts()).unwrap();
    assert_eq!(back.calendar(), cal);
    let changes: Vec<String> = bianmin_engine::catalog::changes(&shipped, &next)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(changes, vec!["节假日安排有更新（承诺时限按新安排计算）"]);

    years.last_mut().unwrap().off.push("2027-02-30".into());
    let err = shipped.clone().with_holidays("edited", years).unwrap_err();
    assert!(err.to_string().contains("2027-02-30"), "{err}");
}
