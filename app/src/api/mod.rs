//! Server functions: thin wrappers that get the state, validate, and call the store. The
//! dashboard's answers are [`Packed`] (see `packed`) and its pages hold them in [`Answer`]s.

mod packed;
mod rendered;
pub use packed::{Answer, HeldCodec, Packed, PackedEncoding, PackedOutput};
pub use rendered::{Rendered, ServerPart};

use crate::error::AppError;

use leptos::prelude::*;

/// One page of the Users view for the dashboard's query string (`window=7d&sort=tokens&...`), rendered.
#[server(endpoint = "get_users", output = PackedOutput)]
pub async fn get_users(query: String) -> Result<Packed<Rendered>, AppError> {
    let (state, project, params, filter) = filter_of(&query)?;
    let page = state
        .store
        .list_users(project, &filter, params.sort, params.dir, params.offset, params.limit)
        .await?;
    Packed::new(&crate::components::users_table::render::users(page, params))
}

/// One page of the Traces view for the dashboard's query string, rendered.
#[server(endpoint = "get_traces", output = PackedOutput)]
pub async fn get_traces(query: String) -> Result<Packed<Rendered>, AppError> {
    let (page, params) = traces_of(&query).await?;
    Packed::new(&crate::routes::traces_page::render::traces(page, params))
}

/// A user's 20 latest traces (the query names the user), rendered.
#[server(endpoint = "get_user_traces", output = PackedOutput)]
pub async fn get_user_traces(query: String) -> Result<Packed<Rendered>, AppError> {
    let (page, params) = traces_of(&format!("{query}&limit=20")).await?;
    if params.user.is_none() {
        return Err(no_user());
    }
    Packed::new(&crate::routes::traces_page::render::latest(page))
}

/// What a user's page's functions answer to a query that names no user.
#[cfg(feature = "ssr")]
fn no_user() -> AppError {
    AppError::BadParam { param: "user".into(), message: "a user's page needs user=".into() }
}

/// The traces of a query string and its parameters.
#[cfg(feature = "ssr")]
async fn traces_of(query: &str) -> Result<(crate::model::TracesPage, crate::model::TracesParams), AppError> {
    use crate::model::TracesParams;
    use crate::store::{now_ms, window::resolve_filter};
    let (state, auth) = crate::state::request()?;
    let params = TracesParams::parse_query(query)?;
    let filter = resolve_filter(&params, now_ms())?;
    let page = state
        .store
        .list_traces(
            auth.project,
            &filter,
            params.q.as_deref(),
            params.sort,
            params.dir,
            params.offset,
            params.limit,
        )
        .await?;
    Ok((page, params))
}

/// One trace with a page of its events (after `cursor`), rendered (or that there is none).
#[server(endpoint = "get_trace", output = PackedOutput)]
pub async fn get_trace(trace_id: String, cursor: Option<String>) -> Result<Packed<Rendered>, AppError> {
    use crate::model::traces::{TRACE_CALLS_PAGE, parse_calls_cursor};
    use crate::routes::trace_page::render;
    let (state, auth) = crate::state::request()?;
    let project = auth.project;
    // A cursor that isn't one (an edited address) starts at the first call.
    let after = cursor.as_deref().and_then(parse_calls_cursor);
    let detail = state.store.get_trace_page(project, &trace_id, after, TRACE_CALLS_PAGE).await?;
    let page = detail.map_or_else(|| Rendered::not_found("trace"), |d| render::trace(d, cursor.is_some()));
    Packed::new(&page)
}

/// One event in full, rendered (or that there is none).
#[server(endpoint = "get_event", output = PackedOutput)]
pub async fn get_event(event_id: String) -> Result<Packed<Rendered>, AppError> {
    use crate::model::traces::{EventPageData, Shown};
    use crate::routes::event_page::render;
    let (state, auth) = crate::state::request()?;
    let project = auth.project;
    let data = state.store.get_event(project, &event_id).await?.map(|detail| EventPageData {
        prompt: detail.prompt.as_deref().map(Shown::of),
        response: detail.response.as_deref().map(Shown::of),
        detail,
    });
    Packed::new(&data.map_or_else(|| Rendered::not_found("event"), render::event))
}

/// The Overview for the dashboard's query string, rendered.
#[server(endpoint = "get_overview", output = PackedOutput)]
pub async fn get_overview(query: String) -> Result<Packed<Rendered>, AppError> {
    use crate::components::shared_filters;
    use crate::routes::overview_page::{OVERVIEW, render};
    let (o, params) = overview_of(&query).await?;
    Packed::new(&render::overview(o, shared_filters(&params), params, OVERVIEW.to_string()))
}

/// A user's page body: the Overview for a query string that names the user (`user=`), rendered
/// with that page's links (its path, the other filters).
#[server(endpoint = "get_user_overview", output = PackedOutput)]
pub async fn get_user_overview(query: String) -> Result<Packed<Rendered>, AppError> {
    use crate::components::shared_filters;
    use crate::model::{UsersParams, query::encode};
    use crate::routes::overview_page::render;
    let (o, params) = overview_of(&query).await?;
    let Some(user) = params.user.as_deref() else { return Err(no_user()) };
    let filters = shared_filters(&params);
    let base = format!("/ai-apps/users/{}", encode(user));
    Packed::new(&render::overview(o, filters, UsersParams { user: None, ..params }, base))
}

