//! Page detection that fails safe: candidates from two independent methods on a ~500 px copy,
//! sub-pixel edge refinement on the full-resolution photo, plausibility checks, and the whole
//! frame (flagged) whenever no candidate can be trusted.
//!
//! Contour method: box-downscale, blur, Otsu threshold (on the copy as it is, and once more with
//! a fitted lighting plane divided out, for gradients and shadows), largest bright component,
//! convex hull reduced to four vertices. Line method ([`crate::lines`]): Hough lines with
//! polarity, four of them facing each other. Fine stage: for each side, search along the normal
//! for the strongest bright-inside/dark-outside step, fit a robust line, intersect adjacent lines.
//!
//! A candidate is plausible when it is convex, not tiny, has page-like angles and aspect for the
//! mode, lies inside the frame, shows a step edge along most of every side, and has no paper
//! beyond its sides (a certificate's printed border has the page's margin beyond it). The result
//! is trusted (high confidence) only when a contour candidate and a line candidate agree; a lone
//! plausible candidate is used but flagged; otherwise the whole frame is kept and flagged. On
//! ground nearly as light as the paper, where a tinted part of a document can merge with the
//! ground, an outline must also have the document's proportions, or the whole frame is kept. A
//! page that runs off the frame is reported as such: no crop can be right there. Paper that
//! fills the whole frame with blank margins round its content (a page photographed edge to
//! edge, or a scan) is the one whole-frame result that is not flagged.

use crate::decode::{luma, Raster};
use crate::geom::{is_convex, order_corners, polygon_area, Mat3, Orientation, Point};
use crate::lines::{ground_ratio, line_quads, nothing_beyond, side_evidence};
use crate::simd::multiversion;
use crate::Mode;

/// Long side of the coarse copy, in pixels.
const SMALL_TARGET: usize = 512;

/// Confidence below which the agent is asked to check the page (请检查是否拍全).
pub const CONFIDENT: f32 = 0.6;

/// Why detection ended as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A contour candidate and a line candidate found the same page, with edges on all sides.
    Agreed,
    /// Only one method found the page, but with a step edge along nearly all of every side,
    /// nothing running off the frame and the document's own proportions: used and trusted.
    ClearEdges,
    /// Only one method found a plausible page; it is used, but the agent should check it.
    SingleMethod,
    /// The methods found different pages; the whole frame is kept.
    MethodsDisagree,
    /// One method found an outline, but with gaps in its edges; the whole frame is kept.
    WeakEdges,
    /// An outline was found on ground almost as light as the paper, but without the document's
    /// proportions: a tinted band or a printed part of the document may have merged with the
    /// ground and been left out, so the whole frame is kept.
    LowContrast,
    /// Paper fills the whole frame with a blank margin along every edge around the content (a
    /// page photographed edge to edge, or a scan): the whole frame is the page.
    FillsFrame,
    /// The page runs off the frame: the whole frame is kept.
    PageCutByFrame,
    /// No plausible page edge at all: the whole frame is kept.
    NoPageFound,
    /// The corners were set by hand.
    Manual,
}

impl Reason {
    /// Stable identifier for logs, the CLI and reports.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Agreed => "methods_agree",
            Reason::ClearEdges => "clear_edges",
            Reason::SingleMethod => "single_method",
            Reason::MethodsDisagree => "methods_disagree",
            Reason::WeakEdges => "weak_edges",
            Reason::LowContrast => "low_contrast",
            Reason::FillsFrame => "page_fills_frame",
            Reason::PageCutByFrame => "page_cut_by_frame",
            Reason::NoPageFound => "no_page_found",
            Reason::Manual => "manual_corners",
        }
    }
    /// One English sentence for the CLI.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Agreed => "page found: contour and line detection agree",
            Reason::ClearEdges => "page found by one method, with clear edges and page proportions",
            Reason::SingleMethod => "page found by one method only: check the crop",
            Reason::MethodsDisagree => {
                "detection methods disagree: whole frame kept, check the photo"
            }
            Reason::WeakEdges => {
                "page edges too weak to be sure: whole frame kept, check the photo"
            }
            Reason::LowContrast => {
                "page on a ground nearly as light as itself, outline not the document's shape: whole frame kept, check the photo"
            }
            Reason::FillsFrame => {
                "the page fills the photo, blank margins all round: whole frame kept"
            }
            Reason::PageCutByFrame => {
                "page runs off the photo: whole frame kept, retake with the whole page in view"
            }
            Reason::NoPageFound => "no page edge found: whole frame kept, check the photo",
            Reason::Manual => "corners set by hand",
        }
    }
    /// Short Simplified Chinese text for the app.
    pub fn user_message(self) -> &'static str {
        match self {
            Reason::Agreed => "已找到纸张边缘",
            Reason::ClearEdges => "已找到纸张边缘",
            Reason::SingleMethod => "纸张边缘不够清楚，请检查是否拍全",
            Reason::MethodsDisagree => "没能确定纸张边缘，已保留整张照片，请检查是否拍全",
            Reason::WeakEdges => "纸张边缘不清楚，已保留整张照片，请检查是否拍全",
            Reason::LowContrast => "纸张和桌面颜色太接近，已保留整张照片，请检查是否拍全",
            Reason::FillsFrame => "纸张占满整张照片，已按整张照片处理",
            Reason::PageCutByFrame => "纸张似乎超出了画面，已保留整张照片，请检查是否拍全",
            Reason::NoPageFound => "未找到纸张边缘，已保留整张照片，请检查是否拍全",
            Reason::Manual => "已按手动调整的边角裁切",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Detection {
    /// TL, TR, BR, BL in oriented (displayed) photo coordinates.
    pub corners: [Point; 4],
    /// False when no page edge was found and the whole frame is used.
    pub detected: bool,
    /// 0..1; below [`CONFIDENT`] the agent must be asked to check the page.
    pub confidence: f32,
    pub reason: Reason,
}

/// Whole-frame corners for an oriented size.
pub fn frame_corners(w: u32, h: u32) -> [Point; 4] {
    let (x1, y1) = (w as f32 - 1.0, h as f32 - 1.0);
    [
        Point::new(0.0, 0.0),
        Point::new(x1, 0.0),
        Point::new(x1, y1),
        Point::new(0.0, y1),
    ]
}

/// Samples the stored raster at oriented coordinates (bilinear, luma).
pub struct Sampler<'a> {
    r: &'a Raster,
    /// Oriented-to-stored map; EXIF orientations are axis swaps and flips, so it is affine:
    /// x' = m[0] x + m[1] y + m[2], y' = m[3] x + m[4] y + m[5] (exact in f32 for photo sizes).
    m: [f32; 6],
    /// The largest column and row, as the clamps need them.
    xmax: f32,
    ymax: f32,
}

