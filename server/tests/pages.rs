//! The dashboard over plain HTTP: redirects, server-rendered rows (escaped), 404s, embedded assets.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::json;

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
    assert!(html.contains("/pkg/tokentally.js"), "hydration script");

    let resp = s.http.get(format!("{}/no/such/page", s.base)).send().await.expect("GET");
    assert_eq!(resp.status(), 404);

    for (path, ct) in
        [("/pkg/tokentally.wasm", "application/wasm"), ("/pkg/tokentally.css", "text/css; charset=utf-8")]
    {
        let resp = s.http.get(format!("{}{path}", s.base)).send().await.expect("GET asset");
        assert_eq!(resp.status(), 200, "{path} is embedded (build the site first: scripts/build.sh)");
        assert_eq!(resp.headers()["content-type"], ct);
    }
}
