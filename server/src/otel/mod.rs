//! `POST /v1/traces`: OpenTelemetry GenAI spans over OTLP/HTTP (protobuf or JSON) become priced,
//! attributed calls. Spans are kept (durably, before the answer) in the store's waiting area;
//! a call is stored once every span above it up to a root has arrived, or when its wait is over
//! (`spawn_sweeper`). Depends on the store and `http` (auth, body reading, errors).

pub(crate) mod count;
pub mod map;
pub mod resolve;

use crate::http::error::ApiError;
use crate::http::extract::authorize;
use crate::http::ingest::read_body;
use app::model::admin::Privacy;
use app::state::AppState;
use app::store::Store;
use app::store::keys::Scope;
use app::store::otel::{CONTEXT_KEEP_MS, WaitingSpan};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Largest export accepted, after gzip decompression (an exporter's batch of 512 spans with
/// prompts fits many times over). With at most [`MAX_DECODING`] exports decoded at once, this
/// bounds the memory a flood of tiny messages can take.
pub const MAX_EXPORT_BYTES: usize = 16 * 1024 * 1024;
/// Most spans in one export (a collector's default batch is 8,192).
pub const MAX_SPANS: usize = 20_000;
/// Exports decoded and mapped at once (on blocking threads); the others wait, then get 503.
const MAX_DECODING: usize = 2;
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_DECODING);
/// Batches waiting for the writer past which an export is answered 503 (the exporter retries).
const MAX_WRITER_QUEUE: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, what OTLP/HTTP answers an error with in protobuf.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "Content-Type must be application/x-protobuf or application/json".into(),
            field: Some("Content-Type".into()),
        }),
    }
}

/// An error in the request's own format: protobuf gets a `google.rpc.Status`, JSON ours.
fn error(format: Format, e: ApiError) -> Response {
    if format == Format::Json {
        return e.into_response();
    }
    let status = e.status;
    // gRPC codes: INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL.
    let code = match status.as_u16() {
        400 | 413 | 415 => 3,
        401 => 16,
        503 => 14,
        _ => 13,
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        RpcStatus { code, message: e.message }.encode_to_vec(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn answer(format: Format, rejected: i64, message: String) -> Response {
    let partial_success = (rejected > 0)
        .then_some(ExportTracePartialSuccess { rejected_spans: rejected, error_message: message });
    match format {
        Format::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            ExportTraceServiceResponse { partial_success }.encode_to_vec(),
        )
            .into_response(),
        Format::Json => {
            let body = match partial_success {
                Some(p) => serde_json::json!({
                    "partialSuccess": { "rejectedSpans": p.rejected_spans, "errorMessage": p.error_message }
                }),
                None => serde_json::json!({}),
            };
            axum::Json(body).into_response()
        }
    }
}

pub(crate) fn decode(format: Format, bytes: &[u8]) -> Result<ExportTraceServiceRequest, ApiError> {
    match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(bytes).map_err(|e| {
            ApiError::bad("body", format!("not an OTLP ExportTraceServiceRequest in protobuf: {e}"))
        }),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad("body", format!("not an OTLP ExportTraceServiceRequest in JSON: {e}"))
        }),
    }
}

