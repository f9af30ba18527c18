//! Deterministic synthetic corpus: phone photos of documents, made by code from a seed.
//!
//! Pages (Chinese-text-like glyph strokes, tables, certificates with red seals, ID cards) are
//! drawn at output resolution, then "photographed": placed with tilt and perspective on one of
//! several backgrounds (dark and busy or light and low-contrast), lit with a gradient from any
//! side, a hand shadow or a straight shadow crossing the page's edges, partly covered by a finger,
//! folded, pushed partly out of the frame or joined by a second document, blurred slightly, given
//! sensor noise, stored rotated with a real EXIF orientation tag and JPEG-compressed. The true page
//! corners (in displayed photo coordinates) come with each photo, so tests can check detection.
//!
//! [`corpus`] is the small hand-written set the crate was first tuned on; [`tuning_set`],
//! [`held_out_set`] and [`fresh_held_out_set`] are seeded random draws from [`varied`] over
//! disjoint seed ranges. Detection
//! may be tuned by looking at the tuning set only: the held-out set is what tests and the
//! benchmark report, so a change that merely fits the photos it was tried on shows up there.
//!
//! No font files are needed: glyphs are random strokes. The benchmark passes a [`TextFace`] (a
//! real CJK font) so that OCR can be scored against the known text; the geometry of a photo does
//! not depend on it (page content and placement draw from separate random streams).

use crate::decode::Raster;
use crate::geom::{Mat3, Orientation, Point};
use crate::Mode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A4 page of running text with a title.
    TextPage,
    /// A4 form with a ruled table.
    Table,
    /// A4 certificate with a border and a red seal over the text.
    Certificate,
    /// A4 text page so close to the camera that no page edge is visible.
    FullFrame,
    /// ID-1 card with a photo box and text lines.
    IdCard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    Wood,
    Cloth,
    Desk,
    /// Light grey table: low contrast between paper and background.
    LightTable,
    /// Pale floor tiles with darker grout lines (straight lines that are not the page).
    Tiles,
    /// Newspaper-like print: busy texture with many small dark strokes.
    Newsprint,
}

impl Kind {
    /// Short lower-case name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::TextPage => "text",
            Kind::Table => "table",
            Kind::Certificate => "certificate",
            Kind::FullFrame => "full_frame",
            Kind::IdCard => "id_card",
        }
    }
}

/// A real font for the page text, so OCR can read the pages (the benchmark's legibility score).
pub trait TextFace: Sync {
    /// Coverage (0..1, row-major, `size` x `size`) of character `c` drawn in a square cell of
    /// `size` pixels, or None when the font has no such glyph.
    fn coverage(&self, c: char, size: usize) -> Option<Vec<f32>>;
}

/// Characters a page's real text is drawn from (common words of the service documents).
const TEXT_POOL: &str = "村民服务中心办理事项申请人身份证明材料原件复印件一份受理审核办结时限工作日不收费代办员负责告知乡镇人民政府社会保障医疗救助养老保险低保户籍登记残疾人证明材料齐全符合条件按照规定程序提交县行政审批局综合便民窗口联系电话监督投诉家庭经济状况核对结果公示无异议报送批准发放资金生育登记服务婚姻状况子女信息申报缴费年度标准补贴对象名单";

/// Everything that defines one synthetic photo.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    pub seed: u64,
    /// EXIF orientation written into the file (1..=8).
    pub orientation: u8,
    /// In-plane rotation of the page, degrees.
    pub tilt_deg: f32,
    /// Random corner displacement as a fraction of the page size (perspective).
    pub perspective: f32,
    /// Page height (or card width) as a fraction of the frame.
    pub fill: f32,
    pub background: Background,
    /// Brightness falls from 1.0 to 1.0 - gradient across the frame.
    pub gradient: f32,
    pub hand_shadow: bool,
    pub blur: bool,
    /// Sensor noise standard deviation (8-bit levels).
    pub noise: f32,
    /// Stored (unrotated) photo size; 4000x3000 is a 12 MP phone photo.
    pub raw_size: (u32, u32),
    /// Direction the lighting gradient darkens towards, radians in the displayed photo.
    pub gradient_angle: f32,
    /// Depth (0..1) of a straight soft shadow crossing the page and its edges; 0 = none.
    pub edge_shadow: f32,
    /// A finger over one of the page's edges.
    pub finger: bool,
    /// Strength (0..1) of a fold across the middle of the page; 0 = flat.
    pub fold: f32,
    /// Share of the page pushed out of the frame on one side; 0 = whole page in view.
    pub out_of_frame: f32,
    /// A second, smaller document beside (possibly touching) the page.
    pub second_doc: bool,
}

impl Spec {
    /// A flat, plain photo of a text page; the starting point the named specs change.
    pub fn plain(name: &'static str, kind: Kind, seed: u64) -> Spec {
        Spec {
            name,
            kind,
            seed,
            orientation: 1,
            tilt_deg: 0.0,
            perspective: 0.0,
            fill: 0.85,
            background: Background::Wood,
            gradient: 0.2,
            hand_shadow: false,
            blur: true,
            noise: 4.0,
            raw_size: (4000, 3000),
            gradient_angle: 0.59,
            edge_shadow: 0.0,
            finger: false,
            fold: 0.0,
            out_of_frame: 0.0,
            second_doc: false,
        }
    }

    /// Whether the page (or card) is meant to be found: false when it fills or leaves the frame,
    /// where the right answer is the whole frame, flagged.
    pub fn page_in_frame(&self) -> bool {
        self.kind != Kind::FullFrame && self.out_of_frame == 0.0
    }

    /// One line naming what makes this photo hard, for test and benchmark reports.
    pub fn describe(&self) -> String {
        let mut d = format!(
            "{} seed {} {:?} tilt {:.0} fill {:.2}",
            self.kind.label(),
            self.seed,
            self.background,
            self.tilt_deg,
            self.fill
        );
        if self.gradient > 0.3 {
            d += &format!(" gradient {:.2}", self.gradient);
        }
        if self.hand_shadow {
            d += " hand-shadow";
        }
        if self.edge_shadow > 0.0 {
            d += &format!(" edge-shadow {:.2}", self.edge_shadow);
        }
        if self.finger {
            d += " finger";
        }
        if self.fold > 0.0 {
            d += &format!(" fold {:.2}", self.fold);
        }
        if self.out_of_frame > 0.0 {
            d += &format!(" out-of-frame {:.2}", self.out_of_frame);
        }
        if self.second_doc {
            d += " second-doc";
        }
        d
    }
}

