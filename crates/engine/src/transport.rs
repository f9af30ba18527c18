//! The HTTP client of the sync protocol: the only code in the engine that touches the network.
//!
//! Every call is signed with the device key (see `docs/protocol.md`), and every failure is
//! classified so the sync loop and the UI know what to do: `Offline` (no route to the town
//! centre: wait for the network), `Retryable` (timeouts, dropped connections, 5xx: back off and
//! retry), `Rejected` (the server refused this request: retrying the same thing will not help),
//! `Corrupt` (an attachment arrived whole but is not the content its SHA-256 names),
//! `ClockSkew` (the phone's clock is wrong even after one correction from the town's time).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bianmin_protocol::sync::{
    signing_string, ActionRequest, ActionResult, CatalogManifest, CatalogPartsRequest,
    CatalogPartsResponse, ChangesPage, EnrolRequest, EnrolResponse, ErrorBody, InboxPage, InboxRow,
    Receipt, SignedParts, StaffMember, StaffUnlock, UploadOffset, CLOCK_SKEW, H_CONTENT_SHA256,
    H_DEVICE, H_ERROR, H_NONCE, H_SERVER_TIME, H_SIGNATURE, H_TIMESTAMP, H_UPLOAD_LENGTH,
    H_UPLOAD_OFFSET, UNSIGNED_PAYLOAD,
};
use bianmin_protocol::CaseSubmission;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::case::Case;

mod documents;
pub use documents::{NoticeKind, MAX_DOCUMENT};

/// A classified transport failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransportError {
    /// The town centre cannot be reached at all (no network, DNS, connection refused).
    #[error("town centre unreachable: {0}")]
    Offline(String),
    /// A transient failure: timeout, connection dropped mid-request, server busy or failing.
    #[error("transient failure: {0}")]
    Retryable(String),
    /// The server asked to slow down (429): too many failed enrolment codes or page requests from
    /// this address. Transient; `retry_after_secs` is the server's `Retry-After`.
    #[error("rate limited by the town centre (retry after {retry_after_secs:?} s)")]
    Throttled { retry_after_secs: Option<u64> },
    /// The server answered and refused the request.
    #[error("rejected ({status}): {message}")]
    Rejected {
        status: u16,
        /// The server's stable error code (`conflict`, `missing_attachments`, `unauthorized`, ...).
        code: String,
        message: String,
        /// Attachment hashes the server still needs (`missing_attachments`).
        missing: Vec<String>,
        /// Where an upload must resume (`offset_mismatch`).
        upload_offset: Option<u64>,
    },
    /// An attachment arrived complete but does not hash to the SHA-256 that names it. Its bytes
    /// were discarded. Attachments are content-addressed and verified when uploaded, and TLS
    /// rules out damage on the way, so this means the town centre's stored copy is damaged (or
    /// something between rewrote the answer): asking again will not help, hence not transient.
    #[error("attachment {sha256} arrived damaged: its SHA-256 is {got}")]
    Corrupt { sha256: String, got: String },
    /// The town centre refused the request's timestamp (`clock_skew`): this device's clock is
    /// `offset_secs` behind the town's (negative: ahead). The transport corrects its clock and
    /// signs once more before it reports this, so seeing it means the second try failed too.
    #[error("device clock is {offset_secs} s off the town centre's")]
    ClockSkew { offset_secs: i64 },
}

impl TransportError {
    /// Whether trying again later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Offline(_)
                | TransportError::Retryable(_)
                | TransportError::Throttled { .. }
                // The offset is corrected now; the next run signs with the town's time.
                | TransportError::ClockSkew { .. }
        )
    }

    /// The device was revoked or its credential is no longer valid.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, TransportError::Rejected { status: 401, .. })
    }

    /// What to tell the agent, in plain Chinese.
    pub fn user_message(&self) -> String {
        match self {
            TransportError::Offline(_) => "连不上镇中心：当前没有网络或镇中心地址有误。办件已安全保存在手机里，有网络时会自动上传。".to_string(),
            TransportError::Retryable(_) => "网络不稳定，上传中断了。已传的部分不会重传，稍后会自动继续。".to_string(),
            TransportError::Throttled { retry_after_secs } => throttled_message(*retry_after_secs),
            TransportError::ClockSkew { offset_secs } => clock_message(*offset_secs),
            TransportError::Rejected { status: 401, .. } => {
                "本机登记已失效或已被镇中心停用，无法上传。请联系镇中心重新登记本机。办件仍保存在手机里。".to_string()
            }
            TransportError::Rejected { status: 403, .. } => "镇中心拒绝了此操作：本机只能办理本村的办件。".to_string(),
            TransportError::Rejected { code, .. } if code == "conflict" => {
                "镇中心已收到这个办件的另一份内容，不能覆盖。请联系镇中心核对。".to_string()
            }
            TransportError::Rejected { code, message, .. } if code == "unknown_item" || code == "unknown_village" => {
                format!("镇中心不认识这个事项或村，请更新应用后再试。（{message}）")
            }
            TransportError::Rejected { status: 413, .. } => "文件太大，镇中心拒收。请重新拍摄该页。".to_string(),
            TransportError::Rejected { status, message, .. } => format!("镇中心拒绝了请求（{status}）：{message}"),
            TransportError::Corrupt { .. } => {
                "镇中心发来的材料页已损坏（校验不符），已丢弃未显示。请联系镇中心管理员检查；必要时请村代办员重新拍摄上传。".to_string()
            }
        }
    }
}

