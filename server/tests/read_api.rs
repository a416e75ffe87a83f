//! The read API against independent sums over the ingested events: segments by any tag key,
//! one user's endpoint, CSV parsed back and compared with JSON, cursors, SQL-shaped tags, and a
//! 400 naming the parameter for anything unknown.

mod common;

use common::{TestServer, create_key, minutes_ago};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// One generated event, kept to compute expectations from.
#[derive(Clone)]
struct Ev {
    id: String,
    trace: String,
    user: Option<String>,
    tags: BTreeMap<String, String>,
    provider: &'static str,
    input: i64,
    output: i64,
    cost_nano: i64,
}

impl Ev {
    fn json(&self, minutes: i64) -> Value {
        let mut tags: serde_json::Map<String, Value> =
            self.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        if let Some(u) = &self.user {
            tags.insert("userId".into(), json!(u));
        }
        json!({
            "id": self.id, "trace_id": self.trace, "timestamp": minutes_ago(minutes),
            "provider": self.provider, "model": if self.provider == "openai" { "gpt-4o" } else { "claude-haiku-4-5" },
            "tags": tags, "usage": { "input_tokens": self.input, "output_tokens": self.output },
            "cost_usd": format!("{}.{:09}", self.cost_nano / 1_000_000_000, self.cost_nano % 1_000_000_000),
        })
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// 600 events in 200 traces: plans on every trace, orgs on most, a feature on some.
fn generate() -> Vec<Ev> {
    let mut r = Lcg(42);
    let mut out = Vec::new();
    for t in 0..200 {
        let user = (r.next(8) > 0).then(|| format!("user-{}", r.next(30)));
        let mut tags =
            BTreeMap::from([("plan".to_string(), ["free", "pro", "team"][r.next(3) as usize].to_string())]);
        if r.next(5) > 0 {
            tags.insert("org".into(), format!("org-{}", r.next(4)));
        }
        if r.next(2) == 0 {
            tags.insert("feature".into(), ["chat", "search"][r.next(2) as usize].into());
        }
        for e in 0..3 {
            out.push(Ev {
                id: format!("ev-{t}-{e}"),
                trace: format!("tr-{t}"),
                user: user.clone(),
                tags: tags.clone(),
                provider: if r.next(3) == 0 { "anthropic" } else { "openai" },
                input: r.next(4000) as i64,
                output: r.next(500) as i64,
                cost_nano: r.next(5_000_000) as i64 + 1,
            });
        }
    }
    out
}

async fn ingest(s: &TestServer, events: &[Ev]) {
    for (i, chunk) in events.chunks(200).enumerate() {
        let body: Vec<Value> = chunk.iter().map(|e| e.json(10 + i as i64)).collect();
        let (status, resp) = s.post(&json!({ "events": body })).await;
        assert_eq!(status, 200, "{resp}");
    }
}

/// Expected segments: value → (spend, calls, users, traces, tokens).
fn expected_segments<'a>(
    events: impl Iterator<Item = &'a Ev>,
    by: &str,
) -> BTreeMap<Option<String>, (i64, i64, i64, i64, i64)> {
    type Acc = (i64, i64, BTreeSet<String>, BTreeSet<String>, i64);
    let mut acc: BTreeMap<Option<String>, Acc> = BTreeMap::new();
    for e in events {
        let value = if by == "userId" { e.user.clone() } else { e.tags.get(by).cloned() };
        let a = acc.entry(value).or_default();
        a.0 += e.cost_nano;
        a.1 += 1;
        a.2.extend(e.user.clone());
        a.3.insert(e.trace.clone());
        a.4 += e.input + e.output;
    }
    acc.into_iter().map(|(k, a)| (k, (a.0, a.1, a.2.len() as i64, a.3.len() as i64, a.4))).collect()
}

fn got_segments(body: &Value) -> BTreeMap<Option<String>, (i64, i64, i64, i64, i64)> {
    body["segments"]
        .as_array()
        .unwrap_or_else(|| panic!("segments in {body}"))
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_i64().unwrap_or_else(|| panic!("{k} in {s}"));
            (
                s["value"].as_str().map(str::to_string),
                (n("spend_nano"), n("calls"), n("users"), n("traces"), n("tokens")),
            )
        })
        .collect()
}

