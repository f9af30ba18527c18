//! Corner editor: the original photo with the page's four corners as handles the agent drags,
//! for when the scanner cut the page wrong or found no edge at all.
//!
//! Positions are kept in the photo's displayed pixel coordinates (the scanner's corner space) and
//! drawn as percentages of the stage, so the same state lays out at 360×640 and 1280×800 and the
//! preview may be any downscale of the photo. Dragging uses pointer events (mouse, touch, pen);
//! the stage's screen rectangle, needed to turn a pointer position into photo coordinates, is
//! read again at every grab (the window may have been resized or rotated since), and moves are
//! applied only once it is known: a stale rectangle would throw the corner somewhere else.

use std::rc::Rc;

use bianmin_scan::geom::{is_convex, order_corners, polygon_area};
use bianmin_scan::Point;
use dioxus::html::geometry::PixelsRect;
use dioxus::prelude::*;

use super::scan_progress::ScanProgress;

/// Names of the corners, TL, TR, BR, BL, for screen readers and tests.
pub const CORNER_NAMES: [&str; 4] = ["左上角", "右上角", "右下角", "左下角"];

/// Whether four corners make a page the scanner can cut: a convex quadrilateral that is not tiny.
pub fn corners_valid(q: &[Point; 4]) -> bool {
    let q = order_corners(*q);
    is_convex(&q) && polygon_area(&q).abs() >= 64.0
}

/// Where a photo point sits on the stage, in percent (pixel centres: pixel `x` spans
/// `x - 0.5 ..= x + 0.5`, so the photo spans `-0.5 ..= width - 0.5`).
pub fn to_percent(p: Point, width: u32, height: u32) -> (f64, f64) {
    (
        (p.x as f64 + 0.5) / width.max(1) as f64 * 100.0,
        (p.y as f64 + 0.5) / height.max(1) as f64 * 100.0,
    )
}

/// The photo point under a fraction (0..=1) of the stage, clamped to the photo.
pub fn from_fraction(fx: f64, fy: f64, width: u32, height: u32) -> Point {
    let (w, h) = (width.max(1) as f64, height.max(1) as f64);
    Point::new(
        (fx.clamp(0.0, 1.0) * w - 0.5) as f32,
        (fy.clamp(0.0, 1.0) * h - 0.5) as f32,
    )
}

