//! Who may do what: the key matrix (scope × project × endpoint), dashboard login, logout, CSRF,
//! session expiry, and `--no-login` only on loopback.

mod common;

use common::{TestServer, binary, cli, create_key, minutes_ago};
use reqwest::Method;
use serde_json::{Value, json};

fn event(id: &str, user: &str, trace: &str) -> Value {
    json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(5), "provider": "openai", "model": "gpt-4o",
            "tags": { "userId": user, "plan": "pro" }, "usage": { "input_tokens": 1000, "output_tokens": 10 } })
}

async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = s.http.request(method, format!("{}{path}", s.base));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn key_matrix_allows_only_the_right_scope_on_the_right_project() {
    let s = TestServer::start();
    let keys: Vec<(&str, &str, String)> = ["a", "b"]
        .iter()
        .flat_map(|p| ["ingest", "read", "admin"].map(|scope| (*p, scope, create_key(&s.db, scope, p))))
        .collect();
    let key = |p: &str, scope: &str| {
        keys.iter().find(|k| k.0 == p && k.1 == scope).map(|k| k.2.clone()).expect("key")
    };
    for p in ["a", "b"] {
        let body =
            json!({ "events": [event(&format!("{p}-1"), &format!("{p}-user"), &format!("{p}-trace"))] });
        assert_eq!(call(&s, Method::POST, "/v1/events", Some(&key(p, "ingest")), Some(&body)).await.0, 200);
    }
    let revoked = create_key(&s.db, "admin", "a");
    let (ok, out, err) = cli(&s.db, &["keys", "revoke", &revoked[..14]]);
    assert!(ok, "{out}{err}");

    let api = "/v1/me/ai-apps";
    let reads = [
        format!("{api}/overview"),
        format!("{api}/users"),
        format!("{api}/users/a-user"),
        format!("{api}/traces"),
        format!("{api}/traces/a-trace"),
        format!("{api}/events/a-1"),
        format!("{api}/models"),
        format!("{api}/tools"),
        format!("{api}/segments?by=plan"),
    ];
    for (p, scope, k) in keys
        .iter()
        .map(|(p, s, k)| (*p, *s, Some(k.as_str())))
        .chain([("-", "none", None), ("a", "revoked", Some(revoked.as_str()))])
    {
        // Ingest: only ingest keys.
        let body = json!({ "events": [event(&format!("m-{p}-{scope}"), "matrix", "matrix-trace")] });
        let (status, _) = call(&s, Method::POST, "/v1/events", k, Some(&body)).await;
        assert_eq!(status, if scope == "ingest" { 200 } else { 401 }, "ingest with {p}/{scope}");
        // Reads: read and admin keys, and each sees only its own project.
        for path in &reads {
            let (status, body) = call(&s, Method::GET, path, k, None).await;
            let want = match (scope, p) {
                ("read" | "admin", "a") => 200,
                // Project b's keys can't see a's user, trace and event: they don't exist for b.
                ("read" | "admin", "b")
                    if path.contains("/traces/a-")
                        || path.contains("/events/a-")
                        || path.contains("/users/a-") =>
                {
                    404
                }
                ("read" | "admin", "b") => 200,
                _ => 401,
            };
            assert_eq!(status, want, "GET {path} with {p}/{scope}: {body}");
            if status == 200 && path.ends_with("/users") {
                let ids: Vec<&str> = body["users"]
                    .as_array()
                    .expect("users")
                    .iter()
                    .filter_map(|u| u["user_id"].as_str())
                    .collect();
                assert!(
                    ids.iter().all(|u| u.starts_with(p) || *u == "matrix"),
                    "{p} sees only its users: {ids:?}"
                );
            }
        }
        // Deletion: admin keys only, and only within their project.
        let (status, body) = call(&s, Method::DELETE, &format!("{api}/users/a-user"), k, None).await;
        match (scope, p) {
            ("admin", "b") => assert_eq!(
                (status, body["deleted"]["events"].as_i64()),
                (200, Some(0)),
                "b's admin can't reach a's user"
            ),
            ("admin", "a") => {}
            _ => assert_eq!(status, 401, "DELETE with {p}/{scope}"),
        }
    }
    // a's user survived everything but a's own admin key (used last, above).
    let (_, body) =
        call(&s, Method::GET, &format!("{api}/users/b-user"), Some(&key("b", "read")), None).await;
    assert_eq!(body["current"]["calls"], 1, "b's user untouched");
    let (status, _) =
        call(&s, Method::GET, &format!("{api}/users/a-user"), Some(&key("a", "read")), None).await;
    assert_eq!(status, 404, "a's admin key deleted a's user");
    let (ok, out, _) = cli(&s.db, &["keys", "list", "--project", "a"]);
    assert!(ok);
    assert!(out.contains("revoked"), "{out}");
    assert!(!out.contains(&revoked), "keys list shows prefixes, never secrets: {out}");
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn value(set_cookie: &str) -> &str {
    set_cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v).unwrap_or("")
}

