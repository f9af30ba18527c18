//! `ApiError`: the one error type of the HTTP API, mapped to a status and an English JSON body.
//!
//! Internal failures (storage, I/O) are logged with their detail and answered with a bare
//! "internal error", so nothing about the server's files or database leaks to a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bianmin_protocol::sync::{ErrorBody, H_ERROR, H_UPLOAD_OFFSET};

/// An API failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub missing: Vec<String>,
    /// For upload conflicts: where the client must resume.
    pub upload_offset: Option<u64>,
    /// For 429: seconds until the client may try again (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            missing: Vec::new(),
            upload_offset: None,
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn malformed_json(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON for this route: {e}"),
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// A signed request stamped too far from the server's clock: the device clock is wrong.
    /// The answer's `X-Bianmin-Server-Time` (on every answer) lets the device correct itself.
    pub fn clock_skew(server_now: i64, request_ts: i64) -> ApiError {
        let off =
            (request_ts as i128 - server_now as i128).clamp(i64::MIN as i128, i64::MAX as i128);
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            bianmin_protocol::sync::CLOCK_SKEW,
            format!(
                "request timestamp is {off} s from the server clock (allowed: {} s); correct the device clock",
                bianmin_protocol::sync::TIMESTAMP_WINDOW_SECS
            ),
        )
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// Too many attempts from this client; `Retry-After` says when the next one may go through.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        // Never 0: a client told to retry at once would hammer the server again.
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }
    /// Logs the real cause and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
    pub fn with_missing(mut self, missing: Vec<String>) -> ApiError {
        self.missing = missing;
        self
    }
    pub fn with_offset(mut self, offset: u64) -> ApiError {
        self.upload_offset = Some(offset);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
            missing: self.missing,
        };
        let mut resp = (self.status, Json(body)).into_response();
        // The code again as a header: a HEAD answer has no body to carry it.
        resp.headers_mut()
            .insert(H_ERROR, HeaderValue::from_static(self.code));
        if let Some(o) = self.upload_offset {
            resp.headers_mut()
                .insert(H_UPLOAD_OFFSET, HeaderValue::from(o));
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            // Lost a race with another server: nothing was written, and the same request
            // sent again reads the new state (the phone retries a 503 by itself).
            crate::store::StoreError::Conflict(_) => {
                let mut a = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "concurrent_update",
                    "the case changed while this request was handled; send it again",
                );
                a.retry_after = Some(1);
                a
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}

/// Runs a blocking store call off the async workers; a storage failure or a panicked task is an
/// internal error. The one helper every handler uses (pages map its error with
/// [`crate::page::internal`]).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(crate::metrics::METRICS
        .store_call(tokio::task::spawn_blocking(f))
        .await??)
}
