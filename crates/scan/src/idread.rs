//! Reads the 18-character citizen ID number (公民身份号码) from a photo of the front of an ID
//! card, offline and in pure Rust.
//!
//! The card is found and straightened by the crate's own detection and warp; the bottom band of
//! the card is then searched for the number line (the widest run of characters there), the line
//! is cut into 18 cells at a fitted fixed pitch, and each cell is compared with stroke-drawn
//! templates of 0-9 and X (normalised correlation). Every position keeps its close alternatives;
//! the GB 11643 check character and a plausible birth date (plus an optional caller's verifier)
//! decide between the combinations. When no combination passes, or two pass with similar
//! scores, or the best one has a poorly matching character, the answer is "unsure" (`None`):
//! the reader prefers no number to a wrong one.

use crate::decode::{self, Raster};
use crate::geom::{Mat3, Point};
use crate::{detect, idnumber, warp, CancelToken, Mode, ScanError};

/// Straightened card size the reader works at (the crate's ID-1 card output size).
const CARD_W: usize = 1011;
const CARD_H: usize = 638;
/// The number line lies in the bottom part of the card, from this row down.
const BAND_TOP: usize = 430;
/// Normalised glyph grid the cells and templates are compared on.
const GH: usize = 32;
const GW: usize = 26;
/// Darkness (1 - pixel / local background) above which a pixel is ink.
const INK: f32 = 0.3;
/// A position's alternatives: classes scoring within this of its best.
const ALT_MARGIN: f32 = 0.12;
/// The accepted reading's worst character must correlate at least this well with its template.
const MIN_CHAR_SCORE: f32 = 0.45;
/// A second passing reading within this total score of the best makes the answer unsure.
const RIVAL_GAP: f32 = 0.15;
/// Give up enumerating when the alternatives multiply beyond this.
const MAX_COMBINATIONS: usize = 50_000;

/// One character position: its classes, best first, with correlation scores (-1..1).
#[derive(Clone, Debug, PartialEq)]
pub struct CharReading {
    pub alternatives: Vec<(char, f32)>,
}

/// What the reader made of one photo.
#[derive(Clone, Debug, Default)]
pub struct IdReading {
    /// The number, when exactly one well-matching reading passes the checks.
    pub number: Option<String>,
    /// Per-position readings of the line the answer (or the best attempt) came from.
    pub chars: Vec<CharReading>,
    /// Readings that passed the checks, best first, with their mean character score.
    pub candidates: Vec<(String, f32)>,
    /// Whether a card was found in the photo.
    pub card_found: bool,
}

/// Reads the ID number from a photo (JPEG or PNG bytes); `Ok` with `number: None` when unsure.
pub fn read_id(bytes: &[u8], cancel: &CancelToken) -> Result<IdReading, ScanError> {
    read_id_with(bytes, &|_| true, cancel)
}

/// As [`read_id`], with an extra check every candidate number must pass (for example the
/// engine's full validator).
pub fn read_id_with(
    bytes: &[u8],
    verify: &dyn Fn(&str) -> bool,
    cancel: &CancelToken,
) -> Result<IdReading, ScanError> {
    cancel.check()?;
    let header = decode::probe(bytes)?;
    let raster = decode::decode(bytes, &header, false)?;
    cancel.check()?;
    let o = header.orientation;
    let det = detect::detect(&raster, o, Mode::Card);
    // Outlines to read, best first. When detection keeps the whole frame (it must not crop a
    // scan on doubtful evidence), the reader may still try the card outlines either method
    // proposed (the whole frame itself is not tried: warped to a card it squashes the glyphs,
    // and on the tuning sets a card filling the frame is found as an outline): every reading must
    // pass the checksum, birth date and character-score gates, so a wrong outline gives no
    // number rather than a wrong one.
    // An outline detection did not confirm may be a wrong crop (part of the card, a shadow's
    // edge) whose cells still look like digits; there a number is taken only when nothing had to
    // be chosen: the best class of every position, each clearly ahead of its second, already
    // forms it, and no other combination passes the checks (so the checksum was not used to pick).
    let trusted = det.detected;
    let outlines: Vec<[Point; 4]> = if det.detected {
        vec![det.corners]
    } else {
        detect::card_outlines(&raster, o)
    };
    let to_raw = o.oriented_to_raw(raster.w as u32, raster.h as u32);
    let mut first: Option<IdReading> = None;
    for q in outlines {
        let mut r = read_outline(&raster, &to_raw, q, verify, cancel)?;
        if !trusted && !unchosen(&r) {
            r.number = None;
        }
        if r.number.is_some() {
            return Ok(IdReading {
                card_found: true,
                ..r
            });
        }
        first.get_or_insert(r);
    }
    Ok(IdReading {
        card_found: det.detected,
        ..first.unwrap_or_default()
    })
}

