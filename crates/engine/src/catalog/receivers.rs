//! The county offices a town forwards cases to (转县): the administrative-approval service centre and
//! named county departments, published with the catalog like the administrative tree, so the county
//! changes who receives an item without a release.

use serde::{Deserialize, Serialize};

use super::{is_snake_case, Catalog, CatalogError};

/// One county office that receives forwarded cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// Stable key (ascii snake_case): county staff accounts and forwarded cases name it.
    pub key: String,
    /// The office's name, e.g. 襄垣县行政审批服务中心.
    pub name: String,
    /// Empty until the county publishes it; never made up.
    #[serde(default)]
    pub phone: String,
    /// The one office that receives every item no other office lists (the approval centre).
    #[serde(default)]
    pub default: bool,
    /// Item codes this office receives.
    #[serde(default)]
    pub items: Vec<String>,
}

impl Catalog {
    /// This catalog with `receivers` as its county offices (checked: keys snake_case and unique,
    /// exactly one default, every listed item in the catalog and listed by one office only).
    pub fn with_receivers(
        mut self,
        source: &str,
        receivers: Vec<Receiver>,
    ) -> Result<Catalog, CatalogError> {
        let bad = |reason: String| CatalogError::BadReceivers {
            file: source.to_string(),
            reason,
        };
        if !receivers.is_empty() {
            let defaults = receivers.iter().filter(|r| r.default).count();
            if defaults != 1 {
                return Err(bad(format!(
                    "exactly one office must be the default receiver, {defaults} are"
                )));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        let mut items = std::collections::BTreeMap::new();
        for r in &receivers {
            if !is_snake_case(&r.key) {
                return Err(bad(format!("key '{}' is not ascii snake_case", r.key)));
            }
            if !keys.insert(r.key.as_str()) {
                return Err(bad(format!("key '{}' is listed twice", r.key)));
            }
            if r.name.trim().is_empty() {
                return Err(bad(format!("office '{}' has no name", r.key)));
            }
            for code in &r.items {
                if self.item(code).is_none() {
                    return Err(bad(format!(
                        "office '{}' lists item {code}, which is not in the catalog",
                        r.key
                    )));
                }
                if let Some(other) = items.insert(code.as_str(), r.key.as_str()) {
                    return Err(bad(format!(
                        "item {code} is listed by both '{other}' and '{}'",
                        r.key
                    )));
                }
            }
        }
        self.receivers = receivers;
        Ok(self)
    }

    /// The county offices, in published order (empty in versions published before they were
    /// reference data).
    pub fn receivers(&self) -> &[Receiver] {
        &self.receivers
    }

    /// The office with this key.
    pub fn receiver(&self, key: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.key == key)
    }

    /// The office a case of `item` is forwarded to: the one listing it, or the default.
    pub fn receiver_for(&self, item: &str) -> Option<&Receiver> {
        self.receivers
            .iter()
            .find(|r| r.items.iter().any(|c| c == item))
            .or_else(|| self.receivers.iter().find(|r| r.default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(key: &str, default: bool, items: &[&str]) -> Receiver {
        Receiver {
            key: key.into(),
            name: format!("{key} office"),
            phone: String::new(),
            default,
            items: items.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_embedded_catalog_names_the_approval_centre_as_default() {
        let c = Catalog::embedded().unwrap();
        let centre = c.receiver_for("V01").unwrap();
        assert!(centre.default);
        assert_eq!(centre.name, "襄垣县行政审批服务中心");
        // No number is published yet, so none is shown.
        assert!(c.receivers().iter().all(|r| r.phone.is_empty()));
    }

    #[test]
    fn an_item_goes_to_the_office_listing_it() {
        let c = Catalog::embedded().unwrap();
        let code = c.items()[0].code.clone();
        let c = c
            .with_receivers(
                "t",
                vec![
                    office("centre", true, &[]),
                    office("justice", false, &[&code]),
                ],
            )
            .unwrap();
        assert_eq!(c.receiver_for(&code).unwrap().key, "justice");
        assert_eq!(c.receiver_for("T01").unwrap().key, "centre");
    }

    #[test]
    fn a_broken_list_is_refused_with_the_reason() {
        let c = Catalog::embedded().unwrap();
        let cases = [
            (vec![office("a", false, &[])], "exactly one"),
            (
                vec![office("a", true, &[]), office("b", true, &[])],
                "exactly one",
            ),
            (vec![office("a", true, &["X99"])], "X99"),
            (
                vec![office("a", true, &["V01"]), office("b", false, &["V01"])],
                "both",
            ),
            (
                vec![office("a", true, &[]), office("a", false, &[])],
                "twice",
            ),
            (vec![office("Bad Key", true, &[])], "snake_case"),
        ];
        for (list, want) in cases {
            let e = c.clone().with_receivers("t", list).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_version_without_receivers_keeps_its_json() {
        let c = Catalog::embedded().unwrap();
        let old = c.with_receivers("t", Vec::new()).unwrap();
        assert!(!old.to_json().contains("\"receivers\""));
        let back = Catalog::from_parts("t", &old.parts()).unwrap();
        assert_eq!(back.hash(), old.hash());
    }
}
