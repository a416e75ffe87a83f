//! Dashboard access on every request: the session check, the double-submit CSRF token every
//! state-changing form carries, and the project the browser picked. `/v1` (Bearer keys) is not
//! affected; signing in and out is in `login`.

use super::error::ApiError;
use app::state::{AppState, RequestAuth};
use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use cookie::time::Duration;

pub const SESSION_COOKIE: &str = "tt_session";
pub const CSRF_COOKIE: &str = "tt_csrf";
pub const PROJECT_COOKIE: &str = "tt_project";

/// The value of cookie `name` (parsed by axum-extra's cookie jar).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers).get(name).map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: the whole site, never readable by scripts.
pub(super) fn set_cookie(
    name: &'static str,
    value: &str,
    max_age: i64,
    same_site: SameSite,
    secure: bool,
) -> HeaderValue {
    let cookie = Cookie::build((name, value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .max_age(Duration::seconds(max_age))
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Paths that need no dashboard context at all (no session, project or CSRF token): static
/// assets, health, and the key-based API. The login page is the other path open to anyone.
fn outside_dashboard(path: &str) -> bool {
    path == "/healthz"
        || path == "/metrics"
        || path == "/favicon.svg"
        || path.starts_with("/pkg/")
        || path.starts_with("/v1/")
}

/// Runs before every request: signs the request in (or turns it away), picks its project and
/// CSRF token, and refuses cross-site state changes.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if outside_dashboard(&path) {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    // A state change must come from our own pages: a cross-site Origin is refused outright
    // (the forms' CSRF token is checked again by each handler).
    if !matches!(*req.method(), Method::GET | Method::HEAD) && !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let user = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => match state.store.session(&token).await {
            Ok(s) => s.map(|s| s.username),
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    if state.login_required && user.is_none() && path != "/login" {
        if path.starts_with("/api/") {
            return ApiError::unauthorized("sign in to the dashboard first").into_response();
        }
        let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        return Redirect::to(&format!("/login?next={}", app::model::query::encode(target))).into_response();
    }
    let csrf_cookie = cookie(&headers, CSRF_COOKIE).filter(|c| c.len() == 64);
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
    let tls = req.extensions().get::<super::host::ClientTls>().is_some_and(|t| t.0);
    req.extensions_mut().insert(RequestAuth { project, csrf: csrf.clone(), user });
    let mut resp = next.run(req).await;
    if csrf_cookie.is_none() {
        resp.headers_mut()
            .append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &csrf, 400 * 86_400, SameSite::Strict, tls));
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
<title>{title} · tokentally</title><link rel="stylesheet" href="/{pkg}/tokentally.css"><link rel="icon" href="/favicon.svg"></head>
<body><main class="standalone"><h1>{title}</h1>{body}</main></body></html>"#,
        title = esc(title),
        pkg = crate::assets::pkg_dir()
    )
}
