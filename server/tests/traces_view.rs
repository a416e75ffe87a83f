//! Traces, one trace and one event through the read API, against independent sums.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::{Value, json};

fn ev(id: &str, trace: &str, user: &str, minutes: i64, input: u64, output: u64) -> Value {
    json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(minutes), "provider": "openai", "model": "gpt-4o",
            "route_tag": if trace.starts_with("chat") { "POST /api/chat" } else { "POST /api/search" },
            "tags": { "userId": user, "plan": "pro" }, "usage": { "input_tokens": input, "output_tokens": output },
            "latency_ms": 1200, "prompt": [{ "role": "user", "content": format!("question {id}") }] })
}

#[tokio::test]
async fn traces_list_detail_and_event() {
    let s = TestServer::start();
    let body = json!({
        "traces": [{ "id": "chat-1", "route_tag": "POST /api/chat", "tags": { "userId": "ann", "plan": "pro" },
                     "started_at": minutes_ago(30), "ended_at": minutes_ago(28), "status": "ok" }],
        "events": [
            ev("a1", "chat-1", "ann", 29, 1000, 100),
            ev("a2", "chat-1", "ann", 29, 2000, 0),
            ev("b1", "search-1", "ben", 20, 4000, 400),
            { "id": "c1", "trace_id": "search-2", "timestamp": minutes_ago(10), "provider": "acme", "model": "house-1",
              "tags": { "userId": "ben" }, "status": "error", "error": "upstream timeout" },
            { "id": "d1", "trace_id": "search-2", "timestamp": minutes_ago(9), "provider": "openai", "model": "gpt-4o",
              "tags": { "userId": "ben" }, "cost_usd": "0.5", "tools": ["web_search"] }
        ]
    });
    assert_eq!(s.post(&body).await.0, 200);

    let (status, page) = s.get("/v1/me/ai-apps/traces").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total_traces"], 3);
    let ids: Vec<&str> =
        page["traces"].as_array().expect("traces").iter().filter_map(|t| t["trace_id"].as_str()).collect();
    assert_eq!(ids, ["search-2", "search-1", "chat-1"], "newest first");
    let chat = &page["traces"][2];
    // 3000 input × $2.5/M + 100 output × $10/M = 7500 + 1000 = 8,500,000 nano-USD
    assert_eq!(
        (chat["calls"].as_i64(), chat["tokens"].as_i64(), chat["spend_nano"].as_i64()),
        (Some(2), Some(3100), Some(8_500_000))
    );
    assert_eq!(chat["duration_ms"], 120_000);
    assert_eq!(chat["user_id"], "ann");
    let s2 = &page["traces"][0];
    assert_eq!(
        (s2["calls"].as_i64(), s2["spend_nano"].as_i64(), s2["unpriced_events"].as_i64()),
        (Some(2), Some(500_000_000), Some(1))
    );
    assert_eq!(s2["status"], "error", "no record yet, one call failed");

    // Sorting, user filter, search, tags.
    let (_, by_spend) = s.get("/v1/me/ai-apps/traces?sort=spend").await;
    assert_eq!(by_spend["traces"][0]["trace_id"], "search-2");
    let (_, ann) = s.get("/v1/me/ai-apps/traces?user=ann").await;
    assert_eq!(ann["total_traces"], 1);
    let (_, chats) = s.get("/v1/me/ai-apps/traces?q=API%2FCHAT").await;
    assert_eq!(chats["traces"][0]["trace_id"], "chat-1");
    assert_eq!(chats["total_traces"], 1);
    let (_, pro) = s.get("/v1/me/ai-apps/traces?tag.plan=pro").await;
    assert_eq!(pro["total_traces"], 2);
    // A cursor far past the last trace is an empty page, not a huge allocation.
    let (_, first) = s.get("/v1/me/ai-apps/traces?limit=1").await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let (_, bounds) = cursor.split_once('.').expect("offset.from.to");
    let (status, far) = s.get(&format!("/v1/me/ai-apps/traces?limit=500&cursor=999999999.{bounds}")).await;
    assert_eq!(status, 200, "{far}");
    assert_eq!((far["traces"].as_array().map(Vec::len), far["total_traces"].as_i64()), (Some(0), Some(3)));
    let (status, bad) = s.get("/v1/me/ai-apps/traces?sort=bogus").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("sort")));

    // One trace: tags and events in time order.
    let (status, trace) = s.get("/v1/me/ai-apps/traces/chat-1").await;
    assert_eq!(status, 200);
    assert_eq!(trace["tags"], json!({ "userId": "ann", "plan": "pro" }));
    let events: Vec<&str> =
        trace["events"].as_array().expect("events").iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(events, ["a1", "a2"]);
    assert_eq!(trace["events"][0]["offset_ms"].as_i64().map(|o| o > 0), Some(true));

    // One event: buckets, how it was priced, the prompt.
    let (_, e) = s.get("/v1/me/ai-apps/events/d1").await;
    assert_eq!(
        (e["cost_source"].as_str(), e["summary"]["cost_nano"].as_i64()),
        (Some("override"), Some(500_000_000))
    );
    assert_eq!(e["summary"]["tools"], json!(["web_search"]));
    let (_, e) = s.get("/v1/me/ai-apps/events/c1").await;
    assert_eq!(
        (e["cost_source"].as_str(), e["error"].as_str()),
        (Some("unpriced"), Some("upstream timeout"))
    );
    assert!(e["summary"]["cost_nano"].is_null());
    let (_, e) = s.get("/v1/me/ai-apps/events/a1").await;
    assert_eq!(e["cost_source"], "table");
    assert!(e["prompt"].as_str().is_some_and(|p| p.contains("question a1")));

    for path in ["/v1/me/ai-apps/traces/nope", "/v1/me/ai-apps/events/nope"] {
        assert_eq!(s.get(path).await.0, 404, "{path}");
    }
}