#[tokio::test]
async fn segments_and_filters_match_independent_sums() {
    let s = TestServer::start();
    let events = generate();
    ingest(&s, &events).await;

    for by in ["plan", "org", "feature", "userId"] {
        let (status, body) = s.get(&format!("/v1/me/ai-apps/segments?by={by}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(got_segments(&body), expected_segments(events.iter(), by), "by={by}");
        let spends: Vec<i64> = body["segments"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|r| r["spend_nano"].as_i64())
            .collect();
        assert!(spends.windows(2).all(|w| w[0] >= w[1]), "sorted by spend: {spends:?}");
        let all = expected_segments(events.iter(), by);
        assert_eq!(body["total_segments"].as_i64(), Some(all.len() as i64), "by={by}: total");
        // A limit keeps the biggest (the same rows as the head of the full answer) and the total.
        let (status, top) = s.get(&format!("/v1/me/ai-apps/segments?by={by}&limit=2")).await;
        assert_eq!(status, 200, "{top}");
        assert_eq!(top["segments"].as_array().map(Vec::len), Some(all.len().min(2)), "by={by}: {top}");
        assert_eq!(top["segments"][0], body["segments"][0], "by={by}: biggest first");
        assert_eq!(top["total_segments"], body["total_segments"], "by={by}");
    }
    let (status, body) = s.get("/v1/me/ai-apps/segments?by=plan&limit=0").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")), "{body}");
    // Narrowed by a tag, a provider, and a user.
    let pro = |e: &&Ev| e.tags.get("plan").map(String::as_str) == Some("pro");
    let (_, body) = s.get("/v1/me/ai-apps/segments?by=org&tag.plan=pro").await;
    assert_eq!(got_segments(&body), expected_segments(events.iter().filter(pro), "org"));
    let (_, body) = s.get("/v1/me/ai-apps/segments?by=plan&provider=anthropic").await;
    assert_eq!(
        got_segments(&body),
        expected_segments(events.iter().filter(|e| e.provider == "anthropic"), "plan")
    );
    let user = events[0].user.clone().expect("the first trace has a user");
    let (_, body) = s.get(&format!("/v1/me/ai-apps/segments?by=feature&user={user}")).await;
    assert_eq!(
        got_segments(&body),
        expected_segments(events.iter().filter(|e| e.user.as_ref() == Some(&user)), "feature")
    );

    // Per-tenant cost report: users of one org, from the users endpoint.
    let org: Vec<&Ev> =
        events.iter().filter(|e| e.tags.get("org").map(String::as_str) == Some("org-1")).collect();
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in &org {
        if let Some(u) = &e.user {
            let w = want.entry(u.clone()).or_default();
            *w = (w.0 + e.cost_nano, w.1 + 1);
        }
    }
    let got: BTreeMap<String, (i64, i64)> = s
        .all_users("&tag.org=org-1")
        .await
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().expect("id").to_string(),
                (u["spend_nano"].as_i64().expect("spend"), u["events"].as_i64().expect("events")),
            )
        })
        .collect();
    assert_eq!(got, want);

    // Overview, models and tools take the same filters.
    let (_, o) = s.get("/v1/me/ai-apps/overview?tag.org=org-1&provider=openai").await;
    let want: i64 = org.iter().filter(|e| e.provider == "openai").map(|e| e.cost_nano).sum();
    assert_eq!(o["current"]["spend_nano"].as_i64(), Some(want));
    let (_, m) = s.get("/v1/me/ai-apps/models?tag.org=org-1").await;
    let got: i64 =
        m["models"].as_array().expect("models").iter().filter_map(|r| r["spend_nano"].as_i64()).sum();
    assert_eq!(got, org.iter().map(|e| e.cost_nano).sum::<i64>());

    // One user's endpoint: KPIs, models and traces of exactly that user.
    let (status, body) = s.get(&format!("/v1/me/ai-apps/users/{user}")).await;
    assert_eq!(status, 200, "{body}");
    let mine: Vec<&Ev> = events.iter().filter(|e| e.user.as_ref() == Some(&user)).collect();
    assert_eq!(body["user_id"], json!(user));
    assert_eq!(body["current"]["spend_nano"].as_i64(), Some(mine.iter().map(|e| e.cost_nano).sum::<i64>()));
    assert_eq!(body["current"]["calls"].as_i64(), Some(mine.len() as i64));
    let traces: BTreeSet<&str> = mine.iter().map(|e| e.trace.as_str()).collect();
    let listed: BTreeSet<&str> =
        body["traces"].as_array().expect("traces").iter().filter_map(|t| t["trace_id"].as_str()).collect();
    assert_eq!(listed, traces);
    let model_calls: i64 =
        body["models"].as_array().expect("models").iter().filter_map(|m| m["calls"].as_i64()).sum();
    assert_eq!(model_calls, mine.len() as i64);
    // A user with no stored call is not found (a user idle in the window is there with zeros).
    let (status, body) = s.get("/v1/me/ai-apps/users/nobody-at-all").await;
    assert_eq!((status, body["error"].is_string()), (404, true));
    let (status, body) = s.get(&format!("/v1/me/ai-apps/users/{user}?from=2020-01-01&to=2020-01-02")).await;
    assert_eq!((status, body["current"]["calls"].as_i64()), (200, Some(0)));
}

