//! Overview and Models through the read API against independent sums, with and without filters.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::json;

#[tokio::test]
async fn overview_and_models_match_independent_sums() {
    let s = TestServer::start();
    let ev = |id: &str,
              user: Option<&str>,
              plan: &str,
              model: &str,
              minutes: i64,
              input: u64,
              status: &str| {
        let mut tags = json!({ "plan": plan });
        if let Some(u) = user {
            tags["userId"] = json!(u);
        }
        json!({ "id": id, "trace_id": format!("t-{id}"), "timestamp": minutes_ago(minutes), "provider": "openai",
                "model": model, "tags": tags, "usage": { "input_tokens": input, "output_tokens": 0 }, "status": status,
                "latency_ms": 1000 })
    };
    let body = json!({ "events": [
        ev("1", Some("amy"), "pro", "gpt-4o", 10, 1_000_000, "ok"),        // $2.50
        ev("2", Some("amy"), "pro", "gpt-4o-mini", 20, 2_000_000, "ok"),   // $0.30
        ev("3", Some("bob"), "free", "gpt-4o-mini", 30, 1_000_000, "error"), // $0.15
        ev("4", None, "free", "mystery-model", 40, 500, "ok"),             // unpriced, no user
        // The previous 28-day window: 30 days ago.
        ev("5", Some("amy"), "pro", "gpt-4o", 30 * 24 * 60, 400_000, "ok"), // $1.00
    ]});
    assert_eq!(s.post(&body).await.0, 200);

    let (status, o) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!(status, 200, "{o}");
    let c = &o["current"];
    assert_eq!(c["spend_nano"], 2_950_000_000i64);
    assert_eq!(c["calls"], 4);
    assert_eq!(c["traces"], 4);
    assert_eq!(c["tokens"], 4_000_500);
    assert_eq!(c["active_users"], 2, "the event without a user is counted in calls, not users");
    assert_eq!(c["errors"], 1);
    assert_eq!(c["unpriced"], 1);
    assert_eq!(o["previous"]["spend_nano"], 1_000_000_000i64);
    assert_eq!(o["previous"]["active_users"], 1);
    assert_eq!(o["top_users"][0]["user_id"], "amy");
    assert_eq!(o["top_models"][0]["model"], "gpt-4o");
    let series = o["spend_by_model"]["series"].as_array().expect("series");
    assert_eq!(series.len(), 2, "two priced models spent something: {series:?}");
    let charted: i64 =
        series.iter().flat_map(|s| s[1].as_array().expect("values").iter().filter_map(|v| v.as_i64())).sum();
    assert_eq!(charted, 2_950_000_000);
    assert_eq!(
        o["spend_by_model"]["buckets"].as_array().map(Vec::len),
        Some(29),
        "28 days + the partial one"
    );

    // Narrowed by a tag and by a user: the per-tag-set path.
    let (_, pro) = s.get("/v1/me/ai-apps/overview?tag.plan=pro").await;
    assert_eq!(
        (pro["current"]["spend_nano"].as_i64(), pro["current"]["calls"].as_i64()),
        (Some(2_800_000_000), Some(2))
    );
    let (_, bob) = s.get("/v1/me/ai-apps/overview?user=bob&window=1d").await;
    assert_eq!(
        (bob["current"]["spend_nano"].as_i64(), bob["current"]["errors"].as_i64()),
        (Some(150_000_000), Some(1))
    );
    assert_eq!(bob["spend_by_model"]["buckets"].as_array().map(Vec::len), Some(25), "hourly buckets for 1d");

    let (_, m) = s.get("/v1/me/ai-apps/models").await;
    let models = m["models"].as_array().expect("models");
    let names: Vec<&str> = models.iter().filter_map(|r| r["model"].as_str()).collect();
    assert_eq!(names, ["gpt-4o", "gpt-4o-mini", "mystery-model"]);
    assert_eq!(
        (models[1]["calls"].as_i64(), models[1]["errors"].as_i64(), models[1]["spend_nano"].as_i64()),
        (Some(2), Some(1), Some(450_000_000))
    );
    assert_eq!(models[2]["unpriced"], 1);
    assert_eq!(models[0]["avg_latency_ms"], 1000);
    let p50 = models[0]["p50_latency_ms"].as_i64().expect("p50");
    assert!((1000..=1150).contains(&p50), "p50 {p50} within 15 % above 1000 ms");
    assert_eq!(models[0]["p95_latency_ms"].as_i64(), Some(p50));
    let (_, narrowed) = s.get("/v1/me/ai-apps/models?user=amy").await;
    // Narrowed by a user, percentiles come from that user's calls (all 1000 ms here).
    assert_eq!(narrowed["models"][0]["p50_latency_ms"].as_i64(), Some(p50));
    assert_eq!(narrowed["models"][0]["users"], 1);
    assert_eq!(models[1]["users"], 2, "amy and bob used gpt-4o-mini");
    let (status, bad) = s.get("/v1/me/ai-apps/models?sort=spend").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("sort")));
}

