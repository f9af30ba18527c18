//! What changed between two catalog versions, item by item, in words county staff and agents read
//! ("V03 新增材料：残疾证（必交）"): shown before publishing, on the phone's 事项已更新, and in the audit log.

use std::fmt;

use super::{Catalog, FieldDef, Guide, Item, Material};

/// One change of one item's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    /// A guide text changed (申请条件, 办理流程, 收费标准 …), by its Chinese heading.
    Text(&'static str),
    MaterialAdded {
        name: String,
        need: &'static str,
    },
    MaterialRemoved {
        name: String,
    },
    /// Photos, need, conditions or wording of a material changed.
    MaterialChanged {
        name: String,
        what: String,
    },
    FieldAdded {
        label: String,
    },
    FieldRemoved {
        label: String,
    },
    FieldChanged {
        label: String,
    },
    /// Eligibility checks (申请条件 verified at 初审) were added, removed or reworded.
    Checks,
    /// The item's name, type or applicant kind changed.
    Heading,
}

impl fmt::Display for ItemChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemChange::Text(what) => write!(f, "{what}有修改"),
            ItemChange::MaterialAdded { name, need } => write!(f, "新增材料：{name}（{need}）"),
            ItemChange::MaterialRemoved { name } => write!(f, "不再需要材料：{name}"),
            ItemChange::MaterialChanged { name, what } => write!(f, "材料“{name}”：{what}"),
            ItemChange::FieldAdded { label } => write!(f, "新增填写项：{label}"),
            ItemChange::FieldRemoved { label } => write!(f, "删去填写项：{label}"),
            ItemChange::FieldChanged { label } => write!(f, "填写项“{label}”有修改"),
            ItemChange::Checks => write!(f, "初审核对的申请条件有修改"),
            ItemChange::Heading => write!(f, "事项名称、类型或申请人有修改"),
        }
    }
}

/// One change between two catalogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ItemAdded {
        code: String,
        name: String,
    },
    ItemRemoved {
        code: String,
        name: String,
    },
    Item {
        code: String,
        change: ItemChange,
    },
    /// The county's contact phones changed.
    Contacts,
    /// The holiday table changed (a new year's 放假安排): deadlines count by it.
    Holidays,
    /// The administrative tree changed: one line per town or village added, renamed, changed or
    /// removed (empty when a version carries the tree for the first time).
    Divisions(Vec<String>),
    /// The county offices that receive forwarded cases (转县) or the items each receives changed.
    Receivers,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::ItemAdded { code, name } => write!(f, "{code} 新增事项：{name}"),
            Change::ItemRemoved { code, name } => write!(f, "{code} 删去事项：{name}"),
            Change::Item { code, change } => write!(f, "{code} {change}"),
            Change::Contacts => write!(f, "县里的联系电话有更新"),
            Change::Holidays => write!(f, "节假日安排有更新（承诺时限按新安排计算）"),
            Change::Divisions(lines) if lines.is_empty() => {
                write!(f, "行政区划（乡镇、村）随清单发布")
            }
            Change::Divisions(lines) => write!(f, "行政区划有更新：{}", lines.join("；")),
            Change::Receivers => write!(f, "转县接收单位有更新"),
        }
    }
}

/// Every change from `old` to `new`, items in `new`'s order, removed items last.
pub fn changes(old: &Catalog, new: &Catalog) -> Vec<Change> {
    let mut out = Vec::new();
    for item in new.items() {
        match old.item(&item.code) {
            None => out.push(Change::ItemAdded {
                code: item.code.clone(),
                name: item.name.clone(),
            }),
            Some(before) => {
                out.extend(
                    item_changes(before, item)
                        .into_iter()
                        .map(|change| Change::Item {
                            code: item.code.clone(),
                            change,
                        }),
                )
            }
        }
    }
    for item in old.items() {
        if new.item(&item.code).is_none() {
            out.push(Change::ItemRemoved {
                code: item.code.clone(),
                name: item.name.clone(),
            });
        }
    }
    if old.contacts() != new.contacts() {
        out.push(Change::Contacts);
    }
    if old.holidays() != new.holidays() {
        out.push(Change::Holidays);
    }
    match (old.divisions(), new.divisions()) {
        (Some(a), Some(b)) if a != b => out.push(Change::Divisions(b.changes_from(a))),
        (None, Some(_)) => out.push(Change::Divisions(Vec::new())),
        _ => {}
    }
    if old.receivers() != new.receivers() {
        out.push(Change::Receivers);
    }
    out
}