/// A minimal RFC 4180 reader written for the test (quoted fields, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR must start CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "the last line ends with CRLF");
    rows
}

async fn get_text(s: &TestServer, path: &str) -> (u16, String, String) {
    let resp = s.http.get(format!("{}{path}", s.base)).bearer_auth(&s.read_key).send().await.expect("GET");
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ctype, resp.text().await.expect("body"))
}

/// CSV rows as JSON-like string maps keyed by the header.
fn csv_records(text: &str) -> Vec<BTreeMap<String, String>> {
    let rows = parse_csv(text);
    let (header, rest) = rows.split_first().expect("a header row");
    rest.iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "every row has every column: {r:?}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

/// A JSON row rendered the way the CSV must hold it (text a spreadsheet would run as a formula
/// behind a `'`).
fn as_csv_field(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn assert_csv_matches(csv: &[BTreeMap<String, String>], json: &[Value], what: &str) {
    assert_eq!(csv.len(), json.len(), "{what}: row count");
    for (c, j) in csv.iter().zip(json) {
        for (k, v) in c {
            assert_eq!(v, &as_csv_field(&j[k]), "{what}: column {k} of {j}");
        }
    }
}

/// Every row of a JSON list (`path` under /v1/me/ai-apps/, with a query), following its cursor.
async fn every_page(s: &TestServer, path: &str, key: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = s.get(&format!("/v1/me/ai-apps/{path}{cursor}")).await;
        assert_eq!(status, 200, "{path}: {page}");
        rows.extend(page[key].as_array().expect("rows").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn csv_exports_parse_back_to_the_json() {
    let s = TestServer::start();
    // 1,100 users (more than one export page), a few with ids that need quoting.
    let awkward = ["comma, user", "quote \"q\" user", "line\nbreak", "=1+2", "ünï"];
    let mut events: Vec<Value> = (0..1100)
        .map(|i| {
            let user = awkward.get(i).map(|u| u.to_string()).unwrap_or_else(|| format!("bulk-{i:04}"));
            let plan = ["free", "pro"][i % 2];
            json!({ "id": format!("e{i}"), "trace_id": format!("t{i}"), "timestamp": minutes_ago(5 + (i as i64 % 50)),
                    "provider": "openai", "model": "gpt-4o", "tags": { "userId": user, "plan": plan },
                    "usage": { "input_tokens": 1000 + i, "output_tokens": 10 }, "tools": if i % 3 == 0 { json!(["search"]) } else { json!([]) } })
        })
        .collect();
    events.push(json!({ "id": "unpriced", "timestamp": minutes_ago(3), "provider": "openai", "model": "mystery",
                        "tags": { "userId": "comma, user" }, "usage": { "input_tokens": 5, "output_tokens": 5 } }));
    for chunk in events.chunks(500) {
        assert_eq!(s.post(&json!({ "events": chunk })).await.0, 200);
    }

    let (status, ctype, text) = get_text(&s, "/v1/me/ai-apps/users?format=csv&sort=user&dir=asc").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let json_users = every_page(&s, "users?sort=user&dir=asc&limit=500", "users").await;
    assert_eq!(json_users.len(), 1100);
    let records = csv_records(&text);
    assert_csv_matches(&records, &json_users, "users");
    let ids: BTreeSet<&str> = records.iter().map(|r| r["user_id"].as_str()).collect();
    for a in awkward {
        let shown = as_csv_field(&json!(a));
        assert!(ids.contains(shown.as_str()), "{a:?} survives the CSV round trip as {shown:?}");
    }
    assert_eq!(
        records.iter().find(|r| r["user_id"] == "comma, user").map(|r| r["unpriced_events"].as_str()),
        Some("1")
    );

    // A limit and a cursor narrow the export like the JSON page.
    let (_, page) = s.get("/v1/me/ai-apps/users?limit=3&tag.plan=pro").await;
    let (_, _, text) = get_text(&s, "/v1/me/ai-apps/users?format=csv&limit=3&tag.plan=pro").await;
    assert_csv_matches(&csv_records(&text), page["users"].as_array().expect("users"), "users limit 3");
    let next = page["next_cursor"].as_str().expect("more pages");
    let (_, page2) = s.get(&format!("/v1/me/ai-apps/users?limit=3&tag.plan=pro&cursor={next}")).await;
    let (_, _, text) =
        get_text(&s, &format!("/v1/me/ai-apps/users?format=csv&limit=3&tag.plan=pro&cursor={next}")).await;
    assert_csv_matches(&csv_records(&text), page2["users"].as_array().expect("users"), "users page 2");

    // Traces, models, tools and segments.
    let (_, _, text) = get_text(&s, "/v1/me/ai-apps/traces?format=csv&q=nothing-matches").await;
    assert_eq!(csv_records(&text).len(), 0);
    assert!(text.starts_with("trace_id,"), "{text}");
    let (_, page) = s.get("/v1/me/ai-apps/traces?limit=40&sort=spend").await;
    let (_, _, text) = get_text(&s, "/v1/me/ai-apps/traces?format=csv&limit=40&sort=spend").await;
    assert_csv_matches(&csv_records(&text), page["traces"].as_array().expect("traces"), "traces");
    // The whole list (two export pages, keyset-paged) in the JSON list's order, each once.
    let json_traces = every_page(&s, "traces?sort=tokens&dir=asc&limit=500", "traces").await;
    let (_, _, text) = get_text(&s, "/v1/me/ai-apps/traces?format=csv&sort=tokens&dir=asc").await;
    assert_eq!(csv_records(&text).len(), 1100, "the whole list without a limit");
    assert_csv_matches(&csv_records(&text), &json_traces, "every trace");
    for (path, key) in [("models", "models"), ("tools", "tools"), ("segments?by=plan", "segments")] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (_, body) = s.get(&format!("/v1/me/ai-apps/{path}")).await;
        let (status, _, text) = get_text(&s, &format!("/v1/me/ai-apps/{path}{sep}format=csv")).await;
        assert_eq!(status, 200);
        assert_csv_matches(&csv_records(&text), body[key].as_array().expect("rows"), path);
    }

    // The dashboard's download of the same view needs no key and holds the same rows.
    let text = s.text("/export/users.csv?sort=user&dir=asc&page=3").await;
    assert_csv_matches(&csv_records(&text), &json_users, "dashboard export (every page)");
}

#[tokio::test]
async fn sql_shaped_tags_are_only_data_and_tenants_stay_apart() {
    let s = TestServer::start();
    let ev = |id: &str, user: &str, tags: Value| {
        let mut tags = tags;
        tags["userId"] = json!(user);
        json!({ "id": id, "timestamp": minutes_ago(5), "provider": "openai", "model": "gpt-4o", "tags": tags,
                "usage": { "input_tokens": 100, "output_tokens": 1 } })
    };
    let body = json!({ "events": [
        ev("a1", "alice", json!({ "plan": "pro" })),
        ev("a2", "mallory", json!({ "plan'--": "x", "a": "1 OR 1=1" })),
        ev("a3", "bob", json!({ "plan": "free" })),
    ]});
    assert_eq!(s.post(&body).await.0, 200);
    // Another project's data, with the same tag values.
    let other_ingest = create_key(&s.db, "ingest", "tenant-b");
    let (status, _) = s
        .post_with(
            Some(&other_ingest),
            &json!({ "events": [ev("b1", "eve", json!({ "plan": "pro", "a": "1 OR 1=1" }))] }),
        )
        .await;
    assert_eq!(status, 200);

    let s = &s;
    let users = |q: &'static str| async move {
        let (status, body) = s.get(&format!("/v1/me/ai-apps/users?{q}")).await;
        assert_eq!(status, 200, "{q}: {body}");
        body["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|u| u["user_id"].as_str().map(String::from))
            .collect::<Vec<_>>()
    };
    assert_eq!(users("tag.plan'--=x").await, ["mallory"]);
    assert_eq!(users("tag.plan%27--=x").await, ["mallory"]);
    assert_eq!(users("tag.a=1%20OR%201=1").await, ["mallory"], "the other tenant's eve never shows");
    assert_eq!(users("tag.plan=pro%27%20OR%20%271%27=%271").await, Vec::<String>::new());
    assert_eq!(users("tag.plan=pro").await, ["alice"]);
    assert_eq!(users("tag.plan=x%22;%20DROP%20TABLE%20events;--").await, Vec::<String>::new());
    let (status, seg) = s.get("/v1/me/ai-apps/segments?by=plan'--").await;
    assert_eq!(status, 200, "{seg}");
    let values: Vec<Option<&str>> =
        seg["segments"].as_array().expect("rows").iter().map(|r| r["value"].as_str()).collect();
    assert_eq!(values, [None, Some("x")], "two calls without the key, one with it; no other tenant");
    let (_, o) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!(o["current"]["calls"], 3, "tables intact, only this project");
    let other_read = create_key(&s.db, "read", "tenant-b");
    let resp = s
        .http
        .get(format!("{}/v1/me/ai-apps/users?tag.a=1%20OR%201=1", s.base))
        .bearer_auth(&other_read)
        .send()
        .await
        .expect("GET");
    let body: Value = resp.json().await.expect("json");
    let ids: Vec<&str> =
        body["users"].as_array().expect("users").iter().filter_map(|u| u["user_id"].as_str()).collect();
    assert_eq!(ids, ["eve"]);
}

#[tokio::test]
async fn unknown_or_malformed_parameters_are_named() {
    let s = TestServer::start();
    assert_eq!(s.post(&json!({ "events": [{ "id": "e", "timestamp": minutes_ago(1), "provider": "openai", "model": "gpt-4o",
        "tags": { "userId": "u" }, "usage": { "input_tokens": 1, "output_tokens": 1 } }] })).await.0, 200);
    let cases = [
        ("/v1/me/ai-apps/users?bogus=1", "bogus"),
        ("/v1/me/ai-apps/users?window=3d", "window"),
        ("/v1/me/ai-apps/users?tag.=x", "tag."),
        ("/v1/me/ai-apps/users?limit=501", "limit"),
        ("/v1/me/ai-apps/users?cursor=abc", "cursor"),
        ("/v1/me/ai-apps/users?page=2", "page"),
        ("/v1/me/ai-apps/users?q=x", "q"),
        ("/v1/me/ai-apps/users?format=xml", "format"),
        ("/v1/me/ai-apps/users?cursor=0.-4700000000000000000.4700000000000000000", "cursor"),
        ("/v1/me/ai-apps/users?cursor=+5", "cursor"),
        ("/v1/me/ai-apps/users?cursor=1234567890", "cursor"),
        ("/v1/me/ai-apps/users?from=soon&to=later", "from"),
        ("/v1/me/ai-apps/users/u?sort=spend", "sort"),
        ("/v1/me/ai-apps/users/u?user=v", "user"),
        ("/v1/me/ai-apps/traces?sort=user", "sort"),
        ("/v1/me/ai-apps/traces/t?x=1", "x"),
        ("/v1/me/ai-apps/events/e?x=1", "x"),
        ("/v1/me/ai-apps/overview?limit=5", "limit"),
        ("/v1/me/ai-apps/overview?stack=day", "stack"),
        ("/v1/me/ai-apps/models?tag=plan", "tag"),
        ("/v1/me/ai-apps/tools?window=", "window"),
        ("/v1/me/ai-apps/segments", "by"),
        ("/v1/me/ai-apps/segments?by=", "by"),
        ("/v1/me/ai-apps/segments?by=plan&cursor=0", "cursor"),
    ];
    for (path, field) in cases {
        let (status, body) = s.get(path).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|m| !m.is_empty()), "{path}: a message");
    }
    let (status, _) = s.get("/v1/me/ai-apps/users?window=7d&tag.plan=pro&limit=500&format=json").await;
    assert_eq!(status, 200);
    // One bound alone reads from it to now; bounds past the data's span read as its ends; an
    // inverted range is empty. Each echoes the bounds it read.
    let (status, body) = s.get("/v1/me/ai-apps/users?from=2026-01-01").await;
    assert_eq!(
        (status, body["from"].as_str(), body["total_users"].as_i64()),
        (200, Some("2026-01-01T00:00:00Z"), Some(1))
    );
    let (status, body) = s.get("/v1/me/ai-apps/users?from=1900-01-01&to=9999-01-01").await;
    assert_eq!(
        (status, body["from"].as_str(), body["total_users"].as_i64()),
        (200, Some("1970-01-01T00:00:00Z"), Some(1))
    );
    let (status, body) = s.get("/v1/me/ai-apps/users?from=2026-02-01&to=2026-01-01").await;
    assert_eq!((status, body["total_users"].as_i64()), (200, Some(0)));
    let (status, body) = s.get("/v1/me/ai-apps/overview?from=1970-01-01&to=9999-01-01").await;
    let buckets = body["spend_by_model"]["buckets"].as_array().map_or(usize::MAX, Vec::len);
    assert!(status == 200 && buckets <= 733, "{status}: {buckets} buckets");
    assert!(s.healthy().await);
}
