//! A faulty TCP proxy for tests and benchmarks: resets connections mid-body, drops answers, stalls,
//! delays, and black-holes connections.
//!
//! Each request on a connection gets a fate from a seeded generator, so runs are reproducible: pass
//! through, reset after a random number of request bytes (RST via SO_LINGER 0), swallow the answer
//! and close (the request reached the server but the client never learns it), stall/delay before
//! forwarding, or go silent after a random number of request bytes: nothing more is read or
//! forwarded in either direction and both connections stay open, with no reset, as when a phone
//! leaves coverage or its NAT mapping expires. The upstream address can be changed while running
//! (a restarted server on a new port).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Fault rates, each in 0.0..=1.0 of connections.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Reset the connection part-way through the request: at a uniformly random byte of its body,
    /// or of its head when it has no body.
    pub reset: f64,
    /// Forward the request, then close instead of returning the answer.
    pub drop_answer: f64,
    /// Hold every chunk for `delay` before forwarding.
    pub delay: f64,
    pub delay_by: Duration,
    /// Hold the request once for `stall_for` (longer than the client's timeout) before forwarding.
    pub stall: f64,
    pub stall_for: Duration,
    /// Go silent part-way through the request and stay open (no RST, no FIN) until the proxy ends.
    pub black_hole: f64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            reset: 0.0,
            drop_answer: 0.0,
            delay: 0.0,
            delay_by: Duration::ZERO,
            stall: 0.0,
            stall_for: Duration::ZERO,
            black_hole: 0.0,
        }
    }
    /// About 30% of connections reset mid-body, plus lost answers and stalls.
    pub fn harsh() -> Faults {
        Faults {
            reset: 0.30,
            drop_answer: 0.05,
            delay: 0.10,
            delay_by: Duration::from_millis(20),
            stall: 0.01,
            stall_for: Duration::from_millis(2300),
            black_hole: 0.0,
        }
    }
    /// `harsh`, and a share of requests whose connection goes silent mid-request and stays open.
    pub fn harsh_with_black_holes(share: f64) -> Faults {
        Faults {
            reset: 0.20,
            black_hole: share,
            ..Faults::harsh()
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub resets: AtomicU64,
    pub dropped_answers: AtomicU64,
    pub delayed: AtomicU64,
    pub stalled: AtomicU64,
    /// Connections that went silent and were left open.
    pub black_holed: AtomicU64,
    /// Requests seen (a new one starts with client bytes after an answer).
    pub exchanges: AtomicU64,
    /// Bytes forwarded from clients to the server.
    pub upstream_bytes: AtomicU64,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    upstream: Arc<Mutex<SocketAddr>>,
}

impl Proxy {
    pub fn set_upstream(&self, a: SocketAddr) {
        *self.upstream.lock().unwrap() = a;
    }
}

/// xorshift: deterministic fates without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Pass,
    /// Where to cut, as a fraction of the body (or head); resolved to a byte at the first read.
    Reset(f64),
    ResetAt(u64),
    /// Where to go silent, as for `Reset`.
    BlackHole(f64),
    BlackHoleAt(u64),
    /// Hold once, then pass (resolved to `Pass` after the stall).
    Stall(Duration),
    DropAnswer,
    Delay(Duration),
}

pub async fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let up = Arc::new(Mutex::new(upstream));
    let (st, up2) = (stats.clone(), up.clone());
    tokio::spawn(async move {
        let mut rng = Rng(seed | 1);
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            st.connections.fetch_add(1, Ordering::Relaxed);
            let target = *up2.lock().unwrap();
            let conn_rng = Rng(rng.next() | 1);
            tokio::spawn(handle(client, target, faults, conn_rng, st.clone()));
        }
    });
    Proxy {
        addr,
        stats,
        upstream: up,
    }
}

