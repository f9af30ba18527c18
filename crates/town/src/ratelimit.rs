//! A per-client token bucket for the public pages (resident receipt pages, county login) and for
//! enrolment (`POST /v1/enrol`, where only failed codes cost).
//!
//! Small and dependency-free on purpose: the limited routes are few and the bucket map is pruned,
//! so one mutex-guarded map is enough. The client is the TCP peer address (the server is reached
//! directly, not through a proxy we could trust for `X-Forwarded-For`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// Bucket size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// The buckets.
#[derive(Default)]
pub struct Limiter {
    config: Mutex<RateConfig>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// A limiter with the given limits.
    pub fn new(c: RateConfig) -> Limiter {
        Limiter {
            config: Mutex::new(c),
            buckets: Mutex::default(),
        }
    }

    /// Changes the limits (configuration, tests).
    pub fn configure(&self, c: RateConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    /// Takes one token for `client`; `Err(seconds to wait)` when none is left.
    pub fn take(&self, client: &str, now: Instant) -> Result<(), u64> {
        let c = *self.config.lock().unwrap_or_else(|p| p.into_inner());
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 50_000 {
            // Full buckets carry no information; drop them.
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * c.per_second < c.burst
            });
        }
        let (tokens, at) = b.entry(client.to_string()).or_insert((c.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * c.per_second).min(c.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / c.per_second.max(1e-6)).ceil() as u64)
        }
    }

    /// Returns the token `take` reserved, for a request that turned out not to count.
    pub fn give_back(&self, client: &str) {
        let burst = self.config.lock().unwrap_or_else(|p| p.into_inner()).burst;
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tokens, _)) = b.get_mut(client) {
            *tokens = (*tokens + 1.0).min(burst);
        }
    }
}

/// The client a request came from: its peer IP address.
fn client_of(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        // In-process tests without a socket all count as one client.
        .unwrap_or_else(|| "local".to_string())
}

/// Middleware for the public routes: 429 with a Chinese page when the client's bucket is empty.
pub async fn public(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let client = client_of(&req);
    match state.feedback.limiter.take(&client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let mut resp = crate::resident::message_page(
                StatusCode::TOO_MANY_REQUESTS,
                "访问过于频繁",
                "您的访问过于频繁，请稍后再试。",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
            resp
        }
    }
}

/// Middleware for `POST /v1/enrol`: only a failed code (401) costs a token.
///
/// The token is taken before the handler runs and given back unless the code was refused, so
/// concurrent guesses cannot all slip through while the bucket still shows one token. A client
/// whose bucket is empty gets 429 even with a good code: telling it apart would mean checking
/// the code, which is exactly the guess the limit exists to stop (the code stays unused).
pub async fn enrolment(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let client = client_of(&req);
    if let Err(wait) = state.enrol_limiter.take(&client, Instant::now()) {
        tracing::warn!(%client, "enrolment rate limit reached");
        return ApiError::rate_limited(
            format!("too many failed enrolment attempts from this address; try again in {wait} s"),
            wait,
        )
        .into_response();
    }
    let resp = next.run(req).await;
    // The enrol handler answers 401 only for an unknown, used or expired code.
    if resp.status() != StatusCode::UNAUTHORIZED {
        state.enrol_limiter.give_back(&client);
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn buckets_refill_at_the_configured_rate_and_are_per_client() {
        let l = Limiter::new(RateConfig {
            burst: 2.0,
            per_second: 0.5,
        });
        let t0 = Instant::now();
        assert_eq!(l.take("a", t0), Ok(()));
        assert_eq!(l.take("a", t0), Ok(()));
        // Empty: one token comes back in 2 s at 0.5 a second.
        assert_eq!(l.take("a", t0), Err(2));
        assert_eq!(l.take("b", t0), Ok(()));
        assert_eq!(l.take("a", t0 + Duration::from_secs(1)), Err(1));
        assert_eq!(l.take("a", t0 + Duration::from_secs(2)), Ok(()));
        assert_eq!(l.take("a", t0 + Duration::from_secs(2)), Err(2));
    }

    #[test]
    fn a_token_given_back_is_usable_again_but_never_beyond_the_burst() {
        let l = Limiter::new(RateConfig {
            burst: 1.0,
            per_second: 1e-9,
        });
        let t0 = Instant::now();
        assert_eq!(l.take("a", t0), Ok(()));
        l.give_back("a");
        assert_eq!(l.take("a", t0), Ok(()));
        assert!(l.take("a", t0).is_err());
        l.give_back("a");
        l.give_back("a");
        assert_eq!(l.take("a", t0), Ok(()));
        assert!(
            l.take("a", t0).is_err(),
            "giving back twice must not exceed the burst of 1"
        );
        // A client never seen has nothing to give back to and starts full.
        l.give_back("new");
        assert_eq!(l.take("new", t0), Ok(()));
        assert!(l.take("new", t0).is_err());
    }
}
