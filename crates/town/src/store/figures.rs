//! What the county pages summarise over every case, computed by the store from its case index
//! (the embedded backend's compact summaries, PostgreSQL's columns with `GROUP BY`) rather than by
//! reading and parsing every case record. The functions here are the embedded backend's way and
//! the reference the store tests hold PostgreSQL's queries to.

use std::collections::{BTreeMap, BTreeSet};

use bianmin_protocol::CaseState;
use chrono::NaiveDate;

use super::inbox::CaseSummary;

/// One village's case counts for the figures table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VillageCounts {
    pub village: String,
    pub cases: u32,
    /// 办结, delivered or rated.
    pub completed: u32,
    /// Of those, finished by their deadline (or with no deadline to be late against).
    pub completed_on_time: u32,
    /// Accepted or forwarded, the clock not paused, and a working day past the deadline.
    pub overdue_now: u32,
}

/// One phone number that one agent gave for several applicants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneUse {
    pub device: String,
    /// The agent's name on those cases (the first in sort order should it differ).
    pub agent: String,
    /// Unmasked: the page masks it.
    pub phone: String,
    /// Distinct applicants (by ID number).
    pub applicants: u32,
    pub cases: u32,
}

/// Whether a case in `state` counts as finished.
pub fn is_done(state: CaseState) -> bool {
    matches!(
        state,
        CaseState::Completed | CaseState::Delivered | CaseState::Rated
    )
}

/// Whether the case is overdue as the county counts it: its clock runs unpaused (`due`) and the
/// deadline is before `today`, the last working day up to the China date
/// (`WorkCalendar::last_working_day`), so the count agrees with the clock's own countdown.
pub fn overdue(s: &CaseSummary, today: NaiveDate) -> bool {
    s.due.is_some_and(|d| d < today)
}

/// The per-village counts, by village code.
pub fn village_counts<'a>(
    summaries: impl IntoIterator<Item = &'a CaseSummary>,
    today: NaiveDate,
) -> Vec<VillageCounts> {
    let mut per: BTreeMap<&str, VillageCounts> = BTreeMap::new();
    for s in summaries {
        let f = per.entry(&s.village).or_default();
        f.cases += 1;
        if overdue(s, today) {
            f.overdue_now += 1;
        }
        if is_done(s.state) {
            f.completed += 1;
            // No completion date or no promised deadline: nothing to be late against.
            if !matches!((s.completed_on, s.deadline), (Some(at), Some(dl)) if at > dl) {
                f.completed_on_time += 1;
            }
        }
    }
    per.into_iter()
        .map(|(v, mut f)| {
            f.village = v.to_string();
            f
        })
        .collect()
}

/// Phone numbers one agent (device) gave for at least `min_applicants` different applicants,
/// most applicants first, then by device and phone.
pub fn shared_phones<'a>(
    summaries: impl IntoIterator<Item = &'a CaseSummary>,
    min_applicants: u32,
) -> Vec<PhoneUse> {
    let mut per: BTreeMap<(&str, &str), (&str, BTreeSet<&str>, u32)> = BTreeMap::new();
    for s in summaries.into_iter().filter(|s| !s.phone.is_empty()) {
        let e = per
            .entry((&s.device, &s.phone))
            .or_insert_with(|| (&s.agent, BTreeSet::new(), 0));
        // The first name in sort order, as PostgreSQL's `min(agent)`: one device, one agent.
        e.0 = e.0.min(&s.agent);
        e.1.insert(&s.id_number);
        e.2 += 1;
    }
    let mut out: Vec<PhoneUse> = per
        .into_iter()
        .filter(|(_, (_, ids, _))| ids.len() as u32 >= min_applicants)
        .map(|((device, phone), (agent, ids, cases))| PhoneUse {
            device: device.to_string(),
            agent: agent.to_string(),
            phone: phone.to_string(),
            applicants: ids.len() as u32,
            cases,
        })
        .collect();
    sort_phone_uses(&mut out);
    out
}

/// The order both backends return shared phones in.
pub fn sort_phone_uses(out: &mut [PhoneUse]) {
    out.sort_by(|a, b| {
        (std::cmp::Reverse(a.applicants), &a.device, &a.phone).cmp(&(
            std::cmp::Reverse(b.applicants),
            &b.device,
            &b.phone,
        ))
    });
}
