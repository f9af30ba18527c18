//! The working-day clock of one case beyond its first deadline: pauses for an outside step
//! (公示, 鉴定, 听证, a county department) and extensions approved by a supervisor.
//!
//! The legal ground: 《中华人民共和国行政许可法》第四十五条 — time spent on 听证、招标、拍卖、
//! 检验、检测、检疫、鉴定 and 专家评审 is not counted in the decision period (the applicant is told
//! in writing how long it takes); 第四十二条 — a decision is due in 20 working days, extendable by
//! 10 working days with the approval of the head of the organ (负责人批准), the reason told to the
//! applicant; 第三十二条 — an application that needs 补正 is accepted (and its clock starts) from the
//! day the complete materials arrive, which the case model does already (a new 受理 computes a new
//! deadline), so a 补正 is a wait the clock does not run in, not a pause that resumes.
//!
//! Arithmetic: a pause begun on day B and ended on day E moves the deadline by the working days
//! after B up to and including E (`WorkCalendar::working_days_between(B, E)`): the day the pause
//! began is counted, the day it ended is not. While a pause is open the countdown is frozen at the
//! working days that were left on the day it began. An approved extension moves the deadline by its
//! days at once. The case's `deadline` always holds the deadline with every ended pause and approved
//! extension included, so every page that shows it is right without knowing about the clock.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::WorkCalendar;

/// Most working days one extension may add (《行政许可法》第四十二条: 可以延长十日).
pub const MAX_EXTENSION_DAYS: u32 = 10;

/// Why the clock is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// 补正: waiting for the applicant's complete materials (the clock restarts on the new 受理).
    Correction,
    /// 公示.
    Publicity,
    /// 检验、检测、检疫、鉴定、专家评审.
    Appraisal,
    /// 听证.
    Hearing,
    /// Waiting for a county department's step (征求意见, 审核).
    County,
}

impl PauseReason {
    /// The reasons staff may pause a running clock for (a 补正 is a decision, not a pause).
    pub const OUTSIDE_STEPS: [PauseReason; 4] = [
        PauseReason::Publicity,
        PauseReason::Appraisal,
        PauseReason::Hearing,
        PauseReason::County,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PauseReason::Correction => "补正",
            PauseReason::Publicity => "公示",
            PauseReason::Appraisal => "检验检测鉴定",
            PauseReason::Hearing => "听证",
            PauseReason::County => "县级部门办理",
        }
    }

    /// The rule that lets this time go uncounted, as shown beside the pause.
    pub fn legal_basis(self) -> &'static str {
        match self {
            PauseReason::Correction => "《行政许可法》第三十二条：补正后自收到全部补正材料之日起受理，重新计时",
            PauseReason::Publicity | PauseReason::County => {
                "法律法规规定的公示、征求意见等所需时间不计入办理期限（以事项办事指南为准）"
            }
            PauseReason::Appraisal | PauseReason::Hearing => {
                "《行政许可法》第四十五条：听证、检验、检测、检疫、鉴定和专家评审所需时间不计算在期限内"
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Correction => "correction",
            PauseReason::Publicity => "publicity",
            PauseReason::Appraisal => "appraisal",
            PauseReason::Hearing => "hearing",
            PauseReason::County => "county",
        }
    }

    pub fn parse(s: &str) -> Option<PauseReason> {
        [PauseReason::Correction]
            .into_iter()
            .chain(PauseReason::OUTSIDE_STEPS)
            .find(|r| r.as_str() == s)
    }
}

/// How a pause ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseEnd {
    pub on: NaiveDate,
    pub at: DateTime<Utc>,
    pub by: String,
    /// Working days the deadline moved by.
    pub days: u32,
}

/// One stop of the clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub reason: PauseReason,
    pub note: String,
    pub by: String,
    pub on: NaiveDate,
    pub at: DateTime<Utc>,
    /// Working days that were left when it began (the frozen countdown).
    pub left: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<PauseEnd>,
}

