//! Document scanning: turns a phone photo of a page or card into a clean, small scan.
//!
//! Pipeline: header probe with safety limits → decode (luma only for grayscale output) → page
//! detection on a small copy with full-resolution edge refinement → one perspective warp from
//! output pixels straight into the stored photo (EXIF orientation folded in) → illumination
//! normalisation → JPEG with a size cap (or 1-bit PNG when `bilevel`).
//!
//! Everything is `Send`, runs on the caller's thread (plus `threads - 1` scoped helpers), and
//! checks a [`CancelToken`] between stages and every 64 rows inside them.

pub mod decode;
pub mod detect;
mod encode;
mod fastjpeg;
pub mod geom;
pub mod idnumber;
pub mod idread;
pub mod idsynth;
pub mod lines;
mod normalize;
mod par;
mod simd;
pub mod synth;
mod warp;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use detect::{Reason, CONFIDENT};
pub use geom::{Orientation, Point};

/// A4 at 200 DPI.
pub const A4_200DPI: (u32, u32) = (1654, 2339);
/// ID-1 card (85.6 x 54 mm) at 300 DPI.
pub const CARD_300DPI: (u32, u32) = (1011, 638);
/// Hard cap on one encoded material.
pub const HARD_CAP_BYTES: usize = 2 * 1024 * 1024;

/// What kind of material the photo shows; decides the output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// A4 page, 1654x2339 (or 2339x1654 when the page lies landscape in the photo).
    #[default]
    Page,
    /// ID-1 card, 1011x638 (or 638x1011 when the card stands upright in the photo).
    Card,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "page" => Ok(Mode::Page),
            "card" => Ok(Mode::Card),
            other => Err(format!("unknown mode {other:?} (expected page or card)")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// Grayscale output (the default: smallest files).
    #[default]
    Gray,
    /// Colour output, for materials whose meaning needs colour (red seals).
    Color,
    /// Decided by the page itself: colour when it carries red (titles, seals), grayscale
    /// otherwise. Costs a full colour decode; the size targets are the same either way.
    Auto,
}

/// Whether a warped RGB page carries red ink (seals, red titles): at least 0.05% of its pixels
/// clearly red. Wood, skin and warm lighting stay below the margins used here.
fn has_red(img: &[u8], w: usize, h: usize) -> bool {
    let mut red = 0usize;
    let mut n = 0usize;
    for y in (0..h).step_by(2) {
        for p in img[y * w * 3..(y + 1) * w * 3].chunks_exact(3).step_by(2) {
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            red += (r >= 120 && r > g + 60 && r > b + 50) as usize;
            n += 1;
        }
    }
    red * 2000 >= n
}

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub mode: Mode,
    pub color: ColorMode,
    /// Output a thresholded 1-bit PNG instead of a JPEG (ignores `color`).
    pub bilevel: bool,
    /// Starting JPEG quality; lowered in steps of 10 while the output exceeds `target_bytes`.
    pub jpeg_quality: u8,
    /// Size the JPEG should fit in (quality is not lowered below 40 for this target; the 2 MB
    /// hard cap always applies).
    pub target_bytes: usize,
    /// Threads for the row-parallel stages (warp, normalise); 1 = the caller's thread only.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            mode: Mode::Page,
            color: ColorMode::Gray,
            bilevel: false,
            jpeg_quality: 75,
            target_bytes: 300 * 1024,
            threads: 1,
        }
    }
}

impl ScanOptions {
    pub fn card() -> Self {
        ScanOptions {
            mode: Mode::Card,
            target_bytes: 150 * 1024,
            ..Default::default()
        }
    }
}

