//! What every answer of the town centre carries, and the pause allowed inside request bodies.
//!
//! - `X-Bianmin-Server-Time` (Unix seconds) on every answer, so a phone with a wrong clock can
//!   measure its offset from any reply, errors included (`docs/protocol.md`, clock skew);
//! - browser hardening for the HTML pages: a Content-Security-Policy that allows only the one
//!   stylesheet the pages inline (by hash), no scripts, no framing, forms posting back here;
//!   `X-Frame-Options` for browsers without CSP, `nosniff`, and no Referer (receipt links carry
//!   their token in the URL);
//! - request bodies may pause at most `Limits::body_idle` between two frames: a client that
//!   opens a body and goes silent holds its connection no longer than that.

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use bianmin_protocol::sync::H_SERVER_TIME;
use sha2::{Digest, Sha256};
use tower_http::timeout::TimeoutBody;

use crate::AppState;

/// The Content-Security-Policy of every answer. Styles are allowed by the hash of the one
/// inline stylesheet (`resident::CSS`), so an injected `<style>` or `style=` does nothing.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(crate::page::CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The middleware around the whole router.
pub async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let idle = state.limits.body_idle;
    let req = req.map(|b| Body::new(TimeoutBody::new(idle, b)));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        H_SERVER_TIME,
        HeaderValue::from(chrono::Utc::now().timestamp()),
    );
    let csp = HeaderValue::from_str(&CSP).expect("the policy is ASCII");
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    resp
}
