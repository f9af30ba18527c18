//! One page of the town inbox, read through an index rather than every case: the filters, the
//! three orders, the cursor a page ends on, and the compact per-case summary the embedded
//! backend keeps in its index tree.
//!
//! A page is found by keyset pagination: the cursor is the sort key of the last row shown, so the
//! next page starts right after it whatever was added meanwhile (no offsets that shift), and
//! neither backend reads more than the summaries of the cases it skips.

use bianmin_protocol::CaseState;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoredCase;

/// Most rows one page may hold.
pub const MAX_PAGE: usize = 200;

/// How the clerk orders the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboxOrder {
    /// 先收先办: oldest received first.
    #[default]
    Oldest,
    /// Newest received first.
    Newest,
    /// Nearest deadline first; cases without a deadline (not yet accepted) after them, oldest
    /// received first.
    Deadline,
}

impl InboxOrder {
    pub fn parse(s: &str) -> Option<InboxOrder> {
        match s {
            "oldest" => Some(InboxOrder::Oldest),
            "newest" => Some(InboxOrder::Newest),
            "deadline" => Some(InboxOrder::Deadline),
            _ => None,
        }
    }
}

/// Which cases a page is drawn from.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    /// The villages in scope (already checked against the device's town).
    pub villages: Vec<String>,
    pub state: Option<CaseState>,
    /// Only overdue cases (`Some(true)`), or only those that are not: overdue means the
    /// deadline is before `today`.
    pub overdue: Option<bool>,
    /// The last working day up to the China date (`WorkCalendar::last_working_day`), so that a
    /// deadline on a Friday is not overdue over the weekend, as the clock's countdown says.
    pub today: NaiveDate,
    /// Part of a case number or of the applicant's name.
    pub search: Option<String>,
}

/// Where a page ended: the sort key of its last row. Opaque to clients (`encode`/`decode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCursor {
    pub deadline: Option<NaiveDate>,
    pub received_at: DateTime<Utc>,
    pub id: String,
}

impl InboxCursor {
    /// The cursor just after `sc` in any order.
    pub fn after(sc: &StoredCase) -> InboxCursor {
        InboxCursor {
            deadline: sc.case.deadline,
            received_at: sc.received_at,
            id: sc.case.id.clone(),
        }
    }

    /// `deadline|micros|id`, `-` for no deadline: URL-safe for case numbers.
    pub fn encode(&self) -> String {
        let d = self
            .deadline
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_else(|| "-".into());
        format!("{d}.{}.{}", self.received_at.timestamp_micros(), self.id)
    }

    pub fn decode(s: &str) -> Option<InboxCursor> {
        let mut parts = s.splitn(3, '.');
        let d = parts.next()?;
        let micros: i64 = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_string();
        let deadline = match d {
            "-" => None,
            d => Some(NaiveDate::parse_from_str(d, "%Y%m%d").ok()?),
        };
        Some(InboxCursor {
            deadline,
            received_at: DateTime::from_timestamp_micros(micros)?,
            id,
        })
    }

    /// The key this cursor sorts by in `order`, comparable with [`CaseSummary::sort_key`].
    fn sort_key(&self, order: InboxOrder) -> SortKey {
        SortKey::new(order, self.deadline, self.received_at, &self.id)
    }
}

/// One page and how it continues.
#[derive(Debug, Clone, Default)]
pub struct InboxPage {
    pub cases: Vec<StoredCase>,
    /// The cursor of the next page, when there is one.
    pub next: Option<InboxCursor>,
    /// How many cases match the filter, over all pages.
    pub total: u64,
}

/// A sort key: the deadline part is "none last", and `Newest` reverses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey(Option<(bool, Option<NaiveDate>)>, i64, String);

impl SortKey {
    fn new(order: InboxOrder, deadline: Option<NaiveDate>, at: DateTime<Utc>, id: &str) -> Self {
        let d = (order == InboxOrder::Deadline).then_some((deadline.is_none(), deadline));
        SortKey(d, at.timestamp_micros(), id.to_string())
    }
}