impl TransportError {
    /// What to tell town staff on the tablet, in plain Chinese. Unlike the agent's phone, the
    /// tablet queues nothing: an action that failed was not taken and must be done again.
    pub fn staff_message(&self) -> String {
        let code = match self {
            TransportError::Rejected { code, .. } => code.as_str(),
            _ => "",
        };
        match (self, code) {
            (TransportError::Offline(_), _) => {
                "连不上镇中心服务器：请检查平板的网络连接。本次操作没有完成，恢复后请再做一次。"
                    .to_string()
            }
            (TransportError::Retryable(_), _) => {
                "网络不稳定，本次操作可能没有完成。请刷新后查看，需要时再做一次。".to_string()
            }
            (TransportError::Throttled { retry_after_secs }, _) => {
                throttled_message(*retry_after_secs)
            }
            (TransportError::ClockSkew { offset_secs }, _) => clock_message(*offset_secs),
            (_, "wrong_pin") => {
                "姓名和密码不匹配，或该账号已停用。请重新选择办理人并输入密码。".to_string()
            }
            (_, "pin_required") => "本镇已启用个人账号：请先选择办理人并输入密码。".to_string(),
            (TransportError::Rejected { status: 401, .. }, _) => {
                "本平板的登记已失效或已被停用。请管理员用 bianmin-town enroll 重新登记。"
                    .to_string()
            }
            (TransportError::Rejected { status: 403, .. }, _) => {
                "本平板无权处理这个办件：它不在本镇的范围内，或这项操作不允许。".to_string()
            }
            (TransportError::Rejected { status: 404, .. }, _) => {
                "找不到这个办件，可能已被撤回。请刷新列表。".to_string()
            }
            (_, "version_changed" | "invalid_transition" | "correction_already_requested") => {
                "办件状态已经变化（可能村里重新提交了，或同事已处理）。请刷新后再操作。".to_string()
            }
            (_, "empty_correction") => "请至少勾选一项需要补正的材料。".to_string(),
            (_, "empty_note") => "请写明转县的原因。".to_string(),
            (_, "empty_reason") => "请写明不予受理的理由。".to_string(),
            (_, "empty_result") => "请填写办理结果。".to_string(),
            (_, "missing_tracking") => "邮寄送达需要填写快递公司和运单号。".to_string(),
            (_, "unknown_key") => "勾选的材料不属于这个事项，请刷新后重新选择。".to_string(),
            (_, "notice_font_missing") => {
                "镇中心服务器缺少中文字体，无法生成通知书。请管理员安装 fonts-noto-cjk 字体包后再试。"
                    .to_string()
            }
            (_, "notice_not_applicable") => {
                "办件当前的状态不适用这份文书（可能同事刚处理过）。请刷新后再试。".to_string()
            }
            (_, "printer_not_configured") => {
                "镇中心服务器还没有为本镇配置打印机，无法打印。请管理员在 printers.toml 中配置后再试。"
                    .to_string()
            }
            (_, "printer_failed") => {
                "镇中心打印机没有打印成功：请检查打印机是否开机、有纸、没有卡纸，再点一次打印。仍不行请联系管理员查看服务器日志。"
                    .to_string()
            }
            (_, "no_promised_days") => {
                "这个事项没有承诺办结时限，无法受理。请联系管理员检查事项目录。".to_string()
            }
            (TransportError::Rejected { status, .. }, _) => {
                format!("镇中心服务器拒绝了这次操作（错误 {status}）。请刷新后重试。")
            }
            (TransportError::Corrupt { .. }, _) => self.user_message(),
        }
    }
}

/// Skew from which the agent is told to set the phone's time (the town allows 300 s; a phone a
/// few minutes off still mints receipts and case numbers with the right date, so smaller
/// offsets are corrected silently).
pub const LARGE_SKEW_SECS: i64 = 120;

/// "Set the phone's time", with how far off it is, in plain Chinese.
pub fn clock_message(offset_secs: i64) -> String {
    // offset = town - phone: positive means the phone is behind (slow).
    let dir = if offset_secs > 0 { "慢" } else { "快" };
    let a = offset_secs.unsigned_abs();
    let amount = if a >= 86_400 {
        format!("{} 天", a.div_ceil(86_400).max(1))
    } else if a >= 3_600 {
        format!("{} 小时", a / 3_600)
    } else {
        format!("{} 分钟", (a / 60).max(1))
    };
    format!(
        "手机时间不准：比镇中心{dir}了约 {amount}。请到手机“设置 → 日期和时间”打开“自动设置”或手动改正，\
         否则回执和办件编号上的日期会出错。本次同步已按镇中心的时间自动校正。"
    )
}