/// Whether `r`'s number is its only passing candidate, each character its position's best by a
/// clear margin.
fn unchosen(r: &IdReading) -> bool {
    let Some(n) = &r.number else {
        return false;
    };
    let best: String = r
        .chars
        .iter()
        .map(|c| c.alternatives.first().map_or('?', |a| a.0))
        .collect();
    // No position had a close second class either: the checksum did not even have a choice to
    // confirm (two compensating misreads pass it about one time in eleven).
    let clear = r
        .chars
        .iter()
        .all(|c| match (c.alternatives.first(), c.alternatives.get(1)) {
            (Some(a), Some(b)) => a.1 - b.1 >= ALT_MARGIN,
            _ => true,
        });
    r.candidates.len() == 1 && best == *n && clear
}

/// Reads the number from the card whose corners (displayed coordinates, any start) are `q`,
/// trying both long edges as the bottom.
fn read_outline(
    raster: &Raster,
    to_raw: &Mat3,
    mut q: [Point; 4],
    verify: &dyn Fn(&str) -> bool,
    cancel: &CancelToken,
) -> Result<IdReading, ScanError> {
    let top = q[0].dist(q[1]) + q[3].dist(q[2]);
    let side = q[0].dist(q[3]) + q[1].dist(q[2]);
    if side > top {
        // The card stands upright: make a long edge the top.
        q = [q[3], q[0], q[1], q[2]];
    }
    let mut best: Option<IdReading> = None;
    let mut answers = Vec::new();
    // The card may be upside down: read the band of both long edges.
    for flip in [q, [q[2], q[3], q[0], q[1]]] {
        cancel.check()?;
        let band = warp_band(raster, to_raw, &flip, cancel)?;
        let r = read_band(&band, CARD_W, CARD_H - BAND_TOP, verify);
        if let Some(n) = &r.number {
            answers.push(n.clone());
        }
        let better = match &best {
            None => true,
            Some(b) => r.number.is_some() || (b.number.is_none() && r.chars.len() > b.chars.len()),
        };
        if better && best.as_ref().is_none_or(|b| b.number.is_none()) {
            best = Some(r);
        }
    }
    let mut out = best.unwrap_or_default();
    if answers.len() > 1 && answers[0] != answers[1] {
        out.number = None;
    }
    Ok(out)
}

/// The bottom band of the card whose corners (TL, TR, BR, BL in displayed coordinates) are `q`,
/// warped to the reader's card size, as luma.
fn warp_band(
    raster: &Raster,
    to_raw: &Mat3,
    q: &[Point; 4],
    cancel: &CancelToken,
) -> Result<Vec<u8>, ScanError> {
    let rect = detect::frame_corners(CARD_W as u32, CARD_H as u32);
    let to_photo = Mat3::from_quads(&rect, q).ok_or(ScanError::InvalidCorners)?;
    let shift = Mat3([1.0, 0.0, 0.0, 0.0, 1.0, BAND_TOP as f64, 0.0, 0.0, 1.0]);
    let m = to_raw.mul(&to_photo).mul(&shift);
    warp::warp(raster, &m, CARD_W, CARD_H - BAND_TOP, 1, 1, cancel)
}

/// Darkness map: 1 - pixel / local background, where the background is a smoothed local maximum
/// (paper brightness under the same light and shadow).
fn darkness(img: &[u8], w: usize, h: usize) -> Vec<f32> {
    let r = 14usize;
    let v: Vec<f32> = img.iter().map(|&p| p as f32).collect();
    let maxed = box_filter(&max_filter(&v, w, h, r), w, h, r);
    v.iter()
        .zip(&maxed)
        .map(|(&p, &bg)| (1.0 - p / bg.max(1.0)).max(0.0))
        .collect()
}

