//! The case model and its lifecycle: what a case holds and which state changes are legal.
//!
//! The same rules run on the phone and in the town centre, so a decision that arrives through
//! the changes feed is checked exactly as the town checked it. No I/O happens here: times are
//! passed in, storage is the outbox's business.

use std::collections::BTreeMap;

use bianmin_protocol::{
    AgentRef, Answer, Applicant, CaseId, CaseState, CaseSubmission, Decision, MaterialPages,
    MissingItem,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::deadline::WorkCalendar;

/// A state change that the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a case in state {from:?} cannot become {to:?}")]
pub struct TransitionError {
    pub from: CaseState,
    pub to: CaseState,
}

/// What can happen to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CaseEvent {
    /// 初审 passed (the caller ran `validate::precheck`).
    PrecheckPassed,
    /// The agent edits a prechecked case again.
    Reopen,
    /// Sealed into the outbox.
    Seal,
    /// The town centre's receipt arrived.
    Uploaded,
    /// A town decision, from the changes feed or from staff on the town side.
    Town(Decision),
}

impl CaseEvent {
    fn target(&self) -> CaseState {
        match self {
            CaseEvent::PrecheckPassed => CaseState::Ready,
            CaseEvent::Reopen => CaseState::Draft,
            CaseEvent::Seal => CaseState::Queued,
            CaseEvent::Uploaded => CaseState::Uploaded,
            CaseEvent::Town(d) => d.resulting_state(),
        }
    }
}

/// Whether the lifecycle (BRIEF §4) allows `from → to`.
pub fn allowed(from: CaseState, to: CaseState) -> bool {
    use CaseState::*;
    matches!(
        (from, to),
        (Draft, Ready)
            | (Ready, Draft)
            | (Ready, Queued)
            | (Queued, Uploaded)
            // The town may decide before the village has seen the receipt (the receipt was
            // lost on a dropped connection and the feed arrives first).
            | (Queued | Uploaded, Received)
            | (Queued | Uploaded | Received, Accepted | CorrectionRequested | Refused)
            | (Accepted, CorrectionRequested | Refused | Forwarded | Completed)
            | (Forwarded, Refused | Completed)
            // A correction is fixed in place: edited (draft), prechecked again, resealed.
            | (CorrectionRequested, Draft | Ready)
            | (Completed, Delivered | Rated)
            | (Delivered, Rated)
    )
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: CaseState,
    pub to: CaseState,
    pub at: DateTime<Utc>,
    /// Who made the change: an agent's device id, a staff member, `town`.
    pub by: String,
    #[serde(default)]
    pub note: String,
}

/// A case, as the phone and the town both hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub id: CaseId,
    /// The version being edited or last sealed; starts at 1, +1 on each resubmission.
    pub version: u32,
    pub item: String,
    pub village: String,
    pub applicant: Applicant,
    #[serde(default)]
    pub answers: BTreeMap<String, Answer>,
    #[serde(default)]
    pub materials: Vec<MaterialPages>,
    /// 首问负责: the agent who first took the case; never changes.
    pub responsible: AgentRef,
    pub state: CaseState,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub history: Vec<StateChange>,
    /// The latest 受理 date; the deadline counts from here.
    #[serde(default)]
    pub accepted_on: Option<NaiveDate>,
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
    /// The open 补正 list, while the case is being corrected.
    #[serde(default)]
    pub correction: Vec<MissingItem>,
    /// The pages (SHA-256) each material on the 补正 list had when the list arrived: a material
    /// counts as re-photographed once it holds a page not among them.
    #[serde(default)]
    pub correction_pages: BTreeMap<String, Vec<String>>,
    /// Latest decision details shown on the phone (refusal reason, result, delivery).
    #[serde(default)]
    pub last_decision: Option<Decision>,
    /// Versions already sealed; sealing again after a 补正 bumps `version`.
    #[serde(default)]
    pub sealed_versions: u32,
    /// The published catalog version whose definition of the item this case follows; 0 for cases
    /// made before catalogs were versioned (they follow the first version).
    #[serde(default)]
    pub catalog_version: u32,
}

/// Splits `group.ROW.column` into its parts; `None` for any other key.
fn cell_path(key: &str) -> Option<(&str, usize, &str)> {
    let mut parts = key.splitn(3, '.');
    let (group, row, col) = (parts.next()?, parts.next()?, parts.next()?);
    if group == "applicant" || col.is_empty() {
        return None;
    }
    Some((group, row.parse().ok()?, col))
}

/// Stores `value` in `slot`; whether that changed it.
fn replace(slot: &mut String, value: String) -> bool {
    if *slot == value {
        return false;
    }
    *slot = value;
    true
}

