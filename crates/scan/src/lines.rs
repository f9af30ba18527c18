//! Line-based page candidates and the edge evidence every candidate is checked against.
//!
//! Works on the small (~500 px) blurred luma copy that detection already makes. Edge pixels
//! (Sobel magnitude, thinned along the gradient) vote in a Hough accumulator that keeps the
//! gradient's direction over the full circle, so a line remembers which side is brighter: a page
//! edge has the paper on its bright side. Four lines whose bright sides face each other make a
//! candidate quadrilateral; it survives only with step-edge evidence along all four sides.
//!
//! The evidence test looks for a *step* (dark outside, bright inside, a few pixels either way),
//! not a line: thin dark lines such as table rules, tile grout or a certificate's border have
//! paper (or tile) on both sides and give no step, so they cannot pass for a page edge.

use crate::geom::{is_convex, order_corners, polygon_area, Point};
use crate::simd::multiversion;

/// A line `x cos(phi) + y sin(phi) = rho`, `phi` pointing from its dark side to its bright side.
#[derive(Clone, Copy, Debug)]
pub struct Line {
    pub phi: f32,
    pub rho: f32,
    pub votes: u32,
}

/// Bilinear sample of a small image; None outside it.
fn sample(img: &[f32], w: usize, h: usize, x: f32, y: f32) -> Option<f32> {
    if !(x >= 0.0 && y >= 0.0 && x <= (w - 1) as f32 && y <= (h - 1) as f32) {
        return None;
    }
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let a = img[y0 * w + x0] * (1.0 - fx) + img[y0 * w + x1] * fx;
    let b = img[y1 * w + x0] * (1.0 - fx) + img[y1 * w + x1] * fx;
    Some(a * (1.0 - fy) + b * fy)
}

/// Share of each side of `q` (clockwise, small-image coordinates) that shows a step edge with
/// the brighter side inside. Samples stay off the corners, where fingers and rounded card
/// corners are.
pub fn side_evidence(img: &[f32], w: usize, h: usize, q: &[Point; 4]) -> [f32; 4] {
    side_evidence_above(img, w, h, q, 0.0).unwrap_or([0.0; 4])
}

/// [`side_evidence`], giving up (None) at the first side below `floor`: most line combinations
/// fail on one side, and this check is most of the line method's time.
pub fn side_evidence_above(
    img: &[f32],
    w: usize,
    h: usize,
    q: &[Point; 4],
    floor: f32,
) -> Option<[f32; 4]> {
    const SAMPLES: usize = 32;
    let mut out = [0f32; 4];
    for (i, o) in out.iter_mut().enumerate() {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = a.dist(b);
        if len < 8.0 {
            if floor > 0.0 {
                return None;
            }
            continue;
        }
        let d = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
        // Outward normal of a clockwise (on screen) polygon.
        let n = Point::new(d.y, -d.x);
        let mut hits = 0;
        for k in 0..SAMPLES {
            let t = 0.1 + 0.8 * k as f32 / (SAMPLES - 1) as f32;
            let c = Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
            let found = step_at(img, w, h, c, n);
            hits += found as usize;
        }
        *o = hits as f32 / SAMPLES as f32;
        if *o < floor {
            return None;
        }
    }
    Some(out)
}

/// Share of each side of `q` (clockwise, small-image coordinates) beyond which paper comes back:
/// past the dark band at the side, within `reach` px, something as bright as the paper just
/// inside it. A frame printed on the page (a certificate's border) shows a step edge like the
/// page's own, but the page's margin lies beyond it; past a real page edge lies the background,
/// darker than the paper (or another document, which makes the crop doubtful as well).
pub fn paper_beyond(img: &[f32], w: usize, h: usize, q: &[Point; 4], reach: f32) -> [f32; 4] {
    std::array::from_fn(|i| paper_beyond_side(img, w, h, q[i], q[(i + 1) % 4], reach))
}

/// Whether every side of `q` has paper beyond it along less than `limit` of its samples: the
/// same test as `paper_beyond(..).iter().all(|&b| b < limit)`, stopping at the first side that
/// fails (most candidates that fail it do so on their first or second side).
pub fn nothing_beyond(
    img: &[f32],
    w: usize,
    h: usize,
    q: &[Point; 4],
    reach: f32,
    limit: f32,
) -> bool {
    (0..4).all(|i| paper_beyond_side(img, w, h, q[i], q[(i + 1) % 4], reach) < limit)
}

