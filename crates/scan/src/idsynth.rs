//! Synthetic photos of the front of a resident ID card with a known, valid ID number: the test
//! and benchmark material for the ID-number reader ([`crate::idread`]).
//!
//! The card front follows the real layout (fields on the left, portrait on the right, the
//! 公民身份号码 line along the bottom with the 18 characters from about a third of the card's
//! width). Field text and the label are glyph-like strokes; the number is drawn with a real
//! font through [`TextFace`] (the tests use DejaVu Sans Mono, see ARCHITECTURE.md). The card is
//! then photographed by [`crate::synth`]'s camera: turned by 0/90/180/270 degrees plus tilt,
//! perspective, lighting gradients, hand and edge shadows, blur, noise, EXIF rotation, JPEG.

use crate::idnumber;
use crate::synth::{photograph, Background, Canvas, Kind, Spec, SynthPhoto, TextFace, INK};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One synthetic ID-card photo: the camera's spec and the number printed on the card.
#[derive(Clone, Debug)]
pub struct IdFront {
    pub photo: Spec,
    /// The 18-character number on the card (valid checksum, plausible birth date).
    pub number: String,
    /// Quarter turns of the card in the photo before tilt (0..=3).
    pub turn: u8,
}

/// First seeds of the ID tuning and held-out sets (disjoint from each other and from the page
/// sets). Thresholds of the reader may be chosen by looking at the tuning set only.
const ID_TUNING_SEED: u64 = 90_000_000;
const ID_HELD_OUT_SEED: u64 = 120_000_000;
/// First seeds of the large-card tuning and held-out sets: cards filling 0.5–0.9 of the frame
/// width, as agents shoot them (added beside the original sets, whose photos keep their seeds).
const ID_LARGE_TUNING_SEED: u64 = 150_000_000;
const ID_LARGE_HELD_OUT_SEED: u64 = 180_000_000;
/// Share of the frame the card fills: the original sets' narrow cards and the large ones.
const FILL_NARROW: std::ops::Range<f32> = 0.3..0.5;
const FILL_LARGE: std::ops::Range<f32> = 0.5..0.9;

/// A random valid ID number: a region code, a birth date 1930..2015, a sequence and the
/// GB 11643 check character.
pub fn random_number(r: &mut StdRng) -> String {
    let province = idnumber::PROVINCES[r.gen_range(0..idnumber::PROVINCES.len())];
    let region = province * 10_000 + r.gen_range(1..20u32) * 100 + r.gen_range(1..30u32);
    let year = r.gen_range(1930..2016u32);
    let month = r.gen_range(1..=12u32);
    let day = r.gen_range(1..=idnumber::days_in_month(year, month));
    let seq = r.gen_range(0..1000u32);
    let body = format!("{region:06}{year:04}{month:02}{day:02}{seq:03}");
    let check = idnumber::check_char(body.as_bytes()).expect("17 digits");
    format!("{body}{check}")
}

/// One random ID-card photo from `seed` (stored size `raw_size`), the card filling 0.3–0.5 of
/// the frame.
pub fn id_front(seed: u64, raw_size: (u32, u32)) -> IdFront {
    id_front_filling(seed, raw_size, FILL_NARROW)
}

/// As [`id_front`], the card filling a share of the frame drawn from `fill` (the synthetic
/// camera still keeps every corner inside the frame).
pub fn id_front_filling(seed: u64, raw_size: (u32, u32), fill: std::ops::Range<f32>) -> IdFront {
    let mut r = StdRng::seed_from_u64(seed ^ 0x1D_CA4D_F0E7);
    let number = random_number(&mut r);
    let turn = r.gen_range(0..4u8);
    let background = [
        Background::Wood,
        Background::Cloth,
        Background::Desk,
        Background::LightTable,
        Background::Tiles,
        Background::Newsprint,
    ][r.gen_range(0..6)];
    let tilt = if r.gen_bool(0.2) {
        r.gen_range(-20.0..20.0)
    } else {
        r.gen_range(-6.0..6.0)
    };
    let photo = Spec {
        name: "id_front",
        kind: Kind::IdCard,
        seed,
        orientation: [1, 1, 3, 6, 6, 8][r.gen_range(0..6)],
        tilt_deg: turn as f32 * 90.0 + tilt,
        perspective: r.gen_range(0.0..0.06),
        fill: r.gen_range(fill),
        background,
        gradient: if r.gen_bool(0.6) {
            r.gen_range(0.1..0.5)
        } else {
            r.gen_range(0.0..0.1)
        },
        hand_shadow: r.gen_bool(0.3),
        blur: r.gen_bool(0.7),
        noise: r.gen_range(2.0..7.0),
        raw_size,
        gradient_angle: r.gen_range(0.0..std::f32::consts::TAU),
        edge_shadow: if r.gen_bool(0.3) {
            r.gen_range(0.25..0.5)
        } else {
            0.0
        },
        finger: r.gen_bool(0.1),
        fold: 0.0,
        out_of_frame: 0.0,
        second_doc: false,
    };
    IdFront {
        photo,
        number,
        turn,
    }
}

/// `n` ID photos for tuning the reader (looking at these is allowed).
pub fn id_tuning_set(n: usize, raw_size: (u32, u32)) -> Vec<IdFront> {
    (0..n as u64)
        .map(|i| id_front(ID_TUNING_SEED + i, raw_size))
        .collect()
}

/// `n` held-out ID photos: only ever scored, never used to choose a threshold.
pub fn id_held_out_set(n: usize, raw_size: (u32, u32)) -> Vec<IdFront> {
    (0..n as u64)
        .map(|i| {
            let mut f = id_front(ID_HELD_OUT_SEED + i * 7919, raw_size);
            f.photo.name = "id_held_out";
            f
        })
        .collect()
}