fn max_filter(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut t = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r + 1).min(w));
            t[y * w + x] = v[y * w + a..y * w + b].iter().copied().fold(0.0, f32::max);
        }
    }
    let mut o = vec![0f32; w * h];
    for y in 0..h {
        let (a, b) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            o[y * w + x] = (a..b).map(|yy| t[yy * w + x]).fold(0.0, f32::max);
        }
    }
    o
}

fn box_filter(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut t = vec![0f32; w * h];
    for y in 0..h {
        let row = &v[y * w..(y + 1) * w];
        let mut acc: f32 = row[..r.min(w)].iter().sum();
        for x in 0..w {
            if x + r < w {
                acc += row[x + r];
            }
            if x > r {
                acc -= row[x - r - 1];
            }
            let n = (x + r + 1).min(w) - x.saturating_sub(r);
            t[y * w + x] = acc / n as f32;
        }
    }
    let mut o = vec![0f32; w * h];
    for x in 0..w {
        let mut acc: f32 = (0..r.min(h)).map(|y| t[y * w + x]).sum();
        for y in 0..h {
            if y + r < h {
                acc += t[(y + r) * w + x];
            }
            if y > r {
                acc -= t[(y - r - 1) * w + x];
            }
            let n = (y + r + 1).min(h) - y.saturating_sub(r);
            o[y * w + x] = acc / n as f32;
        }
    }
    o
}

/// Finds, segments and reads the number line in a band image.
fn read_band(img: &[u8], w: usize, h: usize, verify: &dyn Fn(&str) -> bool) -> IdReading {
    let d = darkness(img, w, h);
    let ink = |x: usize, y: usize| d[y * w + x] > INK;
    // Rows: ink in the right two thirds, where the number is and no label is; the card's own
    // bottom edge (and whatever lies beyond a slightly loose outline) is left out.
    let (x_lo, x_hi) = (w * 3 / 10, w * 97 / 100);
    let y_end = h.saturating_sub(h / 10);
    let rows: Vec<usize> = (0..y_end)
        .map(|y| (x_lo..x_hi).filter(|&x| ink(x, y)).count())
        .collect();
    // The line is the 31-row window with the most ink; its extent is where rows stay above a
    // fifth of the window's densest row.
    let win = 31.min(rows.len());
    if win == 0 {
        return IdReading::default();
    }
    let sums: Vec<usize> = rows.windows(win).map(|r| r.iter().sum()).collect();
    let Some((start, _)) = sums.iter().enumerate().max_by_key(|(_, &c)| c) else {
        return IdReading::default();
    };
    let (peak, pmax) = (start..start + win)
        .map(|y| (y, rows[y]))
        .max_by_key(|&(_, c)| c)
        .expect("window is not empty");
    if pmax < 20 {
        return IdReading::default();
    }
    let cut = pmax / 5;
    let mut r0 = peak;
    while r0 > 0 && rows[r0 - 1] > cut {
        r0 -= 1;
    }
    let mut r1 = peak;
    while r1 + 1 < y_end && rows[r1 + 1] > cut {
        r1 += 1;
    }
    let bh = r1 + 1 - r0;
    if bh < 8 {
        return IdReading::default();
    }
    // Columns: runs of ink in the line, merged into words across small gaps.
    let cols: Vec<f32> = (0..w)
        .map(|x| (r0..=r1).filter(|&y| ink(x, y)).count() as f32)
        .collect();
    let mut words: Vec<(usize, usize)> = Vec::new();
    let gap_max = bh * 9 / 10;
    for (x, _) in cols.iter().enumerate().filter(|(_, &c)| c >= 1.0) {
        match words.last_mut() {
            Some(wd) if x - wd.1 <= gap_max => wd.1 = x,
            _ => words.push((x, x)),
        }
    }
    let Some(&(left, right)) = words.iter().max_by_key(|(a, b)| b - a) else {
        return IdReading::default();
    };
    let width = (right - left + 1) as f32;
    let ratio = width / bh as f32;
    if !(10.0..=24.0).contains(&ratio) {
        return IdReading::default();
    }
    // Fixed pitch: choose pitch and offset whose 19 cell boundaries cross the least ink, all ink
    // of the word lying between the first and the last boundary.
    // Ink near a boundary counts too (a boundary belongs in the middle of a gap).
    let rad = (bh / 4).max(1);
    let smooth: Vec<f32> = (0..w)
        .map(|x| {
            cols[x.saturating_sub(rad)..(x + rad + 1).min(w)]
                .iter()
                .sum()
        })
        .collect();
    let at = |x: f32| -> f32 {
        let i = x.round();
        if i < 0.0 || i >= w as f32 {
            0.0
        } else {
            smooth[i as usize]
        }
    };
    let (lf, rf) = (left as f32, right as f32 + 1.0);
    let mut fit = (f32::MAX, 0.0f32, 0.0f32);
    let mut p = (rf - lf) / 18.0;
    while p <= (rf - lf) / 16.2 {
        let mut b0 = rf - 18.0 * p;
        while b0 <= lf {
            let cost: f32 = (0..=18).map(|k| at(b0 + k as f32 * p)).sum();
            if cost < fit.0 {
                fit = (cost, p, b0);
            }
            b0 += 0.5;
        }
        p += 0.1;
    }
    let (_, p, b0) = fit;
    if p <= 0.0 {
        return IdReading::default();
    }
    let y_lo = r0.saturating_sub(bh / 4);
    let y_hi = (r1 + bh / 4).min(h - 1);
    let templates = TEMPLATES.get_or_init(templates);
    let chars: Vec<CharReading> = (0..18)
        .map(|k| {
            let xa = (b0 + k as f32 * p).max(0.0) as usize;
            let xb = ((b0 + (k + 1) as f32 * p).ceil() as usize).min(w);
            let g = cell_glyph(&d, w, xa, xb, y_lo, y_hi, bh);
            classify(g.as_deref(), templates, k == 17)
        })
        .collect();
    decide(chars, verify)
}

