//! The outbox against its promises: durable, encrypted, idempotent, and safe on a full or failing disk.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bianmin_engine::catalog::{Catalog, Item};
use bianmin_engine::outbox::disk::{write_atomic_with, Disk, RealDisk};
use bianmin_engine::outbox::{MemoryKeyStore, Outbox, OutboxOptions, StoreError};
use bianmin_engine::sync::SyncStore;
use bianmin_engine::validate::checksum_char;
use bianmin_protocol::sync::Receipt;
use bianmin_protocol::{
    AgentRef, Applicant, CaseState, Decision, DecisionEvent, Delivery, MissingItem,
};
use chrono::Utc;

const NAME: &str = "王秀英";

fn id_number() -> String {
    let first17 = "14042319560312004";
    format!("{first17}{}", checksum_char(first17.as_bytes()))
}

fn applicant() -> Applicant {
    Applicant {
        name: NAME.into(),
        id_number: id_number(),
        phone: "13934561234".into(),
        address: "古韩镇南关村".into(),
    }
}

fn agent() -> AgentRef {
    AgentRef {
        device_id: "dev-1".into(),
        name: "李代办".into(),
        village: "140423100201".into(),
    }
}

/// A photo with a distinctive byte run that must never appear on disk in clear.
fn photo(n: u8) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend(b"PLAINPHOTOMARKER".iter().cycle().take(20_000));
    v.push(n);
    v
}

/// V41 (农户改厕申请) with every required material photographed and answers filled.
fn complete_case(ob: &Outbox, item: &Item) -> String {
    let case = ob
        .create_draft(&item.code, applicant(), agent(), Utc::now())
        .unwrap();
    let guide = item.guide.as_ref().unwrap();
    let mut c = ob.get(&case.id).unwrap();
    c.answers = answers(item);
    ob.save_draft(&c).unwrap();
    let mut n = 0;
    for m in guide.materials.iter().filter(|m| m.required) {
        for _ in 0..m.pages.len() {
            n += 1;
            ob.add_page(&case.id, &m.key, &format!("{}-{n}.jpg", m.key), &photo(n))
                .unwrap();
        }
    }
    case.id
}

fn answers(item: &Item) -> BTreeMap<String, bianmin_protocol::Answer> {
    let id = id_number();
    item.guide
        .as_ref()
        .unwrap()
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.sample_answer(&id)))
        .collect()
}

fn open(dir: &Path) -> Outbox {
    Outbox::open(dir, &MemoryKeyStore([9; 32])).unwrap()
}

fn receipt(id: &str, version: u32) -> Receipt {
    Receipt {
        case_id: id.into(),
        version,
        content_sha256: "00".into(),
        received_at: Utc::now(),
        signature: String::new(),
    }
}

fn event(id: &str, version: u32, decision: Decision) -> DecisionEvent {
    DecisionEvent {
        case_id: id.into(),
        version,
        decision,
        by: "town-staff".into(),
        at: Utc::now(),
    }
}

