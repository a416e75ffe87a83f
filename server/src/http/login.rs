//! Signing in and out of the dashboard (argon2id passwords, server-side sessions in an HttpOnly
//! SameSite=Lax cookie, Secure behind HTTPS) and the project switcher.

use super::auth::{Checked, PROJECT_COOKIE, SESSION_COOKIE, cookie, esc, page, set_cookie};
use super::error::ApiError;
use super::host::ClientTls;
use app::state::{AppState, RequestAuth};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, Extension, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SameSite;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Longest username a sign-in may name.
const MAX_USERNAME: usize = 256;
/// Sign-in attempts a client address, or a username, gets before each next one waits.
const FREE_ATTEMPTS: u32 = 5;
/// Longest wait between two attempts once they are throttled.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Attempts older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most clients and names remembered at once (a flood of new ones can't grow the map further:
/// past it, a new key is throttled until old ones are forgotten).
const MAX_TRACKED: usize = 100_000;

/// Sign-in attempts per client address and per username: after [`FREE_ATTEMPTS`], each next
/// attempt waits twice as long as the one before (1 s, 2 s, ... up to [`MAX_WAIT`]) and is
/// refused with 429 until then. An attempt counts when it starts, so a burst is cut off before
/// it reaches the password hash; a successful sign-in clears both counts.
#[derive(Clone, Default)]
pub struct Throttle(Arc<Mutex<HashMap<String, (u32, Instant)>>>);

impl Throttle {
    /// Counts an attempt for each key, or says how long to wait when one of them must.
    fn attempt(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
        }
        let mut wait = Duration::ZERO;
        for key in keys {
            match map.get(key) {
                Some((n, last)) if now.duration_since(*last) < FORGET_AFTER && *n >= FREE_ATTEMPTS => {
                    let delay = Duration::from_secs(1 << (n - FREE_ATTEMPTS).min(10)).min(MAX_WAIT);
                    wait = wait.max(delay.saturating_sub(now.duration_since(*last)));
                }
                Some(_) => {}
                None if map.len() >= MAX_TRACKED => wait = wait.max(Duration::from_secs(1)),
                None => {}
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            let e = map.entry(key.clone()).or_insert((0, now));
            if now.duration_since(e.1) >= FORGET_AFTER {
                e.0 = 0;
            }
            *e = (e.0 + 1, now);
        }
        Ok(())
    }

    fn succeeded(&self, keys: &[String]) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            map.remove(key);
        }
    }
}

/// One password hash at a time, off the async workers: sign-ins can't take the cores from
/// ingest and the dashboard.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Checks `password` against `phc` (or spends the same effort when there is no such admin, so
/// timing doesn't tell names apart) on a blocking thread.
async fn check_password(password: String, phc: Option<String>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else { return false };
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            let _ = hash_password(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientTls(tls)): Extension<ClientTls>,
    Extension(throttle): Extension<Throttle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Checked(_, form): Checked<LoginForm>,
) -> Response {
    if form.username.chars().count() > MAX_USERNAME {
        return ApiError::bad("username", format!("at most {MAX_USERNAME} characters")).into_response();
    }
    let keys = [format!("ip {}", peer.ip()), format!("user {}", form.username)];
    if let Err(wait) = throttle.attempt(&keys, Instant::now()) {
        let secs = wait.as_secs().max(1);
        let mut resp = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many sign-in attempts: try again in {secs} s"),
            field: Some("username".into()),
        }
        .into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        return resp;
    }
    let next = safe_next(form.next.as_deref());
    let admin = match state.store.admin_password(&form.username).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let ok = check_password(form.password.clone(), admin.as_ref().map(|(_, phc)| phc.clone())).await;
    let (Some((admin_id, _)), true) = (admin, ok) else {
        // Quoted and escaped (`Debug`), and cut short: a name can't forge or flood log lines.
        let shown: String = form.username.chars().take(64).collect();
        tracing::warn!(username = ?shown, "failed dashboard sign-in");
        return Redirect::to(&format!("/login?failed=1&next={}", app::model::query::encode(&next)))
            .into_response();
    };
    throttle.succeeded(&keys);
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
    use super::{Duration, FREE_ATTEMPTS, Instant, Throttle, safe_next};

    #[test]
    fn sign_in_attempts_wait_longer_after_the_free_ones() {
        let t = Throttle::default();
        let keys = ["ip 10.0.0.1".to_string(), "user admin".to_string()];
        let start = Instant::now();
        for _ in 0..FREE_ATTEMPTS {
            assert_eq!(t.attempt(&keys, start), Ok(()));
        }
        assert_eq!(t.attempt(&keys, start), Err(Duration::from_secs(1)));
        // Another address naming the same user waits too; an unrelated one doesn't.
        assert!(t.attempt(&["ip 10.0.0.2".into(), "user admin".into()], start).is_err());
        assert_eq!(t.attempt(&["ip 10.0.0.3".into(), "user other".into()], start), Ok(()));
        let later = start + Duration::from_secs(1);
        assert_eq!(t.attempt(&keys, later), Ok(()));
        assert_eq!(t.attempt(&keys, later + Duration::from_millis(500)), Err(Duration::from_millis(1500)));
        t.succeeded(&keys);
        assert_eq!(t.attempt(&keys, later), Ok(()));
    }

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
