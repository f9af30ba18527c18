//! Working-day arithmetic for 限时办结: deadlines from promised days, with weekends and a holiday table.
//!
//! The rule (BRIEF §3): the deadline is the N-th working day counted from the day after
//! acceptance; a 补正 restarts the clock at the new acceptance. Holidays and make-up working
//! days (调休) are data (`assets/catalog/holidays.toml`), because they change every year.
//!
//! A year whose 放假安排 the State Council has not published yet (it does so late in the year
//! before) still has the holidays that fall on fixed dates under 《全国年节及纪念日放假办法》
//! (国务院令第798号, 2024年修订, from 2025): 元旦 1 January, 劳动节 1–2 May, 国庆节 1–3
//! October. The lunar holidays (春节, 清明, 端午, 中秋) and the 调休 of such a year are unknown, so a
//! deadline reaching into it is provisional ([`WorkCalendar::is_provisional`]) and errs early,
//! never counting a statutory day off as a working day.

pub mod clock;

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The table shipped with the app, part of the catalog it ships with; later tables arrive as part of
/// published catalog versions (a new year's 放假安排 needs no release).
pub const DEFAULT_HOLIDAYS: &str = include_str!("../../../assets/catalog/holidays.toml");

/// A holiday table that cannot be used.
#[derive(Debug, Error)]
pub enum CalendarError {
    #[error("holiday table is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("holiday table year {year}: bad date or range {entry:?}")]
    Entry { year: i32, entry: String },
}

#[derive(Deserialize)]
struct Table {
    #[serde(default)]
    year: Vec<HolidayYear>,
}

/// One year's 放假安排 as the State Council publishes it: days off and make-up working days, each a
/// date `YYYY-MM-DD` or an inclusive range `YYYY-MM-DD..YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayYear {
    pub year: i32,
    #[serde(default)]
    pub off: Vec<String>,
    #[serde(default)]
    pub work: Vec<String>,
}

/// Which days are working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    /// Weekdays that are days off.
    holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are working days (调休上班).
    makeup_days: BTreeSet<NaiveDate>,
    /// Years the table covers with their published 放假安排; empty for a weekends-only calendar.
    published: BTreeSet<i32>,
}

/// Holidays on fixed solar dates under 《全国年节及纪念日放假办法》 (2024 revision): 元旦,
/// 劳动节 (two days), 国庆节 (three days).
fn statutory_fixed_date(day: NaiveDate) -> bool {
    matches!(
        (day.month(), day.day()),
        (1, 1) | (5, 1) | (5, 2) | (10, 1..=3)
    )
}

impl WorkCalendar {
    /// Only weekends are off.
    pub fn weekends_only() -> WorkCalendar {
        WorkCalendar::default()
    }

    /// The calendar shipped in `assets/catalog/holidays.toml`.
    pub fn shipped() -> WorkCalendar {
        WorkCalendar::from_toml(DEFAULT_HOLIDAYS)
            .expect("the shipped holiday table is checked by tests")
    }

    /// Parses a holiday table (see `assets/catalog/holidays.toml` for the format).
    pub fn from_toml(text: &str) -> Result<WorkCalendar, CalendarError> {
        let table: Table = toml::from_str(text)?;
        WorkCalendar::from_years(&table.year)
    }

    /// The calendar of published years' tables.
    pub fn from_years(years: &[HolidayYear]) -> Result<WorkCalendar, CalendarError> {
        let mut cal = WorkCalendar::default();
        for y in years {
            cal.published.insert(y.year);
            for entry in &y.off {
                cal.holidays.extend(parse_entry(y.year, entry)?);
            }
            for entry in &y.work {
                cal.makeup_days.extend(parse_entry(y.year, entry)?);
            }
        }
        Ok(cal)
    }

