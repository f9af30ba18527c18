//! ID-number reader benchmark: reads synthetic ID-card photos (DejaVu Sans Mono digits) and
//! reports exact / unsure / wrong and the time per photo.
//!
//! `cargo bench -p bianmin-scan --features font --bench idread -- [SET] [N] [WxH]`
//! with SET one of `tuning`, `held-out` (cards filling 0.3–0.5 of the frame), `tuning-large`,
//! `held-out-large` (0.5–0.9) (defaults: held-out, 200 photos, 4000x3000 = a 12 MP phone
//! photo). Only the tuning sets may be looked at photo by photo (`-v` prints each reading).

use bianmin_scan::idread::read_id;
use bianmin_scan::idsynth::{self, FontFace};
use bianmin_scan::CancelToken;
use std::time::{Duration, Instant};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let verbose = args.iter().any(|a| a == "-v");
    let args: Vec<&String> = args.iter().filter(|a| *a != "-v").collect();
    let set = args.first().map_or("held-out", |s| s.as_str());
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let size = args
        .get(2)
        .and_then(|s| s.split_once('x'))
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .unwrap_or((4000, 3000));
    let font = FontFace::open(std::path::Path::new(FONT)).expect("fonts-dejavu-core is installed");
    let specs = match set {
        "tuning" => idsynth::id_tuning_set(n, size),
        "tuning-large" => idsynth::id_large_tuning_set(n, size),
        "held-out-large" => idsynth::id_large_held_out_set(n, size),
        _ => idsynth::id_held_out_set(n, size),
    };
    let (mut exact, mut unsure, mut wrong) = (0, 0, 0);
    let mut times: Vec<Duration> = Vec::new();
    for f in &specs {
        let photo = idsynth::render_id_front(f, &font);
        let t0 = Instant::now();
        let r = read_id(&photo.jpeg, &CancelToken::new()).expect("synthetic photo decodes");
        times.push(t0.elapsed());
        let verdict = match &r.number {
            Some(n) if *n == f.number => {
                exact += 1;
                "exact"
            }
            Some(_) => {
                wrong += 1;
                "WRONG"
            }
            None => {
                unsure += 1;
                "unsure"
            }
        };
        if verbose && set.starts_with("tuning") {
            let best: String = r
                .chars
                .iter()
                .map(|c| c.alternatives.first().map_or('?', |a| a.0))
                .collect();
            let low: Vec<String> = r
                .chars
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let a = c.alternatives.first()?;
                    let b = c.alternatives.get(1)?;
                    (a.1 - b.1 < 0.12 || a.1 < 0.5)
                        .then(|| format!("{i}:{}{:.2}/{}{:.2}", a.0, a.1, b.0, b.1))
                })
                .collect();
            println!(
                "{verdict:6} {} truth {} best {best} card {} cands {} {} | {}",
                f.photo.seed,
                f.number,
                r.card_found,
                r.candidates.len(),
                f.photo.describe(),
                low.join(" ")
            );
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{set}: {} photos {}x{}: exact {exact}, unsure {unsure}, wrong {wrong}; read time per photo median {:.0} ms, p90 {:.0} ms",
        specs.len(),
        size.0,
        size.1,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
    );
}