#[test]
fn a_case_goes_through_the_outbox_and_a_correction_is_the_same_case() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let ob = open(dir.path());

    // An empty draft does not pass 初审, and says everything that is missing at once.
    let bare = ob
        .create_draft("V41", Applicant::default(), agent(), Utc::now())
        .unwrap();
    match ob.seal(&bare.id, item, Utc::now()) {
        Err(StoreError::Precheck { problems, .. }) => assert!(problems.len() >= 3, "{problems:?}"),
        other => panic!("expected a precheck failure, got {other:?}"),
    }

    let id = complete_case(&ob, item);
    let sealed = ob.seal(&id, item, Utc::now()).unwrap();
    assert_eq!(sealed.state, CaseState::Queued);
    assert!(matches!(
        ob.add_page(&id, "x", "x.jpg", &photo(1)),
        Err(StoreError::NotEditable { .. })
    ));
    let pending = ob.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    let first_page = &pending[0].materials[0].pages[0];
    assert_eq!(
        ob.read_attachment(&first_page.sha256, 0, usize::MAX)
            .unwrap(),
        ob.read_page(first_page).unwrap()
    );

    ob.mark_uploaded(&receipt(&id, 1)).unwrap();
    ob.mark_uploaded(&receipt(&id, 1)).unwrap();
    assert!(ob.pending().unwrap().is_empty());
    assert_eq!(ob.get(&id).unwrap().state, CaseState::Uploaded);

    let missing = vec![MissingItem {
        key: "id_card".into(),
        note: "身份证反面不清晰".into(),
    }];
    let corr = event(
        &id,
        1,
        Decision::CorrectionRequested {
            missing: missing.clone(),
            note: String::new(),
        },
    );
    ob.apply_town_event(7, &corr).unwrap();
    ob.apply_town_event(7, &corr).unwrap();
    let c = ob.get(&id).unwrap();
    assert_eq!(c.state, CaseState::CorrectionRequested);
    assert_eq!(c.correction, missing);
    assert_eq!(c.history.len(), 4, "the repeated event was applied once");

    ob.add_page(&id, "id_card", "id_card-retake.jpg", &photo(99))
        .unwrap();
    let v2 = ob.seal(&id, item, Utc::now()).unwrap();
    assert_eq!((v2.id.as_str(), v2.version), (id.as_str(), 2));
    let pending = ob.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].version, 2);
    assert_eq!(ob.list().unwrap().len(), 2, "no duplicate case");
}

/// A sealed V41 case the town received, accepted and completed with `delivery`.
fn completed_case(ob: &Outbox, item: &Item, delivery: Delivery) -> String {
    let id = complete_case(ob, item);
    ob.seal(&id, item, Utc::now()).unwrap();
    ob.mark_uploaded(&receipt(&id, 1)).unwrap();
    let deadline = Utc::now().date_naive() + chrono::Duration::days(5);
    ob.apply_town_event(1, &event(&id, 1, Decision::Accepted { deadline }))
        .unwrap();
    ob.apply_town_event(
        2,
        &event(
            &id,
            1,
            Decision::Completed {
                result: "已批准".into(),
                delivery,
            },
        ),
    )
    .unwrap();
    assert_eq!(ob.get(&id).unwrap().state, CaseState::Completed);
    id
}

#[test]
fn a_delivery_mark_waits_for_the_town_and_survives_an_index_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let (id, at) = {
        let ob = open(dir.path());
        let id = completed_case(&ob, item, Delivery::AgentDelivery);
        // Only a result the town gave the agent to bring can be marked.
        let mailed = completed_case(
            &ob,
            item,
            Delivery::Mail {
                carrier: "EMS".into(),
                tracking_number: "1".into(),
            },
        );
        assert!(matches!(
            ob.record_delivery(&mailed, "李代办", Utc::now()),
            Err(StoreError::NotForAgentDelivery { .. })
        ));

        let first = ob.record_delivery(&id, "李代办", Utc::now()).unwrap();
        // Pressing again keeps the first handover time and one queued mark.
        assert_eq!(
            ob.record_delivery(&id, "李代办", Utc::now()).unwrap(),
            first
        );
        let pending = ob.pending_deliveries().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (
                pending[0].case_id.as_str(),
                pending[0].person.as_str(),
                pending[0].at
            ),
            (id.as_str(), "李代办", first.at)
        );

        // A refusal leaves the queue with its reason; the agent may record it again.
        ob.delivery_settled(&id, Some("镇中心的办件状态已经变化"))
            .unwrap();
        assert!(ob.pending_deliveries().unwrap().is_empty());
        assert_eq!(
            ob.delivery(&id).unwrap().unwrap().refused.as_deref(),
            Some("镇中心的办件状态已经变化")
        );
        let again = ob.record_delivery(&id, "李代办", Utc::now()).unwrap();
        assert_eq!(again.refused, None);
        (id, again.at)
    };
    // A mark the agent saw as recorded survives losing the whole index.
    for f in walk(&dir.path().join("index")) {
        std::fs::write(&f, b"garbage, not a sled file").unwrap();
    }
    let ob = open(dir.path());
    let pending = ob.pending_deliveries().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].case_id.as_str(), pending[0].at),
        (id.as_str(), at)
    );

    ob.delivery_settled(&id, None).unwrap();
    assert!(ob.pending_deliveries().unwrap().is_empty());
    assert!(ob.delivery(&id).unwrap().unwrap().sent);
    ob.apply_town_event(3, &event(&id, 1, Decision::Delivered))
        .unwrap();
    let c = ob.get(&id).unwrap();
    assert_eq!(c.state, CaseState::Delivered);
    assert!(matches!(
        c.last_decision,
        Some(Decision::Completed {
            delivery: Delivery::AgentDelivery,
            ..
        })
    ));
}