/// A trace with more calls than a page: its detail comes in pages of `limit` (500 by default)
/// in time order, each call exactly once; calls at the same millisecond are ordered by id, and
/// the cursor carries ids of any text. No page holds a prompt.
#[tokio::test]
async fn a_long_trace_comes_in_pages() {
    let s = TestServer::start();
    let n = 1_203usize;
    // Three calls a millisecond from an odd start (ids with characters a URL must escape),
    // posted out of order.
    let mut events: Vec<Value> = (0..n)
        .map(|i| {
            let mut e = ev(&format!("call {i:04}/é"), "agent-loop", "ann", 50, 10, 1);
            let at = chrono::Utc::now() - chrono::Duration::minutes(50)
                + chrono::Duration::milliseconds((i / 3) as i64);
            e["timestamp"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            e
        })
        .collect();
    events.reverse();
    for chunk in events.chunks(500) {
        let (status, answer) = s.post(&json!({ "events": chunk })).await;
        assert_eq!(status, 200, "{answer}");
    }

    let (status, first) = s.get("/v1/me/ai-apps/traces/agent-loop").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["trace"]["calls"], n as i64, "totals are the whole trace's");
    assert_eq!(first["events"].as_array().map(Vec::len), Some(500), "the default page");
    assert!(first["events"][0].get("prompt").is_none(), "no prompts in a trace's calls");

    let mut seen: Vec<String> = Vec::new();
    let mut path = "/v1/me/ai-apps/traces/agent-loop?limit=400".to_string();
    let mut pages = 0;
    loop {
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        let ids = page["events"].as_array().expect("events");
        assert!(ids.len() <= 400);
        seen.extend(ids.iter().map(|e| e["event_id"].as_str().expect("id").to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/me/ai-apps/traces/agent-loop?limit=400&cursor={c}"),
            None => break,
        }
        assert!(pages < 10, "the cursor moves on");
    }
    assert_eq!(pages, 4, "400 + 400 + 400 + 3");
    let want: Vec<String> = (0..n).map(|i| format!("call {i:04}/é")).collect();
    assert_eq!(seen, want, "every call once, by time then id");

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("cursor=12", "cursor"),
        ("cursor=1.zz", "cursor"),
        ("cursor=1.%2B1", "cursor"),
        ("offset=3", "offset"),
    ] {
        let (status, bad) = s.get(&format!("/v1/me/ai-apps/traces/agent-loop?{query}")).await;
        assert_eq!((status, bad["field"].as_str()), (400, Some(field)), "{query}: {bad}");
    }
    // The dashboard's trace page shows a page and links to the next.
    let html = s.text("/ai-apps/traces/agent-loop").await;
    assert!(html.contains("500 of this trace"), "the page says where it is");
    assert!(html.contains("rel=\"next\""), "and links on");
}
