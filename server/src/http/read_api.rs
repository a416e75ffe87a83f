//! The read API: the dashboard's views as JSON (and lists as CSV), through the same store
//! functions the pages use.

use super::csv;
use super::error::ApiError;
use super::extract::{authorize, authorize_key};
use app::model::{
    EventDetail, SortKey, TraceDetail, TraceSort, UserSort, UsersFilter, ViewParams, query::decode_pairs,
};
use app::state::AppState;
use app::store::keys::Scope;
use app::store::{now_ms, window::resolve_filter};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Parameters every view takes: the window or range and the filters.
const FILTERS: &[&str] = &["window", "from", "to", "user", "provider", "agent", "tag"];
/// Parameters of paged, sortable lists.
const LIST: &[&str] = &["sort", "dir", "limit", "cursor"];

/// A read endpoint's query, checked against the parameters that endpoint takes.
struct ApiQuery<S> {
    params: ViewParams<S>,
    filter: UsersFilter,
    csv: bool,
    /// `limit` when given: a CSV export is the whole list unless the query limits it.
    max_rows: Option<u32>,
}

/// Parses a query holding the common filters plus `extra` (`format`, `by`, `q`, `stack`, the
/// list parameters, ...). Anything else is a 400 naming it, so a typo never silently widens a
/// view.
fn api_query<S: SortKey>(query: Option<&str>, extra: &[&[&str]]) -> Result<ApiQuery<S>, ApiError> {
    let takes = |k: &str| FILTERS.contains(&k) || extra.iter().any(|set| set.contains(&k));
    let mut csv = false;
    let mut rest = Vec::new();
    for (k, v) in decode_pairs(query.unwrap_or("")) {
        match k.as_str() {
            "page" => return Err(ApiError::bad(k, "use cursor (from next_cursor) to page the API")),
            "format" if takes("format") => {
                csv = match v.as_str() {
                    "json" => false,
                    "csv" => true,
                    _ => return Err(ApiError::bad(k, "must be json or csv")),
                }
            }
            key if takes(key) || key.starts_with("tag.") => rest.push((k, v)),
            _ => return Err(ApiError::bad(k, "not a parameter of this endpoint")),
        }
    }
    let params = ViewParams::<S>::parse(rest.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let filter = resolve_filter(&params, now_ms())?;
    let max_rows = rest.iter().any(|(k, _)| k == "limit").then_some(params.limit);
    Ok(ApiQuery { params, filter, csv, max_rows })
}

/// Refuses any query parameter (endpoints addressed by path alone).
fn no_query(query: Option<&str>) -> Result<(), ApiError> {
    match decode_pairs(query.unwrap_or("")).into_iter().next() {
        Some((k, _)) => Err(ApiError::bad(k, "not a parameter of this endpoint")),
        None => Ok(()),
    }
}

const USER_COLUMNS: &[&str] = &[
    "user_id",
    "spend_usd",
    "spend_nano",
    "traces",
    "events",
    "tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "unpriced_events",
    "last_seen",
    "top_model",
];
const TRACE_COLUMNS: &[&str] = &[
    "trace_id",
    "started_at",
    "route_tag",
    "user_id",
    "calls",
    "tokens",
    "spend_usd",
    "spend_nano",
    "unpriced_events",
    "errors",
    "duration_ms",
    "status",
];
const MODEL_COLUMNS: &[&str] = &[
    "provider",
    "model",
    "calls",
    "users",
    "errors",
    "unpriced",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "spend_usd",
    "spend_nano",
    "avg_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
];
const TOOL_COLUMNS: &[&str] = &["tool", "calls", "users", "traces", "spend_usd", "spend_nano"];
const SEGMENT_COLUMNS: &[&str] = &[
    "value",
    "spend_usd",
    "spend_nano",
    "share_permille",
    "users",
    "traces",
    "calls",
    "errors",
    "unpriced_events",
    "tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
];

/// The Users list as CSV, every row from the cursor on (at most `max` rows), streamed.
pub fn users_csv(
    state: AppState,
    project: i64,
    q: &ViewParams<UserSort>,
    filter: UsersFilter,
    max: Option<u32>,
) -> Response {
    let (sort, dir) = (q.sort, q.dir);
    csv::stream("users.csv", USER_COLUMNS, q.offset, max, move |offset, limit| {
        let (state, filter) = (state.clone(), filter.clone());
        async move {
            let page = state.store.list_users(project, &filter, sort, dir, offset, limit).await?;
            let more = page.next_cursor.is_some();
            Ok((page.users, more))
        }
    })
}

/// The Traces list as CSV, streamed like [`users_csv`].
pub fn traces_csv(
    state: AppState,
    project: i64,
    q: &ViewParams<TraceSort>,
    filter: UsersFilter,
    max: Option<u32>,
) -> Response {
    let (sort, dir, search) = (q.sort, q.dir, q.q.clone());
    csv::stream("traces.csv", TRACE_COLUMNS, q.offset, max, move |offset, limit| {
        let (state, filter, search) = (state.clone(), filter.clone(), search.clone());
        async move {
            let page = state
                .store
                .list_traces(project, &filter, search.as_deref(), sort, dir, offset, limit)
                .await?;
            let more = page.next_cursor.is_some();
            Ok((page.traces, more))
        }
    })
}

/// `GET /v1/me/ai-apps/users`: users ranked by spend (or `sort`), filtered by window and tags.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[LIST, &["format"]])?;
    if q.csv {
        return Ok(users_csv(state, project, &q.params, q.filter, q.max_rows));
    }
    let p = &q.params;
    let page = state.store.list_users(project, &q.filter, p.sort, p.dir, p.offset, p.limit).await?;
    Ok(Json(page).into_response())
}