/// What the inbox needs of a case to filter and order it, without reading the whole record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSummary {
    pub id: String,
    pub village: String,
    pub state: CaseState,
    pub received_at: DateTime<Utc>,
    pub deadline: Option<NaiveDate>,
    /// The deadline while the working-day clock runs, else none: overdue means `due < today`.
    /// Computed by the engine's own rule when the case is written, so the index never needs to
    /// know which states stop the clock.
    pub due: Option<NaiveDate>,
    pub applicant: String,
    /// The China date the case was last 办结, for the county's on-time figures.
    pub completed_on: Option<NaiveDate>,
    /// The responsible agent's device and name, and the applicant's phone and ID number as
    /// given (trimmed; the ID number upper-cased): the county's shared-phone warning groups by
    /// them. Empty in an index entry written before they were kept (the index is rebuilt then).
    pub device: String,
    pub agent: String,
    pub phone: String,
    pub id_number: String,
    /// The county lists' fields ([`super::county_lists`]): an extension request waits for the
    /// county; the clock is stopped (补正 or an outside step); not finished (the roster's open
    /// cases); and the county office the case was forwarded to (empty if none), and when.
    /// False/empty in an entry written before they were kept (the index is rebuilt then).
    pub extension_waiting: bool,
    pub paused: bool,
    pub open: bool,
    pub office: String,
    pub forwarded_at: Option<DateTime<Utc>>,
}

impl CaseSummary {
    pub fn of(sc: &StoredCase) -> CaseSummary {
        CaseSummary {
            id: sc.case.id.clone(),
            village: sc.case.village.clone(),
            state: sc.case.state,
            received_at: sc.received_at,
            deadline: sc.case.deadline,
            due: due(sc),
            applicant: sc.case.applicant.name.clone(),
            completed_on: crate::feedback::completed_at(sc).map(crate::time::china_date),
            device: sc.case.responsible.device_id.clone(),
            agent: sc.case.responsible.name.clone(),
            phone: sc.case.applicant.phone.trim().to_string(),
            id_number: sc.case.applicant.id_number.trim().to_ascii_uppercase(),
            extension_waiting: sc.case.clock_running() && sc.clock.pending_extension().is_some(),
            paused: crate::clock::paused(sc).is_some(),
            open: !sc.case.is_final(),
            office: sc
                .county
                .as_ref()
                .map(|h| h.receiver.clone())
                .unwrap_or_default(),
            forwarded_at: sc.county.as_ref().map(|h| h.forwarded_at),
        }
    }

    /// Whether the case belongs on a page drawn with `f`.
    pub fn matches(&self, f: &InboxFilter) -> bool {
        f.villages.contains(&self.village)
            && f.state.is_none_or(|s| self.state == s)
            && f.overdue
                .is_none_or(|o| self.due.is_some_and(|d| d < f.today) == o)
            && f.search
                .as_deref()
                .is_none_or(|s| self.id.contains(s) || self.applicant.contains(s))
    }

    fn sort_key(&self, order: InboxOrder) -> SortKey {
        SortKey::new(order, self.deadline, self.received_at, &self.id)
    }

    /// The index key: received time (sortable bytes), then the case number.
    pub fn index_key(&self) -> Vec<u8> {
        index_key(self.received_at, &self.id)
    }