#[test]
fn precheck_marks_ready_and_a_retake_keeps_the_page_order() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let ob = open(dir.path());

    let bare = ob
        .create_draft("V41", Applicant::default(), agent(), Utc::now())
        .unwrap();
    assert!(matches!(
        ob.precheck(&bare.id, item, Utc::now()),
        Err(StoreError::Precheck { .. })
    ));
    assert_eq!(
        ob.get(&bare.id).unwrap().state,
        CaseState::Draft,
        "a failed 初审 changes nothing"
    );

    let id = complete_case(&ob, item);
    let ready = ob.precheck(&id, item, Utc::now()).unwrap();
    assert_eq!(ready.state, CaseState::Ready);
    assert_eq!(ob.get(&id).unwrap().state, CaseState::Ready);

    // Retake the first page of the first material: same slot, and the case needs 初审 again.
    let before = ob.get(&id).unwrap().materials[0].clone();
    let retaken = ob
        .replace_page(&id, &before.key, 0, "retake.jpg", &photo(200))
        .unwrap();
    let after = ob.get(&id).unwrap();
    assert_eq!(after.state, CaseState::Draft);
    assert_eq!(after.materials[0].pages.len(), before.pages.len());
    assert_eq!(after.materials[0].pages[0], retaken);
    assert_eq!(after.materials[0].pages[1..], before.pages[1..]);
    assert_eq!(ob.read_page(&retaken).unwrap(), photo(200));
    // An index past the end appends.
    ob.replace_page(&id, &before.key, 99, "extra.jpg", &photo(201))
        .unwrap();
    assert_eq!(
        ob.get(&id).unwrap().materials[0].pages.len(),
        before.pages.len() + 1
    );
    assert_eq!(
        ob.seal(&id, item, Utc::now()).unwrap().state,
        CaseState::Queued
    );
}

#[test]
fn nothing_personal_is_readable_on_disk_and_everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let id = {
        let ob = open(dir.path());
        let id = complete_case(&ob, item);
        ob.seal(&id, item, Utc::now()).unwrap();
        ob.put_secret("signing_key", b"SECRETKEYMATERIAL").unwrap();
        id
    };
    let id_no = id_number();
    let needles: [&[u8]; 4] = [
        NAME.as_bytes(),
        id_no.as_bytes(),
        b"PLAINPHOTOMARKER",
        b"SECRETKEYMATERIAL",
    ];
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n),
                "{} holds {:?} in clear",
                entry.display(),
                String::from_utf8_lossy(n)
            );
        }
    }
    let ob = open(dir.path());
    let c = ob.get(&id).unwrap();
    assert_eq!(c.applicant.name, NAME);
    assert_eq!(ob.pending().unwrap().len(), 1);
    assert_eq!(
        ob.get_secret("signing_key").unwrap().unwrap(),
        b"SECRETKEYMATERIAL"
    );
    let summary = &ob.list().unwrap()[0];
    assert_eq!(summary.applicant, "王**");
    assert!(summary.id_number.starts_with("**************"));
    // A different device key opens nothing.
    drop(ob);
    let foreign = Outbox::open(dir.path(), &MemoryKeyStore([1; 32])).unwrap();
    assert!(matches!(foreign.get(&id), Err(StoreError::Tampered(_))));
}

