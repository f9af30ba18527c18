//! SMS notifications to applicants: when a case is accepted, needs 补正, is refused or forwarded,
//! is completed, mailed or delivered, with the short case number and a link only the applicant's
//! phone receives (the rating that counts comes through it: `resident_link`).
//!
//! The changes feed is the source: every town decision is already in it, durably, in the same
//! transaction as the case. A [`Notifier`] turns feed events after its cursor into notices in the
//! store's outbox (one per case version, so a rescan adds nothing twice), then claims due notices
//! and hands them to the provider. A failed attempt is retried with exponential backoff; nothing
//! leaves the outbox except as sent, refused for good, or opted out. Without a provider the
//! notices wait in the outbox and are logged.
//!
//! Exactly-once delivery holds when the provider answers; when a request times out after the
//! provider accepted it, the retry sends the message again (at-least-once): the provider's API
//! offers no idempotency key, only `OutId`, which carries the notice id for reconciliation.

pub mod aliyun;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bianmin_protocol::{Decision, Delivery};
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::store::notices::{Notice, NoticeKind, NoticeState};
use crate::store::StoreError;
use crate::AppState;

/// A boxed future, so providers can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub phone: String,
    /// The template's variables, in order.
    pub params: Vec<(String, String)>,
    /// The notice id, for the provider's delivery reports.
    pub out_id: String,
}

/// Why a provider did not take a message.
#[derive(Debug, Error)]
pub enum SendError {
    /// Worth trying again later (network, timeout, throttling, provider fault, settings).
    #[error("{0}")]
    Retry(String),
    /// Never deliverable (the number is invalid).
    #[error("{0}")]
    Permanent(String),
}

/// An SMS gateway.
pub trait SmsProvider: Send + Sync {
    fn name(&self) -> &str;
    /// Sends one message; the provider's id for it.
    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<String, SendError>>;
}

/// One SMS of 70 characters, signature included: longer ones are split and billed twice.
pub const MAX_SMS_CHARS: usize = 70;
/// Characters of a resident link code.
pub const LINK_CODE_LEN: usize = 8;
/// The short case number (`date-device-seq`, without the village code the resident knows).
const MAX_SHORT_NUMBER_CHARS: usize = 8 + 1 + bianmin_engine::number::DEVICE_CODE_LEN + 1 + 4;

/// Settings that shape the message.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Where residents open their link: `{link_base}/s/{code}`.
    pub link_base: String,
    /// The provider's signature as the phone shows it, without brackets (`便民服务`).
    pub sign_name: String,
}

/// The message would not fit one SMS.
#[derive(Debug, Error)]
#[error("an SMS would be {chars} characters with this signature and public URL (limit {MAX_SMS_CHARS}); use a shorter --public-url or --sms-sign-name")]
pub struct TooLong {
    pub chars: usize,
}

impl NotifyConfig {
    /// Checks that the longest message fits one SMS.
    pub fn new(link_base: &str, sign_name: &str) -> Result<NotifyConfig, TooLong> {
        let c = NotifyConfig {
            link_base: link_base.trim_end_matches('/').to_string(),
            sign_name: sign_name.trim().to_string(),
        };
        let longest = [
            NoticeKind::Accepted,
            NoticeKind::Correction,
            NoticeKind::Refused,
            NoticeKind::Forwarded,
            NoticeKind::Completed,
            NoticeKind::Mailed,
            NoticeKind::Delivered,
        ]
        .into_iter()
        .map(|k| {
            c.sms_chars(&render(
                &"0".repeat(MAX_SHORT_NUMBER_CHARS),
                k,
                &c.link(&"A".repeat(LINK_CODE_LEN)),
            ))
        })
        .max()
        .unwrap_or(0);
        if longest > MAX_SMS_CHARS {
            return Err(TooLong { chars: longest });
        }
        Ok(c)
    }

    /// The resident link of a code.
    pub fn link(&self, code: &str) -> String {
        format!("{}/s/{code}", self.link_base)
    }

    /// Characters the phone counts: 【signature】 plus the text.
    pub fn sms_chars(&self, text: &str) -> usize {
        self.sign_name.chars().count() + 2 + text.chars().count()
    }
}

/// The resident's words for a kind of notice.
pub fn event_text(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Accepted => "已受理",
        NoticeKind::Correction => "需补正材料",
        NoticeKind::Refused => "不予受理",
        NoticeKind::Forwarded => "已转县办理",
        NoticeKind::Completed => "已办结",
        NoticeKind::Mailed => "已办结并寄出",
        NoticeKind::Delivered => "已送达",
    }
}

