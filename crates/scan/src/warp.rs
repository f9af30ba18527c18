//! Perspective warp: one inverse map from output pixel to stored-photo pixel (EXIF orientation
//! already folded in), bilinear sampling, row-parallel.

use crate::decode::Raster;
use crate::geom::Mat3;
use crate::par::for_rows;
use crate::simd::multiversion;
use crate::{CancelToken, ScanError};

/// Warps `src` into a `w`x`h` image with `ch_out` channels (1 or 3), where `m` maps output pixel
/// coordinates to stored-raster coordinates. A luma output from an RGB source converts on the fly.
pub fn warp(
    src: &Raster,
    m: &Mat3,
    w: usize,
    h: usize,
    ch_out: usize,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Vec<u8>, ScanError> {
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
    // Hardware gathers fetch the eight 2x2 neighbourhoods of a luma span in two instructions;
    // the compiler's own version of that loop inserts one 16-bit load at a time. Gather indices
    // are i32, which every accepted photo (at most 50 MP) fits.
    // AVX-512 gathers sixteen at a time, which measured about 30% faster again on the
    // benchmark machine (Zen 4) than two eight-lane AVX2 gathers.
    #[cfg(target_arch = "x86_64")]
    let gather = if sw * sh >= i32::MAX as usize || !std::arch::is_x86_feature_detected!("avx2") {
        Gather::None
    } else if std::arch::is_x86_feature_detected!("avx512f") {
        if std::arch::is_x86_feature_detected!("avx512vbmi") {
            Gather::Avx512Vbmi
        } else {
            Gather::Avx512
        }
    } else {
        Gather::Avx2
    };
    #[cfg(not(target_arch = "x86_64"))]
    let gather = Gather::None;
    // Tiles 128 pixels wide keep a rotated photo's source columns in cache across output rows.
    // Where output rows run along source rows (upright photos, within about 25 degrees) 256-pixel
    // tiles measured faster (5.6 against 6.7 ms per upright page on the benchmark machine).
    // Decided once per image, so the result does not depend on how rows are split into bands.
    let v = (h / 2) as f64;
    let src_y = |u: f64| (h_[3] * u + h_[4] * v + h_[5]) / (h_[6] * u + h_[7] * v + h_[8]);
    let tile = if (src_y(w as f64 - 1.0) - src_y(0.0)).abs() * 2.0 < w as f64 {
        MAX_TILE
    } else {
        MAX_TILE / 2
    };
    for_rows(&mut out, w * ch_out, threads, cancel, |first, band| {
        warp_band(
            data, sw, ch, &h_, w, ch_out, max_fx, max_fy, gather, tile, first, band,
        )
    })?;
    Ok(out)
}

/// Widest tile (output pixels per row segment) the warp uses.
const MAX_TILE: usize = 256;

/// Which hardware-gather kernel samples luma spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gather {
    None,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
    /// AVX-512 with byte permutes (VBMI): spans that stay within two or three source rows read
    /// them with three 64-byte loads instead of gathering (see `span_gray_avx512_vbmi`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512Vbmi,
}