impl Case {
    /// A new draft.
    pub fn new(
        id: CaseId,
        item: &str,
        applicant: Applicant,
        responsible: AgentRef,
        now: DateTime<Utc>,
    ) -> Case {
        Case {
            id,
            version: 1,
            item: item.to_string(),
            village: responsible.village.clone(),
            applicant,
            answers: BTreeMap::new(),
            materials: Vec::new(),
            responsible,
            state: CaseState::Draft,
            created_at: now,
            history: Vec::new(),
            accepted_on: None,
            deadline: None,
            correction: Vec::new(),
            correction_pages: BTreeMap::new(),
            last_decision: None,
            sealed_versions: 0,
            catalog_version: 0,
        }
    }

    /// Whether `key` is on the open 补正 list and has no page taken since the list arrived.
    pub fn awaits_retake(&self, key: &str) -> bool {
        if !self.correction.iter().any(|m| m.key == key) {
            return false;
        }
        let before = self.correction_pages.get(key);
        let pages = self.materials.iter().find(|p| p.key == key);
        match (before, pages) {
            // A list from before the pages were recorded: flagged until resealed.
            (None, _) => true,
            (Some(before), Some(p)) => p.pages.iter().all(|a| before.contains(&a.sha256)),
            (Some(_), None) => true,
        }
    }

    /// The value of one form field: `applicant.name`, `applicant.id_number`, `applicant.phone`,
    /// `applicant.address`, an item answer by its key, or one cell of a repeat group as
    /// `group.ROW.column` (`members.0.name`); empty when unanswered.
    pub fn field(&self, key: &str) -> String {
        match key {
            "applicant.name" => self.applicant.name.clone(),
            "applicant.id_number" => self.applicant.id_number.clone(),
            "applicant.phone" => self.applicant.phone.clone(),
            "applicant.address" => self.applicant.address.clone(),
            k => match cell_path(k) {
                Some((group, row, col)) => self
                    .answers
                    .get(group)
                    .and_then(|a| a.rows().get(row))
                    .and_then(|r| r.get(col))
                    .cloned()
                    .unwrap_or_default(),
                None => self
                    .answers
                    .get(k)
                    .map(|a| a.choices().join("、"))
                    .unwrap_or_default(),
            },
        }
    }