/// The message text; it mirrors the template registered with the provider:
/// `办件${no}${event}，详见${url}`.
pub fn render(short_number: &str, kind: NoticeKind, url: &str) -> String {
    format!("办件{short_number}{}，详见{url}", event_text(kind))
}

/// The notice a decision calls for, if any.
pub fn kind_of(decision: &Decision) -> Option<NoticeKind> {
    Some(match decision {
        Decision::Accepted { .. } => NoticeKind::Accepted,
        Decision::CorrectionRequested { .. } => NoticeKind::Correction,
        Decision::Refused { .. } => NoticeKind::Refused,
        Decision::Forwarded { .. } => NoticeKind::Forwarded,
        Decision::Completed {
            delivery: Delivery::Mail { .. },
            ..
        } => NoticeKind::Mailed,
        Decision::Completed { .. } => NoticeKind::Completed,
        Decision::Delivered => NoticeKind::Delivered,
        Decision::Received | Decision::Rated => return None,
    })
}

/// The case number without its village code: what fits an SMS and matches the receipt's number.
pub fn short_number(case_id: &str) -> String {
    case_id
        .split_once('-')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| case_id.to_string())
}

/// The resident link code of a case: derived from the server's secret key, so it cannot be
/// computed on an agent's phone (which holds only its own key and sees no SMS).
pub fn resident_link(server_key: &ed25519_dalek::SigningKey, case_id: &str) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut h = Sha256::new();
    h.update(b"bianmin-resident-link/v1\n");
    h.update(server_key.to_bytes());
    h.update(case_id.as_bytes());
    let d = h.finalize();
    d.iter()
        .take(LINK_CODE_LEN)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The stored form of a phone number in the opt-out list.
pub fn phone_hash(phone: &str) -> String {
    crate::digest::sha256_hex(format!("bianmin-sms-opt-out/v1\n{}", phone.trim()).as_bytes())
}

/// A mainland mobile number (11 digits, starting with 1).
pub fn is_mobile(phone: &str) -> bool {
    let p = phone.trim();
    p.len() == 11 && p.starts_with('1') && p.bytes().all(|b| b.is_ascii_digit())
}

/// Delay before attempt `attempts + 1`: 30 s doubling, at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.min(7));
    Duration::from_secs(secs.min(3600))
}

/// Runs a store call on the blocking pool.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub queued: usize,
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Turns the feed into notices and sends them.
#[derive(Clone)]
pub struct Notifier {
    state: AppState,
    config: NotifyConfig,
    provider: Option<Arc<dyn SmsProvider>>,
    /// How long a claimed notice is reserved for the sender (longer than a request may take).
    lease: Duration,
}

impl Notifier {
    pub fn new(
        state: AppState,
        config: NotifyConfig,
        provider: Option<Arc<dyn SmsProvider>>,
        lease: Duration,
    ) -> Notifier {
        Notifier {
            state,
            config,
            provider,
            lease,
        }
    }