/// One randomly drawn photo: kind, placement, background, lighting and damage all come from the
/// seed. Photos are `raw_size` (the tests use a small size to stay fast; the benchmark 12 MP).
pub fn varied(seed: u64, raw_size: (u32, u32)) -> Spec {
    let mut r = StdRng::seed_from_u64(seed ^ 0x5CA1_AB1E_D0C5_0000);
    let kind = match r.gen_range(0..100) {
        0..=37 => Kind::TextPage,
        38..=62 => Kind::Table,
        63..=84 => Kind::Certificate,
        _ => Kind::IdCard,
    };
    let card = kind == Kind::IdCard;
    let background = [
        Background::Wood,
        Background::Cloth,
        Background::Desk,
        Background::LightTable,
        Background::Tiles,
        Background::Newsprint,
    ][r.gen_range(0..6)];
    let second_doc = r.gen_bool(0.12);
    let out_of_frame = if r.gen_bool(0.07) {
        r.gen_range(0.05..0.25)
    } else {
        0.0
    };
    // Cards from small in the frame to nearly filling it: an agent photographing an ID card
    // up close is as common as one at arm's length (a single draw either way, so the other
    // photos of every seed range stay as they were).
    let fill = if card {
        r.gen_range(0.3..0.9)
    } else if second_doc {
        r.gen_range(0.55..0.72)
    } else {
        r.gen_range(0.6..0.95)
    };
    let big_tilt = r.gen_bool(0.2);
    Spec {
        name: "varied",
        kind,
        seed,
        orientation: [1, 1, 3, 6, 6, 8][r.gen_range(0..6)],
        tilt_deg: if big_tilt {
            r.gen_range(-25.0..25.0)
        } else {
            r.gen_range(-8.0..8.0)
        },
        perspective: r.gen_range(0.0..0.08),
        fill,
        background,
        gradient: if r.gen_bool(0.6) {
            r.gen_range(0.1..0.55)
        } else {
            r.gen_range(0.0..0.1)
        },
        hand_shadow: r.gen_bool(0.3),
        blur: r.gen_bool(0.7),
        noise: r.gen_range(2.0..7.0),
        raw_size,
        gradient_angle: r.gen_range(0.0..std::f32::consts::TAU),
        edge_shadow: if r.gen_bool(0.3) {
            r.gen_range(0.25..0.55)
        } else {
            0.0
        },
        finger: r.gen_bool(0.2),
        fold: if !card && r.gen_bool(0.2) {
            r.gen_range(0.3..1.0)
        } else {
            0.0
        },
        out_of_frame,
        second_doc,
    }
}

/// First seed of the tuning set; the held-out seeds are a separate range no tuning looks at.
const TUNING_SEED: u64 = 10_000;
const HELD_OUT_SEED: u64 = 7_000_000;
/// A second held-out range, drawn on 2026-11-30 after the first held-out set had been looked at
/// three times (its lost photos are printed by its test, and issue 18 named the failure class
/// found there): the numbers reported for a change come from photos nothing was tuned on.
/// Far above the first range's last seed (7,000,000 + 7919 n for the few hundred n used).
const FRESH_HELD_OUT_SEED: u64 = 40_000_000;

/// `n` photos for tuning detection (looking at these is allowed).
pub fn tuning_set(n: usize, raw_size: (u32, u32)) -> Vec<Spec> {
    (0..n as u64)
        .map(|i| varied(TUNING_SEED + i, raw_size))
        .collect()
}

/// `n` held-out photos: only ever scored, never used to choose a threshold.
pub fn held_out_set(n: usize, raw_size: (u32, u32)) -> Vec<Spec> {
    (0..n as u64)
        .map(|i| Spec {
            name: "held_out",
            ..varied(HELD_OUT_SEED + i * 7919, raw_size)
        })
        .collect()
}

/// `n` photos of the second held-out range (seeds from `FRESH_HELD_OUT_SEED`); as [`held_out_set`],
/// only ever scored.
pub fn fresh_held_out_set(n: usize, raw_size: (u32, u32)) -> Vec<Spec> {
    (0..n as u64)
        .map(|i| Spec {
            name: "fresh_held_out",
            ..varied(FRESH_HELD_OUT_SEED + i * 7919, raw_size)
        })
        .collect()
}

/// A rendered photo and its ground truth.
pub struct SynthPhoto {
    pub spec: Spec,
    /// The photo file: JPEG, stored rotated, with an EXIF orientation tag.
    pub jpeg: Vec<u8>,
    /// True page corners TL, TR, BR, BL in displayed (oriented) photo coordinates. For
    /// `FullFrame` these lie outside the frame.
    pub corners: [Point; 4],
    /// Displayed photo size.
    pub width: u32,
    pub height: u32,
    /// The page as drawn (RGB, output resolution): ground truth for ink and paper.
    pub page: Raster,
    pub mode: Mode,
    /// The text on the page, line by line (empty unless rendered with a [`TextFace`]).
    pub text: String,
}

impl SynthPhoto {
    /// Share of the page that is inside the frame and missing from the quadrilateral `found`
    /// (0 = nothing visible was lost). Parts of the page outside the frame were never in the
    /// photo, so they count neither way.
    pub fn lost_area(&self, found: &[Point; 4]) -> f32 {
        let frame = crate::detect::frame_corners(self.width, self.height);
        let visible = crate::geom::clip_convex(&self.corners, &frame);
        let va = crate::geom::polygon_area(&visible).abs();
        if va <= 0.0 {
            return 0.0;
        }
        let kept = crate::geom::polygon_area(&crate::geom::clip_convex(&visible, found)).abs();
        ((va - kept) / va).max(0.0)
    }
}

