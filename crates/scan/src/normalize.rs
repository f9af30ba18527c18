//! Illumination normalisation: estimate the paper ("background") brightness on a coarse grid,
//! divide every pixel by it, then stretch so paper clips to white and ink goes black.
//!
//! Background = per-block maximum (ink is darker than paper, so the block max is paper) followed
//! by a grey closing (max then min filter) that removes glyphs, table rules and seal strokes up to
//! a few blocks wide while still following soft shadows and lighting gradients. Clipping paper to
//! pure white also removes sensor noise from the paper, which is what makes the JPEG small.

use crate::par::for_rows;
use crate::simd::multiversion;
use crate::{CancelToken, ScanError};

/// Block size of the background grid, in output pixels.
const BLOCK: usize = 16;
/// Radius (in blocks) of the grey closing applied to the block maxima; 0 = block max alone,
/// which already ignores strokes thinner than a block and follows narrow finger shadows best.
const CLOSE_RADIUS: usize = 0;
/// How hard to clean: pages are text on paper and take a strong stretch; cards carry a portrait
/// and security print whose mid-tones must survive.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Relative brightness at or above which a pixel becomes pure white.
    pub white: f32,
    /// Relative brightness at or below which a pixel becomes pure black.
    pub black: f32,
    /// The background may not fall below this fraction of the paper level (the 90th percentile
    /// of block maxima): large dark areas such as an ID photo are then not mistaken for shadow.
    pub floor: f32,
}

/// Offsets of the pixels of one grid span from its left cell centre, in pixels.
const RAMP: [f32; BLOCK] = {
    let mut r = [0f32; BLOCK];
    let mut k = 0;
    while k < BLOCK {
        r[k] = k as f32 + 0.5;
        k += 1;
    }
    r
};

pub const PAGE: Profile = Profile {
    white: 0.86,
    black: 0.30,
    floor: 0.0,
};
pub const CARD: Profile = Profile {
    white: 0.94,
    black: 0.08,
    floor: 0.85,
};

fn filter(grid: &[f32], gw: usize, gh: usize, rad: usize, take_max: bool) -> Vec<f32> {
    let pick = |a: f32, b: f32| if take_max { a.max(b) } else { a.min(b) };
    let mut tmp = grid.to_vec();
    for y in 0..gh {
        for x in 0..gw {
            let (l, r) = (x.saturating_sub(rad), (x + rad).min(gw - 1));
            tmp[y * gw + x] = grid[y * gw + l..=y * gw + r]
                .iter()
                .copied()
                .fold(grid[y * gw + x], pick);
        }
    }
    let mut out = tmp.clone();
    for y in 0..gh {
        let (t, b) = (y.saturating_sub(rad), (y + rad).min(gh - 1));
        for x in 0..gw {
            out[y * gw + x] = (t..=b)
                .map(|yy| tmp[yy * gw + x])
                .fold(tmp[y * gw + x], pick);
        }
    }
    out
}

