//! The scan step of capture: a photo becomes the stored page, and a page can be re-cut from its
//! original with corners the agent moved by hand.
//!
//! Everything here is plain blocking code, run on a worker thread by [`off_thread`] so the UI
//! stays responsive while a 12 MP photo is decoded, warped and encoded. The worker also writes
//! the page to the outbox (which serialises its own writes), so a page the scan finished is
//! stored even if the agent leaves the screen meanwhile; only [`CancelToken`] stops it, and a
//! cancelled capture writes nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_engine::catalog::{CaptureKind, Material};
use bianmin_scan::{CancelToken, ColorMode, PhotoInfo, Point, ScanError, ScanOptions};
use sha2::{Digest, Sha256};

use crate::services::book::Book;

/// Scan settings for a material from its catalog entry: ID-card or A4 outline, colour where the
/// catalog says it carries meaning (photos, seals) or the page itself shows red, grayscale
/// otherwise (smaller uploads).
pub fn options_for(material: &Material) -> ScanOptions {
    let mut opts = match material.capture {
        CaptureKind::Card => ScanOptions::card(),
        CaptureKind::Page => ScanOptions::default(),
    };
    // Pages decide by content too: a red seal or title keeps colour even where the catalog
    // did not ask for it.
    opts.color = if material.color {
        ColorMode::Color
    } else {
        ColorMode::Auto
    };
    // Phones have 4-8 cores and the agent is waiting; more than 4 helpers gains little.
    opts.threads = std::thread::available_parallelism()
        .map(|n| n.get().min(4))
        .unwrap_or(1);
    opts
}

/// Why a capture or an adjustment did not store a page.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureError {
    /// The scan failed or was cancelled.
    Scan(ScanError),
    /// The outbox did not take the page (already a Chinese message).
    Store(String),
    /// The original photo of a page is no longer held in memory.
    OriginalGone,
    /// The worker thread could not start or died.
    Worker,
}

impl CaptureError {
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CaptureError::Scan(ScanError::Cancelled))
    }

    /// What the agent is told, in Chinese.
    pub fn message(&self) -> String {
        match self {
            CaptureError::Scan(e) => e.user_message().to_string(),
            CaptureError::Store(m) => m.clone(),
            CaptureError::OriginalGone => RETAKE_TO_ADJUST.to_string(),
            CaptureError::Worker => "处理出错，请重试".to_string(),
        }
    }
}

impl From<ScanError> for CaptureError {
    fn from(e: ScanError) -> Self {
        CaptureError::Scan(e)
    }
}

/// Shown when a page's original photo is gone and its corners can no longer be adjusted.
pub const RETAKE_TO_ADJUST: &str =
    "原照片只在本次使用时暂存在内存里，现已不在，无法调整边角。请重拍这一页。";
/// Asked whenever the scanner was not sure it has the whole page; the corner editor opens with it.
pub const CHECK_WHOLE_PAGE: &str = "请检查是否拍全";

/// The question shown for an unsure page: the scanner's reason, which ends with the question
/// already for every unsure outcome, so it is not asked twice in one line.
pub fn check_question(why: &str) -> String {
    if why.contains(CHECK_WHOLE_PAGE) {
        why.to_string()
    } else {
        format!("{CHECK_WHOLE_PAGE}：{why}")
    }
}

/// A page that was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// SHA-256 (hex) of the stored page, as the outbox names it in the case.
    pub sha256: String,
    /// False when the scanner found no page edge and used the whole frame.
    pub detected: bool,
    /// The scanner was not sure of the crop: why, in Chinese (the agent is asked to check).
    pub check: Option<&'static str>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One scan at a time: a 12 MP decode and its warp take tens of MB, and a cheap phone should not
/// hold two or three of those because the agent started captures on several materials at once.
/// The others wait (still showing progress, still cancellable) and run in turn.
fn scan_slot() -> std::sync::MutexGuard<'static, ()> {
    static SLOT: Mutex<()> = Mutex::new(());
    SLOT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Scans `photo` for `material` and stores the result in the case: a new page, or page `slot`
