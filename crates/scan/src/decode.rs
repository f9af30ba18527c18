//! Safe decoding: header-only probing with size limits, EXIF orientation, and pixel decoding.
//!
//! The probe reads only markers/chunks, so a file claiming 100000x100000 is rejected in
//! microseconds, before any pixel buffer is allocated.

use crate::geom::Orientation;
use crate::ScanError;

/// Largest accepted photo, in megapixels.
pub const MAX_MEGAPIXELS: f64 = 50.0;
/// Largest accepted decode allocation, in bytes.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

/// What the header says, before decoding any pixels.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    /// Bytes the full decode would allocate at the file's native layout.
    pub decode_bytes: u64,
}

/// A decoded raster: `ch` interleaved 8-bit channels (1 = luma, 3 = RGB), stored orientation.
#[derive(Clone, Debug)]
pub struct Raster {
    pub w: usize,
    pub h: usize,
    pub ch: usize,
    pub data: Vec<u8>,
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads format, size, orientation and expected allocation from the header only, and applies
/// the safety limits.
pub fn probe(bytes: &[u8]) -> Result<Header, ScanError> {
    let h = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        probe_jpeg(bytes)?
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        probe_png(bytes)?
    } else if bytes.len() < 3
        && (bytes.starts_with(&[0xFF]) || b"\x89PNG".starts_with(bytes))
        && !bytes.is_empty()
    {
        return Err(ScanError::Truncated);
    } else {
        return Err(ScanError::NotAnImage);
    };
    if h.width == 0 || h.height == 0 {
        return Err(ScanError::Corrupt("image has zero width or height".into()));
    }
    if h.width < 16 || h.height < 16 {
        return Err(ScanError::Unsupported(format!(
            "image is only {}x{} pixels",
            h.width, h.height
        )));
    }
    let mp = h.width as f64 * h.height as f64 / 1e6;
    if mp > MAX_MEGAPIXELS {
        return Err(ScanError::TooLarge {
            megapixels: mp as f32,
        });
    }
    if h.decode_bytes > MAX_DECODE_BYTES {
        return Err(ScanError::TooMuchMemory {
            mib: (h.decode_bytes / (1024 * 1024)) as u32,
        });
    }
    Ok(h)
}

fn probe_jpeg(b: &[u8]) -> Result<Header, ScanError> {
    let mut i = 2;
    let mut orientation = Orientation(1);
    let mut size: Option<(u32, u32, u64)> = None;
    loop {
        // Skip to the next marker; fill bytes 0xFF may repeat.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&m) = b.get(i) else {
            return Err(ScanError::Truncated);
        };
        i += 1;
        match m {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err(ScanError::Corrupt("JPEG ends before any image data".into())),
            _ => {}
        }
        let len = be16(b, i).ok_or(ScanError::Truncated)? as usize;
        if len < 2 {
            return Err(ScanError::Corrupt("bad JPEG segment length".into()));
        }
        let seg = b.get(i + 2..i + len).ok_or(ScanError::Truncated)?;
        match m {
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                if let Some(o) = exif_orientation(&seg[6..]) {
                    orientation = Orientation::normalized(o);
                }
            }
            0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                if seg.len() < 6 {
                    return Err(ScanError::Corrupt("short JPEG frame header".into()));
                }
                let precision = seg[0] as u64;
                let height = be16(seg, 1).unwrap_or(0) as u32;
                let width = be16(seg, 3).unwrap_or(0) as u32;
                let comps = seg[5] as u64;
                if height == 0 {
                    return Err(ScanError::Unsupported(
                        "JPEG with height in a DNL marker".into(),
                    ));
                }
                let bps = if precision > 8 { 2 } else { 1 };
                // The decoder may hold coefficients or planes per component; budget for the larger of
                // the component planes and an RGB output.
                let bytes = width as u64 * height as u64 * comps.max(3) * bps;
                size = Some((width, height, bytes));
            }
            0xDA => {
                let (width, height, decode_bytes) =
                    size.ok_or_else(|| ScanError::Corrupt("JPEG scan before frame header".into()))?;
                // Entropy-coded data never contains FF D9 (0xFF is byte-stuffed), so an EOI marker
                // after the first scan means the file is complete. Phones may append trailers after
                // EOI, hence the search instead of checking the last two bytes.
                let tail = &b[i..];
                if !tail.windows(2).rev().any(|w| w == [0xFF, 0xD9]) {
                    return Err(ScanError::Truncated);
                }
                return Ok(Header {
                    format: Format::Jpeg,
                    width,
                    height,
                    orientation,
                    decode_bytes,
                });
            }
            _ => {}
        }
        i += len;
    }
}

