//! The full-size page viewer of the tablet.

use dioxus::prelude::*;

use super::pages::{PageRef, PageView};

/// Viewer zoom steps: 100 shows the whole page (fitted to width and height), the others are
/// percent of the screen width.
pub const ZOOMS: [u32; 4] = [100, 150, 200, 300];

/// The full-size page viewer: the whole page first (an A4 page on a landscape tablet is not cut
/// to its top third), zoom by buttons, keys or pinch, scroll to
/// pan; 上一页/下一页 walk every page of the case in reading order.
#[component]
pub fn PageViewer(
    index: usize,
    total: usize,
    page: PageRef,
    view: PageView,
    zoom: u32,
    on_close: EventHandler<()>,
    on_step: EventHandler<i64>,
    on_zoom: EventHandler<i64>,
    on_retry: EventHandler<()>,
) -> Element {
    let label = format!("{} 第{}/{}页", page.material, page.n, page.of);
    rsx! {
        div { class: "viewer", id: "viewer", role: "dialog", "aria-label": "{label}", tabindex: "0", "data-index": "{index}",
            onmounted: move |e: MountedEvent| async move { let _ = e.set_focus(true).await; },
            onkeydown: move |e: KeyboardEvent| match e.key() {
                Key::Escape => on_close.call(()),
                Key::ArrowLeft | Key::PageUp => on_step.call(-1),
                Key::ArrowRight | Key::PageDown => on_step.call(1),
                Key::Character(c) if c == "+" || c == "=" => on_zoom.call(1),
                Key::Character(c) if c == "-" => on_zoom.call(-1),
                _ => {}
            },
            div { class: "viewer-bar",
                span { class: "viewer-title", "{label} ", small { "（全部{total}页中的第{index + 1}页）" } }
                button { class: "btn", id: "viewer-prev", disabled: index == 0, onclick: move |_| on_step.call(-1), "上一页" }
                button { class: "btn", id: "viewer-next", disabled: index + 1 >= total, onclick: move |_| on_step.call(1), "下一页" }
                button { class: "btn", id: "viewer-zoom-out", disabled: zoom <= ZOOMS[0], onclick: move |_| on_zoom.call(-1), "缩小" }
                button { class: "btn", id: "viewer-zoom-in", disabled: zoom >= ZOOMS[ZOOMS.len() - 1], onclick: move |_| on_zoom.call(1), "放大" }
                button { class: "btn primary", id: "viewer-close", onclick: move |_| on_close.call(()), "关闭" }
            }
            div { class: "viewer-stage",
                match view {
                    PageView::Ready(url) => rsx! {
                        if zoom <= ZOOMS[0] {
                            img { id: "viewer-img", class: "fit", src: "{url}", alt: "{label}", "data-zoom": "{zoom}" }
                        } else {
                            img { id: "viewer-img", src: "{url}", alt: "{label}", style: "width: {zoom}%;", "data-zoom": "{zoom}" }
                        }
                    },
                    PageView::Loading => rsx! { p { class: "viewer-msg", id: "viewer-loading", "正在载入这一页…" } },
                    PageView::Failed(e) => rsx! {
                        div { class: "viewer-msg", id: "viewer-error",
                            p { "{e}" }
                            button { class: "btn primary", onclick: move |_| on_retry.call(()), "重试" }
                        }
                    },
                }
            }
        }
    }
}