#[tokio::test]
async fn login_logout_csrf_and_session_expiry() {
    let s = TestServer::start_with(
        &[],
        &[("TOKENTALLY_ADMIN_PASSWORD", "correct horse"), ("TOKENTALLY_SESSION_TTL_SECS", "3")],
    );
    let get = |path: &str, cookies: &str| {
        s.http.get(format!("{}{path}", s.base)).header("cookie", cookies.to_string()).send()
    };

    // Signed out: pages redirect to the login, server functions answer 401.
    let resp = get("/ai-apps/users?window=7d", "").await.expect("GET");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login?next=%2Fai-apps%2Fusers%3Fwindow%3D7d");
    let resp =
        s.http.post(format!("{}/api/get_users", s.base)).form(&[("query", "")]).send().await.expect("POST");
    assert_eq!(resp.status(), 401);
    assert_eq!(get("/export/users.csv", "").await.expect("GET").status(), 303);
    assert_eq!(get("/settings", "").await.expect("GET").status(), 303);
    // The API keeps working with keys.
    assert_eq!(s.get("/v1/me/ai-apps/users").await.0, 200);

    // The login page sets the CSRF cookie and embeds the same token.
    let resp = get("/login", "").await.expect("GET");
    assert_eq!(resp.status(), 200);
    let csrf = value(&cookie_of(&resp, "tt_csrf").expect("csrf cookie")).to_string();
    assert!(resp.text().await.expect("html").contains(&csrf));
    let jar = format!("tt_csrf={csrf}");
    let login = |form: Vec<(&'static str, String)>, extra: Option<(&'static str, &'static str)>| {
        let mut req = s.http.post(format!("{}/login", s.base)).header("cookie", jar.clone()).form(&form);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let form = |pw: &str, token: &str| {
        vec![
            ("csrf", token.to_string()),
            ("username", "admin".to_string()),
            ("password", pw.to_string()),
            ("next", "/ai-apps/models".to_string()),
        ]
    };
    let resp = login(form("wrong password", &csrf), None).await.expect("POST");
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().expect("loc").starts_with("/login?failed=1"));
    assert!(cookie_of(&resp, "tt_session").is_none());
    // A failed sign-in is logged with the name quoted and escaped: a line break in it can't
    // start a forged log line.
    let mut forged = form("wrong password", &csrf);
    forged[1].1 = "mallory\n2026-12-02T00:00:00.000000Z  INFO tokentally: admin signed in".into();
    let resp = login(forged, None).await.expect("POST");
    assert_eq!(resp.status(), 303);
    let log = s.log();
    assert!(log.contains("failed dashboard sign-in") && log.contains("mallory"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("2026-12-02T00:00:00.000000Z")), "{log}");
    let resp = login(form("correct horse", "forged"), None).await.expect("POST");
    assert_eq!(resp.status(), 403, "a wrong CSRF token is refused");
    let resp =
        login(form("correct horse", &csrf), Some(("origin", "https://evil.example"))).await.expect("POST");
    assert_eq!(resp.status(), 403, "a cross-site POST is refused");
    // A client's own X-Forwarded-Proto doesn't make the cookie Secure: only --public-url https
    // or --trust-proxy does (see `a_foreign_host_is_refused_on_every_route`).
    let resp = login(form("correct horse", &csrf), Some(("x-forwarded-proto", "https"))).await.expect("POST");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/ai-apps/models");
    let session = cookie_of(&resp, "tt_session").expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "{session}");
    let jar = format!("tt_csrf={csrf}; tt_session={}", value(&session));

    // Signed in: pages, server functions and exports work.
    let resp = get("/ai-apps/users", &jar).await.expect("GET");
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.expect("html").contains("Sign out"));
    let resp = s
        .http
        .post(format!("{}/api/get_users", s.base))
        .header("cookie", jar.clone())
        .form(&[("query", "")])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);

    // Logout needs the token too, and ends the session.
    let logout = |token: &str| {
        s.http
            .post(format!("{}/logout", s.base))
            .header("cookie", jar.clone())
            .form(&[("csrf", token.to_string())])
            .send()
    };
    assert_eq!(logout("forged").await.expect("POST").status(), 403);
    assert_eq!(
        get("/ai-apps", &jar).await.expect("GET").status(),
        200,
        "still signed in after a refused logout"
    );
    let resp = logout(&csrf).await.expect("POST");
    assert_eq!((resp.status().as_u16(), resp.headers()["location"].to_str().ok()), (303, Some("/login")));
    assert_eq!(get("/ai-apps", &jar).await.expect("GET").status(), 303, "the old cookie no longer works");

    // Sessions expire (TTL 3 s here).
    let resp = login(form("correct horse", &csrf), None).await.expect("POST");
    let jar =
        format!("tt_csrf={csrf}; tt_session={}", value(&cookie_of(&resp, "tt_session").expect("session")));
    assert_eq!(get("/ai-apps", &jar).await.expect("GET").status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(get("/ai-apps", &jar).await.expect("GET").status(), 303, "expired");
}

