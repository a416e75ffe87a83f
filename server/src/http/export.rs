//! The dashboard's CSV downloads (`/export/users.csv`, `/export/traces.csv`): the page's own
//! query string, every row of the view, for the project the browser picked.

use super::error::ApiError;
use super::read_api::{traces_csv, users_csv};
use app::model::{SortKey, TraceSort, UserSort, UsersFilter, ViewParams};
use app::state::{AppState, RequestAuth};
use app::store::{now_ms, window::resolve_filter};
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;

fn view<S: SortKey>(query: Option<&str>) -> Result<(ViewParams<S>, UsersFilter), ApiError> {
    let mut params = ViewParams::<S>::parse_query(query.unwrap_or(""))?;
    params.offset = 0; // every page
    let filter = resolve_filter(&params, now_ms())?;
    Ok((params, filter))
}

/// `GET /export/users.csv`.
pub async fn users(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (params, filter) = view::<UserSort>(query.as_deref())?;
    let project = auth.project;
    users_csv(state, project, &params, filter, None).await
}

/// `GET /export/traces.csv`.
pub async fn traces(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (params, filter) = view::<TraceSort>(query.as_deref())?;
    let project = auth.project;
    Ok(traces_csv(state, project, &params, filter, None))
}
