//! The read API: the dashboard's views as JSON, through the same store functions.

use super::error::ApiError;
use super::extract::authorize;
use app::model::{
    EventDetail, TraceDetail, TracesPage, TracesParams, UsersPage, UsersParams, query::decode_pairs,
};
use app::state::AppState;
use app::store::keys::Scope;
use app::store::{now_ms, users::resolve_filter};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;

/// `GET /v1/me/ai-apps/users`: users ranked by spend (or `sort`), filtered by window and tags.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<UsersPage>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let pairs = decode_pairs(query.as_deref().unwrap_or(""));
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "page") {
        return Err(ApiError::bad(k.as_str(), "use cursor (from next_cursor) to page the API"));
    }
    let params = UsersParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let filter = resolve_filter(&params, now_ms())?;
    let page = state
        .store
        .list_users(project, &filter, params.sort, params.dir, params.offset, params.limit)
        .await?;
    Ok(Json(page))
}

/// `GET /v1/me/ai-apps/traces`: traces that started in the window, filtered by user, tags and a
/// route-tag search (`q`), sorted by `started|spend|calls|tokens`.
pub async fn traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<TracesPage>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let pairs = decode_pairs(query.as_deref().unwrap_or(""));
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "page") {
        return Err(ApiError::bad(k.as_str(), "use cursor (from next_cursor) to page the API"));
    }
    let params = TracesParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let filter = resolve_filter(&params, now_ms())?;
    let page = state
        .store
        .list_traces(
            project,
            &filter,
            params.q.as_deref(),
            params.sort,
            params.dir,
            params.offset,
            params.limit,
        )
        .await?;
    Ok(Json(page))
}

/// `GET /v1/me/ai-apps/traces/{trace_id}`: one trace with its events.
pub async fn trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Result<Json<TraceDetail>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
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
) -> Result<Json<EventDetail>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    state
        .store
        .get_event(project, &event_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such event"))
}
