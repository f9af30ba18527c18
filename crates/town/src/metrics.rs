//! Operations view of a server: a request id on every request and its log lines, and `/metrics`
//! in Prometheus's text format (requests by route and status, upload bytes, store calls in
//! flight and their latency).
//!
//! Counters are per process, as Prometheus expects: it scrapes each server and sums. Routes are
//! labelled by their template (`/v1/cases/{id}`), never by the ids themselves, so the number of
//! series stays small and no case number reaches the monitoring system.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::AppState;

/// The header that carries the request id (taken from the proxy if it sent a sane one).
pub const H_REQUEST_ID: &str = "x-request-id";

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// A latency histogram in Prometheus's cumulative form.
#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, out: &mut String) {
        for (i, b) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "{name}_bucket{{le=\"{b}\"}} {}\n",
                self.counts[i].load(Ordering::Relaxed)
            ));
        }
        let n = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {n}\n"));
        out.push_str(&format!(
            "{name}_sum {}\n{name}_count {n}\n",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
    }
}

/// The process's counters.
#[derive(Default)]
pub struct Metrics {
    /// (method, route template, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    request_latency: Histogram,
    /// Attachment bytes received (every PATCH body byte written).
    pub upload_bytes: AtomicU64,
    store_latency: Histogram,
    /// Store calls queued or running on the blocking pool.
    store_in_flight: AtomicU64,
}

/// Process-wide: the store helper (`error::blocking`) has no state handle, and one process is
/// one server.
pub static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::default);

impl Metrics {
    /// Times one store call (queued and run on the blocking pool).
    pub async fn store_call<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.store_in_flight.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let out = f.await;
        self.store_latency.observe(t0.elapsed());
        self.store_in_flight.fetch_sub(1, Ordering::Relaxed);
        out
    }

    fn request(&self, method: &str, route: String, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_string(), route, status))
            .or_default() += 1;
        self.request_latency.observe(took);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP bianmin_requests_total HTTP requests by method, route and status.\n# TYPE bianmin_requests_total counter\n");
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "bianmin_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP bianmin_request_seconds Time to answer a request.\n# TYPE bianmin_request_seconds histogram\n");
        self.request_latency
            .render("bianmin_request_seconds", &mut out);
        out.push_str("# HELP bianmin_upload_bytes_total Attachment bytes received.\n# TYPE bianmin_upload_bytes_total counter\n");
        out.push_str(&format!(
            "bianmin_upload_bytes_total {}\n",
            self.upload_bytes.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP bianmin_store_in_flight Store calls queued or running.\n# TYPE bianmin_store_in_flight gauge\n");
        out.push_str(&format!(
            "bianmin_store_in_flight {}\n",
            self.store_in_flight.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP bianmin_store_seconds Time of a store call, queueing included.\n# TYPE bianmin_store_seconds histogram\n");
        self.store_latency.render("bianmin_store_seconds", &mut out);
        out
    }
}

/// A route's template: ids, hashes and case numbers become `{}` (fixed routes have none).
pub fn route_of(path: &str) -> String {
    let known = [
        "v1",
        "me",
        "cases",
        "actions",
        "attachments",
        "inbox",
        "page",
        "changes",
        "enrol",
        "healthz",
        "rectifications",
        "steps",
        "r",
        "rate",
        "county",
        "login",
        "logout",
        "export.csv",
        "metrics",
    ];
    let t: Vec<&str> = path
        .split('/')
        .map(|s| {
            if s.is_empty() || known.contains(&s) {
                s
            } else {
                "{}"
            }
        })
        .collect();
    t.join("/")
}

fn request_id(req: &Request) -> String {
    req.headers()
        .get(H_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (8..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()))
}

/// Middleware: request id (header and log span), request counts and latency.
pub async fn track(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = req.method().to_string();
    let route = route_of(req.uri().path());
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let t0 = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let took = t0.elapsed();
    METRICS.request(&method, route, resp.status().as_u16(), took);
    span.in_scope(|| {
        tracing::debug!(
            status = resp.status().as_u16(),
            ms = took.as_millis() as u64,
            "answered"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(H_REQUEST_ID, v);
    }
    resp
}

/// GET /metrics, for the monitoring system inside the data centre: loopback and private
/// addresses only (behind the TLS proxy the peer is the proxy; a phone never needs it).
pub async fn metrics(State(_state): State<AppState>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let inside = match peer {
        None => true,
        Some(std::net::IpAddr::V4(a)) => a.is_loopback() || a.is_private(),
        Some(std::net::IpAddr::V6(a)) => a.is_loopback(),
    };
    if !inside {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        METRICS.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_without_ids() {
        assert_eq!(
            route_of("/v1/cases/140423100201-20261128-K7Q2MX-0001/attachments/ab12"),
            "/v1/cases/{}/attachments/{}"
        );
        assert_eq!(route_of("/v1/inbox"), "/v1/inbox");
        assert_eq!(route_of("/r/abc/rate"), "/r/{}/rate");
    }

    #[test]
    fn the_exposition_counts_requests_and_store_calls() {
        let m = Metrics::default();
        m.request("GET", "/v1/inbox".into(), 200, Duration::from_millis(3));
        m.request("GET", "/v1/inbox".into(), 200, Duration::from_millis(30));
        m.store_latency.observe(Duration::from_micros(800));
        m.upload_bytes.fetch_add(1234, Ordering::Relaxed);
        let t = m.render();
        assert!(t.contains(
            "bianmin_requests_total{method=\"GET\",route=\"/v1/inbox\",status=\"200\"} 2"
        ));
        assert!(t.contains("bianmin_request_seconds_bucket{le=\"0.005\"} 1"));
        assert!(t.contains("bianmin_request_seconds_count 2"));
        assert!(t.contains("bianmin_upload_bytes_total 1234"));
        assert!(t.contains("bianmin_store_seconds_bucket{le=\"0.001\"} 1"));
    }
}
