//! Which host names the server answers, and whether a browser reached it over HTTPS.
//!
//! A page on `http://rebind.example:3000` whose name is made to resolve to 127.0.0.1 (DNS
//! rebinding) would otherwise reach a dashboard listening there as if it were same-origin: every
//! request names the host it was meant for (`Host`), so the server answers only the loopback
//! names, the address it listens on and the configured public URL's host (`--public-url`).

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The answered host names and how far forwarded headers are trusted.
#[derive(Clone, Debug)]
pub struct Access {
    /// Host names (lowercase, no port) answered; `None`: any (login on, listening on a
    /// non-loopback address and no public URL given: the server can't know its own names).
    allowed: Option<Arc<[String]>>,
    /// The public URL is https: the browser reaches the dashboard over TLS (at a proxy).
    public_https: bool,
    /// `X-Forwarded-Proto` / `Forwarded: proto=` come from a proxy we trust.
    trust_proxy: bool,
}

/// Whether the browser reached the server over HTTPS, as far as the configuration lets the
/// server know (put in each request's extensions by [`check`]): cookies are `Secure` if so.
#[derive(Clone, Copy, Debug)]
pub struct ClientTls(pub bool);

impl Access {
    /// `public_url` is where browsers reach the dashboard (`https://tokentally.example.com`).
    pub fn new(
        public_url: Option<&str>,
        listen: SocketAddr,
        login: bool,
        trust_proxy: bool,
    ) -> Result<Access, String> {
        let public = public_url
            .map(|u| {
                let uri: Uri = u.parse().map_err(|_| format!("--public-url {u:?} is not a URL"))?;
                let https = match uri.scheme_str() {
                    Some("https") => true,
                    Some("http") => false,
                    _ => return Err(format!("--public-url {u:?} must start with http:// or https://")),
                };
                let host =
                    uri.host().filter(|h| !h.is_empty()).ok_or(format!("--public-url {u:?} has no host"))?;
                Ok((host.to_ascii_lowercase(), https))
            })
            .transpose()?;
        let ip = listen.ip();
        let permissive = login && public.is_none() && !ip.is_loopback();
        let allowed = (!permissive).then(|| {
            let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
            if !ip.is_unspecified() && !ip.is_loopback() {
                names.push(match ip {
                    std::net::IpAddr::V4(v4) => v4.to_string(),
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                });
            }
            names.extend(public.iter().map(|(h, _)| h.clone()));
            names.into()
        });
        Ok(Access { allowed, public_https: public.is_some_and(|(_, https)| https), trust_proxy })
    }

    /// True when any host name is answered (the caller warns at start).
    pub fn answers_any_host(&self) -> bool {
        self.allowed.is_none()
    }

    fn answers(&self, host: &str) -> bool {
        self.allowed.as_ref().is_none_or(|names| names.iter().any(|n| n == host))
    }

    fn tls(&self, headers: &HeaderMap) -> bool {
        self.public_https || (self.trust_proxy && forwarded_https(headers))
    }
}

/// A proxy says the browser's connection was HTTPS.
fn forwarded_https(headers: &HeaderMap) -> bool {
    let value = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    value("x-forwarded-proto").is_some_and(|p| p.starts_with("https"))
        || value("forwarded").is_some_and(|f| f.contains("proto=https"))
}

/// The host name a request was sent to: lowercase, without the port or a trailing dot.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let name = if value.starts_with('[') {
        value.find(']').map_or(value, |end| &value[..=end])
    } else {
        value.rsplit_once(':').map_or(value, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Answers 421 to a request for a host name this server doesn't answer; notes [`ClientTls`].
pub async fn check(State(access): State<Access>, mut req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().map(host_name).unwrap_or_default())
        .or_else(|| req.uri().host().map(host_name));
    if let Some(host) = host
        && !access.answers(&host)
    {
        return ApiError {
            status: StatusCode::MISDIRECTED_REQUEST,
            message: format!(
                "this server does not answer for host {host:?}: reach it by localhost, its address or the host of its --public-url"
            ),
            field: Some("Host".into()),
        }
        .into_response();
    }
    let tls = access.tls(req.headers());
    req.extensions_mut().insert(ClientTls(tls));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_who_is_answered() {
        assert_eq!(host_name("LocalHost:3000"), "localhost");
        assert_eq!(host_name("[::1]:3000"), "[::1]");
        assert_eq!(host_name("example.com."), "example.com");
        let loopback: SocketAddr = "127.0.0.1:3000".parse().expect("addr");
        let strict = Access::new(None, loopback, false, false).expect("access");
        assert!(strict.answers("localhost") && strict.answers("127.0.0.1") && strict.answers("[::1]"));
        assert!(!strict.answers("rebind.example"));
        let public =
            Access::new(Some("https://Dash.Example.com/"), "0.0.0.0:443".parse().expect("addr"), true, false)
                .expect("access");
        assert!(public.answers("dash.example.com") && !public.answers("rebind.example"));
        assert!(public.tls(&HeaderMap::new()));
        // Login on a public address with no public URL: any name, and a proxy's word isn't trusted.
        let any = Access::new(None, "0.0.0.0:3000".parse().expect("addr"), true, false).expect("access");
        assert!(any.answers_any_host());
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-proto", "https".parse().expect("value"));
        assert!(!any.tls(&forwarded));
        let trusted = Access::new(None, "0.0.0.0:3000".parse().expect("addr"), true, true).expect("access");
        assert!(trusted.tls(&forwarded) && !trusted.tls(&HeaderMap::new()));
        assert!(Access::new(Some("ftp://x"), loopback, true, false).is_err());
        assert!(Access::new(Some("not a url"), loopback, true, false).is_err());
    }
}
