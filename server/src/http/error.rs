//! REST errors: a status and a JSON body `{"error": "...", "field": "..."}`; internals only logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What is wrong, for a person.
    #[schema(min_length = 1)]
    pub error: String,
    /// The request field or query parameter at fault (e.g. `events[3].usage.input_tokens`,
    /// `window`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer of the REST API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request field or query parameter at fault, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    /// 400 naming the field.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), field: Some(field.into()) }
    }

    pub fn unauthorized(message: &str) -> Self {
        ApiError { status: StatusCode::UNAUTHORIZED, message: message.into(), field: None }
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body is larger than {limit} bytes (after gzip decompression)"),
            field: Some("body".into()),
        }
    }

    pub fn not_found(message: &str) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into(), field: None }
    }

    /// 503: the client should retry later.
    pub fn unavailable(message: &str) -> Self {
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into(), field: None }
    }

    /// 500 with nothing of the cause (the caller logs it).
    pub fn internal() -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error; see the server log".into(),
            field: None,
        }
    }
}

impl From<app::store::StoreError> for ApiError {
    fn from(e: app::store::StoreError) -> Self {
        match e {
            app::store::StoreError::NotFound(what) => {
                return ApiError::not_found(&format!("not found: {what}"));
            }
            app::store::StoreError::Invalid(message) => {
                return ApiError { status: StatusCode::BAD_REQUEST, message, field: None };
            }
            _ => {}
        }
        tracing::error!(error = %e, "store error in a REST handler");
        ApiError::internal()
    }
}

impl From<app::model::ParamError> for ApiError {
    fn from(e: app::model::ParamError) -> Self {
        ApiError::bad(e.param, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.message, field: self.field };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