/// The standard corpus: one of each situation the scanner must handle.
pub fn corpus() -> Vec<Spec> {
    let base = Spec::plain("", Kind::TextPage, 1);
    vec![
        Spec {
            name: "text_tilted_shadow",
            kind: Kind::TextPage,
            seed: 11,
            orientation: 6,
            tilt_deg: 7.0,
            perspective: 0.04,
            hand_shadow: true,
            gradient: 0.25,
            ..base.clone()
        },
        Spec {
            name: "table_perspective",
            kind: Kind::Table,
            seed: 22,
            orientation: 1,
            tilt_deg: -4.0,
            perspective: 0.07,
            fill: 0.9,
            background: Background::Cloth,
            ..base.clone()
        },
        Spec {
            name: "certificate_seal",
            kind: Kind::Certificate,
            seed: 33,
            orientation: 8,
            tilt_deg: -10.0,
            perspective: 0.03,
            hand_shadow: true,
            background: Background::Desk,
            ..base.clone()
        },
        Spec {
            name: "full_frame",
            kind: Kind::FullFrame,
            seed: 44,
            orientation: 6,
            tilt_deg: 1.5,
            fill: 1.18,
            gradient: 0.3,
            ..base.clone()
        },
        Spec {
            name: "id_card",
            kind: Kind::IdCard,
            seed: 55,
            orientation: 3,
            tilt_deg: 12.0,
            perspective: 0.05,
            fill: 0.45,
            background: Background::Desk,
            noise: 5.0,
            ..base.clone()
        },
        Spec {
            name: "text_upright",
            kind: Kind::TextPage,
            seed: 66,
            orientation: 1,
            tilt_deg: 2.0,
            perspective: 0.02,
            fill: 0.92,
            background: Background::Cloth,
            gradient: 0.15,
            ..base
        },
    ]
}

/// Renders every photo of [`corpus`].
pub fn render_corpus() -> Vec<SynthPhoto> {
    corpus().iter().map(render).collect()
}

// ---------------------------------------------------------------- page drawing

pub(crate) struct Canvas {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) px: Vec<[f32; 3]>,
}

impl Canvas {
    pub(crate) fn new(w: usize, h: usize, c: [f32; 3]) -> Self {
        Canvas {
            w,
            h,
            px: vec![c; w * h],
        }
    }
    /// Multiplies a pixel toward `ink` by coverage `a` (ink on paper darkens, like real ink).
    pub(crate) fn ink(&mut self, x: usize, y: usize, ink: [f32; 3], a: f32) {
        let p = &mut self.px[y * self.w + x];
        for k in 0..3 {
            let target = p[k] * ink[k] / 255.0;
            p[k] += (target - p[k]) * a;
        }
    }
    pub(crate) fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: [f32; 3]) {
        for y in (y0.max(0.0) as usize)..(y1.min(self.h as f32) as usize) {
            for x in (x0.max(0.0) as usize)..(x1.min(self.w as f32) as usize) {
                self.px[y * self.w + x] = c;
            }
        }
    }
    /// Anti-aliased thick line segment.
    pub(crate) fn segment(&mut self, a: (f32, f32), b: (f32, f32), thick: f32, ink: [f32; 3]) {
        let r = thick / 2.0;
        let x0 = (a.0.min(b.0) - r - 1.0).max(0.0) as usize;
        let x1 = ((a.0.max(b.0) + r + 2.0) as usize).min(self.w);
        let y0 = (a.1.min(b.1) - r - 1.0).max(0.0) as usize;
        let y1 = ((a.1.max(b.1) + r + 2.0) as usize).min(self.h);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = (dx * dx + dy * dy).max(1e-6);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 - a.0, y as f32 - a.1);
                let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
                let d = ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt();
                let cov = (r + 0.5 - d).clamp(0.0, 1.0);
                if cov > 0.0 {
                    self.ink(x, y, ink, cov);
                }
            }
        }
    }
    fn ring(&mut self, c: (f32, f32), radius: f32, thick: f32, ink: [f32; 3]) {
        let r0 = radius - thick / 2.0;
        let r1 = radius + thick / 2.0;
        for y in ((c.1 - r1 - 1.0).max(0.0) as usize)..((c.1 + r1 + 2.0) as usize).min(self.h) {
            for x in ((c.0 - r1 - 1.0).max(0.0) as usize)..((c.0 + r1 + 2.0) as usize).min(self.w) {
                let d = ((x as f32 - c.0).powi(2) + (y as f32 - c.1).powi(2)).sqrt();
                let cov = (d - r0 + 0.5).min(r1 + 0.5 - d).clamp(0.0, 1.0);
                if cov > 0.0 {
                    self.ink(x, y, ink, cov);
                }
            }
        }
    }
    /// A glyph-like character: 3–8 strokes (horizontal, vertical, slanting, dots) in a square cell.
    pub(crate) fn glyph(&mut self, rng: &mut StdRng, x: f32, y: f32, size: f32, ink: [f32; 3]) {
        let pad = size * 0.12;
        let (lo, hi) = (pad, size - pad);
        let thick = (size / 11.0).max(1.6);
        let n = rng.gen_range(3..=8);
        for _ in 0..n {
            let kind = rng.gen_range(0..10);
            let (a, b) = match kind {
                0..=3 => {
                    let yy = rng.gen_range(lo..hi);
                    let xa = rng.gen_range(lo..size * 0.5);
                    let xb = rng.gen_range(size * 0.5..hi);
                    ((xa, yy), (xb, yy))
                }
                4..=6 => {
                    let xx = rng.gen_range(lo..hi);
                    let ya = rng.gen_range(lo..size * 0.5);
                    let yb = rng.gen_range(size * 0.5..hi);
                    ((xx, ya), (xx, yb))
                }
                7 | 8 => {
                    let xa = rng.gen_range(lo..hi);
                    let ya = rng.gen_range(lo..size * 0.5);
                    let dir = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                    let l = rng.gen_range(size * 0.25..size * 0.5);
                    ((xa, ya), ((xa + dir * l).clamp(lo, hi), (ya + l).min(hi)))
                }
                _ => {
                    let xa = rng.gen_range(lo..hi - thick);
                    let ya = rng.gen_range(lo..hi - thick);
                    ((xa, ya), (xa + thick, ya + thick))
                }
            };
            self.segment((x + a.0, y + a.1), (x + b.0, y + b.1), thick, ink);
        }
    }
    /// Lines of glyphs between x0 and x1 starting at y; returns the y after the block.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        w: &mut Writer,
        x0: f32,
        x1: f32,
        mut y: f32,
        cell: f32,
        lines: usize,
        ink: [f32; 3],
    ) -> f32 {
        let per_line = ((x1 - x0) / cell) as usize;
        for l in 0..lines {
            // Paragraph starts are indented two characters; the last line of a paragraph is short.
            let indent = if l % 6 == 0 { 2 } else { 0 };
            let count = if l % 6 == 5 {
                w.rng.gen_range(per_line / 4..per_line)
            } else {
                per_line
            };
            for c in indent..count {
                if w.rng.gen_bool(0.04) {
                    w.end_word(); // punctuation-like gap
                    continue;
                }
                self.write(w, x0 + c as f32 * cell, y, cell, ink);
            }
            w.end_line();
            y += cell * 1.6;
        }
        y
    }
    /// One character: a real glyph from the writer's font (recorded in its text), else strokes.
    fn write(&mut self, w: &mut Writer, x: f32, y: f32, size: f32, ink: [f32; 3]) {
        let Some(face) = w.face else {
            return self.glyph(&mut w.rng, x, y, size, ink);
        };
        let c = w.pool[w.pos % w.pool.len()];
        w.pos += 1 + w.rng.gen_range(0..3) * usize::from(w.rng.gen_bool(0.3));
        let n = size.round() as usize;
        let cov = w
            .cache
            .entry((c, n))
            .or_insert_with(|| face.coverage(c, n).unwrap_or_default());
        if cov.len() != n * n {
            return;
        }
        w.text.push(c);
        let (x0, y0) = (x.round() as isize, y.round() as isize);
        for j in 0..n {
            for i in 0..n {
                let a = cov[j * n + i];
                let (px, py) = (x0 + i as isize, y0 + j as isize);
                if a > 0.0 && px >= 0 && py >= 0 && (px as usize) < self.w && (py as usize) < self.h
                {
                    self.ink(px as usize, py as usize, ink, a.min(1.0));
                }
            }
        }
    }
    pub(crate) fn into_raster(self) -> Raster {
        let data = self
            .px
            .iter()
            .flat_map(|p| p.map(|v| v.clamp(0.0, 255.0).round() as u8))
            .collect();
        Raster {
            w: self.w,
            h: self.h,
            ch: 3,
            data,
        }
    }
}

