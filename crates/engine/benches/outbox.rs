//! Benchmark: durable enqueue of a case with three 300 KB photos, Bianmin's outbox beside SQLite.
//!
//! Run: `cargo bench -p bianmin-engine --features bench --bench outbox`
//!
//! Both sides do the same durable work per case: store three photos and the case record so that
//! they survive a power cut, then put the case in the send queue, committing at the same points
//! (draft, each photo, seal). The SQLite baselines use WAL with `synchronous=FULL`, once with photos
//! as BLOBs and once with photos as files written like the outbox writes them. The Bianmin side
//! additionally encrypts everything, and every change rewrites the case's record file (temp file,
//! fsync, rename, fsync of the directory), which is what makes it survive a power cut.
//! An autosave (one form answer changed on a draft) is timed beside SQLite's durable UPDATE.
//! Then a fresh process opens an outbox holding 1,000 queued cases (reconciling its index with the
//! record files, as every open does), lists it and reads the queue, and reports the time to open
//! and its peak resident memory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bianmin_engine::catalog::Catalog;
use bianmin_engine::outbox::{MemoryKeyStore, Outbox};
use bianmin_engine::sync::SyncStore;
use bianmin_engine::validate::checksum_char;
use bianmin_protocol::{AgentRef, Applicant};
use chrono::Utc;

const ROUNDS: usize = 200;
const PHOTO: usize = 300 * 1024;

fn photo(seed: u64) -> Vec<u8> {
    // Incompressible bytes, like JPEG data.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..PHOTO)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn applicant(i: usize) -> Applicant {
    let first17 = format!("14042319800101{:03}", i % 1000);
    Applicant {
        name: format!("王秀英{i}"),
        id_number: format!("{first17}{}", checksum_char(first17.as_bytes())),
        phone: "13934561234".into(),
        address: "古韩镇南关村".into(),
    }
}

fn agent() -> AgentRef {
    AgentRef {
        device_id: "BENCH1".into(),
        name: String::new(),
        village: "140423100201".into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn bianmin(dir: &Path, photos: &[Vec<u8>]) -> Vec<Duration> {
    let catalog = Catalog::embedded().unwrap();
    // V33 (被征地农民丧葬费死亡证明) needs few materials; the three photos go to its first material.
    let item = catalog.item("V33").unwrap().clone();
    let mut item = item;
    let guide = item.guide.as_mut().unwrap();
    guide.fields.clear();
    guide.materials.truncate(1);
    guide.materials[0].count = 3;
    let key = guide.materials[0].key.clone();
    let ob = Outbox::open(dir, &MemoryKeyStore([7; 32])).unwrap();
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let t = Instant::now();
        let c = ob
            .create_draft(&item.code, applicant(i), agent(), Utc::now())
            .unwrap();
        for (n, p) in photos.iter().enumerate() {
            ob.add_page(
                &c.id,
                &key,
                &format!("p{n}.jpg"),
                &[p.as_slice(), &(i as u64).to_le_bytes()].concat(),
            )
            .unwrap();
        }
        ob.seal(&c.id, &item, Utc::now()).unwrap();
        times.push(t.elapsed());
    }
    times
}

fn autosave_bianmin(dir: &Path) -> Vec<Duration> {
    let ob = Outbox::open(dir, &MemoryKeyStore([7; 32])).unwrap();
    let mut case = ob
        .create_draft("V33", applicant(1), agent(), Utc::now())
        .unwrap();
    (0..ROUNDS)
        .map(|i| {
            case.answers.insert("note".into(), format!("第{i}次修改"));
            let t = Instant::now();
            ob.save_draft(&case).unwrap();
            t.elapsed()
        })
        .collect()
}

fn autosave_sqlite(dir: &Path) -> Vec<Duration> {
    std::fs::create_dir_all(dir).unwrap();
    let db = rusqlite::Connection::open(dir.join("outbox.sqlite")).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE cases (id TEXT PRIMARY KEY, body TEXT NOT NULL);
         INSERT INTO cases VALUES ('c', '');",
    )
    .unwrap();
    (0..ROUNDS)
        .map(|i| {
            let body = serde_json::to_string(&(applicant(1), format!("第{i}次修改"))).unwrap();
            let t = Instant::now();
            db.execute("UPDATE cases SET body = ?1 WHERE id = 'c'", [&body])
                .unwrap();
            t.elapsed()
        })
        .collect()
}

/// How the SQLite baseline keeps photos.
#[derive(Clone, Copy)]
enum Photos {
    /// As BLOB rows in the database.
    Blobs,
    /// As files with the same atomic protocol as the outbox (temp, fsync, rename, fsync dir),
    /// rows holding their names: the same work the outbox does.
    Files,
}