#[component]
pub fn CornerEditor(
    /// The photo, downscaled, as a `data:` URL.
    preview: String,
    /// The photo's displayed size: the space of `corners`.
    width: u32,
    height: u32,
    /// Where the handles start (TL, TR, BR, BL).
    corners: [Point; 4],
    /// Where 重置 puts them: the corners the scanner found on its own.
    auto_corners: [Point; 4],
    /// The page is being re-cut: handles are frozen and 取消 stops the work.
    #[props(default)]
    busy: bool,
    /// Why the last 确定 did not work; the handles stay where the agent put them.
    #[props(default)]
    error: Option<String>,
    /// Set when the scanner was unsure of the crop: the question (请检查是否拍全) and why.
    #[props(default)]
    prompt: Option<String>,
    on_confirm: EventHandler<[Point; 4]>,
    /// 取消: closes the editor, or while `busy` stops the re-cut.
    on_cancel: EventHandler<()>,
) -> Element {
    let mut points = use_signal(|| corners);
    let mut dragging = use_signal(|| None::<usize>);
    let mut stage = use_signal(|| None::<Rc<MountedData>>);
    let mut rect = use_signal(|| None::<PixelsRect>);

    let mut refresh_rect = move || {
        rect.set(None);
        spawn(async move {
            let Some(el) = stage.peek().clone() else {
                return;
            };
            if let Ok(r) = el.get_client_rect().await {
                rect.set(Some(r));
            }
        });
    };

    let q = points();
    let valid = corners_valid(&q);
    let ratio = width.max(1) as f64 / height.max(1) as f64;
    let polygon = q
        .iter()
        .map(|p| format!("{:.1},{:.1}", p.x + 0.5, p.y + 0.5))
        .collect::<Vec<_>>()
        .join(" ");

    rsx! {
        div {
            class: "corner-editor",
            role: "dialog",
            "aria-label": "调整边角",
            onpointermove: move |e: PointerEvent| {
                let Some(i) = *dragging.peek() else { return };
                let Some(r) = *rect.peek() else { return };
                if r.size.width <= 0.0 || r.size.height <= 0.0 {
                    return;
                }
                let c = e.client_coordinates();
                let p = from_fraction((c.x - r.origin.x) / r.size.width, (c.y - r.origin.y) / r.size.height, width, height);
                points.write()[i] = p;
            },
            onpointerup: move |_| dragging.set(None),
            onpointercancel: move |_| dragging.set(None),
            header { class: "ce-bar",
                h2 { "调整边角" }
                if let Some(q) = &prompt {
                    p { class: "ce-prompt", id: "ce-prompt", "{q}" }
                }
                p { class: "muted", "拖动四个圆点到纸张的四个角，然后点“确定”。" }
            }
            div { class: "ce-area",
                div {
                    class: "ce-stage",
                    style: "width: min(100%, calc((100vh - 230px) * {ratio:.5})); aspect-ratio: {width} / {height};",
                    "data-width": "{width}",
                    "data-height": "{height}",
                    "data-ready": rect().is_some(),
                    onmounted: move |e: MountedEvent| {
                        stage.set(Some(e.data()));
                        refresh_rect();
                    },
                    img { class: "ce-photo", src: "{preview}", alt: "原照片", draggable: "false" }
                    svg {
                        class: if valid { "ce-quad" } else { "ce-quad bad" },
                        view_box: "0 0 {width} {height}",
                        preserve_aspect_ratio: "none",
                        polygon { points: "{polygon}" }
                    }
                    for i in 0..4 {
                        CornerHandle { key: "{i}", index: i, points, width, height, active: dragging() == Some(i), busy,
                            on_grab: move |i| { dragging.set(Some(i)); refresh_rect(); } }
                    }
                }
            }
            if !valid {
                p { class: "ce-hint error", "四个角围成的形状不对，请拖成纸张的四边形。" }
            }
            if let Some(e) = error {
                p { class: "ce-error error", "{e}" }
            }
            if busy {
                ScanProgress { on_cancel: move |_| on_cancel.call(()) }
            } else {
                div { class: "ce-actions",
                    button { class: "btn", id: "ce-reset", onclick: move |_| points.set(auto_corners), "重置" }
                    button { class: "btn", id: "ce-cancel", onclick: move |_| on_cancel.call(()), if prompt.is_some() { "已拍全" } else { "取消" } }
                    button {
                        class: "btn primary",
                        id: "ce-confirm",
                        disabled: !valid,
                        onclick: move |_| on_confirm.call(points()),
                        "确定"
                    }
                }
            }
        }
    }
}

/// One draggable corner: grabbed with a pointer (mouse, touch, pen), nudged with the arrow keys
/// when focused (keyboards on tablets, and fine placement where a finger covers the corner).
#[component]
fn CornerHandle(
    index: usize,
    points: Signal<[Point; 4]>,
    width: u32,
    height: u32,
    active: bool,
    busy: bool,
    on_grab: EventHandler<usize>,
) -> Element {
    let (x, y) = to_percent(points.read()[index], width, height);
    rsx! {
        div {
            class: if active { "ce-handle active" } else { "ce-handle" },
            "data-corner": "{index}",
            // A focusable handle moved by drag or arrow keys: named, with a role that allows the name.
            role: "button",
            "aria-roledescription": "可拖动的角",
            "aria-label": "{CORNER_NAMES[index]}",
            style: "left: {x:.2}%; top: {y:.2}%;",
            tabindex: "0",
            onkeydown: move |e: KeyboardEvent| {
                if busy {
                    return;
                }
                let step = (width.max(height) as f32 / 200.0).max(1.0);
                let (dx, dy) = match e.key() {
                    Key::ArrowLeft => (-step, 0.0),
                    Key::ArrowRight => (step, 0.0),
                    Key::ArrowUp => (0.0, -step),
                    Key::ArrowDown => (0.0, step),
                    _ => return,
                };
                e.prevent_default();
                let p = points.peek()[index];
                let max = (width as f32 - 0.5, height as f32 - 0.5);
                points.write()[index] = Point::new((p.x + dx).clamp(-0.5, max.0), (p.y + dy).clamp(-0.5, max.1));
            },
            onpointerdown: move |e: PointerEvent| {
                if busy {
                    return;
                }
                e.prevent_default();
                on_grab.call(index);
            },
        }
    }
}
