//! `GET /metrics`: Prometheus text format, from the `metrics` crate's recorder.
//!
//! Recorded as they happen: HTTP requests per route (count by status, latency histogram, in
//! flight), ingest batches accepted or rejected by reason, calls accepted or duplicate. Read at
//! each scrape: database and WAL size, the writer's queue depth.
//!
//! Only for the machine itself: a request must come from a loopback address, name a loopback
//! host in `Host` (`localhost`, `127.0.0.1`, `[::1]`: a page that rebinds its own name to
//! 127.0.0.1 still sends its name), and carry none of the headers a reverse proxy adds
//! (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `Via`): a proxy on the same machine passes the
//! public `Host` or those headers, so the world doesn't reach this through it. Anything else gets
//! a 404.

use app::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static DB_PATH: OnceLock<PathBuf> = OnceLock::new();

/// Request latency buckets, seconds.
const BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the recorder (once per process) and notes the database whose size is reported.
pub fn install(db: &std::path::Path) -> Result<(), String> {
    let _ = DB_PATH.set(db.to_path_buf());
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("tokentally_http_request_duration_seconds".into()), &BUCKETS)
        .map_err(|e| format!("metrics buckets: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))?;
    // Histogram samples wait in buffers until upkeep (or a scrape) folds them into buckets;
    // without it a server nobody scrapes would keep every sample.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    metrics::describe_counter!(
        "tokentally_http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    metrics::describe_histogram!(
        "tokentally_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request (headers; a streamed body may take longer), by route and method"
    );
    metrics::describe_gauge!(
        "tokentally_http_requests_in_flight",
        "HTTP requests being answered now (live clients)"
    );
    metrics::describe_counter!(
        "tokentally_ingest_batches_total",
        "POST /v1/events batches, by outcome and rejection reason"
    );
    metrics::describe_counter!(
        "tokentally_ingest_events_total",
        "Calls in accepted batches: accepted (stored) or duplicate"
    );
    metrics::describe_gauge!(
        "tokentally_database_bytes",
        metrics::Unit::Bytes,
        "Size of the SQLite database file"
    );
    metrics::describe_gauge!(
        "tokentally_wal_bytes",
        metrics::Unit::Bytes,
        "Size of the SQLite write-ahead log"
    );
    metrics::describe_gauge!(
        "tokentally_writer_queue_depth",
        "Write jobs (ingest batches) waiting for the writer"
    );
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The route pattern a request matched, copied into its response by [`note_route`].
#[derive(Clone)]
struct Route(String);

/// Inside the router (a route layer, where the match is known): labels the response with the
/// route pattern that answered it.
pub async fn note_route(req: Request<Body>, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let mut resp = next.run(req).await;
    if let Some(route) = route {
        resp.extensions_mut().insert(Route(route));
    }
    resp
}

/// Counts the in-flight gauge down when a request ends, however it ends (a client that goes
/// away drops the request's future before it answers).
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        metrics::gauge!("tokentally_http_requests_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("tokentally_http_requests_in_flight").decrement(1.0);
    }
}