#[test]
fn no_login_refuses_a_public_address_and_serve_needs_an_admin() {
    let dir = std::env::temp_dir().join(format!("tokentally-nologin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("t.db");
    let out = std::process::Command::new(binary())
        .args(["serve", "--no-login", "--addr", "0.0.0.0:0", "--db"])
        .arg(&db)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a terminal, a password or --no-login, serve explains what it needs.
    let out = std::process::Command::new(binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env_remove("TOKENTALLY_ADMIN_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOKENTALLY_ADMIN_PASSWORD"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A page under another name resolved to 127.0.0.1 (DNS rebinding) reaches nothing: every route
/// answers 421 to a foreign `Host`. The public URL's host is answered, and its https scheme is
/// what makes cookies Secure.
#[tokio::test]
async fn a_foreign_host_is_refused_on_every_route() {
    let s = TestServer::start();
    let request = |method: Method, path: &str, host: &str| {
        let req = s.http.request(method, format!("{}{path}", s.base)).header("host", host.to_string());
        match path {
            p if p.starts_with("/v1/events") => req.bearer_auth(&s.ingest_key).json(&json!({ "events": [] })),
            p if p.starts_with("/v1/") => req.bearer_auth(&s.read_key),
            _ => req,
        }
    };
    let routes = [
        (Method::GET, "/"),
        (Method::GET, "/ai-apps/users"),
        (Method::GET, "/settings"),
        (Method::GET, "/login"),
        (Method::GET, "/healthz"),
        (Method::GET, "/pkg/no-such-file.js"),
        (Method::GET, "/export/users.csv"),
        (Method::GET, "/v1/openapi.json"),
        (Method::GET, "/v1/me/ai-apps/users"),
        (Method::POST, "/v1/events"),
        (Method::POST, "/api/get_session"),
        (Method::POST, "/settings/keys"),
    ];
    for (method, path) in routes.clone() {
        let resp = request(method.clone(), path, "rebind.example:3000").send().await.expect("send");
        assert_eq!(resp.status(), 421, "{method} {path}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["field"], "Host", "{body}");
        // The same request by a loopback name isn't refused for its host.
        for host in ["localhost:3000", "127.0.0.1", "[::1]:3000"] {
            let resp = request(method.clone(), path, host).send().await.expect("send");
            assert_ne!(resp.status(), 421, "{method} {path} {host}");
        }
    }
    assert!(s.all_users("").await.is_empty(), "nothing was written");

    let s = TestServer::start_with(
        &["--public-url", "https://Dash.Example.com"],
        &[("TOKENTALLY_ADMIN_PASSWORD", "correct horse")],
    );
    let get = |host: &str| s.http.get(format!("{}/login", s.base)).header("host", host.to_string()).send();
    assert_eq!(get("rebind.example").await.expect("GET").status(), 421);
    let resp = get("dash.example.com").await.expect("GET");
    assert_eq!(resp.status(), 200);
    let csrf = cookie_of(&resp, "tt_csrf").expect("csrf cookie");
    assert!(csrf.contains("Secure"), "{csrf}");
}

/// A burst of wrong passwords is cut off with 429 before it reaches the password hash, and
/// ingest keeps answering meanwhile.
#[tokio::test]
async fn a_burst_of_wrong_passwords_is_throttled_and_ingest_still_answers() {
    let s = TestServer::start_with(&[], &[("TOKENTALLY_ADMIN_PASSWORD", "correct horse")]);
    let resp = s.http.get(format!("{}/login", s.base)).send().await.expect("GET");
    let csrf = value(&cookie_of(&resp, "tt_csrf").expect("csrf cookie")).to_string();
    let attempts = (0..200).map(|i| {
        let req = s
            .http
            .post(format!("{}/login", s.base))
            .header("cookie", format!("tt_csrf={csrf}"))
            .form(&[("csrf", csrf.as_str()), ("username", "admin"), ("password", &format!("guess {i}"))]);
        async move { req.send().await.expect("POST").status().as_u16() }
    });
    let ingest = async {
        let events = json!({ "events": [{ "id": "during", "timestamp": minutes_ago(1), "provider": "openai",
            "model": "gpt-4o", "tags": { "userId": "u" }, "usage": { "input_tokens": 1, "output_tokens": 1 } }] });
        s.post(&events).await.0
    };
    let (statuses, ingested) = tokio::join!(futures::future::join_all(attempts), ingest);
    assert_eq!(ingested, 200);
    let refused = statuses.iter().filter(|c| **c == 429).count();
    let tried = statuses.iter().filter(|c| **c == 303).count();
    assert_eq!(refused + tried, 200, "{statuses:?}");
    assert!(tried <= 5 && refused >= 195, "{tried} tried, {refused} refused");
    // The right password gets in once the wait is over (Retry-After), and clears the count.
    let mut signed_in = false;
    for _ in 0..10 {
        let resp = s
            .http
            .post(format!("{}/login", s.base))
            .header("cookie", format!("tt_csrf={csrf}"))
            .form(&[("csrf", csrf.as_str()), ("username", "admin"), ("password", "correct horse")])
            .send()
            .await
            .expect("POST");
        if resp.status() == 429 {
            let wait: u64 =
                resp.headers()["retry-after"].to_str().ok().and_then(|v| v.parse().ok()).expect("secs");
            assert!((1..=2).contains(&wait), "{wait}");
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            continue;
        }
        assert_eq!(resp.status(), 303);
        signed_in = cookie_of(&resp, "tt_session").is_some();
        break;
    }
    assert!(signed_in);
    let long = "x".repeat(257);
    let resp = s
        .http
        .post(format!("{}/login", s.base))
        .header("cookie", format!("tt_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("username", long.as_str()), ("password", "p")])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 400);
}
