//! TLS to PostgreSQL against the real server `tools/services.sh` starts with a throwaway CA:
//! `sslmode=require` with the CA as `sslrootcert` gives an encrypted store that works; a
//! certificate from another CA, or one no public root vouches for, is refused at once with the
//! reason, never downgraded to clear text.

mod common;

use bianmin_town::store::{PgStore, TownStore};

struct Tls {
    url: String,
    ca: String,
    other_ca: String,
    db: common::backends::TestDb,
}

/// The TLS URL of a fresh test database, or `None` when the services are not running (and not
/// required).
fn tls() -> Option<Tls> {
    let db = common::backends::test_db()?;
    let base = std::env::var("BIANMIN_TEST_DATABASE_TLS_URL")
        .expect("tools/services.sh sets BIANMIN_TEST_DATABASE_TLS_URL with the database URL");
    let name = db.url.split('?').next()?.rsplit('/').next()?.to_string();
    Some(Tls {
        url: base.replace("/postgres?", &format!("/{name}?")),
        ca: std::env::var("BIANMIN_TEST_DATABASE_CA").unwrap(),
        other_ca: std::env::var("BIANMIN_TEST_DATABASE_OTHER_CA").unwrap(),
        db,
    })
}

/// How many of the server's TCP connections to `db` are encrypted, and how many are not.
fn tcp_connections(admin_url: &str, db: &str) -> (i64, i64) {
    let (admin, db) = (admin_url.to_string(), db.to_string());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        let row = c
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.datname = $1 AND a.client_addr IS NOT NULL",
                &[&db],
            )
            .unwrap();
        (row.get(0), row.get(1))
    })
    .join()
    .unwrap()
}

#[test]
fn require_with_the_servers_ca_encrypts_and_anything_else_is_refused() {
    let Some(t) = tls() else {
        eprintln!(
            "no BIANMIN_TEST_DATABASE_URL: PostgreSQL TLS case skipped (tools/test.sh runs it)"
        );
        return;
    };
    let db_name = t
        .url
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // The CA that signed the server's certificate: migrations run, the store works, and every
    // TCP connection the server sees from it is encrypted.
    let with_ca = format!("{}&sslrootcert={}", t.url, t.ca);
    let store = PgStore::open(&with_ca, 4).unwrap();
    assert!(store.is_tls());
    assert_eq!(store.catalog_head().unwrap(), None);
    assert!(store.devices().unwrap().is_empty());
    let admin = std::env::var("BIANMIN_TEST_DATABASE_URL").unwrap();
    let (encrypted, clear) = tcp_connections(&admin, &db_name);
    assert!(encrypted >= 1, "no encrypted connection seen");
    assert_eq!(clear, 0);
    drop(store);

    // Another CA: refused at the handshake, with the reason.
    let err = PgStore::open(&format!("{}&sslrootcert={}", t.url, t.other_ca), 4)
        .err()
        .expect("another CA's trust must not reach this server")
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // No root given: the public roots do not vouch for a private CA.
    let err = PgStore::open(&t.url, 4)
        .err()
        .expect("a private CA is not publicly trusted")
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    drop(t.db);
}
