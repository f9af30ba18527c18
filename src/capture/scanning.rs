//! The material card's capture controls: photo → scan → stored page, with progress and 取消, and
//! the 调整边角 button that opens the corner editor on a page's original.
//!
//! The scan and the write run on a worker ([`pipeline::off_thread`]); the screen only shows
//! progress and then re-reads the case from the book. A failure or a cancel leaves the case
//! exactly as it was, and says so on the card.

use bianmin_engine::case::Case;
use bianmin_engine::catalog::Material;
use bianmin_scan::{CancelToken, Point};
use dioxus::prelude::*;

use super::pipeline::{self, CaptureError, EditorView, RETAKE_TO_ADJUST};
use super::{CaptureButton, Photo};
use crate::components::corner_editor::CornerEditor;
use crate::components::scan_progress::ScanProgress;
use crate::services::book::Book;
use crate::services::use_book;

/// A message on the material card.
#[derive(Debug, Clone, PartialEq)]
struct Note {
    text: String,
    error: bool,
    /// The page it is about: shown only while that page is still in the material.
    page: Option<String>,
}

fn pages_of(case: &Signal<Option<Case>>, material: &str) -> Vec<String> {
    case.read()
        .as_ref()
        .and_then(|c| {
            c.materials
                .iter()
                .find(|m| m.key == material)
                .map(|m| m.pages.iter().map(|p| p.sha256.clone()).collect())
        })
        .unwrap_or_default()
}

/// Re-reads the case after the worker wrote to it (the screen's copy predates the write).
fn reload(book: &Book, mut case: Signal<Option<Case>>) {
    let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
        return;
    };
    if let Some(fresh) = book.get(&id) {
        case.set(Some(fresh));
    }
}

/// The capture button of a material; while a photo is scanned, the progress and 取消 instead.
/// `retake` is the page the next photo replaces (set by the card's 重拍), cleared once stored.
#[component]
pub fn ScanCapture(
    case: Signal<Option<Case>>,
    material: Material,
    label: String,
    retake: Signal<Option<usize>>,
) -> Element {
    let services = use_book();
    let mut busy = use_signal(|| None::<CancelToken>);
    let mut note = use_signal(|| None::<Note>);

    let on_photo = {
        let material = material.clone();
        move |r: Result<Photo, String>| {
            let photo = match r {
                Ok(p) => p,
                Err(e) => {
                    return note.set(Some(Note {
                        text: e,
                        error: true,
                        page: None,
                    }))
                }
            };
            let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
                return;
            };
            if busy.peek().is_some() {
                return;
            }
            let token = CancelToken::new();
            busy.set(Some(token.clone()));
            note.set(None);
            let slot = *retake.peek();
            let book = services.clone();
            let services = services.clone();
            let material = material.clone();
            spawn(async move {
                let m = material.clone();
                let result = pipeline::off_thread(move || {
                    pipeline::capture_page(&book, &id, &m, slot, photo.bytes, &token)
                })
                .await
                .unwrap_or(Err(CaptureError::Worker));
                busy.set(None);
                match result {
                    Ok(got) => {
                        retake.set(None);
                        reload(&services, case);
                        // The page's 调整边角 opens the editor by itself for an unsure crop.
                        if let Some(why) = got.check {
                            note.set(Some(Note {
                                text: pipeline::check_question(why),
                                error: false,
                                page: Some(got.sha256),
                            }));
                        }
                    }
                    Err(e) if e.is_cancelled() => note.set(Some(Note {
                        text: "已取消，这张照片没有保存。".into(),
                        error: false,
                        page: None,
                    })),
                    Err(e) => {
                        tracing::warn!(material = %material.key, error = ?e, "capture failed");
                        note.set(Some(Note {
                            text: e.message(),
                            error: true,
                            page: None,
                        }));
                    }
                }
            });
        }
    };

    let pages = pages_of(&case, &material.key);
    let shown = note().filter(|n| n.page.as_ref().map(|p| pages.contains(p)).unwrap_or(true));
    rsx! {
        if let Some(token) = busy() {
            ScanProgress { on_cancel: move |_| token.cancel() }
        } else {
            CaptureButton { label, tag: "{material.key}", on_photo }
        }
        if let Some(n) = shown {
            p { class: if n.error { "mat-note error" } else { "mat-note" }, "data-note": "{material.key}", "{n.text}" }
        }
    }
}

/// Where the corner editor of one page is.
#[derive(Clone)]
enum Editing {
    Closed,
    /// Making the preview; the token marks it abandoned when 取消 is pressed meanwhile.
    Loading(CancelToken),
    Open {
        view: EditorView,
        busy: Option<CancelToken>,
        error: Option<String>,
    },
}