/// Takes an OTLP trace export (see `docs/otel.md`).
#[utoipa::path(
    post,
    path = "/v1/traces",
    operation_id = "exportTraces",
    summary = "OTLP/HTTP trace export (OpenTelemetry GenAI spans become calls; see docs/otel.md). Protobuf or JSON, answered in the same type; gzip accepted.",
    request_body(
        description = "An ExportTraceServiceRequest, in protobuf or OTLP/JSON.",
        content((Vec<u8> = "application/x-protobuf"), (Object = "application/json"))
    ),
    responses(
        (status = 200, description = "Kept on disk; partialSuccess counts GenAI spans refused.",
            content((crate::http::openapi::OtlpExportResponse = "application/json"), (Vec<u8> = "application/x-protobuf"))),
        (status = 400, description = "Not an ExportTraceServiceRequest: the message says why.", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 32 MiB (raw or inflated)."),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding."),
        (status = 503, description = "Busy: retry after the Retry-After header."),
    ),
    security(("bearer" = []))
)]
pub async fn post_traces(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let format = match format_of(&headers) {
        Ok(f) => f,
        Err(e) => return error(Format::Json, e),
    };
    match take(&state, &headers, body, format).await {
        Ok((rejected, message)) => answer(format, rejected, message),
        Err(e) => {
            metrics::counter!("tokentally_otel_exports_total", "outcome" => "refused").increment(1);
            let busy = e.status == StatusCode::SERVICE_UNAVAILABLE;
            let mut resp = error(format, e);
            if busy {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            resp
        }
    }
}

async fn take(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<(i64, String), ApiError> {
    let project = authorize(state, headers, &[Scope::Ingest]).await?;
    if state.store.writer_queue_depth() > MAX_WRITER_QUEUE {
        return Err(ApiError::unavailable("the server is busy writing; retry later"));
    }
    let bytes = read_body(headers, body, MAX_EXPORT_BYTES).await?;
    let busy = || ApiError::unavailable("the server is busy decoding other exports; retry later");
    let permit = tokio::time::timeout(Duration::from_secs(10), DECODING.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let now = app::store::now_ms();
    let mapped = tokio::task::spawn_blocking(move || {
        // The permit goes with the work: a client that leaves does not free it early.
        let _permit = permit;
        // Counted before decoding: what a flood of tiny messages would decode to is bounded.
        let spans = count::spans(format == Format::Protobuf, &bytes)?;
        if spans > MAX_SPANS {
            return Err(ApiError::bad(
                "resourceSpans",
                format!("at most {MAX_SPANS} spans per export, not {spans}"),
            ));
        }
        let request = decode(format, &bytes)?;
        Ok(map::map_request(&request, now))
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "decoding an OTLP export failed");
        ApiError::internal()
    })??;
    let keep_content = state.store.project_by_id(project).await?.privacy != Privacy::Minimal;
    let mut rejected = 0i64;
    let mut reasons: BTreeSet<String> = BTreeSet::new();
    let mut kept = Vec::new();
    let mut traces = BTreeSet::new();
    let mut calls = 0u64;
    for m in mapped {
        let call = match m.call {
            // Refused as a call, still a span of its trace (its children's ancestor).
            Some(Err(reason)) => {
                rejected += 1;
                reasons.insert(reason);
                None
            }
            Some(Ok(mut call)) => {
                calls += 1;
                if call.clamped {
                    metrics::counter!("tokentally_otel_warnings_total", "reason" => "input_below_cache")
                        .increment(1);
                }
                if !keep_content {
                    call.prompt = None;
                    call.response = None;
                }
                Some(serde_json::to_string(&call).map_err(|e| ApiError::bad("body", e.to_string()))?)
            }
            None => None,
        };
        // A span without valid ids cannot be placed in a trace (a call among them was refused).
        if m.trace_id.is_empty() {
            continue;
        }
        traces.insert(m.trace_id.clone());
        kept.push(WaitingSpan {
            trace_id: m.trace_id,
            span_id: m.span_id,
            received_at: now,
            is_root: m.is_root,
            context: serde_json::to_string(&m.context).map_err(|e| ApiError::bad("body", e.to_string()))?,
            call,
        });
    }
    metrics::counter!("tokentally_otel_spans_total", "outcome" => "call").increment(calls);
    metrics::counter!("tokentally_otel_spans_total", "outcome" => "rejected")
        .increment(rejected.max(0) as u64);
    metrics::counter!("tokentally_otel_spans_total", "outcome" => "other")
        .increment((kept.len() as u64).saturating_sub(calls));
    // Durable from here: the answer follows this commit.
    state.store.otel_keep(project, &kept).await?;
    metrics::counter!("tokentally_otel_exports_total", "outcome" => "taken").increment(1);
    // The traces this export completed are stored now; a failure here loses nothing (the
    // sweeper stores them after the wait).
    let traces: Vec<String> = traces.into_iter().collect();
    if let Err(e) = store_ready(&state.store, project, &traces, None).await {
        tracing::warn!(error = %e, "OTLP calls kept but not stored yet; the sweeper will retry");
    }
    let message = reasons.into_iter().take(5).collect::<Vec<_>>().join("; ");
    Ok((rejected, message))
}

/// Stores the waiting calls of `traces` whose chain up to a root is here, and those received
/// before `waited_before`.
async fn store_ready(
    store: &Store,
    project: i64,
    traces: &[String],
    waited_before: Option<i64>,
) -> Result<usize, app::store::StoreError> {
    if traces.is_empty() {
        return Ok(0);
    }
    // No user deletion between reading the waiting calls and storing them.
    let _gate = store.otel_gate().await;
    let kept = store.otel_traces(project, traces).await?;
    // Resolution is CPU work over every kept span of these traces: off the async workers.
    let (records, events, done, duplicates) = tokio::task::spawn_blocking(move || {
        let mut by_trace: BTreeMap<String, Vec<WaitingSpan>> = BTreeMap::new();
        for s in kept {
            by_trace.entry(s.trace_id.clone()).or_default().push(s);
        }
        let (mut records, mut events, mut done, mut duplicates) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for (trace_id, spans) in &by_trace {
            if !spans.iter().any(|s| s.call.is_some()) {
                continue;
            }
            let r = resolve::resolve(trace_id, spans, waited_before);
            duplicates += r.duplicates;
            records.extend(r.trace);
            events.extend(r.events);
            done.extend(r.spans);
        }
        (records, events, done, duplicates)
    })
    .await
    .map_err(|e| app::store::StoreError::Invalid(format!("resolving OTLP calls failed: {e}")))?;
    metrics::counter!("tokentally_otel_spans_total", "outcome" => "duplicate_call")
        .increment(duplicates as u64);
    // Idempotent on the event ids (trace id + span id): a retry after a crash counts once.
    if !events.is_empty() {
        store.ingest(project, &records, &events).await?;
    }
    store.otel_done(project, &done).await?;
    Ok(events.len())
}

/// Stores calls that waited `wait` for their trace's root, and forgets old spans.
pub fn spawn_sweeper(store: Store, wait: Duration) {
    tokio::spawn(async move {
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let tick = Duration::from_millis(u64::try_from(wait_ms / 4).unwrap_or(1_000).clamp(100, 1_000));
        let mut last_forget = 0i64;
        loop {
            tokio::time::sleep(tick).await;
            let now = app::store::now_ms();
            let cutoff = now.saturating_sub(wait_ms);
            match store.otel_overdue(cutoff, 500).await {
                Ok(overdue) => {
                    let mut by_project: BTreeMap<i64, Vec<String>> = BTreeMap::new();
                    for (p, t) in overdue {
                        by_project.entry(p).or_default().push(t);
                    }
                    for (p, traces) in by_project {
                        if store_ready(&store, p, &traces, Some(cutoff)).await.is_ok() {
                            continue;
                        }
                        // One trace at a time, so one that fails holds up no other.
                        for t in traces {
                            if let Err(e) =
                                store_ready(&store, p, std::slice::from_ref(&t), Some(cutoff)).await
                            {
                                tracing::warn!(error = %e, trace_id = %t, "storing OTLP calls after their wait failed; retrying");
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading waiting OTLP calls failed"),
            }
            if now - last_forget > 10_000 {
                last_forget = now;
                let keep = CONTEXT_KEEP_MS.max(wait_ms.saturating_mul(2));
                if let Err(e) = store.otel_forget(now.saturating_sub(keep)).await {
                    tracing::warn!(error = %e, "forgetting old OTLP spans failed");
                }
            }
        }
    });
}
