//! Perspective warp: one inverse map from output pixel to stored-photo pixel (EXIF orientation
//! already folded in), bilinear sampling, row-parallel.

use crate::decode::Raster;
use crate::geom::Mat3;
use crate::par::for_rows;
use crate::{CancelToken, ScanError};

/// Warps `src` into a `w`x`h` image with `ch_out` channels (1 or 3), where `m` maps output pixel
/// coordinates to stored-raster coordinates. A luma output from an RGB source converts on the fly.
pub fn warp(src: &Raster, m: &Mat3, w: usize, h: usize, ch_out: usize, threads: usize, cancel: &CancelToken) -> Result<Vec<u8>, ScanError> {
    let mut out = vec![0u8; w * h * ch_out];
    let h_ = m.0;
    let (sw, sh, ch) = (src.w, src.h, src.ch);
    let data = &src.data[..];
    // Clamp just inside the last pixel so x0 + 1 and y0 + 1 are always valid (no per-pixel
    // edge handling); a 1-pixel source never occurs (sources are photos, at least 16 px).
    let maxx = (sw as f32 - 1.0 - 1.0 / 128.0).max(0.0);
    let maxy = (sh as f32 - 1.0 - 1.0 / 128.0).max(0.0);
    assert!(sw >= 2 && sh >= 2 && data.len() >= sw * sh * ch);
    let max_fx = (maxx * 256.0) as i32;
    let max_fy = (maxy * 256.0) as i32;
    // Output is processed in 64x64 tiles: with EXIF rotation folded in, an output row can run
    // down a column of the stored photo, and tiling keeps those source reads in cache.
    const TILE: usize = 128;
    for_rows(&mut out, w * ch_out, threads, cancel, |first, band| {
        let rows = band.len() / (w * ch_out);
        for tx in (0..w).step_by(TILE) {
            let tw = TILE.min(w - tx);
            for ry in 0..rows {
                let v = (first + ry) as f64;
                let u0 = tx as f64;
                // Homogeneous coordinates advance linearly along a row; only the divide is per pixel.
                let x = (h_[0] * u0 + h_[1] * v + h_[2]) as f32;
                let y = (h_[3] * u0 + h_[4] * v + h_[5]) as f32;
                let z = (h_[6] * u0 + h_[7] * v + h_[8]) as f32;
                let (dx, dy, dz) = (h_[0] as f32, h_[3] as f32, h_[6] as f32);
                let row = &mut band[ry * w * ch_out..(ry + 1) * w * ch_out];
                // Pass 1 (vectorisable): source coordinates in 8.8 fixed point for the tile row.
                // Float-to-int uses the 1.5 * 2^23 magic-number trick (round to nearest, exact
                // for |v| < 2^22) instead of `as i32`, whose saturating/NaN semantics compile to
                // scalar branches; the integer clamp then keeps indices in range whatever the input.
                const MAGIC: f32 = 12_582_912.0;
                let magic_bits = MAGIC.to_bits() as i32;
                let mut fxs = [0i32; TILE];
                let mut fys = [0i32; TILE];
                for k in 0..tw {
                    let kf = k as f32;
                    let iz = 256.0 / (z + dz * kf);
                    let fx = ((x + dx * kf) * iz + MAGIC).to_bits() as i32 - magic_bits;
                    let fy = ((y + dy * kf) * iz + MAGIC).to_bits() as i32 - magic_bits;
                    fxs[k] = fx.clamp(0, max_fx);
                    fys[k] = fy.clamp(0, max_fy);
                }
                // Pass 2: bilinear sampling with integer weights. For luma the gather (pure loads,
                // which the CPU overlaps freely) is split from the arithmetic (vectorised).
                if ch == 1 {
                    let mut p0s = [0u16; TILE];
                    let mut p1s = [0u16; TILE];
                    for k in 0..tw {
                        let x0 = (fxs[k] >> 8) as usize;
                        let r0 = (fys[k] >> 8) as usize * sw + x0;
                        // SAFETY: the fixed-point coordinates are clamped to maxx < sw - 1 and
                        // maxy < sh - 1, so x0 + 1 < sw and y0 + 1 < sh: both 2-byte reads end at
                        // or before index sw * sh - 1 < data.len() (asserted above).
                        unsafe {
                            p0s[k] = (data.as_ptr().add(r0) as *const u16).read_unaligned();
                            p1s[k] = (data.as_ptr().add(r0 + sw) as *const u16).read_unaligned();
                        }
                    }
                    for k in 0..tw {
                        let (p0, p1) = (u16::from_le(p0s[k]) as i32, u16::from_le(p1s[k]) as i32);
                        let (a, b, c, d) = (p0 & 0xFF, p0 >> 8, p1 & 0xFF, p1 >> 8);
                        let (fx, fy) = (fxs[k] & 255, fys[k] & 255);
                        let top = (a << 8) + (b - a) * fx;
                        let bot = (c << 8) + (d - c) * fx;
                        row[tx + k] = (((top << 8) + (bot - top) * fy + (1 << 15)) >> 16) as u8;
                    }
                    continue;
                }
                for k in 0..tw {
                    let u = tx + k;
                    let (ix, iy) = (fxs[k], fys[k]);
                    let x0 = (ix >> 8) as usize;
                    let y0 = (iy >> 8) as usize;
                    let fx = ix & 255;
                    let fy = iy & 255;
                    let (r0, r1) = (y0 * sw, y0 * sw + sw);
                    {
                        let mut px = [0i32; 3];
                        for (kk, p) in px.iter_mut().enumerate() {
                            let a = data[(r0 + x0) * 3 + kk] as i32;
                            let b = data[(r0 + x0 + 1) * 3 + kk] as i32;
                            let c = data[(r1 + x0) * 3 + kk] as i32;
                            let d = data[(r1 + x0 + 1) * 3 + kk] as i32;
                            let top = (a << 8) + (b - a) * fx;
                            let bot = (c << 8) + (d - c) * fx;
                            *p = ((top << 8) + (bot - top) * fy + (1 << 15)) >> 16;
                        }
                        if ch_out == 3 {
                            for kk in 0..3 {
                                row[u * 3 + kk] = px[kk] as u8;
                            }
                        } else {
                            row[u] = ((px[0] * 77 + px[1] * 150 + px[2] * 29 + 128) >> 8) as u8;
                        }
                    }
                }
            }
        }
    })?;
    Ok(out)
}
