//! Background connectivity and sync status, shown on every screen and driven by one task.
//!
//! The task wakes on "立即同步", on window focus, and every few seconds to probe the town centre;
//! a probe that finds the server reachable after it was not starts a sync at once, so queued
//! cases leave as soon as the network is back (the ODK complaint in BRIEF §5).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What the status bar shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncStatus {
    /// `None` until the first probe finished.
    pub online: Option<bool>,
    pub running: bool,
    /// 0.0..=1.0 while running.
    pub progress: f32,
    pub last_sync: Option<DateTime<Utc>>,
    /// Plain Chinese, what happened last and what to do.
    pub message: String,
}

/// Why the task woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTrigger {
    Button,
    Focus,
}

/// How often the server is probed while the app is open.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// `host:port` of a base URL, for a TCP reachability probe.
pub fn host_port(server: &str) -> Option<String> {
    let (scheme, rest) = server.split_once("://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    if authority.contains(':') && !authority.ends_with(']') {
        return Some(authority.to_string());
    }
    let port = if scheme == "https" { 443 } else { 80 };
    Some(format!("{authority}:{port}"))
}

/// Whether the town centre accepts a TCP connection within a few seconds.
pub async fn reachable(server: &str) -> bool {
    let Some(addr) = host_port(server) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(4), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// One sync run with the engine's client: uploads queued cases (resumable, chunked) and applies
/// the town's decisions, mirroring its progress into `status` while it runs.
pub async fn run_once(
    book: &crate::services::book::Book,
    device: &crate::services::book::Device,
    mut status: dioxus::prelude::Signal<SyncStatus>,
) -> Result<(), String> {
    use std::sync::{Arc, Mutex};

    use bianmin_engine::sync::{sync_once, SyncEvent};
    use bianmin_engine::transport::{Credential, Transport};
    use dioxus::prelude::*;

    let key = device.key()?;
    let server_key = device
        .server_key
        .as_deref()
        .and_then(|h| hex::decode(h.trim()).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok());
    let t = Transport::new(
        &device.server,
        Some(Credential {
            device_id: device.device_code.clone(),
            key,
        }),
    )
    .map_err(|e| e.user_message())?;
    // The engine reports progress from its own context; the UI copies it while the run is going.
    let shared = Arc::new(Mutex::new((0.0f32, String::new())));
    let sink = shared.clone();
    let progress = move |e: SyncEvent| {
        let mut g = sink.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            SyncEvent::Started { cases, .. } => g.1 = format!("正在上传 {cases} 件…"),
            SyncEvent::Progress {
                bytes_done,
                bytes_total,
                cases_done,
                cases_total,
            } => {
                g.0 = if bytes_total > 0 {
                    bytes_done as f32 / bytes_total as f32
                } else {
                    1.0
                };
                g.1 = format!("正在上传：第 {cases_done}/{cases_total} 件");
            }
            SyncEvent::Rejected { message, .. } => g.1 = format!("镇中心退回了一件：{message}"),
            SyncEvent::Failed { message, .. } => g.1 = message,
            // The run went through with the town's time; the agent must still fix the phone.
            SyncEvent::ClockNotice { message, .. } => g.1 = message,
            _ => {}
        }
    };
    status.write().running = true;
    let run = sync_once(book.outbox(), &t, server_key.as_ref(), &progress);
    futures_util::pin_mut!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tokio::time::sleep(Duration::from_millis(150)) => {
                let g = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let mut s = status.write();
                s.progress = g.0;
                s.message = g.1;
            }
        }
    };
    let mut s = status.write();
    s.running = false;
    match result {
        Ok(r) => {
            s.progress = 1.0;
            s.last_sync = Some(Utc::now());
            let done = if r.remaining == 0 {
                format!(
                    "同步完成：上传 {} 件，收到镇中心消息 {} 条",
                    r.acknowledged.len(),
                    r.decisions
                )
            } else {
                format!(
                    "同步完成，但有 {} 件被镇中心退回，请打开办件查看原因",
                    r.remaining
                )
            };
            // A wrong phone clock stays in the message: the sync corrected for it, the receipts
            // the phone mints offline do not.
            s.message = match t.clock_notice() {
                Some(notice) => format!("{done}。{notice}"),
                None => done,
            };
            Ok(())
        }
        Err(e) => Err(e.user_message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_defaults_by_scheme() {
        assert_eq!(
            host_port("https://bm.example.cn").as_deref(),
            Some("bm.example.cn:443")
        );
        assert_eq!(
            host_port("http://127.0.0.1:8080/x").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host_port("bm.example.cn"), None);
    }
}
