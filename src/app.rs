//! App root: loads the catalog, provides it as context, and launches the desktop or mobile window.

use std::sync::Arc;

use bianmin_engine::catalog::Catalog;
use dioxus::prelude::*;

use crate::views::items::ItemList;

/// The app's stylesheet, bundled by Dioxus's asset system.
pub const STYLE: Asset = asset!("/assets/style.css");

/// Services every screen may use, provided once at the root as context.
#[derive(Clone)]
pub struct Services {
    pub catalog: Arc<Catalog>,
}

/// Starts the UI. On Linux this is a desktop window without the default menu bar.
pub fn launch() {
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    {
        use dioxus::desktop::{Config, LogicalSize, WindowBuilder};
        let window = WindowBuilder::new()
            .with_title("便民 · 村级代办")
            .with_inner_size(LogicalSize::new(400.0, 760.0));
        dioxus::LaunchBuilder::desktop()
            .with_cfg(Config::new().with_menu(None).with_window(window))
            .launch(App);
    }
    #[cfg(any(target_os = "android", target_os = "ios"))]
    dioxus::LaunchBuilder::mobile().launch(App);
}

/// The root component.
#[component]
pub fn App() -> Element {
    let services = use_context_provider(|| match Catalog::embedded() {
        Ok(catalog) => Ok(Services { catalog: Arc::new(catalog) }),
        Err(e) => Err(e.to_string()),
    });
    rsx! {
        document::Stylesheet { href: STYLE }
        match services {
            Ok(s) => rsx! { ItemList { catalog: s.catalog.clone() } },
            Err(e) => rsx! {
                div { class: "fatal",
                    h1 { "事项清单加载失败" }
                    p { "请联系县行政审批局更新应用。" }
                    pre { "{e}" }
                }
            },
        }
    }
}