fn sqlite(dir: &Path, photos: &[Vec<u8>], how: Photos) -> Vec<Duration> {
    let db = rusqlite::Connection::open(dir.join("outbox.sqlite")).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE cases (id TEXT PRIMARY KEY, body TEXT NOT NULL, state TEXT NOT NULL);
         CREATE TABLE photos (sha TEXT, case_id TEXT, bytes BLOB NOT NULL);
         CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL);",
    )
    .unwrap();
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let t = Instant::now();
        let id = format!("140423100201-20261128-BENCH1-{i:04}");
        let body = serde_json::to_string(&applicant(i)).unwrap();
        // Draft first (as the app autosaves it), then photos, then seal: one durable commit each,
        // the same points at which the outbox promises durability.
        db.execute("INSERT INTO cases VALUES (?1, ?2, 'draft')", (&id, &body))
            .unwrap();
        for p in photos {
            let bytes = [p.as_slice(), &(i as u64).to_le_bytes()].concat();
            let sha = bianmin_engine::transport::sha256_hex(&bytes);
            match how {
                Photos::Blobs => {
                    db.execute(
                        "INSERT INTO photos VALUES (?1, ?2, ?3)",
                        (&sha, &id, &bytes),
                    )
                    .unwrap();
                }
                Photos::Files => {
                    bianmin_engine::outbox::disk::write_atomic_with(
                        &dir.join(format!("{sha}.jpg")),
                        |f| std::io::Write::write_all(f, &bytes),
                    )
                    .unwrap();
                    db.execute(
                        "INSERT INTO photos VALUES (?1, ?2, ?3)",
                        (&sha, &id, &[] as &[u8]),
                    )
                    .unwrap();
                }
            }
        }
        let tx = db.unchecked_transaction().unwrap();
        tx.execute("UPDATE cases SET state = 'queued' WHERE id = ?1", [&id])
            .unwrap();
        tx.execute("INSERT INTO queue (case_id) VALUES (?1)", [&id])
            .unwrap();
        tx.commit().unwrap();
        times.push(t.elapsed());
    }
    times
}

fn peak_rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--measure") {
        // Child mode: a fresh process opens a full outbox like the app does at start.
        let dir = Path::new(&args[pos + 1]);
        let t = Instant::now();
        let ob = Outbox::open(dir, &MemoryKeyStore([7; 32])).unwrap();
        let open_us = t.elapsed().as_micros();
        let listed = ob.list().unwrap().len();
        let pending = ob.pending().unwrap().len();
        let (hwm, rss) = peak_rss_kib();
        println!("{listed} {pending} {hwm} {rss} {open_us}");
        return;
    }

    let photos: Vec<Vec<u8>> = (1..=3).map(photo).collect();
    let tmp = tempfile::tempdir().unwrap();
    let ours_dir = tmp.path().join("bianmin");
    let sql_dir = tmp.path().join("sqlite");
    let sql_files_dir = tmp.path().join("sqlite-files");
    std::fs::create_dir_all(&sql_dir).unwrap();
    std::fs::create_dir_all(&sql_files_dir).unwrap();
    let warm = tmp.path().join("warm");
    std::fs::create_dir_all(&warm).unwrap();
    let _ = sqlite(&warm, &photos[..1], Photos::Blobs);
    let mut ours = bianmin(&ours_dir, &photos);
    let mut theirs = sqlite(&sql_dir, &photos, Photos::Blobs);
    let mut theirs_files = sqlite(&sql_files_dir, &photos, Photos::Files);
    ours.sort();
    theirs.sort();
    theirs_files.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("durable enqueue of a case with 3 x 300 KB photos, {ROUNDS} cases each");
    let rows = [
        ("bianmin outbox (encrypted)", &ours),
        ("sqlite, photos as BLOBs", &theirs),
        ("sqlite, photos as files", &theirs_files),
    ];
    println!("{:<30} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    for (name, t) in rows {
        println!(
            "{:<30} {:>9.2} {:>9.2}",
            name,
            ms(percentile(t, 0.5)),
            ms(percentile(t, 0.99))
        );
    }
    for (name, t) in &rows[1..] {
        println!(
            "ratio bianmin / {name}: p50 {:.2}x, p99 {:.2}x",
            ms(percentile(&ours, 0.5)) / ms(percentile(t, 0.5)),
            ms(percentile(&ours, 0.99)) / ms(percentile(t, 0.99))
        );
    }

    // Autosave: one answer of a draft changed, durable when the call returns.
    let mut saves = autosave_bianmin(&tmp.path().join("autosave"));
    let mut sql_saves = autosave_sqlite(&tmp.path().join("autosave-sqlite"));
    saves.sort();
    sql_saves.sort();
    println!(
        "{:<30} {:>9.2} {:>9.2}",
        "autosave, bianmin outbox",
        ms(percentile(&saves, 0.5)),
        ms(percentile(&saves, 0.99))
    );
    println!(
        "{:<30} {:>9.2} {:>9.2}",
        "autosave, sqlite UPDATE",
        ms(percentile(&sql_saves, 0.5)),
        ms(percentile(&sql_saves, 0.99))
    );
    println!(
        "ratio autosave bianmin / sqlite: p50 {:.2}x, p99 {:.2}x",
        ms(percentile(&saves, 0.5)) / ms(percentile(&sql_saves, 0.5)),
        ms(percentile(&saves, 0.99)) / ms(percentile(&sql_saves, 0.99))
    );

    // Memory: 1,000 queued cases (small photos: memory, not disk, is measured here).
    let mem_dir = tmp.path().join("memory");
    {
        let catalog = Catalog::embedded().unwrap();
        let mut item = catalog.item("V33").unwrap().clone();
        let guide = item.guide.as_mut().unwrap();
        guide.fields.clear();
        guide.materials.truncate(1);
        guide.materials[0].count = 1;
        let key = guide.materials[0].key.clone();
        let ob = Outbox::open(&mem_dir, &MemoryKeyStore([7; 32])).unwrap();
        for i in 0..1000 {
            let c = ob
                .create_draft(&item.code, applicant(i), agent(), Utc::now())
                .unwrap();
            ob.add_page(&c.id, &key, "p.jpg", &photos[0][..4096 + i])
                .unwrap();
            ob.seal(&c.id, &item, Utc::now()).unwrap();
        }
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--measure")
        .arg(&mem_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [listed, pending, hwm, rss, open_us] = v[..] {
        println!(
            "fresh process with {listed} cases ({pending} queued) opened in {:.1} ms, listed, queue read: peak RSS {:.1} MiB, RSS {:.1} MiB",
            open_us as f64 / 1000.0,
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0
        );
    } else {
        println!(
            "memory measurement failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