    /// A compact encoding for the embedded index (read for every case a page skips, so not JSON).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.id.len() + self.applicant.len());
        let mut field = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(b);
        };
        field(self.id.as_bytes());
        field(self.village.as_bytes());
        field(self.state.as_str().as_bytes());
        field(self.applicant.as_bytes());
        out.extend_from_slice(&self.received_at.timestamp_micros().to_be_bytes());
        out.extend_from_slice(&day(self.deadline).to_be_bytes());
        out.extend_from_slice(&day(self.due).to_be_bytes());
        // Appended later: an older entry ends here and decodes with these empty.
        out.extend_from_slice(&day(self.completed_on).to_be_bytes());
        let mut field = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(b);
        };
        field(self.device.as_bytes());
        field(self.agent.as_bytes());
        field(self.phone.as_bytes());
        field(self.id_number.as_bytes());
        // Appended later still (index version 3).
        let flags = u8::from(self.extension_waiting)
            | (u8::from(self.paused) << 1)
            | (u8::from(self.open) << 2)
            | (u8::from(self.forwarded_at.is_some()) << 3);
        out.push(flags);
        let at = self.forwarded_at.map(|t| t.timestamp_micros()).unwrap_or(0);
        out.extend_from_slice(&at.to_be_bytes());
        out.extend_from_slice(&(self.office.len() as u16).to_be_bytes());
        out.extend_from_slice(self.office.as_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Option<CaseSummary> {
        let mut rest = b;
        let mut field = || -> Option<String> {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let len = u16::from_be_bytes(*len) as usize;
            let (s, tail) = (tail.get(..len)?, tail.get(len..)?);
            rest = tail;
            String::from_utf8(s.to_vec()).ok()
        };
        let (id, village, state, applicant) = (field()?, field()?, field()?, field()?);
        let (micros, tail) = rest.split_first_chunk::<8>()?;
        let (deadline, tail) = tail.split_first_chunk::<4>()?;
        let (due, tail) = tail.split_first_chunk::<4>()?;
        let mut s = CaseSummary {
            id,
            village,
            state: CaseState::parse(&state)?,
            applicant,
            received_at: DateTime::from_timestamp_micros(i64::from_be_bytes(*micros))?,
            deadline: undate(i32::from_be_bytes(*deadline)),
            due: undate(i32::from_be_bytes(*due)),
            completed_on: None,
            device: String::new(),
            agent: String::new(),
            phone: String::new(),
            id_number: String::new(),
            extension_waiting: false,
            paused: false,
            open: false,
            office: String::new(),
            forwarded_at: None,
        };
        if tail.is_empty() {
            return Some(s);
        }
        let (completed_on, tail) = tail.split_first_chunk::<4>()?;
        s.completed_on = undate(i32::from_be_bytes(*completed_on));
        rest = tail;
        let mut field = || -> Option<String> {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let len = u16::from_be_bytes(*len) as usize;
            let (v, tail) = (tail.get(..len)?, tail.get(len..)?);
            rest = tail;
            String::from_utf8(v.to_vec()).ok()
        };
        (s.device, s.agent, s.phone, s.id_number) = (field()?, field()?, field()?, field()?);
        let Some((&flags, tail)) = rest.split_first() else {
            return Some(s);
        };
        let (at, tail) = tail.split_first_chunk::<8>()?;
        let (len, tail) = tail.split_first_chunk::<2>()?;
        let office = tail.get(..u16::from_be_bytes(*len) as usize)?;
        if office.len() != tail.len() {
            return None;
        }
        s.extension_waiting = flags & 1 != 0;
        s.paused = flags & 2 != 0;
        s.open = flags & 4 != 0;
        if flags & 8 != 0 {
            s.forwarded_at = Some(DateTime::from_timestamp_micros(i64::from_be_bytes(*at))?);
        }
        s.office = String::from_utf8(office.to_vec()).ok()?;
        Some(s)
    }
}

/// The deadline that makes a case overdue once passed: only while its clock runs unpaused.
pub fn due(sc: &StoredCase) -> Option<NaiveDate> {
    // A clock paused for an outside step (公示, 鉴定…) is not overdue whatever the date.
    sc.case
        .deadline
        .filter(|_| sc.case.clock_running() && sc.clock.open_pause().is_none())
}

