//! Unfinished uploads shared by every server over one PostgreSQL database and one S3-compatible
//! bucket (`s3s-fs`, started per test): a page begun on one server is resumed and finished on
//! another; racing commits of the same offset leave exactly one winner; bytes that do not hash to
//! their name are refused and nothing references them; and the embedded store (sled, with a
//! bucket or with local files) resumes an upload after a restart.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use bianmin_engine::transport::{Credential, Timeouts, Transport, TransportError};
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::objects::Objects;
use bianmin_town::store::partials::{Advance, Begin, Segment};
use bianmin_town::store::{AdminStore, PgStore, SledStore, Ticket, TownStore};
use bianmin_town::{app, AppState};
use common::backends::{backends, open_pg, test_db};
use common::s3::S3Server;
use common::sync::enrol_over_http;
use common::*;

/// Blocking store work off the test's async runtime.
async fn off<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn bucket(s3: &S3Server) -> Objects {
    Objects::from_url(&format!("s3://{}", common::s3::BUCKET), &s3.options()).unwrap()
}

/// Files under `dir`, recursively (s3s-fs keeps an object as a file; empty folders may stay).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn segments_in_bucket(s3: &S3Server, village: &str, sha: &str) -> Vec<PathBuf> {
    files_under(&s3.object_path(&format!("partial/{village}/{sha}")))
}

/// A server of its own (own data directory, own connection pool) over the shared database and
/// bucket, listening on 127.0.0.1:0.
async fn server(url: &str, data: &Path, objects: &Objects) -> (AppState, String) {
    let (u, d, o) = (url.to_string(), data.to_path_buf(), objects.clone());
    let state = off(move || {
        let pg = Arc::new(PgStore::open(&u, 8).unwrap());
        AppState::with_stores(&d, pg.clone(), pg)
            .unwrap()
            .with_objects(o)
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (state, format!("http://{addr}"))
}

/// A phone's transport with room for a debug build's pace.
fn phone(server: &str, d: &Device) -> Transport {
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: d.id.clone(),
            key: d.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            stall: Duration::from_secs(60),
        },
    )
    .unwrap()
}