impl<'a> Sampler<'a> {
    pub fn new(r: &'a Raster, o: Orientation) -> Self {
        let a = o.oriented_to_raw(r.w as u32, r.h as u32).0;
        Sampler {
            r,
            m: [
                a[0] as f32,
                a[1] as f32,
                a[2] as f32,
                a[3] as f32,
                a[4] as f32,
                a[5] as f32,
            ],
            xmax: (r.w - 1) as f32,
            ymax: (r.h - 1) as f32,
        }
    }
    #[inline]
    fn px(&self, x: usize, y: usize) -> f32 {
        let i = (y * self.r.w + x) * self.r.ch;
        if self.r.ch == 1 {
            self.r.data[i] as f32
        } else {
            luma(self.r.data[i], self.r.data[i + 1], self.r.data[i + 2]) as f32
        }
    }
    pub fn get(&self, p: Point) -> f32 {
        let m = &self.m;
        let x = (m[0] * p.x + m[1] * p.y + m[2]).clamp(0.0, self.xmax);
        let y = (m[3] * p.x + m[4] * p.y + m[5]).clamp(0.0, self.ymax);
        // Truncation is the floor here: both are clamped to be non-negative. Through i32 (photo
        // sizes are far below 2^24, so every value is exact): the conversions to and from usize
        // cost several instructions each, and this is the inner loop of edge refinement.
        let (xi, yi) = (x as i32, y as i32);
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        let (x0, y0) = (xi as usize, yi as usize);
        let (x1, y1) = ((x0 + 1).min(self.r.w - 1), (y0 + 1).min(self.r.h - 1));
        if self.r.ch == 1 {
            // Luma (every grayscale scan): the same sums, without the per-pixel channel test.
            let (d, w) = (&self.r.data, self.r.w);
            let px = |x: usize, y: usize| d[y * w + x] as f32;
            let a = px(x0, y0) * (1.0 - fx) + px(x1, y0) * fx;
            let b = px(x0, y1) * (1.0 - fx) + px(x1, y1) * fx;
            return a * (1.0 - fy) + b * fy;
        }
        let a = self.px(x0, y0) * (1.0 - fx) + self.px(x1, y0) * fx;
        let b = self.px(x0, y1) * (1.0 - fx) + self.px(x1, y1) * fx;
        a * (1.0 - fy) + b * fy
    }
}

multiversion! {
/// Box-downscales the stored raster by an integer factor to luma. Rows are first summed into
/// per-column accumulators (a straight vectorisable add), then groups of `f` columns are summed.
fn downscale(r: &Raster, f: usize) -> (usize, usize, Vec<f32>) {
    let (sw, sh) = (r.w / f, r.h / f);
    let mut out = vec![0f32; sw * sh];
    // u16 column sums vectorise twice as wide as u32; f rows of 255 must fit (f <= 257).
    let wide = f > 257;
    let mut acc = vec![0u32; if wide { r.w } else { 0 }];
    let mut acc16 = vec![0u16; if wide { 0 } else { r.w }];
    let inv = 1.0 / (f * f) as f32;
    if !wide && r.ch == 1 {
        for sy in 0..sh {
            acc16.iter_mut().for_each(|a| *a = 0);
            for y in sy * f..sy * f + f {
                for (a, &v) in acc16.iter_mut().zip(&r.data[y * r.w..(y + 1) * r.w]) {
                    *a += v as u16;
                }
            }
            let row = &mut out[sy * sw..(sy + 1) * sw];
            // Group sums with the group size known at compile time (8 for 12 MP photos, 9 for
            // 16 MP, 16 for 48 MP) unroll into straight adds; a run-time `f` costs a short loop
            // per output pixel, which measured as much as summing the rows themselves.
            macro_rules! groups {
                ($($n:literal)*) => {
                    match f {
                        $($n => {
                            let (groups, _) = acc16[..sw * $n].as_chunks::<$n>();
                            for (o, g) in row.iter_mut().zip(groups) {
                                *o = g.iter().map(|&v| v as u32).sum::<u32>() as f32 * inv;
                            }
                        })*
                        _ => {
                            for (sx, o) in row.iter_mut().enumerate() {
                                *o = acc16[sx * f..sx * f + f].iter().map(|&v| v as u32).sum::<u32>() as f32 * inv;
                            }
                        }
                    }
                };
            }
            groups!(6 7 8 9 10 12 16);
        }
        return (sw, sh, out);
    }
    if !wide {
        acc = vec![0u32; r.w];
    }
    for sy in 0..sh {
        acc.iter_mut().for_each(|a| *a = 0);
        for y in sy * f..sy * f + f {
            let row = &r.data[y * r.w * r.ch..(y + 1) * r.w * r.ch];
            if r.ch == 1 {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v as u32;
                }
            } else {
                for (a, p) in acc.iter_mut().zip(row.chunks_exact(r.ch)) {
                    *a += luma(p[0], p[1], p[2]) as u32;
                }
            }
        }
        for sx in 0..sw {
            out[sy * sw + sx] = acc[sx * f..sx * f + f].iter().sum::<u32>() as f32 * inv;
        }
    }
    (sw, sh, out)
}
}

multiversion! {
/// Separable box blur with edge replication. Taps are summed in the same order everywhere; the
/// interior of each row and whole rows of the vertical pass run as straight vector loops.
fn box_blur(w: usize, h: usize, src: &[f32], rad: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; w * h];
    let mut out = vec![0f32; w * h];
    let norm = 1.0 / (2 * rad + 1) as f32;
    let taps = 2 * rad + 1;
    let mut inner = vec![0f32; w];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let t = &mut tmp[y * w..(y + 1) * w];
        let edge = |x: usize| {
            let mut s = 0.0;
            for k in 0..taps {
                s += row[(x + k).saturating_sub(rad).min(w - 1)];
            }
            s * norm
        };
        if w <= 2 * rad {
            for (x, v) in t.iter_mut().enumerate() {
                *v = edge(x);
            }
            continue;
        }
        for x in (0..rad).chain(w - rad..w) {
            t[x] = edge(x);
        }
        let acc = &mut inner[..w - 2 * rad];
        acc.iter_mut().for_each(|a| *a = 0.0);
        for k in 0..taps {
            for (a, &v) in acc.iter_mut().zip(&row[k..k + w - 2 * rad]) {
                *a += v;
            }
        }
        for (v, &a) in t[rad..w - rad].iter_mut().zip(acc.iter()) {
            *v = a * norm;
        }
    }
    let mut acc = vec![0f32; w];
    for y in 0..h {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for k in 0..taps {
            let yy = (y + k).saturating_sub(rad).min(h - 1);
            for (a, &v) in acc.iter_mut().zip(&tmp[yy * w..(yy + 1) * w]) {
                *a += v;
            }
        }
        for (o, &a) in out[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *o = a * norm;
        }
    }
    out
}
}

fn otsu(v: &[f32]) -> f32 {
    otsu_above(v, f32::MIN)
}

/// Otsu's threshold among the values above `floor` only.
fn otsu_above(v: &[f32], floor: f32) -> f32 {
    let hist = histogram_above(v, floor);
    let total = hist.iter().map(|&c| c as f64).sum::<f64>();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut wb, mut sb, mut best, mut best_t) = (0f64, 0f64, -1f64, 128usize);
    for (t, &count) in hist.iter().enumerate() {
        wb += count as f64;
        if wb == 0.0 {
            continue;
        }
        let wf = total - wb;
        if wf == 0.0 {
            break;
        }
        sb += t as f64 * count as f64;
        let mb = sb / wb;
        let mf = (sum_all - sb) / wf;
        let between = wb * wf * (mb - mf) * (mb - mf);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    best_t as f32 + 0.5
}

/// Histogram of the whole levels of the values above `floor` (clamped to 0..=255). Four partial
/// histograms, each counting without a branch, so consecutive pixels of one level do not wait
/// on each other's increment; the counts are those of [`tests::histogram_reference`].
fn histogram_above(v: &[f32], floor: f32) -> [u32; 256] {
    let mut part = [[0u32; 256]; 4];
    let bin = |x: f32| (x as i32).clamp(0, 255) as usize;
    let (quads, rest) = v.as_chunks::<4>();
    for q in quads {
        for (k, &x) in q.iter().enumerate() {
            part[k][bin(x)] += (x > floor) as u32;
        }
    }
    for &x in rest {
        part[0][bin(x)] += (x > floor) as u32;
    }
    std::array::from_fn(|i| part[0][i] + part[1][i] + part[2][i] + part[3][i])
}