fn roll(f: &Faults, rng: &mut Rng) -> Fate {
    let x = rng.unit();
    if x < f.reset {
        Fate::Reset(rng.unit())
    } else if x < f.reset + f.black_hole {
        Fate::BlackHole(rng.unit())
    } else if x < f.reset + f.black_hole + f.drop_answer {
        Fate::DropAnswer
    } else if x < f.reset + f.black_hole + f.drop_answer + f.delay {
        Fate::Delay(f.delay_by)
    } else if x < f.reset + f.black_hole + f.drop_answer + f.delay + f.stall {
        Fate::Stall(f.stall_for)
    } else {
        Fate::Pass
    }
}

/// Per connection: the fate of the exchange in flight. Connections are kept alive and reused by
/// HTTP clients, so a new fate is drawn for every request (client bytes after an answer).
struct Conn {
    fate: Fate,
    rng: Rng,
    answered: bool,
    sent: u64,
}

async fn handle(
    client: TcpStream,
    target: SocketAddr,
    faults: Faults,
    rng: Rng,
    stats: Arc<Stats>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        // Server down: the client sees its connection closed, as with a dead link.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let conn = Arc::new(Mutex::new(Conn {
        fate: Fate::Pass,
        rng,
        answered: true,
        sent: 0,
    }));
    let (st, c1) = (stats.clone(), conn.clone());
    let up = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let (fate, n, cut) = {
                let mut c = c1.lock().unwrap();
                if c.answered {
                    // A new request on this connection.
                    c.answered = false;
                    c.sent = 0;
                    c.fate = roll(&faults, &mut c.rng);
                    st.exchanges.fetch_add(1, Ordering::Relaxed);
                    if matches!(c.fate, Fate::Delay(_)) {
                        st.delayed.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Fate::Reset(frac) = c.fate {
                        c.fate = Fate::ResetAt(cut_point(&buf[..n], frac));
                    }
                    if let Fate::BlackHole(frac) = c.fate {
                        c.fate = Fate::BlackHoleAt(cut_point(&buf[..n], frac));
                    }
                }
                let mut n = n;
                let mut cut = false;
                if let Fate::ResetAt(at) | Fate::BlackHoleAt(at) = c.fate {
                    if c.sent + n as u64 >= at {
                        n = (at - c.sent) as usize;
                        cut = true;
                    }
                }
                c.sent += n as u64;
                (c.fate, n, cut)
            };
            match fate {
                Fate::Delay(d) => tokio::time::sleep(d).await,
                Fate::Stall(d) => {
                    st.stalled.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(d).await;
                    c1.lock().unwrap().fate = Fate::Pass;
                }
                _ => {}
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            st.upstream_bytes.fetch_add(n as u64, Ordering::Relaxed);
            if cut {
                if let Fate::BlackHoleAt(_) = fate {
                    // Silent from here on: the client's bytes pile up unread, nothing comes back,
                    // and neither side is told (the answer direction checks the fate too).
                    st.black_holed.fetch_add(1, Ordering::Relaxed);
                    std::future::pending::<()>().await;
                }
                st.resets.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    };
    let (st, c2) = (stats.clone(), conn.clone());
    let down = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let (fate, silent) = {
                let mut c = c2.lock().unwrap();
                let silent = matches!(c.fate, Fate::BlackHoleAt(at) if c.sent >= at);
                if !silent {
                    c.answered = true;
                }
                (c.fate, silent)
            };
            if silent {
                // The request went silent before it was whole: no answer comes back either.
                std::future::pending::<()>().await;
            }
            if matches!(fate, Fate::DropAnswer) {
                st.dropped_answers.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {},
        _ = down => {},
    }
    // Dropping both halves closes both connections; the client sees a reset or an early EOF.
}

/// The byte of a request at which to cut: inside the body by `Content-Length`, else inside the head.
fn cut_point(first: &[u8], frac: f64) -> u64 {
    let text = String::from_utf8_lossy(first);
    let Some(head_end) = text.find("\r\n\r\n").map(|i| i + 4) else {
        return 1 + (frac * first.len() as f64) as u64;
    };
    let body = text[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    if body > 0 {
        head_end as u64 + (frac * body as f64) as u64
    } else {
        1 + (frac * (head_end - 1) as f64) as u64
    }
}
