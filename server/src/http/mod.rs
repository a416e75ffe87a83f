//! The HTTP surface: REST routes (ingest, read API), embedded assets, and the Leptos app.

pub mod auth;
pub mod csv;
pub mod error;
pub mod export;
pub mod extract;
pub mod forms;
pub mod host;
pub mod ingest;
pub mod listen;
pub mod login;
pub mod metrics;
pub mod openapi;
pub mod read_api;

use app::app::{App, shell};
use app::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Longest pause between two parts of a request body.
const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Every route of the server.
pub fn router(state: AppState, access: host::Access, read_timeout: std::time::Duration) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let fallback_state = state.clone();
    let render_missing = leptos_axum::render_app_to_stream_with_context(
        move || leptos::prelude::provide_context(fallback_state.clone()),
        move || shell(options.clone()),
    );
    Router::new()
        .route("/v1/events", post(ingest::post_events).layer(DefaultBodyLimit::disable()))
        .route("/v1/traces", post(crate::otel::post_traces).layer(DefaultBodyLimit::disable()))
        .route("/v1/me/ai-apps/users", get(read_api::users))
        .route("/v1/me/ai-apps/users/{user_id}", get(read_api::user).delete(read_api::delete_user))
        .route("/v1/me/ai-apps/deletions/{ticket}", get(read_api::deletion))
        .route("/v1/me/ai-apps/segments", get(read_api::segments))
        .route("/v1/me/ai-apps/traces", get(read_api::traces))
        .route("/v1/me/ai-apps/overview", get(read_api::overview))
        .route("/v1/me/ai-apps/models", get(read_api::models))
        .route("/v1/me/ai-apps/tools", get(read_api::tools))
        .route("/v1/me/ai-apps/traces/{trace_id}", get(read_api::trace))
        .route("/v1/me/ai-apps/events/{event_id}", get(read_api::event))
        .route(
            "/login",
            get(login::login_page).post(login::login).layer(axum::Extension(login::Throttle::default())),
        )
        .route("/logout", post(login::logout))
        .route("/project", post(login::switch_project))
        .route("/ai-apps/users/{user_id}/delete", post(forms::delete_user))
        .route("/settings/project", post(forms::project_settings))
        .route("/settings/keys", post(forms::create_key))
        .route("/settings/keys/revoke", post(forms::revoke_key))
        .route("/export/users.csv", get(export::users))
        .route("/export/traces.csv", get(export::traces))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::metrics))
        // Plain HTTP redirects: they work without JavaScript and before any rendering.
        .route("/", get(|| async { Redirect::to("/ai-apps") }))
        .route("/pkg/{*file}", get(crate::assets::serve))
        .route("/favicon.svg", get(crate::assets::serve))
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .route_layer(axum::middleware::from_fn(metrics::note_route))
        .fallback(move |uri: Uri, req: Request<Body>| {
            let render_missing = render_missing.clone();
            async move {
                if uri.path().starts_with("/v1/") {
                    return error::ApiError::not_found("no such API endpoint").into_response();
                }
                let resp: Response = render_missing(req).await;
                resp
            }
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware))
        .layer(axum::middleware::from_fn_with_state(read_timeout, listen::read_deadline))
        // Before the rest: a request for a host name this server doesn't answer (DNS
        // rebinding) gets 421 and reaches nothing.
        .layer(axum::middleware::from_fn_with_state(access, host::check))
        // A request body that stalls for 30 s is cut off (its handler answers 400).
        .layer(RequestBodyTimeoutLayer::new(BODY_IDLE_TIMEOUT))
        // Counts what the auth layer answers too.
        .layer(axum::middleware::from_fn(metrics::track))
        // Outermost: pages, JSON and CSV compressed as the client accepts (brotli, gzip), at a
        // fast level; the precompressed assets pass through as they are.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
        .with_state(state)
}
