//! The embedded backend's secondary keys for the county lists ([`super::super::county_lists`]):
//! one key per list a case is on, in the `county_ix` tree, ordered as the list reads, and the
//! counters in `meta` (open cases per device, cases per village for the inbox's total). They are written in the same transaction as the case
//! and its inbox summary (and rebuilt with the index), so they never drift from the records.

use chrono::Datelike;

use crate::store::county_lists::{CountyList, ListCursor};
use crate::store::inbox::CaseSummary;

const OVERDUE: u8 = b'O';
const EXTENSION: u8 = b'E';
const PAUSED: u8 = b'P';
const OFFICE: u8 = b'F';

/// The `meta` key prefix of the counters kept with the index (big-endian u64 values).
pub const COUNTER_PREFIX: &[u8] = b"ix/";
/// Open cases per device: `ix/open/DEVICE`.
pub const OPEN_PREFIX: &[u8] = b"ix/open/";
/// Cases per village (the inbox's total): `ix/village/CODE`.
const VILLAGE_PREFIX: &[u8] = b"ix/village/";

/// The secondary keys of a case with summary `s`.
pub fn keys(s: &CaseSummary) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(due) = s.due {
        out.push(overdue_key(i64::from(due.num_days_from_ce()), &s.id));
    }
    if s.extension_waiting {
        out.push(id_key(EXTENSION, &s.id));
    }
    if s.paused {
        out.push(id_key(PAUSED, &s.id));
    }
    if let Some(at) = s.forwarded_at {
        out.push(office_key(&s.office, at.timestamp_micros(), &s.id));
    }
    out
}

/// The counter key of `device`'s open cases.
pub fn open_key(device: &str) -> Vec<u8> {
    let mut k = OPEN_PREFIX.to_vec();
    k.extend_from_slice(device.as_bytes());
    k
}

/// The counter key of `village`'s cases.
pub fn village_key(village: &str) -> Vec<u8> {
    let mut k = VILLAGE_PREFIX.to_vec();
    k.extend_from_slice(village.as_bytes());
    k
}

/// Day numbers and microseconds as bytes that sort like the numbers (sign bit flipped).
fn sortable(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

fn overdue_key(day: i64, id: &str) -> Vec<u8> {
    let mut k = vec![OVERDUE];
    k.extend_from_slice(&sortable(day));
    k.extend_from_slice(id.as_bytes());
    k
}

fn id_key(kind: u8, id: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(id.as_bytes());
    k
}

/// An office key never holds a NUL, so the prefix of one office is not that of another.
fn office_prefix(office: &str) -> Vec<u8> {
    let mut k = vec![OFFICE];
    k.extend_from_slice(office.as_bytes());
    k.push(0);
    k
}

fn office_key(office: &str, micros: i64, id: &str) -> Vec<u8> {
    let mut k = office_prefix(office);
    k.extend_from_slice(&sortable(micros));
    k.extend_from_slice(id.as_bytes());
    k
}

/// The case number at the end of a secondary key of `list`.
pub fn id_of(list: &CountyList, key: &[u8]) -> Option<String> {
    let skip = match list {
        CountyList::Overdue { .. } => 1 + 8,
        CountyList::Extensions | CountyList::Paused => 1,
        CountyList::Office(o) => o.len() + 2 + 8,
    };
    String::from_utf8(key.get(skip..)?.to_vec()).ok()
}

/// The key range of `list` after `after`, in the order the list reads forward; `reverse`
/// says to walk it from its end.
pub fn range(list: &CountyList, after: Option<&ListCursor>) -> (Vec<u8>, Vec<u8>, bool) {
    // Keys just past a given key: the key with a zero byte appended.
    let past = |mut k: Vec<u8>| {
        k.push(0);
        k
    };
    match list {
        CountyList::Overdue { today } => {
            let end = overdue_key(i64::from(today.num_days_from_ce()), "");
            let start = match after {
                Some(a) => past(overdue_key(a.key, &a.id)),
                None => vec![OVERDUE],
            };
            (start, end, false)
        }
        CountyList::Extensions | CountyList::Paused => {
            let kind = if *list == CountyList::Extensions {
                EXTENSION
            } else {
                PAUSED
            };
            let start = match after {
                Some(a) => past(id_key(kind, &a.id)),
                None => vec![kind],
            };
            (start, vec![kind + 1], false)
        }
        CountyList::Office(o) => {
            let prefix = office_prefix(o);
            let end = match after {
                Some(a) => office_key(o, a.key, &a.id),
                None => {
                    let mut e = prefix.clone();
                    *e.last_mut().expect("the prefix ends in NUL") = 1;
                    e
                }
            };
            (prefix, end, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_lists() {
        assert!(overdue_key(-1, "z") < overdue_key(0, "a"));
        assert!(overdue_key(5, "a") < overdue_key(5, "b"));
        assert!(office_key("a", 1, "x") < office_key("a", 2, "a"));
        assert!(office_key("a", i64::MAX, "x") < office_key("ab", 0, "a"));
        let l = CountyList::Office("a".into());
        assert_eq!(
            id_of(&l, &office_key("a", 7, "1404-1")).as_deref(),
            Some("1404-1")
        );
    }
}