/// Ink of one cell, normalised to the GH x GW grid (height-scaled, centred), or None when the
/// cell holds no character-sized ink.
fn cell_glyph(
    d: &[f32],
    w: usize,
    xa: usize,
    xb: usize,
    ya: usize,
    yb: usize,
    bh: usize,
) -> Option<Vec<f32>> {
    let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
    for y in ya..=yb {
        for x in xa..xb {
            if d[y * w + x] > INK {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    if x0 == usize::MAX || (y1 + 1 - y0) * 10 < bh * 6 {
        return None;
    }
    let inkmap = |x: usize, y: usize| (d[y * w + x] / 0.6).min(1.0);
    Some(normalise(&inkmap, x0, x1, y0, y1))
}

/// Samples the box (x0..=x1, y0..=y1) of an ink map into the comparison grid, blurred a little.
fn normalise(
    map: &dyn Fn(usize, usize) -> f32,
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
) -> Vec<f32> {
    let bw = (x1 + 1 - x0) as f32;
    let bh = (y1 + 1 - y0) as f32;
    let s = GH as f32 / bh;
    let gw = (bw * s).min(GW as f32);
    let off = (GW as f32 - gw) / 2.0;
    let sx = bw / gw.max(1e-3);
    let mut g = vec![0f32; GH * GW];
    for j in 0..GH {
        for i in 0..GW {
            let gx = i as f32 + 0.5 - off;
            if gx < 0.0 || gx > gw {
                continue;
            }
            // Area average over the source pixels this grid cell covers.
            let (fx0, fx1) = (
                x0 as f32 + (gx - 0.5).max(0.0) * sx,
                x0 as f32 + (gx + 0.5).min(gw) * sx,
            );
            let (fy0, fy1) = (y0 as f32 + j as f32 / s, y0 as f32 + (j + 1) as f32 / s);
            let (mut acc, mut n) = (0.0, 0.0);
            let mut y = fy0.floor() as usize;
            while (y as f32) < fy1 && y <= y1 {
                let mut x = fx0.floor() as usize;
                while (x as f32) < fx1 && x <= x1 {
                    acc += map(x, y);
                    n += 1.0;
                    x += 1;
                }
                y += 1;
            }
            g[j * GW + i] = if n > 0.0 { acc / n } else { 0.0 };
        }
    }
    blur(&g)
}

fn blur(g: &[f32]) -> Vec<f32> {
    let mut o = vec![0f32; GH * GW];
    for j in 0..GH {
        for i in 0..GW {
            let mut acc = 0.0;
            let mut n = 0.0;
            for (dj, wj) in [(-1i32, 1.0), (0, 2.0), (1, 1.0)] {
                for (di, wi) in [(-1i32, 1.0), (0, 2.0), (1, 1.0)] {
                    let (y, x) = (j as i32 + dj, i as i32 + di);
                    if y >= 0 && x >= 0 && (y as usize) < GH && (x as usize) < GW {
                        acc += g[y as usize * GW + x as usize] * wj * wi;
                        n += wj * wi;
                    }
                }
            }
            o[j * GW + i] = acc / n;
        }
    }
    o
}

/// Zero-mean, unit-norm copy (for correlation by dot product).
fn centred(g: &[f32]) -> Vec<f32> {
    let m = g.iter().sum::<f32>() / g.len() as f32;
    let v: Vec<f32> = g.iter().map(|x| x - m).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|x| x / n).collect()
}

fn classify(g: Option<&[f32]>, templates: &[(char, Vec<f32>)], last: bool) -> CharReading {
    let Some(g) = g else {
        return CharReading {
            alternatives: Vec::new(),
        };
    };
    let g = centred(g);
    let mut best: Vec<(char, f32)> = Vec::new();
    for (c, t) in templates {
        if *c == 'X' && !last {
            continue;
        }
        let s: f32 = g.iter().zip(t).map(|(a, b)| a * b).sum();
        match best.iter_mut().find(|(bc, _)| bc == c) {
            Some(e) => e.1 = e.1.max(s),
            None => best.push((*c, s)),
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    CharReading { alternatives: best }
}

/// Templates are drawn once per process.
static TEMPLATES: std::sync::OnceLock<Vec<(char, Vec<f32>)>> = std::sync::OnceLock::new();

/// Chooses the answer among the combinations of close alternatives.
fn decide(chars: Vec<CharReading>, verify: &dyn Fn(&str) -> bool) -> IdReading {
    let mut out = IdReading {
        chars,
        ..Default::default()
    };
    let options: Vec<Vec<(char, f32)>> = out
        .chars
        .iter()
        .map(|c| {
            let top = c.alternatives.first().map_or(f32::MIN, |a| a.1);
            c.alternatives
                .iter()
                .take(3)
                .filter(|a| a.1 >= top - ALT_MARGIN)
                .copied()
                .collect()
        })
        .collect();
    if options.iter().any(Vec::is_empty) {
        return out;
    }
    let combos: usize = options.iter().map(Vec::len).product();
    if combos > MAX_COMBINATIONS {
        return out;
    }
    let mut idx = [0usize; 18];
    let mut found: Vec<(String, f32, f32)> = Vec::new();
    loop {
        let s: String = (0..18).map(|k| options[k][idx[k]].0).collect();
        if idnumber::is_plausible(&s) && verify(&s) {
            let scores = (0..18).map(|k| options[k][idx[k]].1);
            let total: f32 = scores.clone().sum();
            let worst = scores.fold(f32::MAX, f32::min);
            found.push((s, total, worst));
        }
        // Next combination (odometer).
        let mut k = 0;
        loop {
            if k == 18 {
                break;
            }
            idx[k] += 1;
            if idx[k] < options[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
        if k == 18 {
            break;
        }
    }
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.candidates = found.iter().map(|f| (f.0.clone(), f.1 / 18.0)).collect();
    if let Some(first) = found.first() {
        let rival = found.get(1).is_some_and(|r| first.1 - r.1 < RIVAL_GAP);
        if !rival && first.2 >= MIN_CHAR_SCORE {
            out.number = Some(first.0.clone());
        }
    }
    out
}

/// A stroke of a template glyph, in the 10 x 16 glyph box.
type Polyline = Vec<(f32, f32)>;

/// Glyph outlines of 0-9 and X as polylines in a 10 x 16 box (y down), drawn after the open
/// shapes of the OCR-B-like face printed on the card; some characters have two forms.
fn strokes() -> Vec<(char, Vec<Polyline>)> {
    let arc = |cx: f32, cy: f32, rx: f32, ry: f32, a0: f32, a1: f32| -> Vec<(f32, f32)> {
        let n = 24;
        (0..=n)
            .map(|i| {
                let a = (a0 + (a1 - a0) * i as f32 / n as f32).to_radians();
                (cx + rx * a.cos(), cy + ry * a.sin())
            })
            .collect()
    };
    let cat = |parts: &[Vec<(f32, f32)>]| -> Vec<(f32, f32)> { parts.concat() };
    let six = vec![
        cat(&[
            arc(6.0, 9.0, 4.8, 8.5, -70.0, -180.0),
            arc(5.5, 10.5, 4.3, 5.0, 180.0, 180.0),
        ]),
        arc(5.2, 11.3, 4.0, 4.2, 0.0, 360.0),
    ];
    let flip = |g: &Vec<Vec<(f32, f32)>>| -> Vec<Vec<(f32, f32)>> {
        g.iter()
            .map(|l| l.iter().map(|&(x, y)| (10.0 - x, 16.0 - y)).collect())
            .collect()
    };
    let nine = flip(&six);
    vec![
        ('0', vec![arc(5.0, 8.0, 4.0, 7.5, 0.0, 360.0)]),
        (
            '0',
            vec![
                arc(5.0, 8.0, 4.0, 7.5, 0.0, 360.0),
                vec![(4.2, 6.5), (5.8, 9.5)],
            ],
        ),
        ('1', vec![vec![(2.0, 3.5), (5.5, 0.5), (5.5, 15.5)]]),
        (
            '1',
            vec![
                vec![(2.0, 3.5), (5.5, 0.5), (5.5, 15.5)],
                vec![(2.0, 15.5), (9.0, 15.5)],
            ],
        ),
        (
            '2',
            vec![cat(&[
                arc(5.0, 4.5, 4.0, 4.0, 200.0, 360.0),
                arc(5.0, 4.5, 4.0, 4.0, 0.0, 40.0),
                vec![(1.0, 15.5), (9.2, 15.5)],
            ])],
        ),
        (
            '3',
            vec![
                arc(5.0, 4.2, 3.8, 3.7, 200.0, 450.0),
                arc(5.0, 11.6, 4.2, 3.9, 270.0, 520.0),
            ],
        ),
        (
            '4',
            vec![vec![(7.0, 15.5), (7.0, 0.5), (0.6, 11.0), (9.5, 11.0)]],
        ),
        (
            '5',
            vec![cat(&[
                vec![(8.6, 0.5), (2.0, 0.5), (1.6, 7.2)],
                arc(5.0, 10.6, 4.2, 4.9, 230.0, 500.0),
            ])],
        ),
        ('6', six),
        ('7', vec![vec![(0.8, 0.5), (9.2, 0.5), (3.8, 15.5)]]),
        (
            '8',
            vec![
                arc(5.0, 4.1, 3.6, 3.6, 0.0, 360.0),
                arc(5.0, 11.6, 4.2, 3.9, 0.0, 360.0),
            ],
        ),
        ('9', nine),
        (
            'X',
            vec![vec![(0.8, 0.5), (9.2, 15.5)], vec![(9.2, 0.5), (0.8, 15.5)]],
        ),
    ]
}

/// The comparison templates: each stroke glyph drawn at two stroke weights and normalised like a
/// cell (built once per process, on first use).
fn templates() -> Vec<(char, Vec<f32>)> {
    let scale = 6.0f32;
    let (w, h) = ((12.0 * scale) as usize, (18.0 * scale) as usize);
    let mut out = Vec::new();
    for (c, lines) in strokes() {
        for weight in [1.1f32, 1.8] {
            let r = weight * scale / 2.0;
            let mut img = vec![0f32; w * h];
            for l in &lines {
                for s in l.windows(2) {
                    let (a, b) = (
                        ((s[0].0 + 1.0) * scale, (s[0].1 + 1.0) * scale),
                        ((s[1].0 + 1.0) * scale, (s[1].1 + 1.0) * scale),
                    );
                    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                    let len2 = (dx * dx + dy * dy).max(1e-6);
                    for y in 0..h {
                        for x in 0..w {
                            let (px, py) = (x as f32 + 0.5 - a.0, y as f32 + 0.5 - a.1);
                            let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
                            let dd = ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt();
                            let cov = (r + 0.5 - dd).clamp(0.0, 1.0);
                            let p = &mut img[y * w + x];
                            *p = p.max(cov);
                        }
                    }
                }
            }
            let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
            for y in 0..h {
                for x in 0..w {
                    if img[y * w + x] > 0.5 {
                        x0 = x0.min(x);
                        x1 = x1.max(x);
                        y0 = y0.min(y);
                        y1 = y1.max(y);
                    }
                }
            }
            let map = |x: usize, y: usize| img[y * w + x];
            out.push((c, centred(&normalise(&map, x0, x1, y0, y1))));
        }
    }
    out
}
