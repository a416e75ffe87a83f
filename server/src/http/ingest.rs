//! `POST /v1/events`: the SDK's wire format, validated whole before anything is written.

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::authorize;
use app::pricing::{Usage, parse_usd_to_nano};
use app::state::AppState;
use app::store::ingest::{EventIn, TraceIn};
use app::store::keys::Scope;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;

/// Largest accepted request body, before and after gzip decompression.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Most events (and, separately, traces) in one batch.
pub const MAX_BATCH_ITEMS: usize = 5_000;
/// Largest count accepted in one token bucket of one event.
pub const MAX_TOKENS: u64 = 1_000_000_000;
const MAX_ID: usize = 128;
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_KEY: usize = 64;
pub const MAX_TAG_VALUE: usize = 512;
pub const MAX_NAME: usize = 256;
pub const MAX_ERROR: usize = 16 * 1024;
const MAX_TOOLS: usize = 256;
/// How far in the future a timestamp may be (clock skew).
pub const MAX_FUTURE_MS: i64 = 24 * 3_600_000;
/// How far in the past a timestamp may be (about 10 years).
pub const MAX_AGE_MS: i64 = 3_653 * 86_400_000;
/// Longest latency accepted.
pub const MAX_LATENCY_MS: i64 = 7 * 24 * 3_600_000;

/// A batch of calls and `withTrace` blocks. Ids make it idempotent: a resent call or trace
/// counts once.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = IngestBatch)]
pub struct Batch {
    #[serde(default)]
    #[schema(max_items = 5000)]
    events: Vec<EventWire>,
    #[serde(default)]
    #[schema(max_items = 5000)]
    traces: Vec<TraceWire>,
}

/// What a committed batch held.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IngestReply {
    /// Calls stored now.
    accepted: i64,
    /// Calls already stored (a resend), not counted again.
    duplicates: i64,
}

/// `llm` (the default: a provider call) or `custom` (an app event with a `name`).
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Llm,
    Custom,
}

/// `cancelled`: the caller stopped the call (a stream read in part); not an error.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Error,
    /// The caller stopped the call (a stream read only in part); not an error.
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Four disjoint token buckets (`input_tokens` excludes cached tokens), and the parts of them
/// the provider broke out. Each count is at most 10^12.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = Usage)]
struct UsageWire {
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    input_tokens: u64,
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    output_tokens: u64,
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    cache_read_tokens: u64,
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    cache_creation_tokens: u64,
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    cache_creation_1h_tokens: u64,
    /// Part of `output_tokens` spent on reasoning.
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    reasoning_tokens: u64,
    /// Part of the input (`input_tokens` + cache reads + cache writes) that was audio.
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    audio_input_tokens: u64,
    /// Part of `output_tokens` that was audio.
    #[serde(default)]
    #[schema(maximum = 1000000000.0)]
    audio_output_tokens: u64,
    /// The client estimated the counts (the provider reported none, e.g. a stopped stream).
    #[serde(default)]
    estimated: bool,
}

impl UsageWire {
    /// The breakdown beyond the four buckets as stored JSON, or `None` when there is none.
    fn detail(&self) -> Option<String> {
        let mut d = serde_json::Map::new();
        for (k, v) in [
            ("reasoning_tokens", self.reasoning_tokens),
            ("audio_input_tokens", self.audio_input_tokens),
            ("audio_output_tokens", self.audio_output_tokens),
        ] {
            if v > 0 {
                d.insert(k.into(), v.into());
            }
        }
        if self.estimated {
            d.insert("estimated".into(), true.into());
        }
        (!d.is_empty()).then(|| Value::Object(d).to_string())
    }
}

