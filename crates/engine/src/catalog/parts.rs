//! A catalog as content-addressed parts (`lists`, `contacts`, `item/V01` …): how versions are stored,
//! hashed, signed and delivered, so a phone on a weak signal fetches only the items that changed.

use bianmin_protocol::sync::{CatalogPart, CatalogPartRef};
use sha2::{Digest, Sha256};

use super::{Catalog, CatalogError, CatalogMeta, Contact, Divisions, Item, Receiver};
use crate::deadline::HolidayYear;

/// Lower-case hex SHA-256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Catalog {
    /// The hash of the canonical JSON: the identity of a version's content.
    pub fn hash(&self) -> String {
        content_hash(self.to_json().as_bytes())
    }

    /// The parts in canonical order with their JSON bodies.
    pub fn parts(&self) -> Vec<CatalogPart> {
        let mut out = vec![
            CatalogPart {
                name: "lists".into(),
                body: json(&self.lists),
            },
            CatalogPart {
                name: "contacts".into(),
                body: json(&self.contacts),
            },
            CatalogPart {
                name: "holidays".into(),
                body: json(&self.holidays),
            },
        ];
        // Only a version that carries the tree has the part, so older versions keep their parts.
        if let Some(d) = &self.divisions {
            out.push(CatalogPart {
                name: "divisions".into(),
                body: json(d),
            });
        }
        if !self.receivers.is_empty() {
            out.push(CatalogPart {
                name: "receivers".into(),
                body: json(&self.receivers),
            });
        }
        out.extend(self.items.iter().map(|i| CatalogPart {
            name: format!("item/{}", i.code),
            body: json(i),
        }));
        out
    }

    /// Names and hashes of [`Catalog::parts`].
    pub fn part_refs(&self) -> Vec<CatalogPartRef> {
        self.parts()
            .iter()
            .map(|p| CatalogPartRef {
                name: p.name.clone(),
                hash: content_hash(p.body.as_bytes()),
            })
            .collect()
    }

    /// Reassembles a catalog from its parts and validates it; `source` names it in errors.
    pub fn from_parts(source: &str, parts: &[CatalogPart]) -> Result<Catalog, CatalogError> {
        let parse_err = |name: &str, e: serde_json::Error| CatalogError::Parse {
            file: format!("{source}: part {name}"),
            message: e.to_string(),
        };
        let mut lists: Vec<CatalogMeta> = Vec::new();
        let mut contacts: Vec<Contact> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        let mut holidays: Vec<HolidayYear> = Vec::new();
        let mut divisions: Option<Divisions> = None;
        let mut receivers: Vec<Receiver> = Vec::new();
        for p in parts {
            match p.name.as_str() {
                "lists" => {
                    lists = serde_json::from_str(&p.body).map_err(|e| parse_err(&p.name, e))?
                }
                "contacts" => {
                    contacts = serde_json::from_str(&p.body).map_err(|e| parse_err(&p.name, e))?
                }
                "holidays" => {
                    holidays = serde_json::from_str(&p.body).map_err(|e| parse_err(&p.name, e))?
                }
                "divisions" => {
                    divisions =
                        Some(serde_json::from_str(&p.body).map_err(|e| parse_err(&p.name, e))?)
                }
                "receivers" => {
                    receivers = serde_json::from_str(&p.body).map_err(|e| parse_err(&p.name, e))?
                }
                n if n.starts_with("item/") => {
                    items.push(serde_json::from_str(&p.body).map_err(|e| parse_err(n, e))?)
                }
                n => {
                    return Err(CatalogError::Parse {
                        file: source.to_string(),
                        message: format!("unknown catalog part '{n}'"),
                    })
                }
            }
        }
        Catalog::new(source, lists, items, contacts)?
            .with_holidays(source, holidays)?
            .with_divisions(source, divisions)?
            .with_receivers(source, receivers)
    }
}

/// The JSON body of one part.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("catalog parts always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_reassemble_to_the_same_catalog_and_hash() {
        let c = Catalog::embedded().unwrap();
        let back = Catalog::from_parts("test", &c.parts()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.hash(), c.hash());
        let refs = c.part_refs();
        assert_eq!(refs.len(), 5 + c.items().len());
        assert_eq!(refs[3].name, "divisions");
        assert_eq!(refs[4].name, "receivers");
        assert_eq!(refs[5].name, format!("item/{}", c.items()[0].code));
        assert!(!back.holidays().is_empty());
        assert_eq!(back.divisions().unwrap().county.name, "襄垣县");
    }

    #[test]
    fn a_version_without_divisions_keeps_its_parts_and_hash() {
        let c = Catalog::embedded().unwrap();
        let old = c.clone().with_divisions("test", None).unwrap();
        // The JSON of a version published before divisions were reference data has no key for them.
        assert!(!old.to_json().contains("\"divisions\""));
        assert!(old.parts().iter().all(|p| p.name != "divisions"));
        let back = Catalog::from_parts("test", &old.parts()).unwrap();
        assert_eq!(back.hash(), old.hash());
        assert!(back.divisions().is_none());
    }

    #[test]
    fn a_broken_tree_is_refused_with_the_offending_entry() {
        let mut parts = Catalog::embedded().unwrap().parts();
        let d = parts.iter_mut().find(|p| p.name == "divisions").unwrap();
        d.body = d.body.replacen("140423100201", "140424100201", 1);
        let e = Catalog::from_parts("v9", &parts).unwrap_err().to_string();
        assert!(e.contains("140424100201"), "{e}");
    }

    #[test]
    fn an_unknown_or_broken_part_is_refused() {
        let c = Catalog::embedded().unwrap();
        let mut parts = c.parts();
        parts[3].body.push('x');
        assert!(Catalog::from_parts("test", &parts).is_err());
        let mut parts = c.parts();
        parts.push(CatalogPart {
            name: "zzz".into(),
            body: "{}".into(),
        });
        assert!(Catalog::from_parts("test", &parts).is_err());
    }
}