/// 调整边角 for page `index` (SHA-256 `sha`) of a material, and the editor it opens. When the
/// page's original is no longer in memory the button says to retake instead, and arms 重拍.
#[component]
pub fn AdjustCorners(
    case: Signal<Option<Case>>,
    material: Material,
    index: usize,
    sha: String,
    retake: Signal<Option<usize>>,
) -> Element {
    let services = use_book();
    let mut editing = use_signal(|| Editing::Closed);
    let mut gone = use_signal(|| false);

    let mut open = {
        let sha = sha.clone();
        move |_: ()| {
            if !pipeline::originals().contains(&sha) {
                gone.set(true);
                retake.set(Some(index));
                return;
            }
            let token = CancelToken::new();
            editing.set(Editing::Loading(token.clone()));
            let sha = sha.clone();
            spawn(async move {
                let view = pipeline::off_thread(move || pipeline::editor_view(&sha))
                    .await
                    .unwrap_or(Err(CaptureError::Worker));
                if token.is_cancelled() {
                    return;
                }
                match view {
                    Ok(view) => editing.set(Editing::Open {
                        view,
                        busy: None,
                        error: None,
                    }),
                    Err(CaptureError::OriginalGone) => {
                        editing.set(Editing::Closed);
                        gone.set(true);
                        retake.set(Some(index));
                    }
                    Err(e) => {
                        tracing::warn!(error = ?e, "corner editor preview failed");
                        editing.set(Editing::Closed);
                        gone.set(true);
                        retake.set(Some(index));
                    }
                }
            });
        }
    };

    // A crop the scanner was unsure of: show the page with its outline and ask at once (one
    // page at a time, see `take_turn_to_ask`).
    let prompt = pipeline::pending_check(&sha);
    {
        let mut open = open.clone();
        let sha = sha.clone();
        use_effect(move || {
            if pipeline::take_turn_to_ask(&sha) {
                open(());
            }
        });
    }

    let confirm = {
        let sha = sha.clone();
        let material = material.clone();
        move |corners: [Point; 4]| {
            let Editing::Open {
                view, busy: None, ..
            } = editing.peek().clone()
            else {
                return;
            };
            let Some(id) = case.peek().as_ref().map(|c| c.id.clone()) else {
                return;
            };
            let token = CancelToken::new();
            editing.set(Editing::Open {
                view: view.clone(),
                busy: Some(token.clone()),
                error: None,
            });
            let book = services.clone();
            let services = services.clone();
            let sha = sha.clone();
            let m = material.clone();
            spawn(async move {
                let result = pipeline::off_thread(move || {
                    pipeline::adjust_page(&book, &id, &m, &sha, corners, &token)
                })
                .await
                .unwrap_or(Err(CaptureError::Worker));
                match result {
                    Ok(_) => {
                        editing.set(Editing::Closed);
                        reload(&services, case);
                    }
                    Err(CaptureError::OriginalGone) => {
                        editing.set(Editing::Closed);
                        gone.set(true);
                        retake.set(Some(index));
                    }
                    Err(e) => {
                        // The editor stays open with the agent's corners; only the message is new.
                        let error = if e.is_cancelled() {
                            None
                        } else {
                            Some(e.message())
                        };
                        editing.set(Editing::Open {
                            view,
                            busy: None,
                            error,
                        });
                    }
                }
            });
        }
    };

    let cancel = {
        let sha = sha.clone();
        move |_| {
            // Closing the editor without changes is the agent's answer: the page is whole.
            pipeline::originals().checked(&sha);
            let now = editing.peek().clone();
            match now {
                Editing::Open {
                    busy: Some(token), ..
                } => token.cancel(),
                Editing::Loading(token) => {
                    token.cancel();
                    editing.set(Editing::Closed);
                }
                _ => editing.set(Editing::Closed),
            }
        }
    };

    // Checked at each render: the cache is bounded, so an older page's original may have gone.
    let available = pipeline::originals().contains(&sha);
    rsx! {
        button {
            class: if available { "mini adjust" } else { "mini adjust stale" },
            "data-page": "{index}",
            title: if available { "拖动四个角重新裁切这一页" } else { RETAKE_TO_ADJUST },
            onclick: move |_| open(()),
            if available { "调整边角" } else { "重拍再调" }
        }
        if gone() {
            p { class: "mat-note error adjust-gone", "{RETAKE_TO_ADJUST}" }
        }
        match editing() {
            Editing::Closed => rsx! {},
            Editing::Loading(_) => rsx! {
                div { class: "corner-editor loading", role: "dialog", "aria-label": "调整边角",
                    ScanProgress { label: "正在载入原照片…", on_cancel: cancel }
                }
            },
            Editing::Open { view, busy, error } => rsx! {
                CornerEditor {
                    preview: view.preview.data_url.clone(),
                    width: view.photo.width,
                    height: view.photo.height,
                    corners: view.corners,
                    auto_corners: view.auto_corners,
                    busy: busy.is_some(),
                    error,
                    prompt: prompt.map(pipeline::check_question),
                    on_confirm: confirm,
                    on_cancel: cancel,
                }
            },
        }
    }
}
