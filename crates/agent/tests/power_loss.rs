//! Power-loss test: the agent's data directory lives on a file system that keeps only fsynced
//! bytes; the power is cut at random moments of `new`, of the crash loop, of `correct` and of
//! sync's applying decisions, and every case the CLI acknowledged must come back whole.
//!
//! A SIGKILL alone does not model a dead battery (the kernel still writes what a killed process
//! wrote), so each cycle kills the child and then cuts the power of `bianmin-powercut`'s FUSE
//! file system, which throws away every write, creation and rename that was not made durable.
//! After the cut the store is opened as the next start of the app would open it, and each
//! acknowledged id is checked: present, sealed, pages byte-identical, and no number issued twice.
//! Needs `/dev/fuse` and root, as CI has.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bianmin_agent::cases::{crash_photo, open_outbox};
use bianmin_powercut::{Failure, PowerCut};
use bianmin_protocol::sync::{DeviceRole, TownAction};
use bianmin_protocol::{CaseState, MissingItem};
use common::*;
use rand::{Rng, SeedableRng};

/// A data directory on the power-cut file system, and the tallies of a test.
struct Rig {
    fs: PowerCut,
    data: PathBuf,
    cycles: usize,
    acknowledged: usize,
    lost: Vec<String>,
    reissued: Vec<String>,
    _mount: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let mount = tempfile::tempdir().unwrap();
        let fs = PowerCut::mount(mount.path())
            .expect("mount the power-cut file system (needs /dev/fuse and root)");
        let data = fs.path().join("agent");
        // The phone has been in use: its data directory exists and is durable before the first
        // cut (a fresh one that vanishes whole is the easy case; the store makes it durable too).
        std::fs::create_dir(&data).unwrap();
        std::fs::File::open(fs.path()).unwrap().sync_all().unwrap();
        Rig {
            fs,
            data,
            cycles: 0,
            acknowledged: 0,
            lost: Vec::new(),
            reissued: Vec::new(),
            _mount: mount,
        }
    }

    fn spawn(&self, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Kills the child and cuts the power. Lines the child printed (acknowledgements) are returned.
    fn cut(
        &mut self,
        mut child: Child,
        lines: impl Iterator<Item = String>,
        mut printed: Vec<String>,
    ) -> Vec<String> {
        let _ = child.kill();
        printed.extend(lines);
        child.wait().unwrap();
        self.fs.cut().expect("power cut");
        self.cycles += 1;
        printed
    }

    fn report(&self, what: &str) {
        eprintln!(
            "power loss ({what}): {} cycles, {} acknowledged, {} lost, {} re-issued",
            self.cycles,
            self.acknowledged,
            self.lost.len(),
            self.reissued.len()
        );
    }
}