/// Largest 4-connected component of `mask`; returns (area, boundary sample points).
///
/// Works on horizontal runs: each row's runs are merged (union-find) with the runs of the row
/// above that share a column, which touches a few runs per row instead of every pixel. Ties go
/// to the component met first in raster order.
fn largest_component(w: usize, h: usize, mask: &[bool]) -> (usize, Vec<Point>) {
    // Runs as (row, first column, one past the last column), in raster order.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut row_start = Vec::with_capacity(h + 1);
    for y in 0..h {
        row_start.push(runs.len());
        let row = &mask[y * w..(y + 1) * w];
        let mut x = 0;
        while x < w {
            if row[x] {
                let x0 = x;
                while x < w && row[x] {
                    x += 1;
                }
                runs.push((y, x0, x));
            } else {
                x += 1;
            }
        }
    }
    row_start.push(runs.len());
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    for y in 1..h {
        let (mut a, a_end) = (row_start[y - 1], row_start[y]);
        let (mut b, b_end) = (row_start[y], row_start[y + 1]);
        // Two-pointer sweep over the overlapping runs of adjacent rows.
        while a < a_end && b < b_end {
            let (ra, rb) = (runs[a], runs[b]);
            if ra.1 < rb.2 && rb.1 < ra.2 {
                let (pa, pb) = (find(&mut parent, a), find(&mut parent, b));
                if pa != pb {
                    // The root is always the earlier run, so a component's root is its first run.
                    parent[pa.max(pb)] = pa.min(pb);
                }
            }
            if ra.2 < rb.2 {
                a += 1;
            } else {
                b += 1;
            }
        }
    }
    let mut area = vec![0usize; runs.len()];
    for (i, run) in runs.iter().enumerate() {
        let r = find(&mut parent, i);
        area[r] += run.2 - run.1;
    }
    // Roots in raster order of their first run; strictly larger wins.
    let mut best = (0usize, usize::MAX);
    for (i, &a) in area.iter().enumerate() {
        if parent[i] == i && a > best.0 {
            best = (a, i);
        }
    }
    let mut pts = Vec::new();
    if best.1 == usize::MAX {
        return (0, pts);
    }
    // Boundary samples: leftmost/rightmost pixel per row and topmost/bottommost per column.
    let mut top = vec![usize::MAX; w];
    let mut bot = vec![0usize; w];
    for y in 0..h {
        let mut lr: Option<(usize, usize)> = None;
        for (i, &(_, x0, x1)) in runs
            .iter()
            .enumerate()
            .take(row_start[y + 1])
            .skip(row_start[y])
        {
            if find(&mut parent, i) != best.1 {
                continue;
            }
            lr = Some(match lr {
                None => (x0, x1 - 1),
                Some((l, _)) => (l, x1 - 1),
            });
            for x in x0..x1 {
                top[x] = top[x].min(y);
                bot[x] = y;
            }
        }
        if let Some((l, r)) = lr {
            pts.push(Point::new(l as f32, y as f32));
            pts.push(Point::new(r as f32, y as f32));
        }
    }
    for x in 0..w {
        if top[x] != usize::MAX {
            pts.push(Point::new(x as f32, top[x] as f32));
            pts.push(Point::new(x as f32, bot[x] as f32));
        }
    }
    (best.0, pts)
}

fn convex_hull(mut pts: Vec<Point>) -> Vec<Point> {
    pts.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross =
        |o: Point, a: Point, b: Point| (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
    let mut lower: Vec<Point> = Vec::new();
    for &p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<Point> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Largest-area quadrilateral with vertices on a convex polygon. Unlike greedy vertex removal,
/// this cannot drop a sharp corner whose hull neighbours happen to be close to it.
fn max_area_quad(mut hull: Vec<Point>) -> Option<[Point; 4]> {
    // Drop exactly collinear vertices, and only thin out further when the hull is large: repeated
    // removal of "almost collinear" vertices would erode rounded corners step by step.
    hull = {
        let n = hull.len();
        (0..n)
            .filter(|&i| {
                n <= 4
                    || polygon_area(&[hull[(i + n - 1) % n], hull[i], hull[(i + 1) % n]]).abs()
                        > 1e-3
            })
            .map(|i| hull[i])
            .collect()
    };
    let mut changed = hull.len() > 120;
    while changed && hull.len() > 120 {
        changed = false;
        let n = hull.len();
        if let Some(i) = (0..n).find(|&i| {
            polygon_area(&[hull[(i + n - 1) % n], hull[i], hull[(i + 1) % n]]).abs() < 1.0
        }) {
            hull.remove(i);
            changed = true;
        }
    }
    let n = hull.len();
    if n < 4 {
        return None;
    }
    let tri = |a: usize, b: usize, c: usize| polygon_area(&[hull[a], hull[b], hull[c]]).abs();
    let mut best = (0f32, [0usize; 4]);
    for i in 0..n {
        for k in i + 2..n {
            if (k + 2) % n == i || k + 1 >= n + i {
                continue;
            }
            let (mut bj, mut aj) = (i + 1, 0f32);
            for j in i + 1..k {
                let a = tri(i, j, k);
                if a > aj {
                    aj = a;
                    bj = j;
                }
            }
            let (mut bl, mut al) = ((k + 1) % n, 0f32);
            let mut l = k + 1;
            while l % n != i {
                let a = tri(k, l % n, i);
                if a > al {
                    al = a;
                    bl = l % n;
                }
                l += 1;
            }
            if aj + al > best.0 {
                best = (aj + al, [i, bj, k, bl]);
            }
        }
    }
    let q = best.1;
    if best.0 <= 0.0 {
        return None;
    }
    Some([hull[q[0]], hull[q[1]], hull[q[2]], hull[q[3]]])
}

/// The small copy detection works on, in stored-raster orientation.
struct Small {
    w: usize,
    h: usize,
    /// Downscale factor: small pixel (x, y) covers stored pixels [x f, x f + f).
    f: usize,
    /// Lightly blurred (edges, lines, evidence).
    fine: Vec<f32>,
    /// More blurred (segmentation).
    coarse: Vec<f32>,
}

impl Small {
    fn new(r: &Raster) -> Option<Small> {
        let f = (r.w.max(r.h)).div_ceil(SMALL_TARGET).max(1);
        let (w, h, small) = downscale(r, f);
        if w < 16 || h < 16 {
            return None;
        }
        Some(Small {
            w,
            h,
            f,
            fine: box_blur(w, h, &small, 1),
            coarse: box_blur(w, h, &small, 2),
        })
    }
    fn to_raw(&self, p: Point) -> Point {
        let off = (self.f as f32 - 1.0) / 2.0;
        Point::new(p.x * self.f as f32 + off, p.y * self.f as f32 + off)
    }
    fn raw_to_small(&self, p: Point) -> Point {
        let off = (self.f as f32 - 1.0) / 2.0;
        Point::new((p.x - off) / self.f as f32, (p.y - off) / self.f as f32)
    }
}

/// A segmented region's page quad (small coordinates) and how much of the frame's border the
/// region touches (0..1).
fn region_quad(w: usize, h: usize, img: &[f32]) -> (Option<[Point; 4]>, f32) {
    region_quad_above(w, h, img, otsu(img))
}

/// [`region_quad`] of the region brighter than `t`.
fn region_quad_above(w: usize, h: usize, img: &[f32], t: f32) -> (Option<[Point; 4]>, f32) {
    let mask: Vec<bool> = img.iter().map(|&v| v > t).collect();
    mask_quad(w, h, &mask)
}

/// [`region_quad`] with the region's holes filled: a printed frame (a certificate's border, a
/// form's box) splits the paper into the ring of margin outside it and the field inside, and the
/// largest bright component is then the field, an outline the margin beyond rules out. Filled,
/// ring, frame and field are one region, the page.
/// `t` is the region's threshold, Otsu's of `img`.
fn filled_region_quad(w: usize, h: usize, img: &[f32], t: f32) -> Option<[Point; 4]> {
    let mut mask: Vec<bool> = img.iter().map(|&v| v > t).collect();
    // Dark pixels reached from the frame's border are ground; every other dark pixel is a hole.
    let mut ground = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    for x in 0..w {
        stack.push(x);
        stack.push((h - 1) * w + x);
    }
    for y in 0..h {
        stack.push(y * w);
        stack.push(y * w + w - 1);
    }
    while let Some(i) = stack.pop() {
        if mask[i] || ground[i] {
            continue;
        }
        ground[i] = true;
        let (x, y) = (i % w, i / w);
        if x > 0 {
            stack.push(i - 1);
        }
        if x + 1 < w {
            stack.push(i + 1);
        }
        if y > 0 {
            stack.push(i - w);
        }
        if y + 1 < h {
            stack.push(i + w);
        }
    }
    let mut holes = 0usize;
    for (m, g) in mask.iter_mut().zip(&ground) {
        if !*m && !*g {
            *m = true;
            holes += 1;
        }
    }
    // Without holes the plain outline is the same.
    if holes == 0 {
        return None;
    }
    mask_quad(w, h, &mask).0
}

/// The page quad of the largest component of `mask`, and how much of the frame's border that
/// component touches (0..1).
fn mask_quad(w: usize, h: usize, mask: &[bool]) -> (Option<[Point; 4]>, f32) {
    let (area, pts) = largest_component(w, h, mask);
    let border = pts
        .iter()
        .filter(|p| p.x < 0.5 || p.y < 0.5 || p.x > w as f32 - 1.5 || p.y > h as f32 - 1.5)
        .count() as f32;
    let touch = border / (2 * (w + h)) as f32;
    let frame = (w * h) as f32;
    if (area as f32) < 0.02 * frame || (area as f32) > 0.97 * frame {
        return (None, touch);
    }
    let Some(quad) = max_area_quad(convex_hull(pts.clone())) else {
        return (None, touch);
    };
    let quad = fit_sides(fit_sides(quad, &pts), &pts);
    let qa = polygon_area(&quad).abs();
    if qa <= 0.0 || (area as f32) < 0.75 * qa {
        return (None, touch);
    }
    (Some(order_corners(quad)), touch)
}

/// The copy with a least-squares lighting plane divided out (gradients across the photo).
fn flatten(w: usize, h: usize, img: &[f32]) -> Vec<f32> {
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy, mut sv, mut sxv, mut syv) =
        (0f64, 0f64, 0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let (xf, yf, v) = (x as f64, y as f64, img[y * w + x] as f64);
            sx += xf;
            sy += yf;
            sxx += xf * xf;
            syy += yf * yf;
            sxy += xf * yf;
            sv += v;
            sxv += xf * v;
            syv += yf * v;
        }
    }
    let n = (w * h) as f64;
    // Normal equations of v = a + b x + c y.
    let m = Mat3([n, sx, sy, sx, sxx, sxy, sy, sxy, syy]);
    let Some(inv) = m.inverse() else {
        return img.to_vec();
    };
    let i = inv.0;
    let a = i[0] * sv + i[1] * sxv + i[2] * syv;
    let b = i[3] * sv + i[4] * sxv + i[5] * syv;
    let c = i[6] * sv + i[7] * sxv + i[8] * syv;
    let mean = (sv / n) as f32;
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let plane = ((a + b * x as f64 + c * y as f64) as f32).max(8.0);
            out[y * w + x] = img[y * w + x] * mean / plane;
        }
    }
    out
}