/// [`paper_beyond`] of the side from `a` to `b`.
fn paper_beyond_side(img: &[f32], w: usize, h: usize, a: Point, b: Point, reach: f32) -> f32 {
    const SAMPLES: usize = 24;
    let len = a.dist(b);
    if len < 8.0 {
        return 0.0;
    }
    let d = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
    let n = Point::new(d.y, -d.x);
    let (mut seen, mut back) = (0usize, 0usize);
    for k in 0..SAMPLES {
        let t = 0.1 + 0.8 * k as f32 / (SAMPLES - 1) as f32;
        let c = Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
        let at = |s: f32| sample(img, w, h, c.x + n.x * s, c.y + n.y * s);
        // Paper just inside; the brightest of a few samples, so a text stroke does not count.
        let Some(paper) = [-3.0f32, -4.0, -5.0, -6.0]
            .iter()
            .filter_map(|&s| at(s))
            .reduce(f32::max)
        else {
            continue;
        };
        seen += 1;
        let mut dark = f32::MAX;
        let mut s = 0.0;
        while s <= reach {
            let Some(v) = at(s) else { break };
            dark = dark.min(v);
            // Bright again after a dip: paper (or another sheet) beyond the side.
            if dark < 0.85 * paper && v >= 0.93 * paper {
                back += 1;
                break;
            }
            s += 1.0;
        }
    }
    if seen > 0 {
        back as f32 / seen as f32
    } else {
        0.0
    }
}

/// How light the ground just beyond the outline `q` is, as a share of the paper just inside it:
/// the median over samples along all four sides of the median level between the dark band at
/// the side and `reach` px further out. Near 1 the page lies on something almost as light as
/// itself (a pale table, tiles), where a printed band or a tinted part of the document can be
/// as dark as the ground and leave no edge.
pub fn ground_ratio(img: &[f32], w: usize, h: usize, q: &[Point; 4], reach: f32) -> f32 {
    const SAMPLES: usize = 16;
    let mut ratios = Vec::with_capacity(4 * SAMPLES);
    let mut vs = Vec::new();
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = a.dist(b);
        if len < 8.0 {
            continue;
        }
        let d = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
        let n = Point::new(d.y, -d.x);
        for k in 0..SAMPLES {
            let t = 0.1 + 0.8 * k as f32 / (SAMPLES - 1) as f32;
            let c = Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
            let at = |s: f32| sample(img, w, h, c.x + n.x * s, c.y + n.y * s);
            // The brightest of a few samples inside, so a text stroke is not taken for paper.
            let Some(paper) = [-3.0f32, -4.0, -5.0, -6.0]
                .iter()
                .filter_map(|&s| at(s))
                .reduce(f32::max)
            else {
                continue;
            };
            vs.clear();
            let mut s = 4.0;
            while s <= 4.0 + reach {
                let Some(v) = at(s) else { break };
                vs.push(v);
                s += 1.0;
            }
            if vs.len() < 3 {
                continue;
            }
            vs.sort_by(f32::total_cmp);
            ratios.push(vs[vs.len() / 2] / paper.max(1.0));
        }
    }
    if ratios.is_empty() {
        return 0.0;
    }
    ratios.sort_by(f32::total_cmp);
    ratios[ratios.len() / 2]
}

/// Whether a step edge crosses point `c` of a side whose outward normal is `n`: dark outside,
/// bright inside, dark all the way out (not a thin line) and sharp (not a soft shadow's edge).
///
/// The five offsets tried read 17 distinct points along the normal (-5..=11 px); each is sampled
/// once here instead of up to seven times per offset, with the same coordinates and arithmetic as
/// [`tests::step_at_reference`], so the answer is the same.
fn step_at(img: &[f32], w: usize, h: usize, c: Point, n: Point) -> bool {
    // v[i] is the sample at distance i - 5 along the normal (None outside the image).
    let mut v = [None; 17];
    for (i, o) in v.iter_mut().enumerate() {
        let s = i as f32 - 5.0;
        *o = sample(img, w, h, c.x + n.x * s, c.y + n.y * s);
    }
    // The side may sit a pixel or two off the true edge at this scale.
    (3usize..=7).any(|k| {
        // k = s + 5 for the offset s of the reference: s - 3 is v[k - 3], s + 9 is v[k + 9].
        let (Some(i1), Some(i2), Some(o1), Some(o2), Some(o3)) =
            (v[k - 2], v[k - 3], v[k + 2], v[k + 3], v[k + 5])
        else {
            return false;
        };
        // Dark all the way out: a thin dark line has light on its far side again.
        let (inside, outside) = ((i1 + i2) / 2.0, o1.max(o2).max(o3));
        let step = inside - outside;
        // And sharp: past a soft shadow's edge the ground keeps getting darker.
        let far = match (v[k + 7], v[k + 9]) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            _ => outside,
        };
        step >= (0.08 * inside).max(6.0) && (o1 + o2) / 2.0 - far < 0.5 * step
    })
}