multiversion! {
/// Warps output rows `first..` (the `band`) of a `w`-wide, `ch_out`-channel image.
fn warp_band(data: &[u8], sw: usize, ch: usize, h_: &[f64; 9], w: usize, ch_out: usize, max_fx: i32, max_fy: i32, gather: Gather, tile: usize, first: usize, band: &mut [u8]) {
    let rows = band.len() / (w * ch_out);
    let tile = tile.clamp(1, MAX_TILE);
    for tx in (0..w).step_by(tile) {
        let tw = tile.min(w - tx);
        for ry in 0..rows {
            let v = (first + ry) as f64;
            let u0 = tx as f64;
            // Homogeneous coordinates advance linearly along a row; only the divide is per pixel.
            let x = (h_[0] * u0 + h_[1] * v + h_[2]) as f32;
            let y = (h_[3] * u0 + h_[4] * v + h_[5]) as f32;
            let z = (h_[6] * u0 + h_[7] * v + h_[8]) as f32;
            let (dx, dy, dz) = (h_[0] as f32, h_[3] as f32, h_[6] as f32);
            let row = &mut band[ry * w * ch_out..(ry + 1) * w * ch_out];
            if ch == 1 && gather != Gather::None {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `gather` names only features the CPU has (checked in `warp`); the
                // kernels clamp the coordinates to `max_fx`/`max_fy` as the portable loops below do.
                unsafe {
                    let m = [x, y, z, dx, dy, dz];
                    // The permute kernel pays off only where a 16-pixel chunk stays within two
                    // source rows: upright photos, not rotated ones whose spans run down a column.
                    let k = tw as f32 - 1.0;
                    let rise = ((y + dy * k) / (z + dz * k) - y / z).abs();
                    if gather == Gather::Avx512Vbmi && rise * 16.0 < k {
                        span_gray_avx512_vbmi(data, sw, m, max_fx, max_fy, &mut row[tx..tx + tw]);
                    } else if gather != Gather::Avx2 {
                        span_gray_avx512(data, sw, m, max_fx, max_fy, &mut row[tx..tx + tw]);
                    } else {
                        span_gray_avx2(data, sw, m, max_fx, max_fy, &mut row[tx..tx + tw]);
                    }
                }
                continue;
            }
            // Pass 1 (vectorisable): source coordinates in 8.8 fixed point for the tile row.
            // Float-to-int uses the 1.5 * 2^23 magic-number trick (round to nearest, exact
            // for |v| < 2^22) instead of `as i32`, whose saturating/NaN semantics compile to
            // scalar branches; the integer clamp then keeps indices in range whatever the input.
            const MAGIC: f32 = 12_582_912.0;
            let magic_bits = MAGIC.to_bits() as i32;
            let mut fxs = [0i32; MAX_TILE];
            let mut fys = [0i32; MAX_TILE];
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
                let mut p0s = [0u16; MAX_TILE];
                let mut p1s = [0u16; MAX_TILE];
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
}
}

/// One span of luma output: source coordinates, 2x2 neighbourhoods and bilinear weights for eight
/// pixels at a time, all in registers. Bit-identical to the portable two-pass loops in
/// `warp_band` (same float operations in the same order, same magic-number rounding, same clamp,
/// same integer interpolation). `m` holds the span's first homogeneous coordinate (x, y, z) and
/// its per-pixel step (dx, dy, dz).
///
/// # Safety
/// The CPU must support AVX2, `data` must hold at least `sw * sh` bytes with `sw >= 2`, and
/// `max_fx`/`max_fy` must keep `x0 <= sw - 2` and `y0 <= sh - 2`; `sw * sh` must fit an i32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn span_gray_avx2(
    data: &[u8],
    sw: usize,
    m: [f32; 6],
    max_fx: i32,
    max_fy: i32,
    out: &mut [u8],
) {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let [x, y, z, dx, dy, dz] = m;
    let n = out.len();
    let base = data.as_ptr() as *const i32;
    let (xv, yv, zv) = (_mm256_set1_ps(x), _mm256_set1_ps(y), _mm256_set1_ps(z));
    let (dxv, dyv, dzv) = (_mm256_set1_ps(dx), _mm256_set1_ps(dy), _mm256_set1_ps(dz));
    let c256 = _mm256_set1_ps(256.0);
    let magic = _mm256_set1_ps(MAGIC);
    let magic_bits = _mm256_set1_epi32(MAGIC.to_bits() as i32);
    let (zero, mfx, mfy) = (
        _mm256_setzero_si256(),
        _mm256_set1_epi32(max_fx),
        _mm256_set1_epi32(max_fy),
    );
    let swv = _mm256_set1_epi32(sw as i32);
    let below = _mm256_set1_epi32(sw as i32 - 2);
    let m255 = _mm256_set1_epi32(255);
    let half = _mm256_set1_epi32(1 << 15);
    let mut kf = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
    let eight = _mm256_set1_ps(8.0);
    let mut k = 0;
    while k + 8 <= n {
        let iz = _mm256_div_ps(c256, _mm256_add_ps(zv, _mm256_mul_ps(dzv, kf)));
        let fxf = _mm256_add_ps(
            _mm256_mul_ps(_mm256_add_ps(xv, _mm256_mul_ps(dxv, kf)), iz),
            magic,
        );
        let fyf = _mm256_add_ps(
            _mm256_mul_ps(_mm256_add_ps(yv, _mm256_mul_ps(dyv, kf)), iz),
            magic,
        );
        let fx = _mm256_sub_epi32(_mm256_castps_si256(fxf), magic_bits);
        let fy = _mm256_sub_epi32(_mm256_castps_si256(fyf), magic_bits);
        let fx = _mm256_min_epi32(_mm256_max_epi32(fx, zero), mfx);
        let fy = _mm256_min_epi32(_mm256_max_epi32(fy, zero), mfy);
        let r0 = _mm256_add_epi32(
            _mm256_mullo_epi32(_mm256_srai_epi32::<8>(fy), swv),
            _mm256_srai_epi32::<8>(fx),
        );
        // Top pair: bytes r0, r0 + 1 are the low two bytes of the 4-byte load at r0 (which ends at
        // most at (sh - 1) * sw + 1). Bottom pair: the high two bytes of the load at r0 + sw - 2,
        // which starts at or after 0 and ends at r0 + sw + 1 <= sw * sh - 1. No read leaves `data`.
        let top = _mm256_i32gather_epi32::<1>(base, r0);
        let bot = _mm256_i32gather_epi32::<1>(base, _mm256_add_epi32(r0, below));
        let a = _mm256_and_si256(top, m255);
        let b = _mm256_and_si256(_mm256_srli_epi32::<8>(top), m255);
        let c = _mm256_and_si256(_mm256_srli_epi32::<16>(bot), m255);
        let d = _mm256_srli_epi32::<24>(bot);
        let wx = _mm256_and_si256(fx, m255);
        let wy = _mm256_and_si256(fy, m255);
        let t = _mm256_add_epi32(
            _mm256_slli_epi32::<8>(a),
            _mm256_mullo_epi32(_mm256_sub_epi32(b, a), wx),
        );
        let u = _mm256_add_epi32(
            _mm256_slli_epi32::<8>(c),
            _mm256_mullo_epi32(_mm256_sub_epi32(d, c), wx),
        );
        let v = _mm256_add_epi32(
            _mm256_slli_epi32::<8>(t),
            _mm256_mullo_epi32(_mm256_sub_epi32(u, t), wy),
        );
        let r = _mm256_srai_epi32::<16>(_mm256_add_epi32(v, half));
        // 8 x i32 (0..=255) -> 8 bytes: each 128-bit lane packs its four values to the low dword.
        let p = _mm256_packus_epi16(_mm256_packus_epi32(r, r), _mm256_setzero_si256());
        let lo = _mm256_castsi256_si128(p);
        let hi = _mm256_extracti128_si256::<1>(p);
        _mm_storel_epi64(
            out.as_mut_ptr().add(k) as *mut __m128i,
            _mm_unpacklo_epi32(lo, hi),
        );
        kf = _mm256_add_ps(kf, eight);
        k += 8;
    }
    tail_gray(data, sw, m, max_fx, max_fy, k, out);
}

/// [`span_gray_avx2`] sixteen pixels at a time; bit-identical to it and to the portable loops.
///
/// # Safety
/// As for [`span_gray_avx2`], and the CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn span_gray_avx512(
    data: &[u8],
    sw: usize,
    m: [f32; 6],
    max_fx: i32,
    max_fy: i32,
    out: &mut [u8],
) {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let [x, y, z, dx, dy, dz] = m;
    let n = out.len();
    let base = data.as_ptr() as *const i32;
    let (xv, yv, zv) = (_mm512_set1_ps(x), _mm512_set1_ps(y), _mm512_set1_ps(z));
    let (dxv, dyv, dzv) = (_mm512_set1_ps(dx), _mm512_set1_ps(dy), _mm512_set1_ps(dz));
    let c256 = _mm512_set1_ps(256.0);
    let magic = _mm512_set1_ps(MAGIC);
    let magic_bits = _mm512_set1_epi32(MAGIC.to_bits() as i32);
    let (zero, mfx, mfy) = (
        _mm512_setzero_si512(),
        _mm512_set1_epi32(max_fx),
        _mm512_set1_epi32(max_fy),
    );
    let swv = _mm512_set1_epi32(sw as i32);
    let below = _mm512_set1_epi32(sw as i32 - 2);
    let m255 = _mm512_set1_epi32(255);
    let half = _mm512_set1_epi32(1 << 15);
    let mut kf = _mm512_setr_ps(
        0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
    );
    let sixteen = _mm512_set1_ps(16.0);
    let mut k = 0;
    while k + 16 <= n {
        let iz = _mm512_div_ps(c256, _mm512_add_ps(zv, _mm512_mul_ps(dzv, kf)));
        let fxf = _mm512_add_ps(
            _mm512_mul_ps(_mm512_add_ps(xv, _mm512_mul_ps(dxv, kf)), iz),
            magic,
        );
        let fyf = _mm512_add_ps(
            _mm512_mul_ps(_mm512_add_ps(yv, _mm512_mul_ps(dyv, kf)), iz),
            magic,
        );
        let fx = _mm512_sub_epi32(_mm512_castps_si512(fxf), magic_bits);
        let fy = _mm512_sub_epi32(_mm512_castps_si512(fyf), magic_bits);
        let fx = _mm512_min_epi32(_mm512_max_epi32(fx, zero), mfx);
        let fy = _mm512_min_epi32(_mm512_max_epi32(fy, zero), mfy);
        let r0 = _mm512_add_epi32(
            _mm512_mullo_epi32(_mm512_srai_epi32::<8>(fy), swv),
            _mm512_srai_epi32::<8>(fx),
        );
        // Same two loads per pixel as the AVX2 kernel (see there for why they stay in `data`).
        let top = _mm512_i32gather_epi32::<1>(r0, base);
        let bot = _mm512_i32gather_epi32::<1>(_mm512_add_epi32(r0, below), base);
        let a = _mm512_and_si512(top, m255);
        let b = _mm512_and_si512(_mm512_srli_epi32::<8>(top), m255);
        let c = _mm512_and_si512(_mm512_srli_epi32::<16>(bot), m255);
        let d = _mm512_srli_epi32::<24>(bot);
        let wx = _mm512_and_si512(fx, m255);
        let wy = _mm512_and_si512(fy, m255);
        let t = _mm512_add_epi32(
            _mm512_slli_epi32::<8>(a),
            _mm512_mullo_epi32(_mm512_sub_epi32(b, a), wx),
        );
        let u = _mm512_add_epi32(
            _mm512_slli_epi32::<8>(c),
            _mm512_mullo_epi32(_mm512_sub_epi32(d, c), wx),
        );
        let v = _mm512_add_epi32(
            _mm512_slli_epi32::<8>(t),
            _mm512_mullo_epi32(_mm512_sub_epi32(u, t), wy),
        );
        let r = _mm512_srai_epi32::<16>(_mm512_add_epi32(v, half));
        // Values are 0..=255, so the truncating narrow is exact.
        _mm_storeu_si128(
            out.as_mut_ptr().add(k) as *mut __m128i,
            _mm512_cvtepi32_epi8(r),
        );
        kf = _mm512_add_ps(kf, sixteen);
        k += 16;
    }
    tail_gray(data, sw, m, max_fx, max_fy, k, out);
}

