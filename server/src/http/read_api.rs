//! The read API: the dashboard's views as JSON, through the same store functions.

use super::error::ApiError;
use super::extract::authorize;
use app::model::{UsersPage, UsersParams, query::decode_pairs};
use app::state::AppState;
use app::store::keys::Scope;
use app::store::{now_ms, users::resolve_filter};
use axum::Json;
use axum::extract::{RawQuery, State};
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
