//! Token-bucket arithmetic for the rate limits, kept apart from where buckets are stored: the
//! embedded store keeps them in memory, PostgreSQL in a table several servers share, and both
//! refill and spend by these same rules.

use serde::{Deserialize, Serialize};

/// Bucket size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateConfig {
    /// Requests allowed in a burst.
    pub burst: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

impl Default for RateConfig {
    /// 60 requests at once, then one a second: plenty for a resident, slow for a guesser.
    fn default() -> RateConfig {
        RateConfig {
            burst: 60.0,
            per_second: 1.0,
        }
    }
}

impl RateConfig {
    /// Enrolment: 10 wrong or expired codes at once, then one every 20 s (3 a minute). Only
    /// failures cost, so a town hall enrolling a room of phones behind one address never meets it;
    /// 10 covers a trainee's typos, and 3 a minute leaves a guesser some 4,300 tries a day.
    pub const ENROLMENT: RateConfig = RateConfig {
        burst: 10.0,
        per_second: 1.0 / 20.0,
    };
}

/// One client's bucket: tokens left at `at` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    pub at: f64,
}

impl Bucket {
    /// A bucket first seen at `now`: full.
    pub fn full(c: RateConfig, now: f64) -> Bucket {
        Bucket {
            tokens: c.burst,
            at: now,
        }
    }

    /// Refills up to `now` and takes one token; `Err(seconds to wait)` when none is left. A clock
    /// that went back (another server's, a step) refills nothing rather than draining.
    pub fn take(&mut self, c: RateConfig, now: f64) -> Result<(), u64> {
        let elapsed = (now - self.at).max(0.0);
        self.tokens = (self.tokens + elapsed * c.per_second).min(c.burst);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / c.per_second.max(1e-6)).ceil() as u64)
        }
    }

    /// Returns a token taken for a request that turned out not to count, never beyond the burst.
    pub fn give_back(&mut self, c: RateConfig) {
        self.tokens = (self.tokens + 1.0).min(c.burst);
    }

    /// Whether the bucket would be full at `now`: such a bucket carries no information.
    pub fn is_full_at(&self, c: RateConfig, now: f64) -> bool {
        self.tokens + (now - self.at).max(0.0) * c.per_second >= c.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_configured_rate() {
        let c = RateConfig {
            burst: 2.0,
            per_second: 0.5,
        };
        let mut b = Bucket::full(c, 100.0);
        assert_eq!(b.take(c, 100.0), Ok(()));
        assert_eq!(b.take(c, 100.0), Ok(()));
        // Empty: one token comes back in 2 s at 0.5 a second.
        assert_eq!(b.take(c, 100.0), Err(2));
        assert_eq!(b.take(c, 101.0), Err(1));
        assert_eq!(b.take(c, 102.0), Ok(()));
        assert_eq!(b.take(c, 102.0), Err(2));
        // A clock that went back refills nothing and does not move the bucket back.
        assert_eq!(b.take(c, 50.0), Err(2));
        assert!(!b.is_full_at(c, 102.0));
        assert!(b.is_full_at(c, 106.0));
    }

    #[test]
    fn a_token_given_back_never_exceeds_the_burst() {
        let c = RateConfig {
            burst: 1.0,
            per_second: 1e-9,
        };
        let mut b = Bucket::full(c, 0.0);
        assert_eq!(b.take(c, 0.0), Ok(()));
        b.give_back(c);
        assert_eq!(b.take(c, 0.0), Ok(()));
        assert!(b.take(c, 0.0).is_err());
        b.give_back(c);
        b.give_back(c);
        assert_eq!(b.take(c, 0.0), Ok(()));
        assert!(
            b.take(c, 0.0).is_err(),
            "giving back twice must not exceed the burst of 1"
        );
    }
}
