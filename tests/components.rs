//! Component tests with `VirtualDom` + `dioxus-ssr`: screens render the right content from the
//! catalog and the case book, without a window.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bianmin::capture::pipeline::{Originals, ORIGINALS_BUDGET};
use bianmin::route::Route;
use bianmin::services::book::Book;
use bianmin::services::provide_services;
use bianmin_engine::case::Case;
use bianmin_engine::catalog::Catalog;
use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::validate::checksum_char;
use bianmin_protocol::Applicant;
use chrono::Utc;
use dioxus::history::{provide_history_context, MemoryHistory};
use dioxus::prelude::*;

#[derive(Props, Clone)]
struct Harness {
    /// The book the test wrote to: the outbox is open once per process, like in the app.
    book: Book,
    route: Route,
    /// The originals the test captured into, as the app keeps them for its session.
    originals: Arc<Originals>,
}

impl PartialEq for Harness {
    fn eq(&self, other: &Harness) -> bool {
        self.book == other.book && self.route == other.route
    }
}

/// Provides exactly the services the app does, then shows one route through the app's router.
#[allow(non_snake_case)]
fn Wrapper(h: Harness) -> Element {
    provide_services(
        Arc::new(Catalog::embedded().unwrap()),
        h.book.clone(),
        h.originals.clone(),
    );
    use_hook(|| {
        provide_history_context(Rc::new(MemoryHistory::with_initial_path(
            h.route.to_string(),
        )))
    });
    rsx! { Router::<Route> {} }
}

fn dom(book: &Book, route: Route) -> VirtualDom {
    dom_with(book, route, Arc::new(Originals::new(ORIGINALS_BUDGET)))
}

fn dom_with(book: &Book, route: Route, originals: Arc<Originals>) -> VirtualDom {
    let mut dom = VirtualDom::new_with_props(
        Wrapper,
        Harness {
            book: book.clone(),
            route,
            originals,
        },
    );
    dom.rebuild_in_place();
    dom
}

fn render(book: &Book, route: Route) -> String {
    dioxus_ssr::render(&dom(book, route))
}

fn case_route(id: &str) -> Route {
    Route::CaseScreen { id: id.to_string() }
}

/// A valid resident ID number, born 1980-01-01.
fn valid_id() -> String {
    let first17 = "14042319800101123";
    format!("{first17}{}", checksum_char(first17.as_bytes()))
}

fn enrolled() -> (tempfile::TempDir, Book, Enrolment) {
    let dir = tempfile::tempdir().unwrap();
    let book = Book::open(dir.path()).unwrap();
    let e = Enrolment::offline(
        book.outbox(),
        "http://127.0.0.1:9",
        "140423101201",
        "李代办",
        Utc::now(),
    )
    .unwrap();
    book.save_enrolment(&e).unwrap();
    (dir, book, e)
}

fn new_case(book: &Book, e: &Enrolment, applicant: Applicant) -> Case {
    let case = book.create("V11", e).unwrap();
    for (k, v) in [
        ("applicant.name", applicant.name),
        ("applicant.id_number", applicant.id_number),
        ("applicant.phone", applicant.phone),
        ("applicant.address", applicant.address),
    ] {
        book.set_field(&case.id, k, &v).unwrap();
    }
    book.get(&case.id).unwrap()
}

/// A V11 case with every field and required material, sealed into the outbox.
fn sealed_case(book: &Book, e: &Enrolment) -> Case {
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V11").unwrap();
    let id = valid_id();
    let applicant = Applicant {
        name: "王秀英".into(),
        id_number: id.clone(),
        phone: "13934561234".into(),
        address: "古韩镇南关村".into(),
    };
    let case = new_case(book, e, applicant);
    let guide = item.guide.as_ref().unwrap();
    for f in &guide.fields {
        book.set_answer(&case.id, &f.key, Some(f.sample_answer(&id)))
            .unwrap();
    }
    let filled = book.get(&case.id).unwrap();
    let today = chrono::Local::now().date_naive();
    let needs =
        bianmin_engine::validate::material_needs(item, &filled.applicant, &filled.answers, today);
    for (n, m) in needs.iter().filter(|m| m.required).enumerate() {
        for p in 0..m.pages.len() {
            let photo = [0xFF, 0xD8, 0xFF, 0xE0, n as u8, p as u8];
            book.add_page(&case.id, &m.key, None, "p.jpg", &photo)
                .unwrap();
        }
    }
    book.seal(&case.id, item).unwrap()
}

#[test]
fn item_list_shows_every_village_item() {
    let (_dir, book, _) = enrolled();
    let html = render(&book, Route::ItemList {});
    assert!(html.contains("共 43 项"), "{html}");
    assert!(html.contains("城乡居民最低生活保障的申报"));
}

#[test]
fn guide_shows_the_one_time_notice() {
    let (_dir, book, _) = enrolled();
    let html = render(&book, Route::GuideScreen { code: "V11".into() });
    assert!(html.contains("一次性告知书"));
    assert!(html.contains("不收费"));
    assert!(html.contains("开始办理"));
}

#[test]
fn case_form_flags_a_wrong_id_number_in_plain_chinese() {
    let (_dir, book, e) = enrolled();
    let case = new_case(
        &book,
        &e,
        Applicant {
            name: "王秀英".into(),
            id_number: "140423198001011231".into(),
            ..Default::default()
        },
    );
    let html = render(&book, case_route(&case.id));
    assert!(html.contains("data-for=\"applicant.id_number\""), "{html}");
    assert!(html.contains("校验位"));
    // Untouched empty fields are not shouted at before the first 初审.
    assert!(!html.contains("data-for=\"applicant.phone\""));
}

#[test]
fn outbox_and_receipt_show_a_sealed_case() {
    let (_dir, book, e) = enrolled();
    let case = sealed_case(&book, &e);
    let html = render(&book, Route::Outbox {});
    assert!(html.contains("待上传"));
    assert!(html.contains("王**"), "names are masked in lists: {html}");
    let html = render(
        &book,
        Route::ReceiptScreen {
            id: case.id.clone(),
        },
    );
    assert!(html.contains(&format!("http://127.0.0.1:9/r/{}?t=", case.id)));
    assert!(html.contains("<svg"));
}

// --- Scan: corner editor, progress, and the material card's 调整边角 ---

use bianmin::capture::pipeline;
use bianmin::components::corner_editor::CornerEditor;
use bianmin::components::scan_progress::ScanProgress;
use bianmin_scan::{CancelToken, Point};

#[derive(Props, Clone, PartialEq)]
struct EditorHarness {
    corners: [Point; 4],
    busy: bool,
    error: Option<String>,
}

/// The editor as the material card shows it, on a 400×800 photo.
#[allow(non_snake_case)]
fn EditorWrapper(h: EditorHarness) -> Element {
    rsx! {
        CornerEditor {
            preview: "data:image/jpeg;base64,AAAA",
            width: 400,
            height: 800,
            corners: h.corners,
            auto_corners: h.corners,
            busy: h.busy,
            error: h.error,
            on_confirm: |_| {},
            on_cancel: |_| {},
        }
    }
}

