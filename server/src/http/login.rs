//! Signing in and out of the dashboard (argon2id passwords, server-side sessions in an HttpOnly
//! SameSite=Lax cookie, Secure behind HTTPS) and the project switcher.

use super::auth::{Checked, PROJECT_COOKIE, SESSION_COOKIE, cookie, esc, page, set_cookie};
use super::error::ApiError;
use super::host::ClientTls;
use app::state::{AppState, RequestAuth};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Extension, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SameSite;
use serde::Deserialize;

/// Session length: `TOKENTALLY_SESSION_TTL_SECS`, default 7 days.
fn session_ttl_secs() -> i64 {
    std::env::var("TOKENTALLY_SESSION_TTL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(7 * 86_400)
}

/// An argon2id PHC string for a password.
pub fn hash_password(password: &str) -> Result<String, String> {
    // 128 random bits as hex, which is valid salt alphabet.
    let random = app::store::auth::random_hex(16).map_err(|e| e.to_string())?;
    let salt = SaltString::from_b64(&random).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

/// Only a local path may be a redirect target (no `//host` or `https://…`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) => n.to_string(),
        _ => "/ai-apps".to_string(),
    }
}

/// A path on this site: starts with one `/`, parses as a URI without scheme or authority, and
/// holds no control character, whitespace or backslash (browsers drop tabs and line breaks and
/// read `\` as `/`, so `/%09/evil.com` or `/\evil.com` would leave the site).
fn is_local_path(n: &str) -> bool {
    n.starts_with('/')
        && !n.starts_with("//")
        && !n.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && n.parse::<axum::http::Uri>().is_ok_and(|u| u.scheme().is_none() && u.authority().is_none())
}

/// `GET /login`.
pub async fn login_page(State(state): State<AppState>, req: Request) -> Response {
    let query: Query<LoginQuery> = match Query::try_from_uri(req.uri()) {
        Ok(q) => q,
        Err(_) => Query(LoginQuery { next: None, failed: None }),
    };
    if !state.login_required {
        return Redirect::to(&safe_next(query.next.as_deref())).into_response();
    }
    let csrf = req.extensions().get::<RequestAuth>().map(|a| a.csrf.clone()).unwrap_or_default();
    let failed = if query.failed.is_some() {
        r#"<p class="error" role="alert">Wrong username or password.</p>"#
    } else {
        ""
    };
    let body = format!(
        r#"{failed}<form method="post" action="/login" class="login-form">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label>Username <input name="username" autocomplete="username" value="admin" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form>"#,
        csrf = esc(&csrf),
        next = esc(&safe_next(query.next.as_deref()))
    );
    Html(page("Sign in", &body)).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientTls(tls)): Extension<ClientTls>,
    Checked(_, form): Checked<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let admin = match state.store.admin_password(&form.username).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let ok = match &admin {
        Some((_, phc)) => verify_password(&form.password, phc),
        None => {
            // Spend the same effort for an unknown name, so timing doesn't tell names apart.
            let _ = hash_password(&form.password);
            false
        }
    };
    let (Some((admin_id, _)), true) = (admin, ok) else {
        // Quoted and escaped (`Debug`), and cut short: a name can't forge or flood log lines.
        let shown: String = form.username.chars().take(64).collect();
        tracing::warn!(username = ?shown, "failed dashboard sign-in");
        return Redirect::to(&format!("/login?failed=1&next={}", app::model::query::encode(&next)))
            .into_response();
    };
    let ttl = session_ttl_secs();
    let token = match state.store.create_session(admin_id, ttl * 1000).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, ttl, SameSite::Lax, tls));
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

crate::has_csrf!(LoginForm, CsrfForm, ProjectForm);

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    Extension(ClientTls(tls)): Extension<ClientTls>,
    headers: HeaderMap,
    _: Checked<CsrfForm>,
) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_session(&token).await
    {
        return ApiError::from(e).into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, SameSite::Lax, tls));
    resp
}

#[derive(Deserialize)]
pub struct ProjectForm {
    csrf: String,
    project: i64,
    next: Option<String>,
}

/// `POST /project`: the project switcher.
pub async fn switch_project(
    State(state): State<AppState>,
    Extension(ClientTls(tls)): Extension<ClientTls>,
    Checked(_, form): Checked<ProjectForm>,
) -> Response {
    if state.store.project_by_id(form.project).await.is_err() {
        return ApiError::bad("project", "no such project").into_response();
    }
    let mut resp = Redirect::to(&safe_next(form.next.as_deref())).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(PROJECT_COOKIE, &form.project.to_string(), 400 * 86_400, SameSite::Lax, tls),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        for ok in ["/ai-apps/users", "/ai-apps/users?tag=plan%3Dpro&window=7d", "/settings"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        // Each would take the browser elsewhere: `//host`, a backslash read as `/`, a tab or
        // line break the browser drops (what `%09`, `%0a` decode to), a scheme.
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\r/evil.com",
            " //evil.com",
            "https://evil.com",
            "javascript:alert(1)",
            "evil.com",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ai-apps", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/ai-apps");
    }
}
