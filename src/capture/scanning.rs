//! The material card's capture controls: photo → scan → stored page, with progress and 取消, and
//! the 调整边角 button that opens the corner editor on a page's original.
//!
//! The scan and the write run on a worker ([`pipeline::off_thread`]); the screen only shows
//! progress and then re-reads the case from the book. A failure or a cancel leaves the case
//! exactly as it was, and says so on the card.

use std::sync::Arc;

use bianmin_engine::case::Case;
use bianmin_engine::catalog::Material;
use bianmin_scan::{CancelToken, Point};
use dioxus::prelude::*;

use super::id_offer::{self, IdNumberOffer, IdOffer};
use super::pipeline::{self, CaptureError, EditorView, Originals, RETAKE_TO_ADJUST};
use super::{CaptureButton, Photo};
use crate::components::corner_editor::CornerEditor;
use crate::components::scan_progress::ScanProgress;
use crate::services::book::Book;
use crate::services::{use_book, use_originals};

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
/// `on_stored` hears the material's key once a page is stored and the case re-read (the walk
/// moves on), except while an ID number read from the card waits to be confirmed here.
#[component]
pub fn ScanCapture(
    case: Signal<Option<Case>>,
    material: Material,
    label: String,
    retake: Signal<Option<usize>>,
    #[props(default)] on_stored: Option<EventHandler<String>>,
) -> Element {
    let services = use_book();
    let originals = use_originals();
    let mut busy = use_signal(|| None::<CancelToken>);
    let mut note = use_signal(|| None::<Note>);
    let mut offer = use_signal(|| None::<IdOffer>);

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
            let originals = originals.clone();
            let material = material.clone();
            offer.set(None);
            spawn(async move {
                let m = material.clone();
                // The applicant's ID card is also read for its number, on the same worker after
                // the page is stored (only then: a failed capture offers nothing).
                let read = m.key == id_offer::ID_CARD_MATERIAL;
                let result = pipeline::off_thread(move || {
                    let card = read.then(|| photo.bytes.clone());
                    let got = pipeline::capture_page(
                        &book,
                        &originals,
                        &id,
                        &m,
                        slot,
                        photo.bytes,
                        &token,
                    )?;
                    let number = card.map(|b| id_offer::read_offer(&b, &token));
                    Ok((got, number))
                })
                .await
                .unwrap_or(Err(CaptureError::Worker));
                busy.set(None);
                match result {
                    Ok((got, number)) => {
                        retake.set(None);
                        reload(&services, case);
                        // The agent is asked to confirm a number read from the card on this
                        // card: the walk waits rather than scroll the question away.
                        let asks = matches!(number, Some(IdOffer::Read(_)));
                        offer.set(number);
                        if let (Some(h), false) = (on_stored, asks) {
                            h.call(material.key.clone());
                        }
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
        IdNumberOffer { case, offer }
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
    let originals = use_originals();
    let editing = use_signal(|| Editing::Closed);
    let gone = use_signal(|| false);
    let page = Page {
        originals: originals.clone(),
        sha: sha.clone(),
        index,
        editing,
        gone,
        retake,
    };
    // A crop the scanner was unsure of: show the page with its outline and ask at once (one
    // page at a time, see `Originals::take_turn_to_ask`).
    {
        let page = page.clone();
        use_effect(move || {
            if page.originals.take_turn_to_ask(&page.sha) {
                page.open();
            }
        });
    }
    // Checked at each render: the cache is bounded, so an older page's original may have gone.
    let available = originals.contains(&sha);
    let opener = page.clone();
    rsx! {
        button {
            class: if available { "mini adjust" } else { "mini adjust stale" },
            "data-page": "{index}",
            title: if available { "拖动四个角重新裁切这一页" } else { RETAKE_TO_ADJUST },
            onclick: move |_| opener.open(),
            if available { "调整边角" } else { "重拍再调" }
        }
        if gone() {
            p { class: "mat-note error adjust-gone", "{RETAKE_TO_ADJUST}" }
        }
        EditorDialog { page, case, material }
    }
}

/// One page's corner-editing state, shared by its button and its dialog.
#[derive(Clone)]
struct Page {
    originals: Arc<Originals>,
    sha: String,
    index: usize,
    editing: Signal<Editing>,
    gone: Signal<bool>,
    retake: Signal<Option<usize>>,
}

impl PartialEq for Page {
    fn eq(&self, other: &Page) -> bool {
        self.sha == other.sha && self.index == other.index && self.editing == other.editing
    }
}

impl Page {
    /// The original has left memory: say so and arm 重拍 for this page.
    fn lost(&self) {
        let (mut editing, mut gone, mut retake) = (self.editing, self.gone, self.retake);
        editing.set(Editing::Closed);
        gone.set(true);
        retake.set(Some(self.index));
    }

    /// Opens the editor: the preview is made off the UI thread the first time.
    fn open(&self) {
        if !self.originals.contains(&self.sha) {
            return self.lost();
        }
        let token = CancelToken::new();
        let mut editing = self.editing;
        editing.set(Editing::Loading(token.clone()));
        let me = self.clone();
        spawn(async move {
            let (originals, sha) = (me.originals.clone(), me.sha.clone());
            let view = pipeline::off_thread(move || pipeline::editor_view(&originals, &sha))
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
                Err(e) => {
                    if !matches!(e, CaptureError::OriginalGone) {
                        tracing::warn!(error = ?e, "corner editor preview failed");
                    }
                    me.lost();
                }
            }
        });
    }

    /// Closing the editor without changes is the agent's answer: the page is whole.
    fn cancel(&self) {
        self.originals.checked(&self.sha);
        let mut editing = self.editing;
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

    /// Re-cuts the page with the agent's corners, off the UI thread; the editor stays open with
    /// them when that fails.
    fn confirm(
        &self,
        book: Book,
        case: Signal<Option<Case>>,
        material: Material,
        corners: [Point; 4],
    ) {
        let mut editing = self.editing;
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
        let me = self.clone();
        spawn(async move {
            let (originals, sha, writer) = (me.originals.clone(), me.sha.clone(), book.clone());
            let result = pipeline::off_thread(move || {
                pipeline::adjust_page(&writer, &originals, &id, &material, &sha, corners, &token)
            })
            .await
            .unwrap_or(Err(CaptureError::Worker));
            match result {
                Ok(_) => {
                    editing.set(Editing::Closed);
                    reload(&book, case);
                }
                Err(CaptureError::OriginalGone) => me.lost(),
                Err(e) => {
                    let error = (!e.is_cancelled()).then(|| e.message());
                    editing.set(Editing::Open {
                        view,
                        busy: None,
                        error,
                    });
                }
            }
        });
    }
}

/// The corner editor of one page while it is open (or its original is being loaded).
#[component]
fn EditorDialog(page: Page, case: Signal<Option<Case>>, material: Material) -> Element {
    let book = use_book();
    let prompt = page.originals.pending_check(&page.sha);
    let (on_cancel, on_confirm) = (page.clone(), page.clone());
    let cancel = move |_| on_cancel.cancel();
    let confirm = move |corners| on_confirm.confirm(book.clone(), case, material.clone(), corners);
    let editing = page.editing;
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