/// Plausibility of a candidate (small coordinates, clockwise) for the mode, with its evidence.
fn plausible(q: &[Point; 4], ev: &[f32; 4], mode: Mode, w: usize, h: usize) -> bool {
    if !is_convex(q) {
        return false;
    }
    let frame = (w * h) as f32;
    let area = polygon_area(q).abs();
    let min_area = match mode {
        Mode::Page => 0.08,
        Mode::Card => 0.02,
    };
    if area < min_area * frame || area > 0.97 * frame {
        return false;
    }
    // A corner on the frame's border means the page is cut off there.
    if q.iter()
        .any(|p| p.x < 1.0 || p.y < 1.0 || p.x > w as f32 - 2.0 || p.y > h as f32 - 2.0)
    {
        return false;
    }
    for i in 0..4 {
        let (a, b, c) = (q[(i + 3) % 4], q[i], q[(i + 1) % 4]);
        let (u, v) = (
            Point::new(a.x - b.x, a.y - b.y),
            Point::new(c.x - b.x, c.y - b.y),
        );
        let cos = (u.x * v.x + u.y * v.y) / (a.dist(b) * c.dist(b)).max(1e-6);
        if cos.abs() > 50f32.to_radians().sin() {
            return false; // an angle outside 50..130 degrees
        }
    }
    let across = q[0].dist(q[1]) + q[3].dist(q[2]);
    let down = q[0].dist(q[3]) + q[1].dist(q[2]);
    let aspect = across.max(down) / across.min(down).max(1e-6);
    let (lo, hi) = match mode {
        Mode::Page => (1.15, 1.85),
        Mode::Card => (1.3, 1.8),
    };
    if !(lo..=hi).contains(&aspect) {
        return false;
    }
    let min = ev.iter().copied().fold(1.0, f32::min);
    let mean = ev.iter().sum::<f32>() / 4.0;
    min >= 0.5 && mean >= 0.7
}

/// Replaces hull-vertex corners by intersections of lines fitted to the middle of each side, so
/// rounded or dog-eared corners do not pull the corner inward.
fn fit_sides(q: [Point; 4], pts: &[Point]) -> [Point; 4] {
    let mut lines = Vec::with_capacity(4);
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = a.dist(b).max(1.0);
        let d = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
        let near: Vec<Point> = pts
            .iter()
            .copied()
            .filter(|p| {
                let t = ((p.x - a.x) * d.x + (p.y - a.y) * d.y) / len;
                let off = ((p.x - a.x) * d.y - (p.y - a.y) * d.x).abs();
                (0.15..=0.85).contains(&t) && off <= 4.0
            })
            .collect();
        lines.push(if near.len() >= 6 {
            fit_line(&near).unwrap_or((a, d))
        } else {
            (a, d)
        });
    }
    let mut out = q;
    for i in 0..4 {
        if let Some(p) = intersect(&lines[(i + 3) % 4], &lines[i]) {
            if p.dist(q[i]) <= 12.0 {
                out[i] = p;
            }
        }
    }
    out
}

