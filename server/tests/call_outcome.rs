//! A call's outcome beyond ok/error: `cancelled` (a stream the caller stopped) and the usage
//! breakdown the SDK sends (reasoning and audio tokens, estimated counts), through ingest, the
//! read API and the event page; bad breakdowns are refused and change nothing.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::json;

#[tokio::test]
async fn cancelled_calls_and_usage_breakdown_are_stored_and_shown() {
    let s = TestServer::start();
    let body = json!({ "events": [
        { "id": "stopped", "trace_id": "t1", "timestamp": minutes_ago(5), "provider": "openai", "model": "gpt-4o",
          "tags": { "userId": "ann" }, "status": "cancelled",
          "usage": { "input_tokens": 1200, "output_tokens": 30, "estimated": true } },
        { "id": "thinker", "trace_id": "t1", "timestamp": minutes_ago(4), "provider": "openai", "model": "gpt-4o",
          "tags": { "userId": "ann" },
          "usage": { "input_tokens": 900, "cache_read_tokens": 100, "output_tokens": 500,
                     "reasoning_tokens": 320, "audio_output_tokens": 80, "audio_input_tokens": 1000 } }
    ]});
    let (status, reply) = s.post(&body).await;
    assert_eq!(status, 200, "{reply}");

    let (_, e) = s.get("/v1/me/ai-apps/events/stopped").await;
    assert_eq!(e["summary"]["status"], "cancelled");
    assert_eq!(e["usage_estimated"], true);
    // Priced from the estimate like any other count: 1200 × $2.5/M + 30 × $10/M.
    assert_eq!(e["summary"]["cost_nano"], 3_000_000 + 300_000);
    let (_, e) = s.get("/v1/me/ai-apps/events/thinker").await;
    assert_eq!(
        (&e["reasoning_tokens"], &e["audio_output_tokens"], &e["audio_input_tokens"], &e["usage_estimated"]),
        (&json!(320), &json!(80), &json!(1000), &json!(false))
    );
    assert_eq!(e["summary"]["status"], "ok");
    assert_eq!(e["summary"]["output_tokens"], 500, "the parts stay inside the output bucket");

    // A cancelled call is not an error anywhere.
    let (_, trace) = s.get("/v1/me/ai-apps/traces/t1").await;
    assert_eq!(trace["trace"]["errors"], 0);
    let (_, overview) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!(
        (overview["current"]["calls"].as_i64(), overview["current"]["errors"].as_i64()),
        (Some(2), Some(0)),
        "{overview}"
    );

    let html = |path: &'static str| {
        let http = s.http.clone();
        let url = format!("{}{path}", s.base);
        async move { http.get(url).send().await.expect("GET page").text().await.expect("html") }
    };
    let page = html("/ai-apps/events/stopped").await;
    assert!(page.contains(">cancelled<"), "status shown as cancelled");
    assert!(page.contains("estimate"), "estimated counts are marked");
    let page = html("/ai-apps/events/thinker").await;
    assert!(page.contains("of which 320 reasoning, 80 audio"), "output breakdown shown");
}

#[tokio::test]
async fn impossible_breakdowns_are_refused_and_store_nothing() {
    let s = TestServer::start();
    for (usage, field) in [
        (json!({ "output_tokens": 10, "reasoning_tokens": 11 }), "events[0].usage.reasoning_tokens"),
        (
            json!({ "output_tokens": 10, "reasoning_tokens": 6, "audio_output_tokens": 5 }),
            "events[0].usage.reasoning_tokens",
        ),
        (
            json!({ "input_tokens": 5, "cache_read_tokens": 5, "audio_input_tokens": 11 }),
            "events[0].usage.audio_input_tokens",
        ),
        (json!({ "output_tokens": 10, "estimated": "yes" }), "events[0].usage.estimated"),
    ] {
        let body = json!({ "events": [{ "id": "x", "timestamp": minutes_ago(1), "provider": "openai",
            "model": "gpt-4o", "usage": usage }] });
        let (status, reply) = s.post(&body).await;
        assert_eq!((status, reply["field"].as_str()), (400, Some(field)), "{usage}: {reply}");
    }
    let body = json!({ "events": [{ "id": "x", "timestamp": minutes_ago(1), "provider": "openai",
        "model": "gpt-4o", "status": "stopped" }] });
    let (status, reply) = s.post(&body).await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("events[0].status")), "{reply}");
    assert_eq!(s.get("/v1/me/ai-apps/events/x").await.0, 404, "nothing was stored");
}
