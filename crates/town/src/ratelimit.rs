//! Per-client rate limits for the public pages (resident receipt pages, county login) and for
//! enrolment (`POST /v1/enrol`, where only failed codes cost).
//!
//! A [`Limiter`] holds the limits; the buckets themselves are the store's
//! ([`crate::store::TownStore::take_token`]), so several servers over one database share them and
//! a guesser gains nothing by spreading requests over them. The client is the TCP peer address
//! (the server is reached directly, not through a proxy we could trust for `X-Forwarded-For`).

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::bucket::RateConfig;
use crate::error::ApiError;
use crate::store::{BucketKind, StoreError, TownStore};
use crate::AppState;

/// The limits of one family of buckets.
pub struct Limiter {
    kind: BucketKind,
    config: Mutex<RateConfig>,
}

impl Limiter {
    /// A limiter of `kind` with the given limits.
    pub fn new(kind: BucketKind, c: RateConfig) -> Limiter {
        Limiter {
            kind,
            config: Mutex::new(c),
        }
    }

    /// Changes the limits (configuration, tests).
    pub fn configure(&self, c: RateConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    fn config(&self) -> RateConfig {
        *self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token for `client` at `now` (Unix seconds); `Ok(Err(seconds to wait))` when none
    /// is left. Blocking (a store round trip).
    pub fn take(
        &self,
        store: &dyn TownStore,
        client: &str,
        now: f64,
    ) -> Result<Result<(), u64>, StoreError> {
        store.take_token(self.kind, client, self.config(), now)
    }

    /// Returns the token `take` reserved, for a request that turned out not to count.
    pub fn give_back(&self, store: &dyn TownStore, client: &str) -> Result<(), StoreError> {
        store.give_back_token(self.kind, client, self.config())
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

fn now() -> f64 {
    crate::time::unix_seconds(chrono::Utc::now())
}

/// Middleware for the public routes: 429 with a Chinese page when the client's bucket is empty.
pub async fn public(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let client = client_of(&req);
    let st = state.clone();
    let taken =
        crate::error::blocking(move || st.public_limiter.take(st.store.as_ref(), &client, now()))
            .await;
    match taken {
        Ok(Ok(())) => next.run(req).await,
        Ok(Err(wait)) => {
            let mut resp = crate::page::message_page(
                StatusCode::TOO_MANY_REQUESTS,
                "访问过于频繁",
                "您的访问过于频繁，请稍后再试。",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
            resp
        }
        Err(e) => crate::page::internal(e),
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
    let (st, c) = (state.clone(), client.clone());
    let taken =
        match crate::error::blocking(move || st.enrol_limiter.take(st.store.as_ref(), &c, now()))
            .await
        {
            Ok(t) => t,
            Err(e) => return e.into_response(),
        };
    if let Err(wait) = taken {
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
        let st = state.clone();
        if let Err(e) =
            crate::error::blocking(move || st.enrol_limiter.give_back(st.store.as_ref(), &client))
                .await
        {
            // The answer stands; the client merely keeps one token less until it refills.
            tracing::warn!(error = %e.message, "enrolment token not given back");
        }
    }
    resp
}
