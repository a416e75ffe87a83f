//! The dashboard over plain HTTP: redirects, server-rendered rows (escaped), 404s, embedded assets.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::json;

/// A response's whole body, inflated from brotli.
async fn unbrotli(resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::BrotliDecompress(&mut &resp.bytes().await.expect("whole body")[..], &mut out)
        .expect("valid brotli");
    out
}

/// A response's whole body, inflated from gzip.
async fn ungzip(resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&resp.bytes().await.expect("whole body")[..]),
        &mut out,
    )
    .expect("valid gzip");
    out
}

#[tokio::test]
async fn pages_render_on_the_server_and_assets_are_embedded() {
    let s = TestServer::start();
    let evil = "<script>alert('x')</script>";
    let body = json!({ "events": [{ "id": "p1", "timestamp": minutes_ago(2), "provider": "openai", "model": "gpt-4o",
        "tags": { "userId": evil }, "usage": { "input_tokens": 1000 } }] });
    assert_eq!(s.post(&body).await.0, 200);

    let no_redirects =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = no_redirects.get(format!("{}/", s.base)).send().await.expect("GET /");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/ai-apps");
    for path in ["/ai-apps", "/ai-apps/models", "/ai-apps/traces"] {
        let resp = s.http.get(format!("{}{path}", s.base)).send().await.expect("GET page");
        assert_eq!(resp.status(), 200, "{path}");
    }

    let resp = s.http.get(format!("{}/ai-apps/users", s.base)).send().await.expect("GET users page");
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("html");
    assert!(html.contains("&lt;script&gt;alert("), "the user id is escaped in the server-rendered table");
    assert!(!html.contains(evil));
    assert!(html.contains("$0.0025"), "spend of 1000 gpt-4o input tokens");
    // The bundle is named under the build's version: `/pkg/<16 hex digits>/tokentally.js`.
    let at = html.find("/tokentally.js").expect("hydration script");
    let pkg = &html[at.saturating_sub(21)..at];
    let version = pkg.strip_prefix("/pkg/").expect("under /pkg/<version>");
    assert!(version.len() == 16 && version.chars().all(|c| c.is_ascii_hexdigit()), "{pkg}");
    assert!(html.contains(&format!("{pkg}/tokentally.css")), "the stylesheet too");

    let resp = s.http.get(format!("{}/no/such/page", s.base)).send().await.expect("GET");
    assert_eq!(resp.status(), 404);

    // Under the version: cached for a year.
    for (file, ct) in [("tokentally.wasm", "application/wasm"), ("tokentally.css", "text/css; charset=utf-8")]
    {
        let path = format!("{pkg}/{file}");
        let resp = s.http.get(format!("{}{path}", s.base)).send().await.expect("GET asset");
        assert_eq!(resp.status(), 200, "{path} is embedded (build the site first: scripts/build.sh)");
        assert_eq!(resp.headers()["content-type"], ct);
        assert_eq!(resp.headers()["cache-control"], "public, max-age=31536000, immutable", "{path}");
    }
    // Another version's bundle is gone.
    let resp =
        s.http.get(format!("{}/pkg/0123456789abcdef/tokentally.js", s.base)).send().await.expect("GET");
    assert_eq!(resp.status(), 404);
    // Without the version: revalidated each time, 304 while unchanged.
    let resp = s.http.get(format!("{}/pkg/tokentally.wasm", s.base)).send().await.expect("GET asset");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let etag = resp.headers()["etag"].to_str().expect("etag").to_string();
    assert!(etag.contains(version), "{etag}");
    let again = s
        .http
        .get(format!("{}/pkg/tokentally.wasm", s.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET asset again");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());
    let other = s
        .http
        .get(format!("{}/pkg/tokentally.wasm", s.base))
        .header("if-none-match", "\"0123456789abcdef\"")
        .send()
        .await
        .expect("GET asset with an old tag");
    assert_eq!(other.status(), 200);
    let plain = other.bytes().await.expect("body");

    // Compressed as the browser allows: brotli first, then gzip; each its own ETag; the same bytes.
    let get = |accept: &'static str| {
        let url = format!("{}{pkg}/tokentally.wasm", s.base);
        let http = s.http.clone();
        async move { http.get(url).header("accept-encoding", accept).send().await.expect("GET") }
    };
    let br = get("gzip, deflate, br, zstd").await;
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.headers()["vary"], "accept-encoding");
    let br_tag = br.headers()["etag"].to_str().expect("etag").to_string();
    assert!(unbrotli(br).await == plain, "brotli inflates to the file");
    let gz = get("gzip, br;q=0").await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_ne!(gz.headers()["etag"].to_str().expect("etag"), br_tag);
    assert!(ungzip(gz).await == plain, "gzip inflates to the file");
    let identity = get("identity").await;
    assert!(identity.headers().get("content-encoding").is_none());

    // Pages and API answers are compressed on the fly as the client accepts; the same content.
    let page = |accept: &'static str| {
        let url = format!("{}/ai-apps/users", s.base);
        let http = s.http.clone();
        async move { http.get(url).header("accept-encoding", accept).send().await.expect("GET page") }
    };
    let br = page("br").await;
    assert_eq!(br.headers()["content-encoding"], "br");
    assert!(
        String::from_utf8_lossy(&unbrotli(br).await).contains("&lt;script&gt;alert("),
        "the page, inflated"
    );
    let plain = page("identity").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let api = |path: &'static str, accept: &'static str| {
        let request = s.http.get(format!("{}{path}", s.base)).bearer_auth(&s.read_key);
        async move { request.header("accept-encoding", accept).send().await.expect("GET API") }
    };
    let users = api("/v1/me/ai-apps/users", "gzip").await;
    assert_eq!(users.headers()["content-encoding"], "gzip");
    let json = String::from_utf8_lossy(&ungzip(users).await).into_owned();
    assert!(json.contains("\"total_users\":1"), "{json}");
    // A streamed CSV export, compressed to its end.
    let csv = api("/v1/me/ai-apps/users?format=csv", "br").await;
    assert_eq!(csv.headers()["content-encoding"], "br");
    let text = unbrotli(csv).await;
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("user_id,spend_usd,spend_nano,") && text.lines().count() == 2, "{text}");
    assert!(s.healthy().await);
}
