//! Server functions: thin wrappers that get the state, validate, and call the store.

use crate::error::AppError;
use crate::model::UsersPage;
use leptos::prelude::*;

/// One page of the Users view for the dashboard's query string (`window=7d&sort=tokens&...`).
#[server]
pub async fn get_users(query: String) -> Result<UsersPage, AppError> {
    use crate::model::UsersParams;
    use crate::store::{now_ms, users::resolve_filter};
    let state = crate::state::state()?;
    let params = UsersParams::parse_query(&query)?;
    let filter = resolve_filter(&params, now_ms())?;
    Ok(state
        .store
        .list_users(state.default_project, &filter, params.sort, params.dir, params.offset, params.limit)
        .await?)
}
