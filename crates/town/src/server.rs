//! The listener of `serve`, plain or TLS: bounded in every way a hostile client could stretch.
//!
//! `axum::serve` has no header-read timeout and no connection limit, so half a request line held
//! a connection (and a file descriptor) for ever and a few hundred of them took the server down.
//! Here every connection is bounded:
//!
//! - the TLS handshake must finish within [`ServerConfig::tls_handshake_timeout`];
//! - the request head must arrive within [`ServerConfig::header_read_timeout`], which hyper also
//!   applies while a keep-alive connection waits for its next request (the idle timeout);
//! - request bodies may pause at most `Limits::body_idle` between frames (`crate::edge`);
//! - at most [`ServerConfig::max_per_address`] connections per client address and
//!   [`ServerConfig::max_connections`] in all; a connection over either limit is closed at once,
//!   so one address flooding slow connections cannot crowd out everyone else (`/healthz`, phones).
//!
//! HTTP/1.1 only: phones and browsers speak it, and no ALPN offers h2, so h2's own resource
//! limits need not be tuned as well.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Limits of the listener. The defaults suit a town centre on the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Time a client has to send a request head, and to start the next one on a kept-alive
    /// connection.
    pub header_read_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Open connections in all. Kept well under the usual 1024 file descriptors, which the
    /// database, attachments and log also need.
    pub max_connections: usize,
    /// Open connections from one IP address. A town hall's NAT puts a few dozen phones and
    /// tablets behind one address; each holds one or two connections.
    pub max_per_address: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            header_read_timeout: Duration::from_secs(15),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 768,
            max_per_address: 64,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Marks a request that arrived over TLS (cookies get `Secure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls(pub bool);

/// Open connections per address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection of an address; uncounted when dropped.
struct Slot {
    map: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(map: &Arc<PerAddress>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = map.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            map: map.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.map.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` completes, then
/// lets requests in flight finish for up to `shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let total = Arc::new(Semaphore::new(config.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; connection closed");
            continue;
        };
        let Some(slot) = PerAddress::take(&per_address, peer.ip(), config.max_per_address) else {
            tracing::debug!(%peer, "per-address connection limit reached; connection closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let watcher = graceful.watcher();
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let _held = (permit, slot);
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        config.tls_handshake_timeout,
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    connection(stream, peer, app, true, &config, watcher).await
                }
                None => connection(tcp, peer, app, false, &config, watcher).await,
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
    }
}

async fn connection<IO>(
    io: IO,
    peer: SocketAddr,
    app: Router,
    tls: bool,
    config: &ServerConfig,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // The peer address feeds the per-client rate limits, as `into_make_service_with_connect_info` did.
    let app = app
        .layer(axum::Extension(ConnectInfo(peer)))
        .layer(axum::Extension(OverTls(tls)));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
