//! The administrative tree the town centre serves (county → towns → villages), loaded from editable TOML.
//!
//! Villages are data, not code: the county adds service points as they open, so the tree ships as
//! `crates/town/data/divisions.toml` and a copy in the data directory overrides it without a rebuild.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The tree compiled into the binary.
pub const EMBEDDED: &str = include_str!("../data/divisions.toml");

/// A divisions file that cannot be used.
#[derive(Debug, Error)]
pub enum DivisionsError {
    #[error("divisions file {file}: {message}")]
    Invalid { file: String, message: String },
    #[error("cannot read divisions file {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

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
    /// The built-in tree.
    pub fn embedded() -> Divisions {
        Divisions::from_toml("data/divisions.toml", EMBEDDED)
            .expect("the shipped divisions file is checked by tests")
    }

    /// `DIR/divisions.toml` if present, else the built-in tree.
    pub fn for_data_dir(dir: &Path) -> Result<Divisions, DivisionsError> {
        let path = dir.join("divisions.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Divisions::from_toml(&path.display().to_string(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Divisions::embedded()),
            Err(source) => Err(DivisionsError::Io {
                file: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses and checks the code hierarchy (a village's code starts with its town's, and so on).
    pub fn from_toml(file: &str, text: &str) -> Result<Divisions, DivisionsError> {
        let bad = |message: String| DivisionsError::Invalid {
            file: file.to_string(),
            message,
        };
        let d: Divisions = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&d.county.code, 6) {
            return Err(bad(format!(
                "county code {:?} must be 6 digits",
                d.county.code
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &d.towns {
            if !digits(&t.code, 9) || !t.code.starts_with(&d.county.code) {
                return Err(bad(format!(
                    "town {} code {:?} must be 9 digits under the county",
                    t.name, t.code
                )));
            }
            if !seen.insert(t.code.clone()) {
                return Err(bad(format!("duplicate code {}", t.code)));
            }
            for v in &t.villages {
                if !digits(&v.code, 12) || !v.code.starts_with(&t.code) {
                    return Err(bad(format!(
                        "village {} code {:?} must be 12 digits under town {}",
                        v.name, v.code, t.code
                    )));
                }
                if !seen.insert(v.code.clone()) {
                    return Err(bad(format!("duplicate code {}", v.code)));
                }
            }
        }
        Ok(d)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_tree_has_the_nine_towns_and_both_pilots() {
        let d = Divisions::embedded();
        assert_eq!(d.county.name, "襄垣县");
        let names: Vec<&str> = d.towns.iter().map(|t| t.name.as_str()).collect();
        for n in [
            "古韩镇",
            "王桥镇",
            "侯堡镇",
            "夏店镇",
            "虒亭镇",
            "西营镇",
            "王村镇",
            "下良镇",
            "善福镇",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
        let pilots: Vec<String> = d
            .towns
            .iter()
            .flat_map(|t| {
                t.villages
                    .iter()
                    .filter(|v| v.pilot)
                    .map(move |v| format!("{}{}", t.name, v.name))
            })
            .collect();
        assert_eq!(pilots, ["古韩镇南关村", "善福镇善福村"]);
    }

    #[test]
    fn codes_must_nest() {
        let text = "[county]\ncode=\"140423\"\nname=\"x\"\n[[town]]\ncode=\"140423100\"\nname=\"t\"\n[[town.village]]\ncode=\"140424100201\"\nname=\"v\"\n";
        assert!(Divisions::from_toml("t", text).is_err());
    }
}
