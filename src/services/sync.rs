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
    let Some(addr) = host_port(server) else { return false };
    matches!(
        tokio::time::timeout(Duration::from_secs(4), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_defaults_by_scheme() {
        assert_eq!(host_port("https://bm.example.cn").as_deref(), Some("bm.example.cn:443"));
        assert_eq!(host_port("http://127.0.0.1:8080/x").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(host_port("bm.example.cn"), None);
    }
}