#[test]
fn a_corrupt_index_is_rebuilt_from_the_case_files() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let (sealed_id, draft_id) = {
        let ob = open(dir.path());
        let a = complete_case(&ob, item);
        ob.seal(&a, item, Utc::now()).unwrap();
        let b = ob
            .create_draft("V41", applicant(), agent(), Utc::now())
            .unwrap()
            .id;
        (a, b)
    };
    // Wreck every file of the sled index.
    for f in walk(&dir.path().join("index")) {
        std::fs::write(&f, b"garbage, not a sled file").unwrap();
    }
    let ob = open(dir.path());
    assert_eq!(ob.get(&sealed_id).unwrap().state, CaseState::Queued);
    assert_eq!(ob.get(&draft_id).unwrap().state, CaseState::Draft);
    let pending = ob.pending().unwrap();
    assert_eq!(pending.len(), 1);
    for p in &pending[0].materials[0].pages {
        assert_eq!(ob.read_page(p).unwrap().len() as u64, p.bytes);
    }
    // Case numbers continue after the highest one seen: no reuse after a rebuild.
    let next = ob
        .create_draft("V41", applicant(), agent(), Utc::now())
        .unwrap()
        .id;
    assert!(next > draft_id, "{next} should follow {draft_id}");
}

/// A disk with little room left.
struct FullDisk;

impl Disk for FullDisk {
    fn available(&self, _: &Path) -> io::Result<u64> {
        Ok(1 << 20)
    }
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        RealDisk.write_atomic(path, bytes)
    }
}

/// A disk whose writes fail with ENOSPC after `budget` more bytes, halfway through a file.
struct FailingDisk {
    budget: AtomicU64,
}

impl Disk for FailingDisk {
    fn available(&self, _: &Path) -> io::Result<u64> {
        Ok(u64::MAX / 2)
    }
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        write_atomic_with(path, |f| {
            use std::io::Write;
            let left = self.budget.load(Ordering::SeqCst);
            if (bytes.len() as u64) <= left {
                self.budget.fetch_sub(bytes.len() as u64, Ordering::SeqCst);
                return f.write_all(bytes);
            }
            f.write_all(&bytes[..left as usize])?;
            self.budget.store(0, Ordering::SeqCst);
            Err(io::Error::from_raw_os_error(28))
        })
    }
}

#[test]
fn a_full_disk_refuses_captures_with_a_clear_message_and_keeps_what_was_saved() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open_with(
        dir.path(),
        &MemoryKeyStore([9; 32]),
        Arc::new(FullDisk),
        OutboxOptions::default(),
    )
    .unwrap();
    let err = ob
        .create_draft("V41", applicant(), agent(), Utc::now())
        .unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }));
    assert!(err.user_message().contains("存储空间不足"));
    assert!(ob.list().unwrap().is_empty());
}

#[test]
fn a_write_error_mid_photo_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FailingDisk {
        budget: AtomicU64::new(u64::MAX / 2),
    });
    let ob = Outbox::open_with(
        dir.path(),
        &MemoryKeyStore([9; 32]),
        disk.clone(),
        OutboxOptions::default(),
    )
    .unwrap();
    let id = ob
        .create_draft("V41", applicant(), agent(), Utc::now())
        .unwrap()
        .id;
    ob.add_page(&id, "id_card", "a.jpg", &photo(1)).unwrap();
    let before = ob.get(&id).unwrap();

    disk.budget.store(5_000, Ordering::SeqCst);
    let err = ob.add_page(&id, "id_card", "b.jpg", &photo(2)).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert_eq!(ob.get(&id).unwrap(), before, "the case did not change");
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert_eq!(blobs, 1, "only the first photo is stored");
    drop(ob);
    let ob = open(dir.path());
    assert_eq!(ob.get(&id).unwrap(), before);
    let page = &before.materials[0].pages[0];
    assert_eq!(ob.read_page(page).unwrap(), photo(1));
}

