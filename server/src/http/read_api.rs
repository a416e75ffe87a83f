//! The read API: the dashboard's views as JSON, through the same store functions.

use super::error::ApiError;
use super::extract::authorize;
use app::model::{
    EventDetail, SortKey, TraceDetail, TraceSort, TracesPage, UserSort, UsersFilter, UsersPage, UsersParams,
    ViewParams, query::decode_pairs,
};
use app::state::AppState;
use app::store::keys::Scope;
use app::store::{now_ms, users::resolve_filter};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;

/// A list endpoint's query: the API pages with `cursor`, so `page` is refused.
fn list_query<S: SortKey>(query: Option<&str>) -> Result<(ViewParams<S>, UsersFilter), ApiError> {
    let pairs = decode_pairs(query.unwrap_or(""));
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "page") {
        return Err(ApiError::bad(k.as_str(), "use cursor (from next_cursor) to page the API"));
    }
    let params = ViewParams::<S>::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let filter = resolve_filter(&params, now_ms())?;
    Ok((params, filter))
}

/// `GET /v1/me/ai-apps/users`: users ranked by spend (or `sort`), filtered by window and tags.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<UsersPage>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let (params, filter) = list_query::<UserSort>(query.as_deref())?;
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
    let (params, filter) = list_query::<TraceSort>(query.as_deref())?;
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

/// Parses the Overview / Models query (window or range, user, tags) into a filter.
fn view_query(query: Option<&str>) -> Result<(UsersParams, UsersFilter), ApiError> {
    let pairs = decode_pairs(query.unwrap_or(""));
    if let Some((k, _)) =
        pairs.iter().find(|(k, _)| matches!(k.as_str(), "page" | "cursor" | "limit" | "sort" | "dir" | "q"))
    {
        return Err(ApiError::bad(k.as_str(), "not a parameter of this endpoint"));
    }
    let params = UsersParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let filter = resolve_filter(&params, now_ms())?;
    Ok((params, filter))
}

/// `GET /v1/me/ai-apps/overview`: KPIs now and in the previous window, spend by model over time,
/// top users and models.
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<app::model::Overview>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let (params, filter) = view_query(query.as_deref())?;
    let mut o = state.store.overview(project, &filter, params.stack).await?;
    o.chart_svg.clear();
    Ok(Json(o))
}

/// `GET /v1/me/ai-apps/models`: per-model totals, by spend.
pub async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let (_, filter) = view_query(query.as_deref())?;
    let view = state.store.list_models(project, &filter).await?;
    Ok(Json(serde_json::json!({ "models": view.models, "spend_by_model": view.spend_by_model })))
}

/// `GET /v1/me/ai-apps/tools`: per tool name, calls, users, traces and the spend of those calls.
pub async fn tools(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let (_, filter) = view_query(query.as_deref())?;
    let tools = state.store.list_tools(project, &filter).await?;
    Ok(Json(serde_json::json!({ "tools": tools })))
}