/// Total-least-squares line through points: (point on line, unit direction).
fn fit_line(pts: &[Point]) -> Option<(Point, Point)> {
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.x as f64).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.y as f64).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for p in pts {
        let (dx, dy) = (p.x as f64 - mx, p.y as f64 - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    Some((
        Point::new(mx as f32, my as f32),
        Point::new(theta.cos() as f32, theta.sin() as f32),
    ))
}

fn line_dist(l: &(Point, Point), p: Point) -> f32 {
    ((p.x - l.0.x) * l.1.y - (p.y - l.0.y) * l.1.x).abs()
}

fn intersect(a: &(Point, Point), b: &(Point, Point)) -> Option<Point> {
    let den = a.1.x * b.1.y - a.1.y * b.1.x;
    if den.abs() < 1e-6 {
        return None;
    }
    let t = ((b.0.x - a.0.x) * b.1.y - (b.0.y - a.0.y) * b.1.x) / den;
    Some(Point::new(a.0.x + a.1.x * t, a.0.y + a.1.y * t))
}

/// One refinement pass: each side searched within ±`radius` px along its normal.
fn refine(s: &Sampler, q: [Point; 4], radius: f32) -> [Point; 4] {
    const SAMPLES: usize = 48;
    const MIN_STEP: f32 = 10.0;
    let mut lines = Vec::with_capacity(4);
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = a.dist(b).max(1.0);
        let d = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
        // Outward normal for a clockwise (on screen) polygon.
        let n = Point::new(d.y, -d.x);
        let steps = (2.0 * radius) as usize + 1;
        let mut prof = vec![0f32; steps];
        let mut pts = Vec::with_capacity(SAMPLES);
        for k in 0..SAMPLES {
            let t = 0.08 + 0.84 * k as f32 / (SAMPLES - 1) as f32;
            let c = Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
            for (j, pv) in prof.iter_mut().enumerate() {
                let sdist = j as f32 - radius;
                let mut acc = 0.0;
                for tt in [-2.0f32, 0.0, 2.0] {
                    acc += s.get(Point::new(
                        c.x + n.x * sdist + d.x * tt,
                        c.y + n.y * sdist + d.y * tt,
                    ));
                }
                *pv = acc / 3.0;
            }
            // Step response: brighter inside (smaller s) than outside.
            let mut best = (0.0f32, 0usize);
            let resp = |j: usize| prof[j - 2] - prof[j + 2];
            for j in 2..steps - 2 {
                let e = resp(j);
                if e > best.0 {
                    best = (e, j);
                }
            }
            if best.0 < MIN_STEP {
                continue;
            }
            let j = best.1;
            let mut off = 0.0;
            if j > 2 && j + 3 < steps {
                let (l, m, r) = (resp(j - 1), resp(j), resp(j + 1));
                let den = l - 2.0 * m + r;
                if den.abs() > 1e-6 {
                    off = (0.5 * (l - r) / den).clamp(-0.5, 0.5);
                }
            }
            let sd = j as f32 + off - radius;
            pts.push(Point::new(c.x + n.x * sd, c.y + n.y * sd));
        }
        // Robust fit: drop points far from the first fit (text, shadows, fingers), refit.
        let mut line = None;
        if pts.len() >= 8 {
            let mut cur = pts.clone();
            for _ in 0..3 {
                let Some(l) = fit_line(&cur) else { break };
                let mut ds: Vec<f32> = cur.iter().map(|&p| line_dist(&l, p)).collect();
                ds.sort_by(f32::total_cmp);
                let thr = (ds[ds.len() / 2] * 2.5).max(1.0);
                line = Some(l);
                let kept: Vec<Point> = cur
                    .iter()
                    .copied()
                    .filter(|&p| line_dist(&l, p) <= thr)
                    .collect();
                if kept.len() < 8 || kept.len() == cur.len() {
                    break;
                }
                cur = kept;
            }
            if let Some(l) = line {
                line = fit_line(
                    &pts.iter()
                        .copied()
                        .filter(|&p| line_dist(&l, p) <= 2.0)
                        .collect::<Vec<_>>(),
                )
                .filter(|_| pts.iter().filter(|&&p| line_dist(&l, p) <= 2.0).count() >= 8)
                .or(Some(l));
            }
        }
        lines.push(line.unwrap_or((a, d)));
    }
    let mut out = q;
    for i in 0..4 {
        // Corner i is where side i-1 (ending at it) meets side i (starting at it).
        if let Some(p) = intersect(&lines[(i + 3) % 4], &lines[i]) {
            if p.dist(q[i]) <= radius * 4.0 {
                out[i] = p;
            }
        }
    }
    out
}