    /// Sets one form field (keys as in [`Case::field`]); returns whether it changed. ID and phone
    /// numbers are normalised (trimmed, `x` upper-cased); an emptied answer is removed rather than
    /// stored as "". Setting a cell of a row past the end adds the rows up to it.
    pub fn set_field(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "applicant.name" => &mut self.applicant.name,
            "applicant.id_number" => {
                let v = value.trim().to_uppercase();
                return replace(&mut self.applicant.id_number, v);
            }
            "applicant.phone" => return replace(&mut self.applicant.phone, value.trim().into()),
            "applicant.address" => &mut self.applicant.address,
            k => {
                if let Some((group, row, col)) = cell_path(k) {
                    let mut rows = self
                        .answers
                        .get(group)
                        .map(|a| a.rows().to_vec())
                        .unwrap_or_default();
                    if rows.len() <= row {
                        rows.resize_with(row + 1, BTreeMap::new);
                    }
                    if value.trim().is_empty() {
                        rows[row].remove(col);
                    } else {
                        rows[row].insert(col.to_string(), value.to_string());
                    }
                    return self.set_answer(group, Some(Answer::Rows(rows)));
                }
                let answer = (!value.trim().is_empty()).then(|| Answer::Text(value.to_string()));
                return self.set_answer(k, answer);
            }
        };
        replace(slot, value.to_string())
    }

    /// Replaces a whole answer (a multiple choice, the rows of a repeat group); `None` or an empty
    /// answer removes it. Returns whether it changed.
    pub fn set_answer(&mut self, key: &str, answer: Option<Answer>) -> bool {
        match answer.filter(|a| !a.is_empty()) {
            None => self.answers.remove(key).is_some(),
            Some(a) => self.answers.insert(key.to_string(), a.clone()).as_ref() != Some(&a),
        }
    }

    /// Whether the agent may still change answers and materials.
    pub fn is_editable(&self) -> bool {
        matches!(
            self.state,
            CaseState::Draft | CaseState::Ready | CaseState::CorrectionRequested
        )
    }

    /// Whether the town completed the case and gave the result to the village agent to bring to
    /// the resident (代办员送达), who has not yet been recorded as delivering it.
    pub fn agent_brings(&self) -> bool {
        self.state == CaseState::Completed
            && matches!(
                &self.last_decision,
                Some(Decision::Completed {
                    delivery: bianmin_protocol::Delivery::AgentDelivery,
                    ..
                })
            )
    }

    /// Whether nothing more can happen to the case.
    pub fn is_final(&self) -> bool {
        matches!(self.state, CaseState::Refused | CaseState::Rated)
    }

    /// Whether the promised-days clock runs (accepted or forwarded, not finished).
    pub fn clock_running(&self) -> bool {
        matches!(self.state, CaseState::Accepted | CaseState::Forwarded)
    }

    /// Applies an event, or refuses it without changing anything.
    ///
    /// An acceptance carries its deadline: the town computes it once (`accept_decision`) and
    /// every copy of the case shows the same date the resident was promised.
    pub fn apply(
        &mut self,
        event: CaseEvent,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<CaseState, TransitionError> {
        let to = event.target();
        let from = self.state;
        if !allowed(from, to) {
            return Err(TransitionError { from, to });
        }
        let mut note = String::new();
        match &event {
            CaseEvent::Seal => {
                if self.sealed_versions > 0 {
                    // A resubmission after 补正 is the next version of the same case.
                    self.version = self.sealed_versions + 1;
                }
                self.sealed_versions = self.version;
                self.correction.clear();
                self.correction_pages.clear();
            }
            CaseEvent::Town(decision) => {
                match decision {
                    Decision::Accepted { deadline } => {
                        self.accepted_on = Some(at.date_naive());
                        self.deadline = Some(*deadline);
                    }
                    Decision::CorrectionRequested { missing, note: n } => {
                        self.correction = missing.clone();
                        self.correction_pages = missing
                            .iter()
                            .map(|m| {
                                let pages = self
                                    .materials
                                    .iter()
                                    .find(|p| p.key == m.key)
                                    .map(|p| p.pages.iter().map(|a| a.sha256.clone()).collect())
                                    .unwrap_or_default();
                                (m.key.clone(), pages)
                            })
                            .collect();
                        // The clock restarts at the next acceptance.
                        self.accepted_on = None;
                        self.deadline = None;
                        note = n.clone();
                    }
                    Decision::Refused { reason } => note = reason.clone(),
                    Decision::Forwarded { note: n } => note = n.clone(),
                    Decision::Completed { result, .. } => note = result.clone(),
                    _ => {}
                }
                // 已送达 and 评价 carry no details: the result and how it is delivered stay on show.
                if !matches!(decision, Decision::Delivered | Decision::Rated) {
                    self.last_decision = Some(decision.clone());
                }
            }
            _ => {}
        }
        self.history.push(StateChange {
            from,
            to,
            at,
            by: by.to_string(),
            note,
        });
        self.state = to;
        Ok(to)
    }

    /// The wire form of the sealed version.
    pub fn submission(&self, sealed_at: DateTime<Utc>) -> CaseSubmission {
        CaseSubmission {
            id: self.id.clone(),
            version: self.version,
            item: self.item.clone(),
            village: self.village.clone(),
            applicant: self.applicant.clone(),
            answers: self.answers.clone(),
            materials: self.materials.clone(),
            responsible: self.responsible.clone(),
            sealed_at,
            catalog_version: self.catalog_version,
        }
    }

    /// The case as the town first sees it: built from a submission, in state `Received`.
    pub fn from_submission(sub: &CaseSubmission, received_at: DateTime<Utc>) -> Case {
        let mut c = Case::new(
            sub.id.clone(),
            &sub.item,
            sub.applicant.clone(),
            sub.responsible.clone(),
            sub.sealed_at,
        );
        c.village = sub.village.clone();
        c.version = sub.version;
        c.sealed_versions = sub.version;
        c.answers = sub.answers.clone();
        c.materials = sub.materials.clone();
        c.catalog_version = sub.catalog_version;
        c.state = CaseState::Received;
        c.history.push(StateChange {
            from: CaseState::Queued,
            to: CaseState::Received,
            at: received_at,
            by: "town".to_string(),
            note: String::new(),
        });
        c
    }

    /// The 受理 decision for a case accepted on `accepted_on`, with its deadline counted from
    /// the next day in working days.
    pub fn accept_decision(
        accepted_on: NaiveDate,
        promised_days: u32,
        calendar: &WorkCalendar,
    ) -> Decision {
        Decision::Accepted {
            deadline: calendar.deadline(accepted_on, promised_days),
        }
    }

    /// Whether the case is past its deadline on `today`.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.clock_running()
            && self
                .deadline
                .is_some_and(|d| crate::deadline::is_overdue(d, today))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianmin_protocol::Delivery;

    fn at(day: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 11, day)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
            .and_utc()
    }

    fn draft() -> Case {
        let agent = AgentRef {
            device_id: "K7Q2MX".into(),
            name: "李代办".into(),
            village: "140423101201".into(),
        };
        Case::new(
            "140423101201-20261102-K7Q2MX-0001".into(),
            "V11",
            Applicant::default(),
            agent,
            at(2),
        )
    }

    fn step(c: &mut Case, e: CaseEvent, day: u32) -> Result<CaseState, TransitionError> {
        c.apply(e, "test", at(day))
    }

    #[test]
    fn full_lifecycle_with_a_correction() {
        let mut c = draft();
        step(&mut c, CaseEvent::PrecheckPassed, 2).unwrap();
        step(&mut c, CaseEvent::Seal, 2).unwrap();
        assert_eq!(c.version, 1);
        step(&mut c, CaseEvent::Uploaded, 2).unwrap();
        step(&mut c, CaseEvent::Town(Decision::Received), 2).unwrap();
        let missing = vec![MissingItem {
            key: "household_register".into(),
            note: "户口簿本人页不清晰".into(),
        }];
        step(
            &mut c,
            CaseEvent::Town(Decision::CorrectionRequested {
                missing: missing.clone(),
                note: String::new(),
            }),
            3,
        )
        .unwrap();
        assert_eq!(c.correction, missing);
        assert!(c.is_editable());
        // Flagged until a new page is taken for it; an old page left in place does not count.
        let page = |sha: &str| bianmin_protocol::AttachmentRef {
            name: format!("{sha}.jpg"),
            sha256: sha.into(),
            bytes: 1,
            mime: "image/jpeg".into(),
        };
        assert!(c.awaits_retake("household_register"));
        assert!(!c.awaits_retake("id_card"));
        c.materials.push(bianmin_protocol::MaterialPages {
            key: "household_register".into(),
            pages: vec![page("new")],
        });
        assert!(!c.awaits_retake("household_register"));
        step(&mut c, CaseEvent::PrecheckPassed, 4).unwrap();
        step(&mut c, CaseEvent::Seal, 4).unwrap();
        assert_eq!(
            c.version, 2,
            "a resubmission is the next version of the same case"
        );
        assert!(c.correction.is_empty());
        assert!(c.correction_pages.is_empty());
        step(&mut c, CaseEvent::Uploaded, 4).unwrap();
        let accept = Case::accept_decision(at(9).date_naive(), 10, &WorkCalendar::weekends_only());
        step(&mut c, CaseEvent::Town(accept), 9).unwrap();
        assert_eq!(
            c.deadline,
            Some(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap())
        );
        assert!(!c.is_overdue(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()));
        assert!(c.is_overdue(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()));
        step(
            &mut c,
            CaseEvent::Town(Decision::Completed {
                result: "已批准".into(),
                delivery: Delivery::AgentDelivery,
            }),
            12,
        )
        .unwrap();
        step(&mut c, CaseEvent::Town(Decision::Delivered), 13).unwrap();
        step(&mut c, CaseEvent::Town(Decision::Rated), 13).unwrap();
        assert!(c.is_final());
        assert_eq!(
            c.responsible.device_id, "K7Q2MX",
            "首问负责 survives every hand-over"
        );
        assert_eq!(c.history.len(), 12);
    }

    #[test]
    fn illegal_transitions_are_typed_and_change_nothing() {
        let mut c = draft();
        let before = c.clone();
        let err = step(&mut c, CaseEvent::Seal, 2).unwrap_err();
        assert_eq!(
            err,
            TransitionError {
                from: CaseState::Draft,
                to: CaseState::Queued
            }
        );
        assert_eq!(c, before);
        let accept = Decision::Accepted {
            deadline: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        };
        assert!(step(&mut c, CaseEvent::Town(accept), 2).is_err());
    }

    #[test]
    fn final_states_accept_nothing() {
        for to in CaseState::ALL {
            assert!(!allowed(CaseState::Refused, to));
            assert!(!allowed(CaseState::Rated, to));
        }
    }

    #[test]
    fn submission_round_trip_keeps_the_case() {
        let mut c = draft();
        c.answers.insert("household_size".into(), "3".into());
        step(&mut c, CaseEvent::PrecheckPassed, 2).unwrap();
        step(&mut c, CaseEvent::Seal, 2).unwrap();
        let sub = c.submission(at(2));
        let town = Case::from_submission(&sub, at(3));
        assert_eq!(town.state, CaseState::Received);
        assert_eq!(town.answers, c.answers);
        assert_eq!(town.responsible, c.responsible);
    }
}
