//! The dashboard's state-changing forms (plain HTML POSTs, so they work without JavaScript):
//! deleting a user, project settings, and keys. Each checks the CSRF token and answers with a
//! redirect or a short confirmation page.

use super::auth::{Checked, esc, page};
use super::error::ApiError;
use app::state::{AppState, RequestAuth};
use app::store::keys::Scope;
use app::store::projects::{Privacy, ProjectChange};
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

/// Who did it, for the deletion log.
fn actor(auth: &RequestAuth) -> String {
    match &auth.user {
        Some(u) => format!("dashboard:{u}"),
        None => "dashboard (no-login, loopback)".to_string(),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /ai-apps/users/{user_id}/delete`.
pub async fn delete_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Checked(auth, _): Checked<CsrfOnly>,
) -> Result<Response, ApiError> {
    let removed = state.store.delete_user(auth.project, &user_id, &actor(&auth)).await?;
    let body = format!(
        r#"<p role="status">Deleted the user: removed {} events and {} traces. The id is no longer stored anywhere in the database.</p>
<p><a href="/ai-apps/users">Back to Users</a></p>"#,
        removed.events, removed.traces
    );
    Ok(Html(page("User deleted", &body)).into_response())
}

#[derive(Deserialize)]
pub struct SettingsForm {
    csrf: String,
    privacy: String,
    /// Empty keeps everything.
    retention_days: String,
}

/// `POST /settings/project`.
pub async fn project_settings(
    State(state): State<AppState>,
    Checked(auth, form): Checked<SettingsForm>,
) -> Result<Response, ApiError> {
    let privacy =
        Privacy::parse(&form.privacy).ok_or_else(|| ApiError::bad("privacy", "must be full or minimal"))?;
    let retention_days = match form.retention_days.trim() {
        "" => None,
        d => Some(
            d.parse::<i64>()
                .ok()
                .filter(|d| (1..=app::store::projects::MAX_RETENTION_DAYS).contains(d))
                .ok_or_else(|| {
                    ApiError::bad("retention_days", "must be a whole number of days from 1, or empty")
                })?,
        ),
    };
    let name = state.store.project_by_id(auth.project).await?.name;
    let change = ProjectChange { privacy: Some(privacy), retention_days: Some(retention_days) };
    state.store.set_project(&name, &change).await?;
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    csrf: String,
    scope: String,
}

/// `POST /settings/keys`: shows the new key once.
pub async fn create_key(
    State(state): State<AppState>,
    Checked(auth, form): Checked<NewKeyForm>,
) -> Result<Response, ApiError> {
    let scope =
        Scope::parse(&form.scope).ok_or_else(|| ApiError::bad("scope", "must be ingest, read or admin"))?;
    let key = state.store.create_key(auth.project, scope).await?;
    let body = format!(
        r#"<p>Your new <strong>{}</strong> key. Copy it now: it is stored only as a hash and can't be shown again.</p>
<p><code class="new-key" aria-label="New key">{}</code></p><p><a href="/settings">Back to settings</a></p>"#,
        scope.as_str(),
        esc(&key)
    );
    Ok(Html(page("Key created", &body)).into_response())
}

crate::has_csrf!(CsrfOnly, SettingsForm, NewKeyForm, RevokeForm);

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    id: String,
}

/// `POST /settings/keys/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    Checked(auth, form): Checked<RevokeForm>,
) -> Result<Response, ApiError> {
    state.store.revoke_key(&form.id, Some(auth.project)).await?;
    Ok(Redirect::to("/settings").into_response())
}