/// One LLM call (or, with `kind: custom`, an app event). Fields not listed are ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EventIn)]
struct EventWire {
    /// The client's id for the call (a UUID): a resend with the same id counts once.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    /// The `withTrace` block the call was made in.
    #[schema(max_length = 128)]
    trace_id: Option<String>,
    /// When the call started: RFC 3339, at most 24 hours in the future and 10 years in the past.
    #[schema(format = DateTime)]
    timestamp: String,
    kind: Option<Kind>,
    /// Custom events (`log({ name })`) may name themselves instead of a model.
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    /// Required for `llm` calls (e.g. `openai`, `anthropic`).
    #[schema(min_length = 1, max_length = 256)]
    provider: Option<String>,
    /// Required for `llm` calls: the model as the provider reported it.
    #[schema(min_length = 1, max_length = 256)]
    model: Option<String>,
    /// The part of the app that made the call.
    #[schema(max_length = 256)]
    agent: Option<String>,
    /// The request route (`POST /api/chat`) the call served.
    #[schema(max_length = 256)]
    route_tag: Option<String>,
    /// The call's tags (`userId`, `plan`, `org`, ...): at most 64; keys 1–64 characters, values
    /// at most 512 (`userId` at least 1). A call without tags takes its trace's.
    tags: Option<BTreeMap<String, String>>,
    usage: Option<UsageWire>,
    /// The call's cost in dollars as a decimal string (`"0.0125"`), replacing the price table's.
    #[schema(pattern = r"^(?:[0-9]{1,4}(?:\.[0-9]{1,18})?|10000(?:\.0{1,18})?)$")]
    cost_usd: Option<String>,
    /// At most one week.
    #[schema(maximum = 604800000)]
    latency_ms: Option<u64>,
    status: Option<Status>,
    /// The error message of a failed call.
    #[schema(max_length = 16384)]
    error: Option<String>,
    /// Names of the tools the call offered or used: at most 256, each 1–256 characters.
    #[schema(max_items = 256)]
    tools: Option<Vec<String>>,
    /// The prompt as sent (any JSON); kept unless the project's privacy mode drops it.
    prompt: Option<Value>,
    /// The response (any JSON); kept unless the project's privacy mode drops it.
    response: Option<Value>,
}

/// A `withTrace` block: the request its calls served, with the tags its calls inherit.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TraceIn)]
struct TraceWire {
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    #[schema(max_length = 256)]
    route_tag: Option<String>,
    /// Tags every call of the trace without its own tags takes (same limits as a call's).
    tags: Option<BTreeMap<String, String>>,
    /// RFC 3339, at most 24 hours in the future and 10 years in the past.
    #[schema(format = DateTime)]
    started_at: String,
    /// Not before `started_at`.
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    status: Option<Status>,
}

/// Reads the body up to the limit. An oversized body is still drained (up to 4× the limit) so
/// that the client reads a clean 413 instead of a reset connection.
async fn read_raw(mut body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut raw = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad("body", format!("could not read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                raw.extend_from_slice(&data);
            } else if seen > 4 * limit {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(raw)
}

/// Reads the body up to `limit` bytes, inflating gzip (also bounded: a zip bomb gets 413).
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > 4 * limit) {
        return Err(ApiError::too_large(limit));
    }
    let raw = read_raw(body, limit).await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => inflate(&raw, limit),
        Some(other) => Err(ApiError {
            status: axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("Content-Encoding {other:?} is not supported; use gzip or none"),
            field: Some("Content-Encoding".into()),
        }),
    }
}

