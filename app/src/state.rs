//! Server state handed to axum handlers and (through context) to server functions.

use crate::store::Store;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

/// Everything a request needs: built once at start-up, cloned cheaply per request.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    /// The project the dashboard shows.
    pub default_project: i64,
}

/// The state inside a server function.
pub fn state() -> Result<AppState, crate::error::AppError> {
    leptos::prelude::use_context::<AppState>().ok_or(crate::error::AppError::Internal)
}
