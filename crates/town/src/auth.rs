//! Request authentication: every call after enrolment is signed with the device's Ed25519 key.
//!
//! The signature covers method, path and query, timestamp, nonce, body hash and the upload
//! headers (`bianmin_protocol::sync::signing_string`). A request outside the timestamp window gets
//! 401 `clock_skew` (the answer's `X-Bianmin-Server-Time` lets the device correct itself); one with
//! a nonce already seen, from an unknown or revoked device, or with a bad signature gets 401; the
//! nonce is remembered only after the signature checked out, so forged requests cannot fill the cache.
//!
//! Nonces are kept in the town store, durably, until the request's timestamp leaves the window:
//! a request captured before a restart is still refused after it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use bianmin_protocol::sync::{
    signing_string, SignedParts, H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIMESTAMP,
    H_UPLOAD_LENGTH, H_UPLOAD_OFFSET, TIMESTAMP_WINDOW_SECS, UNSIGNED_PAYLOAD,
};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::digest::sha256_hex;
use crate::error::ApiError;
use crate::store::{DeviceRecord, StoreError, TownStore};
use crate::AppState;

/// The authenticated device, put into request extensions for the handlers.
#[derive(Debug, Clone)]
pub struct AuthDevice(pub DeviceRecord);

/// How often (seconds of server time) expired nonces are swept from the store. Entries live at
/// most `2 × TIMESTAMP_WINDOW_SECS` past their first use, plus up to this long until the sweep.
pub const NONCE_PRUNE_INTERVAL_SECS: i64 = 60;

/// Nonces of verified requests, per device, kept in the store while a replay could still pass the
/// timestamp check.
pub struct NonceCache {
    store: Arc<dyn TownStore>,
    /// Server time of the next sweep; `i64::MIN` so the first request after a start sweeps what
    /// expired while the server was down.
    next_prune: AtomicI64,
}

impl NonceCache {
    pub fn new(store: Arc<dyn TownStore>) -> NonceCache {
        NonceCache {
            store,
            next_prune: AtomicI64::new(i64::MIN),
        }
    }

    /// Records the nonce of a verified request stamped `ts`, arriving at server time `now`;
    /// `Ok(false)` if it was already used. Blocking (one store write and flush).
    pub fn check_and_insert(
        &self,
        device: &str,
        nonce: &str,
        ts: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let due = self.next_prune.load(Ordering::Relaxed);
        // One caller wins the sweep; the others go on without waiting for it.
        if now >= due
            && self
                .next_prune
                .compare_exchange(
                    due,
                    now + NONCE_PRUNE_INTERVAL_SECS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            let n = self.store.prune_nonces(now)?;
            tracing::debug!(forgotten = n, "expired nonces pruned");
        }
        // A copy of this request passes the timestamp check until `ts + window` and no longer;
        // counting from `ts`, not from `now`, keeps that exact whatever the device's clock offset.
        self.store
            .remember_nonce(device, nonce, ts + TIMESTAMP_WINDOW_SECS, now)
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    req.headers()
        .get(name)
        .ok_or_else(|| ApiError::unauthorized(format!("missing header {name}")))?
        .to_str()
        .map_err(|_| ApiError::unauthorized(format!("header {name} is not ASCII")))
}

fn opt_header<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The middleware.
pub async fn authenticate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let device_id = header(&req, H_DEVICE)?.to_string();
    let ts: i64 = header(&req, H_TIMESTAMP)?
        .parse()
        .map_err(|_| ApiError::unauthorized("timestamp is not a number"))?;
    let nonce = header(&req, H_NONCE)?.to_string();
    let claimed_hash = header(&req, H_CONTENT_SHA256)?.to_string();
    let sig_hex = header(&req, H_SIGNATURE)?.to_string();
    let now = chrono::Utc::now().timestamp();
    // `abs_diff`: a timestamp of i64::MIN must not overflow the subtraction.
    if now.abs_diff(ts) > TIMESTAMP_WINDOW_SECS as u64 {
        return Err(ApiError::clock_skew(now, ts));
    }
    if nonce.len() < 16 || nonce.len() > 128 {
        return Err(ApiError::unauthorized("nonce must be 16 to 128 characters"));
    }
    let (device, revoked) = {
        let st = state.clone();
        let id = device_id.clone();
        crate::error::blocking(move || Ok((st.store.device(&id)?, st.admin.is_revoked(&id)?)))
            .await?
    };
    let device = device.ok_or_else(|| ApiError::unauthorized("unknown device"))?;
    if device.revoked || revoked {
        return Err(ApiError::unauthorized("device has been revoked"));
    }
    let key_bytes: [u8; 32] = hex::decode(&device.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::internal("stored public key is malformed"))?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(ApiError::internal)?;
    let sig = hex::decode(&sig_hex)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| ApiError::unauthorized("signature is malformed"))?;

    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let message = signing_string(&SignedParts {
        method: method.as_str(),
        path_and_query: &path_and_query,
        timestamp: ts,
        nonce: &nonce,
        content_sha256: &claimed_hash,
        upload_offset: opt_header(&req, H_UPLOAD_OFFSET),
        upload_length: opt_header(&req, H_UPLOAD_LENGTH),
    });
    // Strict: no small-order keys or non-canonical signatures (a weak key once let one fixed
    // signature pass for every message).
    key.verify_strict(message.as_bytes(), &sig)
        .map_err(|_| ApiError::unauthorized("signature does not verify"))?;

    let (parts, body) = req.into_parts();
    let body = if claimed_hash == UNSIGNED_PAYLOAD {
        // Only attachment chunks stream unsigned: their bytes are checked against the content
        // hash in the URL before the upload is acknowledged.
        if !(method == Method::PATCH && parts.uri.path().starts_with("/v1/attachments/")) {
            return Err(ApiError::unauthorized(
                "an unsigned payload is only allowed for attachment chunks",
            ));
        }
        body
    } else {
        let bytes: Bytes = axum::body::to_bytes(body, state.limits.json_body)
            .await
            .map_err(|_| {
                ApiError::too_large(format!(
                    "request body exceeds {} bytes or was cut off",
                    state.limits.json_body
                ))
            })?;
        if sha256_hex(&bytes) != claimed_hash {
            return Err(ApiError::unauthorized(
                "body does not match its signed hash",
            ));
        }
        Body::from(bytes)
    };
    let fresh = {
        let st = state.clone();
        let id = device.id.clone();
        tokio::task::spawn_blocking(move || st.nonces.check_and_insert(&id, &nonce, ts, now))
            .await??
    };
    if !fresh {
        return Err(ApiError::unauthorized(
            "nonce already used (replayed request)",
        ));
    }
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(AuthDevice(device));
    Ok(next.run(req).await)
}