/// Step-edge hits along a whole line at one-pixel steps, as prefix sums, so the evidence of any
/// stretch of it costs two look-ups.
struct LineProfile {
    origin: Point,
    dir: Point,
    t0: f32,
    prefix: Vec<u32>,
}

impl LineProfile {
    fn new(img: &[f32], w: usize, h: usize, l: &Line) -> LineProfile {
        let (c, s) = (l.phi.cos(), l.phi.sin());
        let origin = Point::new(l.rho * c, l.rho * s);
        let dir = Point::new(-s, c);
        // Outward is away from the bright side.
        let out = Point::new(-c, -s);
        let reach = ((w * w + h * h) as f32).sqrt();
        // Every second pixel along the line: plenty for a share, half the work.
        let n = reach as usize + 1;
        let mut prefix = Vec::with_capacity(n + 1);
        prefix.push(0);
        let mut acc = 0;
        for k in 0..n {
            let t = 2.0 * k as f32 - reach;
            let p = Point::new(origin.x + dir.x * t, origin.y + dir.y * t);
            let inside = p.x >= 0.0 && p.y >= 0.0 && p.x <= (w - 1) as f32 && p.y <= (h - 1) as f32;
            acc += (inside && step_at(img, w, h, p, out)) as u32;
            prefix.push(acc);
        }
        LineProfile {
            origin,
            dir,
            t0: -reach,
            prefix,
        }
    }
    /// Share of the middle 80% of the stretch from `a` to `b` (both on the line) with a step edge.
    fn support(&self, a: Point, b: Point) -> f32 {
        let t = |p: Point| {
            ((p.x - self.origin.x) * self.dir.x + (p.y - self.origin.y) * self.dir.y - self.t0)
                / 2.0
        };
        let (ta, tb) = (t(a).min(t(b)), t(a).max(t(b)));
        let (lo, hi) = (ta + 0.1 * (tb - ta), ta + 0.9 * (tb - ta));
        let n = self.prefix.len() - 1;
        let (lo, hi) = (
            (lo.round().max(0.0) as usize).min(n),
            (hi.round().max(0.0) as usize).min(n),
        );
        if hi <= lo + 2 {
            return 0.0;
        }
        (self.prefix[hi] - self.prefix[lo]) as f32 / (hi - lo) as f32
    }
}

multiversion! {
/// Sobel gradient and its magnitude at every pixel but the outermost ring (left as it is), row
/// by row over whole slices so the loop is a straight vector loop; the sums are in the order of
/// [`tests::sobel_reference`], so the values are the same.
fn sobel(img: &[f32], w: usize, h: usize, mag: &mut [f32], gxs: &mut [f32], gys: &mut [f32]) {
    if w < 3 {
        return;
    }
    let n = w - 2;
    for y in 1..h.saturating_sub(1) {
        let (up, mid, dn) = (
            &img[(y - 1) * w..y * w],
            &img[y * w..(y + 1) * w],
            &img[(y + 1) * w..(y + 2) * w],
        );
        let (ul, uc, ur) = (&up[..n], &up[1..n + 1], &up[2..n + 2]);
        let (ml, mr) = (&mid[..n], &mid[2..n + 2]);
        let (dl, dc, dr) = (&dn[..n], &dn[1..n + 1], &dn[2..n + 2]);
        let row = y * w + 1..y * w + 1 + n;
        let (m, gx, gy) = (&mut mag[row.clone()], &mut gxs[row.clone()], &mut gys[row]);
        for i in 0..n {
            let a = (ur[i] + 2.0 * mr[i] + dr[i]) - (ul[i] + 2.0 * ml[i] + dl[i]);
            let b = (dl[i] + 2.0 * dc[i] + dr[i]) - (ul[i] + 2.0 * uc[i] + ur[i]);
            m[i] = (a * a + b * b).sqrt();
            gx[i] = a;
            gy[i] = b;
        }
    }
}
}