/// Page content source: the random stream, and with a font the characters written so far.
struct Writer<'a> {
    rng: StdRng,
    face: Option<&'a dyn TextFace>,
    pool: Vec<char>,
    pos: usize,
    /// The text drawn, one line per printed line, words (table cells) separated by spaces.
    text: String,
    cache: std::collections::HashMap<(char, usize), Vec<f32>>,
}

impl Writer<'_> {
    fn end_line(&mut self) {
        if self.face.is_some() && !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
    }
    fn end_word(&mut self) {
        if self.face.is_some() && !self.text.is_empty() && !self.text.ends_with([' ', '\n']) {
            self.text.push(' ');
        }
    }
}

pub(crate) const INK: [f32; 3] = [30.0, 30.0, 36.0];
const RED: [f32; 3] = [215.0, 35.0, 40.0];
const PAPER: [f32; 3] = [246.0, 244.0, 238.0];

fn draw_page(kind: Kind, wr: &mut Writer) -> Raster {
    let (w, h) = match kind {
        Kind::IdCard => (1011, 638),
        _ => (1654, 2339),
    };
    let mut c = Canvas::new(w, h, PAPER);
    let (wf, hf) = (w as f32, h as f32);
    match kind {
        Kind::TextPage | Kind::FullFrame => {
            let title = 56.0;
            let n = 9.0;
            for i in 0..9 {
                c.write(
                    wr,
                    wf / 2.0 - n * title / 2.0 + i as f32 * title,
                    190.0,
                    title,
                    INK,
                );
            }
            wr.end_line();
            c.text(wr, 180.0, wf - 180.0, 330.0, 34.0, 34, INK);
        }
        Kind::Table => {
            for i in 0..7 {
                c.write(
                    wr,
                    wf / 2.0 - 3.5 * 50.0 + i as f32 * 50.0,
                    170.0,
                    50.0,
                    INK,
                );
            }
            wr.end_line();
            let (x0, x1, y0) = (150.0, wf - 150.0, 320.0);
            let cols = [0.0, 0.18, 0.45, 0.62, 0.82, 1.0];
            let rows = 19;
            let rh = 95.0;
            c.fill_rect(x0, y0, x1, y0 + rh, [225.0, 225.0, 222.0]);
            for r in 0..=rows {
                let y = y0 + r as f32 * rh;
                c.segment(
                    (x0, y),
                    (x1, y),
                    if r == 0 || r == rows { 4.0 } else { 2.5 },
                    INK,
                );
            }
            for &f in &cols {
                let x = x0 + f * (x1 - x0);
                c.segment((x, y0), (x, y0 + rows as f32 * rh), 3.0, INK);
            }
            for r in 0..rows {
                for k in 0..cols.len() - 1 {
                    let cx0 = x0 + cols[k] * (x1 - x0) + 12.0;
                    let cx1 = x0 + cols[k + 1] * (x1 - x0) - 12.0;
                    let n = ((cx1 - cx0) / 30.0) as usize;
                    let n = if r == 0 {
                        n.min(4)
                    } else {
                        wr.rng.gen_range(1..=n.max(1))
                    };
                    for g in 0..n {
                        c.write(
                            wr,
                            cx0 + g as f32 * 30.0,
                            y0 + r as f32 * rh + 32.0,
                            30.0,
                            INK,
                        );
                    }
                    wr.end_word();
                }
                wr.end_line();
            }
            c.text(
                wr,
                150.0,
                wf - 150.0,
                y0 + rows as f32 * rh + 60.0,
                30.0,
                3,
                INK,
            );
        }
        Kind::Certificate => {
            let border = [150.0, 40.0, 40.0];
            c.segment((60.0, 60.0), (wf - 60.0, 60.0), 14.0, border);
            c.segment((wf - 60.0, 60.0), (wf - 60.0, hf - 60.0), 14.0, border);
            c.segment((wf - 60.0, hf - 60.0), (60.0, hf - 60.0), 14.0, border);
            c.segment((60.0, hf - 60.0), (60.0, 60.0), 14.0, border);
            c.segment((90.0, 90.0), (wf - 90.0, 90.0), 3.0, border);
            c.segment((wf - 90.0, 90.0), (wf - 90.0, hf - 90.0), 3.0, border);
            c.segment((wf - 90.0, hf - 90.0), (90.0, hf - 90.0), 3.0, border);
            c.segment((90.0, hf - 90.0), (90.0, 90.0), 3.0, border);
            for i in 0..5 {
                c.write(
                    wr,
                    wf / 2.0 - 2.5 * 110.0 + i as f32 * 110.0,
                    260.0,
                    110.0,
                    INK,
                );
            }
            wr.end_line();
            let y = c.text(wr, 220.0, wf - 220.0, 520.0, 44.0, 14, INK);
            c.text(wr, wf - 700.0, wf - 220.0, y + 120.0, 44.0, 2, INK);
            // The seal: ring, star and a band of small characters, overlapping the date line.
            let sc = (wf - 470.0, y + 140.0);
            c.ring(sc, 190.0, 14.0, RED);
            for k in 0..5 {
                let a0 = -std::f32::consts::FRAC_PI_2 + k as f32 * 4.0 * std::f32::consts::PI / 5.0;
                let a1 = a0 + 4.0 * std::f32::consts::PI / 5.0;
                let r = 70.0;
                c.segment(
                    (sc.0 + r * a0.cos(), sc.1 + r * a0.sin()),
                    (sc.0 + r * a1.cos(), sc.1 + r * a1.sin()),
                    9.0,
                    RED,
                );
            }
            for k in 0..9 {
                let a = std::f32::consts::PI * (1.1 + 0.8 * k as f32 / 8.0);
                c.glyph(
                    &mut wr.rng,
                    sc.0 + 130.0 * a.cos() - 20.0,
                    sc.1 + 130.0 * a.sin() - 20.0,
                    40.0,
                    RED,
                );
            }
        }
        Kind::IdCard => {
            c = Canvas::new(w, h, [226.0, 233.0, 240.0]);
            c.fill_rect(0.0, 0.0, wf, 90.0, [190.0, 208.0, 232.0]);
            for i in 0..8 {
                c.write(wr, 60.0 + i as f32 * 48.0, 22.0, 48.0, [40.0, 60.0, 120.0]);
            }
            wr.end_line();
            // Portrait box with a face-like lighter ellipse.
            c.fill_rect(700.0, 150.0, 940.0, 460.0, [150.0, 160.0, 175.0]);
            for y in 150..460 {
                for x in 700..940 {
                    let (dx, dy) = ((x as f32 - 820.0) / 80.0, (y as f32 - 280.0) / 100.0);
                    if dx * dx + dy * dy < 1.0 {
                        c.px[y * w + x] = [225.0, 195.0, 175.0];
                    }
                }
            }
            let mut y = 150.0;
            for l in 0..5 {
                let n = [4, 6, 9, 11, 8][l];
                for g in 0..n {
                    c.write(wr, 70.0 + g as f32 * 40.0, y, 40.0, INK);
                }
                wr.end_line();
                y += 62.0;
            }
            for g in 0..18 {
                c.write(wr, 70.0 + g as f32 * 42.0, 520.0, 42.0, INK);
            }
            wr.end_line();
        }
    }
    c.into_raster()
}

