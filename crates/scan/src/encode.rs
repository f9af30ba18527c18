//! Output encoding: JPEG with stepwise quality reduction to meet the size target and hard cap,
//! or 1-bit PNG for the bilevel option.

use crate::ScanError;

/// Encodes an interleaved 8-bit image (1 or 3 channels) as baseline JPEG at `dpi`.
pub fn jpeg(img: &[u8], w: usize, h: usize, ch: usize, quality: u8, dpi: u16) -> Result<Vec<u8>, ScanError> {
    let mut out = Vec::with_capacity(w * h / 8);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_density(jpeg_encoder::PixelDensity::dpi(dpi));
    let ct = if ch == 3 { jpeg_encoder::ColorType::Rgb } else { jpeg_encoder::ColorType::Luma };
    if w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(ScanError::Encode("image too large for JPEG".into()));
    }
    enc.encode(img, w as u16, h as u16, ct).map_err(|e| ScanError::Encode(e.to_string()))?;
    Ok(out)
}

/// Encodes at `quality`, then steps quality down until the result is within `target` bytes (not
/// below `floor_quality`), and further down to quality 10 if it still exceeds `hard_cap`.
/// Returns the bytes and the quality used.
pub fn jpeg_capped(img: &[u8], w: usize, h: usize, ch: usize, quality: u8, dpi: u16, target: usize, hard_cap: usize) -> Result<(Vec<u8>, u8), ScanError> {
    const FLOOR_QUALITY: u8 = 40;
    let mut q = quality.clamp(10, 100);
    // Predict the size from a quarter of the image (every 4th 16-row strip) and start at the
    // highest quality predicted to fit, so a dense page usually costs one full encode, not three.
    if ch == 1 && h >= 256 {
        let strip = 16 * w * ch;
        let sample: Vec<u8> = img.chunks(strip).step_by(4).filter(|c| c.len() == strip).flatten().copied().collect();
        let sh = sample.len() / (w * ch);
        let scale = h as f64 / sh as f64;
        while q > FLOOR_QUALITY {
            let est = jpeg(&sample, w, sh, ch, q, dpi)?.len() as f64 * scale;
            if est <= target as f64 * 0.97 {
                break;
            }
            q = q.saturating_sub(10).max(FLOOR_QUALITY);
        }
    }
    loop {
        let out = jpeg(img, w, h, ch, q, dpi)?;
        let limit = if q > FLOOR_QUALITY { target } else { hard_cap };
        if out.len() <= limit {
            return Ok((out, q));
        }
        if q <= 10 {
            return Err(ScanError::OutputTooLarge { bytes: out.len() });
        }
        // Step down to the floor for the soft target; below it only the hard cap drives.
        q = if q > FLOOR_QUALITY { q.saturating_sub(10).max(FLOOR_QUALITY) } else { q.saturating_sub(10).max(10) };
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
        enc.set_pixel_dims(Some(png::PixelDimensions { xppu: ppm, yppu: ppm, unit: png::Unit::Meter }));
        let mut wr = enc.write_header().map_err(|e| ScanError::Encode(e.to_string()))?;
        wr.write_image_data(&bits).map_err(|e| ScanError::Encode(e.to_string()))?;
        wr.finish().map_err(|e| ScanError::Encode(e.to_string()))?;
    }
    Ok(out)
}
