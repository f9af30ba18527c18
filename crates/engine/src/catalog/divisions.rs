//! The administrative tree a county serves (county → towns → villages): reference data published with
//! the catalog, so a new service point opens without a release.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct County {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Village {
    pub code: String,
    pub name: String,
    /// One of the plan's two pilot service points.
    #[serde(default)]
    pub pilot: bool,
    /// The code has been checked against the official table.
    #[serde(default = "yes")]
    pub confirmed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Town {
    pub code: String,
    pub name: String,
    #[serde(default = "yes")]
    pub confirmed: bool,
    #[serde(default, rename = "village")]
    pub villages: Vec<Village>,
}

fn yes() -> bool {
    true
}

/// The whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divisions {
    pub county: County,
    #[serde(default, rename = "town")]
    pub towns: Vec<Town>,
}

impl Divisions {
    /// Checks the code hierarchy (a village's code starts with its town's, and so on) and that no
    /// code or name is listed twice; the message names the offending entry.
    pub fn check(&self) -> Result<(), String> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.county.code, 6) {
            return Err(format!(
                "county code {:?} must be 6 digits",
                self.county.code
            ));
        }
        if self.county.name.trim().is_empty() {
            return Err("the county has no name".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.towns {
            if !digits(&t.code, 9) || !t.code.starts_with(&self.county.code) {
                return Err(format!(
                    "town {} code {:?} must be 9 digits under the county",
                    t.name, t.code
                ));
            }
            if t.name.trim().is_empty() {
                return Err(format!("town {} has no name", t.code));
            }
            if !seen.insert(t.code.clone()) {
                return Err(format!("duplicate code {}", t.code));
            }
            for v in &t.villages {
                if !digits(&v.code, 12) || !v.code.starts_with(&t.code) {
                    return Err(format!(
                        "village {} code {:?} must be 12 digits under town {}",
                        v.name, v.code, t.code
                    ));
                }
                if v.name.trim().is_empty() {
                    return Err(format!("village {} has no name", v.code));
                }
                if !seen.insert(v.code.clone()) {
                    return Err(format!("duplicate code {}", v.code));
                }
            }
        }
        Ok(())
    }

    pub fn town(&self, code: &str) -> Option<&Town> {
        self.towns.iter().find(|t| t.code == code)
    }

    /// The village and the town it belongs to.
    pub fn village(&self, code: &str) -> Option<(&Town, &Village)> {
        self.towns
            .iter()
            .find_map(|t| t.villages.iter().find(|v| v.code == code).map(|v| (t, v)))
    }

    /// `古韩镇南关村`.
    pub fn village_full_name(&self, code: &str) -> Option<String> {
        self.village(code)
            .map(|(t, v)| format!("{}{}", t.name, v.name))
    }

    /// Village codes of a town.
    pub fn villages_of(&self, town: &str) -> Vec<String> {
        self.town(town)
            .map(|t| t.villages.iter().map(|v| v.code.clone()).collect())
            .unwrap_or_default()
    }

    /// What changed from `old` to `self`, one line per town or village, for the publish page and
    /// the audit entry.
    pub fn changes_from(&self, old: &Divisions) -> Vec<String> {
        let mut out = Vec::new();
        if old.county != self.county {
            out.push(format!(
                "县 {} {} → {} {}",
                old.county.code, old.county.name, self.county.code, self.county.name
            ));
        }
        let entries = |d: &Divisions| {
            let mut m = std::collections::BTreeMap::new();
            for t in &d.towns {
                m.insert(t.code.clone(), (t.name.clone(), t.confirmed, false));
                for v in &t.villages {
                    m.insert(
                        v.code.clone(),
                        (format!("{}{}", t.name, v.name), v.confirmed, v.pilot),
                    );
                }
            }
            m
        };
        let (before, after) = (entries(old), entries(self));
        for (code, (name, confirmed, pilot)) in &after {
            match before.get(code) {
                None => out.push(format!("新增 {code} {name}")),
                Some((old_name, old_confirmed, old_pilot)) => {
                    if old_name != name {
                        out.push(format!("更名 {code} {old_name} → {name}"));
                    }
                    if old_confirmed != confirmed || old_pilot != pilot {
                        out.push(format!("修改 {code} {name}"));
                    }
                }
            }
        }
        for (code, (name, _, _)) in &before {
            if !after.contains_key(code) {
                out.push(format!("删除 {code} {name}"));
            }
        }
        out
    }
}
