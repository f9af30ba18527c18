//! China time (UTC+8) for pages and deadlines: deadlines, overdue flags and the dates shown to
//! residents are calendar days in China, whatever the server's own time zone.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// Today in China.
pub fn china_today() -> NaiveDate {
    china_date(Utc::now())
}

/// The China calendar day of `t`.
pub fn china_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&china()).date_naive()
}

/// `2026-11-28 14:05`, China time: how pages show an instant.
pub fn china_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Seconds since the Unix epoch with sub-second precision, for rate-limit buckets that several
/// servers share (an `Instant` means nothing to another process).
pub fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}