/// `GET /v1/me/ai-apps/users/{user_id}`: one user's KPIs, spend over time, models and latest
/// traces.
pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let mut q = api_query::<UserSort>(query.as_deref(), &[&["stack"]])?;
    if q.params.user.is_some() {
        return Err(ApiError::bad("user", "the user is given by the path"));
    }
    q.filter.user = Some(user_id.clone());
    let mut overview = state.store.overview(project, &q.filter, q.params.stack).await?;
    overview.chart_svg.clear();
    let models = state.store.list_models(project, &q.filter).await?.models;
    let traces =
        state.store.list_traces(project, &q.filter, None, TraceSort::Started, Default::default(), 0, 50);
    Ok(Json(json!({
        "user_id": user_id,
        "from": overview.from,
        "to": overview.to,
        "current": overview.current,
        "previous": overview.previous,
        "spend_by_model": overview.spend_by_model,
        "models": models,
        "traces": traces.await?.traces,
    })))
}

/// `GET /v1/me/ai-apps/traces`: traces that started in the window, filtered by user, tags and a
/// route-tag search (`q`), sorted by `started|spend|calls|tokens`.
pub async fn traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<TraceSort>(query.as_deref(), &[LIST, &["format", "q"]])?;
    if q.csv {
        return Ok(traces_csv(state, project, &q.params, q.filter, q.max_rows));
    }
    let p = &q.params;
    let page =
        state.store.list_traces(project, &q.filter, p.q.as_deref(), p.sort, p.dir, p.offset, p.limit).await?;
    Ok(Json(page).into_response())
}

/// `GET /v1/me/ai-apps/traces/{trace_id}`: one trace with its events.
pub async fn trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<TraceDetail>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    no_query(query.as_deref())?;
    state
        .store
        .get_trace(project, &trace_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such trace"))
}

/// `GET /v1/me/ai-apps/events/{event_id}`: one event in full.
pub async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<EventDetail>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    no_query(query.as_deref())?;
    state
        .store
        .get_event(project, &event_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such event"))
}

/// `GET /v1/me/ai-apps/overview`: KPIs now and in the previous window, spend over time (by
/// `stack=model|provider`), top users and models.
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<app::model::Overview>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[&["stack"]])?;
    let mut o = state.store.overview(project, &q.filter, q.params.stack).await?;
    o.chart_svg.clear();
    Ok(Json(o))
}

/// `GET /v1/me/ai-apps/models`: per-model totals, by spend.
pub async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[&["format"]])?;
    let view = state.store.list_models(project, &q.filter).await?;
    if q.csv {
        return Ok(csv::respond("models.csv", MODEL_COLUMNS, &view.models));
    }
    Ok(Json(json!({ "models": view.models, "spend_by_model": view.spend_by_model })).into_response())
}

/// `GET /v1/me/ai-apps/tools`: per tool name, calls, users, traces and the spend of those calls.
pub async fn tools(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[&["format"]])?;
    let tools = state.store.list_tools(project, &q.filter).await?;
    if q.csv {
        return Ok(csv::respond("tools.csv", TOOL_COLUMNS, &tools));
    }
    Ok(Json(json!({ "tools": tools })).into_response())
}

/// Segments a JSON answer holds unless `limit` says otherwise.
const SEGMENTS_DEFAULT_LIMIT: usize = app::model::MAX_PAGE as usize;

/// `GET /v1/me/ai-apps/segments?by=<tag key>`: spend, users, traces and tokens per value of a
/// tag key, by spend.
pub async fn segments(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[&["format", "by", "limit"]])?;
    let by =
        q.params.by.ok_or_else(|| ApiError::bad("by", "required: the tag key to group by, e.g. by=plan"))?;
    // JSON answers at most `limit` (default 500) segments, the biggest; a CSV has them all
    // unless limited.
    let limit = match (q.max_rows, q.csv) {
        (Some(n), _) => Some(n as usize),
        (None, true) => None,
        (None, false) => Some(SEGMENTS_DEFAULT_LIMIT),
    };
    let view = state.store.segments(project, &q.filter, Some(&by), limit).await?;
    if q.csv {
        return Ok(csv::respond("segments.csv", SEGMENT_COLUMNS, &view.segments));
    }
    Ok(Json(view).into_response())
}

/// `DELETE /v1/me/ai-apps/users/{user_id}` (admin key): removes every event, trace and rollup
/// contribution of the user, and reports what went.
pub async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (project, prefix) = authorize_key(&state, &headers, &[Scope::Admin]).await?;
    no_query(query.as_deref())?;
    let removed = state.store.delete_user(project, &user_id, &format!("key:{prefix}")).await?;
    Ok(Json(json!({ "deleted": { "events": removed.events, "traces": removed.traces } })))
}
