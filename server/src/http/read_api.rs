//! The read API: the dashboard's views as JSON (and lists as CSV), through the same store
//! functions the pages use.

use super::csv;
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{authorize, authorize_key};
use super::openapi::{
    Deleted, Filters, Format, Paging, Scrub, StackParam, ToolsView, UserDetail, UserFilter,
};
use app::model::{
    EventDetail, SortKey, TraceDetail, TraceSort, UserSort, UsersFilter, ViewParams, query::decode_pairs,
};
use app::model::{ModelsView, Overview, SegmentsView, TracesPage, UsersPage};
use app::state::AppState;
use app::store::keys::Scope;
use app::store::traces::TraceList;
use app::store::{now_ms, window::resolve_filter};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

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

/// A trace's page of calls: `cursor` (after which call) and `limit`; nothing else.
fn calls_page(query: Option<&str>) -> Result<(Option<(i64, String)>, u32), ApiError> {
    use app::model::traces::{TRACE_CALLS_MAX, TRACE_CALLS_PAGE, parse_calls_cursor};
    let (mut after, mut limit) = (None, TRACE_CALLS_PAGE);
    for (k, v) in decode_pairs(query.unwrap_or("")) {
        match k.as_str() {
            "cursor" => {
                after = Some(parse_calls_cursor(&v).ok_or_else(|| {
                    ApiError::bad("cursor", "not a cursor: pass next_cursor of the previous page")
                })?)
            }
            "limit" => {
                limit = v.parse().ok().filter(|n| (1..=TRACE_CALLS_MAX).contains(n)).ok_or_else(|| {
                    ApiError::bad("limit", format!("must be a whole number from 1 to {TRACE_CALLS_MAX}"))
                })?
            }
            _ => return Err(ApiError::bad(k, "not a parameter of this endpoint")),
        }
    }
    Ok((after, limit))
}

/// Refuses any query parameter (endpoints addressed by path alone).
fn no_query(query: Option<&str>) -> Result<(), ApiError> {
    match decode_pairs(query.unwrap_or("")).into_iter().next() {
        Some((k, _)) => Err(ApiError::bad(k, "not a parameter of this endpoint")),
        None => Ok(()),
    }
}

/// The Users list as CSV, every row from the cursor on (at most `max` rows): ranked in one
/// aggregation (every user's totals over the window), then streamed.
pub async fn users_csv(
    state: AppState,
    project: i64,
    q: &ViewParams<UserSort>,
    filter: UsersFilter,
    max: Option<u32>,
) -> Result<Response, ApiError> {
    let limit = max.unwrap_or(u32::MAX);
    let page = state.store.list_users(project, &filter, q.sort, q.dir, q.offset, limit).await?;
    Ok(csv::stream_rows("users.csv", page.users))
}