/// Inflates a gzip body, at most `limit` bytes of it (a zip bomb gets 413).
pub(crate) fn inflate(raw: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad("body", format!("invalid gzip data: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(out)
}

/// Refuses a batch with a call or trace from before the project's retention window (the UTC
/// day `days` days ago, as retention counts): it would be stored only to be deleted.
fn within_retention(
    traces: &[TraceIn],
    events: &[EventIn],
    days: Option<i64>,
    now_ms: i64,
) -> Result<(), ApiError> {
    let Some(days) = days else { return Ok(()) };
    let days = days.clamp(1, app::store::projects::MAX_RETENTION_DAYS);
    let cutoff = (now_ms.div_euclid(86_400_000) - days) * 86_400_000;
    let why = format!("is older than the project's retention ({days} days)");
    if let Some(i) = events.iter().position(|e| e.ts_ms < cutoff) {
        return Err(ApiError::bad(format!("events[{i}].timestamp"), why));
    }
    if let Some(i) = traces.iter().position(|t| t.started_ms < cutoff) {
        return Err(ApiError::bad(format!("traces[{i}].started_at"), why));
    }
    Ok(())
}

fn parse_time(field: &str, v: &str, now_ms: i64) -> Result<i64, ApiError> {
    let ms = chrono::DateTime::parse_from_rfc3339(v)
        .map_err(|_| ApiError::bad(field, "must be an RFC 3339 timestamp such as 2026-11-27T17:43:05Z"))?
        .timestamp_millis();
    if ms > now_ms + MAX_FUTURE_MS {
        return Err(ApiError::bad(field, "is more than 24 hours in the future"));
    }
    if ms < now_ms.saturating_sub(MAX_AGE_MS) {
        return Err(ApiError::bad(field, "is more than 10 years in the past"));
    }
    Ok(ms)
}

/// Most dollars one call may cost (`cost_usd`).
pub const MAX_COST_USD: u32 = 10_000;

/// Most nano-USD one call may cost, sent as `cost_usd` or priced from its tokens.
pub const MAX_COST_NANO: i64 = MAX_COST_USD as i64 * 1_000_000_000;

/// Whether a call's cost (its `cost_usd`, else its tokens at the price table's rates) is within
/// [`MAX_COST_NANO`]: caps on each call keep every sum of them far from overflowing.
pub fn cost_within_cap(provider: &str, model: &str, usage: &Usage, override_nano: Option<i64>) -> bool {
    app::pricing::cost_of(provider, model, usage, override_nano).nano().is_none_or(|n| n <= MAX_COST_NANO)
}

/// `cost_usd` as the API document's pattern says: 1–4 whole digits and up to 18 decimals, or
/// 10000 exactly.
fn cost_usd_ok(c: &str) -> bool {
    let (whole, frac) = c.split_once('.').map_or((c, None), |(w, f)| (w, Some(f)));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| (1..=18).contains(&f.len()) && digits(f));
    let small = (1..=4).contains(&whole.len()) && digits(whole) && frac_ok;
    let cap =
        whole == "10000" && frac.is_none_or(|f| (1..=18).contains(&f.len()) && f.bytes().all(|b| b == b'0'));
    small || cap
}

fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad(field, format!("must be {min} to {max} characters long")));
    }
    Ok(())
}

fn opt_len(field: &str, v: &Option<String>, max: usize) -> Result<(), ApiError> {
    v.as_deref().map_or(Ok(()), |v| check_len(field, v, 0, max))
}

fn tags(field: &str, tags: Option<BTreeMap<String, String>>) -> Result<BTreeMap<String, String>, ApiError> {
    let tags = tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad(field, format!("at most {MAX_TAGS} tags")));
    }
    for (k, v) in &tags {
        check_len(&format!("{field}.{k}"), k, 1, MAX_TAG_KEY)?;
        check_len(&format!("{field}.{k}"), v, 0, MAX_TAG_VALUE)?;
    }
    // The end user's id is what deletion finds them by: an empty one could never be deleted.
    if tags.get("userId").is_some_and(|u| u.is_empty()) {
        return Err(ApiError::bad(
            format!("{field}.userId"),
            "must not be empty (leave the tag out instead)",
        ));
    }
    Ok(tags)
}

