//! Component tests with `VirtualDom` + `dioxus-ssr`: screens render the right content from the
//! catalog and the case book, without a window.

use std::sync::Arc;

use bianmin::app::{Nav, Screen, Services};
use bianmin::services::book::{Book, Device, Role};
use bianmin::services::sync::{SyncStatus, SyncTrigger};
use bianmin::views::{case::CaseScreen, guide::GuideScreen, items::ItemList, outbox::Outbox, receipt::ReceiptScreen};
use bianmin::e2e::valid_id;
use bianmin_engine::case::Case;
use bianmin_engine::catalog::Catalog;
use bianmin_protocol::Applicant;
use chrono::Utc;
use dioxus::prelude::*;

#[derive(Props, Clone, PartialEq)]
struct Harness {
    /// The book the test wrote to: the outbox is open once per process, like in the app.
    book: Book,
    screen: Screen,
}

/// Provides the same context the app's shell does, then renders one screen.
#[allow(non_snake_case)]
fn Wrapper(h: Harness) -> Element {
    let book = h.book.clone();
    let device = use_signal(|| book.device());
    let revision = use_signal(|| 0u64);
    let sync = use_signal(SyncStatus::default);
    let sync_now = use_coroutine(|_rx: UnboundedReceiver<SyncTrigger>| async {});
    use_context_provider(|| Services {
        catalog: Arc::new(Catalog::embedded().unwrap()),
        book,
        device,
        revision,
        sync,
        sync_now,
        test_mode: false,
    });
    use_context_provider(|| Nav(Signal::new(vec![Screen::Home, h.screen.clone()])));
    match h.screen {
        Screen::Items => rsx! { ItemList {} },
        Screen::Guide(code) => rsx! { GuideScreen { code } },
        Screen::Case(id) => rsx! { CaseScreen { id } },
        Screen::Outbox => rsx! { Outbox {} },
        Screen::Receipt(id) => rsx! { ReceiptScreen { id } },
        _ => rsx! {},
    }
}

fn render(book: &Book, screen: Screen) -> String {
    let mut dom = VirtualDom::new_with_props(Wrapper, Harness { book: book.clone(), screen });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn enrolled() -> (tempfile::TempDir, Book, Device) {
    let dir = tempfile::tempdir().unwrap();
    let book = Book::open(dir.path()).unwrap();
    let dev = book.new_device(Role::Village, "http://127.0.0.1:9", "140423101201", "李代办", Utc::now()).unwrap();
    book.save_device(&dev).unwrap();
    (dir, book, dev)
}

fn new_case(book: &Book, dev: &Device, applicant: Applicant) -> Case {
    let mut case = book.create("V11", dev).unwrap();
    case.applicant = applicant;
    book.save_draft(&case).unwrap()
}

/// A V11 case with every field and required material, sealed into the outbox.
fn sealed_case(book: &Book, dev: &Device) -> Case {
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V11").unwrap();
    let id = valid_id();
    let applicant = Applicant { name: "王秀英".into(), id_number: id.clone(), phone: "13934561234".into(), address: "古韩镇南关村".into() };
    let mut case = new_case(book, dev, applicant);
    let guide = item.guide.as_ref().unwrap();
    case.answers = guide.fields.iter().map(|f| (f.key.clone(), f.sample_answer(&id))).collect();
    book.save_draft(&case).unwrap();
    for (n, m) in guide.materials.iter().filter(|m| m.required).enumerate() {
        for p in 0..m.count {
            let photo = [0xFF, 0xD8, 0xFF, 0xE0, n as u8, p as u8];
            book.add_page(&case.id, &m.key, None, "p.jpg", &photo).unwrap();
        }
    }
    book.seal(&case.id, item).unwrap()
}

#[test]
fn item_list_shows_every_village_item() {
    let (_dir, book, _) = enrolled();
    let html = render(&book, Screen::Items);
    assert!(html.contains("共 43 项"), "{html}");
    assert!(html.contains("城乡居民最低生活保障的申报"));
}

#[test]
fn guide_shows_the_one_time_notice() {
    let (_dir, book, _) = enrolled();
    let html = render(&book, Screen::Guide("V11".into()));
    assert!(html.contains("一次性告知书"));
    assert!(html.contains("不收费"));
    assert!(html.contains("开始办理"));
}

#[test]
fn case_form_flags_a_wrong_id_number_in_plain_chinese() {
    let (_dir, book, dev) = enrolled();
    let case = new_case(&book, &dev, Applicant { name: "王秀英".into(), id_number: "140423198001011231".into(), ..Default::default() });
    let html = render(&book, Screen::Case(case.id.clone()));
    assert!(html.contains("data-for=\"applicant.id_number\""), "{html}");
    assert!(html.contains("校验位"));
    // Untouched empty fields are not shouted at before the first 初审.
    assert!(!html.contains("data-for=\"applicant.phone\""));
}

#[test]
fn outbox_and_receipt_show_a_sealed_case() {
    let (_dir, book, dev) = enrolled();
    let case = sealed_case(&book, &dev);
    let html = render(&book, Screen::Outbox);
    assert!(html.contains("待上传"));
    assert!(html.contains("王**"), "names are masked in lists: {html}");
    let html = render(&book, Screen::Receipt(case.id.clone()));
    assert!(html.contains(&format!("http://127.0.0.1:9/r/{}?t=", case.id)));
    assert!(html.contains("<svg"));
}