/// The changes of one item's definition.
pub fn item_changes(old: &Item, new: &Item) -> Vec<ItemChange> {
    let mut out = Vec::new();
    if (&old.name, &old.kind, &old.method, old.applicant)
        != (&new.name, &new.kind, &new.method, new.applicant)
    {
        out.push(ItemChange::Heading);
    }
    let empty = Guide::default();
    let (a, b) = (
        old.guide.as_ref().unwrap_or(&empty),
        new.guide.as_ref().unwrap_or(&empty),
    );
    let texts: [(&'static str, bool); 9] = [
        ("事项简介", a.summary != b.summary),
        ("申请条件", a.conditions != b.conditions),
        ("设定依据", a.legal_basis != b.legal_basis),
        ("办理流程", a.procedure != b.procedure),
        ("承诺时限", a.promised_days != b.promised_days),
        ("收费标准", a.fee != b.fee),
        ("办理层级", a.handling_level != b.handling_level),
        ("示范文本", a.sample_form != b.sample_form),
        (
            "待县确认事项",
            a.to_confirm != b.to_confirm || a.draft != b.draft,
        ),
    ];
    out.extend(texts.iter().filter(|t| t.1).map(|t| ItemChange::Text(t.0)));
    for m in &b.materials {
        match a.materials.iter().find(|o| o.key == m.key) {
            None => out.push(ItemChange::MaterialAdded {
                name: m.name.clone(),
                need: m.need_text(),
            }),
            Some(o) if o != m => out.push(ItemChange::MaterialChanged {
                name: m.name.clone(),
                what: material_difference(o, m),
            }),
            Some(_) => {}
        }
    }
    for o in &a.materials {
        if !b.materials.iter().any(|m| m.key == o.key) {
            out.push(ItemChange::MaterialRemoved {
                name: o.name.clone(),
            });
        }
    }
    fields(&a.fields, &b.fields, &mut out);
    if a.checks != b.checks {
        out.push(ItemChange::Checks);
    }
    out
}

fn fields(a: &[FieldDef], b: &[FieldDef], out: &mut Vec<ItemChange>) {
    for f in b {
        match a.iter().find(|o| o.key == f.key) {
            None => out.push(ItemChange::FieldAdded {
                label: f.label.clone(),
            }),
            Some(o) if o != f => out.push(ItemChange::FieldChanged {
                label: f.label.clone(),
            }),
            Some(_) => {}
        }
    }
    for o in a {
        if !b.iter().any(|f| f.key == o.key) {
            out.push(ItemChange::FieldRemoved {
                label: o.label.clone(),
            });
        }
    }
}

/// What differs between two versions of one material, in words.
fn material_difference(o: &Material, m: &Material) -> String {
    let mut what = Vec::new();
    if o.pages != m.pages || o.per != m.per || o.per_if != m.per_if || o.more_pages != m.more_pages
    {
        what.push(format!("改为拍：{}", m.pages_text()));
    }
    if o.required != m.required || o.required_if != m.required_if || o.relevant != m.relevant {
        what.push(format!("改为{}", m.need_text()));
    }
    if what.is_empty() {
        what.push("说明有修改".to_string());
    }
    what.join("，")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_material_and_a_changed_count_are_named() {
        let old = Catalog::embedded().unwrap();
        let mut items = old.items().to_vec();
        let v03 = items.iter_mut().find(|i| i.code == "V03").unwrap();
        let g = v03.guide.as_mut().unwrap();
        let mut extra = g.materials[0].clone();
        extra.key = "disability_cert".into();
        extra.name = "残疾证".into();
        extra.required = true;
        extra.required_if = None;
        g.materials.push(extra);
        g.materials[0].pages.push("补充页".into());
        let new = old.with_items("t", items).unwrap();
        let lines: Vec<String> = changes(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            lines.contains(&"V03 新增材料：残疾证（必交）".to_string()),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("V03 材料") && l.contains("补充页")),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn a_new_village_and_a_renamed_one_are_named() {
        let old = Catalog::embedded().unwrap();
        let mut d = old.divisions().unwrap().clone();
        let town = d.towns[0].code.clone();
        d.towns[0].villages.push(crate::catalog::Village {
            code: format!("{town}299"),
            name: "新村".into(),
            pilot: false,
            confirmed: false,
        });
        d.towns[0].villages[0].name = "南关社区".into();
        let new = old.clone().with_divisions("t", Some(d)).unwrap();
        let lines: Vec<String> = changes(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(&format!("新增 {town}299 古韩镇新村")),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("更名 140423100201 古韩镇南关村 → 古韩镇南关社区"),
            "{lines:?}"
        );
        let without = old.clone().with_divisions("t", None).unwrap();
        assert_eq!(changes(&without, &old), vec![Change::Divisions(Vec::new())]);
    }
}
