//! Request helpers: bearer-key authentication.

use super::error::ApiError;
use app::state::AppState;
use app::store::keys::Scope;
use axum::http::{HeaderMap, header};

/// The project of the request's `Authorization: Bearer <key>`, if the key has one of `scopes`.
pub async fn authorize(state: &AppState, headers: &HeaderMap, scopes: &[Scope]) -> Result<i64, ApiError> {
    Ok(authorize_key(state, headers, scopes).await?.0)
}

/// Like [`authorize`], also returning the key's prefix (to log who did something).
pub async fn authorize_key(
    state: &AppState,
    headers: &HeaderMap,
    scopes: &[Scope],
) -> Result<(i64, String), ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <key>"))?;
    state
        .store
        .authenticate(key, scopes)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked key, or a key without this scope"))
}