/// Finds the page in a stored raster; corners are returned in oriented coordinates.
pub fn detect(r: &Raster, o: Orientation, mode: Mode) -> Detection {
    let (ow, oh) = o.oriented_size(r.w as u32, r.h as u32);
    let whole = |reason: Reason, confidence: f32| Detection {
        corners: frame_corners(ow, oh),
        detected: false,
        confidence,
        reason,
    };
    let Some(sm) = Small::new(r) else {
        return whole(Reason::NoPageFound, 0.0);
    };
    let raw_to_or = o.oriented_to_raw(r.w as u32, r.h as u32);
    let Some(to_oriented) = raw_to_or.inverse() else {
        return whole(Reason::NoPageFound, 0.0);
    };
    let to_small =
        |q: &[Point; 4]| order_corners(q.map(|p| sm.raw_to_small(raw_to_or.apply_pt(p))));

    // Candidates in small coordinates, each already checked for plausibility.
    let (plain, touch) = region_quad(sm.w, sm.h, &sm.coarse);
    let flat_img = flatten(sm.w, sm.h, &sm.coarse);
    // Three of the contour candidates split the flattened copy at its Otsu threshold.
    let t_flat = otsu(&flat_img);
    let (flat, _) = region_quad_above(sm.w, sm.h, &flat_img, t_flat);
    // On ground nearly as light as the paper (a pale table, tiles) Otsu puts the ground with the
    // paper, and the bright region runs off the frame: no contour outline, so nothing for the
    // line method's outline to agree with. The paper is then the brighter part of that region:
    // split it once more, with the lighting plane divided out.
    let lighter = (touch > 0.08)
        .then(|| region_quad_above(sm.w, sm.h, &flat_img, otsu_above(&flat_img, t_flat)).0)
        .flatten();
    let filled = filled_region_quad(sm.w, sm.h, &flat_img, t_flat);
    // A printed frame (a certificate's border) has the page's margin beyond it; a page edge
    // has the background. Searched as far out as a border sits from the edge of a page filling
    // most of the photo.
    let reach = 0.06 * sm.w.max(sm.h) as f32;
    let nothing_beyond =
        |q: &[Point; 4]| nothing_beyond(&sm.fine, sm.w, sm.h, q, reach, PAPER_BEYOND);
    let check = |q: &[Point; 4]| {
        let ev = side_evidence(&sm.fine, sm.w, sm.h, q);
        (plausible(q, &ev, mode, sm.w, sm.h) && nothing_beyond(q))
            .then_some(ev.iter().copied().fold(1.0, f32::min))
    };
    let s = Sampler::new(r, o);
    let rad = (3.0 * sm.f as f32).max(8.0);
    // Full-resolution edge refinement, in small coordinates.
    let refined = |q: &[Point; 4]| {
        let mut f = order_corners(q.map(|p| to_oriented.apply_pt(sm.to_raw(p))));
        f = refine(&s, f, rad);
        f = refine(&s, order_corners(f), rad);
        f = order_corners(refine(&s, order_corners(f), 6.0));
        (f, to_small(&f))
    };
    // A segmented outline is rough (shadows bend it); it is judged after refinement.
    let mut full_of: Vec<([Point; 4], [Point; 4])> = Vec::new();
    let mut contour: Vec<([Point; 4], f32)> = Vec::new();
    // The flattened copy usually segments the same outline; refine it only when it differs.
    let same = |a: &[Point; 4], b: &[Point; 4]| a.iter().zip(b).all(|(p, q)| p.dist(*q) < 1.5);
    let flat = flat.filter(|f| plain.map(|p| !same(&p, f)).unwrap_or(true));
    let lighter = lighter.filter(|l| [plain, flat].iter().flatten().all(|p| !same(p, l)));
    let filled = filled.filter(|l| [plain, flat, lighter].iter().flatten().all(|p| !same(p, l)));
    for q in [plain, flat, lighter, filled].into_iter().flatten() {
        let (f, rs) = refined(&q);
        if let Some(e) = check(&rs) {
            // Remember the full-resolution corners: refining them again would change nothing.
            full_of.push((rs, f));
            contour.push((rs, e));
        } else if let Some(e) = check(&q) {
            contour.push((q, e));
        }
    }
    let min_area = match mode {
        Mode::Page => 0.08,
        Mode::Card => 0.02,
    } * (sm.w * sm.h) as f32;
    // Largest first: the page is the outermost supported quad (table frames and certificate
    // borders lie inside it, and give no step edge anyway). The paper-beyond test of a line
    // outline is made only when its answer is needed, and once: where the methods agree only
    // the outlines that agree or might surround the agreed one are asked (this test was a
    // tenth of detection's time when every line outline took it).
    let line_cands: Vec<([Point; 4], f32)> = line_quads(&sm.fine, sm.w, sm.h, min_area)
        .into_iter()
        .filter(|(q, ev)| plausible(q, ev, mode, sm.w, sm.h))
        .map(|(q, ev)| (q, ev.iter().copied().fold(1.0, f32::min)))
        .collect();
    let line_clear: Vec<std::cell::Cell<Option<bool>>> =
        line_cands.iter().map(|_| Default::default()).collect();
    let line_ok = |i: usize| {
        let c = &line_clear[i];
        c.get().unwrap_or_else(|| {
            let ok = nothing_beyond(&line_cands[i].0);
            c.set(Some(ok));
            ok
        })
    };

    let agree = |a: &[Point; 4], b: &[Point; 4]| {
        let tol = (0.025 * polygon_area(a).abs().sqrt()).max(2.5);
        a.iter().zip(b).all(|(p, q)| p.dist(*q) <= tol)
    };
    let area = |q: &[Point; 4]| polygon_area(q).abs();
    // The largest outline both methods found.
    let mut agreed: Option<([Point; 4], f32)> = None;
    for (c, ce) in &contour {
        for (i, (l, le)) in line_cands.iter().enumerate() {
            if agree(c, l) && line_ok(i) {
                let (q, e) = if area(c) >= area(l) {
                    (*c, *ce)
                } else {
                    (*l, *le)
                };
                if agreed.map(|b| area(&q) > area(&b.0)).unwrap_or(true) {
                    agreed = Some((q, e.min(*ce).min(*le)));
                }
            }
        }
    }
    // Refined on the full photo; kept only if it still looks like the page afterwards (it may
    // have wandered onto a shadow edge or a second document).
    let finish = |q: [Point; 4]| {
        if let Some((_, f)) = full_of.iter().find(|(s, _)| *s == q) {
            return *f;
        }
        let coarse = order_corners(q.map(|p| to_oriented.apply_pt(sm.to_raw(p))));
        let (f, fs) = refined(&q);
        let moved = q
            .iter()
            .zip(&fs)
            .map(|(a, b)| a.dist(*b))
            .fold(0.0, f32::max);
        let ok =
            is_convex(&f) && check(&fs).is_some() && moved <= (0.05 * area(&q).sqrt()).max(4.0);
        if ok {
            f
        } else {
            coarse
        }
    };
    let nominal = match mode {
        Mode::Page => std::f32::consts::SQRT_2,
        Mode::Card => 85.6 / 53.98,
    };
    let proportion = |q: &[Point; 4]| quad_aspect(q) / nominal;
    // On ground nearly as light as the paper, a darker part of the document (an ID card's tinted
    // header band, a grey form area along an edge) can be as dark as the ground and show no edge
    // at all: both methods then agree on the rest, with step edges all round. What is left gives
    // itself away only by its shape, shorter one way than the document, so there an outline is
    // used only with the document's proportions within 5%; otherwise the whole frame is kept,
    // flagged. An ID card without its header band is 16% longer than ID-1, and perspective
    // left such cuts 5-14% off on the tuning set, while 33 of 41 right outlines on light ground
    // were within 5% (the other 8 are now flagged). On darker ground every part of a document
    // stands out, and the check is not needed.
    let doubtful_on_light_ground = |q: &[Point; 4]| {
        !(0.95..=1.05).contains(&proportion(q))
            && ground_ratio(&sm.fine, sm.w, sm.h, q, 0.025 * sm.w.max(sm.h) as f32) >= LIGHT_GROUND
    };
    if let Some((q, e)) = agreed {
        // A larger supported outline around the agreed one means the agreement may be on
        // something inside the page (a table frame, a shadowed part): do not trust it.
        let surrounds = |l: &[Point; 4], e: f32| {
            e >= 0.75
                && area(l) > 1.05 * area(&q)
                && crate::geom::clip_convex(&q, l).len() >= 3
                && area_of(&crate::geom::clip_convex(&q, l)) > 0.97 * area(&q)
        };
        let outer = line_cands
            .iter()
            .enumerate()
            .any(|(i, (l, e))| surrounds(l, *e) && line_ok(i))
            || contour.iter().any(|(l, e)| surrounds(l, *e));
        if !outer {
            if doubtful_on_light_ground(&q) {
                return whole(Reason::LowContrast, 0.2);
            }
            return Detection {
                corners: finish(q),
                detected: true,
                confidence: 0.75 + 0.25 * e,
                reason: Reason::Agreed,
            };
        }
        return whole(Reason::MethodsDisagree, 0.2);
    }
    let lines: Vec<([Point; 4], f32)> = line_cands
        .iter()
        .enumerate()
        .filter(|&(i, _)| line_ok(i))
        .map(|(_, c)| *c)
        .collect();
    match (contour.is_empty(), lines.is_empty()) {
        // One method only: its largest plausible outline, used but flagged.
        (false, true) | (true, false) => {
            let (q, e) = contour
                .iter()
                .chain(&lines)
                .copied()
                .max_by(|a, b| area(&a.0).total_cmp(&area(&b.0)))
                .expect("a candidate");
            // The edge evidence is also taken the way every contour outline is judged, at 32
            // points along each side: a line outline's own measure follows its Hough line, which
            // is quantised to a degree and drifts off a long side towards its ends, so clear
            // sides can measure well below their real share there. On the tuning set no outline
            // with 30 of 32 points on every side lost area (one with 29 did, a finger over its
            // edge, and folded pages with 27, their bulging sides).
            let sampled = side_evidence(&sm.fine, sm.w, sm.h, &q)
                .iter()
                .copied()
                .fold(1.0, f32::min);
            // Unconfirmed and with gaps in its edges: not enough to cut the photo on.
            if e < 0.9 && sampled < CLEAR_SAMPLED {
                return whole(Reason::WeakEdges, 0.2);
            }
            // Flagged either way; the whole frame at least loses nothing.
            if doubtful_on_light_ground(&q) {
                return whole(Reason::LowContrast, 0.2);
            }
            // Trusted alone only when nothing hints at a part of the page outside it: a step edge
            // along nearly all of every side, no bright region running off the frame, and the
            // proportions of the document itself (a crop that stops at a shadow's edge or a fold
            // is shorter one way). The proportion check is loose enough for perspective, so it
            // catches cuts of about a tenth of the page or more.
            let clear = e >= CLEAR_EDGES
                || sampled
                    >= match mode {
                        Mode::Page => CLEAR_SAMPLED,
                        Mode::Card => CLEAR_SAMPLED_CARD,
                    };
            // Nothing running off the frame: the segmented bright region does not reach the
            // frame's edge, or, where it does because the ground itself is light (Otsu then puts
            // a pale table or tiles with the paper), nothing at the frame's edge is as bright as
            // this page's paper.
            let off_frame = touch > 0.02 && paper_at_frame_edge(&sm, &q) > 0.02;
            if clear && !off_frame && (0.92..=1.08).contains(&proportion(&q)) {
                return Detection {
                    corners: finish(q),
                    detected: true,
                    confidence: 0.6 + 0.15 * e.max(sampled),
                    reason: Reason::ClearEdges,
                };
            }
            Detection {
                corners: finish(q),
                detected: true,
                confidence: 0.3 + 0.2 * e,
                reason: Reason::SingleMethod,
            }
        }
        (true, true) if fills_frame(&sm) => whole(Reason::FillsFrame, 0.7),
        (true, true) if touch > 0.08 => whole(Reason::PageCutByFrame, 0.2),
        (true, true) => whole(Reason::NoPageFound, 0.1),
        (false, false) => whole(Reason::MethodsDisagree, 0.2),
    }
}

