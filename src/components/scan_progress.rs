//! The "photo is being processed" state shown while a scan runs, with a button that cancels it.

use dioxus::prelude::*;

/// Indeterminate progress (the scanner reports no fraction; it takes well under a second on a
/// phone, longer on old ones) and 取消. After 取消 the button waits for the worker to stop, which
/// it does at its next check, so the screen never claims "cancelled" while a page is still being
/// written.
#[component]
pub fn ScanProgress(
    #[props(default = "正在处理照片…".to_string())] label: String,
    on_cancel: EventHandler<()>,
) -> Element {
    let mut cancelling = use_signal(|| false);
    rsx! {
        div { class: "scan-progress", role: "status",
            span { class: "scan-label", if cancelling() { "正在取消…" } else { "{label}" } }
            progress { class: "scan-bar" }
            button {
                class: "btn scan-cancel",
                disabled: cancelling(),
                onclick: move |_| {
                    cancelling.set(true);
                    on_cancel.call(());
                },
                "取消"
            }
        }
    }
}