/// Edge pixels thinned along their gradient, with the gradient's direction.
fn edges(img: &[f32], w: usize, h: usize) -> Vec<(u16, u16, f32)> {
    let mut mag = vec![0f32; w * h];
    // Gradient components; the angle is taken only where an edge is kept (atan2 is dear).
    let mut gxs = vec![0f32; w * h];
    let mut gys = vec![0f32; w * h];
    sobel(img, w, h, &mut mag, &mut gxs, &mut gys);
    // The threshold follows the photo: a quiet page on a plain table has weak edges only.
    // The 99th percentile from a histogram of whole levels (a sort of every pixel took longer
    // than the rest of this function).
    let mut hist = vec![0u32; 2048];
    let mut nonzero = 0usize;
    for &m in &mag {
        if m > 0.0 {
            hist[(m as usize).min(2047)] += 1;
            nonzero += 1;
        }
    }
    let mut left = nonzero - nonzero * 99 / 100;
    let mut p99 = 0.0;
    for (v, &c) in hist.iter().enumerate().rev() {
        if c as usize >= left {
            p99 = v as f32;
            break;
        }
        left -= c as usize;
    }
    let thr = (0.12 * p99).max(16.0);
    let mut out = Vec::new();
    for y in 2..h - 2 {
        for x in 2..w - 2 {
            let m = mag[y * w + x];
            if m < thr {
                continue;
            }
            let (gx, gy) = (gxs[y * w + x], gys[y * w + x]);
            // Neighbour along the gradient: each unit component rounded to -1, 0 or 1.
            let step = |v: f32| (v > 0.5) as isize - (v < -0.5) as isize;
            let (sx, sy) = (step(gx / m), step(gy / m));
            let nb =
                |s: isize| mag[(y as isize + s * sy) as usize * w + (x as isize + s * sx) as usize];
            if m >= nb(1) && m > nb(-1) {
                out.push((x as u16, y as u16, gy.atan2(gx)));
            }
        }
    }
    out
}

/// The strongest straight edges, with polarity.
pub fn hough_lines(img: &[f32], w: usize, h: usize) -> Vec<Line> {
    const BINS: usize = 360;
    const SPREAD: isize = 3;
    let diag = ((w * w + h * h) as f32).sqrt().ceil() as usize;
    let nr = 2 * diag + 1;
    // u16 halves the memory to clear: no cell gets more votes than a line has pixels.
    let mut acc = vec![0u16; BINS * nr];
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..BINS)
        .map(|b| (b as f32).to_radians())
        .map(|a| (a.cos(), a.sin()))
        .unzip();
    for (x, y, a) in edges(img, w, h) {
        // Truncation of a positive value is the floor, so `+ 0.5` rounds (libm's round is a call).
        let b = (a.to_degrees() + 360.5) as isize;
        for db in -SPREAD..=SPREAD {
            let bin = (b + db).rem_euclid(BINS as isize) as usize;
            let rho = x as f32 * cos[bin] + y as f32 * sin[bin];
            let r = (rho + diag as f32 + 0.5) as usize;
            acc[bin * nr + r] = acc[bin * nr + r].saturating_add(1);
        }
    }
    let min_votes = (0.06 * w.min(h) as f32) as u32;
    let mut peaks: Vec<(u32, usize, usize)> = Vec::new();
    for bin in 0..BINS {
        let row = &acc[bin * nr..(bin + 1) * nr];
        let mut skip = 0;
        for r in 0..nr {
            // Most cells hold a few votes at most: whole runs of 16 below the floor are passed
            // over after one comparison of all 16.
            if r >= skip
                && r % 16 == 0
                && r + 16 <= nr
                && (row[r..r + 16].iter().fold(0, |m, &c| m.max(c)) as u32) < min_votes
            {
                skip = r + 16;
            }
            if r < skip {
                continue;
            }
            let v = acc[bin * nr + r] as u32;
            // Local maxima only (angle wraps round): a line's neighbouring cells are no new line.
            if v >= min_votes && r > 0 && r + 1 < nr {
                let (bp, bn) = ((bin + BINS - 1) % BINS, (bin + 1) % BINS);
                let higher = [bp, bin, bn].iter().any(|&b| {
                    (r - 1..=r + 1).any(|rr| (b, rr) != (bin, r) && acc[b * nr + rr] as u32 > v)
                });
                if !higher {
                    peaks.push((v, bin, r));
                }
            }
        }
    }
    peaks.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut lines: Vec<Line> = Vec::new();
    for (v, bin, r) in peaks {
        let phi = (bin as f32).to_radians();
        let rho = r as f32 - diag as f32;
        let near = lines.iter().any(|l| {
            let da = (l.phi - phi).abs();
            let da = da.min(std::f32::consts::TAU - da);
            da < 6f32.to_radians() && (l.rho - rho).abs() < 6.0
        });
        if !near {
            lines.push(Line { phi, rho, votes: v });
            if lines.len() == 40 {
                break;
            }
        }
    }
    lines
}

