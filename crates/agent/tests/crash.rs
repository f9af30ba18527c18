//! Crash test: the agent is SIGKILLed at random moments while creating cases; nothing it reported is lost.
//!
//! A child `bianmin-agent crash-loop` creates sealed cases with 96 KB photos and prints each id
//! only once it is durable. The test kills it after a random number of printed ids plus a random
//! extra moment (so kills land inside photo writes, sled flushes and renames), then opens the
//! store and checks every printed case is there, sealed, with photos that decrypt to the bytes
//! written. 200 cycles on one data directory.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bianmin_agent::cases::{crash_photo, open_outbox};
use bianmin_protocol::CaseState;
use rand::{Rng, SeedableRng};

const CYCLES: usize = 200;

#[test]
fn killed_at_random_moments_the_outbox_loses_nothing_it_promised() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xB1A9_0001);
    let mut promised: BTreeSet<String> = BTreeSet::new();
    for cycle in 0..CYCLES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bianmin-agent"))
            .arg("--data")
            .arg(&data)
            .arg("crash-loop")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wait_for = rng.gen_range(0..3);
        let mut printed = Vec::new();
        while printed.len() < wait_for {
            match lines.next() {
                Some(Ok(id)) => printed.push(id),
                _ => panic!("cycle {cycle}: the crash loop stopped on its own"),
            }
        }
        // Not synchronisation: a random extra moment so the kill lands anywhere in the next case.
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..40_000)));
        child.kill().unwrap();
        // Ids printed between our last read and the kill were promised too.
        for line in lines.map_while(Result::ok) {
            printed.push(line);
        }
        child.wait().unwrap();

        let outbox = open_outbox(&data)
            .unwrap_or_else(|e| panic!("cycle {cycle}: store does not open: {e:#}"));
        for id in &printed {
            assert!(
                promised.insert(id.clone()),
                "cycle {cycle}: case number {id} issued twice"
            );
            let case = outbox
                .get(id)
                .unwrap_or_else(|e| panic!("cycle {cycle}: printed case {id} lost: {e}"));
            assert_eq!(case.state, CaseState::Queued, "cycle {cycle}: {id}");
            let seq: u64 = id.rsplit('-').next().unwrap().parse().unwrap();
            let mut n = 0;
            for m in &case.materials {
                for p in &m.pages {
                    n += 1;
                    assert_eq!(
                        outbox.read_page(p).unwrap(),
                        crash_photo(seq, n),
                        "cycle {cycle}: {id} page {n}"
                    );
                }
            }
            assert!(n > 0);
        }
        // Earlier promises still hold (cheap check: the record opens and stays sealed).
        if cycle % 20 == 19 {
            for id in &promised {
                assert_eq!(outbox.get(id).unwrap().state, CaseState::Queued);
            }
            assert!(outbox.queued() >= promised.len());
        }
    }
    assert!(
        promised.len() >= CYCLES / 2,
        "the loop should have made progress: {}",
        promised.len()
    );
}