/// Parses IFD0 of a TIFF structure (the EXIF payload) for the orientation tag.
pub fn exif_orientation(t: &[u8]) -> Option<u16> {
    let le = match t.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let r16 = |i: usize| -> Option<u16> {
        let s = t.get(i..i + 2)?;
        Some(if le {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let r32 = |i: usize| -> Option<u32> {
        let s = t.get(i..i + 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let ifd = r32(4)? as usize;
    let n = r16(ifd)? as usize;
    for k in 0..n.min(512) {
        let e = ifd + 2 + k * 12;
        if r16(e)? == 0x0112 {
            return r16(e + 8);
        }
    }
    None
}

fn probe_png(b: &[u8]) -> Result<Header, ScanError> {
    let ihdr = b.get(8..8 + 8 + 13).ok_or(ScanError::Truncated)?;
    if &ihdr[4..8] != b"IHDR" {
        return Err(ScanError::Corrupt("PNG without IHDR".into()));
    }
    let d = &ihdr[8..];
    let width = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let height = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    let depth = d[8];
    // Channels after the image crate expands palettes and low bit depths.
    let ch = match d[9] {
        0 => 1,
        2 => 3,
        3 => 4,
        4 => 2,
        6 => 4,
        _ => return Err(ScanError::Corrupt("PNG with unknown colour type".into())),
    };
    let bps = if depth == 16 { 2 } else { 1 };
    let decode_bytes = width as u64 * height as u64 * ch * bps;
    // A PNG always ends with an IEND chunk (12 bytes); missing means the file was cut off.
    if !b.windows(4).rev().take(4096).any(|w| w == b"IEND") {
        return Err(ScanError::Truncated);
    }
    Ok(Header {
        format: Format::Png,
        width,
        height,
        orientation: Orientation(1),
        decode_bytes,
    })
}

/// Decodes the pixels in stored orientation, as luma (`rgb == false`) or RGB.
pub fn decode(bytes: &[u8], header: &Header, rgb: bool) -> Result<Raster, ScanError> {
    match header.format {
        Format::Jpeg => decode_jpeg(bytes, header, rgb),
        Format::Png => decode_png(bytes, rgb),
    }
}

fn decode_jpeg(bytes: &[u8], header: &Header, rgb: bool) -> Result<Raster, ScanError> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    // Luma output lets zune-jpeg skip chroma IDCT, upsampling and colour conversion.
    let opts = DecoderOptions::default()
        .set_max_width(65535)
        .set_max_height(65535)
        .jpeg_set_out_colorspace(if rgb {
            ColorSpace::RGB
        } else {
            ColorSpace::Luma
        });
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(
        SliceReader {
            data: bytes,
            pos: 0,
        },
        opts,
    );
    dec.decode_headers()
        .map_err(|e| ScanError::Corrupt(e.to_string()))?;
    let info = dec
        .info()
        .ok_or_else(|| ScanError::Corrupt("no JPEG info".into()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    if w != header.width as usize || h != header.height as usize {
        return Err(ScanError::Corrupt(
            "JPEG frame size disagrees with header".into(),
        ));
    }
    let ch = dec
        .output_colorspace()
        .map(|c| c.num_components())
        .unwrap_or(0);
    let size = dec
        .output_buffer_size()
        .ok_or_else(|| ScanError::Corrupt("no JPEG size".into()))?;
    let mut data = vec![0u8; size];
    dec.decode_into(&mut data)
        .map_err(|e| ScanError::Corrupt(e.to_string()))?;
    let want = if rgb { 3 } else { 1 };
    if ch == want {
        return Ok(Raster { w, h, ch, data });
    }
    // CMYK or other unusual layouts: convert the simple way.
    Ok(convert_channels(Raster { w, h, ch, data }, want))
}

/// In-memory reader for zune-jpeg with the same semantics as `zune_core::bytestream::ZCursor`.
///
/// Why not `ZCursor`: the entropy decoder refills its bit buffer with 4-byte reads, and
/// `ZCursor` copies them with a slice length it clamps at run time, which compiles to a call to
/// `memcpy` for every refill (about 2% of the whole scan in a profile). Here an exact-length read
/// either copies the requested bytes or fails without moving, so the compiler sees the constant
/// length of the decoder's fixed-size reads and emits one load.
struct SliceReader<'a> {
    data: &'a [u8],
    /// May point past the end after `read_byte_no_error` or a seek, as `ZCursor`'s does.
    pos: usize,
}

impl SliceReader<'_> {
    /// The bytes from the position on (empty when it lies past the end).
    #[inline(always)]
    fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

impl zune_core::bytestream::ZByteReaderTrait for SliceReader<'_> {
    #[inline(always)]
    fn read_byte_no_error(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    #[inline(always)]
    fn read_exact_bytes(
        &mut self,
        buf: &mut [u8],
    ) -> Result<(), zune_core::bytestream::ZByteIoError> {
        // One range check on the hot path (the decoder's 4-byte refills).
        let end = self.pos.wrapping_add(buf.len());
        if end >= self.pos && end <= self.data.len() {
            buf.copy_from_slice(&self.data[self.pos..end]);
            self.pos = end;
            return Ok(());
        }
        Err(zune_core::bytestream::ZByteIoError::NotEnoughBytes(
            self.rest().len(),
            buf.len(),
        ))
    }
    #[inline(always)]
    fn read_bytes(&mut self, buf: &mut [u8]) -> Result<usize, zune_core::bytestream::ZByteIoError> {
        let n = self.peek_bytes(buf)?;
        self.pos += n;
        Ok(n)
    }
    #[inline(always)]
    fn peek_bytes(&mut self, buf: &mut [u8]) -> Result<usize, zune_core::bytestream::ZByteIoError> {
        let rest = self.rest();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
    #[inline(always)]
    fn peek_exact_bytes(
        &mut self,
        buf: &mut [u8],
    ) -> Result<(), zune_core::bytestream::ZByteIoError> {
        self.read_exact_bytes(buf)?;
        self.pos -= buf.len();
        Ok(())
    }
    fn z_seek(
        &mut self,
        from: zune_core::bytestream::ZSeekFrom,
    ) -> Result<u64, zune_core::bytestream::ZByteIoError> {
        use zune_core::bytestream::ZSeekFrom;
        let (base, offset) = match from {
            ZSeekFrom::Start(n) => {
                self.pos = n as usize;
                return Ok(n);
            }
            ZSeekFrom::End(n) => (self.data.len(), n as isize),
            ZSeekFrom::Current(n) => (self.pos, n as isize),
        };
        match base.checked_add_signed(offset) {
            Some(n) => {
                self.pos = n;
                Ok(n as u64)
            }
            None => Err(zune_core::bytestream::ZByteIoError::SeekError(
                "Negative seek",
            )),
        }
    }
    #[inline(always)]
    fn is_eof(&mut self) -> Result<bool, zune_core::bytestream::ZByteIoError> {
        Ok(self.pos >= self.data.len())
    }
    #[inline(always)]
    fn z_position(&mut self) -> Result<u64, zune_core::bytestream::ZByteIoError> {
        Ok(self.pos as u64)
    }
    fn read_remaining(
        &mut self,
        sink: &mut Vec<u8>,
    ) -> Result<usize, zune_core::bytestream::ZByteIoError> {
        let rest =
            self.data
                .get(self.pos..)
                .ok_or(zune_core::bytestream::ZByteIoError::Generic(
                    "read past the end",
                ))?;
        sink.extend_from_slice(rest);
        self.pos += rest.len();
        Ok(rest.len())
    }
}

fn convert_channels(r: Raster, want: usize) -> Raster {
    let n = r.w * r.h;
    let mut out = vec![0u8; n * want];
    for i in 0..n {
        let p = &r.data[i * r.ch..i * r.ch + r.ch];
        let (red, g, b) = if r.ch >= 3 {
            (p[0], p[1], p[2])
        } else {
            (p[0], p[0], p[0])
        };
        if want == 1 {
            out[i] = luma(red, g, b);
        } else {
            out[i * 3..i * 3 + 3].copy_from_slice(&[red, g, b]);
        }
    }
    Raster {
        w: r.w,
        h: r.h,
        ch: want,
        data: out,
    }
}

#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 77 + g as u32 * 150 + b as u32 * 29 + 128) >> 8) as u8
}

fn decode_png(bytes: &[u8], rgb: bool) -> Result<Raster, ScanError> {
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ScanError::Truncated
        }
        image::ImageError::Limits(_) => ScanError::TooMuchMemory {
            mib: (MAX_DECODE_BYTES >> 20) as u32,
        },
        other => ScanError::Corrupt(other.to_string()),
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(if rgb {
        Raster {
            w,
            h,
            ch: 3,
            data: img.into_rgb8().into_raw(),
        }
    } else {
        Raster {
            w,
            h,
            ch: 1,
            data: img.into_luma8().into_raw(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zune_core::bytestream::{ZByteReaderTrait, ZCursor};

    /// Decodes with zune-jpeg through `reader`: pixels, or the error text.
    fn zune_decode<R: ZByteReaderTrait>(reader: R, rgb: bool) -> Result<Vec<u8>, String> {
        use zune_core::colorspace::ColorSpace;
        let opts = zune_core::options::DecoderOptions::default().jpeg_set_out_colorspace(if rgb {
            ColorSpace::RGB
        } else {
            ColorSpace::Luma
        });
        let mut dec = zune_jpeg::JpegDecoder::new_with_options(reader, opts);
        dec.decode_headers().map_err(|e| e.to_string())?;
        let mut out = vec![0u8; dec.output_buffer_size().ok_or("no size")?];
        dec.decode_into(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn slice_reader_decodes_exactly_like_zcursor() {
        // Noisy colour content (long Huffman codes, many 0xFF bytes to unstuff) with a restart
        // interval, then the same file truncated at many points and with bytes overwritten.
        let (w, h) = (203u16, 117u16);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let raw: Vec<u8> = (0..w as usize * h as usize * 3)
            .map(|i| ((i % 613) as u64 * 3 + rnd() % 90) as u8)
            .collect();
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 92);
        enc.set_restart_interval(7);
        enc.encode(&raw, w, h, jpeg_encoder::ColorType::Rgb)
            .expect("encode");
        let mut files = vec![jpeg.clone()];
        for k in 1..40 {
            files.push(jpeg[..jpeg.len() * k / 40].to_vec());
        }
        for _ in 0..40 {
            let mut b = jpeg.clone();
            for _ in 0..4 {
                let r = rnd();
                let i = (r % b.len() as u64) as usize;
                b[i] = (r >> 40) as u8;
            }
            files.push(b);
        }
        let mut decoded = 0;
        for (n, f) in files.iter().enumerate() {
            for rgb in [false, true] {
                let ours = zune_decode(SliceReader { data: f, pos: 0 }, rgb);
                assert_eq!(
                    ours,
                    zune_decode(ZCursor::new(&f[..]), rgb),
                    "file {n}, rgb {rgb}"
                );
                decoded += ours.is_ok() as usize;
            }
        }
        assert!(
            decoded > 2,
            "the intact file and some damaged ones must decode"
        );
    }
}