/// replaced (a retake). The original is kept in `originals` for the corner editor. On any
/// error nothing is written and the case is as it was.
pub fn capture_page(
    book: &Book,
    originals: &Originals,
    case_id: &str,
    material: &Material,
    slot: Option<usize>,
    photo: Vec<u8>,
    cancel: &CancelToken,
) -> Result<Captured, CaptureError> {
    let scan = {
        let _slot = scan_slot();
        bianmin_scan::scan(&photo, &options_for(material), cancel)?
    };
    // The last point where 取消 still means "nothing saved".
    cancel.check()?;
    let case = book
        .get(case_id)
        .ok_or_else(|| CaptureError::Store("找不到这个办件，可能已被删除。".into()))?;
    let pages = case
        .materials
        .iter()
        .find(|m| m.key == material.key)
        .map(|m| m.pages.clone())
        .unwrap_or_default();
    let replaced = slot.and_then(|i| pages.get(i)).map(|p| p.sha256.clone());
    let name = format!(
        "{}-{}.{}",
        material.key,
        slot.map(|i| i + 1).unwrap_or(pages.len() + 1),
        scan.format.extension()
    );
    book.add_page(case_id, &material.key, slot, &name, &scan.data)
        .map_err(CaptureError::Store)?;
    let sha256 = sha256_hex(&scan.data);
    originals.insert(
        &sha256,
        Original {
            bytes: Arc::new(photo),
            photo: scan.photo,
            corners: scan.corners,
            auto_corners: scan.corners,
            preview: None,
            check: check_of(&scan),
        },
    );
    if let Some(old) = replaced.filter(|old| *old != sha256) {
        originals.remove(&old);
    }
    Ok(Captured {
        sha256,
        detected: scan.detected,
        check: check_of(&scan),
    })
}

/// Why the agent must look at this scan, if the scanner was not sure of it.
fn check_of(scan: &bianmin_scan::Scan) -> Option<&'static str> {
    scan.needs_check().then(|| scan.reason.user_message())
}

/// Re-cuts page `sha256` of `material` from its original with hand-placed `corners` and puts the
/// result in that page's place. On any error the stored page stays as it was.
pub fn adjust_page(
    book: &Book,
    originals: &Originals,
    case_id: &str,
    material: &Material,
    sha256: &str,
    corners: [Point; 4],
    cancel: &CancelToken,
) -> Result<Captured, CaptureError> {
    let original = originals.get(sha256).ok_or(CaptureError::OriginalGone)?;
    let scan = {
        let _slot = scan_slot();
        bianmin_scan::rescan_with_corners(&original.bytes, corners, &options_for(material), cancel)?
    };
    cancel.check()?;
    let case = book
        .get(case_id)
        .ok_or_else(|| CaptureError::Store("找不到这个办件，可能已被删除。".into()))?;
    let (index, name) = case
        .materials
        .iter()
        .find(|m| m.key == material.key)
        .and_then(|m| m.pages.iter().enumerate().find(|(_, p)| p.sha256 == sha256))
        .map(|(i, p)| (i, p.name.clone()))
        .ok_or_else(|| CaptureError::Store("这一页已被删除或重拍。".into()))?;
    book.add_page(case_id, &material.key, Some(index), &name, &scan.data)
        .map_err(CaptureError::Store)?;
    let new_sha = sha256_hex(&scan.data);
    originals.rekey(sha256, &new_sha, scan.corners);
    Ok(Captured {
        sha256: new_sha,
        detected: true,
        check: None,
    })
}

/// What the corner editor needs for one page.
#[derive(Debug, Clone, PartialEq)]
pub struct EditorView {
    pub preview: Arc<Preview>,
    /// The photo's displayed size: the coordinate space of the corners.
    pub photo: PhotoInfo,
    /// Corners the page was last cut with.
    pub corners: [Point; 4],
    /// Corners the scanner found on its own (重置 goes back to these).
    pub auto_corners: [Point; 4],
}

/// Longest side of the editor's preview: sharp enough to place corners on a tablet, small
/// enough to hand to the webview as a data URL.
pub const PREVIEW_MAX_SIDE: u32 = 1000;

