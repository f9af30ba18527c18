//! The county's case lists read through an index rather than every case: the overdue list
//! (/county and /county/supervision), the extension requests waiting for approval, the stopped
//! clocks, a county office's inbox of forwarded cases, and the roster's open cases per device.
//!
//! Pages are found by keyset pagination as in the town inbox ([`super::inbox`]): the cursor is
//! the sort key of the last row shown, so no page repeats or skips a case whatever is written
//! between two requests, and a backend reads only the records of the cases on the page.
//! [`matches()`] and [`sort_key`] are the rules both backends follow (the embedded backend's
//! secondary keys, PostgreSQL's partial indexes) and what the store tests compare them with.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::inbox::CaseSummary;
use super::StoredCase;

/// Most rows one page of a county list may hold.
pub const MAX_LIST_PAGE: usize = 200;

/// Which county list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountyList {
    /// Overdue on `today` (the last working day up to the China date, as for the figures):
    /// the clock runs unpaused and the deadline is before it. Most overdue first.
    Overdue { today: NaiveDate },
    /// An extension request waits for the county's decision. By case number.
    Extensions,
    /// The clock is stopped (补正 or an outside step). By case number.
    Paused,
    /// Forwarded to this county office (its catalog receiver key). Newest forward first.
    Office(String),
}

/// Where a page ended: the sort key of its last row. `key` is the due date's day number for
/// [`CountyList::Overdue`], the forward time in microseconds for [`CountyList::Office`], and 0
/// for the lists ordered by case number alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor {
    pub key: i64,
    pub id: String,
}

impl ListCursor {
    /// `key.id`: URL-safe for case numbers.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.key, self.id)
    }

    pub fn decode(s: &str) -> Option<ListCursor> {
        let (key, id) = s.split_once('.')?;
        Some(ListCursor {
            key: key.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// One page of a county list and how it continues.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub cases: Vec<StoredCase>,
    /// The cursor of the next page, when there is one.
    pub next: Option<ListCursor>,
}

/// Whether a case belongs on `list`.
pub fn matches(s: &CaseSummary, list: &CountyList) -> bool {
    match list {
        CountyList::Overdue { today } => super::figures::overdue(s, *today),
        CountyList::Extensions => s.extension_waiting,
        CountyList::Paused => s.paused,
        CountyList::Office(o) => s.forwarded_at.is_some() && s.office == *o,
    }
}

/// The sort key of a case on `list` (only meaningful when it [`matches()`]). The office list is
/// newest first, so its order is this key descending; the others ascending.
pub fn sort_key(s: &CaseSummary, list: &CountyList) -> ListCursor {
    let key = match list {
        CountyList::Overdue { .. } => s.due.map(|d| i64::from(d.num_days_from_ce())),
        CountyList::Office(_) => s.forwarded_at.map(|t| t.timestamp_micros()),
        CountyList::Extensions | CountyList::Paused => None,
    };
    ListCursor {
        key: key.unwrap_or(0),
        id: s.id.clone(),
    }
}

/// Whether the list runs from the largest key down (the office inbox: newest forward first).
pub fn descending(list: &CountyList) -> bool {
    matches!(list, CountyList::Office(_))
}

/// The day a cursor key of the overdue list stands for.
pub fn key_day(key: i64) -> Option<NaiveDate> {
    i32::try_from(key)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// The forward time a cursor key of the office list stands for.
pub fn key_time(key: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(key)
}

/// The reference: one page of `list` picked from every summary. The store tests hold both
/// backends' index walks to it.
pub fn pick<'a>(
    summaries: impl IntoIterator<Item = &'a CaseSummary>,
    list: &CountyList,
    after: Option<&ListCursor>,
    limit: usize,
) -> (Vec<String>, Option<ListCursor>) {
    let limit = limit.clamp(1, MAX_LIST_PAGE);
    let mut keyed: Vec<ListCursor> = summaries
        .into_iter()
        .filter(|s| matches(s, list))
        .map(|s| sort_key(s, list))
        .filter(|k| match after {
            None => true,
            Some(a) if descending(list) => k < a,
            Some(a) => k > a,
        })
        .collect();
    keyed.sort();
    if descending(list) {
        keyed.reverse();
    }
    let more = keyed.len() > limit;
    keyed.truncate(limit);
    let next = more.then(|| keyed.last().cloned()).flatten();
    (keyed.into_iter().map(|k| k.id).collect(), next)
}

/// Open (unfinished) cases per responsible device, by device id: the reference for
/// [`super::TownStore::open_cases_by_device`].
pub fn open_by_device<'a>(
    summaries: impl IntoIterator<Item = &'a CaseSummary>,
) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for s in summaries.into_iter().filter(|s| s.open) {
        *out.entry(s.device.clone()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_round_trips() {
        for c in [
            ListCursor {
                key: -5,
                id: "14.2026-01".into(),
            },
            ListCursor {
                key: 1_700_000_000_000_000,
                id: String::new(),
            },
        ] {
            assert_eq!(ListCursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(ListCursor::decode("x.y"), None);
        assert_eq!(ListCursor::decode("nodot"), None);
    }
}
