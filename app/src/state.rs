//! Server state handed to axum handlers and (through context) to server functions, and what
//! the auth middleware learns about each request.

use crate::store::Store;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

/// Everything a request needs: built once at start-up, cloned cheaply per request.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    /// The project the dashboard shows when the browser hasn't picked one.
    pub default_project: i64,
    /// False under `serve --no-login` (loopback only).
    pub login_required: bool,
}

/// The dashboard request's context, put in the request's extensions by the auth middleware.
#[derive(Clone, Debug)]
pub struct RequestAuth {
    /// The project picked with the switcher.
    pub project: i64,
    /// The double-submit CSRF token: also in the `tt_csrf` cookie; forms send it back.
    pub csrf: String,
    /// The signed-in administrator; `None` without login.
    pub user: Option<String>,
}

/// The state inside a server function.
pub fn state() -> Result<AppState, crate::error::AppError> {
    leptos::prelude::use_context::<AppState>().ok_or(crate::error::AppError::Internal)
}

/// The state and this request's auth context inside a server function (or SSR).
pub fn request() -> Result<(AppState, RequestAuth), crate::error::AppError> {
    let state = state()?;
    let auth = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<RequestAuth>().cloned())
        .unwrap_or(RequestAuth { project: state.default_project, csrf: String::new(), user: None });
    Ok((state, auth))
}
