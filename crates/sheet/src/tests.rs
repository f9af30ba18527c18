//! Round trip of the built-in catalog, and broken sheets reported by file, sheet, row and item.

use bianmin_engine::catalog::{Catalog, FieldKind};

use crate::write::{rows, workbook, Cell, Rows};
use crate::{export_bytes, import_bytes, SheetError, SHEETS};

fn embedded() -> Catalog {
    Catalog::embedded().unwrap()
}

fn column(sheet: &str, name: &str) -> usize {
    SHEETS
        .iter()
        .find(|(s, _)| *s == sheet)
        .unwrap()
        .1
        .iter()
        .position(|c| *c == name)
        .unwrap()
}

fn text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Number(n) => n.to_string(),
    }
}

/// The index of the first row of `sheet` whose `col` is `value` (and whose item is `item`).
fn find(rows: &mut Rows, sheet: &str, item: &str, col: &str, value: &str) -> usize {
    let (ic, vc) = (column(sheet, "item"), column(sheet, col));
    rows.sheet(sheet)
        .iter()
        .position(|r| text(&r[ic]) == item && r.get(vc).map(text).as_deref() == Some(value))
        .unwrap_or_else(|| panic!("no row {item} {col}={value} in {sheet}"))
}

fn set(rows: &mut Rows, sheet: &str, row: usize, col: &str, value: &str) {
    let c = column(sheet, col);
    let r = &mut rows.sheet(sheet)[row];
    while r.len() <= c {
        r.push(Cell::Text(String::new()));
    }
    r[c] = Cell::Text(value.into());
}

fn problems(rows: &Rows) -> Vec<String> {
    match import_bytes("F.xlsx", &workbook(rows).unwrap()) {
        Err(SheetError::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn the_built_in_catalog_survives_a_round_trip_unchanged() {
    let c = embedded();
    let back = import_bytes("round-trip.xlsx", &export_bytes(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.hash(), c.hash());
    // The catalog uses what the sheets must carry: repeat groups, choices, per-member photos.
    let fields: Vec<_> = c
        .items()
        .iter()
        .filter_map(|i| i.guide.as_ref())
        .flat_map(|g| &g.fields)
        .collect();
    assert!(fields.iter().any(|f| f.kind == FieldKind::Group));
    assert!(fields.iter().any(|f| !f.choices.is_empty()));
    assert!(!c.holidays().is_empty());
    assert!(c.divisions().is_some_and(|d| d.towns.len() == 9));
    assert_eq!(back.receivers(), c.receivers());
    assert!(!c.receivers().is_empty());
}

#[test]
fn an_item_given_to_a_county_office_on_the_receivers_sheet_goes_there() {
    let c = embedded();
    let mut rows = rows(&c);
    let r = rows.sheet("receivers");
    let justice = r
        .iter_mut()
        .find(|row| matches!(&row[0], Cell::Text(k) if k == "justice"));
    justice.unwrap()[4] = Cell::Text("V01，V02".into());
    let back = import_bytes("F.xlsx", &workbook(&rows).unwrap()).unwrap();
    assert_eq!(back.receiver_for("V02").unwrap().key, "justice");
    assert_eq!(back.receiver_for("V03").unwrap().key, "approval_centre");

    // An unknown item code is placed on the sheet.
    let mut broken = crate::write::rows(&c);
    let r = broken.sheet("receivers");
    r[0][4] = Cell::Text("X77".into());
    let e = import_bytes("F.xlsx", &workbook(&broken).unwrap()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("receivers") && text.contains("X77"), "{text}");
}

#[test]
fn a_village_added_on_the_divisions_sheet_is_imported_under_its_town() {
    let c = embedded();
    let mut rows = rows(&c);
    let d = rows.sheet("divisions");
    d.push(vec![
        Cell::Text("village".into()),
        Cell::Text("140423100299".into()),
        Cell::Text("新村".into()),
        Cell::Text("no".into()),
        Cell::Text(String::new()),
    ]);
    let back = import_bytes("F.xlsx", &workbook(&rows).unwrap()).unwrap();
    let tree = back.divisions().unwrap();
    assert_eq!(
        tree.village_full_name("140423100299").as_deref(),
        Some("古韩镇新村")
    );
    assert!(tree.village("140423100299").unwrap().1.confirmed);

    // A village under no town, and one whose code does not nest, are placed on the sheet.
    let mut broken = crate::write::rows(&c);
    broken.sheet("divisions").push(vec![
        Cell::Text("village".into()),
        Cell::Text("140499100299".into()),
        Cell::Text("错村".into()),
    ]);
    let p = problems(&broken);
    assert!(
        p.iter()
            .any(|l| l.contains("divisions") && l.contains("140499100299")),
        "{p:?}"
    );
}

#[test]
fn a_broken_cell_is_reported_with_file_sheet_row_and_item() {
    let c = embedded();
    let mut rows = rows(&c);
    let v03 = &c.item("V03").unwrap().guide.as_ref().unwrap();
    let first_field = v03.fields[0].key.clone();
    let first_material = v03.materials[0].key.clone();
    let s = find(&mut rows, "survey", "V03", "name", &first_field);
    set(&mut rows, "survey", s, "type", "select_onee");
    let m = find(&mut rows, "materials", "V03", "key", &first_material);
    set(&mut rows, "materials", m, "form", "orig");
    set(&mut rows, "materials", m, "pages", "");
    set(&mut rows, "materials", m, "required", "maybe");
    let t = rows.sheet("texts").len() - 1;
    set(&mut rows, "texts", t, "item", "V99");
    let lines = problems(&rows);
    // Row numbers as the spreadsheet shows them: the header is row 1.
    let (sr, mr, tr) = (s + 2, m + 2, t + 2);
    let want = [
        format!("F.xlsx: sheet survey, row {sr}, item V03: type must be one of text, textarea, number, date, select_one, bool, id_number, phone, select_multiple, begin_group, not 'select_onee'"),
        format!("F.xlsx: sheet materials, row {mr}, item V03: form must be one of original, copy, original_and_copy, not 'orig'"),
        format!("F.xlsx: sheet materials, row {mr}, item V03: pages is empty (name each photo, separated by '；')"),
        format!("F.xlsx: sheet materials, row {mr}, item V03: required must be yes or no, not 'maybe'"),
        format!("F.xlsx: sheet texts, row {tr}, item V99: no such item in sheet items"),
    ];
    for w in &want {
        assert!(lines.contains(w), "missing {w}\nin {lines:#?}");
    }
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
}

#[test]
fn groups_must_be_closed_and_choice_lists_must_exist() {
    let c = embedded();
    let mut rows = rows(&c);
    let tc = column("survey", "type");
    let end = rows
        .sheet("survey")
        .iter()
        .position(|r| text(&r[tc]) == "end_group")
        .unwrap();
    let item = text(&rows.sheet("survey")[end][0]);
    let begin = rows.sheet("survey")[..end]
        .iter()
        .rposition(|r| text(&r[tc]) == "begin_group")
        .unwrap();
    rows.sheet("survey").remove(end);
    let lc = column("survey", "choice_list");
    let with_list = rows
        .sheet("survey")
        .iter()
        .position(|r| r.get(lc).is_some_and(|c| !text(c).is_empty()))
        .unwrap();
    let list_item = text(&rows.sheet("survey")[with_list][0]);
    set(&mut rows, "survey", with_list, "choice_list", "nowhere");
    let lines = problems(&rows);
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "F.xlsx: sheet survey, row {}, item {item}: begin_group '",
            begin + 2
        )) && l.ends_with("has no end_group")),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&format!(
            "F.xlsx: sheet survey, row {}, item {list_item}: choice_list 'nowhere' is not in sheet choices",
            with_list + 2
        )),
        "{lines:#?}"
    );
}

