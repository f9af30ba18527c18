//! Benchmark (not a test), on 12 MP photos of the held-out corpus drawn with real Chinese text:
//!
//! 1. per-stage median times of the Rust pipeline beside the reference OpenCV pipeline
//!    (`opencv_reference.py`) on the A4 photos, one thread and all cores;
//! 2. per page type, lost area and corner error of the Rust scan and of OpenCV's, and how many
//!    Rust scans were flagged for checking;
//! 3. legibility: character error rate of Tesseract (`chi_sim`, Debian) reading the Rust scan, the
//!    OpenCV scan and the raw photo, against the text the generator drew.
//!
//! Run: `bash crates/scan/benches/run_bench.sh` (creates the OpenCV venv on first use).
//! Env: SCAN_BENCH_PHOTOS (held-out photos, default 40), SCAN_BENCH_REPS (default 5),
//! SCAN_BENCH_ROUNDS (default 3), SCAN_BENCH_PYTHON (default `.bench-venv/bin/python` at the
//! workspace root), SCAN_BENCH_FONT (default Noto Sans CJK SC from Debian's fonts-noto-cjk),
//! SCAN_BENCH_KEEP=DIR to keep photos and outputs for inspection.

use bianmin_scan::synth::{self, SynthPhoto, TextFace};
use bianmin_scan::{scan, CancelToken, Mode, Point, ScanOptions, StageTimings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STAGES: [&str; 6] = ["decode", "detect", "warp", "normalise", "encode", "total"];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stage(t: &StageTimings, s: &str) -> f64 {
    match s {
        "decode" => ms(t.decode),
        "detect" => ms(t.detect),
        "warp" => ms(t.warp),
        "normalise" => ms(t.normalize),
        "encode" => ms(t.encode),
        _ => ms(t.total()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per photo: stage -> median ms, plus output bytes.
type Table = BTreeMap<String, (BTreeMap<String, f64>, usize)>;

fn run_rust(
    photos: &[(String, Vec<u8>)],
    reps: usize,
    threads: usize,
    keep: Option<&Path>,
) -> Table {
    let mut out = Table::new();
    let opts = ScanOptions {
        threads,
        ..ScanOptions::default()
    };
    let cancel = CancelToken::new();
    for (name, bytes) in photos {
        // Warm-up run (first-touch page faults, CPU feature detection).
        let first = scan(bytes, &opts, &cancel).expect("scan");
        if let Some(k) = keep {
            std::fs::write(k.join(format!("{name}.rust.jpg")), &first.data).expect("write");
        }
        let runs: Vec<StageTimings> = (0..reps)
            .map(|_| scan(bytes, &opts, &cancel).expect("scan").timings)
            .collect();
        let med = STAGES
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    median(runs.iter().map(|t| stage(t, s)).collect()),
                )
            })
            .collect();
        out.insert(name.clone(), (med, first.data.len()));
    }
    out
}

/// Runs the OpenCV reference over every photo in `dir`; per photo its stage medians, output
/// bytes and the corners it cut with.
fn run_opencv_full(
    python: &Path,
    script: &Path,
    dir: &Path,
    reps: usize,
    threads: usize,
    keep: Option<&Path>,
) -> Option<(Table, BTreeMap<String, [Point; 4]>)> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(dir)
        .arg(reps.to_string())
        .arg(threads.to_string());
    if let Some(k) = keep {
        cmd.arg(k);
    }
    let o = cmd.output().ok()?;
    if !o.status.success() {
        eprintln!(
            "opencv reference failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    let mut out = Table::new();
    let mut corners = BTreeMap::new();
    for (name, row) in v["photos"].as_object()? {
        let med = STAGES
            .iter()
            .map(|s| (s.to_string(), row[*s].as_f64().unwrap_or(f64::NAN)))
            .collect();
        out.insert(
            name.clone(),
            (med, row["bytes"].as_u64().unwrap_or(0) as usize),
        );
        if let Some(c) = row["corners"].as_array() {
            let p: Vec<Point> = c
                .iter()
                .map(|xy| {
                    Point::new(
                        xy[0].as_f64().unwrap_or(0.0) as f32,
                        xy[1].as_f64().unwrap_or(0.0) as f32,
                    )
                })
                .collect();
            if p.len() == 4 {
                corners.insert(name.clone(), [p[0], p[1], p[2], p[3]]);
            }
        }
    }
    Some((out, corners))
}

fn run_opencv(
    python: &Path,
    script: &Path,
    dir: &Path,
    reps: usize,
    threads: usize,
    keep: Option<&Path>,
) -> Option<Table> {
    run_opencv_full(python, script, dir, reps, threads, keep).map(|r| r.0)
}

/// Noto Sans CJK through `ab_glyph`, rasterised into a square cell.
struct Font(ab_glyph::FontVec);

impl TextFace for Font {
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

/// Tesseract's reading of an image (chi_sim, one uniform block of text), or None without it.
fn ocr(path: &Path) -> Option<String> {
    let o = Command::new("tesseract")
        .arg(path)
        .arg("stdout")
        .args(["-l", "chi_sim", "--psm", "6"])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Character error rate: edit distance over the truth's length, whitespace ignored.
fn cer(truth: &str, read: &str) -> f64 {
    let t: String = truth.chars().filter(|c| !c.is_whitespace()).collect();
    let r: String = read.chars().filter(|c| !c.is_whitespace()).collect();
    strsim::levenshtein(&t, &r) as f64 / t.chars().count().max(1) as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn max_corner_error(a: &[Point; 4], b: &[Point; 4]) -> f32 {
    a.iter().zip(b).map(|(p, q)| p.dist(*q)).fold(0.0, f32::max)
}

/// Per photo and stage, the median over rounds.
fn merge(rounds: &[Table]) -> Table {
    let mut out = Table::new();
    for (name, (_, bytes)) in &rounds[0] {
        let med = STAGES
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    median(rounds.iter().map(|t| t[name].0[*s]).collect()),
                )
            })
            .collect();
        out.insert(name.clone(), (med, *bytes));
    }
    out
}

/// Mean over photos of the per-photo medians.
fn avg(t: &Table, s: &str) -> f64 {
    t.values().map(|(m, _)| m[s]).sum::<f64>() / t.len() as f64
}

fn avg_kb(t: &Table) -> f64 {
    t.values().map(|(_, b)| *b as f64 / 1024.0).sum::<f64>() / t.len() as f64
}

fn main() {
    let reps: usize = std::env::var("SCAN_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let n_photos: usize = std::env::var("SCAN_BENCH_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("SCAN_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../../.bench-venv/bin/python"));
    let script = root.join("benches/opencv_reference.py");
    let keep = std::env::var_os("SCAN_BENCH_KEEP").map(PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("photos");
    let pages_dir = tmp.path().join("pages");
    let out_dir = keep.clone().unwrap_or_else(|| tmp.path().join("out"));
    for d in [&dir, &pages_dir, &out_dir] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let font_path = std::env::var_os("SCAN_BENCH_FONT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc".into());
    // Index 2 of Debian's collection is the Simplified Chinese face.
    let font = std::fs::read(&font_path)
        .ok()
        .and_then(|b| ab_glyph::FontVec::try_from_vec_and_index(b, 2).ok())
        .map(Font);
    if font.is_none() {
        eprintln!(
            "no CJK font at {} (Debian fonts-noto-cjk): pages get stroke glyphs and no OCR score",
            font_path.display()
        );
    }

    eprintln!("rendering {n_photos} held-out photos at 4000x3000 with real text...");
    let specs = synth::held_out_set(n_photos, (4000, 3000));
    let photos: Vec<SynthPhoto> = std::thread::scope(|sc| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let font = font.as_ref();
        let specs = &specs;
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    specs
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, s)| (i, synth::render_with(s, font.map(|f| f as &dyn TextFace))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, SynthPhoto)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("render"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, p)| p).collect()
    });
    let name_of = |i: usize, p: &SynthPhoto| format!("{i:03}_{}", p.spec.kind.label());
    let mut page_photos = Vec::new();
    for (i, p) in photos.iter().enumerate() {
        std::fs::write(dir.join(format!("{}.jpg", name_of(i, p))), &p.jpeg).expect("write photo");
        if p.mode == Mode::Page {
            std::fs::write(pages_dir.join(format!("{}.jpg", name_of(i, p))), &p.jpeg)
                .expect("write photo");
            page_photos.push((name_of(i, p), p.jpeg.clone()));
        }
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    // Speed. The machine is shared, so load drifts: Rust and OpenCV runs alternate in rounds and
    // each photo's figure is the median over the rounds' medians, so both see the same conditions.
    let rounds: usize = std::env::var("SCAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut r1s = Vec::new();
    let mut c1s = Vec::new();
    let mut rns = Vec::new();
    let mut cns = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}: Rust 1 thread, OpenCV 1 thread, Rust {cores} threads, OpenCV all threads ({reps} reps per photo)", round + 1);
        r1s.push(run_rust(&page_photos, reps, 1, None));
        c1s.extend(run_opencv(&python, &script, &pages_dir, reps, 1, None));
        rns.push(run_rust(&page_photos, reps, cores, None));
        cns.extend(run_opencv(&python, &script, &pages_dir, reps, 0, None));
    }
    let rust1 = merge(&r1s);
    let rust_n = merge(&rns);
    let cv1 = if c1s.is_empty() {
        None
    } else {
        Some(merge(&c1s))
    };
    let cv_n = if cns.is_empty() {
        None
    } else {
        Some(merge(&cns))
    };

    println!(
        "\nbianmin-scan pipeline vs OpenCV reference — {} held-out 12 MP photos of A4 pages; per photo the median of {rounds} alternating rounds x {reps} runs; mean over photos (ms)\n",
        page_photos.len()
    );
    println!("| stage | Rust 1T | OpenCV 1T | Rust/OpenCV 1T | Rust {cores}T | OpenCV {cores}T | Rust/OpenCV {cores}T |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for s in STAGES {
        let (r1, rn) = (avg(&rust1, s), avg(&rust_n, s));
        let c1 = cv1.as_ref().map(|t| avg(t, s));
        let cn = cv_n.as_ref().map(|t| avg(t, s));
        let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "n/a".into());
        let ratio = |a: f64, b: Option<f64>| {
            b.map(|b| format!("{:.2}", a / b))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "| {s} | {r1:.1} | {} | {} | {rn:.1} | {} | {} |",
            f(c1),
            ratio(r1, c1),
            f(cn),
            ratio(rn, cn)
        );
    }
    let kb_cv = cv1.as_ref().map(avg_kb);
    println!(
        "| KB per page | {:.0} | {} | {} | | | |",
        avg_kb(&rust1),
        kb_cv
            .map(|k| format!("{k:.0}"))
            .unwrap_or_else(|| "n/a".into()),
        kb_cv
            .map(|k| format!("{:.2}", avg_kb(&rust1) / k))
            .unwrap_or_else(|| "n/a".into())
    );
    if cv1.is_none() {
        println!("\nOpenCV reference not run: create the venv with `bash crates/scan/benches/setup_venv.sh`.");
    }

    // Detection and legibility on every held-out photo (cards too: both pipelines get them).
    eprintln!("scoring detection and OCR on {} photos...", photos.len());
    let cv = run_opencv_full(&python, &script, &dir, 1, 1, Some(&out_dir));
    #[derive(Default)]
    struct Row {
        n: usize,
        lost_zero: usize,
        lost_flagged: usize,
        lost_silent: usize,
        flagged: usize,
        cv_lost_zero: usize,
        err: Vec<f64>,
        cv_err: Vec<f64>,
        cer: [Vec<f64>; 3],
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut damaged = Vec::new();
    for (i, p) in photos.iter().enumerate() {
        let name = name_of(i, p);
        let opts = if p.mode == Mode::Card {
            ScanOptions::card()
        } else {
            ScanOptions::default()
        };
        let s = scan(&p.jpeg, &opts, &CancelToken::new()).expect("scan");
        let rust_out = out_dir.join(format!("{name}.rust.{}", s.format.extension()));
        std::fs::write(&rust_out, &s.data).expect("write");
        let lost = p.lost_area(&s.corners);
        let cv_corners = cv.as_ref().and_then(|c| c.1.get(&name).copied());
        let cv_lost = cv_corners.map(|c| p.lost_area(&c));
        let mut cers = [None, None, None];
        if !p.text.is_empty() {
            cers[0] = ocr(&rust_out).map(|t| cer(&p.text, &t));
            cers[1] = cv
                .as_ref()
                .and_then(|_| ocr(&out_dir.join(format!("{name}.opencv.jpg"))))
                .map(|t| cer(&p.text, &t));
            cers[2] = ocr(&dir.join(format!("{name}.jpg"))).map(|t| cer(&p.text, &t));
        }
        for key in [p.spec.kind.label().to_string(), "all".to_string()] {
            let r = rows.entry(key).or_default();
            r.n += 1;
            r.lost_zero += (lost <= 0.002) as usize;
            r.lost_flagged += (lost > 0.002 && s.needs_check()) as usize;
            r.lost_silent += (lost > 0.002 && !s.needs_check()) as usize;
            r.flagged += s.needs_check() as usize;
            r.cv_lost_zero += cv_lost.map(|l| (l <= 0.002) as usize).unwrap_or(0);
            if p.spec.page_in_frame() {
                if !s.needs_check() {
                    r.err.push(max_corner_error(&s.corners, &p.corners) as f64);
                }
                if let Some(c) = cv_corners {
                    r.cv_err.push(max_corner_error(&c, &p.corners) as f64);
                }
            }
            for (k, c) in cers.iter().enumerate() {
                if let Some(c) = c {
                    r.cer[k].push(*c);
                }
            }
        }
        let cv_says = cv_lost
            .map(|l| format!("{l:.3}"))
            .unwrap_or_else(|| "n/a".into());
        eprintln!(
            "  {name:<18} {:<22} conf {:.2} lost {lost:.3} (OpenCV {cv_says}) CER rust/opencv/raw {:?}  {}",
            s.reason.code(),
            s.confidence,
            cers.map(|c| c.map(|v| (v * 1000.0).round() / 1000.0)),
            p.spec.describe()
        );
        if cv_lost.map(|l| l > 0.02).unwrap_or(false) && lost <= 0.002 {
            damaged.push(format!("{name}: {} — OpenCV lost {cv_says} of the page; Rust {} (confidence {:.2}), lost {lost:.3}", p.spec.describe(), s.reason.describe(), s.confidence));
        }
    }
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let p95 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * 0.95).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!("\nheld-out detection, 12 MP ({} photos; lost area > 0.002 counts as lost; corner error in px on a 4000x3000 photo, Rust over unflagged scans)\n", photos.len());
    println!("| page type | photos | Rust lost zero | Rust lost, flagged | Rust lost, silent | Rust flagged | OpenCV lost zero | Rust corner err median / p95 | OpenCV corner err median / p95 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (k, r) in &rows {
        println!(
            "| {k} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} |",
            r.n,
            r.lost_zero,
            r.lost_flagged,
            r.lost_silent,
            r.flagged,
            r.cv_lost_zero,
            med(&r.err),
            p95(&r.err),
            med(&r.cv_err),
            p95(&r.cv_err)
        );
    }
    println!("\nlegibility: Tesseract chi_sim character error rate against the drawn text, mean / median per page type\n");
    println!("| page type | photos read | Rust scan | OpenCV scan | raw photo |");
    println!("|---|---:|---:|---:|---:|");
    for (k, r) in &rows {
        let f = |v: &Vec<f64>| {
            if v.is_empty() {
                "n/a".to_string()
            } else {
                format!("{:.3} / {:.3}", mean(v), med(v))
            }
        };
        println!(
            "| {k} | {} | {} | {} | {} |",
            r.cer[0].len(),
            f(&r.cer[0]),
            f(&r.cer[1]),
            f(&r.cer[2])
        );
    }
    if !damaged.is_empty() {
        println!("\nphotos where OpenCV cut off part of the page and Rust did not:");
        for d in &damaged {
            println!("  {d}");
        }
    }
}
