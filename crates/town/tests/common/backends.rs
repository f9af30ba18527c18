//! The storage backends every store test runs against: sled always, PostgreSQL when
//! `BIANMIN_TEST_DATABASE_URL` names a server (`tools/test.sh` starts one and sets it, with
//! `BIANMIN_REQUIRE_SERVICES=1`, under which a missing server fails the test instead of skipping it).

use std::sync::Arc;

use bianmin_town::store::{AdminStore, FileAdmin, PgStore, SledStore, TownStore};

/// A fresh, empty store of one backend, and what keeps it alive.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn TownStore>,
    pub admin: Arc<dyn AdminStore>,
    /// The data directory (the sled database, or only attachments for PostgreSQL).
    pub dir: tempfile::TempDir,
    pub pg: Option<TestDb>,
}

/// A database of its own on the test server, dropped at the end.
pub struct TestDb {
    pub url: String,
    admin_url: String,
    name: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // The blocking client must not run on an async test's runtime thread.
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// The test server's URL, if any; panics when the services are required but absent.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("BIANMIN_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("BIANMIN_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "BIANMIN_REQUIRE_SERVICES=1 but BIANMIN_TEST_DATABASE_URL is not set: start the services (tools/services.sh)"
            );
            None
        }
    }
}

/// A new empty database on the test server. The admin URL's path must be a database name
/// (`postgresql:///postgres?host=...`); the new one replaces it.
pub fn test_db() -> Option<TestDb> {
    let admin_url = pg_admin_url()?;
    let name = format!("bm_{}", hex::encode(rand::random::<[u8; 8]>()));
    let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
    let (prefix, _db) = base.rsplit_once('/').expect("the database URL has a path");
    let url = if query.is_empty() {
        format!("{prefix}/{name}")
    } else {
        format!("{prefix}/{name}?{query}")
    };
    let (a, n) = (admin_url.clone(), name.clone());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&a, postgres::NoTls).expect("test database server");
        c.batch_execute(&format!("CREATE DATABASE \"{n}\""))
            .expect("create test database");
    })
    .join()
    .unwrap();
    Some(TestDb {
        url,
        admin_url,
        name,
    })
}

/// Opens a PostgreSQL store off any async runtime (the blocking client needs that).
pub fn open_pg(url: &str) -> Arc<PgStore> {
    let url = url.to_string();
    std::thread::spawn(move || Arc::new(PgStore::open(&url, 16).expect("open PostgreSQL store")))
        .join()
        .unwrap()
}

/// Every backend this run can test.
pub fn backends() -> Vec<Backend> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let sled = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    out.push(Backend {
        name: "sled",
        store: sled,
        admin: Arc::new(FileAdmin::new(dir.path())),
        dir,
        pg: None,
    });
    if let Some(db) = test_db() {
        let pg = open_pg(&db.url);
        out.push(Backend {
            name: "postgres",
            store: pg.clone(),
            admin: pg,
            dir: tempfile::tempdir().unwrap(),
            pg: Some(db),
        });
    }
    out
}
