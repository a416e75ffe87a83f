//! Dashboard access: the admin login (argon2id passwords, server-side sessions in an HttpOnly
//! SameSite=Lax cookie, Secure behind HTTPS), double-submit CSRF tokens for every form that
//! changes something, and the project the browser picked. `/v1` (Bearer keys) is not affected.

use super::error::ApiError;
use app::state::{AppState, RequestAuth};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Form;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const SESSION_COOKIE: &str = "tt_session";
pub const CSRF_COOKIE: &str = "tt_csrf";
pub const PROJECT_COOKIE: &str = "tt_project";

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

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over HTTPS (directly or through a proxy that says so).
fn https(headers: &HeaderMap) -> bool {
    let forwarded = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    forwarded("x-forwarded-proto").is_some_and(|p| p.starts_with("https"))
        || forwarded("forwarded").is_some_and(|f| f.contains("proto=https"))
}

fn set_cookie(name: &str, value: &str, max_age: i64, same_site: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Paths anyone may reach: the login page, static assets, health, and the key-based API.
fn public(path: &str) -> bool {
    path == "/login"
        || path == "/healthz"
        || path == "/favicon.svg"
        || path.starts_with("/pkg/")
        || path.starts_with("/v1/")
}

/// Runs before every request: signs the request in (or turns it away), picks its project and
/// CSRF token, and refuses cross-site state changes.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/v1/") || path == "/healthz" {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    // A state change must come from our own pages: a cross-site Origin is refused outright
    // (the forms' CSRF token is checked again by each handler).
    if !matches!(*req.method(), Method::GET | Method::HEAD) && !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let user = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => match state.store.session(token).await {
            Ok(s) => s.map(|s| s.username),
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    if state.login_required && user.is_none() && !public(&path) {
        if path.starts_with("/api/") {
            return ApiError::unauthorized("sign in to the dashboard first").into_response();
        }
        let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        return Redirect::to(&format!("/login?next={}", app::model::query::encode(target))).into_response();
    }
    let csrf_cookie = cookie(&headers, CSRF_COOKIE).filter(|c| c.len() == 64).map(str::to_string);
    let csrf = match &csrf_cookie {
        Some(c) => c.clone(),
        None => match app::store::auth::random_hex(32) {
            Ok(c) => c,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let project = match cookie(&headers, PROJECT_COOKIE).and_then(|p| p.parse::<i64>().ok()) {
        Some(id) if state.store.project_by_id(id).await.is_ok() => id,
        _ => state.default_project,
    };
    req.extensions_mut().insert(RequestAuth { project, csrf: csrf.clone(), user });
    let mut resp = next.run(req).await;
    if csrf_cookie.is_none() {
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, &csrf, 400 * 86_400, "Strict", https(&headers)),
        );
    }
    resp
}

/// True unless the request carries an Origin (or Referer) naming another host.
fn same_origin(headers: &HeaderMap) -> bool {
    let host_of = |name| headers.get(name).and_then(|h: &HeaderValue| h.to_str().ok());
    let hosts = [host_of(header::HOST), host_of(header::HeaderName::from_static("x-forwarded-host"))];
    let from =
        headers.get(header::ORIGIN).or_else(|| headers.get(header::REFERER)).and_then(|v| v.to_str().ok());
    match from {
        None => true,
        Some(url) => {
            let origin_host = url.split("://").nth(1).and_then(|rest| rest.split('/').next());
            origin_host.is_some() && hosts.contains(&origin_host)
        }
    }
}

/// The refusal of a form whose CSRF token doesn't match the request's cookie, or `None`.
pub fn csrf_refusal(auth: &RequestAuth, submitted: &str) -> Option<Response> {
    if !auth.csrf.is_empty() && submitted == auth.csrf {
        return None;
    }
    let body = "<p>The form's security token didn't match. Reload the page and try again.</p>";
    Some((StatusCode::FORBIDDEN, Html(page("Refused", body))).into_response())
}

/// A form that carries the CSRF token in its `csrf` field.
pub trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// A form body whose CSRF token matched this browser's, with the request's auth context. A body
/// that doesn't parse is a 400 naming the problem; a wrong token is a 403.
pub struct Checked<T>(pub RequestAuth, pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + HasCsrf> FromRequest<S> for Checked<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let auth = req
            .extensions()
            .get::<RequestAuth>()
            .cloned()
            .ok_or_else(|| StatusCode::FORBIDDEN.into_response())?;
        let Form(form) = Form::<T>::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad("body", e.body_text()).into_response())?;
        match csrf_refusal(&auth, form.csrf()) {
            Some(refused) => Err(refused),
            None => Ok(Checked(auth, form)),
        }
    }
}

/// Implements [`HasCsrf`] for forms with a `csrf: String` field.
#[macro_export]
macro_rules! has_csrf {
    ($($t:ty),*) => {
        $(impl $crate::http::auth::HasCsrf for $t {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A small server-rendered page in the dashboard's style (login, confirmations).
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · tokentally</title><link rel="stylesheet" href="/pkg/tokentally.css"><link rel="icon" href="/favicon.svg"></head>
<body><main class="standalone"><h1>{title}</h1>{body}</main></body></html>"#,
        title = esc(title)
    )
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

/// Only a local path may be a redirect target (no `//host` or `https://…`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/ai-apps".to_string(),
    }
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
    headers: HeaderMap,
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
        tracing::warn!(username = %form.username, "failed dashboard sign-in");
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
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, ttl, "Lax", https(&headers)));
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

crate::has_csrf!(LoginForm, CsrfForm, ProjectForm);

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, _: Checked<CsrfForm>) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_session(token).await
    {
        return ApiError::from(e).into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, "Lax", https(&headers)));
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
    headers: HeaderMap,
    Checked(_, form): Checked<ProjectForm>,
) -> Response {
    if state.store.project_by_id(form.project).await.is_err() {
        return ApiError::bad("project", "no such project").into_response();
    }
    let mut resp = Redirect::to(&safe_next(form.next.as_deref())).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(PROJECT_COOKIE, &form.project.to_string(), 400 * 86_400, "Lax", https(&headers)),
    );
    resp
}