/// The editor's view of page `sha256`, making (and keeping) the preview the first time.
pub fn editor_view(originals: &Originals, sha256: &str) -> Result<EditorView, CaptureError> {
    let original = originals.get(sha256).ok_or(CaptureError::OriginalGone)?;
    let preview = match &original.preview {
        Some(p) => p.clone(),
        None => {
            let p = {
                let _slot = scan_slot();
                Arc::new(preview(&original.bytes, PREVIEW_MAX_SIDE)?)
            };
            originals.set_preview(sha256, p.clone());
            p
        }
    };
    Ok(EditorView {
        preview,
        photo: original.photo,
        corners: original.corners,
        auto_corners: original.auto_corners,
    })
}

/// A downscaled, upright JPEG of a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub data_url: String,
    pub width: u32,
    pub height: u32,
}

/// Decodes `bytes` (with the scanner's safety limits), shrinks it so its longest side is at most
/// `max_side`, applies the EXIF orientation (corners are in displayed coordinates) and encodes a
/// JPEG `data:` URL.
pub fn preview(bytes: &[u8], max_side: u32) -> Result<Preview, ScanError> {
    let header = bianmin_scan::decode::probe(bytes)?;
    let raster = bianmin_scan::decode::decode(bytes, &header, true)?;
    let (w, h) = (raster.w as u32, raster.h as u32);
    let rgb = image::RgbImage::from_raw(w, h, raster.data)
        .ok_or_else(|| ScanError::Internal("decoded size mismatch".into()))?;
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (tw, th) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    let mut small = image::DynamicImage::ImageRgb8(image::imageops::thumbnail(&rgb, tw, th));
    drop(rgb);
    if let Some(o) = image::metadata::Orientation::from_exif(header.orientation.0) {
        small.apply_orientation(o);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .map_err(|e| ScanError::Encode(e.to_string()))?;
    Ok(Preview {
        data_url: format!("data:image/jpeg;base64,{}", STANDARD.encode(&jpeg)),
        width: small.width(),
        height: small.height(),
    })
}

/// Runs `f` on its own thread and awaits its result without blocking the UI. A plain thread
/// rather than `tokio::task::spawn_blocking`: it works under any executor (desktop, mobile, and
/// the VirtualDom of component tests) and a scan is seconds of CPU at most, not a pool's worth.
/// `None` when the thread could not start or panicked.
pub async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("bianmin-scan".into())
        .spawn(move || {
            // The receiver is gone when the screen was closed; the work itself is already done.
            let _ = tx.send(f());
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the scan thread");
        return None;
    }
    rx.await.ok()
}

/// A page's original photo as the camera gave it.
#[derive(Debug, Clone)]
pub struct Original {
    pub bytes: Arc<Vec<u8>>,
    pub photo: PhotoInfo,
    pub corners: [Point; 4],
    pub auto_corners: [Point; 4],
    pub preview: Option<Arc<Preview>>,
    /// Set while the agent has not yet looked at a crop the scanner was unsure of.
    pub check: Option<&'static str>,
}

impl Original {
    fn size(&self) -> usize {
        self.bytes.len() + self.preview.as_ref().map(|p| p.data_url.len()).unwrap_or(0)
    }
}

/// Originals of the pages captured in this session, keyed by the stored page's SHA-256, oldest
/// first, within a byte budget.
///
/// In memory on purpose, never on disk: an original is several MB and shows everything the
/// camera saw (the whole table, other papers, a hand), while the outbox keeps — encrypted — only
/// the cropped scan that is submitted. Holding originals only while the app runs, and only the
/// most recent ones, is enough to fix a crop right after taking it; after a restart or once
/// evicted, the agent simply retakes the page.
pub struct Originals {
    budget: usize,
    inner: Mutex<VecDeque<(String, Original)>>,
    /// The page whose corner editor is asking 请检查是否拍全 now.
    asking: Mutex<Option<String>>,
}

/// About a dozen 12 MP phone photos: a whole case's materials, without straining a cheap phone.
pub const ORIGINALS_BUDGET: usize = 64 << 20;

impl Originals {
    pub fn new(budget: usize) -> Originals {
        Originals {
            budget,
            inner: Mutex::new(VecDeque::new()),
            asking: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Original)>> {
        // A panic while holding the lock cannot leave the queue half-updated in a harmful way.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `original` for page `sha256` as the newest entry, dropping the oldest ones over budget.
    /// A single original larger than the whole budget is not kept.
    pub fn insert(&self, sha256: &str, original: Original) {
        let mut q = self.lock();
        q.retain(|(k, _)| k != sha256);
        if original.size() > self.budget {
            return;
        }
        q.push_back((sha256.to_string(), original));
        let mut total: usize = q.iter().map(|(_, o)| o.size()).sum();
        while total > self.budget {
            let Some((_, o)) = q.pop_front() else { break };
            total -= o.size();
        }
    }

    /// The original of page `sha256`, which becomes the newest entry.
    pub fn get(&self, sha256: &str) -> Option<Original> {
        let mut q = self.lock();
        let i = q.iter().position(|(k, _)| k == sha256)?;
        let entry = q.remove(i)?;
        let o = entry.1.clone();
        q.push_back(entry);
        Some(o)
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.lock().iter().any(|(k, _)| k == sha256)
    }

    pub fn remove(&self, sha256: &str) {
        self.lock().retain(|(k, _)| k != sha256);
    }

    /// The page was re-cut: the same original now stands behind page `new`, cut with `corners`.
    pub fn rekey(&self, old: &str, new: &str, corners: [Point; 4]) {
        let mut q = self.lock();
        let Some(i) = q.iter().position(|(k, _)| k == old) else {
            return;
        };
        let Some((_, mut o)) = q.remove(i) else {
            return;
        };
        o.corners = corners;
        // The agent set the corners by hand: nothing left to check.
        o.check = None;
        q.retain(|(k, _)| k != new);
        q.push_back((new.to_string(), o));
    }

    /// The agent looked at page `sha256` and kept it as it is.
    pub fn checked(&self, sha256: &str) {
        if let Some((_, o)) = self.lock().iter_mut().find(|(k, _)| k == sha256) {
            o.check = None;
        }
    }

    fn set_preview(&self, sha256: &str, preview: Arc<Preview>) {
        let mut q = self.lock();
        if let Some((_, o)) = q.iter_mut().find(|(k, _)| k == sha256) {
            o.preview = Some(preview);
        }
    }

    /// The question still open for page `sha256` (the agent has not yet looked at its outline).
    pub fn pending_check(&self, sha256: &str) -> Option<&'static str> {
        self.get(sha256).and_then(|o| o.check)
    }

    /// Whether page `sha256` may open its corner editor by itself to ask 请检查是否拍全. One editor
    /// asks at a time: a second unsure page waits until the first question is answered (its note
    /// stays, and its 调整边角 shows the question), rather than stacking editors over each other.
    /// A page that was answered, re-cut or dropped from memory no longer holds the turn.
    pub fn take_turn_to_ask(&self, sha256: &str) -> bool {
        let mut asking = self.asking.lock().unwrap_or_else(|e| e.into_inner());
        if self.pending_check(sha256).is_none() {
            return false;
        }
        let free = match asking.as_deref() {
            Some(other) => other == sha256 || self.pending_check(other).is_none(),
            None => true,
        };
        if free {
            *asking = Some(sha256.to_string());
        }
        free
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianmin_engine::catalog::Catalog;
    use bianmin_scan::{Mode, Orientation};

    use bianmin_engine::enrolment::Enrolment;

    fn material(catalog: &Catalog, capture: CaptureKind, color: bool) -> Material {
        catalog
            .items()
            .iter()
            .filter_map(|i| i.guide.as_ref())
            .flat_map(|g| g.materials.iter())
            .find(|m| m.capture == capture && m.color == color)
            .cloned()
            .expect("the catalog has such a material")
    }

    #[test]
    fn options_follow_the_catalog_material() {
        let catalog = Catalog::embedded().unwrap();
        let card = options_for(&material(&catalog, CaptureKind::Card, true));
        assert_eq!((card.mode, card.color), (Mode::Card, ColorMode::Color));
        assert_eq!(card.target_bytes, 150 * 1024);
        let page = options_for(&material(&catalog, CaptureKind::Page, false));
        assert_eq!((page.mode, page.color), (Mode::Page, ColorMode::Auto));
        assert!(
            page.target_bytes <= 300 * 1024,
            "a page fits the 300 KB target"
        );
    }

    fn case_in_book() -> (tempfile::TempDir, Book, String, Material) {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::open(dir.path()).unwrap();
        let dev = Enrolment::offline(
            book.outbox(),
            "http://127.0.0.1:9",
            "140423101201",
            "李代办",
            chrono::Utc::now(),
        )
        .unwrap();
        book.save_enrolment(&dev).unwrap();
        let case = book.create("V11", &dev).unwrap();
        let catalog = Catalog::embedded().unwrap();
        let m = catalog
            .item("V11")
            .unwrap()
            .guide
            .as_ref()
            .unwrap()
            .materials[0]
            .clone();
        (dir, book, case.id, m)
    }

    /// A photo of a light page with text lines on a dark desk.
    fn page_photo(seed: u32) -> Vec<u8> {
        let mut img = image::GrayImage::from_pixel(900, 1200, image::Luma([50]));
        for y in 120..1080 {
            for x in 150..750 {
                let line = y > 160 && (y - 160) % 40 < 6 && x < 700 - (y / 40 + seed) % 5 * 60;
                img.put_pixel(x, y, image::Luma([if line { 30 } else { 230 }]));
            }
        }
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// Paper filling the whole photo, with text lines from `x0` to `x1` every 40 px from `y0`.
    fn paper_photo(x0: u32, x1: u32, y0: u32) -> Vec<u8> {
        let mut img = image::GrayImage::from_pixel(900, 1200, image::Luma([235]));
        for y in (y0..1100).step_by(40) {
            for x in x0..x1 {
                for dy in 0..6 {
                    img.put_pixel(x, y + dy, image::Luma([30]));
                }
            }
        }
        let mut photo = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut photo, 90)
            .encode_image(&img)
            .unwrap();
        photo
    }

    #[test]
    fn an_unsure_scan_asks_to_check_until_the_agent_answers() {
        let originals = Originals::new(ORIGINALS_BUDGET);
        let (_dir, book, id, m) = case_in_book();
        // Text running off both sides of the photo: the page is cut by the frame, so the whole
        // frame is kept and flagged.
        let got = capture_page(
            &book,
            &originals,
            &id,
            &m,
            None,
            paper_photo(0, 900, 100),
            &CancelToken::new(),
        )
        .unwrap();
        assert!(!got.detected);
        let why = got.check.expect("flagged for checking");
        assert!(why.contains("请检查是否拍全"), "{why}");
        assert_eq!(check_question(why).matches(CHECK_WHOLE_PAGE).count(), 1);
        assert_eq!(originals.pending_check(&got.sha256), Some(why));
        // A second unsure page waits for its turn: one editor asks at a time.
        let second = capture_page(
            &book,
            &originals,
            &id,
            &m,
            None,
            paper_photo(0, 900, 120),
            &CancelToken::new(),
        )
        .unwrap();
        assert!(second.check.is_some());
        assert!(originals.take_turn_to_ask(&got.sha256));
        assert!(
            originals.take_turn_to_ask(&got.sha256),
            "the turn stays with the page asking"
        );
        assert!(!originals.take_turn_to_ask(&second.sha256));
        // 已拍全: the agent looked and kept it; the next page may ask.
        originals.checked(&got.sha256);
        assert_eq!(originals.pending_check(&got.sha256), None);
        assert!(!originals.take_turn_to_ask(&got.sha256));
        assert!(originals.take_turn_to_ask(&second.sha256));
        originals.checked(&second.sha256);

        // Paper edge to edge with blank margins all round (a scan): the whole frame is the page,
        // nothing to ask.
        let (_dir3, book3, id3, m3) = case_in_book();
        let scan = capture_page(
            &book3,
            &originals,
            &id3,
            &m3,
            None,
            paper_photo(100, 800, 100),
            &CancelToken::new(),
        )
        .unwrap();
        assert!(!scan.detected && scan.check.is_none(), "{scan:?}");

        // A clear page on a dark desk is trusted: nothing to ask.
        let (_dir2, book2, id2, m2) = case_in_book();
        let clear = capture_page(
            &book2,
            &originals,
            &id2,
            &m2,
            None,
            page_photo(1),
            &CancelToken::new(),
        )
        .unwrap();
        assert!(clear.detected && clear.check.is_none(), "{clear:?}");
    }

    #[test]
    fn a_file_that_is_not_a_photo_gives_the_chinese_message_and_stores_nothing() {
        let originals = Originals::new(ORIGINALS_BUDGET);
        let (_dir, book, id, m) = case_in_book();
        let err = capture_page(
            &book,
            &originals,
            &id,
            &m,
            None,
            b"%PDF-1.4 not a photo".to_vec(),
            &CancelToken::new(),
        )
        .unwrap_err();
        assert_eq!(err, CaptureError::Scan(ScanError::NotAnImage));
        assert_eq!(err.message(), "不是照片文件，请重新拍摄");
        let case = book.get(&id).unwrap();
        assert!(
            case.materials.iter().all(|m| m.pages.is_empty()),
            "nothing stored: {:?}",
            case.materials
        );
    }

    #[test]
    fn a_cancelled_capture_stores_nothing() {
        let originals = Originals::new(ORIGINALS_BUDGET);
        let (_dir, book, id, m) = case_in_book();
        let err = capture_page(
            &book,
            &originals,
            &id,
            &m,
            None,
            page_photo(0),
            &CancelToken::cancel_after_checks(3),
        )
        .unwrap_err();
        assert!(err.is_cancelled());
        assert!(book
            .get(&id)
            .unwrap()
            .materials
            .iter()
            .all(|m| m.pages.is_empty()));
    }

    #[test]
    fn a_capture_stores_the_scan_and_keeps_the_original_for_the_corner_editor() {
        let originals = Originals::new(ORIGINALS_BUDGET);
        let (_dir, book, id, m) = case_in_book();
        let photo = page_photo(1);
        let got = capture_page(
            &book,
            &originals,
            &id,
            &m,
            None,
            photo.clone(),
            &CancelToken::new(),
        )
        .unwrap();
        assert!(got.detected, "the light page on the dark desk is found");
        let case = book.get(&id).unwrap();
        let page = &case
            .materials
            .iter()
            .find(|x| x.key == m.key)
            .unwrap()
            .pages[0];
        assert_eq!(page.sha256, got.sha256);
        assert_eq!(page.mime, "image/jpeg");
        assert!(
            page.bytes <= 300 * 1024 && page.bytes as usize != photo.len(),
            "the scan is stored, not the photo"
        );
        let view = editor_view(&originals, &got.sha256).unwrap();
        assert_eq!((view.photo.width, view.photo.height), (900, 1200));
        assert!(view.preview.data_url.starts_with("data:image/jpeg;base64,"));
        assert_eq!((view.preview.width, view.preview.height), (750, 1000));

        // The agent pulls the corners in by hand: the page is replaced in place, the original follows it.
        let corners = [
            Point::new(160.0, 130.0),
            Point::new(740.0, 130.0),
            Point::new(740.0, 1070.0),
            Point::new(160.0, 1070.0),
        ];
        let adjusted = adjust_page(
            &book,
            &originals,
            &id,
            &m,
            &got.sha256,
            corners,
            &CancelToken::new(),
        )
        .unwrap();
        let case = book.get(&id).unwrap();
        let pages = &case
            .materials
            .iter()
            .find(|x| x.key == m.key)
            .unwrap()
            .pages;
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].sha256, adjusted.sha256);
        assert_eq!(pages[0].name, page.name);
        assert!(!originals.contains(&got.sha256));
        assert_eq!(
            editor_view(&originals, &adjusted.sha256).unwrap().corners,
            corners
        );

        // Corners that do not make a quadrilateral leave the page as it is.
        let line = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 10.0),
            Point::new(20.0, 20.0),
            Point::new(30.0, 30.0),
        ];
        let err = adjust_page(
            &book,
            &originals,
            &id,
            &m,
            &adjusted.sha256,
            line,
            &CancelToken::new(),
        )
        .unwrap_err();
        assert_eq!(err.message(), "四个角的位置不对，请重新调整");
        assert_eq!(
            book.get(&id)
                .unwrap()
                .materials
                .iter()
                .find(|x| x.key == m.key)
                .unwrap()
                .pages[0]
                .sha256,
            adjusted.sha256
        );
    }

    /// A rotated 12 MP phone photo (EXIF orientation 6, as phones store portrait shots): the
    /// corners and the editor's preview are both upright, so the handles sit on the page.
    #[test]
    fn preview_and_corners_share_the_upright_frame_of_a_rotated_photo() {
        let originals = Originals::new(ORIGINALS_BUDGET);
        let (_dir, book, id, m) = case_in_book();
        let spec = bianmin_scan::synth::corpus()
            .into_iter()
            .find(|s| s.orientation == 6 && s.kind == bianmin_scan::synth::Kind::TextPage)
            .unwrap();
        let synth = bianmin_scan::synth::render(&spec);
        let got = capture_page(
            &book,
            &originals,
            &id,
            &m,
            None,
            synth.jpeg.clone(),
            &CancelToken::new(),
        )
        .unwrap();
        assert!(got.detected);
        let view = editor_view(&originals, &got.sha256).unwrap();
        assert_eq!(
            (view.photo.width, view.photo.height),
            (synth.width, synth.height)
        );
        assert!(
            view.photo.height > view.photo.width,
            "displayed upright (portrait)"
        );
        for (found, truth) in view.corners.iter().zip(synth.corners.iter()) {
            assert!(
                found.dist(*truth) < 0.02 * synth.height as f32,
                "corner {found:?} vs {truth:?}"
            );
        }
        assert_eq!((view.preview.width, view.preview.height), (750, 1000));

        // The page (inside the corners) is the bright paper in the preview; the desk around it is not.
        let b64 = view
            .preview
            .data_url
            .strip_prefix("data:image/jpeg;base64,")
            .unwrap();
        let img = image::load_from_memory(&STANDARD.decode(b64).unwrap())
            .unwrap()
            .to_luma8();
        let k = view.preview.width as f32 / view.photo.width as f32;
        let mean = |p: Point| {
            let (cx, cy) = ((p.x * k) as i64, (p.y * k) as i64);
            let mut sum = 0u64;
            for y in cy - 10..cy + 10 {
                for x in cx - 10..cx + 10 {
                    sum += img
                        .get_pixel(
                            x.clamp(0, img.width() as i64 - 1) as u32,
                            y.clamp(0, img.height() as i64 - 1) as u32,
                        )
                        .0[0] as u64;
                }
            }
            sum / 400
        };
        let q = view.corners;
        let centre = Point::new(
            q.iter().map(|p| p.x).sum::<f32>() / 4.0,
            q.iter().map(|p| p.y).sum::<f32>() / 4.0,
        );
        // Just inside and just outside the top-left corner, along the diagonal from the centre.
        let at = |t: f32| {
            Point::new(
                centre.x + (q[0].x - centre.x) * t,
                centre.y + (q[0].y - centre.y) * t,
            )
        };
        let (inside, outside) = (mean(at(0.9)), mean(at(1.1)));
        assert!(inside > outside + 30, "paper {inside} vs desk {outside}");
    }

    #[test]
    fn the_originals_cache_keeps_the_newest_within_its_budget() {
        let cache = Originals::new(25);
        let info = PhotoInfo {
            width: 1,
            height: 1,
            orientation: Orientation(1),
        };
        let o = |n: usize| Original {
            bytes: Arc::new(vec![0; n]),
            photo: info,
            corners: [Point::default(); 4],
            auto_corners: [Point::default(); 4],
            preview: None,
            check: None,
        };
        cache.insert("a", o(10));
        cache.insert("b", o(10));
        assert!(cache.get("a").is_some(), "a is now the most recently used");
        cache.insert("c", o(10));
        assert!(!cache.contains("b") && cache.contains("a") && cache.contains("c"));
        cache.insert("huge", o(100));
        assert!(
            !cache.contains("huge"),
            "one original over the whole budget is not kept"
        );
        assert_eq!(cache.len(), 2);
    }
}
