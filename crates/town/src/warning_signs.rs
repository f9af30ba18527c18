//! Warning signs of self-rating the county sees: one phone number given for many different
//! applicants of one agent (the agent's own phone, to receive the rating link), and ratings made
//! within minutes of the case reaching the town (while the agent still has the applicant, or
//! the phone, at hand).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Duration;

use crate::store::{Rating, StoredCase};

/// Distinct applicants on one phone number of one agent from which the county is warned.
pub const SHARED_PHONE_APPLICANTS: usize = 3;
/// A rating this soon after the town received the case is flagged.
pub const QUICK_RATING_MINUTES: i64 = 30;

/// One phone number given for several applicants by one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPhone {
    pub agent: String,
    pub device: String,
    /// `138****8000`: the county needs to recognise it, not to read it out.
    pub phone: String,
    pub applicants: usize,
    pub cases: usize,
}

/// A rating made soon after the case reached the town.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickRating {
    pub case_id: String,
    pub agent: String,
    /// Whether it counts (SMS link) or is a 现场评价.
    pub counted: bool,
    pub minutes: i64,
}

/// `13800138000` → `138****8000`.
pub fn mask_phone(phone: &str) -> String {
    let p: Vec<char> = phone.trim().chars().collect();
    if p.len() < 8 {
        return "*".repeat(p.len());
    }
    let head: String = p[..3].iter().collect();
    let tail: String = p[p.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Phone numbers that one agent gave for at least [`SHARED_PHONE_APPLICANTS`] different
/// applicants (by ID number), most applicants first.
pub fn shared_phones(cases: &[StoredCase]) -> Vec<SharedPhone> {
    let mut per: BTreeMap<(String, String), (String, BTreeSet<String>, usize)> = BTreeMap::new();
    for sc in cases {
        let c = &sc.case;
        let phone = c.applicant.phone.trim();
        if phone.is_empty() {
            continue;
        }
        let e = per
            .entry((c.responsible.device_id.clone(), phone.to_string()))
            .or_insert_with(|| (c.responsible.name.clone(), BTreeSet::new(), 0));
        e.1.insert(c.applicant.id_number.trim().to_ascii_uppercase());
        e.2 += 1;
    }
    let mut out: Vec<SharedPhone> = per
        .into_iter()
        .filter(|(_, (_, ids, _))| ids.len() >= SHARED_PHONE_APPLICANTS)
        .map(|((device, phone), (agent, ids, n))| SharedPhone {
            agent,
            device,
            phone: mask_phone(&phone),
            applicants: ids.len(),
            cases: n,
        })
        .collect();
    out.sort_by_key(|w| std::cmp::Reverse(w.applicants));
    out
}

/// The warnings of the phone uses the store found ([`crate::store::TownStore::shared_phones`]),
/// the numbers masked: the same as [`shared_phones`] over every case.
pub fn shared_phones_of(uses: Vec<crate::store::figures::PhoneUse>) -> Vec<SharedPhone> {
    let mut out: Vec<SharedPhone> = uses
        .into_iter()
        .map(|u| SharedPhone {
            agent: u.agent,
            device: u.device,
            phone: mask_phone(&u.phone),
            applicants: u.applicants as usize,
            cases: u.cases as usize,
        })
        .collect();
    out.sort_by_key(|w| std::cmp::Reverse(w.applicants));
    out
}

/// Ratings (counted or on-site) made within [`QUICK_RATING_MINUTES`] of the town receiving the
/// case, soonest first.
pub fn quick_ratings(cases: &[StoredCase], ratings: &[Rating]) -> Vec<QuickRating> {
    let by_id: HashMap<&str, &StoredCase> = cases.iter().map(|c| (c.case.id.as_str(), c)).collect();
    let mut out: Vec<QuickRating> = ratings
        .iter()
        .filter_map(|r| {
            let sc = by_id.get(r.case_id.as_str())?;
            let after = r.rated_at - sc.received_at;
            (after < Duration::minutes(QUICK_RATING_MINUTES)).then(|| QuickRating {
                case_id: r.case_id.clone(),
                agent: sc.case.responsible.name.clone(),
                counted: r.via.counts(),
                minutes: after.num_minutes().max(0),
            })
        })
        .collect();
    out.sort_by_key(|q| q.minutes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("123"), "***");
    }
}
