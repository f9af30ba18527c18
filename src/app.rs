//! App root: opens the catalog and the case book, provides the services, runs the sync loop,
//! and shows the routes.

use std::sync::Arc;

use bianmin_engine::catalog::Catalog;
use dioxus::prelude::*;

use crate::capture::pipeline::{Originals, ORIGINALS_BUDGET};
use crate::route::Route;
use crate::services::book::Book;
use crate::services::sync::use_sync_loop;
use crate::services::{display, platform, provide_services, use_sync};

/// The app's stylesheet, compiled into the binary. `asset!()` resolved it only when cargo set
/// `CARGO_MANIFEST_DIR` (`cargo run`, `cargo test`), so `tools/run.sh` or a copied release binary
/// showed bare HTML; inline, it applies however the app is started.
pub const STYLE: &str = include_str!("../assets/style.css");

/// The page the desktop webview loads: Dioxus's default names no language (so a screen reader
/// and the font fallback guess at the Chinese) and forbids zooming; this one does neither.
#[cfg(not(any(target_os = "android", target_os = "ios")))]
const INDEX: &str = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>便民</title>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
</head>
<body><div id="main"></div></body>
</html>"#;

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
            .with_cfg(
                Config::new()
                    .with_menu(None)
                    .with_window(window)
                    .with_custom_index(INDEX.to_string()),
            )
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
            Ok((catalog, book)) => rsx! { Running { catalog, book } },
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

/// The app once its data opened: services, the sync loop, the window's focus, the routes.
#[component]
fn Running(catalog: Arc<Catalog>, book: Book) -> Element {
    provide_services(catalog, book, Arc::new(Originals::new(ORIGINALS_BUDGET)));
    use_sync_loop();
    let sync = use_sync();
    // Coming back to the window is when an agent expects fresh news from the town.
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    dioxus::desktop::use_wry_event_handler(move |event, _| {
        if let dioxus::desktop::tao::event::Event::WindowEvent {
            event: dioxus::desktop::tao::event::WindowEvent::Focused(true),
            ..
        } = event
        {
            sync.poke();
        }
    });
    #[cfg(any(target_os = "android", target_os = "ios"))]
    let _ = sync;
    let display = display::provide_display(platform::data_dir().ok());
    rsx! {
        style { id: "display-style", {display::root_style(display())} }
        Router::<Route> {}
        {e2e_driver()}
    }
}

/// The end-to-end driver, only in builds with the `e2e` feature (never in a release).
fn e2e_driver() -> Element {
    #[cfg(feature = "e2e")]
    return rsx! { crate::e2e::Driver {} };
    #[cfg(not(feature = "e2e"))]
    return rsx! {};
}
