//! Sync status for every screen, folded from the events of the engine's one sync loop.
//!
//! The app runs `bianmin_engine::sync::spawn_sync_loop` (backoff with jitter, `/healthz` probes,
//! a run on every trigger, periodic runs) over the book, and only turns its events into the
//! status bar's words. "立即同步", window focus and a new sealed case poke the loop; no socket
//! is opened here (only the engine's transport touches the network).

use std::sync::Arc;
use std::time::Duration;

use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::sync::{spawn_sync_loop, LoopConfig, SyncEvent, SyncHandle, SyncStore};
use chrono::{DateTime, Utc};
use dioxus::prelude::*;

use crate::services::{use_book, use_enrolment};

/// What the status bar shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncStatus {
    /// `None` until the town centre answered or failed to answer once.
    pub online: Option<bool>,
    pub running: bool,
    /// 0.0..=1.0 while running.
    pub progress: f32,
    pub last_sync: Option<DateTime<Utc>>,
    /// Plain Chinese: what happened last and what to do.
    pub message: String,
    /// The newest catalog version installed while the app ran, with what changed (事项已更新).
    pub catalog_update: Option<(u32, Vec<String>)>,
}

/// Words shown while the town centre cannot be reached.
pub const OFFLINE: &str = "连不上镇中心：办件已安全保存在手机里，有信号时会自动上传。";
/// Words shown when the device may not sync yet.
pub const UNCONFIRMED: &str = "本设备还没有经镇中心确认登记，暂时不能同步。办件会保存在手机里。";

impl SyncStatus {
    /// Folds one event of the engine's loop into the status.
    pub fn apply(&mut self, event: &SyncEvent) {
        match event {
            SyncEvent::Started { cases, .. } => {
                self.running = true;
                self.progress = 0.0;
                self.message = if *cases > 0 {
                    format!("正在上传 {cases} 件…")
                } else {
                    "正在同步…".to_string()
                };
            }
            SyncEvent::Progress {
                bytes_done,
                bytes_total,
                cases_done,
                cases_total,
            } => {
                self.progress = if *bytes_total > 0 {
                    (*bytes_done as f32 / *bytes_total as f32).min(1.0)
                } else {
                    1.0
                };
                self.message = format!("正在上传：第 {cases_done}/{cases_total} 件");
            }
            SyncEvent::CatalogUpdated { version, changes } => {
                self.catalog_update = Some((*version, changes.clone()));
            }
            SyncEvent::Rejected { message, .. } => {
                self.message = format!("镇中心退回了一件：{message}")
            }
            SyncEvent::DeliveryRefused { message, .. } => {
                self.message = format!("镇中心没有接受送达记录：{message}")
            }
            SyncEvent::Finished {
                acknowledged,
                rejected,
                decisions,
            } => {
                self.running = false;
                self.online = Some(true);
                self.progress = 1.0;
                self.last_sync = Some(Utc::now());
                self.message = if *rejected == 0 {
                    format!("同步完成：上传 {acknowledged} 件，收到镇中心消息 {decisions} 条")
                } else {
                    format!("同步完成，但有 {rejected} 件被镇中心退回，请打开办件查看原因")
                };
            }
            SyncEvent::Failed { message, retry_in } => {
                self.message = message.clone();
                if retry_in.is_none() {
                    self.running = false;
                }
            }
            SyncEvent::Reachability { online } => {
                self.online = Some(*online);
                if !online {
                    self.running = false;
                    self.message = OFFLINE.to_string();
                }
            }
            // The run used the town's time; the agent must still set the phone's clock, so the
            // notice stays beside the result.
            SyncEvent::ClockNotice { message, .. } => {
                if !self.message.contains(message.as_str()) {
                    self.message = format!("{}。{message}", self.message.trim_end_matches('。'));
                }
            }
            SyncEvent::Acknowledged { .. }
            | SyncEvent::DeliveryRecorded { .. }
            | SyncEvent::Decision(_) => {}
        }
    }
}