/// `n` large-card ID photos for tuning (cards filling 0.5–0.9 of the frame).
pub fn id_large_tuning_set(n: usize, raw_size: (u32, u32)) -> Vec<IdFront> {
    (0..n as u64)
        .map(|i| {
            let mut f = id_front_filling(ID_LARGE_TUNING_SEED + i, raw_size, FILL_LARGE);
            f.photo.name = "id_large";
            f
        })
        .collect()
}

/// `n` held-out large-card ID photos (cards filling 0.5–0.9 of the frame): only ever scored.
pub fn id_large_held_out_set(n: usize, raw_size: (u32, u32)) -> Vec<IdFront> {
    (0..n as u64)
        .map(|i| {
            let mut f = id_front_filling(ID_LARGE_HELD_OUT_SEED + i * 7919, raw_size, FILL_LARGE);
            f.photo.name = "id_large_held_out";
            f
        })
        .collect()
}

/// Where the number line sits on the 1011x638 card: left edge of the first character, top of the
/// character cells, character pitch and cell size (pixels).
const NUMBER_X: f32 = 340.0;
const NUMBER_Y: f32 = 530.0;
const PITCH: f32 = 32.0;
const CELL: usize = 52;

/// Renders the photo; the number's characters come from `digits`.
pub fn render_id_front(f: &IdFront, digits: &dyn TextFace) -> SynthPhoto {
    let mut rng = StdRng::seed_from_u64(f.photo.seed.wrapping_mul(31) ^ 0xCA4D);
    let (w, h) = (1011usize, 638usize);
    let tone = rng.gen_range(-12.0..8.0f32);
    let mut c = Canvas::new(w, h, [228.0 + tone, 232.0 + tone, 236.0 + tone]);
    // Faint background pattern (the real card has a guilloche print).
    for k in 0..14 {
        let y = 40.0 + k as f32 * 44.0;
        c.segment((0.0, y), (w as f32, y + 30.0), 1.5, [205.0, 215.0, 228.0]);
    }
    // Fields: 姓名, 性别/民族, 出生, 住址 (two lines), each a label and a value.
    let rows = [(60.0, 3), (130.0, 6), (200.0, 8), (270.0, 10), (330.0, 10)];
    for (i, &(y, n)) in rows.iter().enumerate() {
        if i != 4 {
            for g in 0..2 {
                c.glyph(
                    &mut rng,
                    60.0 + g as f32 * 34.0,
                    y,
                    30.0,
                    [60.0, 110.0, 170.0],
                );
            }
        }
        for g in 0..n {
            c.glyph(&mut rng, 170.0 + g as f32 * 40.0, y, 38.0, INK);
        }
    }
    // Portrait.
    c.fill_rect(640.0, 90.0, 900.0, 420.0, [200.0, 205.0, 212.0]);
    for y in 90..420 {
        for x in 640..900 {
            let (dx, dy) = ((x as f32 - 770.0) / 85.0, (y as f32 - 250.0) / 110.0);
            if dx * dx + dy * dy < 1.0 {
                c.px[y * w + x] = [120.0, 100.0, 95.0];
            }
        }
    }
    // 公民身份号码 label.
    for g in 0..6 {
        c.glyph(
            &mut rng,
            60.0 + g as f32 * 40.0,
            540.0,
            34.0,
            [60.0, 110.0, 170.0],
        );
    }
    // The number.
    for (i, ch) in f.number.chars().enumerate() {
        let Some(cov) = digits.coverage(ch, CELL) else {
            continue;
        };
        let x0 = (NUMBER_X + i as f32 * PITCH).round() as usize;
        let y0 = NUMBER_Y as usize;
        for j in 0..CELL {
            for k in 0..CELL {
                let a = cov[j * CELL + k];
                if a > 0.0 && x0 + k < w && y0 + j < h {
                    c.ink(x0 + k, y0 + j, INK, a.min(1.0));
                }
            }
        }
    }
    photograph(&f.photo, c.into_raster(), f.number.clone())
}

/// A TrueType/OpenType font read from a file, as a [`TextFace`] (the synthetic cards' digits).
#[cfg(feature = "font")]
pub struct FontFace(ab_glyph::FontVec);

#[cfg(feature = "font")]
impl FontFace {
    /// Loads the font at `path` (first face of a collection).
    pub fn open(path: &std::path::Path) -> Result<FontFace, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ab_glyph::FontVec::try_from_vec(bytes)
            .map(FontFace)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(feature = "font")]
impl TextFace for FontFace {
    fn coverage(&self, c: char, size: usize) -> Option<Vec<f32>> {
        use ab_glyph::{Font as _, ScaleFont as _};
        let id = self.0.glyph_id(c);
        if id.0 == 0 {
            return None;
        }
        let scale = ab_glyph::PxScale::from(size as f32 * 0.92);
        let sf = self.0.as_scaled(scale);
        let glyph = id.with_scale_and_position(
            scale,
            ab_glyph::point(size as f32 * 0.04, sf.ascent() + size as f32 * 0.02),
        );
        let outline = self.0.outline_glyph(glyph)?;
        let b = outline.px_bounds();
        let mut cov = vec![0f32; size * size];
        outline.draw(|x, y, v| {
            let (px, py) = (b.min.x as i32 + x as i32, b.min.y as i32 + y as i32);
            if px >= 0 && py >= 0 && (px as usize) < size && (py as usize) < size {
                cov[py as usize * size + px as usize] = v;
            }
        });
        Some(cov)
    }
}