fn event(i: usize, w: EventWire, now_ms: i64) -> Result<EventIn, ApiError> {
    let f = |name: &str| format!("events[{i}].{name}");
    check_len(&f("id"), &w.id, 1, MAX_ID)?;
    opt_len(&f("trace_id"), &w.trace_id, MAX_ID)?;
    let kind = w.kind.unwrap_or(Kind::Llm);
    if let Some(name) = &w.name {
        check_len(&f("name"), name, 1, MAX_NAME)?;
    }
    let (provider, model) = match kind {
        Kind::Llm => (
            w.provider.ok_or_else(|| ApiError::bad(f("provider"), "is required for llm events"))?,
            w.model.ok_or_else(|| ApiError::bad(f("model"), "is required for llm events"))?,
        ),
        Kind::Custom => (
            w.provider.unwrap_or_else(|| "custom".into()),
            w.model.or(w.name).unwrap_or_else(|| "custom".into()),
        ),
    };
    check_len(&f("provider"), &provider, 1, MAX_NAME)?;
    check_len(&f("model"), &model, 1, MAX_NAME)?;
    opt_len(&f("agent"), &w.agent, MAX_NAME)?;
    opt_len(&f("route_tag"), &w.route_tag, MAX_NAME)?;
    opt_len(&f("error"), &w.error, MAX_ERROR)?;
    let usage = w.usage.unwrap_or_default();
    for (name, v) in [
        ("input_tokens", usage.input_tokens),
        ("output_tokens", usage.output_tokens),
        ("cache_read_tokens", usage.cache_read_tokens),
        ("cache_creation_tokens", usage.cache_creation_tokens),
        ("cache_creation_1h_tokens", usage.cache_creation_1h_tokens),
        ("reasoning_tokens", usage.reasoning_tokens),
        ("audio_input_tokens", usage.audio_input_tokens),
        ("audio_output_tokens", usage.audio_output_tokens),
    ] {
        if v > MAX_TOKENS {
            return Err(ApiError::bad(f(&format!("usage.{name}")), format!("must be at most {MAX_TOKENS}")));
        }
    }
    if usage.cache_creation_1h_tokens > usage.cache_creation_tokens {
        return Err(ApiError::bad(
            f("usage.cache_creation_1h_tokens"),
            "is the 1-hour part of cache_creation_tokens and cannot exceed it",
        ));
    }
    if usage.reasoning_tokens.saturating_add(usage.audio_output_tokens) > usage.output_tokens {
        return Err(ApiError::bad(
            f("usage.reasoning_tokens"),
            "reasoning_tokens and audio_output_tokens are parts of output_tokens and together cannot exceed it",
        ));
    }
    let all_input = usage.input_tokens + usage.cache_read_tokens + usage.cache_creation_tokens;
    if usage.audio_input_tokens > all_input {
        return Err(ApiError::bad(
            f("usage.audio_input_tokens"),
            "is part of the input (input, cache read and cache creation tokens) and cannot exceed it",
        ));
    }
    let cost_override_nano = w
        .cost_usd
        .as_deref()
        .map(|c| {
            if !cost_usd_ok(c) {
                return Err(ApiError::bad(
                    f("cost_usd"),
                    format!("must be a decimal string of dollars from 0 to {MAX_COST_USD} with at most 18 decimals, such as \"0.0125\""),
                ));
            }
            parse_usd_to_nano(c).map_err(|e| ApiError::bad(f("cost_usd"), e))
        })
        .transpose()?;
    let tools = w.tools.unwrap_or_default();
    if tools.len() > MAX_TOOLS {
        return Err(ApiError::bad(f("tools"), format!("at most {MAX_TOOLS} tool names")));
    }
    for (j, t) in tools.iter().enumerate() {
        check_len(&f(&format!("tools[{j}]")), t, 1, MAX_NAME)?;
    }
    let latency_ms = w
        .latency_ms
        .map(|l| i64::try_from(l).ok().filter(|l| *l <= MAX_LATENCY_MS))
        .map(|l| l.ok_or_else(|| ApiError::bad(f("latency_ms"), "must be at most one week")))
        .transpose()?;
    let json_text = |v: Option<Value>| v.filter(|v| !v.is_null()).map(|v| v.to_string());
    let priced = Usage {
        input: usage.input_tokens,
        output: usage.output_tokens,
        cache_read: usage.cache_read_tokens,
        cache_creation: usage.cache_creation_tokens,
        cache_creation_1h: usage.cache_creation_1h_tokens,
    };
    if !cost_within_cap(&provider, &model, &priced, cost_override_nano) {
        return Err(ApiError::bad(
            f("usage"),
            format!("prices to more than ${MAX_COST_USD} for one call at {model}'s rates"),
        ));
    }
    Ok(EventIn {
        ts_ms: parse_time(&f("timestamp"), &w.timestamp, now_ms)?,
        tags: tags(&f("tags"), w.tags)?,
        id: w.id,
        trace_id: w.trace_id,
        kind: if kind == Kind::Llm { "llm" } else { "custom" }.into(),
        provider,
        model,
        agent: w.agent.unwrap_or_default(),
        route_tag: w.route_tag,
        usage: priced,
        cost_override_nano,
        latency_ms,
        is_error: w.status == Some(Status::Error),
        cancelled: w.status == Some(Status::Cancelled),
        usage_detail: usage.detail(),
        error: w.error,
        tools,
        prompt: json_text(w.prompt),
        response: json_text(w.response),
    })
}