/// 429 in plain Chinese: wait, then try again (typos in an enrolment code are the usual cause).
fn throttled_message(retry_after_secs: Option<u64>) -> String {
    match retry_after_secs {
        Some(s) if s > 0 => format!(
            "尝试次数太多，镇中心要求稍等。请约 {} 秒后再试，并仔细核对登记码。",
            s
        ),
        _ => "尝试次数太多，镇中心要求稍等。请过一会儿再试，并仔细核对登记码。".to_string(),
    }
}

fn classify(e: reqwest::Error) -> TransportError {
    let text = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut chain = text.clone();
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_connect() {
        TransportError::Offline(chain)
    } else {
        TransportError::Retryable(chain)
    }
}

/// The largest attachment the town centre accepts (`docs/protocol.md`); nothing larger is read.
pub const MAX_ATTACHMENT: u64 = 32 * 1024 * 1024;

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The canonical content hash of a submission (what the server's receipt binds).
pub fn submission_sha256(sub: &CaseSubmission) -> String {
    sha256_hex(&serde_json::to_vec(sub).expect("submissions serialize"))
}

/// Checks a receipt's signature with the server key learned at enrolment.
pub fn verify_receipt(server_key: &VerifyingKey, r: &Receipt) -> bool {
    let Some(sig) = hex::decode(&r.signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
    else {
        return false;
    };
    server_key
        .verify_strict(r.signing_string().as_bytes(), &sig)
        .is_ok()
}

/// What a device signs with.
#[derive(Clone)]
pub struct Credential {
    pub device_id: String,
    pub key: SigningKey,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Timeouts of the client; short connects so "offline" is detected quickly on a dead network.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Whole request, for everything but attachment uploads.
    pub request: Duration,
    /// A transfer that makes no progress for this long is abandoned and resumed on a fresh
    /// connection: a phone leaving coverage (or an expired NAT mapping) leaves its connection
    /// open and silent, with no reset. For an upload, progress is body bytes taken by the
    /// connection; for other requests, the answer must start within this time.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(120),
            stall: Duration::from_secs(30),
        }
    }
}

/// Upload bodies are handed to the connection in pieces this size, so that progress is seen as
/// the link drains them.
const UPLOAD_PIECE: usize = 16 * 1024;

