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
                "the answer took longer than {}; try a shorter range or fewer filters",
                match deadline.as_secs() {
                    0 => format!("{} ms", deadline.as_millis()),
                    s => format!("{s} s"),
                }
            ),
            field: None,
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;

    /// The real middleware on a router whose handlers take 300 ms (a deadline of 50 ms): a read
    /// gets a 503 with a JSON message when the deadline passes; a write is never cut off; a
    /// read that answers in time is untouched.
    #[tokio::test]
    async fn a_slow_read_gets_503_and_a_slow_write_finishes() {
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        };
        let mut app = Router::new()
            .route("/slow", get(slow).post(slow).delete(slow))
            .route("/fast", get(|| async { "fast" }))
            .layer(axum::middleware::from_fn_with_state(Duration::from_millis(50), read_deadline));
        let mut ask = async |method: Method, path: &str| {
            let req = Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
            let resp = app.call(req).await.expect("infallible");
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        for method in [Method::GET, Method::HEAD] {
            let started = std::time::Instant::now();
            let (status, body) = ask(method.clone(), "/slow").await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method}: {body}");
            assert!(started.elapsed() < Duration::from_millis(300), "{method}: answered at the deadline");
            if method == Method::GET {
                let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
                assert!(v["error"].as_str().is_some_and(|m| m.contains("took longer than 50 ms")), "{body}");
            }
        }
        assert_eq!(ask(Method::POST, "/slow").await, (StatusCode::OK, "done".to_string()));
        assert_eq!(ask(Method::DELETE, "/slow").await, (StatusCode::OK, "done".to_string()));
        assert_eq!(ask(Method::GET, "/fast").await, (StatusCode::OK, "fast".to_string()));
    }
}