// ---------------------------------------------------------------- photographing

/// Smooth value noise on a coarse grid, sampled bilinearly.
struct Noise {
    gw: usize,
    cell: f32,
    v: Vec<f32>,
}

impl Noise {
    fn new(rng: &mut StdRng, w: usize, h: usize, cell: f32) -> Self {
        let gw = (w as f32 / cell) as usize + 2;
        let gh = (h as f32 / cell) as usize + 2;
        Noise {
            gw,
            cell,
            v: (0..gw * gh).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        }
    }
    fn at(&self, x: f32, y: f32) -> f32 {
        let (gx, gy) = (x / self.cell, y / self.cell);
        let (x0, y0) = (gx as usize, gy as usize);
        let (fx, fy) = (gx - x0 as f32, gy - y0 as f32);
        let (fx, fy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
        let i = y0 * self.gw + x0;
        let a = self.v[i] + (self.v[i + 1] - self.v[i]) * fx;
        let b = self.v[i + self.gw] + (self.v[i + self.gw + 1] - self.v[i + self.gw]) * fx;
        a + (b - a) * fy
    }
}

/// Small fast PRNG for per-pixel sensor noise (seeded from the spec's RNG).
struct XorShift(u64);

impl XorShift {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Approximately normal (sum of two uniforms, triangular), unit variance.
    #[inline]
    fn gauss(&mut self) -> f32 {
        let r = self.next();
        let a = (r & 0xFFFF) as f32 / 65535.0;
        let b = ((r >> 16) & 0xFFFF) as f32 / 65535.0;
        (a + b - 1.0) * 2.449
    }
}

/// Capsule (thick segment) used for the fingers of the hand shadow.
struct Capsule {
    a: (f32, f32),
    b: (f32, f32),
    r: f32,
}

impl Capsule {
    fn dist(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (self.b.0 - self.a.0, self.b.1 - self.a.1);
        let (px, py) = (x - self.a.0, y - self.a.1);
        let t = ((px * dx + py * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt() - self.r
    }
}

fn background(bg: Background, x: f32, y: f32, k: f32, n1: &Noise, n2: &Noise) -> [f32; 3] {
    match bg {
        Background::Wood => {
            let phase = (y * 0.96 + x * 0.28) * 0.045 + 5.0 * n1.at(x, y);
            let s = 0.78 + 0.14 * phase.sin() + 0.06 * n2.at(x, y);
            [150.0 * s, 104.0 * s, 68.0 * s]
        }
        Background::Cloth => {
            let weave = if ((x as i32 / 3) + (y as i32 / 3)) % 2 == 0 {
                1.0
            } else {
                0.9
            };
            let s = weave * (0.85 + 0.1 * n1.at(x, y) + 0.05 * n2.at(x, y));
            [72.0 * s, 84.0 * s, 118.0 * s]
        }
        Background::Desk => {
            let s = 0.9 + 0.08 * n1.at(x, y) + 0.04 * n2.at(x, y);
            [58.0 * s, 58.0 * s, 64.0 * s]
        }
        Background::LightTable => {
            let s = 0.93 + 0.05 * n1.at(x, y) + 0.03 * n2.at(x, y);
            [208.0 * s, 205.0 * s, 198.0 * s]
        }
        Background::Tiles => {
            let (tile, grout) = (300.0 * k, 7.0 * k);
            let (fx, fy) = (
                (x + 37.0 * k).rem_euclid(tile),
                (y + 91.0 * k).rem_euclid(tile),
            );
            let s = 0.95 + 0.04 * n1.at(x, y) + 0.02 * n2.at(x, y);
            if fx < grout || fy < grout {
                [150.0 * s, 146.0 * s, 140.0 * s]
            } else {
                [216.0 * s, 211.0 * s, 201.0 * s]
            }
        }
        Background::Newsprint => {
            // Rows of small dark "characters" on grey paper.
            let (line, cell) = (24.0 * k, 12.0 * k);
            let (row, fy) = ((y / line).floor(), (y / line).fract());
            let col = (x / cell).floor();
            let fx = (x / cell).fract();
            let h = ((row as i64).wrapping_mul(73_856_093) ^ (col as i64).wrapping_mul(19_349_663))
                as u64;
            let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            let ink = fy < 0.6
                && fx < 0.8
                && h % 10 < 7
                && ((h >> 4).is_multiple_of(3)
                    || fy < 0.12
                    || (fx - 0.4).abs() < 0.1
                    || (fy - 0.3).abs() < 0.06);
            let s = 0.94 + 0.04 * n1.at(x, y);
            if ink {
                [70.0 * s, 70.0 * s, 72.0 * s]
            } else {
                [196.0 * s, 194.0 * s, 186.0 * s]
            }
        }
    }
}

fn exif_orientation_tiff(o: u8) -> Vec<u8> {
    // Little-endian TIFF: header, IFD0 at offset 8 with one SHORT entry (0x0112), no next IFD.
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&(o as u16).to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

/// Renders one photo from its spec (deterministic for a given spec).
pub fn render(spec: &Spec) -> SynthPhoto {
    render_with(spec, None)
}

/// Renders one photo, writing real characters with `face` when given (the benchmark's OCR
/// pages); the placement, lighting and damage are the same either way.
pub fn render_with(spec: &Spec, face: Option<&dyn TextFace>) -> SynthPhoto {
    let mut writer = Writer {
        rng: StdRng::seed_from_u64(spec.seed),
        face,
        pool: TEXT_POOL.chars().collect(),
        pos: (spec.seed as usize).wrapping_mul(31) % TEXT_POOL.chars().count(),
        text: String::new(),
        cache: Default::default(),
    };
    let page = draw_page(spec.kind, &mut writer);
    photograph(spec, page, writer.text)
}

/// Photographs a drawn page (or card) as `spec` says: placement, lighting, damage, EXIF, JPEG.
pub(crate) fn photograph(spec: &Spec, page: Raster, text: String) -> SynthPhoto {
    // Placement and lighting draw from their own stream, so page content cannot move the page.
    let mut rng =
        StdRng::seed_from_u64(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x00DD_BA11);
    let orient = Orientation::normalized(spec.orientation as u16);
    let (raw_w, raw_h) = spec.raw_size;
    let (pw, ph) = orient.oriented_size(raw_w, raw_h);
    let (pwf, phf) = (pw as f32, ph as f32);
    let (rw, rh) = (page.w as f32, page.h as f32);
    // Sizes below were chosen for 12 MP photos; k scales them to the photo's size.
    let k = pwf.max(phf) / 4000.0;

    // Place the page: scale to fill, rotate by tilt, jitter corners for perspective.
    let scale = spec.fill * (pwf / rw).min(phf / rh);
    let cx = pwf / 2.0 + rng.gen_range(-0.03..0.03) * pwf;
    let cy = phf / 2.0 + rng.gen_range(-0.03..0.03) * phf;
    let (s, c) = spec.tilt_deg.to_radians().sin_cos();
    let src = crate::detect::frame_corners(page.w as u32, page.h as u32);
    let mut dst = src.map(|p| {
        let (dx, dy) = (
            (p.x - (rw - 1.0) / 2.0) * scale,
            (p.y - (rh - 1.0) / 2.0) * scale,
        );
        let jx = rng.gen_range(-1.0..1.0) * spec.perspective * rw * scale;
        let jy = rng.gen_range(-1.0..1.0) * spec.perspective * rh * scale;
        Point::new(cx + dx * c - dy * s + jx, cy + dx * s + dy * c + jy)
    });
    if spec.page_in_frame() {
        // Keep every corner inside the frame (with a margin).
        let margin = 0.04 * pwf.min(phf);
        let mut f = 1.0f32;
        for p in &dst {
            for (v, c, lim) in [(p.x, cx, pwf), (p.y, cy, phf)] {
                if v < margin {
                    f = f.min((c - margin) / (c - v));
                }
                if v > lim - 1.0 - margin {
                    f = f.min((lim - 1.0 - margin - c) / (v - c));
                }
            }
        }
        dst = dst.map(|p| Point::new(cx + (p.x - cx) * f, cy + (p.y - cy) * f));
    } else if spec.out_of_frame > 0.0 {
        // Push the page over one frame edge by the given share of its extent.
        let (x0, x1) = dst
            .iter()
            .fold((f32::MAX, f32::MIN), |a, p| (a.0.min(p.x), a.1.max(p.x)));
        let (y0, y1) = dst
            .iter()
            .fold((f32::MAX, f32::MIN), |a, p| (a.0.min(p.y), a.1.max(p.y)));
        let (ex, ey) = (x1 - x0, y1 - y0);
        let (dx, dy) = match rng.gen_range(0..4) {
            0 => (-x0 - spec.out_of_frame * ex, 0.0),
            1 => (pwf - x1 + spec.out_of_frame * ex, 0.0),
            2 => (0.0, -y0 - spec.out_of_frame * ey),
            _ => (0.0, phf - y1 + spec.out_of_frame * ey),
        };
        dst = dst.map(|p| Point::new(p.x + dx, p.y + dy));
    }
    let to_photo = Mat3::from_quads(&src, &dst).expect("synthetic quad is valid");
    let to_page = to_photo.inverse().expect("invertible");

    let n1 = Noise::new(&mut rng, pw as usize, ph as usize, 400.0 * k);
    let n2 = Noise::new(&mut rng, pw as usize, ph as usize, 40.0 * k);

    // Hand shadow: a palm off one side of the page and four fingers reaching onto it.
    let mut hand: Vec<Capsule> = Vec::new();
    if spec.hand_shadow {
        let base = (
            pwf * rng.gen_range(0.75..0.95),
            phf * rng.gen_range(0.6..0.8),
        );
        hand.push(Capsule {
            a: (base.0 + 200.0 * k, base.1 + 150.0 * k),
            b: (pwf + 400.0 * k, base.1 + 600.0 * k),
            r: 380.0 * k,
        });
        for f in 0..4 {
            let ang = std::f32::consts::PI * (1.05 + 0.12 * f as f32);
            let len = rng.gen_range(550.0..800.0) * k;
            let start = (
                base.0 + 60.0 * k * f as f32,
                base.1 + (-120.0 + 90.0 * f as f32) * k,
            );
            hand.push(Capsule {
                a: start,
                b: (start.0 + len * ang.cos(), start.1 + len * ang.sin()),
                r: 55.0 * k,
            });
        }
    }
    let soft = 90.0 * k;
    let depth = 0.42;

    // A straight shadow (an arm, the phone) whose soft edge crosses the page and its edges.
    let edge_shadow = (spec.edge_shadow > 0.0).then(|| {
        let (a, b) = (rng.gen_range(0.2..0.8), rng.gen_range(0.2..0.8));
        let top = Point::new(
            dst[0].x + (dst[1].x - dst[0].x) * a,
            dst[0].y + (dst[1].y - dst[0].y) * a,
        );
        let bot = Point::new(
            dst[3].x + (dst[2].x - dst[3].x) * a,
            dst[3].y + (dst[2].y - dst[3].y) * a,
        );
        let q = Point::new(top.x + (bot.x - top.x) * b, top.y + (bot.y - top.y) * b);
        let ang: f32 = rng.gen_range(0.0..std::f32::consts::TAU);
        (
            q,
            ang.cos(),
            ang.sin(),
            rng.gen_range(0.01..0.04) * pwf.min(phf),
        )
    });

    // A finger over one side of the page, coming in from outside the frame.
    let finger = spec.finger.then(|| {
        let i = rng.gen_range(0..4);
        let (a, b) = (dst[i], dst[(i + 1) % 4]);
        let t = rng.gen_range(0.25..0.75);
        let p = Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
        let len = a.dist(b).max(1.0);
        let (dx, dy) = ((b.x - a.x) / len, (b.y - a.y) / len);
        // Outward normal of a clockwise quad, turned a little.
        let turn: f32 = rng.gen_range(-0.5..0.5);
        let (nx, ny) = (
            dy * turn.cos() - dx * turn.sin(),
            -dx * turn.cos() - dy * turn.sin(),
        );
        let inward = rng.gen_range(60.0..220.0) * k;
        let far = 3.0 * pwf.max(phf);
        Capsule {
            a: (p.x - nx * inward, p.y - ny * inward),
            b: (p.x + nx * far, p.y + ny * far),
            r: rng.gen_range(38.0..55.0) * k,
        }
    });

    // A fold across the middle: one half a little darker, a crease line, and the sides bulging
    // outward near the fold (a page lifted towards the camera looks larger there).
    let fold = (spec.fold > 0.0).then(|| {
        let across_v = rng.gen_bool(0.5);
        let at = rng.gen_range(0.4..0.6);
        (across_v, at, spec.fold)
    });

    // A second, smaller document beside the page (possibly touching it or leaving the frame).
    let second = spec.second_doc.then(|| {
        let (dw, dh) = (600.0f32, 850.0f32);
        let sc = scale * rw / dw * rng.gen_range(0.35..0.55);
        let side = rng.gen_range(0..4);
        let (hx, hy) = (
            dst.iter().map(|p| (p.x - cx).abs()).fold(0.0, f32::max),
            dst.iter().map(|p| (p.y - cy).abs()).fold(0.0, f32::max),
        );
        let reach = rng.gen_range(0.55..0.95);
        let (ox, oy) = match side {
            0 => (-(hx + reach * dw * sc * 0.5), 0.0),
            1 => (hx + reach * dw * sc * 0.5, 0.0),
            2 => (0.0, -(hy + reach * dh * sc * 0.5)),
            _ => (0.0, hy + reach * dh * sc * 0.5),
        };
        let (s2, c2) = rng.gen_range(-0.4f32..0.4).sin_cos();
        let d2 = [(0.0, 0.0), (dw, 0.0), (dw, dh), (0.0, dh)].map(|(x, y)| {
            let (dx, dy) = ((x - dw / 2.0) * sc, (y - dh / 2.0) * sc);
            Point::new(cx + ox + dx * c2 - dy * s2, cy + oy + dx * s2 + dy * c2)
        });
        let q = [
            Point::new(0.0, 0.0),
            Point::new(dw, 0.0),
            Point::new(dw, dh),
            Point::new(0.0, dh),
        ];
        (
            Mat3::from_quads(&q, &d2)
                .and_then(|m| m.inverse())
                .expect("second document quad"),
            dw,
            dh,
            sc,
        )
    });

    let mut noise_rng = XorShift(rng.gen::<u64>() | 1);
    let (w, h) = (pw as usize, ph as usize);
    let mut img = vec![0f32; w * h * 3];
    let m = to_page.0;
    let (gcos, gsin) = (spec.gradient_angle.cos(), spec.gradient_angle.sin());
    let gext = (pwf * gcos).abs() + (phf * gsin).abs();
    for y in 0..h {
        let yf = y as f32;
        for x in 0..w {
            let xf = x as f32;
            let z = m[6] * x as f64 + m[7] * y as f64 + m[8];
            let mut u = ((m[0] * x as f64 + m[1] * y as f64 + m[2]) / z) as f32;
            let mut v = ((m[3] * x as f64 + m[4] * y as f64 + m[5]) / z) as f32;
            let mut paper_light = 1.0;
            if let Some((across_v, at, strength)) = fold {
                // Undo the bulge (it depends only on the distance to the fold, so exactly).
                let (along, across, len_along, len_across) = if across_v {
                    (&mut u, v, rw, rh)
                } else {
                    (&mut v, u, rh, rw)
                };
                let d = (across - at * len_across).abs() / (0.28 * len_across);
                let tent = (1.0 - d).max(0.0);
                let amp = strength * 0.012 * len_along;
                let half = len_along / 2.0;
                *along = half + (*along - half) / (1.0 + amp * tent / half);
                if across > at * len_across {
                    paper_light = 1.0 - 0.15 * strength;
                }
                let crease = (across - at * len_across).abs();
                if crease < 8.0 {
                    paper_light *= 1.0 - 0.25 * strength * (1.0 - crease / 8.0);
                }
            }
            // Coverage of the page at this photo pixel: anti-aliased edge, rounded card corners.
            let mut edge = (u + 0.5).min(rw - 0.5 - u).min(v + 0.5).min(rh - 0.5 - v) * scale;
            if spec.kind == Kind::IdCard {
                let rad = 36.0;
                let (qx, qy) = ((u + 0.5).min(rw - 0.5 - u), (v + 0.5).min(rh - 0.5 - v));
                if qx < rad && qy < rad {
                    let d = rad - ((rad - qx).powi(2) + (rad - qy).powi(2)).sqrt();
                    edge = edge.min(d * scale);
                }
            }
            let cov = (edge + 0.5).clamp(0.0, 1.0);
            let mut p = [0f32; 3];
            if cov < 1.0 {
                p = background(spec.background, xf, yf, k, &n1, &n2);
                if let Some((inv, dw, dh, sc)) = &second {
                    let (u2, v2) = inv.apply(x as f64, y as f64);
                    let (u2, v2) = (u2 as f32, v2 as f32);
                    let e2 = (u2 + 0.5)
                        .min(dw - 0.5 - u2)
                        .min(v2 + 0.5)
                        .min(dh - 0.5 - v2)
                        * sc;
                    let c2 = (e2 + 0.5).clamp(0.0, 1.0);
                    if c2 > 0.0 {
                        let line = u2 > 50.0
                            && u2 < dw - 50.0
                            && v2 > 60.0
                            && v2 < dh - 60.0
                            && (v2 % 36.0) < 10.0;
                        let q = if line {
                            [95.0, 95.0, 100.0]
                        } else {
                            [238.0, 236.0, 226.0]
                        };
                        for k in 0..3 {
                            p[k] = p[k] * (1.0 - c2) + q[k] * c2;
                        }
                    }
                }
            }
            if cov > 0.0 {
                let uc = u.clamp(0.0, rw - 1.001);
                let vc = v.clamp(0.0, rh - 1.001);
                let (u0, v0) = (uc as usize, vc as usize);
                let (fu, fv) = (uc - u0 as f32, vc - v0 as f32);
                let i00 = (v0 * page.w + u0) * 3;
                let i10 = i00 + 3;
                let i01 = i00 + page.w * 3;
                let i11 = i01 + 3;
                for k in 0..3 {
                    let d = &page.data;
                    let top = d[i00 + k] as f32 + (d[i10 + k] as f32 - d[i00 + k] as f32) * fu;
                    let bot = d[i01 + k] as f32 + (d[i11 + k] as f32 - d[i01 + k] as f32) * fu;
                    let pv = (top + (bot - top) * fv) * paper_light;
                    p[k] = p[k] * (1.0 - cov) + pv * cov;
                }
            }
            if let Some(f) = &finger {
                let d = f.dist(xf, yf);
                if d < 0.5 {
                    // Skin, rounder (lighter) along the finger's middle.
                    let inside = ((-d) / f.r).clamp(0.0, 1.0);
                    let shade = 0.7 + 0.3 * (inside * (2.0 - inside)).sqrt();
                    let a = (0.5 - d).clamp(0.0, 1.0);
                    let skin = [208.0 * shade, 152.0 * shade, 124.0 * shade];
                    for k in 0..3 {
                        p[k] = p[k] * (1.0 - a) + skin[k] * a;
                    }
                } else if d < 0.6 * f.r {
                    // Its contact shadow.
                    let t = 1.0 - d / (0.6 * f.r);
                    for v in &mut p {
                        *v *= 1.0 - 0.3 * t * t;
                    }
                }
            }
            // Lighting: a gradient with a warm tint, then the shadows.
            let proj =
                (((xf - pwf / 2.0) * gcos + (yf - phf / 2.0) * gsin) / gext + 0.5).clamp(0.0, 1.0);
            let mut light = 1.0 - spec.gradient * proj;
            if !hand.is_empty() {
                let d = hand
                    .iter()
                    .map(|cap| cap.dist(xf, yf))
                    .fold(f32::MAX, f32::min);
                if d < soft {
                    let t = ((soft - d) / (2.0 * soft)).clamp(0.0, 1.0);
                    light *= 1.0 - depth * t * t * (3.0 - 2.0 * t);
                }
            }
            if let Some((q, ca, sa, w)) = edge_shadow {
                let sd = (xf - q.x) * ca + (yf - q.y) * sa;
                let t = ((sd + w) / (2.0 * w)).clamp(0.0, 1.0);
                light *= 1.0 - spec.edge_shadow * t * t * (3.0 - 2.0 * t);
            }
            let o = (y * w + x) * 3;
            img[o] = p[0] * light;
            img[o + 1] = p[1] * light * 0.985;
            img[o + 2] = p[2] * light * 0.95;
        }
    }
    // Slight defocus: a 3x3 box blur.
    if spec.blur {
        let mut tmp = img.clone();
        for y in 0..h {
            for x in 1..w - 1 {
                for k in 0..3 {
                    let i = (y * w + x) * 3 + k;
                    tmp[i] = (img[i - 3] + img[i] + img[i + 3]) / 3.0;
                }
            }
        }
        for y in 1..h - 1 {
            for i in y * w * 3..(y + 1) * w * 3 {
                img[i] = (tmp[i - w * 3] + tmp[i] + tmp[i + w * 3]) / 3.0;
            }
        }
    }
    // Sensor noise, then store in the camera's native (unrotated) orientation.
    let to_raw = orient.oriented_to_raw(raw_w, raw_h);
    let mut raw = vec![0u8; (raw_w * raw_h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let (rx, ry) = to_raw.apply(x as f64, y as f64);
            let ro = (ry.round() as usize * raw_w as usize + rx.round() as usize) * 3;
            let o = (y * w + x) * 3;
            let n = noise_rng.gauss() * spec.noise;
            for k in 0..3 {
                raw[ro + k] =
                    (img[o + k] + n + noise_rng.gauss() * spec.noise * 0.3).clamp(0.0, 255.0) as u8;
            }
        }
    }
    let mut jpeg = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    enc.add_exif_metadata(&exif_orientation_tiff(spec.orientation))
        .expect("small EXIF");
    enc.encode(
        &raw,
        raw_w as u16,
        raw_h as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .expect("encode synthetic photo");

    SynthPhoto {
        spec: spec.clone(),
        jpeg,
        corners: dst,
        width: pw,
        height: ph,
        page,
        mode: if spec.kind == Kind::IdCard {
            Mode::Card
        } else {
            Mode::Page
        },
        text,
    }
}
