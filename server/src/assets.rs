//! The site assets embedded at build time (see build.rs), served from memory.
//!
//! Pages name the bundle under the site's version (`/pkg/<version>/tokentally.js`, a hash of
//! every embedded file): those answers are cached for a year (`immutable`), and an upgrade
//! changes the names. The same files without the version (and `/favicon.svg`) are revalidated on
//! each use, by ETag (304 when unchanged).

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Where pages find the bundle: `pkg/<version>` (Leptos' `site_pkg_dir`).
pub fn pkg_dir() -> String {
    format!("pkg/{ASSET_VERSION}")
}

/// Whether `Accept-Encoding` takes `coding` (and doesn't refuse it with `q=0`).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|e| {
            let mut parts = e.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused =
                parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            name.eq_ignore_ascii_case(coding) && !refused
        })
    })
}

/// Serves an embedded file, brotli- or gzip-compressed when the client accepts it.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    // `/pkg/<version>/<file>` is `/pkg/<file>` of this build, for ever; another version is gone.
    let versioned = uri
        .path()
        .strip_prefix("/pkg/")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(version, _)| version.len() == ASSET_VERSION.len() && !version.contains('.'));
    let (path, immutable) = match versioned {
        Some((version, file)) if version == ASSET_VERSION => (format!("/pkg/{file}"), true),
        Some(_) => return (StatusCode::NOT_FOUND, "not found: an asset of another version").into_response(),
        None => (uri.path().to_string(), false),
    };
    let Some(asset) = find(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let encoded = match (asset.brotli, asset.gzip) {
        (Some(br), _) if accepts(&headers, "br") => Some(("br", br)),
        (_, Some(gz)) if accepts(&headers, "gzip") => Some(("gzip", gz)),
        _ => None,
    };
    // One tag per representation: the version says the bytes, the suffix the encoding.
    let etag =
        format!("\"{ASSET_VERSION}{}\"", encoded.map_or(String::new(), |(coding, _)| format!("-{coding}")));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag));
    let mut resp = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match encoded {
            Some((coding, bytes)) => {
                let mut r = bytes.into_response();
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                r
            }
            None => asset.body.into_response(),
        }
    };
    let h = resp.headers_mut();
    if !unchanged {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, tag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    resp
}