/// Runs `child` until it printed `wait_for` lines, or until a random moment, then cuts the power.
/// Half the cuts land right after an acknowledgement, the most dangerous moment for a store
/// that answers before its bytes are durable.
fn run_and_cut(
    rig: &mut Rig,
    rng: &mut rand::rngs::StdRng,
    args: &[&str],
    budget: Duration,
) -> Vec<String> {
    let mut child = rig.spawn(args);
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut printed = Vec::new();
    if rng.gen_bool(0.5) {
        let wait_for = rng.gen_range(1..3);
        while printed.len() < wait_for {
            match lines.next() {
                Some(l) => printed.push(l),
                None => break,
            }
        }
    } else {
        // Not synchronisation: a random moment so the cut lands anywhere in the work.
        let start = Instant::now();
        let at = budget.mul_f64(rng.gen_range(0.0..1.0));
        while start.elapsed() < at {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    rig.cut(child, lines, printed)
}

#[test]
fn power_cut_during_new_and_the_crash_loop_loses_no_acknowledged_case() {
    let mut rig = Rig::new();
    let work = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xB1A9_0011);
    let mut promised: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();

    // `new` with every material photographed: one case per run, its id printed once sealed.
    for cycle in 0..30 {
        let (args, photos) = complete_case_args(work.path(), 7 + cycle, 5000 + cycle);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.insert(0, "new");
        let printed = run_and_cut(&mut rig, &mut rng, &args, Duration::from_millis(400));
        for id in printed {
            rig.acknowledged += 1;
            if promised.insert(id.clone(), photos.clone()).is_some() {
                rig.reissued.push(id);
            }
        }
        check_promises(&mut rig, &promised);
    }
    rig.report("new");

    // The crash loop: sealed cases with 96 KB pages as fast as the store takes them.
    for _ in 0..30 {
        let printed = run_and_cut(
            &mut rig,
            &mut rng,
            &["crash-loop"],
            Duration::from_millis(600),
        );
        for id in printed {
            rig.acknowledged += 1;
            let seq: u64 = id.rsplit('-').next().unwrap().parse().unwrap();
            if promised
                .insert(
                    id.clone(),
                    (1..=crash_pages()).map(|n| crash_photo(seq, n)).collect(),
                )
                .is_some()
            {
                rig.reissued.push(id);
            }
        }
        check_promises(&mut rig, &promised);
    }
    rig.report("new + crash loop");
    assert!(
        rig.acknowledged >= 30,
        "the runs should have acknowledged cases: {}",
        rig.acknowledged
    );
    assert!(
        rig.lost.is_empty(),
        "acknowledged cases lost or damaged after a power cut: {:?}",
        rig.lost
    );
    assert!(
        rig.reissued.is_empty(),
        "case numbers issued twice: {:?}",
        rig.reissued
    );
}

/// Pages per crash-loop case (V41's required materials).
fn crash_pages() -> u32 {
    let catalog = bianmin_engine::catalog::Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    bianmin_agent::cases::required_pages(
        item,
        &bianmin_agent::cases::crash_applicant(0),
        &bianmin_agent::cases::crash_answers(item),
    )
    .iter()
    .map(|(_, pages)| *pages as u32)
    .sum()
}

/// Opens the store as the next start would and checks every promise; failures are tallied.
fn check_promises(rig: &mut Rig, promised: &BTreeMap<String, Vec<Vec<u8>>>) {
    let outbox = match open_outbox(&rig.data) {
        Ok(o) => o,
        Err(e) => panic!("the store does not open after a power cut: {e:#}"),
    };
    for (id, photos) in promised {
        let ok = match outbox.get(id) {
            Ok(case) => {
                let pages: Vec<Vec<u8>> = case
                    .materials
                    .iter()
                    .flat_map(|m| m.pages.iter())
                    .map(|p| outbox.read_page(p).unwrap_or_default())
                    .collect();
                case.state == CaseState::Queued && pages == *photos
            }
            Err(_) => false,
        };
        if !ok && !rig.lost.contains(id) {
            let found = outbox.get(id).map(|c| {
                (
                    c.state,
                    c.materials.iter().map(|m| m.pages.len()).sum::<usize>(),
                )
            });
            eprintln!("lost after cycle {}: {id}: {found:?}", rig.cycles);
            rig.lost.push(id.clone());
        }
    }
}

/// What the town and the phone hold of each case, after the phone synced everything.
fn converged(state: &bianmin_town::AppState, data: &Path, ids: &BTreeSet<String>) -> Vec<String> {
    let outbox = open_outbox(data).unwrap();
    let mut differ = Vec::new();
    for id in ids {
        let town = state.store.case(id).unwrap();
        let phone = outbox.get(id).ok();
        match (town, phone) {
            (Some(t), Some(p)) if t.case.state == p.state && t.case.version == p.version => {}
            (t, p) => differ.push(format!(
                "{id}: town {:?} v{:?}, phone {:?} v{:?}",
                t.as_ref().map(|t| t.case.state),
                t.as_ref().map(|t| t.case.version),
                p.as_ref().map(|p| p.state),
                p.as_ref().map(|p| p.version)
            )),
        }
    }
    differ
}

#[test]
fn power_cut_during_sync_and_correct_loses_no_decision_and_no_corrected_case() {
    // The town serves from this runtime's workers while the test thread drives the agent binary.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let town_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, addr) = rt.block_on(serve_town(town_dir.path()));
    let url = format!("http://{addr}");
    let mut rig = Rig::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xB1A9_0012);
    let data = rig.data.clone();

    let c = code(&state, DeviceRole::Agent, Some(VILLAGE));
    let o = agent(
        &data,
        &[
            "enroll",
            "--server",
            &url,
            "--code",
            &c,
            "--person",
            "李代办",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    rig.fs.cut().unwrap();
    assert_eq!(
        status(&data)["enrolled"],
        true,
        "an acknowledged enrolment must survive a power cut"
    );

    // Six cases, sent and acknowledged by the town.
    let mut ids = BTreeSet::new();
    for seed in 0..6 {
        let (id, _) = new_complete_case(&data, work.path(), 100 + seed, 200 + seed);
        ids.insert(id);
    }
    let o = agent(&data, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));

    // The town decides: three need 补正, three are accepted.
    let staff = rt.block_on(staff_transport(&state, addr));
    let to_correct: Vec<String> = ids.iter().take(3).cloned().collect();
    for id in &ids {
        let action = if to_correct.contains(id) {
            TownAction::RequestCorrection {
                missing: vec![MissingItem {
                    key: "id_card".into(),
                    note: "身份证反面不清晰".into(),
                }],
                note: String::new(),
            }
        } else {
            TownAction::Accept
        };
        rt.block_on(staff.act(id, &staff_act(action))).unwrap();
    }

    // Sync runs that apply those decisions, cut at random moments; then one run without a cut,
    // after which phone and town agree on every case.
    for _ in 0..10 {
        run_and_cut(&mut rig, &mut rng, &["sync"], Duration::from_millis(300));
    }
    let o = agent(&data, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));
    let differ = converged(&state, &data, &ids);
    assert!(
        differ.is_empty(),
        "decisions lost by a power cut during sync: {differ:?}"
    );

    // `correct`, cut at random moments: an acknowledged correction stays sealed as version 2.
    let mut corrected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, id) in to_correct.iter().enumerate() {
        let photo = work.path().join(format!("fix-{i}.jpg"));
        let bytes = crash_photo(9000 + i as u64, 1);
        std::fs::write(&photo, &bytes).unwrap();
        let material = format!("id_card={}", photo.display());
        for _ in 0..6 {
            let printed = run_and_cut(
                &mut rig,
                &mut rng,
                &["correct", id, "--material", &material],
                Duration::from_millis(200),
            );
            if printed.iter().any(|l| l == id) {
                rig.acknowledged += 1;
                corrected.insert(id.clone(), bytes.clone());
            }
            check_corrections(&mut rig, &corrected);
            if corrected.contains_key(id) {
                break;
            }
        }
        if !corrected.contains_key(id) {
            // Never acknowledged before a cut: the agent does it again.
            let o = agent(&data, &["correct", id, "--material", &material]);
            assert!(o.status.success(), "{}", text(&o));
        }
    }
    let o = agent(&data, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));
    let differ = converged(&state, &data, &ids);
    assert!(
        differ.is_empty(),
        "phone and town disagree after corrections: {differ:?}"
    );
    for id in &to_correct {
        let t = state.store.case(id).unwrap().unwrap();
        assert_eq!(
            t.case.version, 2,
            "{id} reached the town as one case, version 2"
        );
        assert_eq!(t.versions.len(), 2, "{id}: no duplicate versions");
    }
    rig.report("sync + correct");
    assert!(
        rig.acknowledged >= 1,
        "no correction was acknowledged before a cut"
    );
    assert!(
        rig.lost.is_empty(),
        "acknowledged corrections lost after a power cut: {:?}",
        rig.lost
    );
}

