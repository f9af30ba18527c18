//! Item search by name, code or pinyin initials (e.g. "dbsq" finds 低保申请).
//!
//! Initials are computed at runtime from the `pinyin` crate's dictionary, so a county that adds or
//! renames items in the catalog gets working search without anyone maintaining a table.

use pinyin::ToPinyin;

/// The lower-case pinyin initials of `text`; ASCII letters and digits are kept, other characters dropped.
pub fn initials(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c.to_pinyin() {
            Some(p) => p.first_letter().chars().next(),
            None if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            None => None,
        })
        .collect()
}

/// A precomputed search key for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchKey {
    name: String,
    code: String,
    initials: String,
}

impl SearchKey {
    pub fn new(code: &str, name: &str) -> SearchKey {
        SearchKey {
            name: name.to_string(),
            code: code.to_ascii_lowercase(),
            initials: initials(name),
        }
    }

    /// Whether the query (already trimmed) matches: a substring of the name, the code, or of the initials.
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim();
        if q.is_empty() {
            return true;
        }
        if self.name.contains(q) {
            return true;
        }
        let lower = q.to_ascii_lowercase();
        if q.is_ascii() {
            return self.code == lower || self.initials.contains(&lower);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_common_items() {
        assert_eq!(initials("低保申请"), "dbsq");
        assert_eq!(initials("残疾人证"), "cjrz");
    }

    #[test]
    fn matches_name_code_and_initials() {
        let k = SearchKey::new("V11", "城乡居民最低生活保障申请");
        assert!(k.matches("最低生活"));
        assert!(k.matches("v11"));
        assert!(k.matches("zdshbz"));
        assert!(k.matches("CXJM"));
        assert!(!k.matches("养老"));
        assert!(!k.matches("xyz"));
    }
}