fn trace(i: usize, w: TraceWire, now_ms: i64) -> Result<TraceIn, ApiError> {
    let f = |name: &str| format!("traces[{i}].{name}");
    check_len(&f("id"), &w.id, 1, MAX_ID)?;
    opt_len(&f("route_tag"), &w.route_tag, MAX_NAME)?;
    let started_ms = parse_time(&f("started_at"), &w.started_at, now_ms)?;
    let ended_ms = w.ended_at.as_deref().map(|e| parse_time(&f("ended_at"), e, now_ms)).transpose()?;
    if ended_ms.is_some_and(|e| e < started_ms) {
        return Err(ApiError::bad(f("ended_at"), "is before started_at"));
    }
    Ok(TraceIn {
        tags: tags(&f("tags"), w.tags)?,
        id: w.id,
        route_tag: w.route_tag,
        started_ms,
        ended_ms,
        status: w.status.map(|s| s.as_str().to_string()),
    })
}

/// Turns serde's path (`events[3].usage.input_tokens`, or `.` for the root) into a field name.
fn serde_field(path: &serde_path_to_error::Path) -> String {
    let p = path.to_string();
    if p.is_empty() || p == "." { "body".to_string() } else { p }
}

/// Parses and validates a whole batch; the first problem is reported with its field.
pub(crate) fn parse_batch(bytes: &[u8], now_ms: i64) -> Result<(Vec<TraceIn>, Vec<EventIn>), ApiError> {
    // serde would also read a struct from an array (`[]`); a batch is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad("body", "must be a JSON object with \"events\" and/or \"traces\""));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let batch: Batch = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // Broken JSON is the body's fault; a wrong type or value is the field's.
        let field = match e.inner().classify() {
            serde_json::error::Category::Data => serde_field(e.path()),
            _ => "body".to_string(),
        };
        ApiError::bad(field, e.into_inner().to_string())
    })?;
    de.end().map_err(|e| ApiError::bad("body", e.to_string()))?;
    let (events, traces) = (batch.events, batch.traces);
    if events.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::bad("events", format!("at most {MAX_BATCH_ITEMS} events per batch")));
    }
    if traces.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::bad("traces", format!("at most {MAX_BATCH_ITEMS} traces per batch")));
    }
    let traces =
        traces.into_iter().enumerate().map(|(i, t)| trace(i, t, now_ms)).collect::<Result<_, _>>()?;
    let events =
        events.into_iter().enumerate().map(|(i, e)| event(i, e, now_ms)).collect::<Result<_, _>>()?;
    Ok((traces, events))
}

