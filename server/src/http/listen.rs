//! Accepting connections: a cap on open connections, a deadline for each request's headers (a
//! client that sends them a byte at a time, "slowloris", is cut off), a deadline for read views,
//! and a graceful stop. `axum::serve` sets no header deadline (it gives hyper no timer), so the
//! loop is hyper's own HTTP/1 connection with one.

use super::error::ApiError;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower_service::Service;

/// What the accept loop allows; from the environment, with defaults.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once (`TOKENTALLY_MAX_CONNECTIONS`, 512); past it, accepting waits.
    pub max_connections: usize,
    /// Time for a request's headers to arrive (`TOKENTALLY_HEADER_TIMEOUT_SECS`, 10).
    pub header_timeout: Duration,
    /// Time a read (GET) request may take to start its answer (`TOKENTALLY_READ_TIMEOUT_SECS`,
    /// 30): past it, 503.
    pub read_timeout: Duration,
}

impl Limits {
    pub fn from_env() -> Limits {
        let number = |name: &str, default: u64| {
            std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()).filter(|n| *n > 0).unwrap_or(default)
        };
        Limits {
            max_connections: number("TOKENTALLY_MAX_CONNECTIONS", 512) as usize,
            header_timeout: Duration::from_secs(number("TOKENTALLY_HEADER_TIMEOUT_SECS", 10)),
            read_timeout: Duration::from_secs(number("TOKENTALLY_READ_TIMEOUT_SECS", 30)),
        }
    }
}

/// Longest a stop waits for requests in flight once it stops accepting.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop` resolves, then finishes the requests in flight
/// (up to [`STOP_GRACE`]). Each request carries its peer's address (`ConnectInfo`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { router.call(req.map(axum::body::Body::new)).await }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!(secs = STOP_GRACE.as_secs(), "requests still in flight at the stop were cut off");
    }
    Ok(())
}

/// A read (GET or HEAD) that hasn't started its answer within the deadline gets 503; writes
/// (ingest, deletion) are never cut off midway.
pub async fn read_deadline(
    axum::extract::State(deadline): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "the answer took longer than {} s; try a shorter range or fewer filters",
                deadline.as_secs()
            ),
            field: None,
        }
        .into_response(),
    }
}
