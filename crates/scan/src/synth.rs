//! Deterministic synthetic corpus: phone photos of documents, made by code from a seed.
//!
//! Pages (Chinese-text-like glyph strokes, tables, certificates with red seals, ID cards) are
//! drawn at output resolution, then "photographed": placed with tilt and perspective on a wood,
//! cloth or desk texture, lit with a gradient and a hand shadow, blurred slightly, given sensor
//! noise, stored rotated with a real EXIF orientation tag and JPEG-compressed. The true page
//! corners (in displayed photo coordinates) come with each photo, so tests can check detection.
//! Used by the tests and the benchmark; no font files or external data needed.

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
}

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
}

/// The standard corpus: one of each situation the scanner must handle.
pub fn corpus() -> Vec<Spec> {
    let base = Spec {
        name: "",
        kind: Kind::TextPage,
        seed: 1,
        orientation: 1,
        tilt_deg: 0.0,
        perspective: 0.0,
        fill: 0.85,
        background: Background::Wood,
        gradient: 0.2,
        hand_shadow: false,
        blur: true,
        noise: 4.0,
    };
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

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[f32; 3]>,
}

impl Canvas {
    fn new(w: usize, h: usize, c: [f32; 3]) -> Self {
        Canvas {
            w,
            h,
            px: vec![c; w * h],
        }
    }
    /// Multiplies a pixel toward `ink` by coverage `a` (ink on paper darkens, like real ink).
    fn ink(&mut self, x: usize, y: usize, ink: [f32; 3], a: f32) {
        let p = &mut self.px[y * self.w + x];
        for k in 0..3 {
            let target = p[k] * ink[k] / 255.0;
            p[k] += (target - p[k]) * a;
        }
    }
    fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: [f32; 3]) {
        for y in (y0.max(0.0) as usize)..(y1.min(self.h as f32) as usize) {
            for x in (x0.max(0.0) as usize)..(x1.min(self.w as f32) as usize) {
                self.px[y * self.w + x] = c;
            }
        }
    }
    /// Anti-aliased thick line segment.
    fn segment(&mut self, a: (f32, f32), b: (f32, f32), thick: f32, ink: [f32; 3]) {
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
    fn glyph(&mut self, rng: &mut StdRng, x: f32, y: f32, size: f32, ink: [f32; 3]) {
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
        rng: &mut StdRng,
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
                rng.gen_range(per_line / 4..per_line)
            } else {
                per_line
            };
            for c in indent..count {
                if rng.gen_bool(0.04) {
                    continue; // punctuation-like gap
                }
                self.glyph(rng, x0 + c as f32 * cell, y, cell, ink);
            }
            y += cell * 1.6;
        }
        y
    }
    fn into_raster(self) -> Raster {
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

const INK: [f32; 3] = [30.0, 30.0, 36.0];
const RED: [f32; 3] = [215.0, 35.0, 40.0];
const PAPER: [f32; 3] = [246.0, 244.0, 238.0];

fn draw_page(kind: Kind, rng: &mut StdRng) -> Raster {
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
                c.glyph(
                    rng,
                    wf / 2.0 - n * title / 2.0 + i as f32 * title,
                    190.0,
                    title,
                    INK,
                );
            }
            c.text(rng, 180.0, wf - 180.0, 330.0, 34.0, 34, INK);
        }
        Kind::Table => {
            for i in 0..7 {
                c.glyph(
                    rng,
                    wf / 2.0 - 3.5 * 50.0 + i as f32 * 50.0,
                    170.0,
                    50.0,
                    INK,
                );
            }
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
                        rng.gen_range(1..=n.max(1))
                    };
                    for g in 0..n {
                        c.glyph(
                            rng,
                            cx0 + g as f32 * 30.0,
                            y0 + r as f32 * rh + 32.0,
                            30.0,
                            INK,
                        );
                    }
                }
            }
            c.text(
                rng,
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
                c.glyph(
                    rng,
                    wf / 2.0 - 2.5 * 110.0 + i as f32 * 110.0,
                    260.0,
                    110.0,
                    INK,
                );
            }
            let y = c.text(rng, 220.0, wf - 220.0, 520.0, 44.0, 14, INK);
            c.text(rng, wf - 700.0, wf - 220.0, y + 120.0, 44.0, 2, INK);
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
                    rng,
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
                c.glyph(rng, 60.0 + i as f32 * 48.0, 22.0, 48.0, [40.0, 60.0, 120.0]);
            }
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
                    c.glyph(rng, 70.0 + g as f32 * 40.0, y, 40.0, INK);
                }
                y += 62.0;
            }
            for g in 0..18 {
                c.glyph(rng, 70.0 + g as f32 * 42.0, 520.0, 42.0, INK);
            }
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

