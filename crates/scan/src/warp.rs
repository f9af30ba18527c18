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
    let maxx = (sw - 1) as f32;
    let maxy = (sh - 1) as f32;
    for_rows(&mut out, w * ch_out, threads, cancel, |first, band| {
        for (ry, row) in band.chunks_mut(w * ch_out).enumerate() {
            let v = (first + ry) as f64;
            // Homogeneous coordinates advance linearly along a row; only the divide is per pixel.
            let (mut x, mut y, mut z) = (h_[1] * v + h_[2], h_[4] * v + h_[5], h_[7] * v + h_[8]);
            for u in 0..w {
                let iz = 1.0 / z;
                let sx = ((x * iz) as f32).clamp(0.0, maxx);
                let sy = ((y * iz) as f32).clamp(0.0, maxy);
                x += h_[0];
                y += h_[3];
                z += h_[6];
                let x0 = sx as usize;
                let y0 = sy as usize;
                let fx = sx - x0 as f32;
                let fy = sy - y0 as f32;
                let x1 = if x0 + 1 < sw { x0 + 1 } else { x0 };
                let y1 = if y0 + 1 < sh { y0 + 1 } else { y0 };
                let (r0, r1) = (y0 * sw, y1 * sw);
                if ch == 1 {
                    let a = data[r0 + x0] as f32;
                    let b = data[r0 + x1] as f32;
                    let c = data[r1 + x0] as f32;
                    let d = data[r1 + x1] as f32;
                    let top = a + (b - a) * fx;
                    let bot = c + (d - c) * fx;
                    row[u] = (top + (bot - top) * fy + 0.5) as u8;
                } else {
                    let mut px = [0f32; 3];
                    for (k, p) in px.iter_mut().enumerate() {
                        let a = data[(r0 + x0) * 3 + k] as f32;
                        let b = data[(r0 + x1) * 3 + k] as f32;
                        let c = data[(r1 + x0) * 3 + k] as f32;
                        let d = data[(r1 + x1) * 3 + k] as f32;
                        let top = a + (b - a) * fx;
                        let bot = c + (d - c) * fx;
                        *p = top + (bot - top) * fy;
                    }
                    if ch_out == 3 {
                        for k in 0..3 {
                            row[u * 3 + k] = (px[k] + 0.5) as u8;
                        }
                    } else {
                        row[u] = (px[0] * 0.299 + px[1] * 0.587 + px[2] * 0.114 + 0.5) as u8;
                    }
                }
            }
        }
    })?;
    Ok(out)
}