/// Where lines `a` and `b` cross, given each line's `(cos phi, sin phi)` (worked out once per
/// line: the quadrilateral search intersects every line with many others).
fn intersect(a: &Line, b: &Line, (ca, sa): (f32, f32), (cb, sb): (f32, f32)) -> Option<Point> {
    let det = ca * sb - sa * cb;
    if det.abs() < 1e-4 {
        return None;
    }
    Some(Point::new(
        (a.rho * sb - b.rho * sa) / det,
        (ca * b.rho - cb * a.rho) / det,
    ))
}

/// Angle between two directions, 0..pi.
fn angle_between(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(std::f32::consts::TAU);
    d.min(std::f32::consts::TAU - d)
}

/// Quadrilaterals made of four detected lines whose bright sides face inward, each with its
/// side evidence (at least half of every side), largest first. Corners must lie inside the
/// small image.
pub fn line_quads(img: &[f32], w: usize, h: usize, min_area: f32) -> Vec<([Point; 4], [f32; 4])> {
    let lines = hough_lines(img, w, h);
    let cs: Vec<(f32, f32)> = lines.iter().map(|l| (l.phi.cos(), l.phi.sin())).collect();
    // Angles between every two lines, once: the search below asks for them per combination.
    let ang: Vec<Vec<f32>> = lines
        .iter()
        .map(|a| lines.iter().map(|b| angle_between(a.phi, b.phi)).collect())
        .collect();
    // Profiles are made on first use: many lines never make a quad that passes the cheap tests.
    let mut profiles: Vec<Option<LineProfile>> = (0..lines.len()).map(|_| None).collect();
    let pi = std::f32::consts::PI;
    // Opposite sides: normals about 180 degrees apart (bright sides facing each other).
    let mut pairs = Vec::new();
    for (i, row) in ang.iter().enumerate() {
        for (j, &a) in row.iter().enumerate().skip(i + 1) {
            if a > pi - 30f32.to_radians() {
                pairs.push((i, j));
            }
        }
    }
    let mut out = Vec::new();
    for (pi_, &(a, b)) in pairs.iter().enumerate() {
        for &(c, d) in &pairs[pi_ + 1..] {
            let t = ang[a][c];
            if !(50f32.to_radians()..=130f32.to_radians()).contains(&t) {
                continue;
            }
            let idx = [a, c, b, d];
            let pts: [Option<Point>; 4] = std::array::from_fn(|k| {
                let (i, j) = (idx[k], idx[(k + 1) % 4]);
                intersect(&lines[i], &lines[j], cs[i], cs[j])
            });
            let [Some(p0), Some(p1), Some(p2), Some(p3)] = pts else {
                continue;
            };
            let pts = [p0, p1, p2, p3];
            let q = order_corners([pts[0], pts[1], pts[2], pts[3]]);
            if !is_convex(&q)
                || q.iter().any(|p| {
                    p.x < -0.5 || p.y < -0.5 || p.x > w as f32 - 0.5 || p.y > h as f32 - 0.5
                })
            {
                continue;
            }
            if polygon_area(&q).abs() < min_area {
                continue;
            }
            // Every line's bright side must face the middle.
            let m = Point::new(
                q.iter().map(|p| p.x).sum::<f32>() / 4.0,
                q.iter().map(|p| p.y).sum::<f32>() / 4.0,
            );
            if idx
                .iter()
                .any(|&i| m.x * cs[i].0 + m.y * cs[i].1 - lines[i].rho <= 0.0)
            {
                continue;
            }
            // Line k + 1 runs from corner k to corner k + 1. Only quads that can pass the
            // plausibility check (half of every side) are kept.
            let mut ev = [0f32; 4];
            for k in 0..4 {
                let li = idx[(k + 1) % 4];
                let prof =
                    profiles[li].get_or_insert_with(|| LineProfile::new(img, w, h, &lines[li]));
                ev[k] = prof.support(pts[k], pts[(k + 1) % 4]);
                if ev[k] < 0.5 {
                    break;
                }
            }
            if ev.iter().all(|&e| e >= 0.5) {
                out.push((q, ev));
            }
        }
    }
    out.sort_by(|a, b| {
        polygon_area(&b.0)
            .abs()
            .total_cmp(&polygon_area(&a.0).abs())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-pixel Sobel loop [`sobel`] replaced, kept as its reference.
    pub(super) fn sobel_reference(img: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<(f32, f32)>) {
        let mut mag = vec![0f32; w * h];
        let mut grad = vec![(0f32, 0f32); w * h];
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let p = |dx: isize, dy: isize| {
                    img[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
                };
                let gx =
                    (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
                let gy =
                    (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
                mag[y * w + x] = (gx * gx + gy * gy).sqrt();
                grad[y * w + x] = (gx, gy);
            }
        }
        (mag, grad)
    }

    #[test]
    fn sobel_matches_its_reference() {
        let (img, w, h, _) = scene();
        // Noise on top of the scene, so no two neighbourhoods sum alike by chance.
        let img: Vec<f32> = img
            .iter()
            .enumerate()
            .map(|(i, &v)| v + ((i * 2_654_435_761usize) >> 20) as f32 % 7.0 * 0.37)
            .collect();
        for (w, h) in [(w, h), (3, 3), (17, 5)] {
            let img = &img[..w * h];
            let (mag, grad) = sobel_reference(img, w, h);
            let (mut m, mut gx, mut gy) = (vec![0f32; w * h], vec![0f32; w * h], vec![0f32; w * h]);
            sobel(img, w, h, &mut m, &mut gx, &mut gy);
            for i in 0..w * h {
                assert_eq!(m[i].to_bits(), mag[i].to_bits(), "{w}x{h} at {i}");
                assert_eq!((gx[i], gy[i]), grad[i], "{w}x{h} at {i}");
            }
        }
    }

    /// The per-offset step test [`step_at`] replaced, kept as its reference.
    pub(super) fn step_at_reference(img: &[f32], w: usize, h: usize, c: Point, n: Point) -> bool {
        let at = |s: f32| sample(img, w, h, c.x + n.x * s, c.y + n.y * s);
        [-2.0f32, -1.0, 0.0, 1.0, 2.0].iter().any(|&s| {
            let (Some(i1), Some(i2), Some(o1), Some(o2), Some(o3)) = (
                at(s - 2.0),
                at(s - 3.0),
                at(s + 2.0),
                at(s + 3.0),
                at(s + 5.0),
            ) else {
                return false;
            };
            let (inside, outside) = ((i1 + i2) / 2.0, o1.max(o2).max(o3));
            let step = inside - outside;
            let far = match (at(s + 7.0), at(s + 9.0)) {
                (Some(a), Some(b)) => (a + b) / 2.0,
                _ => outside,
            };
            step >= (0.08 * inside).max(6.0) && (o1 + o2) / 2.0 - far < 0.5 * step
        })
    }

    #[test]
    fn step_test_matches_its_reference() {
        // Every pixel and a few sub-pixel points of the scene (edges, the rule, the ground, the
        // image border), in eight directions.
        let (img, w, h, _) = scene();
        let mut hits = 0;
        for y in (0..h).step_by(2) {
            for x in (0..w).step_by(2) {
                for (k, frac) in [(0usize, 0.0f32), (3, 0.37), (5, 0.71)] {
                    let a = (k as f32 * std::f32::consts::FRAC_PI_4 + frac).sin_cos();
                    let n = Point::new(a.1, a.0);
                    let c = Point::new(x as f32 + frac, y as f32 + frac * 0.5);
                    let r = step_at_reference(&img, w, h, c, n);
                    assert_eq!(step_at(&img, w, h, c, n), r, "at {c:?} normal {n:?}");
                    hits += r as usize;
                }
            }
        }
        // The scene has edges: both answers occur.
        assert!(hits > 50, "{hits}");
    }

    /// A bright tilted rectangle on a dark ground, with a thin dark rule inside it.
    fn scene() -> (Vec<f32>, usize, usize, [Point; 4]) {
        let (w, h) = (200usize, 160usize);
        let q = order_corners([
            Point::new(40.0, 30.0),
            Point::new(150.0, 40.0),
            Point::new(140.0, 130.0),
            Point::new(30.0, 120.0),
        ]);
        let mut img = vec![60f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let p = Point::new(x as f32, y as f32);
                let inside = (0..4).all(|i| {
                    let (a, b) = (q[i], q[(i + 1) % 4]);
                    (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x) >= 0.0
                });
                if inside {
                    img[y * w + x] = if (y as isize - 80).abs() <= 0 {
                        40.0
                    } else {
                        230.0
                    };
                }
            }
        }
        // Blurred a little, as detection's small copy is.
        let mut out = img.clone();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                out[y * w + x] = (0..9)
                    .map(|k| img[(y + k / 3 - 1) * w + x + k % 3 - 1])
                    .sum::<f32>()
                    / 9.0;
            }
        }
        (out, w, h, q)
    }

    #[test]
    fn finds_the_bright_quad_and_its_evidence() {
        let (img, w, h, q) = scene();
        let quads = line_quads(&img, w, h, 1000.0);
        // Among the supported quads is the rectangle itself, within Hough's one-pixel grid.
        let close = |c: &[Point; 4]| c.iter().zip(&q).all(|(a, b)| a.dist(*b) < 2.5);
        let (_, ev) = quads
            .iter()
            .find(|(c, ev)| close(c) && ev.iter().all(|&e| e > 0.8))
            .expect("the rectangle among the quads");
        assert!(ev.iter().all(|&e| e > 0.9), "{ev:?}");
        // Nothing supported lies far outside it.
        for (c, ev) in quads.iter().filter(|(_, ev)| ev.iter().all(|&e| e > 0.8)) {
            assert!(
                polygon_area(c).abs() < polygon_area(&q).abs() * 1.1,
                "{c:?} {ev:?}"
            );
        }
    }

    #[test]
    fn a_border_printed_on_the_page_has_paper_beyond_it_and_the_page_edge_has_not() {
        let (mut img, w, h, q) = scene();
        let c = Point::new(
            q.iter().map(|p| p.x).sum::<f32>() / 4.0,
            q.iter().map(|p| p.y).sum::<f32>() / 4.0,
        );
        let scaled = |k: f32| q.map(|p| Point::new(c.x + (p.x - c.x) * k, c.y + (p.y - c.y) * k));
        let inside = |r: &[Point; 4], x: f32, y: f32| {
            (0..4).all(|i| {
                let (a, b) = (r[i], r[(i + 1) % 4]);
                (b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x) >= 0.0
            })
        };
        // A dark printed frame between 80% and 86% of the page's size, paper beyond it.
        let (inner, outer) = (scaled(0.8), scaled(0.86));
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                if inside(&outer, xf, yf) && !inside(&inner, xf, yf) {
                    img[y * w + x] = 70.0;
                }
            }
        }
        let border = paper_beyond(&img, w, h, &inner, 12.0);
        assert!(border.iter().all(|&b| b > 0.8), "{border:?}");
        let page = paper_beyond(&img, w, h, &q, 12.0);
        assert!(page.iter().all(|&b| b < 0.1), "{page:?}");
    }

    #[test]
    fn a_thin_dark_rule_is_no_page_edge() {
        let (img, w, h, q) = scene();
        // The top half of the rectangle: its bottom side lies on the one-pixel rule.
        let half = [q[0], q[1], Point::new(145.0, 80.0), Point::new(35.0, 80.0)];
        let ev = side_evidence(&img, w, h, &order_corners(half));
        assert!(ev[2] < 0.2, "{ev:?}");
    }
}