/// Every plausible ID-card outline either method proposes (oriented photo coordinates, refined
/// on the full photo, largest first), without the agreement and fail-safe rules [`detect`]
/// applies before it may crop a photo. For a reader that checks its own result (the ID-number
/// reader's checksum, birth date and character scores): when [`detect`] keeps the whole frame,
/// the card is often still among these (a large card on light or busy ground, where only one
/// method sees it or the two disagree by a few pixels). Never used to crop a scan.
pub fn card_outlines(r: &Raster, o: Orientation) -> Vec<[Point; 4]> {
    let Some(sm) = Small::new(r) else {
        return Vec::new();
    };
    let raw_to_or = o.oriented_to_raw(r.w as u32, r.h as u32);
    let Some(to_oriented) = raw_to_or.inverse() else {
        return Vec::new();
    };
    let mode = Mode::Card;
    let ok = |q: &[Point; 4]| {
        let ev = side_evidence(&sm.fine, sm.w, sm.h, q);
        plausible(q, &ev, mode, sm.w, sm.h)
    };
    let (plain, _) = region_quad(sm.w, sm.h, &sm.coarse);
    let (flat, _) = region_quad(sm.w, sm.h, &flatten(sm.w, sm.h, &sm.coarse));
    let min_area = 0.02 * (sm.w * sm.h) as f32;
    let mut small: Vec<[Point; 4]> = [plain, flat]
        .into_iter()
        .flatten()
        .filter(|q| ok(q))
        .chain(
            line_quads(&sm.fine, sm.w, sm.h, min_area)
                .into_iter()
                .filter(|(q, ev)| plausible(q, ev, mode, sm.w, sm.h))
                .map(|(q, _)| q),
        )
        // A cut card (its header band or a shadowed side missing) is shorter one way: only
        // outlines with the card's proportions, as loose as perspective needs (as in `detect`).
        .filter(|q| (0.92..=1.08).contains(&(quad_aspect(q) / (85.6 / 53.98))))
        .collect();
    small.sort_by(|a, b| polygon_area(b).abs().total_cmp(&polygon_area(a).abs()));
    // Outlines within a few small-copy pixels of a larger one would read the same band.
    let mut kept: Vec<[Point; 4]> = Vec::new();
    for q in small {
        if !kept
            .iter()
            .any(|k| k.iter().zip(&q).all(|(a, b)| a.dist(*b) < 3.0))
        {
            kept.push(q);
        }
    }
    let s = Sampler::new(r, o);
    let rad = (3.0 * sm.f as f32).max(8.0);
    kept.into_iter()
        .take(MAX_CARD_OUTLINES)
        .map(|q| {
            let f = order_corners(q.map(|p| to_oriented.apply_pt(sm.to_raw(p))));
            let f = refine(&s, f, rad);
            order_corners(refine(&s, order_corners(f), 6.0))
        })
        .collect()
}

/// At most this many outlines are offered by [`card_outlines`] (each costs the reader two band
/// warps and reads).
const MAX_CARD_OUTLINES: usize = 4;

/// Ground beyond the outline at least this share of the paper's level counts as light: on the
/// tuning set a pale table or tiles measure about 0.8-0.9 of the paper next to them, and wood,
/// cloth, a dark desk and newsprint all stay below 0.75.
const LIGHT_GROUND: f32 = 0.75;

/// Share of the frame's edge (its outermost pixels in the small copy) at least as bright as 0.92
/// of the paper inside `q` (the 90th percentile of its pixels, above the text). A page running
/// off the frame has its paper there; pale ground next to it stays darker than the paper.
fn paper_at_frame_edge(sm: &Small, q: &[Point; 4]) -> f32 {
    let (w, h) = (sm.w, sm.h);
    let (x0, x1) = q
        .iter()
        .fold((f32::MAX, f32::MIN), |a, p| (a.0.min(p.x), a.1.max(p.x)));
    let (y0, y1) = q
        .iter()
        .fold((f32::MAX, f32::MIN), |a, p| (a.0.min(p.y), a.1.max(p.y)));
    // Inside a clockwise (on screen) convex quad: on the inner side of every edge.
    let inside = |x: f32, y: f32| {
        (0..4).all(|i| {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            (b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x) >= 0.0
        })
    };
    let mut vals = Vec::new();
    let (xa, xb) = (x0.max(0.0) as usize, (x1.min((w - 1) as f32)) as usize);
    let (ya, yb) = (y0.max(0.0) as usize, (y1.min((h - 1) as f32)) as usize);
    for y in (ya..=yb).step_by(2) {
        for x in (xa..=xb).step_by(2) {
            if inside(x as f32, y as f32) {
                vals.push(sm.fine[y * w + x]);
            }
        }
    }
    if vals.is_empty() {
        return 1.0;
    }
    let k = vals.len() * 9 / 10;
    let paper = *vals.select_nth_unstable_by(k, f32::total_cmp).1;
    let bright = 0.92 * paper;
    let mut hits = 0usize;
    for x in 0..w {
        hits += (sm.fine[x] >= bright) as usize + (sm.fine[(h - 1) * w + x] >= bright) as usize;
    }
    for y in 1..h - 1 {
        hits += (sm.fine[y * w] >= bright) as usize + (sm.fine[y * w + w - 1] >= bright) as usize;
    }
    hits as f32 / (2 * (w + h - 2)) as f32
}

/// Least step-edge evidence on every side for one method's outline to be trusted alone.
const CLEAR_EDGES: f32 = 0.95;

/// The same, sampled at 32 points per side ([`side_evidence`]): 30 of them.
const CLEAR_SAMPLED: f32 = 0.93;

/// The same for an ID card: 31 of 32. With cards drawn up to 0.9 of the frame, a finger over a
/// card's edge left 30 of 32 on that side on the tuning set while the refined outline was
/// pulled off the edge at one corner (0.4% of the card lost without a flag).
const CLEAR_SAMPLED_CARD: f32 = 0.96;

/// Long over short side of a quadrilateral, each the mean of two opposite sides.
fn quad_aspect(q: &[Point; 4]) -> f32 {
    let across = q[0].dist(q[1]) + q[3].dist(q[2]);
    let down = q[0].dist(q[3]) + q[1].dist(q[2]);
    across.max(down) / across.min(down).max(1e-6)
}

/// Share of a side's samples with paper beyond it above which a candidate is not the page.
const PAPER_BEYOND: f32 = 0.3;

