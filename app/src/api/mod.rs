//! Server functions: thin wrappers that get the state, validate, and call the store.

use crate::error::AppError;
use crate::model::UsersPage;
use leptos::prelude::*;

/// One page of the Users view for the dashboard's query string (`window=7d&sort=tokens&...`).
#[server]
pub async fn get_users(query: String) -> Result<UsersPage, AppError> {
    let params = crate::model::UsersParams::parse_query(&query)?;
    let (state, filter) = filter_of(&query)?;
    Ok(state
        .store
        .list_users(state.default_project, &filter, params.sort, params.dir, params.offset, params.limit)
        .await?)
}

/// One page of the Traces view for the dashboard's query string.
#[server]
pub async fn get_traces(query: String) -> Result<crate::model::TracesPage, AppError> {
    use crate::model::TracesParams;
    use crate::store::{now_ms, users::resolve_filter};
    let state = crate::state::state()?;
    let params = TracesParams::parse_query(&query)?;
    let filter = resolve_filter(&params, now_ms())?;
    Ok(state
        .store
        .list_traces(
            state.default_project,
            &filter,
            params.q.as_deref(),
            params.sort,
            params.dir,
            params.offset,
            params.limit,
        )
        .await?)
}

/// One trace with its events, or `None`.
#[server]
pub async fn get_trace(trace_id: String) -> Result<Option<crate::model::TraceDetail>, AppError> {
    let state = crate::state::state()?;
    Ok(state.store.get_trace(state.default_project, &trace_id).await?)
}

/// One event in full, or `None`.
#[server]
pub async fn get_event(event_id: String) -> Result<Option<crate::model::EventDetail>, AppError> {
    let state = crate::state::state()?;
    Ok(state.store.get_event(state.default_project, &event_id).await?)
}

/// The Overview for the dashboard's query string.
#[server]
pub async fn get_overview(query: String) -> Result<crate::model::Overview, AppError> {
    let (state, filter) = filter_of(&query)?;
    let stack = crate::model::UsersParams::parse_query(&query)?.stack;
    Ok(state.store.overview(state.default_project, &filter, stack).await?)
}

/// Per-model totals for the dashboard's query string.
#[server]
pub async fn get_models(query: String) -> Result<crate::model::ModelsView, AppError> {
    let (state, filter) = filter_of(&query)?;
    Ok(state.store.list_models(state.default_project, &filter).await?)
}

/// A number that changes whenever new data is stored: pages poll it (cheap) and refetch their
/// data only when it moved.
#[server]
pub async fn data_version() -> Result<u64, AppError> {
    Ok(crate::state::state()?.store.version())
}

/// Per-tool totals for the dashboard's query string.
#[server]
pub async fn get_tools(query: String) -> Result<Vec<crate::model::ToolRow>, AppError> {
    let (state, filter) = filter_of(&query)?;
    Ok(state.store.list_tools(state.default_project, &filter).await?)
}

/// Providers and agents seen in the window of the dashboard's query string.
#[server]
pub async fn get_filter_values(query: String) -> Result<crate::model::FilterValues, AppError> {
    let (state, filter) = filter_of(&query)?;
    Ok(state.store.filter_values(state.default_project, &filter).await?)
}

/// The state and the filter (window, user, provider, agent, tags) of a view's query string.
#[cfg(feature = "ssr")]
fn filter_of(query: &str) -> Result<(crate::state::AppState, crate::model::UsersFilter), AppError> {
    use crate::model::UsersParams;
    use crate::store::{now_ms, users::resolve_filter};
    let params = UsersParams::parse_query(query)?;
    Ok((crate::state::state()?, resolve_filter(&params, now_ms())?))
}

/// Segments for the dashboard's query string; without `by`, groups by `plan` when that key is
/// in use, else by the first key other than `userId`.
#[server]
pub async fn get_segments(query: String) -> Result<crate::model::SegmentsView, AppError> {
    let (state, filter) = filter_of(&query)?;
    let by = match crate::model::UsersParams::parse_query(&query)?.by {
        Some(by) => by,
        None => {
            let keys = state.store.tag_keys(state.default_project).await?;
            let pick = keys.iter().find(|k| *k == "plan").or_else(|| keys.iter().find(|k| *k != "userId"));
            match pick.or(keys.first()) {
                Some(k) => k.clone(),
                None => return Ok(crate::model::SegmentsView { keys, ..Default::default() }),
            }
        }
    };
    Ok(state.store.segments(state.default_project, &filter, &by).await?)
}