#[test]
fn photos_are_purged_after_confirmation_leaving_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let options = OutboxOptions {
        purge_after: std::time::Duration::from_secs(3600),
        ..OutboxOptions::default()
    };
    let ob = Outbox::open_with(
        dir.path(),
        &MemoryKeyStore([9; 32]),
        Arc::new(RealDisk),
        options,
    )
    .unwrap();
    let id = complete_case(&ob, item);
    ob.seal(&id, item, Utc::now()).unwrap();
    assert_eq!(
        ob.purge_confirmed(Utc::now() + chrono::Duration::days(60))
            .unwrap(),
        0,
        "nothing before the receipt"
    );
    ob.mark_uploaded(&receipt(&id, 1)).unwrap();
    assert_eq!(
        ob.purge_confirmed(Utc::now()).unwrap(),
        0,
        "kept while recent"
    );
    let removed = ob
        .purge_confirmed(Utc::now() + chrono::Duration::hours(2))
        .unwrap();
    assert!(removed > 0);
    let c = ob.get(&id).unwrap();
    let page = &c.materials[0].pages[0];
    assert!(matches!(ob.read_page(page), Err(StoreError::Purged(_))));
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        0
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_same_photo_in_two_cases_stays_readable_in_both() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let ob = open(dir.path());
    // complete_case photographs the same bytes for both cases; each case seals them with its own key.
    let a = complete_case(&ob, item);
    let b = complete_case(&ob, item);
    for id in [&a, &b] {
        let case = ob.get(id).unwrap();
        for (n, p) in case.materials.iter().flat_map(|m| &m.pages).enumerate() {
            assert_eq!(
                ob.read_page(p).unwrap(),
                photo(n as u8 + 1),
                "{id} page {}",
                n + 1
            );
        }
    }
    drop(ob);
    let ob = open(dir.path());
    let case = ob.get(&a).unwrap();
    let first = &case.materials[0].pages[0];
    assert_eq!(ob.read_page(first).unwrap(), photo(1));
}

#[test]
fn a_lost_index_is_rebuilt_and_a_stale_one_loses_to_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let item = catalog.item("V41").unwrap();
    let index_copy = tempfile::tempdir().unwrap();
    let (sealed, draft) = {
        let ob = open(dir.path());
        let draft = ob
            .create_draft("V41", applicant(), agent(), Utc::now())
            .unwrap()
            .id;
        ob.put_meta("server", b"https://town.example").unwrap();
        (complete_case(&ob, item), draft)
    };
    // Keep the index as it was before sealing: a power cut can leave sled this far behind.
    for f in walk(&dir.path().join("index")) {
        let to = index_copy
            .path()
            .join(f.strip_prefix(dir.path().join("index")).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    {
        let ob = open(dir.path());
        ob.seal(&sealed, item, Utc::now()).unwrap();
        ob.set_cursor(42).unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::rename(index_copy.path(), dir.path().join("index")).unwrap_or_else(|_| {
        // Across file systems: copy instead.
        for f in walk(index_copy.path()) {
            let to = dir
                .path()
                .join("index")
                .join(f.strip_prefix(index_copy.path()).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&f, &to).unwrap();
        }
    });
    let ob = open(dir.path());
    assert_eq!(
        ob.get(&sealed).unwrap().state,
        CaseState::Queued,
        "the sealed record file wins over the stale index"
    );
    assert_eq!(
        ob.pending().unwrap().len(),
        1,
        "and the case is in the send queue"
    );
    assert_eq!(
        ob.cursor().unwrap(),
        42,
        "metadata comes back from its files"
    );
    drop(ob);

    // No index at all: everything is rebuilt, and numbers continue after the highest on disk.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let ob = open(dir.path());
    assert_eq!(ob.get(&sealed).unwrap().state, CaseState::Queued);
    assert_eq!(ob.get(&draft).unwrap().state, CaseState::Draft);
    assert_eq!(
        ob.get_meta("server").unwrap().as_deref(),
        Some(&b"https://town.example"[..])
    );
    let next = ob
        .create_draft("V41", applicant(), agent(), Utc::now())
        .unwrap()
        .id;
    assert!(
        next > sealed && next > draft,
        "{next} is issued after {sealed} and {draft}"
    );
}