/// Whether paper fills the whole frame, blank along every edge, with the content well inside:
/// a page photographed edge to edge, or a scan. Then no part of the document's content can lie
/// beyond the frame (content cut by an edge would leave ink on it), so the whole frame is the
/// page and nothing needs checking. A frame edge on background, in shadow, or crossed by ink
/// keeps the doubt.
fn fills_frame(sm: &Small) -> bool {
    let (w, h) = (sm.w, sm.h);
    let aspect = w.max(h) as f32 / w.min(h) as f32;
    if !(1.15..=1.85).contains(&aspect) {
        return false;
    }
    let img = &sm.fine;
    // Paper: the 99th percentile of the photo.
    let mut hist = [0u32; 256];
    for &v in img {
        hist[v.clamp(0.0, 255.0) as usize] += 1;
    }
    let level = |share: usize, of: &[u32; 256], n: usize| {
        let mut acc = 0;
        for (v, &c) in of.iter().enumerate() {
            acc += c as usize;
            if acc * 100 >= n * share {
                return v as f32;
            }
        }
        255.0
    };
    let paper = level(99, &hist, img.len());
    // Along the frame's edge (2 px deep): paper all round, lit about as brightly as the page.
    let ring = |x: usize, y: usize| x < 2 || y < 2 || x + 2 >= w || y + 2 >= h;
    let mut rh = [0u32; 256];
    let mut rn = 0;
    for y in 0..h {
        for x in 0..w {
            if ring(x, y) {
                rh[img[y * w + x].clamp(0.0, 255.0) as usize] += 1;
                rn += 1;
            }
        }
    }
    if level(5, &rh, rn) < 0.85 * paper {
        return false;
    }
    // Ink: clearly darker than its surroundings. None in a band along the edges (2% of the
    // photo deep), and some inside (a bare white surface is not a page).
    let bg = box_blur(w, h, img, 6);
    let band = |x: usize, y: usize| {
        let (bx, by) = ((w / 50).max(3), (h / 50).max(3));
        x < bx || y < by || x + bx >= w || y + by >= h
    };
    let (mut edge_ink, mut ink) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if img[i] < 0.8 * bg[i] {
                if band(x, y) {
                    edge_ink += 1;
                } else {
                    ink += 1;
                }
            }
        }
    }
    edge_ink == 0 && ink * 200 >= w * h
}

fn area_of(p: &[Point]) -> f32 {
    polygon_area(p).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-pixel flood fill the run-based labelling replaced, kept as its reference.
    fn flood_fill_reference(w: usize, h: usize, mask: &[bool]) -> (usize, Vec<Point>) {
        let mut label = vec![0u32; w * h];
        let mut best = (0usize, 0u32);
        let mut stack = Vec::new();
        let mut next = 0u32;
        for start in 0..w * h {
            if !mask[start] || label[start] != 0 {
                continue;
            }
            next += 1;
            let mut area = 0;
            label[start] = next;
            stack.push(start);
            while let Some(i) = stack.pop() {
                area += 1;
                let (x, y) = (i % w, i / w);
                let mut visit = |j: usize| {
                    if mask[j] && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < w {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - w);
                }
                if y + 1 < h {
                    visit(i + w);
                }
            }
            if area > best.0 {
                best = (area, next);
            }
        }
        // Boundary samples: leftmost/rightmost pixel per row and topmost/bottommost per column.
        let mut pts = Vec::new();
        let mut top = vec![usize::MAX; w];
        let mut bot = vec![0usize; w];
        for y in 0..h {
            let row = &label[y * w..(y + 1) * w];
            if let (Some(l), Some(r)) = (
                row.iter().position(|&v| v == best.1),
                row.iter().rposition(|&v| v == best.1),
            ) {
                pts.push(Point::new(l as f32, y as f32));
                pts.push(Point::new(r as f32, y as f32));
                for x in l..=r {
                    if row[x] == best.1 {
                        top[x] = top[x].min(y);
                        bot[x] = y;
                    }
                }
            }
        }
        for x in 0..w {
            if top[x] != usize::MAX {
                pts.push(Point::new(x as f32, top[x] as f32));
                pts.push(Point::new(x as f32, bot[x] as f32));
            }
        }
        (best.0, pts)
    }

    /// The filtered, clamped histogram [`histogram_above`] replaced, kept as its reference.
    pub(super) fn histogram_reference(v: &[f32], floor: f32) -> [u32; 256] {
        let mut hist = [0u32; 256];
        for &x in v.iter().filter(|&&x| x > floor) {
            hist[x.clamp(0.0, 255.0) as usize] += 1;
        }
        hist
    }

    #[test]
    fn histogram_matches_its_reference() {
        // Levels below 0, above 255, on and between whole levels, NaN, and every floor kind;
        // lengths that leave 0 to 3 values past the groups of four.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for len in [0usize, 1, 3, 4, 7, 1000, 1003] {
            let v: Vec<f32> = (0..len)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    match i % 11 {
                        0 => f32::NAN,
                        1 => -3.5,
                        2 => 300.0,
                        3 => (state % 256) as f32,
                        _ => (state % 30_000) as f32 / 100.0 - 20.0,
                    }
                })
                .collect();
            for floor in [f32::MIN, -1.0, 0.0, 99.5, 128.0, 254.9] {
                assert_eq!(
                    histogram_above(&v, floor),
                    histogram_reference(&v, floor),
                    "len {len} floor {floor}"
                );
            }
        }
    }

    #[test]
    fn downscale_matches_plain_block_means() {
        // Every group size, those with a compile-time fast path and the rest, on luma and RGB.
        let (w, h) = (203usize, 171usize);
        for ch in [1usize, 3] {
            let data: Vec<u8> = (0..w * h * ch)
                .map(|i| ((i * 2_654_435_761usize) >> 11) as u8)
                .collect();
            let r = Raster { w, h, ch, data };
            for f in 2..=17 {
                let (sw, sh, out) = downscale(&r, f);
                assert_eq!((sw, sh), (w / f, h / f));
                for sy in 0..sh {
                    for sx in 0..sw {
                        let mut sum = 0u32;
                        for y in sy * f..sy * f + f {
                            for x in sx * f..sx * f + f {
                                let p = &r.data[(y * w + x) * ch..(y * w + x) * ch + ch];
                                sum += if ch == 1 {
                                    p[0] as u32
                                } else {
                                    luma(p[0], p[1], p[2]) as u32
                                };
                            }
                        }
                        assert_eq!(
                            out[sy * sw + sx],
                            sum as f32 * (1.0 / (f * f) as f32),
                            "ch {ch} f {f} at {sx},{sy}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn run_labelling_matches_flood_fill() {
        // Random blobs (several components, touching diagonally only, ties) and a page-like mask.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..40 {
            let (w, h) = (20 + (rnd() % 60) as usize, 15 + (rnd() % 50) as usize);
            let density = 30 + (rnd() % 50);
            let mut mask: Vec<bool> = (0..w * h).map(|_| rnd() % 100 < density).collect();
            if case % 5 == 0 {
                for y in h / 4..3 * h / 4 {
                    for x in w / 5..4 * w / 5 {
                        mask[y * w + x] = true;
                    }
                }
            }
            if case == 1 {
                mask.iter_mut().for_each(|m| *m = false);
            }
            let (a1, p1) = largest_component(w, h, &mask);
            let (a2, p2) = flood_fill_reference(w, h, &mask);
            assert_eq!(a1, a2, "case {case}");
            // With no component at all the old code traced the unlabelled background; the caller
            // rejects an empty component before looking at points, so only real ones must agree.
            if a1 > 0 {
                assert_eq!(p1, p2, "case {case}");
            }
        }
    }
}