/// Normalises an interleaved `w`x`h` image with `ch` channels in place.
pub fn normalize(
    img: &mut [u8],
    w: usize,
    h: usize,
    ch: usize,
    profile: Profile,
    threads: usize,
    cancel: &CancelToken,
) -> Result<(), ScanError> {
    let (gw, gh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
    let mut grids = vec![vec![0f32; gw * gh]; ch];
    let mut gmax = vec![0u8; gw * gh * ch];
    for y0 in (0..h).step_by(256) {
        cancel.check()?;
        block_max_rows(img, w, ch, gw, y0, (y0 + 256).min(h), &mut gmax);
    }
    for c in 0..ch {
        let g: Vec<f32> = (0..gw * gh)
            .map(|i| (gmax[i * ch + c] as f32).max(8.0))
            .collect();
        let closed = filter(
            &filter(&g, gw, gh, CLOSE_RADIUS, true),
            gw,
            gh,
            CLOSE_RADIUS,
            false,
        );
        grids[c] = closed;
    }
    // Per-pixel: out = v * (A / bg) - B; A and B fold in the white/black stretch. The factor
    // A / bg is interpolated bilinearly from the grid (smooth, so interpolating the reciprocal
    // instead of bg itself makes no visible difference and saves a divide per pixel).
    if profile.floor > 0.0 {
        for g in grids.iter_mut() {
            let mut sorted = g.clone();
            sorted.sort_by(f32::total_cmp);
            let floor = sorted[sorted.len() * 9 / 10] * profile.floor;
            g.iter_mut().for_each(|v| *v = v.max(floor));
        }
    }
    let a = 255.0 / (profile.white - profile.black);
    let b = profile.black * a;
    let grids: Vec<Vec<f32>> = grids
        .iter()
        .map(|g| g.iter().map(|&v| a / v).collect())
        .collect();
    let grids = &grids;
    // Column interpolation tables, shared by all rows. Grid cell centres are at (i + 0.5) * BLOCK - 0.5.
    let mut cx0 = vec![0usize; w];
    let mut cx1 = vec![0usize; w];
    let mut cfx = vec![0f32; w];
    for x in 0..w {
        let gxf = ((x as f32 + 0.5) / BLOCK as f32 - 0.5).clamp(0.0, (gw - 1) as f32);
        cx0[x] = gxf as usize;
        cx1[x] = (cx0[x] + 1).min(gw - 1);
        cfx[x] = gxf - cx0[x] as f32;
    }
    let (cx0, cx1, cfx) = (&cx0, &cx1, &cfx);
    for_rows(img, w * ch, threads, cancel, |first, band| {
        apply_band(band, first, w, ch, grids, gw, gh, cx0, cx1, cfx, b)
    })
}

multiversion! {
/// Applies the interpolated gain to the rows of `band` (the first is image row `first`).
fn apply_band(band: &mut [u8], first: usize, w: usize, ch: usize, grids: &[Vec<f32>], gw: usize, gh: usize, cx0: &[usize], cx1: &[usize], cfx: &[f32], b: f32) {
    let x_first = BLOCK / 2;
    let mut inv = vec![0f32; w * ch];
    let mut col = vec![0f32; gw];
    for (ry, row) in band.chunks_mut(w * ch).enumerate() {
        let y = (first + ry) as f32;
        let gyf = ((y + 0.5) / BLOCK as f32 - 0.5).clamp(0.0, (gh - 1) as f32);
        let gy0 = gyf as usize;
        let gy1 = (gy0 + 1).min(gh - 1);
        let fy = gyf - gy0 as f32;
        for c in 0..ch {
            let g = &grids[c];
            for (gx, cv) in col.iter_mut().enumerate() {
                *cv = g[gy0 * gw + gx] + (g[gy1 * gw + gx] - g[gy0 * gw + gx]) * fy;
            }
            if ch == 1 {
                // Piecewise-linear between grid cell centres: a straight ramp per span,
                // which vectorises (no per-pixel table lookups).
                for (x, iv) in inv.iter_mut().enumerate().take(x_first) {
                    *iv = col[cx0[x]];
                }
                for gx in 0..gw.saturating_sub(1) {
                    let (l, r) = (col[gx], col[gx + 1]);
                    let x0 = x_first + gx * BLOCK;
                    let x1 = (x0 + BLOCK).min(w);
                    let d = (r - l) / BLOCK as f32;
                    for (iv, &o) in inv[x0..x1].iter_mut().zip(RAMP.iter()) {
                        *iv = l + d * o;
                    }
                }
                let tail = (x_first + (gw - 1) * BLOCK).min(w);
                for iv in inv[tail..w].iter_mut() {
                    *iv = col[gw - 1];
                }
            } else {
                for x in 0..w {
                    let (l, r) = (col[cx0[x]], col[cx1[x]]);
                    inv[x * ch + c] = l + (r - l) * cfx[x];
                }
            }
        }
        // Round to nearest through the 1.5 * 2^23 magic number: after the clamp the value's
        // low mantissa byte is the rounded result, which keeps the loop vectorised (a
        // float-to-u8 `as` cast compiles to one scalar conversion per pixel).
        const MAGIC: f32 = 12_582_912.0;
        for (p, &k) in row.iter_mut().zip(inv.iter()) {
            *p = ((*p as f32 * k - b).clamp(0.0, 255.0) + MAGIC).to_bits() as u8;
        }
    }
}
}

multiversion! {
/// Folds rows `y0..y1` into the per-block maxima `gmax` (`gw` blocks per row, `ch` interleaved).
fn block_max_rows(img: &[u8], w: usize, ch: usize, gw: usize, y0: usize, y1: usize, gmax: &mut [u8]) {
    if ch == 1 {
        // Column maxima over each block row first (a straight vector max over whole rows), then
        // one 16-byte reduction per block instead of one per block and row. `y0` is a multiple
        // of BLOCK.
        let mut colmax = vec![0u8; w];
        for by in (y0..y1).step_by(BLOCK) {
            colmax.copy_from_slice(&img[by * w..(by + 1) * w]);
            for y in by + 1..(by + BLOCK).min(y1) {
                for (m, &v) in colmax.iter_mut().zip(&img[y * w..(y + 1) * w]) {
                    *m = (*m).max(v);
                }
            }
            let gy = by / BLOCK;
            for (g, seg) in gmax[gy * gw..(gy + 1) * gw].iter_mut().zip(colmax.chunks(BLOCK)) {
                *g = seg.iter().copied().fold(*g, u8::max);
            }
        }
        return;
    }
    for y in y0..y1 {
        let row = &img[y * w * ch..(y + 1) * w * ch];
        let gy = y / BLOCK;
        for gx in 0..gw {
            let seg = &row[gx * BLOCK * ch..((gx + 1) * BLOCK).min(w) * ch];
            if ch == 1 {
                let m = seg.iter().copied().max().unwrap_or(0);
                let g = &mut gmax[gy * gw + gx];
                *g = (*g).max(m);
            } else {
                for c in 0..ch {
                    let m = seg.iter().skip(c).step_by(ch).copied().max().unwrap_or(0);
                    let g = &mut gmax[(gy * gw + gx) * ch + c];
                    *g = (*g).max(m);
                }
            }
        }
    }
}
}