/// When an upload body last made progress.
struct Progress {
    start: std::time::Instant,
    /// Milliseconds after `start`.
    last: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            start: std::time::Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last.store(
            self.start.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn idle(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(
            self.last.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// The device clock as requests are signed with it.
///
/// Phones without signal drift or are set by hand. Like mature signed-request clients (AWS SDKs
/// and others), the transport keeps a correction learned from the town centre's
/// `X-Bianmin-Server-Time` when a request is refused with `clock_skew`, and signs with it.
#[derive(Debug, Default)]
struct Clock {
    /// How far the phone's own clock is from the real time; always 0 except in tests that model
    /// a wrong phone clock (`Transport::with_phone_clock_error`).
    phone_error: i64,
    /// Town time minus phone time, seconds, learned from the town.
    correction: AtomicI64,
}

impl Clock {
    /// What the phone's own clock says, Unix seconds.
    fn phone_now(&self) -> i64 {
        chrono::Utc::now()
            .timestamp()
            .saturating_add(self.phone_error)
    }

    /// The phone's clock corrected to the town's.
    fn now(&self) -> i64 {
        self.phone_now()
            .saturating_add(self.correction.load(Ordering::Relaxed))
    }
}

/// A client for one town centre.
#[derive(Clone)]
pub struct Transport {
    /// Ordinary requests: an answer must start within `Timeouts::stall`.
    http: reqwest::Client,
    /// Attachment uploads: bounded by progress (`upload_chunk`), not by a fixed time, so a slow
    /// but moving link is never cut off. A separate pool, so a stalled upload connection is
    /// never reused.
    upload: reqwest::Client,
    stall: Duration,
    base: String,
    cred: Option<Credential>,
    clock: Arc<Clock>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base)
            .field("cred", &self.cred)
            .finish()
    }
}

impl Transport {
    /// A client for `server` (e.g. `https://bm.example.cn`), signing with `cred` if given.
    pub fn new(server: &str, cred: Option<Credential>) -> Result<Transport, TransportError> {
        Transport::with_timeouts(server, cred, Timeouts::default())
    }

    pub fn with_timeouts(
        server: &str,
        cred: Option<Credential>,
        t: Timeouts,
    ) -> Result<Transport, TransportError> {
        Transport::build(server, cred, t, None)
    }

    /// Also trusts the PEM certificate `root_pem` (a town centre with a private CA or self-signed
    /// certificate), besides the public web roots.
    pub fn with_root_certificate(
        server: &str,
        cred: Option<Credential>,
        t: Timeouts,
        root_pem: &[u8],
    ) -> Result<Transport, TransportError> {
        Transport::build(server, cred, t, Some(root_pem))
    }

    fn build(
        server: &str,
        cred: Option<Credential>,
        t: Timeouts,
        root_pem: Option<&[u8]>,
    ) -> Result<Transport, TransportError> {
        let base = server.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(TransportError::Rejected {
                status: 0,
                code: "bad_server_url".into(),
                message: format!("server address must start with http:// or https://: {base}"),
                missing: vec![],
                upload_offset: None,
            });
        }
        let cert =
            match root_pem {
                Some(pem) => Some(reqwest::Certificate::from_pem(pem).map_err(|e| {
                    TransportError::Rejected {
                        status: 0,
                        code: "bad_certificate".into(),
                        message: format!("root certificate is not valid PEM: {e}"),
                        missing: vec![],
                        upload_offset: None,
                    }
                })?),
                None => None,
            };
        let client = |builder: reqwest::ClientBuilder| {
            // Keepalive probes find a dead idle connection before a request is put on it.
            let builder = builder.connect_timeout(t.connect).tcp_keepalive(t.stall);
            match &cert {
                Some(c) => builder.add_root_certificate(c.clone()),
                None => builder,
            }
            .build()
            .map_err(|e| TransportError::Offline(e.to_string()))
        };
        let http = client(
            reqwest::Client::builder()
                .timeout(t.request)
                .read_timeout(t.stall),
        )?;
        // The whole-request bound of an upload is generous: its watchdog is progress.
        let upload =
            client(reqwest::Client::builder().timeout(t.request.max(Duration::from_secs(600))))?;
        Ok(Transport {
            http,
            upload,
            stall: t.stall,
            base,
            cred,
            clock: Arc::default(),
        })
    }

    /// Models a phone whose own clock is `secs` ahead (negative: behind) of the real time, for
    /// tests of clock skew. Real phones have the clock they have.
    pub fn with_phone_clock_error(mut self, secs: i64) -> Transport {
        self.clock = Arc::new(Clock {
            phone_error: secs,
            correction: AtomicI64::new(0),
        });
        self
    }

    /// Town time minus this phone's time, seconds, as learned from the town centre (0 until a
    /// request was refused with `clock_skew`).
    pub fn clock_offset_secs(&self) -> i64 {
        self.clock.correction.load(Ordering::Relaxed)
    }

    /// What to tell the agent about the phone's clock, in Chinese, when it is far enough off to
    /// matter (the sync itself already succeeded with the corrected time).
    pub fn clock_notice(&self) -> Option<String> {
        let off = self.clock_offset_secs();
        (off.abs() >= LARGE_SKEW_SECS).then(|| clock_message(off))
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    fn signed(
        &self,
        method: Method,
        path_and_query: &str,
        body_hash: &str,
        upload: Option<(u64, u64)>,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let client = if method == Method::PATCH {
            &self.upload
        } else {
            &self.http
        };
        let cred = self.cred.as_ref().ok_or_else(|| TransportError::Rejected {
            status: 401,
            code: "not_enrolled".into(),
            message: "this device is not enrolled".into(),
            missing: vec![],
            upload_offset: None,
        })?;
        let ts = self.clock.now();
        let mut n = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut n);
        let nonce = hex::encode(n);
        let (off, len) = upload
            .map(|(o, l)| (o.to_string(), l.to_string()))
            .unwrap_or_default();
        let msg = signing_string(&SignedParts {
            method: method.as_str(),
            path_and_query,
            timestamp: ts,
            nonce: &nonce,
            content_sha256: body_hash,
            upload_offset: &off,
            upload_length: &len,
        });
        let sig = cred.key.sign(msg.as_bytes());
        let mut rb = client
            .request(method, format!("{}{}", self.base, path_and_query))
            .header(H_DEVICE, &cred.device_id)
            .header(H_TIMESTAMP, ts.to_string())
            .header(H_NONCE, nonce)
            .header(H_CONTENT_SHA256, body_hash)
            .header(H_SIGNATURE, hex::encode(sig.to_bytes()));
        if upload.is_some() {
            rb = rb.header(H_UPLOAD_OFFSET, off).header(H_UPLOAD_LENGTH, len);
        }
        Ok(rb)
    }

    /// Sends a signed request built by `make`; when the town refuses its timestamp, corrects the
    /// clock from the answer and signs and sends it once more.
    async fn exchange(
        &self,
        make: impl Fn() -> Result<reqwest::RequestBuilder, TransportError>,
    ) -> Result<reqwest::Response, TransportError> {
        match self.send(make()?).await {
            Err(TransportError::ClockSkew { offset_secs }) => {
                tracing::warn!(
                    offset_secs,
                    "town centre refused the device clock; correcting and retrying once"
                );
                self.clock.correction.store(offset_secs, Ordering::Relaxed);
                self.send(make()?).await
            }
            r => r,
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, TransportError> {
        let resp = rb.send().await.map_err(classify)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let server_time = header(H_SERVER_TIME).and_then(|v| v.trim().parse::<i64>().ok());
        if status == StatusCode::UNAUTHORIZED && header(H_ERROR).as_deref() == Some(CLOCK_SKEW) {
            if let Some(t) = server_time {
                // Town minus phone, against the uncorrected clock: the correction replaces the old one.
                return Err(TransportError::ClockSkew {
                    offset_secs: t.saturating_sub(self.clock.phone_now()),
                });
            }
        }
        let offset = resp
            .headers()
            .get(H_UPLOAD_OFFSET)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after_secs = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            return Err(TransportError::Throttled { retry_after_secs });
        }
        // A server without the notice font stays without it until an administrator installs
        // it, and a town without a printer, or whose printer failed, until someone sees to it:
        // trying again by itself does not help (a printer that failed might print twice), and
        // the staff are told what is wrong.
        let lasting = matches!(
            header(H_ERROR).as_deref(),
            Some("notice_font_missing" | "printer_not_configured" | "printer_failed")
        );
        let text = resp.text().await.unwrap_or_default();
        if !lasting && (status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT) {
            return Err(TransportError::Retryable(format!(
                "server answered {status}"
            )));
        }
        let body: ErrorBody = serde_json::from_str(&text).unwrap_or(ErrorBody {
            error: "http".into(),
            message: text.chars().take(200).collect(),
            missing: vec![],
        });
        Err(TransportError::Rejected {
            status: status.as_u16(),
            code: body.error,
            message: body.message,
            missing: body.missing,
            upload_offset: offset,
        })
    }

    async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, TransportError> {
        // A body cut off after the status line is a transient failure, not a bad answer.
        let bytes = resp.bytes().await.map_err(classify)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TransportError::Retryable(format!("unreadable answer: {e}")))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        pq: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, TransportError> {
        let body = body.unwrap_or_default();
        let hash = sha256_hex(&body);
        let resp = self
            .exchange(|| {
                let mut rb = self.signed(method.clone(), pq, &hash, None)?;
                if !body.is_empty() {
                    rb = rb
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone());
                }
                Ok(rb)
            })
            .await?;
        Transport::json(resp).await
    }

    /// `GET /healthz`: whether the town centre is reachable and ready.
    pub async fn health(&self) -> Result<(), TransportError> {
        self.send(self.http.get(format!("{}/healthz", self.base)))
            .await
            .map(|_| ())
    }

    /// Exchanges a one-time code for enrolment (unsigned: the device has no credential yet).
    pub async fn enrol(&self, req: &EnrolRequest) -> Result<EnrolResponse, TransportError> {
        let rb = self.http.post(format!("{}/v1/enrol", self.base)).json(req);
        Transport::json(self.send(rb).await?).await
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<EnrolResponse, TransportError> {
        self.call(Method::GET, "/v1/me", None).await
    }

    /// `HEAD /v1/attachments/{sha}`: how many bytes the server holds.
    pub async fn upload_offset(&self, sha256: &str) -> Result<UploadOffset, TransportError> {
        let path = format!("/v1/attachments/{sha256}");
        let resp = self
            .exchange(|| self.signed(Method::HEAD, &path, &sha256_hex(b""), None))
            .await?;
        let h = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let offset = h(H_UPLOAD_OFFSET)
            .ok_or_else(|| TransportError::Retryable("no Upload-Offset in answer".into()))?;
        Ok(UploadOffset {
            sha256: sha256.to_string(),
            offset,
            length: h(H_UPLOAD_LENGTH),
            complete: resp
                .headers()
                .get("upload-complete")
                .is_some_and(|v| v == "1"),
        })
    }

    /// `PATCH /v1/attachments/{sha}`: appends `chunk` at `offset` of a `length`-byte attachment.
    /// A transfer that makes no progress for `Timeouts::stall` is abandoned as `Retryable` (its
    /// connection is dropped, never reused); the caller asks the server where it got to and
    /// resumes on a fresh connection.
    pub async fn upload_chunk(
        &self,
        sha256: &str,
        offset: u64,
        length: u64,
        chunk: Vec<u8>,
    ) -> Result<UploadOffset, TransportError> {
        let progress = std::sync::Arc::new(Progress::new());
        let size = chunk.len();
        let all = bytes::Bytes::from(chunk);
        let path = format!("/v1/attachments/{sha256}");
        // A fresh stream over the same bytes for each attempt (a clock_skew refusal is signed
        // again and sent once more).
        let body = || {
            let (all, seen) = (all.clone(), progress.clone());
            // hyper asks for the next piece once the connection took the previous one.
            reqwest::Body::wrap_stream(futures_util::stream::iter(
                (0..size).step_by(UPLOAD_PIECE).map(move |at| {
                    seen.touch();
                    Ok::<_, std::io::Error>(all.slice(at..(at + UPLOAD_PIECE).min(size)))
                }),
            ))
        };
        let request = async {
            let resp = self
                .exchange(|| {
                    Ok(self
                        .signed(
                            Method::PATCH,
                            &path,
                            UNSIGNED_PAYLOAD,
                            Some((offset, length)),
                        )?
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .header(reqwest::header::CONTENT_LENGTH, size)
                        .body(body()))
                })
                .await?;
            Transport::json(resp).await
        };
        tokio::pin!(request);
        let tick = (self.stall / 4).max(Duration::from_millis(20));
        loop {
            tokio::select! {
                answer = &mut request => return answer,
                _ = tokio::time::sleep(tick) => {
                    if progress.idle() >= self.stall {
                        return Err(TransportError::Retryable(format!(
                            "upload stalled: no progress for {} ms; the connection went silent",
                            progress.idle().as_millis()
                        )));
                    }
                }
            }
        }
    }

    /// `PUT /v1/cases/{id}`: submits a sealed version; answers the signed receipt.
    pub async fn submit(&self, sub: &CaseSubmission) -> Result<Receipt, TransportError> {
        let body = serde_json::to_vec(sub).expect("submissions serialize");
        self.call(Method::PUT, &format!("/v1/cases/{}", sub.id), Some(body))
            .await
    }

    /// `PUT /v1/window/cases/{id}`: a town tablet's window case with its clerk; answers the receipt.
    pub async fn submit_window(
        &self,
        intake: &bianmin_protocol::window::WindowIntake,
    ) -> Result<Receipt, TransportError> {
        let body = serde_json::to_vec(intake).expect("window intakes serialize");
        self.call(
            Method::PUT,
            &format!("/v1/window/cases/{}", intake.submission.id),
            Some(body),
        )
        .await
    }

    /// `GET /v1/changes?cursor=N`.
    pub async fn changes(&self, cursor: u64) -> Result<ChangesPage, TransportError> {
        self.call(Method::GET, &format!("/v1/changes?cursor={cursor}"), None)
            .await
    }

    /// `GET /v1/catalog[?version=N]`: the manifest of the newest published catalog, or of version N.
    pub async fn catalog_manifest(
        &self,
        version: Option<u32>,
    ) -> Result<CatalogManifest, TransportError> {
        let pq = match version {
            Some(v) => format!("/v1/catalog?version={v}"),
            None => "/v1/catalog".to_string(),
        };
        self.call(Method::GET, &pq, None).await
    }

    /// `POST /v1/catalog/parts`: the bodies of some parts of one version.
    pub async fn catalog_parts(
        &self,
        req: &CatalogPartsRequest,
    ) -> Result<CatalogPartsResponse, TransportError> {
        let body = serde_json::to_vec(req).expect("requests serialize");
        self.call(Method::POST, "/v1/catalog/parts", Some(body))
            .await
    }

    /// `GET /v1/cases/{id}` (full case; audited by the server).
    pub async fn case(&self, id: &str) -> Result<Case, TransportError> {
        self.call(Method::GET, &format!("/v1/cases/{id}"), None)
            .await
    }

    /// `GET /v1/inbox` for town staff; `query` is e.g. `state=received&overdue=true` (may be empty).
    pub async fn inbox(&self, query: &str) -> Result<Vec<InboxRow>, TransportError> {
        let pq = if query.is_empty() {
            "/v1/inbox".to_string()
        } else {
            format!("/v1/inbox?{query}")
        };
        self.call(Method::GET, &pq, None).await
    }

    /// `GET /v1/inbox/page` for town staff: one page of the inbox. `query` takes the filters
    /// of [`Transport::inbox`] plus `order=oldest|newest|deadline`, `village_name=`, `limit=`
    /// and `after=` (the previous page's `next`).
    pub async fn inbox_page(&self, query: &str) -> Result<InboxPage, TransportError> {
        let pq = if query.is_empty() {
            "/v1/inbox/page".to_string()
        } else {
            format!("/v1/inbox/page?{query}")
        };
        self.call(Method::GET, &pq, None).await
    }

    /// `GET /v1/cases/{id}/attachments/{sha}`: one page of a case the device may see (audited by
    /// the server), verified against its SHA-256 before it is returned.
    ///
    /// The bytes stay in memory: callers show them and drop them, so a staff tablet keeps no copy
    /// of residents' documents. A body cut off mid-way is `Retryable`; a complete body with another
    /// hash is `Corrupt`; a body larger than the per-attachment limit is refused without reading it
    /// all (a misbehaving server cannot exhaust a phone's memory).
    pub async fn attachment(&self, case_id: &str, sha256: &str) -> Result<Vec<u8>, TransportError> {
        let bad = |what: &str| TransportError::Rejected {
            status: 0,
            code: "bad_request".into(),
            message: what.to_string(),
            missing: vec![],
            upload_offset: None,
        };
        // Both end up in the URL path: refuse anything that could change the path's meaning.
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("attachment id must be a lower-case hex SHA-256"));
        }
        if case_id.is_empty()
            || !case_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("case id may only hold letters, digits and '-'"));
        }
        let path = format!("/v1/cases/{case_id}/attachments/{sha256}");
        let mut resp = self
            .exchange(|| self.signed(Method::GET, &path, &sha256_hex(b""), None))
            .await?;
        if resp.content_length().is_some_and(|n| n > MAX_ATTACHMENT) {
            return Err(TransportError::Corrupt {
                sha256: sha256.to_string(),
                got: "(larger than any attachment)".into(),
            });
        }
        let mut bytes = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        let mut hasher = Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if bytes.len() as u64 + chunk.len() as u64 > MAX_ATTACHMENT {
                return Err(TransportError::Corrupt {
                    sha256: sha256.to_string(),
                    got: "(larger than any attachment)".into(),
                });
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        let got = hex::encode(hasher.finalize());
        if got != sha256 {
            return Err(TransportError::Corrupt {
                sha256: sha256.to_string(),
                got,
            });
        }
        Ok(bytes)
    }

    /// `GET /v1/staff`: the active people of the tablet's town (谁在办理).
    pub async fn staff_members(&self) -> Result<Vec<StaffMember>, TransportError> {
        self.call(Method::GET, "/v1/staff", None).await
    }

    /// `POST /v1/staff/unlock`: checks a person's PIN when they take the tablet over.
    pub async fn unlock_staff(&self, req: &StaffUnlock) -> Result<StaffMember, TransportError> {
        let body = serde_json::to_vec(req).expect("unlock requests serialize");
        self.call(Method::POST, "/v1/staff/unlock", Some(body))
            .await
    }

    /// `POST /v1/cases/{id}/actions` for town staff.
    pub async fn act(&self, id: &str, req: &ActionRequest) -> Result<ActionResult, TransportError> {
        let body = serde_json::to_vec(req).expect("actions serialize");
        self.call(Method::POST, &format!("/v1/cases/{id}/actions"), Some(body))
            .await
    }

    /// `GET /v1/cases/{id}/clock`: the case's working-day clock as the tablet shows it.
    pub async fn clock(
        &self,
        id: &str,
    ) -> Result<bianmin_protocol::clock::ClockView, TransportError> {
        self.call(Method::GET, &format!("/v1/cases/{id}/clock"), None)
            .await
    }

    /// `GET /v1/cases/{id}/county` for town staff: the county side of a forwarded case (office,
    /// 县受理, an open 要求补正, the decision). A case never forwarded is `not_forwarded` (404).
    pub async fn county(
        &self,
        id: &str,
    ) -> Result<bianmin_protocol::county::CountyView, TransportError> {
        self.call(Method::GET, &format!("/v1/cases/{id}/county"), None)
            .await
    }

    /// `POST /v1/cases/{id}/clock` for town staff: pause for an outside step, resume, or ask
    /// the county for an extension. Answers with the clock as it is afterwards.
    pub async fn clock_action(
        &self,
        id: &str,
        req: &bianmin_protocol::clock::ClockRequest,
    ) -> Result<bianmin_protocol::clock::ClockView, TransportError> {
        let body = serde_json::to_vec(req).expect("clock requests serialize");
        self.call(Method::POST, &format!("/v1/cases/{id}/clock"), Some(body))
            .await
    }

    /// `GET /v1/bad-reviews` for town staff: the town's 差评 with contact and timeline (audited).
    pub async fn bad_reviews(
        &self,
    ) -> Result<Vec<bianmin_protocol::bad_review::BadReview>, TransportError> {
        self.call(Method::GET, "/v1/bad-reviews", None).await
    }

    /// Uploads a small file held in memory (a tablet's photo of a 核实/整改) through the same
    /// resumable attachment upload, from wherever the server got to; its SHA-256.
    pub async fn upload_bytes(&self, bytes: Vec<u8>) -> Result<String, TransportError> {
        let sha = sha256_hex(&bytes);
        let at = self.upload_offset(&sha).await?;
        if !at.complete {
            let from = (at.offset as usize).min(bytes.len());
            let len = bytes.len() as u64;
            let done = self
                .upload_chunk(&sha, from as u64, len, bytes[from..].to_vec())
                .await?;
            if !done.complete {
                return Err(TransportError::Retryable(
                    "the photo upload stopped before its end".into(),
                ));
            }
        }
        Ok(sha)
    }

    /// `GET /v1/rectifications/{id}/photos/{sha}` for town staff: a photo of a 核实/整改 step, or
    /// with `thumb` its small JPEG. A full photo is checked against its hash; a thumbnail (made
    /// by the server) only against the size bound.
    pub async fn rectification_photo(
        &self,
        case_id: &str,
        sha256: &str,
        thumb: bool,
    ) -> Result<Vec<u8>, TransportError> {
        let bad = |what: &str| TransportError::Rejected {
            status: 0,
            code: "bad_request".into(),
            message: what.to_string(),
            missing: vec![],
            upload_offset: None,
        };
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("photo id must be a lower-case hex SHA-256"));
        }
        if case_id.is_empty()
            || !case_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("case id may only hold letters, digits and '-'"));
        }
        let query = if thumb { "?size=thumb" } else { "" };
        let path = format!("/v1/rectifications/{case_id}/photos/{sha256}{query}");
        let too_big = || TransportError::Corrupt {
            sha256: sha256.to_string(),
            got: "(larger than any attachment)".into(),
        };
        let mut resp = self
            .exchange(|| self.signed(Method::GET, &path, &sha256_hex(b""), None))
            .await?;
        if resp.content_length().is_some_and(|n| n > MAX_ATTACHMENT) {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if bytes.len() as u64 + chunk.len() as u64 > MAX_ATTACHMENT {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        if !thumb {
            let got = sha256_hex(&bytes);
            if got != sha256 {
                return Err(TransportError::Corrupt {
                    sha256: sha256.to_string(),
                    got,
                });
            }
        }
        Ok(bytes)
    }

    /// `POST /v1/rectifications/{id}/steps` for town staff: records 核实, 整改 or 回访.
    pub async fn record_review_step(
        &self,
        id: &str,
        req: &bianmin_protocol::bad_review::ReviewStepRequest,
    ) -> Result<(), TransportError> {
        let body = serde_json::to_vec(req).expect("steps serialize");
        let _: serde::de::IgnoredAny = self
            .call(
                Method::POST,
                &format!("/v1/rectifications/{id}/steps"),
                Some(body),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, code: &str) -> TransportError {
        TransportError::Rejected {
            status,
            code: code.into(),
            message: "english detail".into(),
            missing: vec![],
            upload_offset: None,
        }
    }

    #[test]
    fn staff_messages_speak_to_staff_and_name_every_action_refusal() {
        // The agent's wording ("only your own village", "saved on the phone") is wrong on a tablet.
        assert!(rejected(403, "forbidden").user_message().contains("本村"));
        assert!(!rejected(403, "forbidden").staff_message().contains("本村"));
        assert!(!TransportError::Offline("x".into())
            .staff_message()
            .contains("手机"));
        // Every refusal of POST /v1/cases/{id}/actions gets its own instruction, never the fallback.
        let generic = rejected(422, "something_new").staff_message();
        for (status, code) in [
            (409, "version_changed"),
            (409, "invalid_transition"),
            (409, "correction_already_requested"),
            (422, "empty_correction"),
            (422, "empty_note"),
            (422, "empty_reason"),
            (422, "empty_result"),
            (422, "missing_tracking"),
            (422, "unknown_key"),
            (422, "no_promised_days"),
            (403, "wrong_pin"),
            (403, "pin_required"),
            (503, "printer_not_configured"),
            (502, "printer_failed"),
        ] {
            let m = rejected(status, code).staff_message();
            assert_ne!(m, generic, "{code}");
            assert!(
                !m.contains("english detail"),
                "{code}: server text stays in the logs"
            );
        }
    }

    #[test]
    fn receipts_verify_only_with_the_server_key() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let mut r = Receipt {
            case_id: "c".into(),
            version: 1,
            content_sha256: "h".into(),
            received_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            signature: String::new(),
        };
        r.signature = hex::encode(k.sign(r.signing_string().as_bytes()).to_bytes());
        assert!(verify_receipt(&k.verifying_key(), &r));
        assert!(!verify_receipt(
            &SigningKey::from_bytes(&[4; 32]).verifying_key(),
            &r
        ));
        r.version = 2;
        assert!(!verify_receipt(&k.verifying_key(), &r));
    }

    #[test]
    fn messages_are_chinese_and_classified() {
        let off = TransportError::Offline("x".into());
        assert!(off.is_transient());
        assert!(off.user_message().contains("镇中心"));
        let revoked = TransportError::Rejected {
            status: 401,
            code: "unauthorized".into(),
            message: "device has been revoked".into(),
            missing: vec![],
            upload_offset: None,
        };
        assert!(revoked.is_unauthorized() && !revoked.is_transient());
        assert!(revoked.user_message().contains("停用"));
        let damaged = TransportError::Corrupt {
            sha256: "a".repeat(64),
            got: "b".repeat(64),
        };
        assert!(!damaged.is_transient() && !damaged.is_unauthorized());
        assert!(damaged.user_message().contains("损坏"));
    }

    #[tokio::test]
    async fn attachment_ids_that_would_change_the_path_are_refused_before_sending() {
        // Port 9 on loopback: nothing is sent, so nothing needs to listen.
        let cred = Credential {
            device_id: "ABC234".into(),
            key: SigningKey::from_bytes(&[5; 32]),
        };
        let t = Transport::new("http://127.0.0.1:9", Some(cred)).unwrap();
        let sha = "0".repeat(64);
        for (case, sha) in [
            ("c-1", "../../v1/inbox"),
            ("c-1", &"A".repeat(64)[..]),
            ("../x", &sha[..]),
            ("c?x=1", &sha[..]),
        ] {
            let e = t.attachment(case, sha).await.unwrap_err();
            assert!(
                matches!(&e, TransportError::Rejected { status: 0, code, .. } if code == "bad_request"),
                "{case} {sha}: {e:?}"
            );
        }
    }
}