#[tokio::test]
async fn tools_count_calls_users_traces_and_spend() {
    let s = TestServer::start();
    let ev = |id: &str, user: &str, trace: &str, tools: serde_json::Value, input: u64| {
        json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(5), "provider": "openai", "model": "gpt-4o",
                "tags": { "userId": user, "plan": if user == "uma" { "pro" } else { "free" } },
                "usage": { "input_tokens": input }, "tools": tools })
    };
    let body = json!({ "events": [
        ev("1", "uma", "t1", json!(["web_search"]), 1_000_000),                 // $2.50
        ev("2", "uma", "t1", json!(["web_search", "sql_query"]), 400_000),      // $1.00
        ev("3", "vic", "t2", json!(["web_search", "web_search"]), 200_000),     // $0.50, the name once
        ev("4", "vic", "t3", json!([]), 4_000_000),                             // no tool
    ]});
    assert_eq!(s.post(&body).await.0, 200);
    let (status, t) = s.get("/v1/me/ai-apps/tools").await;
    assert_eq!(status, 200, "{t}");
    let tools = t["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["tool"], "web_search");
    assert_eq!(
        (
            tools[0]["calls"].as_i64(),
            tools[0]["users"].as_i64(),
            tools[0]["traces"].as_i64(),
            tools[0]["spend_nano"].as_i64()
        ),
        (Some(3), Some(2), Some(2), Some(4_000_000_000))
    );
    assert_eq!(
        (tools[1]["tool"].as_str(), tools[1]["calls"].as_i64(), tools[1]["spend_nano"].as_i64()),
        (Some("sql_query"), Some(1), Some(1_000_000_000))
    );
    let (_, pro) = s.get("/v1/me/ai-apps/tools?tag.plan=pro").await;
    assert_eq!(pro["tools"][0]["calls"], 2);
    let (_, vic) = s.get("/v1/me/ai-apps/tools?user=vic").await;
    assert_eq!(vic["tools"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn provider_and_agent_filters_narrow_every_view() {
    let s = TestServer::start();
    let ev = |id: &str, user: &str, trace: &str, provider: &str, model: &str, agent: &str, input: u64| {
        json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(5), "provider": provider, "model": model,
                "agent": agent, "tags": { "userId": user }, "usage": { "input_tokens": input }, "tools": ["search"] })
    };
    let body = json!({ "events": [
        ev("1", "wes", "t1", "openai", "gpt-4o", "chat", 1_000_000),                 // $2.50
        ev("2", "wes", "t1", "anthropic", "claude-haiku-4-5", "chat", 1_000_000),    // $1.00
        ev("3", "xia", "t2", "anthropic", "claude-haiku-4-5", "summarizer", 500_000), // $0.50
    ]});
    assert_eq!(s.post(&body).await.0, 200);

    let (_, users) = s.get("/v1/me/ai-apps/users?provider=anthropic").await;
    let rows = users["users"].as_array().expect("users");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["user_id"].as_str(), rows[0]["spend_nano"].as_i64(), rows[0]["traces"].as_i64()),
        (Some("wes"), Some(1_000_000_000), Some(1))
    );
    let (_, openai) = s.get("/v1/me/ai-apps/users?provider=openai").await;
    assert_eq!(openai["total_users"], 1);
    let (_, o) = s.get("/v1/me/ai-apps/overview?agent=summarizer").await;
    assert_eq!(
        (
            o["current"]["spend_nano"].as_i64(),
            o["current"]["active_users"].as_i64(),
            o["current"]["traces"].as_i64()
        ),
        (Some(500_000_000), Some(1), Some(1))
    );
    let (_, o) = s.get("/v1/me/ai-apps/overview?provider=anthropic").await;
    assert_eq!(
        (
            o["current"]["calls"].as_i64(),
            o["current"]["traces"].as_i64(),
            o["current"]["active_users"].as_i64()
        ),
        (Some(2), Some(2), Some(2))
    );
    let (_, t) = s.get("/v1/me/ai-apps/traces?provider=openai").await;
    assert_eq!(t["total_traces"], 1);
    let (_, m) = s.get("/v1/me/ai-apps/models?provider=anthropic&agent=chat").await;
    assert_eq!(m["models"].as_array().map(Vec::len), Some(1));
    assert_eq!(m["models"][0]["calls"], 1);
    let (_, tools) = s.get("/v1/me/ai-apps/tools?provider=anthropic").await;
    assert_eq!(
        (tools["tools"][0]["calls"].as_i64(), tools["tools"][0]["spend_nano"].as_i64()),
        (Some(2), Some(1_500_000_000))
    );
}