/// The sync context: the status and the running loop's handle.
#[derive(Clone, Copy)]
pub struct SyncState {
    pub status: Signal<SyncStatus>,
    handle: Signal<Option<SyncHandle>>,
}

impl SyncState {
    pub fn new() -> SyncState {
        SyncState {
            status: Signal::new(SyncStatus::default()),
            handle: Signal::new(None),
        }
    }

    /// "立即同步", window focus, a new case in the outbox: sync now.
    pub fn poke(&self) {
        match self.handle.peek().as_ref() {
            Some(h) => h.network_changed(),
            None => {
                let mut status = self.status;
                status.write().message = UNCONFIRMED.to_string();
            }
        }
    }
}

impl Default for SyncState {
    fn default() -> SyncState {
        SyncState::new()
    }
}

/// Stops the loop when the screen tree that started it goes (or the enrolment changes).
struct LoopGuard(SyncHandle);

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Runs the engine's sync loop for a confirmed enrolment and folds its events into the status.
/// Restarts when the town centre or its key change (a new enrolment), not on other edits.
pub fn use_sync_loop() {
    let book = use_book();
    let enrolment = use_enrolment();
    let sync = crate::services::use_sync();
    let target = use_memo(move || {
        enrolment
            .read()
            .as_ref()
            .filter(|e| e.confirmed())
            .map(|e| (e.server.clone(), e.device_code.clone(), e.server_key))
    });
    use_resource(move || {
        let book = book.clone();
        let target = target();
        let mut status = sync.status;
        let mut handle = sync.handle;
        async move {
            let Some(e) = enrolment.peek().clone().filter(|_| target.is_some()) else {
                handle.set(None);
                return;
            };
            let transport = match e.transport() {
                Ok(t) => t,
                Err(err) => {
                    status.write().message = err.user_message();
                    return;
                }
            };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let store: Arc<dyn SyncStore> = Arc::new(book.clone());
            let cfg = LoopConfig {
                probe: Duration::from_secs(10),
                ..LoopConfig::default()
            };
            let h = spawn_sync_loop(store, transport, e.server_key, cfg, tx);
            let _guard = LoopGuard(h.clone());
            handle.set(Some(h));
            while let Some(event) = rx.recv().await {
                status.write().apply(&event);
                if let SyncEvent::Finished { .. } = event {
                    record_last_sync(&book, enrolment);
                }
            }
        }
    });
}

/// Keeps the time of the last good sync with the enrolment, so the home screen shows it after
/// a restart.
fn record_last_sync(book: &crate::services::book::Book, mut enrolment: Signal<Option<Enrolment>>) {
    let Some(mut e) = enrolment.peek().clone() else {
        return;
    };
    e.last_sync = Some(Utc::now());
    if book.save_enrolment(&e).is_ok() {
        enrolment.set(Some(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fold_into_plain_chinese_status() {
        let mut s = SyncStatus::default();
        s.apply(&SyncEvent::Reachability { online: false });
        assert_eq!((s.online, s.message.as_str()), (Some(false), OFFLINE));
        s.apply(&SyncEvent::Started {
            cases: 2,
            bytes: 10,
        });
        assert!(s.running);
        s.apply(&SyncEvent::Progress {
            cases_done: 1,
            cases_total: 2,
            bytes_done: 5,
            bytes_total: 10,
        });
        assert_eq!(s.progress, 0.5);
        assert!(s.message.contains("1/2"));
        s.apply(&SyncEvent::Finished {
            acknowledged: 2,
            rejected: 0,
            decisions: 1,
        });
        assert!(!s.running && s.last_sync.is_some() && s.online == Some(true));
        assert!(s.message.starts_with("同步完成"));
        s.apply(&SyncEvent::ClockNotice {
            offset_secs: 600,
            message: "手机时间慢了 10 分钟".into(),
        });
        assert!(s.message.contains("同步完成") && s.message.contains("慢了"));
    }
}