/// Cheap clonable cancellation flag, shared between the UI and a worker.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    /// When set, the token cancels itself after this many checks: lets tests cancel
    /// deterministically at every point of the pipeline without threads or sleeps.
    budget: Option<Arc<AtomicUsize>>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    /// A token that cancels itself at its `n`-th check (0 = already cancelled).
    pub fn cancel_after_checks(n: usize) -> Self {
        CancelToken {
            flag: Arc::new(AtomicBool::new(n == 0)),
            budget: Some(Arc::new(AtomicUsize::new(n))),
        }
    }
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
    /// `Err(Cancelled)` once cancelled; called between stages and every 64 rows inside them.
    pub fn check(&self) -> Result<(), ScanError> {
        if let Some(b) = &self.budget {
            let left = b
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(1))
                })
                .unwrap_or(0);
            if left <= 1 {
                self.cancel();
            }
        }
        if self.is_cancelled() {
            Err(ScanError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ScanError {
    #[error("not a JPEG or PNG image")]
    NotAnImage,
    #[error("image file is truncated")]
    Truncated,
    #[error("image is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("image too large: {megapixels:.1} megapixels (limit 50)")]
    TooLarge { megapixels: f32 },
    #[error("decoding would need {mib} MiB (limit 256 MiB)")]
    TooMuchMemory { mib: u32 },
    #[error("corners do not form a convex quadrilateral inside the photo")]
    InvalidCorners,
    #[error("scan cancelled")]
    Cancelled,
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("output still {bytes} bytes at the lowest quality (cap 2 MiB)")]
    OutputTooLarge { bytes: usize },
    #[error("file error: {0}")]
    Io(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScanError {
    /// Short Simplified Chinese message for the UI.
    pub fn user_message(&self) -> &'static str {
        match self {
            ScanError::NotAnImage => "不是照片文件，请重新拍摄",
            ScanError::Truncated => "照片文件不完整，请重新拍摄",
            ScanError::Corrupt(_) | ScanError::Unsupported(_) => "照片无法读取，请重新拍摄",
            ScanError::TooLarge { .. } | ScanError::TooMuchMemory { .. } => {
                "照片过大，请降低相机分辨率后重拍"
            }
            ScanError::InvalidCorners => "四个角的位置不对，请重新调整",
            ScanError::Cancelled => "已取消",
            ScanError::Encode(_) | ScanError::OutputTooLarge { .. } => "图片压缩失败，请重新拍摄",
            ScanError::Io(_) => "文件读写失败",
            ScanError::Internal(_) => "处理出错，请重试",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Jpeg,
    /// 1-bit grayscale PNG (bilevel option).
    Png,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
        }
    }
}

/// Wall time of each stage of one scan.
#[derive(Clone, Copy, Debug, Default)]
pub struct StageTimings {
    pub decode: Duration,
    pub detect: Duration,
    pub warp: Duration,
    pub normalize: Duration,
    pub encode: Duration,
}

impl StageTimings {
    pub fn total(&self) -> Duration {
        self.decode + self.detect + self.warp + self.normalize + self.encode
    }
}

/// Size and orientation of a photo, from its header only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoInfo {
    /// Displayed size (after EXIF orientation): the coordinate space of corners.
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

#[derive(Clone, Debug)]
pub struct Scan {
    /// Encoded output (`format` says which).
    pub data: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// TL, TR, BR, BL in the photo's displayed (EXIF-oriented) pixel coordinates; feed these to
    /// a corner editor and back into [`rescan_with_corners`].
    pub corners: [Point; 4],
    /// False when no page edge was found and the whole frame was used.
    pub detected: bool,
    /// How far the crop can be trusted, 0..1 (1 for hand-set corners); see [`Scan::needs_check`].
    pub confidence: f32,
    /// Why detection ended as it did.
    pub reason: Reason,
    pub photo: PhotoInfo,
    /// JPEG quality actually used (0 for PNG).
    pub quality: u8,
    pub timings: StageTimings,
}

impl Scan {
    /// True when the agent must look at the page with its outline (请检查是否拍全): detection
    /// was not sure, or it kept the whole frame for want of a page edge (paper filling the
    /// frame with blank margins all round is the page itself, and is not asked about).
    pub fn needs_check(&self) -> bool {
        self.confidence < CONFIDENT
    }
}

/// Reads the photo's displayed size and orientation from the header, applying the safety limits.
pub fn probe(bytes: &[u8]) -> Result<PhotoInfo, ScanError> {
    let h = decode::probe(bytes)?;
    let (width, height) = h.orientation.oriented_size(h.width, h.height);
    Ok(PhotoInfo {
        width,
        height,
        orientation: h.orientation,
    })
}

/// Detects the page and produces the cleaned scan.
pub fn scan(bytes: &[u8], opts: &ScanOptions, cancel: &CancelToken) -> Result<Scan, ScanError> {
    run(bytes, None, opts, cancel)
}

/// Re-runs the warp with corners adjusted by hand (TL, TR, BR, BL in displayed photo
/// coordinates; any order is accepted and re-ordered).
pub fn rescan_with_corners(
    bytes: &[u8],
    corners: [Point; 4],
    opts: &ScanOptions,
    cancel: &CancelToken,
) -> Result<Scan, ScanError> {
    run(bytes, Some(corners), opts, cancel)
}

fn output_size(mode: Mode, q: &[Point; 4]) -> (u32, u32) {
    let top = q[0].dist(q[1]) + q[3].dist(q[2]);
    let side = q[0].dist(q[3]) + q[1].dist(q[2]);
    let (long, short) = match mode {
        Mode::Page => (A4_200DPI.1, A4_200DPI.0),
        Mode::Card => (CARD_300DPI.0, CARD_300DPI.1),
    };
    if top > side {
        (long, short)
    } else {
        (short, long)
    }
}

fn run(
    bytes: &[u8],
    manual: Option<[Point; 4]>,
    opts: &ScanOptions,
    cancel: &CancelToken,
) -> Result<Scan, ScanError> {
    let mut t = StageTimings::default();
    cancel.check()?;
    let t0 = Instant::now();
    let header = decode::probe(bytes)?;
    let auto = opts.color == ColorMode::Auto && !opts.bilevel;
    let rgb = (opts.color == ColorMode::Color || auto) && !opts.bilevel;
    let raster = decode::decode(bytes, &header, rgb)?;
    let o = header.orientation;
    let (ow, oh) = o.oriented_size(raster.w as u32, raster.h as u32);
    let photo = PhotoInfo {
        width: ow,
        height: oh,
        orientation: o,
    };
    t.decode = t0.elapsed();
    cancel.check()?;

    let t0 = Instant::now();
    let (corners, detected, confidence, reason) = match manual {
        Some(c) => {
            let q = geom::order_corners(c);
            let slack = 0.05 * ow.max(oh) as f32;
            let inside = q.iter().all(|p| {
                p.x.is_finite()
                    && p.y.is_finite()
                    && p.x >= -slack
                    && p.y >= -slack
                    && p.x <= ow as f32 + slack
                    && p.y <= oh as f32 + slack
            });
            if !inside || !geom::is_convex(&q) || geom::polygon_area(&q).abs() < 64.0 {
                return Err(ScanError::InvalidCorners);
            }
            (q, true, 1.0, Reason::Manual)
        }
        None => {
            let d = detect::detect(&raster, o, opts.mode);
            (d.corners, d.detected, d.confidence, d.reason)
        }
    };
    t.detect = t0.elapsed();
    cancel.check()?;

    let t0 = Instant::now();
    let (w, h) = output_size(opts.mode, &corners);
    let rect = detect::frame_corners(w, h);
    let to_photo = geom::Mat3::from_quads(&rect, &corners).ok_or(ScanError::InvalidCorners)?;
    let m = o
        .oriented_to_raw(raster.w as u32, raster.h as u32)
        .mul(&to_photo);
    let mut ch = if rgb { 3 } else { 1 };
    let mut img = warp::warp(
        &raster,
        &m,
        w as usize,
        h as usize,
        ch,
        opts.threads,
        cancel,
    )?;
    drop(raster);
    if auto && !has_red(&img, w as usize, h as usize) {
        img = img
            .chunks_exact(3)
            .map(|p| decode::luma(p[0], p[1], p[2]))
            .collect();
        ch = 1;
    }
    t.warp = t0.elapsed();

    let t0 = Instant::now();
    let profile = match opts.mode {
        Mode::Page => normalize::PAGE,
        Mode::Card => normalize::CARD,
    };
    normalize::normalize(
        &mut img,
        w as usize,
        h as usize,
        ch,
        profile,
        opts.threads,
        cancel,
    )?;
    t.normalize = t0.elapsed();
    cancel.check()?;

    let t0 = Instant::now();
    let dpi = match opts.mode {
        Mode::Page => 200,
        Mode::Card => 300,
    };
    let (data, format, quality) = if opts.bilevel {
        (
            encode::bilevel_png(&img, w as usize, h as usize, dpi)?,
            OutputFormat::Png,
            0,
        )
    } else {
        let (d, q) = encode::jpeg_capped(
            &img,
            w as usize,
            h as usize,
            ch,
            opts.jpeg_quality,
            dpi as u16,
            opts.target_bytes.min(HARD_CAP_BYTES),
            HARD_CAP_BYTES,
        )?;
        (d, OutputFormat::Jpeg, q)
    };
    t.encode = t0.elapsed();
    Ok(Scan {
        data,
        format,
        width: w,
        height: h,
        corners,
        detected,
        confidence,
        reason,
        photo,
        quality,
        timings: t,
    })
}

/// Result of scanning one file with [`scan_files`].
#[derive(Debug)]
pub struct FileScan {
    pub input: PathBuf,
    /// Written output path and the scan (without needing to re-read the file), or the error.
    pub result: Result<(PathBuf, Scan), ScanError>,
}

/// Scans many photos into `out_dir` (created if missing), one output per photo named after the
/// input's stem (`IMG_1.jpg` → `IMG_1.jpg` / `IMG_1.png`). Errors are per file; the batch goes on.
/// This is what `bianmin-agent scan --out DIR [--mode page|card] PHOTO...` calls.
pub fn scan_files<P: AsRef<Path>>(
    paths: &[P],
    out_dir: &Path,
    opts: &ScanOptions,
    cancel: &CancelToken,
) -> Vec<FileScan> {
    let mk = std::fs::create_dir_all(out_dir)
        .map_err(|e| ScanError::Io(format!("{}: {e}", out_dir.display())));
    paths
        .iter()
        .map(|p| {
            let input = p.as_ref().to_path_buf();
            let result = mk.clone().and_then(|_| {
                cancel.check()?;
                let bytes = std::fs::read(&input)
                    .map_err(|e| ScanError::Io(format!("{}: {e}", input.display())))?;
                let s = scan(&bytes, opts, cancel)?;
                let stem = input
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "scan".into());
                let out = out_dir.join(format!("{stem}.{}", s.format.extension()));
                std::fs::write(&out, &s.data)
                    .map_err(|e| ScanError::Io(format!("{}: {e}", out.display())))?;
                Ok((out, s))
            });
            FileScan { input, result }
        })
        .collect()
}