/// A method as a label: the standard ones by name, any other as "other" (a client may send any
/// token as a method; labels must stay few).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Outermost layer: counts and times every request (the login redirects and refusals of the
/// auth layer too) by the route pattern that answered it ("unmatched" for none: no path, which
/// anyone can vary, becomes a label), and how many are in flight.
pub async fn track(req: Request<Body>, next: Next) -> Response {
    let method = method_label(req.method());
    let started = Instant::now();
    let _in_flight = InFlight::start();
    let resp = next.run(req).await;
    let route = resp.extensions().get::<Route>().map_or_else(|| "unmatched".to_string(), |r| r.0.clone());
    let status = resp.status().as_u16().to_string();
    metrics::counter!("tokentally_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("tokentally_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// What an ingest batch came to: `Ok((accepted, duplicates))` or the status it was refused with.
pub fn ingest_outcome(result: Result<(i64, i64), StatusCode>) {
    match result {
        Ok((accepted, duplicates)) => {
            metrics::counter!("tokentally_ingest_batches_total", "outcome" => "accepted", "reason" => "")
                .increment(1);
            metrics::counter!("tokentally_ingest_events_total", "outcome" => "accepted")
                .increment(accepted.max(0) as u64);
            metrics::counter!("tokentally_ingest_events_total", "outcome" => "duplicate")
                .increment(duplicates.max(0) as u64);
        }
        Err(status) => {
            let reason = match status.as_u16() {
                400 => "invalid",
                401 | 403 => "unauthorized",
                413 => "too_large",
                415 => "unsupported_media_type",
                _ => "error",
            };
            metrics::counter!("tokentally_ingest_batches_total", "outcome" => "rejected", "reason" => reason)
                .increment(1);
        }
    }
}

fn file_len(path: &std::path::Path, suffix: &str) -> u64 {
    std::fs::metadata(app::store::beside(path, suffix)).map(|m| m.len()).unwrap_or(0)
}

/// Whether `host` (a `Host` header) names this machine's loopback interface.
fn loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // "[::1]:3000", "127.0.0.1:3000", "localhost:3000"; a bare "[::1]" has no port.
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether the request comes straight from this machine (not through a proxy, not from a page
/// that rebinds its name to 127.0.0.1).
fn local_only(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    const PROXY_HEADERS: [&str; 7] = [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-real-ip",
        "via",
    ];
    peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
        && headers.get(header::HOST).and_then(|h| h.to_str().ok()).is_some_and(loopback_host)
        && PROXY_HEADERS.iter().all(|h| !headers.contains_key(*h))
}

pub async fn metrics(State(state): State<AppState>, req: Request<Body>) -> Response {
    let Some(handle) = HANDLE.get() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if !local_only(peer, req.headers()) {
        return super::error::ApiError::not_found("no such endpoint").into_response();
    }
    if let Some(db) = DB_PATH.get() {
        metrics::gauge!("tokentally_database_bytes").set(file_len(db, "") as f64);
        metrics::gauge!("tokentally_wal_bytes").set(file_len(db, "-wal") as f64);
    }
    metrics::gauge!("tokentally_writer_queue_depth").set(state.store.writer_queue_depth() as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn only_a_direct_loopback_request_may_read_metrics() {
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let v6: SocketAddr = "[::1]:5000".parse().expect("addr");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().expect("addr");
        let remote: SocketAddr = "203.0.113.9:5000".parse().expect("addr");
        let host = headers(&[("host", "127.0.0.1:3000")]);
        assert!(local_only(Some(local), &host));
        assert!(local_only(Some(v6), &headers(&[("host", "[::1]:3000")])));
        assert!(local_only(Some(mapped), &headers(&[("host", "localhost:3000")])));
        assert!(local_only(Some(local), &headers(&[("host", "[::1]")])));
        assert!(!local_only(Some(remote), &host));
        assert!(!local_only(None, &host));
        assert!(!local_only(Some(local), &HeaderMap::new()), "no Host");
        assert!(!local_only(Some(local), &headers(&[("host", "rebind.example:3000")])), "DNS rebinding");
        assert!(
            !local_only(Some(local), &headers(&[("host", "tokentally.example.com")])),
            "a proxy passing Host"
        );
        for proxy in
            ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "via", "x-real-ip"]
        {
            let h = headers(&[("host", "127.0.0.1:3000"), (proxy, "x")]);
            assert!(!local_only(Some(local), &h), "{proxy}: through a proxy on this machine");
        }
    }

    #[test]
    fn methods_outside_the_standard_ones_share_a_label() {
        let odd = axum::http::Method::from_bytes(b"ZZZ123").expect("method");
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&axum::http::Method::POST), "POST");
    }
}