/// A supervisor's answer to an extension request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionDecision {
    pub approved: bool,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub note: String,
    /// The deadline after the decision.
    pub deadline: NaiveDate,
}

/// A request to extend the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub days: u32,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<ExtensionDecision>,
}

/// Pauses and extensions of one case, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClock {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
}

/// What the clock says today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "clock", rename_all = "snake_case")]
pub enum Countdown {
    /// Working days left (negative: overdue by that many).
    Running { left: i64 },
    /// Stopped since `since`, with `left` working days left when it stopped.
    Paused {
        reason: PauseReason,
        since: NaiveDate,
        left: i64,
    },
}

impl Countdown {
    /// Working days left, frozen while paused.
    pub fn left(self) -> i64 {
        match self {
            Countdown::Running { left } | Countdown::Paused { left, .. } => left,
        }
    }

    /// Overdue: running and past the deadline.
    pub fn overdue(self) -> bool {
        matches!(self, Countdown::Running { left } if left < 0)
    }

    /// "还剩3个工作日" / "已超期2个工作日" / "暂停计时（公示），剩余3个工作日".
    pub fn label(self) -> String {
        match self {
            Countdown::Running { left } if left >= 0 => format!("还剩{left}个工作日"),
            Countdown::Running { left } => format!("已超期{}个工作日", -left),
            Countdown::Paused { reason, left, .. } if left >= 0 => {
                format!("暂停计时（{}），剩余{left}个工作日", reason.label())
            }
            Countdown::Paused { reason, left, .. } => {
                format!("暂停计时（{}），已超期{}个工作日", reason.label(), -left)
            }
        }
    }
}

/// A clock change that is not allowed now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClockError {
    #[error("the clock is already paused")]
    AlreadyPaused,
    #[error("the clock is not paused")]
    NotPaused,
    #[error("the case has no running deadline")]
    NotRunning,
    #[error("a pause or an extension needs a reason")]
    NoReason,
    #[error("an extension adds 1 to {MAX_EXTENSION_DAYS} working days")]
    Days,
    #[error("an extension request is already waiting for a decision")]
    Pending,
    #[error("the deadline was extended once already")]
    AlreadyExtended,
    #[error("no extension request is waiting")]
    NoRequest,
}

impl CaseClock {
    /// The pause in progress, if any.
    pub fn open_pause(&self) -> Option<&Pause> {
        self.pauses.iter().rev().find(|p| p.ended.is_none())
    }