fn agent_ticket(admin: &dyn AdminStore, village: &str) -> String {
    admin
        .issue_ticket(&Ticket {
            role: DeviceRole::Agent,
            village: Some(village.to_string()),
            town: village[..9].to_string(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
        })
        .unwrap()
}

/// Two servers, one database, one bucket, each with its own data directory.
struct Pair {
    s3: S3Server,
    _db: common::backends::TestDb,
    _dirs: [tempfile::TempDir; 2],
    a: (AppState, String),
    b: (AppState, String),
    pg: Arc<PgStore>,
    dev: Device,
}

async fn pair() -> Option<Pair> {
    let (Some(db), Some(s3)) = (test_db(), common::s3::start()) else {
        eprintln!("no PostgreSQL or S3 test server: nothing to test");
        return None;
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let objects = bucket(&s3);
    let a = server(&db.url, dirs[0].path(), &objects).await;
    let b = server(&db.url, dirs[1].path(), &objects).await;
    let url = db.url.clone();
    let pg = off(move || open_pg(&url)).await;
    let p = pg.clone();
    let code = off(move || agent_ticket(p.as_ref(), NANGUAN)).await;
    let (dev, _) = enrol_over_http(&a.1, &code, NANGUAN).await;
    Some(Pair {
        s3,
        _db: db,
        _dirs: dirs,
        a,
        b,
        pg,
        dev,
    })
}

fn rejected_offset(e: &TransportError) -> Option<(u16, String, Option<u64>)> {
    match e {
        TransportError::Rejected {
            status,
            code,
            upload_offset,
            ..
        } => Some((*status, code.clone(), *upload_offset)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_begun_on_one_server_is_finished_on_another() {
    let Some(p) = pair().await else { return };
    let (ta, tb) = (phone(&p.a.1, &p.dev), phone(&p.b.1, &p.dev));
    // 6 MiB: the second piece is over one 5 MiB part, so its segment is a multipart upload.
    let data = page(1301, 6 * 1024 * 1024 + 17);
    let sha = bianmin_town::files::sha256_hex(&data);
    let len = data.len() as u64;
    let cut = 300_000usize;

    let u = ta
        .upload_chunk(&sha, 0, len, data[..cut].to_vec())
        .await
        .unwrap();
    assert_eq!((u.offset, u.complete), (cut as u64, false));
    assert_eq!(
        segments_in_bucket(&p.s3, NANGUAN, &sha).len(),
        1,
        "the received bytes are a segment in the bucket"
    );

    // The other server knows where the upload stands.
    let u = tb.upload_offset(&sha).await.unwrap();
    assert_eq!(
        (u.offset, u.length, u.complete),
        (cut as u64, Some(len), false)
    );
    // A stale resend from 0 on it is told where to resume, and stores nothing.
    let e = tb
        .upload_chunk(&sha, 0, len, data[..cut].to_vec())
        .await
        .unwrap_err();
    assert_eq!(
        rejected_offset(&e),
        Some((409, "offset_mismatch".into(), Some(cut as u64))),
        "{e}"
    );
    assert_eq!(segments_in_bucket(&p.s3, NANGUAN, &sha).len(), 1);

    let u = tb
        .upload_chunk(&sha, cut as u64, len, data[cut..].to_vec())
        .await
        .unwrap();
    assert!(u.complete, "{u:?}");
    let stored = std::fs::read(p.s3.object_path(&format!("{}/{sha}", &sha[..2]))).unwrap();
    assert!(stored == data, "the bucket holds the page byte for byte");
    assert!(
        segments_in_bucket(&p.s3, NANGUAN, &sha).is_empty(),
        "segments deleted once the page is stored"
    );
    let (pg, s) = (p.pg.clone(), sha.clone());
    let (size, partial) = off(move || {
        (
            pg.attachment_size(&s).unwrap(),
            pg.partials().partial(NANGUAN, &s).unwrap(),
        )
    })
    .await;
    assert_eq!(size, Some(len));
    assert_eq!(partial, None, "the partial upload is forgotten");
    for (st, _) in [&p.a, &p.b] {
        assert!(
            files_under(&st.files.root().join("uploads")).is_empty(),
            "nothing on a server's own disk"
        );
    }
    // Both servers see it complete; a case references it through the first.
    assert!(ta.upload_offset(&sha).await.unwrap().complete);
    let id = p.dev.next_case_id();
    ta.submit(&p.dev.submission(&id, 1, &[&data]))
        .await
        .unwrap();
}

#[test]
fn eight_racers_on_one_offset_exactly_one_wins() {
    for b in backends() {
        let sha = bianmin_town::files::sha256_hex(b"race");
        let store = b.store.clone();
        let begun = store
            .partials()
            .begin_partial(NANGUAN, &sha, 1000, "DEV1", 8, 100)
            .unwrap();
        assert!(matches!(begun, Begin::Open(_)), "{}: {begun:?}", b.name);
        let barrier = Arc::new(Barrier::new(8));
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let (store, barrier, sha) = (store.clone(), barrier.clone(), sha.clone());
                std::thread::spawn(move || {
                    let seg = Segment {
                        start: 0,
                        attempt: format!("racer{i}"),
                        len: 100 + i,
                    };
                    barrier.wait();
                    (
                        seg.len,
                        store
                            .partials()
                            .advance_partial(NANGUAN, &sha, &seg, 101)
                            .unwrap(),
                    )
                })
            })
            .collect();
        let outcomes: Vec<(u64, Advance)> = racers.into_iter().map(|h| h.join().unwrap()).collect();
        let won: Vec<&(u64, Advance)> = outcomes
            .iter()
            .filter(|(_, a)| matches!(a, Advance::Won(_)))
            .collect();
        assert_eq!(won.len(), 1, "{}: {outcomes:?}", b.name);
        let winner = won[0].0;
        for (_, a) in &outcomes {
            match a {
                Advance::Won(p) => assert_eq!((p.offset, p.segments.len()), (winner, 1)),
                Advance::Lost(at) => assert_eq!(
                    *at, winner,
                    "{}: the loser learns the offset that won",
                    b.name
                ),
                Advance::Gone => panic!("{}: the upload vanished", b.name),
            }
        }
        let stored = store.partials().partial(NANGUAN, &sha).unwrap().unwrap();
        assert_eq!((stored.offset, stored.segments.len()), (winner, 1));
        // Past the declared length is refused; the rest completes it; a finished one is removed.
        let long = Segment {
            start: winner,
            attempt: "long".into(),
            len: 1001 - winner,
        };
        assert_eq!(
            store
                .partials()
                .advance_partial(NANGUAN, &sha, &long, 102)
                .unwrap(),
            Advance::Lost(winner),
            "{}",
            b.name
        );
        let rest = Segment {
            start: winner,
            attempt: "rest".into(),
            len: 1000 - winner,
        };
        assert!(matches!(
            store.partials().advance_partial(NANGUAN, &sha, &rest, 102).unwrap(),
            Advance::Won(p) if p.offset == 1000
        ));
        assert_eq!(
            store
                .partials()
                .begin_partial(NANGUAN, &sha, 999, "DEV1", 8, 103)
                .unwrap(),
            Begin::LengthMismatch(1000)
        );
        assert!(store
            .partials()
            .remove_partial(NANGUAN, &sha)
            .unwrap()
            .is_some());
        assert_eq!(
            store
                .partials()
                .advance_partial(NANGUAN, &sha, &rest, 104)
                .unwrap(),
            Advance::Gone
        );
        // A device may hold only so many; stale ones are taken away for their segments to go.
        for i in 0..2u8 {
            let s = bianmin_town::files::sha256_hex(&[i]);
            assert!(matches!(
                store
                    .partials()
                    .begin_partial(NANGUAN, &s, 10, "DEV2", 2, 200 + i as i64)
                    .unwrap(),
                Begin::Open(_)
            ));
        }
        let third = bianmin_town::files::sha256_hex(b"third");
        assert_eq!(
            store
                .partials()
                .begin_partial(NANGUAN, &third, 10, "DEV2", 2, 300)
                .unwrap(),
            Begin::TooManyOpen(2)
        );
        let stale = store.partials().take_stale_partials(201).unwrap();
        assert_eq!(stale.len(), 1, "{}: {stale:?}", b.name);
        assert_eq!(store.partials().all_partials().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_on_two_servers_commit_one_segment() {
    let Some(p) = pair().await else { return };
    let data = page(1303, 900_000);
    let sha = bianmin_town::files::sha256_hex(&data);
    let len = data.len() as u64;
    let half = 450_000usize;
    // Eight phones' worth of the same request (one device retrying through two servers).
    let mut tasks = Vec::new();
    for i in 0..8 {
        let server = if i % 2 == 0 { &p.a.1 } else { &p.b.1 };
        let t = phone(server, &p.dev);
        let (sha, chunk) = (sha.clone(), data[..half].to_vec());
        tasks.push(tokio::spawn(async move {
            t.upload_chunk(&sha, 0, len, chunk).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(u) => {
                assert_eq!(u.offset, half as u64);
                ok += 1;
            }
            // Told where to resume, or cut off (a newer request on the same server took over).
            Err(e) => match rejected_offset(&e) {
                Some((status, _, offset)) => {
                    assert!(status == 409 || status == 400, "{e}");
                    assert!(offset.is_some(), "{e}");
                }
                None => assert!(e.is_transient(), "{e}"),
            },
        }
    }
    let (pg, s) = (p.pg.clone(), sha.clone());
    let partial = off(move || pg.partials().partial(NANGUAN, &s).unwrap())
        .await
        .expect("open");
    // Exactly one request's bytes are committed, and only its segment is in the bucket.
    assert_eq!(partial.segments.len(), 1, "{partial:?}");
    assert!(ok <= 1, "{ok} requests were told they committed");
    assert_eq!(partial.offset, partial.segments[0].len);
    assert_eq!(segments_in_bucket(&p.s3, NANGUAN, &sha).len(), 1);
    // The page completes from there, on either server.
    let t = phone(&p.b.1, &p.dev);
    let at = t.upload_offset(&sha).await.unwrap().offset;
    assert_eq!(at, partial.offset);
    let u = t
        .upload_chunk(&sha, at, len, data[at as usize..].to_vec())
        .await
        .unwrap();
    assert!(u.complete);
    let stored = std::fs::read(p.s3.object_path(&format!("{}/{sha}", &sha[..2]))).unwrap();
    assert!(stored == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_hash_is_refused_and_nothing_references_it() {
    let Some(p) = pair().await else { return };
    let (ta, tb) = (phone(&p.a.1, &p.dev), phone(&p.b.1, &p.dev));
    let data = page(1304, 200_000);
    // Named after other bytes of the same length.
    let sha = bianmin_town::files::sha256_hex(&page(1305, 200_000));
    let len = data.len() as u64;
    ta.upload_chunk(&sha, 0, len, data[..100_000].to_vec())
        .await
        .unwrap();
    let e = tb
        .upload_chunk(&sha, 100_000, len, data[100_000..].to_vec())
        .await
        .unwrap_err();
    match &e {
        TransportError::Corrupt { .. } => {}
        other => assert_eq!(
            rejected_offset(other).map(|(s, c, _)| (s, c)),
            Some((422, "hash_mismatch".into())),
            "{other}"
        ),
    }
    assert!(
        !p.s3.object_path(&format!("{}/{sha}", &sha[..2])).exists(),
        "never stored under its name"
    );
    assert!(segments_in_bucket(&p.s3, NANGUAN, &sha).is_empty());
    let (pg, s) = (p.pg.clone(), sha.clone());
    let (size, held, partial) = off(move || {
        (
            pg.attachment_size(&s).unwrap(),
            pg.held_by(&s, NANGUAN).unwrap(),
            pg.partials().partial(NANGUAN, &s).unwrap(),
        )
    })
    .await;
    assert_eq!((size, held, partial), (None, false, None));
    assert_eq!(
        ta.upload_offset(&sha).await.unwrap().offset,
        0,
        "start again at 0"
    );
    // A case naming it is refused: the store holds no such page.
    let mut sub = p.dev.submission(&p.dev.next_case_id(), 1, &[&data]);
    sub.materials[0].pages[0].sha256 = sha.clone();
    let e = ta.submit(&sub).await.unwrap_err();
    assert_eq!(
        rejected_offset(&e).map(|(s, c, _)| (s, c)),
        Some((422, "missing_attachments".into())),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_resumes_after_a_restart() {
    let s3 = common::s3::start();
    if s3.is_none() {
        eprintln!("no S3 test server: the embedded store is tried with local files only");
    }
    let data = page(1306, 700_000);
    let sha = bianmin_town::files::sha256_hex(&data);
    let len = data.len() as u64;
    let cut = 250_000usize;
    for with_bucket in [false, true] {
        let objects = match (&s3, with_bucket) {
            (Some(s3), true) => Some(bucket(s3)),
            (None, true) => continue,
            _ => None,
        };
        let dir = tempfile::tempdir().unwrap();
        let open = |dir: &Path| {
            let store = Arc::new(SledStore::open(&dir.join("db")).unwrap());
            let state = AppState::with_store(dir, store.clone()).unwrap();
            match &objects {
                Some(o) => (state.with_objects(o.clone()), store),
                None => (state, store),
            }
        };
        let (state, store) = open(dir.path());
        let r = app(state.clone());
        let code = agent_ticket(state.admin.as_ref(), NANGUAN);
        let agent = {
            let dev = Device::fresh(NANGUAN);
            let req = bianmin_protocol::sync::EnrolRequest {
                code,
                device_id: dev.id.clone(),
                public_key: hex::encode(dev.key.verifying_key().to_bytes()),
                person: "测试".into(),
            };
            let (st, body) = send(&r, post_json("/v1/enrol", &req)).await;
            assert_eq!(st, axum::http::StatusCode::OK, "{body}");
            dev
        };
        let uri = format!("/v1/attachments/{sha}");
        let (st, body) = send(
            &r,
            agent.request("PATCH", &uri, data[..cut].to_vec(), Some((0, len))),
        )
        .await;
        assert_eq!(st, axum::http::StatusCode::OK, "{body}");
        // The server stops; everything it held is dropped, sled's lock with it.
        drop((r, state, store));
        let (state, store) = open(dir.path());
        let r = app(state.clone());
        let resp = send_raw(&r, agent.request("HEAD", &uri, Vec::new(), None)).await;
        let offset: u64 = resp.headers()[bianmin_protocol::sync::H_UPLOAD_OFFSET]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(offset, cut as u64, "bucket: {with_bucket}");
        let (st, body) = send(
            &r,
            agent.request("PATCH", &uri, data[cut..].to_vec(), Some((cut as u64, len))),
        )
        .await;
        assert_eq!(st, axum::http::StatusCode::OK, "{body}");
        assert!(body.contains("\"complete\":true"), "{body}");
        assert_eq!(store.attachment_size(&sha).unwrap(), Some(len));
        assert_eq!(store.partials().all_partials().unwrap(), vec![]);
        if let (Some(s3), true) = (&s3, with_bucket) {
            let stored = std::fs::read(s3.object_path(&format!("{}/{sha}", &sha[..2]))).unwrap();
            assert!(stored == data);
            assert!(segments_in_bucket(s3, NANGUAN, &sha).is_empty());
        } else {
            assert_eq!(
                std::fs::read(state.files.attachment_path(&sha)).unwrap(),
                data
            );
        }
    }
}
