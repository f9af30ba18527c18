//! A per-client token bucket for the public pages (resident receipt pages, county login).
//!
//! Small and dependency-free on purpose: the public routes are few and the bucket map is pruned,
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
        RateConfig { burst: 60.0, per_second: 1.0 }
    }
}

/// The buckets.
#[derive(Default)]
pub struct Limiter {
    config: Mutex<RateConfig>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
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
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * c.per_second < c.burst);
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
}

/// Middleware for the public routes: 429 with a Chinese page when the client's bucket is empty.
pub async fn public(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        // In-process tests without a socket all count as one client.
        .unwrap_or_else(|| "local".to_string());
    match state.feedback.limiter.take(&client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let mut resp = crate::resident::message_page(
                StatusCode::TOO_MANY_REQUESTS,
                "访问过于频繁",
                "您的访问过于频繁，请稍后再试。",
            )
            .into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
            resp
        }
    }
}