/// Stores a batch; answers only after it is committed.
#[utoipa::path(
    post,
    path = "/v1/events",
    operation_id = "ingestEvents",
    summary = "Ingest a batch of calls and traces (idempotent per id); answered once on disk.",
    request_body(content = Batch, description = "JSON, optionally gzip (`Content-Encoding: gzip`)."),
    responses(
        (status = 200, description = "Committed to disk.", body = IngestReply),
        (status = 400, description = "A bad field: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
        (status = 413, description = "Body over 10 MiB (raw or inflated).", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Encoding.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestReply>, ApiError> {
    let stored = async {
        let project = authorize(&state, &headers, &[Scope::Ingest]).await?;
        let bytes = read_body(&headers, body, MAX_BODY_BYTES).await?;
        let now = app::store::now_ms();
        let (traces, events) = parse_batch(&bytes, now)?;
        let retention = state.store.project_by_id(project).await?.retention_days;
        within_retention(&traces, &events, retention, now)?;
        Ok::<_, ApiError>(state.store.ingest(project, &traces, &events).await?)
    }
    .await;
    super::metrics::ingest_outcome(
        stored.as_ref().map(|out| (out.accepted as i64, out.duplicates as i64)).map_err(|e| e.status),
    );
    let out = stored?;
    Ok(Json(IngestReply { accepted: out.accepted as i64, duplicates: out.duplicates as i64 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        parse_batch(body.as_bytes(), 1_800_000_000_000)
            .err()
            .and_then(|e| e.field)
            .unwrap_or_else(|| "accepted".into())
    }

    const OK: &str = r#"{"id":"e1","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"gpt-4o"}"#;

    #[test]
    fn valid_event_parses() {
        assert_eq!(field_of(&format!(r#"{{"events":[{OK}]}}"#)), "accepted");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"events":[OK,{"id":"e2","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m","usage":{"input_tokens":-1}}]}"#,
                "events[1].usage.input_tokens",
            ),
            (
                r#"{"events":[{"id":"e2","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m","usage":{"output_tokens":1.5}}]}"#,
                "events[0].usage.output_tokens",
            ),
            (
                r#"{"events":[{"id":"e2","timestamp":"yesterday","provider":"openai","model":"m"}]}"#,
                "events[0].timestamp",
            ),
            (
                r#"{"events":[{"id":"e2","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m","status":"meh"}]}"#,
                "events[0].status",
            ),
            (
                r#"{"events":[{"id":"e2","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m","cost_usd":"-1"}]}"#,
                "events[0].cost_usd",
            ),
            (
                r#"{"events":[{"id":"e2","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m","tags":{"plan":3}}]}"#,
                "events[0].tags.plan",
            ),
            (
                r#"{"events":[{"timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m"}]}"#,
                "events[0]",
            ),
            (
                r#"{"traces":[{"id":"t","started_at":"2026-11-27T10:00:00Z","ended_at":"2026-11-27T09:00:00Z"}]}"#,
                "traces[0].ended_at",
            ),
            // An empty batch is a no-op; a null list is not a list.
            (r#"{}"#, "accepted"),
            (r#"{"events":[],"traces":null}"#, "traces"),
            (
                r#"{"events":[{"id":"e2","timestamp":"2026-11-27T10:00:00Z","provider":"openai","model":"m","cost_usd":"10000.5"}]}"#,
                "events[0].cost_usd",
            ),
            (
                r#"{"events":[{"id":"e2","timestamp":"2026-11-27T10:00:00Z","kind":"custom","name":""}]}"#,
                "events[0].name",
            ),
            (r#"{"events":[OK"#, "body"),
            (r#"[]"#, "body"),
        ];
        for (body, field) in cases {
            assert_eq!(field_of(&body.replace("OK", OK)), field, "{body}");
        }
    }

    #[test]
    fn deep_nesting_is_rejected_not_crashed() {
        let deep = format!(
            r#"{{"events":[{{"id":"e","timestamp":"2026-11-27T10:00:00Z","provider":"p","model":"m","prompt":{}1{}}}]}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse_batch(deep.as_bytes(), 1_800_000_000_000).is_err());
    }
}