/// [`span_gray_avx512`] with a gather-free path for the common upright case: when the 2x2
/// neighbourhoods of a 16-pixel chunk all lie in source rows `yb..=yb + 2` and 64 columns from
/// `xb`, three 64-byte row loads and byte permutes fetch them; otherwise (rotated photos, where
/// a span runs down a source column) the chunk gathers. Bit-identical to the other kernels
/// (same a, b, c, d). On the benchmark machine this took the warp of upright pages from about
/// 10 to 6.5 ms.
///
/// # Safety
/// As for [`span_gray_avx2`], and the CPU must support AVX-512 F, BW and VBMI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx2")]
unsafe fn span_gray_avx512_vbmi(
    data: &[u8],
    sw: usize,
    m: [f32; 6],
    max_fx: i32,
    max_fy: i32,
    out: &mut [u8],
) {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let [x, y, z, dx, dy, dz] = m;
    let n = out.len();
    let base = data.as_ptr() as *const i32;
    let (xv, yv, zv) = (_mm512_set1_ps(x), _mm512_set1_ps(y), _mm512_set1_ps(z));
    let (dxv, dyv, dzv) = (_mm512_set1_ps(dx), _mm512_set1_ps(dy), _mm512_set1_ps(dz));
    let c256 = _mm512_set1_ps(256.0);
    let magic = _mm512_set1_ps(MAGIC);
    let magic_bits = _mm512_set1_epi32(MAGIC.to_bits() as i32);
    let (zero, mfx, mfy) = (
        _mm512_setzero_si512(),
        _mm512_set1_epi32(max_fx),
        _mm512_set1_epi32(max_fy),
    );
    let swv = _mm512_set1_epi32(sw as i32);
    let below = _mm512_set1_epi32(sw as i32 - 2);
    let m255 = _mm512_set1_epi32(255);
    let half = _mm512_set1_epi32(1 << 15);
    let pair = _mm512_set1_epi32(0x0100);
    let mut kf = _mm512_setr_ps(
        0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
    );
    let sixteen = _mm512_set1_ps(16.0);
    let mut k = 0;
    while k + 16 <= n {
        let iz = _mm512_div_ps(c256, _mm512_add_ps(zv, _mm512_mul_ps(dzv, kf)));
        let fxf = _mm512_add_ps(
            _mm512_mul_ps(_mm512_add_ps(xv, _mm512_mul_ps(dxv, kf)), iz),
            magic,
        );
        let fyf = _mm512_add_ps(
            _mm512_mul_ps(_mm512_add_ps(yv, _mm512_mul_ps(dyv, kf)), iz),
            magic,
        );
        let fx = _mm512_sub_epi32(_mm512_castps_si512(fxf), magic_bits);
        let fy = _mm512_sub_epi32(_mm512_castps_si512(fyf), magic_bits);
        let fx = _mm512_min_epi32(_mm512_max_epi32(fx, zero), mfx);
        let fy = _mm512_min_epi32(_mm512_max_epi32(fy, zero), mfy);
        let x0 = _mm512_srai_epi32::<8>(fx);
        let y0 = _mm512_srai_epi32::<8>(fy);
        // Candidate window from the end lanes (the source point moves monotonically along a row),
        // then checked on every lane: float rounding can wiggle a nearly constant coordinate
        // across a pixel boundary, so the end lanes alone are not a safe bound.
        let (xa, ya) = (_mm512_cvtsi512_si32(x0), _mm512_cvtsi512_si32(y0));
        let last = |v: __m512i| _mm_extract_epi32::<3>(_mm512_extracti32x4_epi32::<3>(v));
        let (xb, yb) = (xa.min(last(x0)), ya.min(last(y0)));
        let in_x = _mm512_cmple_epu32_mask(
            _mm512_sub_epi32(x0, _mm512_set1_epi32(xb)),
            _mm512_set1_epi32(62),
        );
        let in_y = _mm512_cmple_epu32_mask(
            _mm512_sub_epi32(y0, _mm512_set1_epi32(yb)),
            _mm512_set1_epi32(1),
        );
        let rows_ok = in_x & in_y == 0xFFFF;
        // Three rows of 64 bytes from (xb, yb) must lie inside `data`.
        let start = yb as usize * sw + xb as usize;
        let (top, bot) = if rows_ok && start + 2 * sw + 64 <= data.len() {
            let p = data.as_ptr().add(start);
            let r0 = _mm512_loadu_si512(p as *const _);
            let r1 = _mm512_loadu_si512(p.add(sw) as *const _);
            let r2 = _mm512_loadu_si512(p.add(2 * sw) as *const _);
            // Byte indices (x0 - xb, x0 - xb + 1) in the low two bytes of each lane.
            let off = _mm512_sub_epi32(x0, _mm512_set1_epi32(xb));
            let idx = _mm512_add_epi32(_mm512_mullo_epi32(off, _mm512_set1_epi32(0x0101)), pair);
            let (p0, p1, p2) = (
                _mm512_permutexvar_epi8(idx, r0),
                _mm512_permutexvar_epi8(idx, r1),
                _mm512_permutexvar_epi8(idx, r2),
            );
            let upper = _mm512_cmpeq_epi32_mask(y0, _mm512_set1_epi32(yb));
            // Lanes on row yb take rows yb / yb + 1, the others rows yb + 1 / yb + 2; the bottom
            // pair goes to bytes 2 and 3 as in the gathered layout.
            let top = _mm512_mask_blend_epi32(upper, p1, p0);
            let bot = _mm512_slli_epi32::<16>(_mm512_mask_blend_epi32(upper, p2, p1));
            (top, bot)
        } else {
            let r0 = _mm512_add_epi32(_mm512_mullo_epi32(y0, swv), x0);
            (
                _mm512_i32gather_epi32::<1>(r0, base),
                _mm512_i32gather_epi32::<1>(_mm512_add_epi32(r0, below), base),
            )
        };
        let a = _mm512_and_si512(top, m255);
        let b = _mm512_and_si512(_mm512_srli_epi32::<8>(top), m255);
        let c = _mm512_and_si512(_mm512_srli_epi32::<16>(bot), m255);
        let d = _mm512_srli_epi32::<24>(bot);
        let wx = _mm512_and_si512(fx, m255);
        let wy = _mm512_and_si512(fy, m255);
        let t = _mm512_add_epi32(
            _mm512_slli_epi32::<8>(a),
            _mm512_mullo_epi32(_mm512_sub_epi32(b, a), wx),
        );
        let u = _mm512_add_epi32(
            _mm512_slli_epi32::<8>(c),
            _mm512_mullo_epi32(_mm512_sub_epi32(d, c), wx),
        );
        let v = _mm512_add_epi32(
            _mm512_slli_epi32::<8>(t),
            _mm512_mullo_epi32(_mm512_sub_epi32(u, t), wy),
        );
        let r = _mm512_srai_epi32::<16>(_mm512_add_epi32(v, half));
        _mm_storeu_si128(
            out.as_mut_ptr().add(k) as *mut __m128i,
            _mm512_cvtepi32_epi8(r),
        );
        kf = _mm512_add_ps(kf, sixteen);
        k += 16;
    }
    tail_gray(data, sw, m, max_fx, max_fy, k, out);
}