fn background(bg: Background, x: f32, y: f32, n1: &Noise, n2: &Noise) -> [f32; 3] {
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
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let page = draw_page(spec.kind, &mut rng);
    let orient = Orientation::normalized(spec.orientation as u16);
    let (raw_w, raw_h) = (4000u32, 3000u32);
    let (pw, ph) = orient.oriented_size(raw_w, raw_h);
    let (pwf, phf) = (pw as f32, ph as f32);
    let (rw, rh) = (page.w as f32, page.h as f32);

    // Place the page: scale to fill, rotate by tilt, jitter corners for perspective.
    let scale = spec.fill * (pwf / rw).min(phf / rh);
    let cx = pwf / 2.0 + rng.gen_range(-0.03..0.03) * pwf;
    let cy = phf / 2.0 + rng.gen_range(-0.03..0.03) * phf;
    let (s, c) = spec.tilt_deg.to_radians().sin_cos();
    let src = crate::detect::frame_corners(page.w as u32, page.h as u32);
    let dst = src.map(|p| {
        let (dx, dy) = (
            (p.x - (rw - 1.0) / 2.0) * scale,
            (p.y - (rh - 1.0) / 2.0) * scale,
        );
        let jx = rng.gen_range(-1.0..1.0) * spec.perspective * rw * scale;
        let jy = rng.gen_range(-1.0..1.0) * spec.perspective * rh * scale;
        Point::new(cx + dx * c - dy * s + jx, cy + dx * s + dy * c + jy)
    });
    // Keep every corner inside the frame (with a margin) unless the page is meant to overflow it.
    let mut dst = dst;
    if spec.kind != Kind::FullFrame {
        let margin = 0.04 * pwf.min(phf);
        let mut k = 1.0f32;
        for p in &dst {
            for (v, c, lim) in [(p.x, cx, pwf), (p.y, cy, phf)] {
                if v < margin {
                    k = k.min((c - margin) / (c - v));
                }
                if v > lim - 1.0 - margin {
                    k = k.min((lim - 1.0 - margin - c) / (v - c));
                }
            }
        }
        dst = dst.map(|p| Point::new(cx + (p.x - cx) * k, cy + (p.y - cy) * k));
    }
    let to_photo = Mat3::from_quads(&src, &dst).expect("synthetic quad is valid");
    let to_page = to_photo.inverse().expect("invertible");

    let n1 = Noise::new(&mut rng, pw as usize, ph as usize, 400.0);
    let n2 = Noise::new(&mut rng, pw as usize, ph as usize, 40.0);

    // Hand shadow: a palm off one side of the page and four fingers reaching onto it.
    let mut hand: Vec<Capsule> = Vec::new();
    if spec.hand_shadow {
        let base = (
            pwf * rng.gen_range(0.75..0.95),
            phf * rng.gen_range(0.6..0.8),
        );
        hand.push(Capsule {
            a: (base.0 + 200.0, base.1 + 150.0),
            b: (pwf + 400.0, base.1 + 600.0),
            r: 380.0,
        });
        for k in 0..4 {
            let ang = std::f32::consts::PI * (1.05 + 0.12 * k as f32);
            let len = rng.gen_range(550.0..800.0);
            let start = (base.0 + 60.0 * k as f32, base.1 - 120.0 + 90.0 * k as f32);
            hand.push(Capsule {
                a: start,
                b: (start.0 + len * ang.cos(), start.1 + len * ang.sin()),
                r: 55.0,
            });
        }
    }
    let soft = 90.0;
    let depth = 0.42;

    let mut noise_rng = XorShift(rng.gen::<u64>() | 1);
    let (w, h) = (pw as usize, ph as usize);
    let mut img = vec![0f32; w * h * 3];
    let m = to_page.0;
    for y in 0..h {
        let yf = y as f32;
        for x in 0..w {
            let xf = x as f32;
            let z = m[6] * x as f64 + m[7] * y as f64 + m[8];
            let u = ((m[0] * x as f64 + m[1] * y as f64 + m[2]) / z) as f32;
            let v = ((m[3] * x as f64 + m[4] * y as f64 + m[5]) / z) as f32;
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
                p = background(spec.background, xf, yf, &n1, &n2);
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
                    let pv = top + (bot - top) * fv;
                    p[k] = p[k] * (1.0 - cov) + pv * cov;
                }
            }
            // Lighting: a diagonal gradient with a warm tint, then the hand shadow.
            let mut light = 1.0 - spec.gradient * (0.6 * xf / pwf + 0.4 * yf / phf);
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
    }
}