fn render_editor(corners: [Point; 4], busy: bool, error: Option<String>) -> String {
    let mut dom = VirtualDom::new_with_props(
        EditorWrapper,
        EditorHarness {
            corners,
            busy,
            error,
        },
    );
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[test]
fn corner_editor_puts_four_handles_at_the_corners_scaled_to_the_stage() {
    // Pixel centres: x = 99.5 is a quarter of a 400-pixel-wide photo, y = 599.5 three quarters of 800.
    let corners = [
        Point::new(99.5, 199.5),
        Point::new(299.5, 199.5),
        Point::new(299.5, 599.5),
        Point::new(99.5, 599.5),
    ];
    let html = render_editor(corners, false, None);
    assert_eq!(html.matches("class=\"ce-handle\"").count(), 4, "{html}");
    for (i, (x, y), name) in [
        (0, (25, 25), "左上角"),
        (1, (75, 25), "右上角"),
        (2, (75, 75), "右下角"),
        (3, (25, 75), "左下角"),
    ] {
        let handle = format!(
            "data-corner=\"{i}\" role=\"button\" aria-roledescription=\"可拖动的角\" aria-label=\"{name}\" style=\"left: {x}.00%; top: {y}.00%;\""
        );
        assert!(html.contains(&handle), "handle {i} at {x}%/{y}%: {html}");
    }
    assert!(html.contains("src=\"data:image/jpeg;base64,AAAA\""));
    assert!(html.contains("aspect-ratio: 400 / 800"));
    for label in ["重置", "取消", "确定"] {
        assert!(html.contains(label), "{label}: {html}");
    }
    assert!(
        !html.contains("ce-hint"),
        "a proper quadrilateral gets no warning"
    );
    assert!(!html.contains("disabled"));
}

#[test]
fn corner_editor_refuses_corners_that_are_not_a_page() {
    let line = [
        Point::new(0.0, 0.0),
        Point::new(100.0, 100.0),
        Point::new(200.0, 200.0),
        Point::new(300.0, 300.0),
    ];
    let html = render_editor(line, false, Some("四个角的位置不对，请重新调整".into()));
    assert!(html.contains("ce-quad bad"), "{html}");
    assert!(html.contains("四个角围成的形状不对"));
    assert!(
        html.contains("四个角的位置不对，请重新调整"),
        "the last error is shown"
    );
    assert!(
        html.contains("id=\"ce-confirm\" disabled"),
        "确定 is disabled: {html}"
    );
}

#[test]
fn corner_editor_shows_progress_while_the_page_is_recut() {
    let corners = [
        Point::new(10.0, 10.0),
        Point::new(390.0, 10.0),
        Point::new(390.0, 790.0),
        Point::new(10.0, 790.0),
    ];
    let html = render_editor(corners, true, None);
    assert!(html.contains("正在处理照片…"), "{html}");
    assert!(html.contains("<progress"));
    assert!(html.contains("scan-cancel"));
    assert!(!html.contains("ce-confirm"), "no 确定 while busy");
}

#[allow(non_snake_case)]
fn ProgressWrapper() -> Element {
    rsx! { ScanProgress { on_cancel: |_| {} } }
}

#[test]
fn scan_progress_says_the_photo_is_processed_and_offers_cancel() {
    let mut dom = VirtualDom::new(ProgressWrapper);
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    assert!(html.contains("role=\"status\""), "{html}");
    assert!(html.contains("正在处理照片…"));
    assert!(html.contains("<progress class=\"scan-bar\""));
    assert!(html.contains(">取消</button>"));
}

/// A photo of a light page on a dark desk, as a JPEG.
fn desk_photo() -> Vec<u8> {
    let mut img = image::GrayImage::from_pixel(600, 800, image::Luma([45]));
    for y in 80..720 {
        for x in 100..500 {
            let ink = y > 120 && (y - 120) % 30 < 5 && x < 460;
            img.put_pixel(x, y, image::Luma([if ink { 30 } else { 225 }]));
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

#[test]
fn material_card_offers_the_corner_editor_only_while_the_original_is_in_memory() {
    let (_dir, book, e) = enrolled();
    let case = new_case(&book, &e, Applicant::default());
    let catalog = Catalog::embedded().unwrap();
    let guide = catalog.item("V11").unwrap().guide.clone().unwrap();
    let (scanned, stored_raw) = (&guide.materials[0], &guide.materials[1]);
    let originals = Arc::new(Originals::new(ORIGINALS_BUDGET));
    let got = pipeline::capture_page(
        &book,
        &originals,
        &case.id,
        scanned,
        None,
        desk_photo(),
        &CancelToken::new(),
    )
    .unwrap();
    // A page stored without this session's original (e.g. before a restart).
    book.add_page(
        &case.id,
        &stored_raw.key,
        None,
        "old.jpg",
        &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2],
    )
    .unwrap();
    let html = dioxus_ssr::render(&dom_with(&book, case_route(&case.id), originals.clone()));
    let card = |key: &str| {
        let start = html.find(&format!("data-material=\"{key}\"")).unwrap();
        let end = html[start + 1..]
            .find("data-material=")
            .map(|e| start + 1 + e)
            .unwrap_or(html.len());
        html[start..end].to_string()
    };
    let with_original = card(&scanned.key);
    assert!(
        with_original.contains(">调整边角</button>"),
        "{with_original}"
    );
    assert!(with_original.contains("已拍 1/"));
    let without = card(&stored_raw.key);
    assert!(without.contains(">重拍再调</button>"), "{without}");
    assert!(
        without.contains("原照片只在本次使用时暂存"),
        "the button says to retake: {without}"
    );
    assert!(originals.contains(&got.sha256));
}

#[test]
fn a_result_the_agent_brings_offers_the_delivered_button() {
    use bianmin_engine::sync::SyncStore;
    use bianmin_protocol::{Decision, DecisionEvent, Delivery};
    let (_dir, book, e) = enrolled();
    let case = sealed_case(&book, &e);
    let receipt = bianmin_protocol::sync::Receipt {
        case_id: case.id.clone(),
        version: 1,
        content_sha256: String::new(),
        received_at: Utc::now(),
        signature: String::new(),
    };
    book.outbox().mark_uploaded(&receipt).unwrap();
    let town = |decision: Decision| DecisionEvent {
        case_id: case.id.clone(),
        version: 1,
        decision,
        by: "镇中心".into(),
        at: Utc::now(),
    };
    book.outbox()
        .apply_town_event(1, &town(Decision::Received))
        .unwrap();
    let deadline = Utc::now().date_naive() + chrono::Days::new(10);
    book.outbox()
        .apply_town_event(2, &town(Decision::Accepted { deadline }))
        .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(!html.contains("mark-delivered"), "not before 办结");
    let done = Decision::Completed {
        result: "已批准".into(),
        delivery: Delivery::AgentDelivery,
    };
    book.outbox().apply_town_event(3, &town(done)).unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(html.contains("id=\"mark-delivered\""), "{html}");
    assert!(html.contains("送达方式：代办员送达"));

    // Pressed without signal: the phone shows the mark as kept and the button is gone.
    book.record_delivery(&case.id, "李代办").unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(html.contains("id=\"delivery-recorded\""), "{html}");
    assert!(html.contains("有信号时会自动报给镇中心"), "{html}");
    assert!(!html.contains("mark-delivered"));
    assert_eq!(book.outbox().pending_deliveries().unwrap().len(), 1);
    assert!(
        render(&book, Route::Outbox {}).contains("送达待上报"),
        "the outbox list says the mark is waiting"
    );
    assert_eq!(
        book.counts().waiting,
        1,
        "home counts the mark as waiting to go"
    );

    // The town refused it: the reason shows and the agent can record it again.
    book.outbox()
        .delivery_settled(&case.id, Some("镇中心的办件状态已经变化，送达未记录。"))
        .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(
        html.contains("镇中心的办件状态已经变化，送达未记录。"),
        "{html}"
    );
    assert!(html.contains("id=\"mark-delivered\""), "{html}");
}

/// Renders until `done` holds for the page, at most 10 s: the book's writes reach the screen
/// through a task (the revision mirror) and an effect (the case re-read), as in the app.
async fn settle(dom: &mut VirtualDom, done: impl Fn(&str) -> bool) -> String {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let html = dioxus_ssr::render(dom);
            if done(&html) {
                return html;
            }
            dom.wait_for_work().await;
            dom.render_immediate(&mut dioxus::core::NoOpMutations);
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("the screen never showed it: {}", dioxus_ssr::render(dom)))
}

#[tokio::test]
async fn an_open_case_shows_a_decision_as_soon_as_sync_applies_it() {
    use bianmin_engine::sync::SyncStore;
    use bianmin_protocol::{Decision, DecisionEvent};
    let (_dir, book, e) = enrolled();
    let case = sealed_case(&book, &e);
    let mut dom = dom(&book, case_route(&case.id));
    settle(&mut dom, |h| h.contains("data-state=\"queued\"")).await;
    // What the sync loop does, through the same store it is given: the book.
    let receipt = bianmin_protocol::sync::Receipt {
        case_id: case.id.clone(),
        version: 1,
        content_sha256: String::new(),
        received_at: Utc::now(),
        signature: String::new(),
    };
    SyncStore::mark_uploaded(&book, &receipt).unwrap();
    let deadline = Utc::now().date_naive() + chrono::Days::new(10);
    let accepted = DecisionEvent {
        case_id: case.id.clone(),
        version: 1,
        decision: Decision::Accepted { deadline },
        by: "镇中心".into(),
        at: Utc::now(),
    };
    SyncStore::apply_town_event(&book, 5, &accepted).unwrap();
    let html = settle(&mut dom, |h| h.contains("data-state=\"accepted\"")).await;
    assert!(
        html.contains(&format!("承诺办结日期：{deadline}")),
        "{html}"
    );
}

#[tokio::test]
async fn an_unenrolled_device_is_sent_to_enrolment_and_staff_to_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let book = Book::open(dir.path()).unwrap();
    let mut dom = dom(&book, Route::Outbox {});
    settle(&mut dom, |h| h.contains("id=\"enrol-submit\"")).await;

    let mut staff = Enrolment::offline(
        book.outbox(),
        "http://127.0.0.1:9",
        "140423100201",
        "张",
        Utc::now(),
    )
    .unwrap();
    staff.role = bianmin_protocol::sync::DeviceRole::Staff;
    book.save_enrolment(&staff).unwrap();
    let mut dom = self::dom(&book, Route::Home {});
    settle(&mut dom, |h| h.contains("id=\"inbox-refresh\"")).await;
}

/// A published version made from the shipped catalog with `edit` applied to V11's guide, installed
/// in the book as sync would install it.
fn install_version(
    book: &Book,
    version: u32,
    edit: impl FnOnce(&mut bianmin_engine::catalog::Guide),
) {
    let shipped = Catalog::embedded().unwrap();
    let mut items = shipped.items().to_vec();
    let v11 = items.iter_mut().find(|i| i.code == "V11").unwrap();
    edit(v11.guide.as_mut().unwrap());
    let catalog = shipped.with_items("test", items).unwrap();
    let manifest = bianmin_protocol::sync::CatalogManifest {
        version,
        hash: catalog.hash(),
        signature: String::new(),
        published_at: Utc::now(),
        changes: Vec::new(),
        parts: catalog.part_refs(),
    };
    book.outbox().install_catalog(&manifest, &catalog).unwrap();
}

/// A newer definition of V11: one more material, always required.
fn extra_material(g: &mut bianmin_engine::catalog::Guide) {
    let mut m = g.materials[0].clone();
    m.key = "extra_proof".into();
    m.name = "补充证明".into();
    m.capture = bianmin_engine::catalog::CaptureKind::Page;
    m.pages = vec!["第1页".into()];
    m.per = None;
    m.per_if = None;
    m.required = true;
    m.required_if = None;
    m.note = String::new();
    g.materials.push(m);
}

/// A valid ID number for a birth date and sequence, e.g. `("19850601", "101")`.
fn id_of(birth: &str, seq: &str) -> String {
    let first17 = format!("140423{birth}{seq}");
    format!("{first17}{}", checksum_char(first17.as_bytes()))
}

#[test]
fn a_household_item_lists_every_member_and_asks_for_each_ones_card() {
    let (_dir, book, e) = enrolled();
    install_version(&book, 1, |_| {});
    let case = new_case(
        &book,
        &e,
        Applicant {
            name: "王秀英".into(),
            id_number: valid_id(),
            phone: "13934561234".into(),
            address: "古韩镇南关村".into(),
        },
    );
    assert_eq!(
        case.catalog_version, 1,
        "a new case follows the newest version held"
    );
    // Two adults and a child: only those 16 and over show an ID card.
    let rows: Vec<std::collections::BTreeMap<String, String>> = [
        ("李大山", id_of("19550101", "101")),
        ("李二山", id_of("19850601", "102")),
        ("李小花", id_of("20150101", "202")),
    ]
    .iter()
    .map(|(n, id)| {
        [
            ("name".to_string(), n.to_string()),
            ("id_number".to_string(), id.clone()),
        ]
        .into_iter()
        .collect()
    })
    .collect();
    book.set_answer(
        &case.id,
        "members",
        Some(bianmin_protocol::Answer::Rows(rows)),
    )
    .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(
        html.contains("家庭成员") && html.contains("（共3人）"),
        "{html}"
    );
    for i in 0..3 {
        assert!(
            html.contains(&format!("f-members-{i}-name")),
            "row {i} has its inputs"
        );
    }
    assert!(html.contains("添加一人"));
    // Each member's household-register page; the card of each member 16 or over, both sides.
    assert!(
        html.contains("需3张：李大山：户口簿本人页、李二山：户口簿本人页、李小花：户口簿本人页"),
        "{html}"
    );
    assert!(
        html.contains("需4张：李大山：正面、李大山：反面、李二山：正面、李二山：反面"),
        "{html}"
    );
    assert!(html.contains("拍：李大山：正面"));
}

#[test]
fn a_draft_made_under_an_older_version_is_told_what_changed_and_keeps_its_own() {
    let (_dir, book, e) = enrolled();
    install_version(&book, 1, |_| {});
    let case = new_case(&book, &e, Applicant::default());
    install_version(&book, 2, extra_material);
    let html = render(&book, case_route(&case.id));
    assert!(html.contains("事项已更新（第2版）"), "{html}");
    assert!(html.contains("新增材料：补充证明（必交）"), "{html}");
    // Until moved, the draft is shown by the definition it was started with.
    assert!(!html.contains("data-material=\"extra_proof\""), "{html}");
    let moved = book.move_to_catalog(&case.id, 2).unwrap();
    assert_eq!(moved.catalog_version, 2);
    let html = render(&book, case_route(&case.id));
    assert!(!html.contains("事项已更新"), "{html}");
    assert!(html.contains("data-material=\"extra_proof\""), "{html}");
}

#[derive(Props, Clone, PartialEq)]
struct CheckHarness {
    case: Case,
}

#[allow(non_snake_case)]
fn CheckWrapper(h: CheckHarness) -> Element {
    use bianmin::views::town::check::TownCheck;
    let missing = use_signal(Vec::new);
    let item = Catalog::embedded().unwrap().item(&h.case.item).cloned();
    rsx! { TownCheck { case: h.case.clone(), item, missing } }
}

fn render_check(case: Case) -> String {
    let mut dom = VirtualDom::new_with_props(CheckWrapper, CheckHarness { case });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[test]
fn the_tablet_checks_a_received_case_again_and_offers_one_correction_for_all_gaps() {
    let (_dir, book, e) = enrolled();
    let mut case = sealed_case(&book, &e);
    case.state = bianmin_protocol::CaseState::Received;
    let html = render_check(case.clone());
    assert!(html.contains("data-problems=\"0\""), "{html}");
    assert!(html.contains("符合办事指南"), "{html}");

    // The back of the first card and the whole second material never arrived.
    case.materials[0].pages.truncate(1);
    case.materials.remove(1);
    let html = render_check(case);
    assert!(html.contains("镇初审发现"), "{html}");
    assert!(!html.contains("data-problems=\"0\""), "{html}");
    assert!(html.contains("还缺"), "{html}");
    assert!(html.contains("id=\"check-to-correction\""), "{html}");
}

// ---------------------------------------------------------------- ID number read from the card

use bianmin::capture::id_offer::{self, IdNumberOffer, IdOffer};

#[derive(Props, Clone)]
struct OfferHarness {
    book: Book,
    case: Case,
    offer: Option<IdOffer>,
}

impl PartialEq for OfferHarness {
    fn eq(&self, other: &OfferHarness) -> bool {
        self.book == other.book && self.offer == other.offer
    }
}

/// The offer as the ID card's material card shows it, with the app's services.
#[allow(non_snake_case)]
fn OfferWrapper(h: OfferHarness) -> Element {
    provide_services(
        Arc::new(Catalog::embedded().unwrap()),
        h.book.clone(),
        Arc::new(Originals::new(ORIGINALS_BUDGET)),
    );
    let case = use_signal(|| Some(h.case.clone()));
    let offer = use_signal(|| h.offer.clone());
    rsx! { IdNumberOffer { case, offer } }
}

fn render_offer(book: &Book, case: &Case, offer: Option<IdOffer>) -> String {
    let mut dom = VirtualDom::new_with_props(
        OfferWrapper,
        OfferHarness {
            book: book.clone(),
            case: case.clone(),
            offer,
        },
    );
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[test]
fn a_number_read_from_the_card_is_shown_for_confirmation_and_written_only_on_accept() {
    let (_dir, book, e) = enrolled();
    let case = new_case(
        &book,
        &e,
        Applicant {
            name: "王小明".into(),
            ..Default::default()
        },
    );
    let number = valid_id();
    let html = render_offer(&book, &case, Some(IdOffer::Read(number.clone())));
    assert!(html.contains("从身份证照片读出号码"), "{html}");
    assert!(html.contains(&number), "{html}");
    assert!(
        html.contains("填入身份证号码") && html.contains("不填"),
        "{html}"
    );
    // Shown, not written: the applicant's field is still empty.
    assert_eq!(book.get(&case.id).unwrap().field(id_offer::ID_FIELD), "");

    // The agent's 填入 writes it, and the form then shows it in the field.
    let saved = id_offer::accept(&book, &case.id, &number).unwrap();
    assert_eq!(saved.field(id_offer::ID_FIELD), number);
    assert_eq!(
        book.get(&case.id).unwrap().field(id_offer::ID_FIELD),
        number
    );
    let form = render(&book, case_route(&case.id));
    assert!(form.contains(&number), "the form shows the accepted number");
}

#[test]
fn an_unsure_reading_says_so_and_offers_nothing() {
    let (_dir, book, e) = enrolled();
    let case = new_case(&book, &e, Applicant::default());
    let html = render_offer(&book, &case, Some(IdOffer::Unsure));
    assert!(
        html.contains("没能从这张照片可靠地读出身份证号码"),
        "{html}"
    );
    assert!(!html.contains("填入身份证号码"), "{html}");
    assert_eq!(book.get(&case.id).unwrap().field(id_offer::ID_FIELD), "");
    // No photo read yet: nothing at all.
    assert!(!render_offer(&book, &case, None).contains("身份证号码"));
}

#[derive(Props, Clone, PartialEq)]
struct ReviewHarness {
    review: bianmin_protocol::bad_review::BadReview,
}

#[allow(non_snake_case)]
fn ReviewWrapper(h: ReviewHarness) -> Element {
    use bianmin::views::town::reviews::ReviewCard;
    rsx! { ReviewCard { review: h.review.clone(), person: "王镇办", busy: false, record: move |_| {} } }
}

fn render_review(review: bianmin_protocol::bad_review::BadReview) -> String {
    let mut dom = VirtualDom::new_with_props(ReviewWrapper, ReviewHarness { review });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn bad_review(
    steps: &[(&str, Option<&str>)],
    working_days_left: i64,
) -> bianmin_protocol::bad_review::BadReview {
    use bianmin_protocol::bad_review::{BadReview, ReviewStep, TimelineEntry};
    let order = ["verify", "rectify", "follow_up"];
    BadReview {
        case_id: "140423100201-20261130-D1-0001".into(),
        village_name: "古韩镇南关村".into(),
        item_name: "城乡居民养老保险参保登记".into(),
        applicant: "张三".into(),
        phone: "13800138000".into(),
        level: 1,
        level_label: "非常不满意".into(),
        efficiency: 2,
        quality: 3,
        attitude: 1,
        comment: "跑了三趟".into(),
        rated_at: Utc::now(),
        deadline: Utc::now().date_naive(),
        working_days_left,
        timeline: vec![
            TimelineEntry {
                at: Utc::now(),
                label: "已受理".into(),
                note: String::new(),
            },
            TimelineEntry {
                at: Utc::now(),
                label: "已办结".into(),
                note: "证明已开具".into(),
            },
        ],
        steps: steps
            .iter()
            .zip(order)
            .map(|((notes, outcome), kind)| ReviewStep {
                kind: kind.into(),
                by: "王镇办 (T1)".into(),
                at: Utc::now(),
                notes: notes.to_string(),
                outcome: outcome.map(str::to_string),
                follow_up_on: None,
                photos: Vec::new(),
            })
            .collect(),
        next_step: order.get(steps.len()).map(|s| s.to_string()),
        follow_up_due: None,
        follow_up_days_left: None,
    }
}

#[test]
fn a_bad_review_card_shows_contact_timeline_words_and_the_working_day_clock() {
    let html = render_review(bad_review(&[], 15));
    for want in [
        "城乡居民养老保险参保登记",
        "古韩镇南关村",
        "href=\"tel:13800138000\"",
        "张三",
        "非常不满意",
        "服务态度1",
        "群众意见：跑了三趟",
        "已受理",
        "已办结：证明已开具",
        "还剩15个工作日",
        "data-next=\"verify\"",
        "data-step=\"verify\"",
        "登记核实",
        "登记人：王镇办",
    ] {
        assert!(html.contains(want), "card lacks {want}: {html}");
    }
    // Nothing typed yet: the step cannot be sent empty; 核实 asks for no 回访 outcome.
    assert!(html.contains("disabled"), "{html}");
    assert!(!html.contains("step-outcome"), "{html}");
}

#[derive(Props, Clone)]
struct ServedReviewHarness {
    book: Book,
    review: bianmin_protocol::bad_review::BadReview,
}

impl PartialEq for ServedReviewHarness {
    fn eq(&self, other: &ServedReviewHarness) -> bool {
        self.book == other.book && self.review == other.review
    }
}

/// The card with the app's services, as the desk shows it (stored photos fetch thumbnails).
#[allow(non_snake_case)]
fn ServedReviewWrapper(h: ServedReviewHarness) -> Element {
    use bianmin::views::town::reviews::ReviewCard;
    provide_services(
        Arc::new(Catalog::embedded().unwrap()),
        h.book.clone(),
        Arc::new(Originals::new(ORIGINALS_BUDGET)),
    );
    rsx! { ReviewCard { review: h.review.clone(), person: "王镇办", busy: false, record: move |_| {} } }
}

#[test]
fn verify_and_rectify_take_photos_and_recorded_photos_show_as_thumbnails() {
    // 核实 next: the capture button (camera or file picker), nothing pending yet.
    let html = render_review(bad_review(&[], 15));
    assert!(
        html.contains("data-capture=\"review-photo\"") && html.contains("拍照片"),
        "{html}"
    );
    assert!(!html.contains("pending-photo"), "{html}");
    // 回访 next: a phone call, no photos.
    let html = render_review(bad_review(&[("已核实", None), ("已整改", None)], 5));
    assert!(!html.contains("review-photo"), "{html}");

    // A recorded 核实 with two photos: a thumbnail place for each, fetched from the town centre.
    let (_dir, book, _e) = enrolled();
    let mut r = bad_review(&[("已核实", None)], 10);
    r.steps[0].photos = vec!["ab".repeat(32), "cd".repeat(32)];
    let mut dom =
        VirtualDom::new_with_props(ServedReviewWrapper, ServedReviewHarness { book, review: r });
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    assert!(
        html.contains("class=\"step-photos\"")
            && html.contains("核实照片1")
            && html.contains("核实照片2"),
        "{html}"
    );
}

#[test]
fn a_rectification_asks_for_the_follow_up_day_and_the_card_shows_it_due_or_overdue() {
    // 整改 is next: a date field for the 回访, and nothing can be sent without notes and a day.
    let html = render_review(bad_review(&[("已核实", None)], 10));
    assert!(html.contains("data-step=\"rectify\""), "{html}");
    assert!(
        html.contains("class=\"step-follow-up\"") && html.contains("type=\"date\""),
        "{html}"
    );
    assert!(html.contains("回访日期（工作日）"), "{html}");
    assert!(html.contains("disabled"), "{html}");
    assert!(
        !html.contains("follow-up badge"),
        "nothing scheduled yet: {html}"
    );

    // 整改 recorded with a 回访 day: the card says 待回访 with the day, then 回访逾期 once the
    // town centre counts a working day past it.
    let due = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    let mut r = bad_review(&[("已核实", None), ("已整改", None)], 8);
    r.steps[1].follow_up_on = Some(due);
    r.follow_up_due = Some(due);
    r.follow_up_days_left = Some(1);
    let html = render_review(r.clone());
    assert!(html.contains("待回访（2026-12-04）"), "{html}");
    assert!(html.contains("约定回访：2026-12-04"), "{html}");
    assert!(!html.contains("follow-up badge error"), "{html}");
    assert!(
        !html.contains("step-follow-up"),
        "the 回访 form asks no day: {html}"
    );
    r.follow_up_days_left = Some(-1);
    let html = render_review(r);
    assert!(
        html.contains("回访逾期（应于2026-12-04回访）") && html.contains("follow-up badge error"),
        "{html}"
    );
}

#[test]
fn the_follow_up_asks_whether_the_resident_was_reached_and_a_closed_loop_shows_its_steps() {
    let html = render_review(bad_review(&[("已核实", None), ("已整改", None)], -2));
    assert!(html.contains("data-step=\"follow_up\""), "{html}");
    assert!(html.contains("class=\"step-outcome\""), "{html}");
    assert!(html.contains("已联系申请人并告知整改结果") && html.contains("未能联系上申请人"));
    assert!(
        html.contains("已超期2个工作日") && html.contains("badge error clock"),
        "{html}"
    );

    let html = render_review(bad_review(
        &[
            ("已核实", None),
            ("已整改", None),
            ("电话回访", Some("reached")),
        ],
        -2,
    ));
    assert!(
        html.contains("已闭环") && !html.contains("badge error"),
        "{html}"
    );
    assert!(!html.contains("step-submit"), "{html}");
    assert_eq!(html.matches("data-kind=").count(), 3, "{html}");
    assert!(
        html.contains("已联系申请人并告知整改结果。电话回访"),
        "{html}"
    );
}

#[tokio::test]
async fn staff_reach_the_bad_review_desk_from_the_inbox_and_agents_do_not() {
    let (_dir, book, e) = enrolled();
    // An agent is sent away from the town's screens.
    let mut dom = dom(&book, Route::TownReviews {});
    let html = settle(&mut dom, |h| h.contains("id=\"count-drafts\"")).await;
    assert!(!html.contains("reviews-refresh"), "{html}");

    let mut staff = e.clone();
    staff.role = bianmin_protocol::sync::DeviceRole::Staff;
    book.save_enrolment(&staff).unwrap();
    let mut dom = self::dom(&book, Route::TownInbox {});
    settle(&mut dom, |h| h.contains("id=\"open-reviews\"")).await;
    let mut dom = self::dom(&book, Route::TownReviews {});
    // The tablet's server is unreachable here: the desk says so in Chinese, and nothing else breaks.
    let html = settle(&mut dom, |h| {
        h.contains("id=\"reviews-refresh\"") && h.contains("class=\"error\"")
    })
    .await;
    assert!(html.contains("id=\"reviews-back\""), "{html}");
}

/// A V27 query case (one material, two more only when someone else asks) with the applicant filled.
fn simple_case(book: &Book, e: &Enrolment) -> Case {
    let catalog = Catalog::embedded().unwrap();
    let case = bianmin::views::case::known::start_case(book, &catalog, "V27", e).unwrap();
    for (k, v) in [
        ("applicant.name", "王秀英".to_string()),
        ("applicant.id_number", valid_id()),
        ("applicant.phone", "13934561234".to_string()),
    ] {
        book.set_field(&case.id, k, &v).unwrap();
    }
    book.get(&case.id).unwrap()
}

/// Adds pages `from..to` of a material (each a different picture: a photo taken twice is kept once).
fn add_pages(book: &Book, case: &Case, key: &str, from: u8, to: u8) {
    for p in from..to {
        let photo = [0xFF, 0xD8, 0xFF, 0xE0, key.len() as u8, p];
        book.add_page(&case.id, key, None, "p.jpg", &photo).unwrap();
    }
}

#[test]
fn a_new_case_starts_with_the_phone_s_village_as_the_applicant_s_address() {
    use bianmin::views::case::known::{start_case, ADDRESS_FIELD};
    let (_dir, book, e) = enrolled();
    let catalog = Catalog::embedded().unwrap();
    // The test phone is enrolled for 王桥镇王桥村 (140423101201).
    let case = start_case(&book, &catalog, "V11", &e).unwrap();
    assert_eq!(case.applicant.address, "襄垣县王桥镇王桥村");
    assert_eq!(
        book.get(&case.id).unwrap().field(ADDRESS_FIELD),
        "襄垣县王桥镇王桥村"
    );
    let html = render(&book, case_route(&case.id));
    assert!(
        html.contains(r#"id="f-applicant-address""#) && html.contains("襄垣县王桥镇王桥村"),
        "the address is on the form, to complete or correct: {html}"
    );
    // A village the divisions do not know: nothing is guessed.
    let elsewhere = Enrolment::offline(
        book.outbox(),
        "http://127.0.0.1:9",
        "140423109999",
        "李代办",
        Utc::now(),
    )
    .unwrap();
    let case = start_case(&book, &catalog, "V11", &elsewhere).unwrap();
    assert_eq!(case.applicant.address, "");
    // An item filed for the village itself has no applicant block to fill.
    let village_item = catalog
        .items()
        .iter()
        .find(|i| !i.applicant.is_resident())
        .expect("the catalog has an item the village files");
    let case = start_case(&book, &catalog, &village_item.code, &e).unwrap();
    assert_eq!(case.applicant.address, "");
}

#[test]
fn the_case_screen_stands_on_the_next_missing_material_and_ends_with_what_is_missing_and_submit() {
    let (_dir, book, e) = enrolled();
    let catalog = Catalog::embedded().unwrap();
    let case = bianmin::views::case::known::start_case(&book, &catalog, "V11", &e).unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(
        html.contains(r#"class="mat missing current" data-material="id_card""#),
        "the walk starts on the first material: {html}"
    );
    assert!(html.contains("逐项拍照：第1项"), "{html}");
    assert!(
        !html.contains(r#"id="walk-prev""#),
        "nothing before the first"
    );
    assert!(
        html.contains(r#"id="walk-skip""#),
        "another can be taken first"
    );
    // One side of the card: still the card (its other side); both: the household register.
    add_pages(&book, &case, "id_card", 0, 1);
    let html = render(&book, case_route(&case.id));
    assert!(html.contains(r#"class="mat missing current" data-material="id_card""#));
    assert!(html.contains("拍：反面"), "{html}");
    add_pages(&book, &case, "id_card", 1, 2);
    let html = render(&book, case_route(&case.id));
    assert!(
        html.contains(r#"class="mat missing current" data-material="household_register""#),
        "{html}"
    );
    assert!(
        html.contains(r#"id="walk-prev""#),
        "the way back to the card"
    );
    // The end lists what is still missing, photos and answers, and offers 提交.
    assert!(html.contains(r#"id="walk-end""#) && html.contains(r#"id="submit""#));
    assert!(html.contains("缺少材料：全体家庭成员户口簿"), "{html}");
    assert!(html.contains("申请人姓名"), "{html}");
    assert!(!html.contains(r#"id="walk-ready""#));
}

#[test]
fn a_complete_simple_case_has_no_current_material_and_says_it_can_be_submitted() {
    let (_dir, book, e) = enrolled();
    let case = simple_case(&book, &e);
    let catalog = Catalog::embedded().unwrap();
    let guide = catalog.item("V27").unwrap().guide.clone().unwrap();
    for f in guide.fields.iter() {
        book.set_answer(&case.id, &f.key, Some(f.sample_answer(&valid_id())))
            .unwrap();
    }
    let html = render(&book, case_route(&case.id));
    assert!(
        html.contains(r#"class="mat missing current" data-material="id_card""#),
        "{html}"
    );
    add_pages(&book, &case, "id_card", 0, 2);
    let html = render(&book, case_route(&case.id));
    assert!(!html.contains(" current\""), "the walk has ended: {html}");
    assert!(html.contains(r#"id="walk-ready""#), "{html}");
    assert!(html.contains(r#"id="submit""#));
}

#[test]
fn a_material_that_depends_on_an_answer_is_hidden_until_it_applies() {
    let (_dir, book, e) = enrolled();
    let case = simple_case(&book, &e);
    // V27: the authorisation and the agent's card only when someone else asks (委托他人代查).
    let html = render(&book, case_route(&case.id));
    assert!(html.contains(r#"data-material="id_card""#));
    assert!(!html.contains(r#"data-material="authorization""#), "{html}");
    assert!(!html.contains(r#"data-material="agent_id""#));
    book.set_field(&case.id, "query_by", "委托他人代查")
        .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(html.contains(r#"data-material="authorization""#), "{html}");
    assert!(html.contains(r#"data-material="agent_id""#));
}

#[test]
fn a_household_that_includes_the_applicant_offers_them_as_the_first_member() {
    use std::collections::BTreeMap;
    let (_dir, book, e) = enrolled();
    let catalog = Catalog::embedded().unwrap();
    // V32 本户参保人员（含申请人本人）: offered once the applicant is known.
    let case = bianmin::views::case::known::start_case(&book, &catalog, "V32", &e).unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(
        !html.contains(r#"id="add-self-members""#),
        "nothing to copy yet"
    );
    book.set_field(&case.id, "applicant.name", "王秀英")
        .unwrap();
    book.set_field(&case.id, "applicant.id_number", &valid_id())
        .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(html.contains(r#"id="add-self-members""#), "{html}");
    assert!(html.contains("＋ 申请人本人"));
    // The applicant's ID number already says sex, birth date and age: shown, not asked.
    assert!(
        html.contains(r#"data-derived="applicant.id_number""#)
            && html.contains("按身份证号码：男，1980年1月1日出生"),
        "{html}"
    );
    // The row the button writes, as the screen then shows it: copied, 本人 derived, offer gone.
    let group = catalog
        .item("V32")
        .unwrap()
        .guide
        .as_ref()
        .unwrap()
        .fields
        .iter()
        .find(|f| f.key == "members")
        .unwrap()
        .clone();
    let stored = book.get(&case.id).unwrap();
    let row = bianmin::views::case::household::offer(&group, &[], &stored.applicant).unwrap();
    book.set_answer(
        &case.id,
        "members",
        Some(bianmin_protocol::Answer::Rows(vec![row, BTreeMap::new()])),
    )
    .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(
        !html.contains(r#"id="add-self-members""#),
        "listed once: {html}"
    );
    assert!(html.contains("第1人（申请人本人）"), "{html}");
    assert!(html.contains(r#"data-derived="members.0.relation""#));
    assert!(html.contains(r#"data-derived="members.0.id_number""#));
    assert!(html.contains("按申请人本人带入，可修改"));
    assert!(!html.contains("第2人（申请人本人）"));

    // V11 counts the household without the applicant (不含申请人): never offered.
    let case = new_case(
        &book,
        &e,
        Applicant {
            name: "王秀英".into(),
            id_number: valid_id(),
            phone: "13934561234".into(),
            address: String::new(),
        },
    );
    book.set_answer(
        &case.id,
        "members",
        Some(bianmin_protocol::Answer::Rows(vec![BTreeMap::new()])),
    )
    .unwrap();
    let html = render(&book, case_route(&case.id));
    assert!(html.contains(r#"id="add-members""#), "{html}");
    assert!(!html.contains(r#"id="add-self-members""#), "{html}");
}

/// A town tablet's book: enrolled as staff of 古韩镇 (the town's 9-digit code is its place).
fn tablet() -> (tempfile::TempDir, Book, Enrolment) {
    let (dir, book, mut e) = enrolled();
    e.role = bianmin_protocol::sync::DeviceRole::Staff;
    e.place = "140423100".into();
    e.person = "古韩镇窗口平板".into();
    book.save_enrolment(&e).unwrap();
    (dir, book, e)
}

#[tokio::test]
async fn the_town_window_offers_the_towns_villages_and_guided_items_first() {
    let (_dir, book, _) = tablet();
    let mut dom = dom(&book, Route::TownInbox {});
    settle(&mut dom, |h| h.contains("id=\"open-window\"")).await;
    let mut dom = self::dom(&book, Route::TownWindow {});
    let html = settle(&mut dom, |h| h.contains("id=\"window-items\"")).await;
    // 南关村 is a village of 古韩镇; 善福村 (善福镇) is not.
    assert!(html.contains("value=\"140423100201\""), "{html}");
    assert!(!html.contains("value=\"140423108201\""), "{html}");
    let first = html.find("data-code=\"T01\"").unwrap();
    let village = html.find("data-code=\"V01\"").unwrap();
    let bare = html.find("data-code=\"T03\"").unwrap();
    assert!(
        first < village && village < bare,
        "guided town items, village items, then the rest"
    );
    assert_eq!(
        html.matches("办事指南草稿，待县级确认").count(),
        93,
        "{html}"
    );
}

#[tokio::test]
async fn the_window_guide_tells_everything_and_an_unwritten_one_is_marked_a_draft() {
    let (_dir, book, _) = tablet();
    let guide = |code: &str| Route::WindowGuide {
        village: "140423100201".into(),
        code: code.into(),
    };
    let mut dom = dom(&book, guide("T01"));
    let html = settle(&mut dom, |h| h.contains("id=\"start-case\"")).await;
    assert!(
        html.contains("一次性告知书") && html.contains("老人户口簿"),
        "{html}"
    );
    assert!(
        html.contains("本指南为草稿") && html.contains("待县里确认"),
        "{html}"
    );
    let mut dom = self::dom(&book, guide("T03"));
    let html = settle(&mut dom, |h| h.contains("id=\"guide-missing\"")).await;
    assert!(html.contains("办事指南草稿，待县级确认"), "{html}");
    assert!(!html.contains("id=\"start-case\""), "{html}");
    // The village phone's guide says the same for such an item.
    let (_dir2, phone, _) = enrolled();
    let mut dom = self::dom(&phone, Route::GuideScreen { code: "T03".into() });
    settle(&mut dom, |h| h.contains("id=\"guide-missing\"")).await;
}

#[tokio::test]
async fn a_window_case_uses_the_phones_form_and_sends_to_the_town_instead_of_sealing() {
    let (_dir, book, e) = tablet();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("T01").unwrap();
    let case = book
        .create_for(
            "T01",
            bianmin_protocol::AgentRef {
                device_id: e.device_code.clone(),
                name: "王窗口".into(),
                village: "140423100201".into(),
            },
        )
        .unwrap();
    assert!(case.id.starts_with("140423100201-"), "{}", case.id);
    let mut dom = dom(
        &book,
        Route::WindowCase {
            id: case.id.clone(),
        },
    );
    let html = settle(&mut dom, |h| h.contains("id=\"window-send\"")).await;
    assert!(
        html.contains("补贴发放账户") && html.contains("老人居民身份证"),
        "{html}"
    );
    // Filled and photographed as the guide asks, and prechecked: the tablet offers to send it
    // to the town, never to seal it into an outbox.
    let first17 = "14042319400101123";
    let id = format!("{first17}{}", checksum_char(first17.as_bytes()));
    for (k, v) in [
        ("applicant.name", "赵桂兰"),
        ("applicant.id_number", id.as_str()),
        ("applicant.phone", "13934561234"),
        ("applicant.address", "古韩镇南关村"),
    ] {
        book.set_field(&case.id, k, v).unwrap();
    }
    for (k, v) in [("account_type", "社会保障卡"), ("applied_by", "老人本人")] {
        book.set_answer(&case.id, k, Some(bianmin_protocol::Answer::Text(v.into())))
            .unwrap();
    }
    for (n, (key, pages)) in [("id_card", 2), ("household_register", 2), ("bank_card", 1)]
        .into_iter()
        .enumerate()
    {
        for p in 0..pages {
            let photo = [0xFF, 0xD8, 0xFF, 0xE0, n as u8, p as u8];
            book.add_page(&case.id, key, None, "p.jpg", &photo).unwrap();
        }
    }
    book.precheck(&case.id, item).unwrap();
    let mut dom = self::dom(
        &book,
        Route::WindowCase {
            id: case.id.clone(),
        },
    );
    let html = settle(&mut dom, |h| h.contains("id=\"window-send\"")).await;
    assert!(html.contains("提交镇中心收件"), "{html}");
    assert!(!html.contains("id=\"submit\""), "{html}");
    assert_eq!(book.outbox().queued(), 0, "nothing waits in an outbox");
}

#[derive(Props, Clone, PartialEq)]
struct CountyHarness {
    view: bianmin_protocol::county::CountyView,
}

#[allow(non_snake_case)]
fn CountyWrapper(h: CountyHarness) -> Element {
    use bianmin::views::town::county::CountyBox;
    rsx! { CountyBox { view: h.view.clone(), busy: false, message: None, send: move |_| {} } }
}

fn render_county(view: bianmin_protocol::county::CountyView) -> String {
    let mut dom = VirtualDom::new_with_props(CountyWrapper, CountyHarness { view });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn county_view() -> bianmin_protocol::county::CountyView {
    use bianmin_protocol::county::{CountyStepView, CountyView};
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T02:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let step = |by: &str, note: &str| CountyStepView {
        by: by.into(),
        at,
        note: note.into(),
    };
    CountyView {
        office: "approval_centre".into(),
        office_name: "襄垣县行政审批服务中心".into(),
        forwarded: step("李窗口 (T1)", "材料齐全，请县里审批"),
        accepted: Some(step("襄垣县行政审批服务中心·赵审批", "")),
        deadline: chrono::NaiveDate::from_ymd_opt(2026, 12, 14),
        request: Some(step("襄垣县行政审批服务中心·赵审批", "请补充户口簿本人页")),
        decided: None,
        status: "待镇里补正".into(),
    }
}

#[test]
fn the_county_box_shows_the_countys_request_and_asks_for_a_reply() {
    let html = render_county(county_view());
    for want in [
        "襄垣县行政审批服务中心",
        "待镇里补正",
        "转县：李窗口 (T1)，2026-11-30 10:00；说明：材料齐全，请县里审批",
        "办结期限 2026-12-14",
        "id=\"county-request\"",
        "县要求补正",
        "请补充户口簿本人页",
        "id=\"county-reply\"",
        "重新报送县里",
    ] {
        assert!(html.contains(want), "county box lacks {want}: {html}");
    }
    assert!(!html.contains("county-decided"), "{html}");

    // Answered and decided: no request, no reply form, the decision with its author.
    let mut v = county_view();
    v.request = None;
    v.decided = Some(bianmin_protocol::county::CountyStepView {
        by: "襄垣县行政审批服务中心·赵审批".into(),
        at: v.forwarded.at,
        note: "准予办理".into(),
    });
    v.status = "已办结".into();
    let html = render_county(v);
    assert!(
        html.contains("县里的决定：襄垣县行政审批服务中心·赵审批") && html.contains("准予办理"),
        "{html}"
    );
    assert!(
        !html.contains("county-reply") && !html.contains("county-request"),
        "{html}"
    );
}

// ---------------------------------------------------------------- printed notices on the tablet

#[derive(Props, Clone)]
struct PrintHarness {
    book: Book,
    case: Case,
}

impl PartialEq for PrintHarness {
    fn eq(&self, other: &PrintHarness) -> bool {
        self.book == other.book && self.case == other.case
    }
}

/// The print box as the tablet's case view shows it, with the app's services and 谁在办理.
#[allow(non_snake_case)]
fn PrintWrapper(h: PrintHarness) -> Element {
    use bianmin::views::town::print::NoticePrint;
    provide_services(
        Arc::new(Catalog::embedded().unwrap()),
        h.book.clone(),
        Arc::new(Originals::new(ORIGINALS_BUDGET)),
    );
    bianmin::views::town::operator::provide_operator();
    rsx! { NoticePrint { case: h.case.clone() } }
}

fn print_buttons(book: &Book, case: Case) -> (String, Vec<String>) {
    let mut dom = VirtualDom::new_with_props(
        PrintWrapper,
        PrintHarness {
            book: book.clone(),
            case,
        },
    );
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    let kinds = html
        .split("data-kind=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    (html, kinds)
}

#[test]
fn the_tablet_offers_to_print_each_notice_the_case_s_state_supports_on_the_town_s_printer() {
    use bianmin_protocol::{CaseState, Decision, MissingItem};
    let (_dir, book, e) = enrolled();
    let mut case = sealed_case(&book, &e);

    // Just received: only the packet for the county.
    case.state = CaseState::Received;
    let (html, kinds) = print_buttons(&book, case.clone());
    assert_eq!(kinds, ["packet"], "{html}");
    assert!(html.contains("打印县级案卷"), "{html}");
    // Printed at the town centre: the tablet keeps nothing.
    assert!(html.contains("在镇中心的打印机上打印"), "{html}");
    assert!(!html.contains("print-message"), "{html}");

    // Accepted: the 受理通知书 too.
    case.state = CaseState::Accepted;
    case.accepted_on = Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    let (html, kinds) = print_buttons(&book, case.clone());
    assert_eq!(kinds, ["acceptance", "packet"], "{html}");
    assert!(html.contains("打印受理通知书"), "{html}");

    // 补正 with a list: the 补正材料通知书; without one there is nothing to tell at once.
    case.accepted_on = None;
    case.state = CaseState::CorrectionRequested;
    case.last_decision = Some(Decision::CorrectionRequested {
        missing: vec![MissingItem {
            key: "household_register".into(),
            note: "缺本人页".into(),
        }],
        note: String::new(),
    });
    let (html, kinds) = print_buttons(&book, case.clone());
    assert_eq!(kinds, ["correction", "packet"], "{html}");
    assert!(html.contains("打印补正材料通知书"), "{html}");
    case.last_decision = Some(Decision::CorrectionRequested {
        missing: vec![],
        note: String::new(),
    });
    assert_eq!(print_buttons(&book, case.clone()).1, ["packet"]);

    // 不予受理: the refusal notice with its appeal route.
    case.state = CaseState::Refused;
    case.last_decision = Some(Decision::Refused {
        reason: "不属于本镇受理范围".into(),
    });
    let (html, kinds) = print_buttons(&book, case);
    assert_eq!(kinds, ["refusal", "packet"], "{html}");
    assert!(html.contains("打印不予受理通知书"), "{html}");
}