/// The Overview (with its chart) of a query string and its parameters.
#[cfg(feature = "ssr")]
async fn overview_of(
    query: &str,
) -> Result<(crate::model::Charted<crate::model::Overview>, crate::model::UsersParams), AppError> {
    let (state, project, params, filter) = filter_of(query)?;
    let view = state.store.overview(project, &filter, params.stack).await?;
    let chart_svg = crate::charts::spend_chart(&view.spend_by_model);
    Ok((crate::model::Charted { view, chart_svg }, params))
}

/// Per-model totals and the chart for the dashboard's query string, rendered.
#[server(endpoint = "get_models", output = PackedOutput)]
pub async fn get_models(query: String) -> Result<Packed<Rendered>, AppError> {
    let (state, project, _, filter) = filter_of(&query)?;
    let view = state.store.list_models(project, &filter).await?;
    let chart_svg = crate::charts::spend_chart(&view.spend_by_model);
    Packed::new(&crate::routes::models_page::render::models(crate::model::Charted { view, chart_svg }))
}

/// A number that changes whenever data of the dashboard's project is stored or removed: pages
/// poll it (cheap) and refetch their data only when it moved.
#[server(endpoint = "data_version", output = PackedOutput)]
pub async fn data_version() -> Result<Packed<u64>, AppError> {
    let (state, auth) = crate::state::request()?;
    Packed::new(&state.store.project_version(auth.project))
}

/// Per-tool totals for the dashboard's query string, rendered.
#[server(endpoint = "get_tools", output = PackedOutput)]
pub async fn get_tools(query: String) -> Result<Packed<Rendered>, AppError> {
    let (state, project, _, filter) = filter_of(&query)?;
    let rows = state.store.list_tools(project, &filter).await?;
    Packed::new(&crate::routes::tools_page::render::tools(rows))
}

/// Providers and agents seen in the window of the dashboard's query string.
#[server(endpoint = "get_filter_values", output = PackedOutput)]
pub async fn get_filter_values(query: String) -> Result<Packed<crate::model::FilterValues>, AppError> {
    let (state, project, _, filter) = filter_of(&query)?;
    Packed::new(&state.store.filter_values(project, &filter).await?)
}

/// The state, the request's project, and a query's parameters with the filter they describe
/// (window, user, provider, agent, tags).
#[cfg(feature = "ssr")]
fn filter_of(
    query: &str,
) -> Result<(crate::state::AppState, i64, crate::model::UsersParams, crate::model::UsersFilter), AppError> {
    use crate::model::UsersParams;
    use crate::store::{now_ms, window::resolve_filter};
    let params = UsersParams::parse_query(query)?;
    let filter = resolve_filter(&params, now_ms())?;
    let (state, auth) = crate::state::request()?;
    Ok((state, auth.project, params, filter))
}

/// Segments the dashboard lists (the biggest by spend; a key like `userId` can have many).
#[cfg(feature = "ssr")]
const SEGMENTS_SHOWN: usize = 200;

/// Segments for the dashboard's query string (without `by`, the store picks a key).
#[server(endpoint = "get_segments", output = PackedOutput)]
pub async fn get_segments(query: String) -> Result<Packed<Rendered>, AppError> {
    let (state, project, params, filter) = filter_of(&query)?;
    let view = state.store.segments(project, &filter, params.by.as_deref(), Some(SEGMENTS_SHOWN)).await?;
    Packed::new(&crate::routes::segments_page::render::segments(view, params))
}

/// Who is signed in, the current project and the projects to switch to, and the CSRF token
/// for this browser's forms.
#[server(endpoint = "get_session", output = PackedOutput)]
pub async fn get_session() -> Result<Packed<crate::model::admin::SessionView>, AppError> {
    let (state, auth) = crate::state::request()?;
    let projects = state.store.list_projects().await?.into_iter().map(|p| (p.id, p.name)).collect();
    Packed::new(&crate::model::admin::SessionView {
        login_required: state.login_required,
        user: auth.user,
        csrf: auth.csrf,
        project: auth.project,
        projects,
    })
}

/// The current project's settings, keys (prefixes) and deletion log.
#[server(endpoint = "get_settings", output = PackedOutput)]
pub async fn get_settings() -> Result<Packed<crate::model::admin::SettingsView>, AppError> {
    let (state, auth) = crate::state::request()?;
    Packed::new(&crate::model::admin::SettingsView {
        project: state.store.project_by_id(auth.project).await?,
        keys: state.store.list_keys(Some(auth.project)).await?,
        deletions: state.store.deletion_log(auth.project).await?,
        csrf: auth.csrf,
    })
}

/// What deleting a user would remove (all time), for the confirmation.
#[server(endpoint = "get_user_footprint", output = PackedOutput)]
pub async fn get_user_footprint(user_id: String) -> Result<Packed<crate::model::admin::Removed>, AppError> {
    let (state, auth) = crate::state::request()?;
    Packed::new(&state.store.user_footprint(auth.project, &user_id).await?)
}
