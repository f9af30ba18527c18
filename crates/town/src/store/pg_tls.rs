//! How the PostgreSQL pool reaches its server: in clear (a unix socket or a private network,
//! `sslmode=disable` or `prefer`, the default), or over TLS that verifies the server
//! (`sslmode=require`).
//!
//! `require` here is what libpq calls `verify-full`: the certificate chain must lead to a trusted
//! root and name the host, because encryption to a server nobody checked protects nothing against
//! the man in the middle TLS is there for. The roots are the file given as `sslrootcert=FILE` (a
//! government network's private CA, the usual case) or else the Mozilla root program
//! (`webpki-roots`, compiled in, so no system store is needed). `prefer` does not try TLS at all:
//! its promise is only "maybe", and a half-configured TLS attempt that then falls back would hide
//! the misconfiguration; ask for `require` to get it. rustls runs on ring, like the listener's.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;

use postgres::config::SslMode;
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

type Manager<T> = PostgresConnectionManager<T>;

/// A pool of clear or TLS connections.
pub(super) enum Pool {
    Plain(r2d2::Pool<Manager<NoTls>>),
    Tls(r2d2::Pool<Manager<MakeRustlsConnect>>),
}

/// One pooled connection, whichever way it was made.
pub(super) enum Conn {
    Plain(r2d2::PooledConnection<Manager<NoTls>>),
    Tls(r2d2::PooledConnection<Manager<MakeRustlsConnect>>),
}

impl Deref for Conn {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        match self {
            Conn::Plain(c) => c,
            Conn::Tls(c) => c,
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        match self {
            Conn::Plain(c) => c,
            Conn::Tls(c) => c,
        }
    }
}

fn pool_error(e: r2d2::Error) -> StoreError {
    StoreError::Pool(e.to_string())
}

impl Pool {
    /// Parses `url` (URL or key=value form, with libpq's `sslrootcert` taken out before the
    /// client parses the rest) and builds the pool; no connection is tried yet beyond the first.
    pub(super) fn open(url: &str, max_connections: u32) -> Result<Pool, StoreError> {
        let (url, root_cert) = take_root_cert(url);
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Schema(format!("database URL: {e}")))?;
        match config.get_ssl_mode() {
            SslMode::Require => {
                let tls = MakeRustlsConnect::new(client_config(root_cert.as_deref())?);
                let manager = first_connection(PostgresConnectionManager::new(config, tls))?;
                let pool = builder(max_connections)
                    .build(manager)
                    .map_err(pool_error)?;
                Ok(Pool::Tls(pool))
            }
            _ => {
                if root_cert.is_some() {
                    return Err(StoreError::Schema(
                        "database URL: sslrootcert is given but sslmode is not require, so TLS would not be used".into(),
                    ));
                }
                let mut config = config;
                // `prefer` would be downgraded silently by a client without TLS; say it plainly.
                config.ssl_mode(SslMode::Disable);
                let manager = first_connection(PostgresConnectionManager::new(config, NoTls))?;
                let pool = builder(max_connections)
                    .build(manager)
                    .map_err(pool_error)?;
                Ok(Pool::Plain(pool))
            }
        }
    }

    pub(super) fn get(&self) -> Result<Conn, StoreError> {
        Ok(match self {
            Pool::Plain(p) => Conn::Plain(p.get().map_err(pool_error)?),
            Pool::Tls(p) => Conn::Tls(p.get().map_err(pool_error)?),
        })
    }

    /// Whether connections are encrypted.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Pool::Tls(_))
    }
}

/// One connection made directly, so that a wrong address, password or certificate is reported at
/// once with the database's own words, not after the pool's 30 s of retries as a timeout.
/// On a thread of its own: the blocking client runs (and closes) on a runtime of its own, which
/// must not be started on a thread that is driving async tasks.
fn first_connection<M>(manager: M) -> Result<M, StoreError>
where
    M: r2d2::ManageConnection<Error = postgres::Error>,
{
    std::thread::scope(|s| s.spawn(|| manager.connect().map(drop)).join())
        .map_err(|_| StoreError::Pool("the first connection attempt panicked".into()))?
        .map_err(|e| {
            // postgres::Error's own text leaves out the cause ("error performing TLS handshake"):
            // the operator needs the whole chain ("… invalid peer certificate: UnknownIssuer").
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            StoreError::Pool(format!("cannot connect: {text}"))
        })?;
    Ok(manager)
}

fn builder<M: r2d2::ManageConnection>(max_connections: u32) -> r2d2::Builder<M> {
    r2d2::Pool::builder()
        .max_size(max_connections.max(2))
        // Connections open as load needs them, not all at start: many servers share the
        // database's connection limit.
        .min_idle(Some(1))
        .connection_timeout(std::time::Duration::from_secs(30))
}

/// rustls on ring, trusting `root_cert` (PEM, one or more certificates) or the Mozilla roots.
fn client_config(root_cert: Option<&str>) -> Result<rustls::ClientConfig, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let bad = |e: String| StoreError::Schema(format!("sslrootcert {path}: {e}"));
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(Path::new(path))
                    .map_err(|e| bad(e.to_string()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Schema(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Takes libpq's `sslrootcert` out of a URL (`…?sslmode=require&sslrootcert=/etc/ca.pem`) or a
/// key=value string (`host=db sslrootcert=/etc/ca.pem`), which the client's parser would refuse.
fn take_root_cert(url: &str) -> (String, Option<String>) {
    const KEY: &str = "sslrootcert=";
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), None);
        };
        let mut root = None;
        let rest: Vec<&str> = query
            .split('&')
            .filter(|kv| match kv.strip_prefix(KEY) {
                Some(v) => {
                    root = Some(percent_decode(v));
                    false
                }
                None => true,
            })
            .collect();
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        (url, root)
    } else {
        let mut root = None;
        let rest: Vec<&str> = url
            .split_whitespace()
            .filter(|kv| match kv.strip_prefix(KEY) {
                Some(v) => {
                    root = Some(v.trim_matches('\'').to_string());
                    false
                }
                None => true,
            })
            .collect();
        (rest.join(" "), root)
    }
}

/// `%2F` → `/` (a path in a URL query is usually percent-encoded).
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_taken_out_of_both_url_forms() {
        assert_eq!(
            take_root_cert("postgres://u@db/x?sslmode=require&sslrootcert=%2Fetc%2Fca.pem"),
            (
                "postgres://u@db/x?sslmode=require".to_string(),
                Some("/etc/ca.pem".to_string())
            )
        );
        assert_eq!(
            take_root_cert("postgres://u@db/x?sslrootcert=/ca.pem"),
            ("postgres://u@db/x".to_string(), Some("/ca.pem".to_string()))
        );
        assert_eq!(
            take_root_cert("host=db sslmode=require sslrootcert=/ca.pem user=u"),
            (
                "host=db sslmode=require user=u".to_string(),
                Some("/ca.pem".to_string())
            )
        );
        assert_eq!(
            take_root_cert("postgres://u@db/x"),
            ("postgres://u@db/x".to_string(), None)
        );
    }

    #[test]
    fn a_root_certificate_without_require_or_an_unreadable_one_is_refused() {
        let e = Pool::open("postgres://u@127.0.0.1:9/x?sslrootcert=/nonexistent", 2)
            .err()
            .unwrap();
        assert!(e.to_string().contains("sslmode is not require"), "{e}");
        let e = Pool::open(
            "postgres://u@127.0.0.1:9/x?sslmode=require&sslrootcert=/nonexistent",
            2,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("sslrootcert /nonexistent"), "{e}");
    }
}