/// Every acknowledged correction is still sealed as version 2 with its new page.
fn check_corrections(rig: &mut Rig, corrected: &BTreeMap<String, Vec<u8>>) {
    let outbox = open_outbox(&rig.data).unwrap();
    for (id, fix) in corrected {
        let ok = outbox.get(id).is_ok_and(|case| {
            let pages: Vec<Vec<u8>> = case
                .materials
                .iter()
                .flat_map(|m| m.pages.iter())
                .map(|p| outbox.read_page(p).unwrap_or_default())
                .collect();
            case.state == CaseState::Queued && case.version == 2 && pages.contains(fix)
        });
        if !ok && !rig.lost.contains(id) {
            rig.lost.push(id.clone());
        }
    }
}

#[test]
fn a_disk_failing_mid_run_gives_a_clear_error_and_keeps_every_acknowledged_case() {
    let mut rig = Rig::new();
    let mut promised: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let pages = crash_pages();
    for failure in [Failure::Io, Failure::Full, Failure::Io] {
        let mut child = rig.spawn(&["crash-loop"]);
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        let mut printed: Vec<String> = lines.by_ref().take(2).collect();
        // The card dies (or fills) while the loop is writing the next case.
        rig.fs.fail_with(failure);
        printed.extend(lines);
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(2),
            "{failure:?}: the CLI reports the error and exits 2, it does not panic (101)"
        );
        rig.acknowledged += printed.len();
        for id in printed {
            let seq: u64 = id.rsplit('-').next().unwrap().parse().unwrap();
            promised.insert(id, (1..=pages).map(|n| crash_photo(seq, n)).collect());
        }
        rig.fs.cut().unwrap();
        rig.cycles += 1;
        check_promises(&mut rig, &promised);
    }
    // What the failing disk says, in English for the log, and the Chinese the app shows.
    rig.fs.fail_with(Failure::Full);
    let o = agent(&rig.data, &["crash-loop", "--count", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error:") && !err.contains("panicked"),
        "a clear error, not a panic: {err}"
    );
    rig.fs.heal();
    rig.report("failing disk");
    assert!(
        rig.lost.is_empty(),
        "acknowledged cases lost when the disk failed: {:?}",
        rig.lost
    );
    assert!(promised.len() >= 6);
}
