//! Output encoding: JPEG with stepwise quality reduction to meet the size target and hard cap,
//! or 1-bit PNG for the bilevel option.

use crate::ScanError;

/// Encodes an interleaved 8-bit image (1 or 3 channels) as baseline JPEG at `dpi`.
pub fn jpeg(
    img: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    quality: u8,
    dpi: u16,
) -> Result<Vec<u8>, ScanError> {
    jpeg_strips(img, w, h, ch, None, quality, dpi)
}

/// [`jpeg`], or with `strips` (grayscale only) just those 8-row strips of the image.
fn jpeg_strips(
    img: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    strips: Option<&[u32]>,
    quality: u8,
    dpi: u16,
) -> Result<Vec<u8>, ScanError> {
    if w > u16::MAX as usize || h > u16::MAX as usize || w == 0 || h == 0 {
        return Err(ScanError::Encode("image size not encodable as JPEG".into()));
    }
    if ch == 1 {
        return Ok(crate::fastjpeg::encode_gray(
            img, w, h, strips, quality, dpi,
        ));
    }
    let mut out = Vec::with_capacity(w * h / 8);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_density(jpeg_encoder::PixelDensity::dpi(dpi));
    let ct = if ch == 3 {
        jpeg_encoder::ColorType::Rgb
    } else {
        jpeg_encoder::ColorType::Luma
    };
    if w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(ScanError::Encode("image too large for JPEG".into()));
    }
    enc.encode(img, w as u16, h as u16, ct)
        .map_err(|e| ScanError::Encode(e.to_string()))?;
    Ok(out)
}

/// Encodes at `quality`, then steps quality down until the result is within `target` bytes (not
/// below `floor_quality`), and further down to quality 10 if it still exceeds `hard_cap`.
/// Returns the bytes and the quality used.
#[allow(clippy::too_many_arguments)]
pub fn jpeg_capped(
    img: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    quality: u8,
    dpi: u16,
    target: usize,
    hard_cap: usize,
) -> Result<(Vec<u8>, u8), ScanError> {
    const FLOOR_QUALITY: u8 = 40;
    let mut q = quality.clamp(10, 100);
    let step = |q: u8| {
        if q > FLOOR_QUALITY {
            q.saturating_sub(10).max(FLOOR_QUALITY)
        } else {
            q.saturating_sub(10).max(10)
        }
    };
    // Size prediction from about a quarter of the image: 8-row strips picked by a hash, so
    // periodic content (text lines, table rows) cannot alias with the sampling. Sample encodes
    // are cheap, so a dense page usually costs one full encode instead of three.
    let mut sample: Vec<u32> = Vec::new();
    if ch == 1 && h >= 256 {
        let strip = 8 * w;
        for (i, c) in img[..w * h].chunks(strip).enumerate() {
            // A full 64-bit mix (not a multiplicative step, whose quasi-periodic picks can line
            // up with text line spacing) decides which strips are sampled.
            let mut x = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            if c.len() == strip && x & 3 == 0 {
                sample.push(i as u32);
            }
        }
    }
    let sample_rows = sample.len() * 8;
    let scale = if sample_rows > 0 {
        h as f64 / sample_rows as f64
    } else {
        0.0
    };
    // Size relative to the starting quality, for each 10-step down: measured on scanned pages
    // (dense text: 75→65→55→45→40 gave 1, .87, .78, .71, .67). One sample encode plus this model
    // picks the quality; a full encode then verifies it.
    let model = |from: u8, to: u8| -> f64 {
        let f = |q: u8| match q {
            q if q >= 75 => 1.0 + (q as f64 - 75.0) * 0.02,
            q if q >= 40 => 0.67 + (q as f64 - 40.0) * (0.33 / 35.0),
            q => 0.67 * q as f64 / 40.0,
        };
        f(to) / f(from)
    };
    let mut calib = 1.0f64;
    let mut base: Option<(u8, f64)> = None;
    loop {
        if sample_rows >= 64 && q > FLOOR_QUALITY {
            let (bq, bsize) = match base {
                Some(b) => b,
                None => {
                    let b = (
                        q,
                        jpeg_strips(img, w, h, ch, Some(&sample), q, dpi)?.len() as f64 * scale,
                    );
                    base = Some(b);
                    b
                }
            };
            while q > FLOOR_QUALITY && bsize * calib * model(bq, q) > target as f64 * 0.98 {
                q = step(q);
            }
        }
        let out = jpeg(img, w, h, ch, q, dpi)?;
        let limit = if q > FLOOR_QUALITY { target } else { hard_cap };
        if out.len() <= limit {
            return Ok((out, q));
        }
        if q <= 10 {
            return Err(ScanError::OutputTooLarge { bytes: out.len() });
        }
        // The prediction was off: calibrate it by the real size at this quality, step down.
        if let Some((bq, bsize)) = base {
            calib = (out.len() as f64 / (bsize * model(bq, q)).max(1.0)).max(1.0);
        }
        q = step(q);
    }
}

/// Thresholds a normalised luma image at mid-grey and writes a 1-bit greyscale PNG.
pub fn bilevel_png(gray: &[u8], w: usize, h: usize, dpi: u32) -> Result<Vec<u8>, ScanError> {
    let stride = w.div_ceil(8);
    let mut bits = vec![0u8; stride * h];
    for y in 0..h {
        let src = &gray[y * w..(y + 1) * w];
        let dst = &mut bits[y * stride..(y + 1) * stride];
        for (x, &v) in src.iter().enumerate() {
            // 1 = white in a greyscale PNG.
            if v >= 128 {
                dst[x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Default);
        let ppm = (dpi as f64 / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut wr = enc
            .write_header()
            .map_err(|e| ScanError::Encode(e.to_string()))?;
        wr.write_image_data(&bits)
            .map_err(|e| ScanError::Encode(e.to_string()))?;
        wr.finish().map_err(|e| ScanError::Encode(e.to_string()))?;
    }
    Ok(out)
}