#[test]
fn validation_errors_are_placed_on_their_row() {
    let c = embedded();
    let mut rows = rows(&c);
    let v03 = c.item("V03").unwrap().guide.as_ref().unwrap();
    // Two materials with one key: the catalog's own validation finds it, the import places it.
    let m = find(&mut rows, "materials", "V03", "key", &v03.materials[1].key);
    set(
        &mut rows,
        "materials",
        m,
        "key",
        &v03.materials[0].key.clone(),
    );
    let lines = problems(&rows);
    assert_eq!(
        lines,
        vec![format!(
            "F.xlsx: sheet materials, row {}, item V03: duplicate material key '{}'",
            m + 2,
            v03.materials[0].key
        )]
    );
    // A condition naming an answer that does not exist: placed on the field's row.
    let mut rows = crate::write::rows(&c);
    let f = find(&mut rows, "survey", "V03", "name", &v03.fields[0].key);
    set(&mut rows, "survey", f, "relevant", "no_such_answer == 'x'");
    let lines = problems(&rows);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("F.xlsx: sheet survey, row {}, item V03: ", f + 2))
            && lines[0].contains("no_such_answer"),
        "{lines:#?}"
    );
}

#[test]
fn an_unknown_column_and_a_missing_sheet_are_reported() {
    let c = embedded();
    let mut rows = rows(&c);
    rows.0.retain(|(n, _)| *n != "settings");
    // `workbook` writes the headers of SHEETS: rename one by writing a whole workbook by hand.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("items").unwrap();
    ws.write_string(0, 0, "code").unwrap();
    ws.write_string(0, 1, "colour").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let Err(SheetError::Invalid(p)) = import_bytes("G.xlsx", &bytes) else {
        panic!("expected problems")
    };
    let lines: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert!(
        lines.contains(&"G.xlsx: sheet settings: the sheet is missing".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("G.xlsx: sheet items, row 1: unknown column 'colour'")),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"G.xlsx: sheet items, row 1: column 'name' is missing".to_string()),
        "{lines:#?}"
    );
    assert!(matches!(
        import_bytes("H.xlsx", b"not a zip"),
        Err(SheetError::Workbook { .. })
    ));
}