/// Pixels `from..` of a span, one at a time, with the same arithmetic as the vector kernels.
#[cfg(target_arch = "x86_64")]
fn tail_gray(
    data: &[u8],
    sw: usize,
    m: [f32; 6],
    max_fx: i32,
    max_fy: i32,
    from: usize,
    out: &mut [u8],
) {
    const MAGIC: f32 = 12_582_912.0;
    let [x, y, z, dx, dy, dz] = m;
    let magic_bits = MAGIC.to_bits() as i32;
    for (k, o) in out.iter_mut().enumerate().skip(from) {
        let kf = k as f32;
        let iz = 256.0 / (z + dz * kf);
        let fx = (((x + dx * kf) * iz + MAGIC).to_bits() as i32 - magic_bits).clamp(0, max_fx);
        let fy = (((y + dy * kf) * iz + MAGIC).to_bits() as i32 - magic_bits).clamp(0, max_fy);
        let r0 = (fy >> 8) as usize * sw + (fx >> 8) as usize;
        let (a, b, c, d) = (
            data[r0] as i32,
            data[r0 + 1] as i32,
            data[r0 + sw] as i32,
            data[r0 + sw + 1] as i32,
        );
        let (wx, wy) = (fx & 255, fy & 255);
        let t = (a << 8) + (b - a) * wx;
        let u = (c << 8) + (d - c) * wx;
        *o = (((t << 8) + (u - t) * wy + (1 << 15)) >> 16) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_path_matches_portable_path() {
        // Perspective maps over a noisy source, including samples clamped at the edges.
        let (sw, sh) = (301usize, 203usize);
        let data: Vec<u8> = (0..sw * sh)
            .map(|i| ((i * 2_654_435_761usize) >> 13) as u8)
            .collect();
        // Tilted (chunks gather) and nearly upright (chunks take the row-permute path).
        for m in [
            [1.3, 0.2, -20.0, -0.15, 1.1, -10.0, 0.0004, 0.0002, 1.0],
            [1.2, 0.02, 3.0, 0.03, 1.05, 2.0, 0.0001, 0.00005, 1.0],
        ] {
            check_kernels(&data, sw, sh, &m);
        }
    }

    fn check_kernels(data: &[u8], sw: usize, sh: usize, m: &[f64; 9]) {
        let (w, h) = (250usize, 190usize);
        let maxx = sw as f32 - 1.0 - 1.0 / 128.0;
        let maxy = sh as f32 - 1.0 - 1.0 / 128.0;
        let (mfx, mfy) = ((maxx * 256.0) as i32, (maxy * 256.0) as i32);
        let mut a = vec![0u8; w * h];
        for tile in [MAX_TILE / 2, MAX_TILE] {
            warp_band(
                data,
                sw,
                1,
                m,
                w,
                1,
                mfx,
                mfy,
                Gather::None,
                tile,
                0,
                &mut a,
            );
            #[cfg(target_arch = "x86_64")]
            for (g, feature) in [
                (Gather::Avx2, std::arch::is_x86_feature_detected!("avx2")),
                (
                    Gather::Avx512,
                    std::arch::is_x86_feature_detected!("avx512f"),
                ),
                (
                    Gather::Avx512Vbmi,
                    std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512vbmi"),
                ),
            ] {
                if feature {
                    let mut b = vec![0u8; w * h];
                    warp_band(data, sw, 1, m, w, 1, mfx, mfy, g, tile, 0, &mut b);
                    assert_eq!(a, b, "{g:?}");
                }
            }
        }
        assert!(a.iter().any(|&v| v != a[0]));
    }
}
