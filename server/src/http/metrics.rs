//! `GET /metrics`: Prometheus text format, from the `metrics` crate's recorder.
//!
//! Recorded as they happen: HTTP requests per route (count by status, latency histogram, in
//! flight), ingest batches accepted or rejected by reason, calls accepted or duplicate. Read at
//! each scrape: database and WAL size, the writer's queue depth.
//!
//! Only for the machine itself: a request must come from a loopback address and carry no
//! `Forwarded` / `X-Forwarded-For` header (a reverse proxy on the same machine adds one, so the
//! world doesn't reach this through the proxy). Anything else gets 404, as for a route that
//! doesn't exist.

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

/// Counts and times every request by its route pattern (not its path: no unbounded label
/// values), and how many are in flight.
pub async fn track(req: Request<Body>, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("other", |p| p.as_str()).to_string();
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let in_flight = metrics::gauge!("tokentally_http_requests_in_flight");
    in_flight.increment(1.0);
    let resp = next.run(req).await;
    in_flight.decrement(1.0);
    let status = resp.status().as_u16().to_string();
    metrics::counter!("tokentally_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
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
                429 | 503 => "overloaded",
                _ => "error",
            };
            metrics::counter!("tokentally_ingest_batches_total", "outcome" => "rejected", "reason" => reason)
                .increment(1);
        }
    }
}

fn file_len(path: &std::path::Path, suffix: &str) -> u64 {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    std::fs::metadata(PathBuf::from(p)).map(|m| m.len()).unwrap_or(0)
}

/// Whether the request comes straight from this machine (not through a proxy).
fn local_only(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    peer.is_some_and(|p| p.ip().is_loopback())
        && !headers.contains_key("x-forwarded-for")
        && !headers.contains_key(header::FORWARDED)
        && !headers.contains_key("x-real-ip")
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

    #[test]
    fn only_a_direct_loopback_peer_may_read_metrics() {
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let v6: SocketAddr = "[::1]:5000".parse().expect("addr");
        let remote: SocketAddr = "203.0.113.9:5000".parse().expect("addr");
        let none = HeaderMap::new();
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", "203.0.113.9".parse().expect("header"));
        assert!(local_only(Some(local), &none));
        assert!(local_only(Some(v6), &none));
        assert!(!local_only(Some(remote), &none));
        assert!(!local_only(Some(local), &proxied), "through a proxy on this machine");
        assert!(!local_only(None, &none));
    }
}