    /// The extension request waiting for a supervisor, if any.
    pub fn pending_extension(&self) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.decision.is_none())
    }

    /// Today's countdown to `deadline`.
    pub fn countdown(
        &self,
        deadline: NaiveDate,
        today: NaiveDate,
        cal: &WorkCalendar,
    ) -> Countdown {
        match self.open_pause() {
            Some(p) => Countdown::Paused {
                reason: p.reason,
                since: p.on,
                left: p.left,
            },
            None => Countdown::Running {
                left: cal.working_days_between(today, deadline),
            },
        }
    }

    /// Stops the clock on `today` for an outside step, with `left` working days left then
    /// (`WorkCalendar::working_days_between(today, deadline)`), which the countdown keeps.
    pub fn pause(
        &mut self,
        reason: PauseReason,
        note: &str,
        by: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
        left: i64,
    ) -> Result<(), ClockError> {
        if self.open_pause().is_some() {
            return Err(ClockError::AlreadyPaused);
        }
        if note.trim().is_empty() {
            return Err(ClockError::NoReason);
        }
        self.pauses.push(Pause {
            reason,
            note: note.trim().to_string(),
            by: by.to_string(),
            on: today,
            at,
            left,
            ended: None,
        });
        Ok(())
    }

    /// Starts the clock again on `today`; moves `deadline` by the working days it stood still and
    /// returns how many.
    pub fn resume(
        &mut self,
        deadline: &mut NaiveDate,
        by: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
        cal: &WorkCalendar,
    ) -> Result<u32, ClockError> {
        let p = self
            .pauses
            .iter_mut()
            .rev()
            .find(|p| p.ended.is_none())
            .ok_or(ClockError::NotPaused)?;
        let days = cal.working_days_between(p.on, today).max(0) as u32;
        *deadline = cal.add_working_days(*deadline, days);
        // The deadline itself may have been a day off (a hand-set date): land on a working day.
        while days > 0 && !cal.is_working_day(*deadline) {
            *deadline = cal.add_working_days(*deadline, 1);
        }
        p.ended = Some(PauseEnd {
            on: today,
            at,
            by: by.to_string(),
            days,
        });
        Ok(days)
    }

    /// Records a request for `days` more working days.
    pub fn request_extension(
        &mut self,
        days: u32,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ClockError> {
        if !(1..=MAX_EXTENSION_DAYS).contains(&days) {
            return Err(ClockError::Days);
        }
        if reason.trim().is_empty() {
            return Err(ClockError::NoReason);
        }
        if self.pending_extension().is_some() {
            return Err(ClockError::Pending);
        }
        if self.extended() {
            return Err(ClockError::AlreadyExtended);
        }
        self.extensions.push(Extension {
            days,
            reason: reason.trim().to_string(),
            by: by.to_string(),
            at,
            decision: None,
        });
        Ok(())
    }

    /// Whether an extension was approved already (the law allows one).
    pub fn extended(&self) -> bool {
        self.extensions
            .iter()
            .any(|e| e.decision.as_ref().is_some_and(|d| d.approved))
    }

    /// A supervisor's decision on the waiting request: on approval `deadline` moves by its days.
    pub fn decide_extension(
        &mut self,
        deadline: &mut NaiveDate,
        approved: bool,
        note: &str,
        by: &str,
        at: DateTime<Utc>,
        cal: &WorkCalendar,
    ) -> Result<u32, ClockError> {
        let e = self
            .extensions
            .iter_mut()
            .find(|e| e.decision.is_none())
            .ok_or(ClockError::NoRequest)?;
        let days = if approved { e.days } else { 0 };
        if approved {
            *deadline = cal.add_working_days(*deadline, days);
            if let Some(p) = self.pauses.iter_mut().rev().find(|p| p.ended.is_none()) {
                // Paused: the frozen countdown gains the days too.
                p.left += i64::from(days);
            }
        }
        e.decision = Some(ExtensionDecision {
            approved,
            by: by.to_string(),
            at,
            note: note.trim().to_string(),
            deadline: *deadline,
        });
        Ok(days)
    }

    /// Ends an open pause without moving the deadline (the case was decided or sent for 补正,
    /// which restarts the clock anyway).
    pub fn close(&mut self, by: &str, at: DateTime<Utc>, today: NaiveDate) {
        if let Some(p) = self.pauses.iter_mut().rev().find(|p| p.ended.is_none()) {
            p.ended = Some(PauseEnd {
                on: today,
                at,
                by: by.to_string(),
                days: 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn at() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn a_pause_across_the_national_day_holiday_moves_the_deadline_by_its_working_days() {
        let cal = WorkCalendar::shipped();
        // Accepted Monday 2026-09-21 with 10 working days; 1-7 October are off.
        let mut deadline = cal.deadline(d(2026, 9, 21), 10);
        let first = deadline;
        let mut clock = CaseClock::default();
        // Paused on Tuesday 2026-09-29 for 公示 (the day it began counts).
        clock
            .pause(
                PauseReason::Publicity,
                "公示5个工作日",
                "王芳",
                at(),
                d(2026, 9, 29),
                cal.working_days_between(d(2026, 9, 29), deadline),
            )
            .unwrap();
        let left_then = cal.working_days_between(d(2026, 9, 29), first);
        // While paused, the countdown stands still, however many days pass (the holiday too).
        for today in [d(2026, 9, 30), d(2026, 10, 3), d(2026, 10, 9)] {
            let c = clock.countdown(deadline, today, &cal);
            assert_eq!(
                c,
                Countdown::Paused {
                    reason: PauseReason::Publicity,
                    since: d(2026, 9, 29),
                    left: left_then
                }
            );
            assert!(!c.overdue());
        }
        assert_eq!(
            clock.pause(
                PauseReason::Hearing,
                "x",
                "王芳",
                at(),
                d(2026, 9, 30),
                cal.working_days_between(d(2026, 9, 30), deadline)
            ),
            Err(ClockError::AlreadyPaused)
        );
        // Resumed on Monday 2026-10-12: the pause covered 09-30, the make-up and ordinary working
        // days after the holiday up to and including 10-12, and none of the holiday's days off.
        let moved = clock
            .resume(&mut deadline, "王芳", at(), d(2026, 10, 12), &cal)
            .unwrap();
        let expected_moved = cal.working_days_between(d(2026, 9, 29), d(2026, 10, 12));
        assert_eq!(i64::from(moved), expected_moved);
        // 09-30, 10-08, 10-09, 10-10 (调休上班), 10-12: five working days; Oct 1-7 and Sun 10-11 are off.
        assert_eq!(moved, 5);
        assert_eq!(deadline, cal.add_working_days(first, 5));
        // After the resume, the days left are exactly the days that were left when it paused.
        assert_eq!(
            clock.countdown(deadline, d(2026, 10, 12), &cal),
            Countdown::Running { left: left_then }
        );
        assert_eq!(
            clock.resume(&mut deadline, "王芳", at(), d(2026, 10, 13), &cal),
            Err(ClockError::NotPaused)
        );
    }

    #[test]
    fn one_extension_of_at_most_ten_days_moves_the_deadline_only_when_approved() {
        let cal = WorkCalendar::weekends_only();
        let mut deadline = cal.deadline(d(2026, 11, 2), 20);
        let first = deadline;
        let mut clock = CaseClock::default();
        assert_eq!(
            clock.request_extension(11, "材料复杂", "王芳", at()),
            Err(ClockError::Days)
        );
        assert_eq!(
            clock.request_extension(5, " ", "王芳", at()),
            Err(ClockError::NoReason)
        );
        clock
            .request_extension(10, "需实地核查", "王芳", at())
            .unwrap();
        assert_eq!(
            clock.request_extension(3, "再延", "王芳", at()),
            Err(ClockError::Pending)
        );
        // Refused: nothing moves, and a new request may be made.
        assert_eq!(
            clock.decide_extension(&mut deadline, false, "理由不足", "张科长", at(), &cal),
            Ok(0)
        );
        assert_eq!(deadline, first);
        clock
            .request_extension(10, "需实地核查，已补充说明", "王芳", at())
            .unwrap();
        assert_eq!(
            clock.decide_extension(&mut deadline, true, "", "张科长", at(), &cal),
            Ok(10)
        );
        assert_eq!(deadline, cal.add_working_days(first, 10));
        assert_eq!(
            clock.request_extension(1, "再延", "王芳", at()),
            Err(ClockError::AlreadyExtended)
        );
        assert_eq!(
            clock.decide_extension(&mut deadline, true, "", "张科长", at(), &cal),
            Err(ClockError::NoRequest)
        );
    }

    #[test]
    fn an_overdue_case_paused_stays_overdue_in_its_frozen_count_but_is_not_flagged_running() {
        let cal = WorkCalendar::weekends_only();
        let deadline = d(2026, 11, 2);
        let mut clock = CaseClock::default();
        assert!(clock.countdown(deadline, d(2026, 11, 4), &cal).overdue());
        clock
            .pause(
                PauseReason::County,
                "等县住建局意见",
                "王芳",
                at(),
                d(2026, 11, 4),
                cal.working_days_between(d(2026, 11, 4), deadline),
            )
            .unwrap();
        let c = clock.countdown(deadline, d(2026, 11, 20), &cal);
        assert_eq!(c.left(), -2);
        assert_eq!(c.label(), "暂停计时（县级部门办理），已超期2个工作日");
    }
}