/// `received_at` as big-endian bytes that sort like the time (sign bit flipped), then the id.
pub fn index_key(received_at: DateTime<Utc>, id: &str) -> Vec<u8> {
    let t = (received_at.timestamp_micros() as u64) ^ (1 << 63);
    let mut k = t.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

const NO_DAY: i32 = i32::MIN;

fn day(d: Option<NaiveDate>) -> i32 {
    use chrono::Datelike;
    d.map(|d| d.num_days_from_ce()).unwrap_or(NO_DAY)
}

fn undate(n: i32) -> Option<NaiveDate> {
    (n != NO_DAY)
        .then(|| NaiveDate::from_num_days_from_ce_opt(n))
        .flatten()
}

/// Picks one page from summaries in received order (`in_order`, oldest first): the embedded
/// backend's walk of its index. Returns the ids of the page, the next cursor and the total.
///
/// Oldest and newest walk the index from the cursor and stop a row after the page; the total
/// is counted over the summaries only. The deadline order sorts the matching summaries.
pub fn pick(
    in_order: impl DoubleEndedIterator<Item = CaseSummary>,
    f: &InboxFilter,
    order: InboxOrder,
    after: Option<&InboxCursor>,
    limit: usize,
) -> (Vec<CaseSummary>, Option<InboxCursor>, u64) {
    let limit = limit.clamp(1, MAX_PAGE);
    let from = after.map(|c| c.sort_key(order));
    let mut matching: Vec<CaseSummary> = match order {
        InboxOrder::Newest => in_order.rev().filter(|s| s.matches(f)).collect(),
        _ => in_order.filter(|s| s.matches(f)).collect(),
    };
    let total = matching.len() as u64;
    if order == InboxOrder::Deadline {
        matching.sort_by_cached_key(|s| s.sort_key(order));
    }
    let past = |s: &CaseSummary| match (&from, order) {
        (None, _) => true,
        (Some(k), InboxOrder::Newest) => s.sort_key(order) < *k,
        (Some(k), _) => s.sort_key(order) > *k,
    };
    let mut page: Vec<CaseSummary> = matching.into_iter().filter(past).take(limit + 1).collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = more.then(|| page.last()).flatten().map(|s| InboxCursor {
        deadline: s.deadline,
        received_at: s.received_at,
        id: s.id.clone(),
    });
    (page, next, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, day: u32, deadline: Option<u32>) -> CaseSummary {
        CaseSummary {
            id: id.into(),
            village: "v".into(),
            state: CaseState::Accepted,
            received_at: chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, day, 1, 0, 0).unwrap(),
            deadline: deadline.map(|d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap()),
            due: deadline.map(|d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap()),
            applicant: "王秀英".into(),
            completed_on: None,
            device: "DEV1".into(),
            agent: "李代办".into(),
            phone: "13800138000".into(),
            id_number: "14042319800101001X".into(),
            extension_waiting: false,
            paused: false,
            open: true,
            office: String::new(),
            forwarded_at: None,
        }
    }

    #[test]
    fn a_summary_round_trips_and_its_key_sorts_by_time() {
        let mut s = summary("1404-2026-0001", 3, Some(9));
        assert_eq!(CaseSummary::decode(&s.encode()), Some(s.clone()));
        let plain = s.encode();
        s.office = "县民政局".into();
        s.forwarded_at = DateTime::from_timestamp_micros(1_700_000_000_000_001);
        (s.paused, s.extension_waiting, s.open) = (true, true, false);
        assert_eq!(CaseSummary::decode(&s.encode()), Some(s.clone()));
        // An entry of index version 2 (before the county lists' fields) decodes with them unset.
        let v2 = CaseSummary::decode(&plain[..plain.len() - 11]).unwrap();
        assert_eq!((v2.open, v2.office.as_str()), (false, ""));
        let none = summary("x", 4, None);
        assert_eq!(CaseSummary::decode(&none.encode()), Some(none.clone()));
        assert!(CaseSummary::decode(&s.encode()[..10]).is_none());
        // An entry written before the county fields were kept still decodes, with them empty.
        let old_len = plain.len() - 11 - 4 - [4, 9, 11, 18].iter().map(|n| 2 + n).sum::<usize>();
        let old = CaseSummary::decode(&s.encode()[..old_len]).unwrap();
        assert_eq!((old.id.as_str(), old.device.as_str()), (s.id.as_str(), ""));
        assert!(CaseSummary::decode(&s.encode()[..old_len + 6]).is_none());
        let before = DateTime::from_timestamp_micros(-5).unwrap();
        assert!(index_key(before, "z") < s.index_key());
        assert!(s.index_key() < none.index_key());
    }

    #[test]
    fn the_cursor_round_trips() {
        let c = InboxCursor {
            deadline: NaiveDate::from_ymd_opt(2026, 12, 9),
            received_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: "14-2026.x".into(),
        };
        let none = InboxCursor {
            deadline: None,
            ..c.clone()
        };
        assert_eq!(InboxCursor::decode(&none.encode()), Some(none));
        assert_eq!(InboxCursor::decode(&c.encode()), Some(c.clone()));
        assert_eq!(InboxCursor::decode("garbage"), None);
    }

    #[test]
    fn pages_follow_each_order_without_gaps_or_repeats() {
        let all = vec![
            summary("a", 1, None),
            summary("b", 2, Some(9)),
            summary("c", 3, Some(4)),
            summary("d", 4, None),
            summary("e", 5, Some(4)),
        ];
        let f = InboxFilter {
            villages: vec!["v".into()],
            today: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            ..Default::default()
        };
        for (order, want) in [
            (InboxOrder::Oldest, "abcde"),
            (InboxOrder::Newest, "edcba"),
            (InboxOrder::Deadline, "cebad"),
        ] {
            let mut seen = String::new();
            let mut after = None;
            loop {
                let (page, next, total) =
                    pick(all.clone().into_iter(), &f, order, after.as_ref(), 2);
                assert_eq!(total, 5);
                seen.extend(page.iter().map(|s| s.id.as_str()));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            assert_eq!(seen, want, "{order:?}");
        }
    }

    #[test]
    fn filters_apply_to_summaries() {
        let mut s = summary("1404-0001", 1, Some(2));
        let mut f = InboxFilter {
            villages: vec!["v".into()],
            today: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
            overdue: Some(true),
            search: Some("秀英".into()),
            ..Default::default()
        };
        assert!(s.matches(&f));
        s.due = None; // clock stopped: not overdue whatever the deadline
        assert!(!s.matches(&f));
        f.overdue = None;
        f.search = Some("0001".into());
        assert!(s.matches(&f));
        f.villages = vec!["w".into()];
        assert!(!s.matches(&f));
    }
}
