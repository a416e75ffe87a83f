//! The error type of server functions: what the dashboard may show, never database internals.

use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A server function's failure as the browser sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// A URL parameter was rejected; the page says which.
    #[error("{param}: {message}")]
    BadParam { param: String, message: String },
    /// Anything else; the details are in the server log.
    #[error("something went wrong on the server; see its log")]
    Internal,
    /// The request never reached the function.
    #[error("could not reach the server: {0}")]
    Transport(String),
    /// The answer was not one of this build's (a page open across an upgrade).
    #[error("the server's answer is unreadable; reload the page")]
    Unreadable,
}

impl FromServerFnError for AppError {
    type Encoder = crate::api::PackedEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

impl From<crate::model::ParamError> for AppError {
    fn from(e: crate::model::ParamError) -> Self {
        AppError::BadParam { param: e.param, message: e.message }
    }
}

#[cfg(feature = "ssr")]
impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store error in a server function");
        AppError::Internal
    }
}
