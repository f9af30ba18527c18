//! The app's services, each a small typed context with its `use_*` hook: the catalog, the case
//! book (with its revision), the enrolment, the sync status and the original photos kept for the
//! corner editor.
//!
//! [`provide_services`] provides all of them; the app's root and the component tests call it, so
//! a screen under test sees exactly what it sees in the app. The sync loop is started separately
//! by the root ([`sync::use_sync_loop`]), because tests have no town centre to talk to.

use std::sync::Arc;

use bianmin_engine::catalog::Catalog;
use bianmin_engine::enrolment::Enrolment;
use dioxus::prelude::*;

use crate::capture::pipeline::Originals;

pub mod book;
pub mod keystore;
pub mod platform;
pub mod search;
pub mod sync;

use book::Book;
use sync::SyncState;

/// The item catalog (read-only, shared).
#[derive(Clone)]
struct CatalogCtx(Arc<Catalog>);

/// The revision of the book as the UI sees it: screens that read the book read this first, so
/// they re-render after any write (a keystroke, a photo, a decision applied by sync).
#[derive(Clone, Copy)]
struct RevisionCtx(Signal<u64>);

/// This device's enrolment; `None` until enrolled.
#[derive(Clone, Copy)]
struct EnrolmentCtx(Signal<Option<Enrolment>>);

/// Provides every service as context, and mirrors the book's revision into a signal.
pub fn provide_services(catalog: Arc<Catalog>, book: Book, originals: Arc<Originals>) {
    let enrolment = use_signal(|| book.enrolment());
    let mut revision = use_signal(|| book.revision());
    use_context_provider(|| CatalogCtx(catalog));
    use_context_provider(|| RevisionCtx(revision));
    use_context_provider(|| EnrolmentCtx(enrolment));
    use_context_provider(SyncState::new);
    use_context_provider(|| originals);
    let watched = book.clone();
    use_context_provider(|| book);
    // The book is written from worker threads too (scans, the sync loop): it counts writes in a
    // watch channel, and this task brings each change to the UI thread.
    use_future(move || {
        let mut changes = watched.subscribe();
        async move {
            while changes.changed().await.is_ok() {
                let now = *changes.borrow_and_update();
                revision.set(now);
            }
        }
    });
}

/// The item catalog.
pub fn use_catalog() -> Arc<Catalog> {
    use_context::<CatalogCtx>().0
}

/// The case book on this device.
pub fn use_book() -> Book {
    use_context::<Book>()
}

/// The book's revision; read it in a screen or memo that shows what the book holds.
pub fn use_revision() -> Signal<u64> {
    use_context::<RevisionCtx>().0
}

/// This device's enrolment.
pub fn use_enrolment() -> Signal<Option<Enrolment>> {
    use_context::<EnrolmentCtx>().0
}

/// The sync status and the handle that pokes the sync loop.
pub fn use_sync() -> SyncState {
    use_context::<SyncState>()
}

/// The original photos of this session's pages (memory only), for the corner editor.
pub fn use_originals() -> Arc<Originals> {
    use_context::<Arc<Originals>>()
}