    /// One pass at `now`: queue what the feed holds after the cursor, then send what is due.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<Pass, StoreError> {
        let mut pass = Pass {
            queued: self.queue(now).await?,
            ..Pass::default()
        };
        let Some(provider) = self.provider.clone() else {
            return Ok(pass);
        };
        let lease = chrono::Duration::from_std(self.lease).unwrap_or_default();
        // One notice claimed at a time: its lease has to outlast one request only, however many
        // wait behind it, and it runs from the clock at the claim (a long pass does not leave later
        // claims with leases already over). A claimed or retried notice is not due again at `now`,
        // so this ends.
        loop {
            let lease_until = now.max(Utc::now()) + lease;
            let st = self.state.clone();
            let Some(mut n) =
                off_thread(move || st.store.notices().claim_notices(now, lease_until, 1))
                    .await?
                    .pop()
            else {
                break;
            };
            let msg = SmsMessage {
                phone: n.phone.clone(),
                params: n.params.clone(),
                out_id: n.id.clone(),
            };
            n.attempts += 1;
            match provider.send(&msg).await {
                Ok(provider_id) => {
                    n.state = NoticeState::Sent {
                        at: Utc::now(),
                        provider_id,
                    };
                    n.last_error = None;
                    pass.sent += 1;
                    tracing::info!(notice = %n.id, attempts = n.attempts, "SMS sent");
                }
                Err(SendError::Retry(e)) => {
                    n.next_at =
                        now + chrono::Duration::from_std(backoff(n.attempts)).unwrap_or_default();
                    tracing::warn!(notice = %n.id, attempts = n.attempts, error = %e, "SMS not sent; will retry");
                    n.last_error = Some(e);
                    pass.retrying += 1;
                }
                Err(SendError::Permanent(e)) => {
                    tracing::warn!(notice = %n.id, error = %e, "SMS refused for good");
                    n.state = NoticeState::Failed {
                        at: Utc::now(),
                        reason: e.clone(),
                    };
                    n.last_error = Some(e);
                    pass.failed += 1;
                }
            }
            let st = self.state.clone();
            off_thread(move || st.store.notices().put_notice(&n)).await?;
        }
        Ok(pass)
    }

    /// Turns feed events after the cursor into notices; how many were new.
    async fn queue(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let st = self.state.clone();
        let config = self.config.clone();
        let logged = self.provider.is_none();
        off_thread(move || {
            let villages: Vec<String> = st
                .divisions()
                .towns
                .iter()
                .flat_map(|t| t.villages.iter().map(|v| v.code.clone()))
                .collect();
            let mut added = 0;
            loop {
                let cursor = st.store.notices().notice_cursor()?;
                let (entries, more) = st.store.changes(&villages, cursor, 200)?;
                let Some(last) = entries.last().map(|e| e.seq) else {
                    break;
                };
                let mut notices = Vec::new();
                let mut links = Vec::new();
                for e in &entries {
                    let Some(kind) = kind_of(&e.event.decision) else {
                        continue;
                    };
                    let Some(sc) = st.store.case(&e.event.case_id)? else {
                        continue;
                    };
                    let code = resident_link(&st.server_key, &sc.case.id);
                    let url = config.link(&code);
                    let no = short_number(&sc.case.id);
                    let phone = sc.case.applicant.phone.trim().to_string();
                    let state = if !is_mobile(&phone) {
                        NoticeState::Failed {
                            at: now,
                            reason: "the applicant has no mobile number".into(),
                        }
                    } else if st.store.notices().is_opted_out(&phone_hash(&phone))? {
                        NoticeState::OptedOut
                    } else {
                        NoticeState::Pending
                    };
                    let n = Notice {
                        id: format!("{}/{}", sc.case.id, e.seq),
                        case_id: sc.case.id.clone(),
                        village: sc.case.village.clone(),
                        kind,
                        phone,
                        params: vec![
                            ("no".into(), no.clone()),
                            ("event".into(), event_text(kind).into()),
                            ("url".into(), url.clone()),
                        ],
                        text: render(&no, kind, &url),
                        created_at: now,
                        attempts: 0,
                        next_at: now,
                        last_error: None,
                        state,
                    };
                    if logged && n.state == NoticeState::Pending {
                        tracing::info!(notice = %n.id, "no SMS provider configured; notice kept in the outbox");
                    }
                    links.push((code, sc.case.id.clone()));
                    notices.push(n);
                }
                added += st
                    .store
                    .notices()
                    .enqueue_notices(&notices, &links, last)?;
                if !more {
                    break;
                }
            }
            Ok(added)
        })
        .await
    }

    /// Runs passes every `every` until the process ends; a failed pass is logged and retried.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.pass(Utc::now()).await {
                    tracing::error!(error = %e, "notification pass failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_fits_one_sms_with_a_short_public_url() {
        let c = NotifyConfig::new("https://bm.example.cn", "便民服务").unwrap();
        let text = render(
            "20261128-ABCDEF-0001",
            NoticeKind::Mailed,
            &c.link("AAAAAAAA"),
        );
        assert_eq!(
            text,
            "办件20261128-ABCDEF-0001已办结并寄出，详见https://bm.example.cn/s/AAAAAAAA"
        );
        assert!(
            c.sms_chars(&text) <= MAX_SMS_CHARS,
            "{}",
            c.sms_chars(&text)
        );
        let err = NotifyConfig::new("https://bianmin-service.example-county.gov.cn", "便民服务")
            .unwrap_err();
        assert!(err.chars > MAX_SMS_CHARS);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(2), Duration::from_secs(120));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }

    #[test]
    fn short_numbers_drop_the_village_code() {
        assert_eq!(
            short_number("140423100201-20261128-ABCDEF-0001"),
            "20261128-ABCDEF-0001"
        );
    }
}
