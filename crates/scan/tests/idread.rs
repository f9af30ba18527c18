//! The ID-number reader on held-out synthetic ID-card photos: never a wrong number, and most
//! photos read. Figures and timings come from `benches/idread.rs`.

use bianmin_scan::idread::read_id;
use bianmin_scan::idsynth::{self, IdFront};
use bianmin_scan::synth::TextFace;
use bianmin_scan::CancelToken;

/// DejaVu Sans Mono, from Debian's fonts-dejavu-core (tools/deps.sh).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";

/// Exact readings required of the 40 held-out photos of each set at 2000x1500: measured 26 and
/// 28 (of 40), minus a margin of three and four.
const EXACT_FLOOR: usize = 23;
const LARGE_EXACT_FLOOR: usize = 24;

struct Font(ab_glyph::FontVec);

impl TextFace for Font {
    fn coverage(&self, c: char, size: usize) -> Option<Vec<f32>> {
        use ab_glyph::{Font as _, ScaleFont as _};
        let scale = ab_glyph::PxScale::from(size as f32 * 0.92);
        let glyph = self.0.glyph_id(c).with_scale_and_position(
            scale,
            ab_glyph::point(
                size as f32 * 0.04,
                self.0.as_scaled(scale).ascent() + size as f32 * 0.02,
            ),
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

fn font() -> Font {
    let bytes = std::fs::read(FONT).expect("fonts-dejavu-core is installed (tools/deps.sh)");
    Font(ab_glyph::FontVec::try_from_vec(bytes).expect("a font"))
}

fn read(f: &IdFront, font: &Font) -> Option<String> {
    let photo = idsynth::render_id_front(f, font);
    read_id(&photo.jpeg, &CancelToken::new())
        .expect("synthetic photo decodes")
        .number
}

/// Reads every photo of `set`: (exact, unsure, wrong readings described).
fn score(set: &[IdFront], font: &Font) -> (usize, usize, Vec<String>) {
    let (mut exact, mut unsure, mut wrong) = (0, 0, Vec::new());
    for f in set {
        match read(f, font) {
            Some(n) if n == f.number => exact += 1,
            Some(n) => wrong.push(format!(
                "{}: read {n}, truth {}",
                f.photo.describe(),
                f.number
            )),
            None => unsure += 1,
        }
    }
    (exact, unsure, wrong)
}

#[test]
fn held_out_id_photos_are_read_exactly_or_not_at_all() {
    let font = font();
    let set = idsynth::id_held_out_set(40, (2000, 1500));
    let turns: std::collections::BTreeSet<u8> = set.iter().map(|f| f.turn).collect();
    assert_eq!(turns.len(), 4, "the set covers all four quarter turns");
    let (exact, unsure, wrong) = score(&set, &font);
    println!(
        "held-out ID photos: exact {exact}, unsure {unsure}, wrong {}",
        wrong.len()
    );
    assert!(wrong.is_empty(), "wrong numbers: {wrong:#?}");
    assert!(exact >= EXACT_FLOOR, "only {exact} of 40 read");
}

#[test]
fn held_out_large_cards_are_read_exactly_or_not_at_all() {
    // Cards filling 0.5-0.9 of the frame, as agents shoot them.
    let font = font();
    let set = idsynth::id_large_held_out_set(40, (2000, 1500));
    let turns: std::collections::BTreeSet<u8> = set.iter().map(|f| f.turn).collect();
    assert_eq!(turns.len(), 4, "the set covers all four quarter turns");
    assert!(set.iter().all(|f| (0.5..0.9).contains(&f.photo.fill)));
    let (exact, unsure, wrong) = score(&set, &font);
    println!(
        "held-out large ID cards: exact {exact}, unsure {unsure}, wrong {}",
        wrong.len()
    );
    assert!(wrong.is_empty(), "wrong numbers: {wrong:#?}");
    assert!(exact >= LARGE_EXACT_FLOOR, "only {exact} of 40 read");
}

#[test]
fn a_photo_without_a_card_reads_nothing() {
    // A page photo (no ID card in it) from the page corpus.
    let spec = bianmin_scan::synth::Spec::plain("page", bianmin_scan::synth::Kind::TextPage, 3);
    let photo = bianmin_scan::synth::render(&bianmin_scan::synth::Spec {
        raw_size: (1200, 900),
        ..spec
    });
    let r = read_id(&photo.jpeg, &CancelToken::new()).unwrap();
    assert_eq!(r.number, None);
}

#[test]
fn a_number_with_a_changed_digit_is_refused_by_the_verifier() {
    let font = font();
    let f = idsynth::id_tuning_set(1, (2000, 1500)).remove(0);
    let photo = idsynth::render_id_front(&f, &font);
    let r =
        bianmin_scan::idread::read_id_with(&photo.jpeg, &|_| false, &CancelToken::new()).unwrap();
    assert_eq!(
        r.number, None,
        "a verifier refusing everything leaves no number"
    );
    assert!(r.candidates.is_empty());
}

#[test]
fn not_an_image_is_an_error() {
    let e = read_id(b"hello", &CancelToken::new()).unwrap_err();
    assert_eq!(e, bianmin_scan::ScanError::NotAnImage);
}