    /// Adds days off (e.g. a local holiday).
    pub fn add_holiday(&mut self, day: NaiveDate) {
        self.makeup_days.remove(&day);
        self.holidays.insert(day);
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.makeup_days.contains(&day) {
            return true;
        }
        if self.holidays.contains(&day) {
            return false;
        }
        if self.beyond_table(day.year()) && statutory_fixed_date(day) {
            return false;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// A year the table should cover and does not (yet): after the last published year.
    fn beyond_table(&self, year: i32) -> bool {
        self.published.last().is_some_and(|last| year > *last)
    }

    /// Whether the working days from `from` to `to` run into a year whose 放假安排 is not in the
    /// table yet: a deadline counted over them may move once it is published.
    pub fn is_provisional(&self, from: NaiveDate, to: NaiveDate) -> bool {
        let (a, b) = if from <= to { (from, to) } else { (to, from) };
        (a.year()..=b.year()).any(|y| self.beyond_table(y))
    }

    /// The latest working day on or before `day`: a deadline before it has had a working day
    /// pass since, which is what overdue means (`working_days_between(day, deadline) < 0`).
    pub fn last_working_day(&self, day: NaiveDate) -> NaiveDate {
        let mut d = day;
        // A year has far fewer than 366 days off in a row; the bound only guards a broken table.
        for _ in 0..366 {
            if self.is_working_day(d) {
                return d;
            }
            d = d - Days::new(1);
        }
        day
    }

    /// The `days`-th working day after `start` (not counting `start` itself).
    /// With `days == 0` the answer is `start`.
    pub fn add_working_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        let mut d = start;
        let mut left = days;
        while left > 0 {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days from the day after `from` up to and including `to`; negative when `to` is
    /// before `from`. Used for countdowns ("还剩3个工作日") and overdue counts.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        let (a, b, sign) = if to >= from {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut n = 0i64;
        let mut d = a;
        while d < b {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                n += 1;
            }
        }
        sign * n
    }

    /// The deadline for a case accepted on `accepted_on` with `promised_days` working days.
    pub fn deadline(&self, accepted_on: NaiveDate, promised_days: u32) -> NaiveDate {
        let due = self.add_working_days(accepted_on, promised_days);
        if self.is_provisional(accepted_on, due) {
            tracing::warn!(%accepted_on, %due, "deadline reaches a year whose holiday arrangement is not in the table; add it to assets/catalog/holidays.toml");
        }
        due
    }
}

/// Whether a case with this deadline is overdue on `today` (the deadline day itself is on time).
pub fn is_overdue(deadline: NaiveDate, today: NaiveDate) -> bool {
    today > deadline
}

fn parse_entry(year: i32, entry: &str) -> Result<Vec<NaiveDate>, CalendarError> {
    let bad = || CalendarError::Entry {
        year,
        entry: entry.to_string(),
    };
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| bad());
    match entry.split_once("..") {
        None => Ok(vec![parse(entry)?]),
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a || (b - a).num_days() > 31 {
                return Err(bad());
            }
            Ok(a.iter_days().take_while(|d| *d <= b).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn counts_from_the_day_after_acceptance_and_skips_weekends() {
        let cal = WorkCalendar::weekends_only();
        // Friday 2026-11-27 + 5 working days = Friday 2026-12-04.
        assert_eq!(cal.deadline(d(2026, 11, 27), 5), d(2026, 12, 4));
        // Accepted on a Saturday: Monday is day 1.
        assert_eq!(cal.deadline(d(2026, 11, 28), 1), d(2026, 11, 30));
        assert_eq!(cal.deadline(d(2026, 11, 28), 0), d(2026, 11, 28));
    }

    #[test]
    fn national_day_week_and_makeup_saturday() {
        let cal = WorkCalendar::shipped();
        assert!(!cal.is_working_day(d(2026, 10, 1)));
        assert!(
            cal.is_working_day(d(2026, 10, 10)),
            "Saturday 2026-10-10 is a make-up working day"
        );
        // Accepted Wednesday 2026-09-30: Oct 1-7 off, Thu 8 and Fri 9 count, Sat 10 is a working day.
        assert_eq!(cal.deadline(d(2026, 9, 30), 3), d(2026, 10, 10));
    }

    #[test]
    fn correction_restarts_the_clock() {
        let cal = WorkCalendar::weekends_only();
        let first = cal.deadline(d(2026, 11, 2), 10);
        let after_correction = cal.deadline(d(2026, 11, 9), 10);
        assert_eq!(first, d(2026, 11, 16));
        assert_eq!(after_correction, d(2026, 11, 23));
    }

    #[test]
    fn countdowns() {
        let cal = WorkCalendar::weekends_only();
        assert_eq!(cal.working_days_between(d(2026, 11, 27), d(2026, 12, 4)), 5);
        assert_eq!(
            cal.working_days_between(d(2026, 12, 4), d(2026, 11, 27)),
            -5
        );
        assert!(is_overdue(d(2026, 12, 4), d(2026, 12, 5)));
        assert!(!is_overdue(d(2026, 12, 4), d(2026, 12, 4)));
    }

    #[test]
    fn a_year_not_yet_published_keeps_its_fixed_date_holidays_and_is_provisional() {
        let cal = WorkCalendar::shipped();
        let last = *cal.published.last().unwrap();
        let next = last + 1;
        // 1 January of the next year is never a working day, whatever weekday it is.
        assert!(!cal.is_working_day(d(next, 1, 1)));
        assert!(!cal.is_working_day(d(next, 5, 2)));
        assert!(!cal.is_working_day(d(next, 10, 3)));
        // Accepted on 31 December with 1 promised day: not due on New Year's Day.
        let due = cal.deadline(d(last, 12, 31), 1);
        assert!(due > d(next, 1, 1), "{due}");
        assert!(cal.is_provisional(d(last, 12, 31), due));
        assert!(!cal.is_provisional(d(last, 3, 2), d(last, 3, 9)));
        // Published years follow the table only (2026-01-02 is off by the 2026 notice, 01-04 a
        // make-up working day), and a weekends-only calendar knows no holidays at all.
        assert!(!cal.is_working_day(d(2026, 1, 2)));
        assert!(cal.is_working_day(d(2026, 1, 4)));
        assert!(WorkCalendar::weekends_only().is_working_day(d(2027, 1, 1)));
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(
            WorkCalendar::from_toml("[[year]]\nyear = 2026\noff = [\"2026-02-30\"]\n").is_err()
        );
        assert!(WorkCalendar::from_toml(
            "[[year]]\nyear = 2026\noff = [\"2026-03-05..2026-03-01\"]\n"
        )
        .is_err());
        let shipped = WorkCalendar::from_toml(DEFAULT_HOLIDAYS).unwrap();
        assert!(shipped.holidays.contains(&d(2025, 1, 28)));
    }
}
