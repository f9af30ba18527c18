//! The app's services, each a small typed context with its `use_*` hook: the catalog, the case
//! book (with its revision), the enrolment, the sync status and the original photos kept for the
//! corner editor.
//!
//! [`provide_services`] provides all of them; the app's root and the component tests call it, so
//! a screen under test sees exactly what it sees in the app. The sync loop is started separately
//! by the root ([`sync::use_sync_loop`]), because tests have no town centre to talk to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bianmin_engine::catalog::Catalog;
use bianmin_engine::enrolment::Enrolment;
use dioxus::prelude::*;

use crate::capture::pipeline::Originals;

pub mod book;
pub mod display;
pub mod keystore;
pub mod platform;
pub mod search;
pub mod sync;

use book::Book;
use sync::SyncState;

/// The catalog versions this device holds: the one the app shipped with (version 0) and every
/// published version sync brought, read from the book once and kept.
#[derive(Clone)]
pub struct Catalogs {
    shipped: Arc<Catalog>,
    book: Book,
    held: Arc<Mutex<BTreeMap<u32, Arc<Catalog>>>>,
}

impl Catalogs {
    /// Version `v` (0: the shipped catalog), if this device holds it intact.
    pub fn version(&self, v: u32) -> Option<Arc<Catalog>> {
        if v == 0 {
            return Some(self.shipped.clone());
        }
        let mut held = self.held.lock().expect("catalog cache lock");
        if let Some(c) = held.get(&v) {
            return Some(c.clone());
        }
        let c = Arc::new(
            self.book
                .outbox()
                .catalog_for(v)
                .map_err(|e| tracing::warn!(version = v, error = %e, "catalog version unreadable"))
                .ok()?,
        );
        held.insert(v, c.clone());
        Some(c)
    }

    /// The newest version held (0 before the first).
    fn newest(&self) -> u32 {
        self.book
            .outbox()
            .catalog_versions()
            .ok()
            .and_then(|v| v.last().copied())
            .unwrap_or(0)
    }
}

/// The catalog new cases follow, by version: a signal, so screens re-render when sync installs one.
#[derive(Clone, Copy)]
struct CurrentCatalogCtx(Signal<u32>);

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
    let catalogs = use_hook(|| Catalogs {
        shipped: catalog,
        book: book.clone(),
        held: Arc::default(),
    });
    let mut current = use_signal(|| catalogs.newest());
    use_context_provider(|| catalogs.clone());
    use_context_provider(|| CurrentCatalogCtx(current));
    use_context_provider(|| RevisionCtx(revision));
    use_context_provider(|| EnrolmentCtx(enrolment));
    use_context_provider(SyncState::new);
    use_context_provider(|| originals);
    let watched = book.clone();
    use_context_provider(|| book);
    // The book is written from worker threads too (scans, the sync loop): it counts writes in a
    // watch channel, and this task brings each change to the UI thread.
    use_future(move || {
        let catalogs = catalogs.clone();
        let mut changes = watched.subscribe();
        async move {
            while changes.changed().await.is_ok() {
                let now = *changes.borrow_and_update();
                revision.set(now);
                // Installing a catalog is a write like any other; only a new version re-renders.
                let newest = catalogs.newest();
                if newest != *current.peek() {
                    current.set(newest);
                }
            }
        }
    });
}

/// The catalog new cases follow (the newest version held).
pub fn use_catalog() -> Arc<Catalog> {
    let v = use_catalog_version();
    let catalogs = use_context::<Catalogs>();
    catalogs
        .version(v)
        .or_else(|| catalogs.version(0))
        .expect("the shipped catalog is always held")
}

/// The version number of [`use_catalog`] (0: the one the app shipped with).
pub fn use_catalog_version() -> u32 {
    use_context::<CurrentCatalogCtx>().0()
}

/// Every catalog version this device holds.
pub fn use_catalogs() -> Catalogs {
    use_context::<Catalogs>()
}

/// The catalog a case was made under, so it is shown and checked by the definition it was filled
/// against; `None` when this device does not hold that version.
pub fn use_catalog_for(version: u32) -> Option<Arc<Catalog>> {
    use_context::<Catalogs>().version(version)
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
