//! Where the town centre's administrative tree (county → towns → villages) comes from.
//!
//! Divisions are reference data published with the catalog (`bianmin_engine::catalog::Divisions`), so
//! the county opens a service point by publishing a version, not by a release. Before a published version
//! carries them, and for a town centre's first version, `DATA/divisions.toml` overrides the tree shipped
//! in `assets/catalog/divisions.toml`. Because `enroll` runs beside a `serve` that holds the embedded
//! store's lock, every process that loads the published versions also mirrors the newest tree into
//! `DATA/published-divisions.toml`, which the administration commands read.

use std::path::{Path, PathBuf};

use bianmin_engine::catalog::Catalog;
pub use bianmin_engine::catalog::{County, Divisions, Town, Village};
use thiserror::Error;

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

/// The tree shipped with the built-in catalog.
pub fn embedded() -> Divisions {
    Catalog::embedded()
        .ok()
        .and_then(|c| c.divisions().cloned())
        .expect("the shipped catalog carries divisions (checked by tests)")
}

/// Parses and checks a divisions file (`[county]`, `[[town]]`, `[[town.village]]`).
pub fn from_toml(file: &str, text: &str) -> Result<Divisions, DivisionsError> {
    let bad = |message: String| DivisionsError::Invalid {
        file: file.to_string(),
        message,
    };
    let d: Divisions = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    d.check().map_err(bad)?;
    Ok(d)
}

fn read(path: &Path) -> Result<Option<Divisions>, DivisionsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => from_toml(&path.display().to_string(), &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DivisionsError::Io {
            file: path.display().to_string(),
            source,
        }),
    }
}

/// `DIR/divisions.toml` if present, else the shipped tree: what a version without divisions (and a
/// town centre's first version) uses.
pub fn for_data_dir(dir: &Path) -> Result<Divisions, DivisionsError> {
    Ok(read(&dir.join("divisions.toml"))?.unwrap_or_else(embedded))
}

/// The mirror of the newest published tree in the data directory.
pub fn mirror_path(dir: &Path) -> PathBuf {
    dir.join("published-divisions.toml")
}

/// Writes the mirror (atomically, so a reader never sees half a file); a no-op when unchanged.
pub fn write_mirror(dir: &Path, d: &Divisions) -> std::io::Result<()> {
    let path = mirror_path(dir);
    let text = toml::to_string(d).map_err(std::io::Error::other)?;
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = dir.join("published-divisions.toml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// What the administration commands check codes against on the embedded store: the mirror of
/// the newest published tree, else [`for_data_dir`].
pub fn for_commands(dir: &Path) -> Result<Divisions, DivisionsError> {
    match read(&mirror_path(dir))? {
        Some(d) => Ok(d),
        None => for_data_dir(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_tree_has_the_nine_towns_and_both_pilots() {
        let d = embedded();
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
        assert!(from_toml("t", text).is_err());
    }

    #[test]
    fn the_mirror_round_trips_and_wins_over_the_data_dir_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = embedded();
        let code = format!("{}299", d.towns[0].code);
        d.towns[0].villages.push(Village {
            code,
            name: "新村".into(),
            pilot: false,
            confirmed: false,
        });
        write_mirror(dir.path(), &d).unwrap();
        assert_eq!(for_commands(dir.path()).unwrap(), d);
        assert_eq!(for_data_dir(dir.path()).unwrap(), embedded());
    }
}