/// The Traces list as CSV, every row from the cursor on (at most `max` rows), streamed a page
/// at a time with a keyset cursor.
pub fn traces_csv(
    state: AppState,
    project: i64,
    q: &ViewParams<TraceSort>,
    filter: UsersFilter,
    max: Option<u32>,
) -> Response {
    let (sort, dir, search, offset) = (q.sort, q.dir, q.q.clone(), q.offset);
    csv::stream("traces.csv", None, max, move |after, limit| {
        let (state, filter, search) = (state.clone(), filter.clone(), search.clone());
        async move {
            let (rows, next) = state
                .store
                .export_traces_page(
                    project,
                    &TraceList { filter: &filter, search: search.as_deref(), sort, dir },
                    offset,
                    after,
                    limit,
                )
                .await?;
            Ok((rows, next.map(Some)))
        }
    })
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/users",
    operation_id = "listUsers",
    summary = "Users ranked by spend (or `sort`).",
    params(Filters, UserFilter, Paging, ("sort" = inline(Option<app::model::UserSort>), Query, description = "Sort column."), Format),
    responses(
        (status = 200, description = "OK", content((UsersPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/me/ai-apps/users`: users ranked by spend (or `sort`), filtered by window and tags.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[LIST, &["format"]])?;
    if q.csv {
        return users_csv(state, project, &q.params, q.filter, q.max_rows).await;
    }
    let p = &q.params;
    let page = state.store.list_users(project, &q.filter, p.sort, p.dir, p.offset, p.limit).await?;
    Ok(Json::<UsersPage>(page).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/users/{userId}",
    operation_id = "getUser",
    summary = "One user's KPIs, spend over time, models and latest 50 traces.",
    params(("userId" = String, Path, description = "The end user's id."), Filters, StackParam),
    responses(
        (status = 200, description = "OK", body = UserDetail),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
        (status = 404, description = "No stored call has this userId (none ever, or deleted).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/me/ai-apps/users/{user_id}`: one user's KPIs, spend over time, models and latest
/// traces.
pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<UserDetail>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let mut q = api_query::<UserSort>(query.as_deref(), &[&["stack"]])?;
    if q.params.user.is_some() {
        return Err(ApiError::bad("user", "the user is given by the path"));
    }
    if !state.store.has_user(project, &user_id).await? {
        return Err(ApiError::not_found("no such user: no stored call has this userId"));
    }
    q.filter.user = Some(user_id.clone());
    let overview = state.store.overview(project, &q.filter, q.params.stack).await?;
    let models = state.store.list_models(project, &q.filter).await?.models;
    let traces =
        state.store.list_traces(project, &q.filter, None, TraceSort::Started, Default::default(), 0, 50);
    Ok(Json(UserDetail {
        user_id,
        from: overview.from,
        to: overview.to,
        current: overview.current,
        previous: overview.previous,
        spend_by_model: overview.spend_by_model,
        models,
        traces: traces.await?.traces,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/traces",
    operation_id = "listTraces",
    summary = "Traces (withTrace blocks) that started in the window.",
    params(Filters, UserFilter, Paging, ("sort" = inline(Option<app::model::TraceSort>), Query, description = "Sort column."), ("q" = Option<String>, Query, max_length = 256, description = "Substring of the route tag."), Format),
    responses(
        (status = 200, description = "OK", content((TracesPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
    Ok(Json::<TracesPage>(page).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/traces/{traceId}",
    operation_id = "getTrace",
    summary = "One trace with its calls.",
    params(
        ("traceId" = String, Path, description = "The trace id."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Calls per page, 1–1000 (default 500)."),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9]{1,15}\.([0-9a-f]{2}){1,512}$", description = "`next_cursor` of the previous page: the calls after it."),
    ),
    responses(
        (status = 200, description = "OK", body = TraceDetail),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
        (status = 404, description = "Not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/me/ai-apps/traces/{trace_id}`: one trace with its events.
pub async fn trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<TraceDetail>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let (after, limit) = calls_page(query.as_deref())?;
    state
        .store
        .get_trace_page(project, &trace_id, after, limit)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such trace"))
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/events/{eventId}",
    operation_id = "getEvent",
    summary = "One LLM call in full.",
    params(("eventId" = String, Path, description = "The event id.")),
    responses(
        (status = 200, description = "OK", body = EventDetail),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
        (status = 404, description = "Not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/overview",
    operation_id = "getOverview",
    summary = "KPIs now and in the previous window of the same length, spend over time, top users and models.",
    params(Filters, UserFilter, StackParam),
    responses(
        (status = 200, description = "OK", body = Overview),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/me/ai-apps/overview`: KPIs now and in the previous window, spend over time (by
/// `stack=model|provider`), top users and models.
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Overview>, ApiError> {
    let project = authorize(&state, &headers, &[Scope::Read, Scope::Admin]).await?;
    let q = api_query::<UserSort>(query.as_deref(), &[&["stack"]])?;
    Ok(Json(state.store.overview(project, &q.filter, q.params.stack).await?))
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/models",
    operation_id = "listModels",
    summary = "Per-model totals, by spend.",
    params(Filters, UserFilter, Format),
    responses(
        (status = 200, description = "OK", content((ModelsView = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
        return Ok(csv::respond("models.csv", &view.models));
    }
    Ok(Json::<ModelsView>(view).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/tools",
    operation_id = "listTools",
    summary = "Per tool name: calls, users, traces and the spend of those calls.",
    params(Filters, UserFilter, Format),
    responses(
        (status = 200, description = "OK", content((ToolsView = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
        return Ok(csv::respond("tools.csv", &tools));
    }
    Ok(Json(ToolsView { tools }).into_response())
}

/// Segments a JSON answer holds unless `limit` says otherwise.
const SEGMENTS_DEFAULT_LIMIT: usize = app::model::MAX_PAGE as usize;

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/segments",
    operation_id = "listSegments",
    summary = "Spend, users, traces, calls and tokens per value of one tag key, by spend.",
    params(("by" = String, Query, min_length = 1, max_length = 64, description = "The tag key to group by (plan, org, feature, ...)."), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "The biggest this many segments, 1–500 (default 500 in JSON; a CSV without limit has every one)."), Filters, UserFilter, Format),
    responses(
        (status = 200, description = "OK", content((SegmentsView = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
        return Ok(csv::respond("segments.csv", &view.segments));
    }
    Ok(Json::<SegmentsView>(view).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/me/ai-apps/users/{userId}",
    operation_id = "deleteUser",
    summary = "Delete every call, trace and tag set of one user, then scrub the file. Admin key only.",
    description = "Every call and trace of the user, and the calls inside their traces that name no \
        other user, are removed from every view before the answer. By default the answer also waits \
        for the scrub: the database file rewritten and its WAL emptied, so nothing of the user's is \
        in any page of either (`scrub.done`: true). With `wait=false` it answers 202 at once and the \
        scrub runs once deletions stop coming for 5 s (at most 15 minutes later, \
        `TOKENTALLY_SCRUB_MAX_WAIT_SECS`; many deletions share one rewrite): poll `GET /v1/me/ai-apps/deletions/{ticket}` until `done`.",
    params(
        ("userId" = String, Path, description = "The end user's id."),
        ("wait" = Option<bool>, Query, description = "`false`: answer before the file is scrubbed (202). Default `true`."),
    ),
    responses(
        (status = 200, description = "What was removed (zeros when the user had nothing); the file is scrubbed.", body = Deleted),
        (status = 202, description = "What was removed; the scrub is pending (`wait=false`).", body = Deleted),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// `DELETE /v1/me/ai-apps/users/{user_id}` (admin key): removes every event, trace and rollup
/// contribution of the user, and reports what went.
pub async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (project, prefix) = authorize_key(&state, &headers, &[Scope::Admin]).await?;
    let mut wait = true;
    for (k, v) in decode_pairs(query.as_deref().unwrap_or("")) {
        match (k.as_str(), v.as_str()) {
            ("wait", "true") => wait = true,
            ("wait", "false") => wait = false,
            ("wait", _) => return Err(ApiError::bad("wait", "must be true or false")),
            _ => return Err(ApiError::bad(k, "not a parameter of this endpoint")),
        }
    }
    let actor = format!("key:{prefix}");
    if wait {
        let removed = state.store.delete_user(project, &user_id, &actor).await?;
        return Ok(
            Json(Deleted { deleted: removed, scrub: Scrub { ticket: None, done: true } }).into_response()
        );
    }
    let (removed, ticket) = state.store.delete_user_later(project, &user_id, &actor).await?;
    // Without a ticket (nothing of theirs was found: maybe an earlier request deleted them),
    // done once no scrub is pending.
    let done = match ticket {
        Some(t) => state.store.scrub_done(t) == Some(true),
        None => state.store.scrubs_done(),
    };
    let status = if done { axum::http::StatusCode::OK } else { axum::http::StatusCode::ACCEPTED };
    Ok((status, Json(Deleted { deleted: removed, scrub: Scrub { ticket, done } })).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/me/ai-apps/deletions/{ticket}",
    operation_id = "getDeletion",
    summary = "Whether the scrub after a deletion (`wait=false`) has finished. Admin key only.",
    params(("ticket" = u64, Path, minimum = 1, description = "`scrub.ticket` of the deletion's answer.")),
    responses(
        (status = 200, description = "OK", body = Scrub),
        (status = 400, description = "A bad parameter: the message names it in `field`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or wrong-scope key.", body = ErrorBody),
        (status = 404, description = "No deletion of this key's project has this ticket.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/me/ai-apps/deletions/{ticket}` (admin key): a deletion's scrub status.
pub async fn deletion(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ticket): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Scrub>, ApiError> {
    let (project, _) = authorize_key(&state, &headers, &[Scope::Admin]).await?;
    no_query(query.as_deref())?;
    let ticket: u64 = ticket.parse().map_err(|_| ApiError::bad("ticket", "must be a positive integer"))?;
    match state.store.deletion_scrubbed(project, ticket).await? {
        Some(done) => Ok(Json(Scrub { ticket: Some(ticket), done })),
        None => Err(ApiError::not_found("no deletion has this ticket")),
    }
}
