//! App root: opens the catalog and the case book, provides them as context, and shows the current screen.

use std::sync::Arc;

use bianmin_engine::catalog::Catalog;
use dioxus::prelude::*;

use crate::services::book::{Book, Device, Role};
use crate::services::platform;
use crate::services::sync::{self, SyncStatus, SyncTrigger};
use crate::views::{
    case::CaseScreen, enrol::Enrol, guide::GuideScreen, home::Home, items::ItemList,
    outbox::Outbox, receipt::ReceiptScreen, town::TownInbox,
};

/// The app's stylesheet, compiled into the binary. `asset!()` resolved it only when cargo set
/// `CARGO_MANIFEST_DIR` (`cargo run`, `cargo test`), so `tools/run.sh` or a copied release binary
/// showed bare HTML; inline, it applies however the app is started.
pub const STYLE: &str = include_str!("../assets/style.css");

/// Services every screen may use, provided once at the root as context.
#[derive(Clone)]
pub struct Services {
    pub catalog: Arc<Catalog>,
    pub book: Book,
    /// This device's enrolment; `None` until enrolled.
    pub device: Signal<Option<Device>>,
    /// Bumped after every write to the book, so lists and counts re-read it.
    pub revision: Signal<u64>,
    pub sync: Signal<SyncStatus>,
    /// Wakes the background sync task.
    pub sync_now: Coroutine<SyncTrigger>,
    /// End-to-end test mode: capture also accepts a file path typed into a hidden field.
    pub test_mode: bool,
}

impl Services {
    /// Call after writing to the book.
    pub fn touched(&self) {
        let mut r = self.revision;
        *r.write() += 1;
    }
}

/// A screen of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Enrol,
    Home,
    Items,
    Guide(String),
    Case(String),
    Outbox,
    Receipt(String),
    TownInbox,
}

/// Screen history: the back button pops, home resets.
#[derive(Clone, Copy)]
pub struct Nav(pub Signal<Vec<Screen>>);

impl Nav {
    pub fn current(&self) -> Screen {
        self.0.read().last().cloned().unwrap_or(Screen::Home)
    }
    pub fn go(mut self, s: Screen) {
        self.0.write().push(s);
    }
    /// Replaces the current screen (e.g. guide → new case), so back skips it.
    pub fn replace(mut self, s: Screen) {
        let mut st = self.0.write();
        st.pop();
        st.push(s);
    }
    pub fn back(mut self) {
        let mut st = self.0.write();
        if st.len() > 1 {
            st.pop();
        }
    }
    pub fn home(mut self, s: Screen) {
        self.0.set(vec![s]);
    }
    pub fn can_go_back(&self) -> bool {
        self.0.read().len() > 1
    }
}

/// The first screen for an enrolment.
pub fn start_screen(device: &Option<Device>) -> Screen {
    match device {
        None => Screen::Enrol,
        Some(d) if d.role == Role::Town => Screen::TownInbox,
        Some(_) => Screen::Home,
    }
}

/// Starts the UI. On Linux this is a desktop window without the default menu bar.
pub fn launch() {
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    {
        use dioxus::desktop::{Config, LogicalPosition, LogicalSize, WindowBuilder};
        let window = WindowBuilder::new()
            .with_title("便民 · 村级代办")
            .with_position(LogicalPosition::new(0.0, 0.0))
            .with_inner_size(LogicalSize::new(360.0, 640.0));
        dioxus::LaunchBuilder::desktop()
            .with_cfg(Config::new().with_menu(None).with_window(window))
            .launch(App);
    }
    #[cfg(any(target_os = "android", target_os = "ios"))]
    dioxus::LaunchBuilder::mobile().launch(App);
}

fn open() -> Result<(Arc<Catalog>, Book), String> {
    let catalog = Catalog::embedded().map_err(|e| format!("事项清单加载失败：{e}"))?;
    let book = Book::open(&platform::data_dir()?)?;
    Ok((Arc::new(catalog), book))
}

/// The root component.
#[component]
pub fn App() -> Element {
    let opened = use_hook(open);
    rsx! {
        style { {STYLE} }
        match opened {
            Ok((catalog, book)) => rsx! { Shell { catalog, book } },
            Err(e) => rsx! {
                div { class: "fatal",
                    h1 { "应用无法启动" }
                    p { "{e}" }
                    p { "请联系县行政审批局技术支持。" }
                }
            },
        }
    }
}

/// Provides the services and runs the background sync task.
#[component]
fn Shell(catalog: Arc<Catalog>, book: Book) -> Element {
    let device = use_signal(|| book.device());
    let revision = use_signal(|| 0u64);
    let mut status = use_signal(SyncStatus::default);
    let sync_book = book.clone();
    let mut sync_revision = revision;
    let mut sync_device = device;
    let sync_now = use_coroutine(move |mut rx: UnboundedReceiver<SyncTrigger>| {
        let sync_book = sync_book.clone();
        async move {
            use futures_util::StreamExt;
            loop {
                let dev = device.peek().clone();
                if let Some(dev) = dev {
                    let was = status.peek().online;
                    let now_up = sync::reachable(&dev.server).await;
                    {
                        let mut s = status.write();
                        s.online = Some(now_up);
                        if !now_up {
                            s.message =
                                "连不上镇中心：办件已安全保存在手机里，有信号时会自动上传。"
                                    .to_string();
                        } else if was != Some(true) {
                            tracing::info!("town centre reachable at {}", dev.server);
                        }
                    }
                    // Only a device the town centre enrolled can sync (its key is registered there).
                    if now_up && dev.server_key.is_some() {
                        match sync::run_once(&sync_book, &dev, status).await {
                            Ok(()) => {
                                let mut d = dev.clone();
                                d.last_sync = Some(chrono::Utc::now());
                                if sync_book.save_device(&d).is_ok() {
                                    sync_device.set(Some(d));
                                }
                            }
                            Err(msg) => status.write().message = msg,
                        }
                        *sync_revision.write() += 1;
                    }
                }
                // Wait for the button, a focus event, or the next probe.
                let _ = tokio::time::timeout(sync::PROBE_EVERY, rx.next()).await;
            }
        }
    });
    use_context_provider(|| Services {
        catalog,
        book,
        device,
        revision,
        sync: status,
        sync_now,
        test_mode: std::env::var_os("BIANMIN_E2E").is_some(),
    });
    let nav = use_context_provider(|| Nav(Signal::new(vec![start_screen(&device.peek())])));
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    dioxus::desktop::use_wry_event_handler(move |event, _| {
        if let dioxus::desktop::tao::event::Event::WindowEvent {
            event: dioxus::desktop::tao::event::WindowEvent::Focused(true),
            ..
        } = event
        {
            sync_now.send(SyncTrigger::Focus);
        }
    });
    rsx! {
        div { class: "app",
            match nav.current() {
                Screen::Enrol => rsx! { Enrol {} },
                Screen::Home => rsx! { Home {} },
                Screen::Items => rsx! { ItemList {} },
                Screen::Guide(code) => rsx! { GuideScreen { code } },
                Screen::Case(id) => rsx! { CaseScreen { key: "{id}", id } },
                Screen::Outbox => rsx! { Outbox {} },
                Screen::Receipt(id) => rsx! { ReceiptScreen { id } },
                Screen::TownInbox => rsx! { TownInbox {} },
            }
        }
        crate::e2e::Driver {}
    }
}
