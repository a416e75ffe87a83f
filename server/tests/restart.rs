//! A clean stop saves the aggregate and the next start reads it back (same answers); after a
//! crash the next start reads the file and then what was stored after it; calls another process
//! (here `tokentally demo`) writes make the next start rebuild, so nothing written meanwhile is
//! missed.

mod common;

use common::{TestServer, cli, minutes_ago};
use serde_json::{Value, json};

const VIEWS: [&str; 5] = [
    "/v1/me/ai-apps/users?window=7d&limit=500",
    "/v1/me/ai-apps/overview?window=7d",
    "/v1/me/ai-apps/models?window=7d",
    "/v1/me/ai-apps/segments?window=7d&by=plan",
    "/v1/me/ai-apps/tools?window=7d",
];

async fn answers(server: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for v in VIEWS {
        let (status, body) = server.get(v).await;
        assert_eq!(status, 200, "{v}: {body}");
        out.push(body);
    }
    out
}

#[tokio::test]
async fn a_restart_reads_the_saved_aggregate_unless_the_database_changed() {
    let mut server = TestServer::start();
    let events: Vec<Value> = (0..300)
        .map(|i| {
            json!({
                "id": format!("r{i}"), "trace_id": format!("t{}", i / 3), "timestamp": minutes_ago(i % 600),
                "provider": if i % 2 == 0 { "openai" } else { "anthropic" },
                "model": if i % 2 == 0 { "gpt-4o-mini" } else { "claude-sonnet-4-5" },
                "agent": if i % 5 == 0 { "planner" } else { "" }, "tools": if i % 7 == 0 { json!(["search"]) } else { json!([]) },
                "tags": { "userId": format!("u{}", i % 11), "plan": if i % 3 == 0 { "pro" } else { "free" } },
                "usage": { "input_tokens": 100 + i, "output_tokens": 7, "cache_read_tokens": i % 13, "cache_creation_tokens": 0 },
                "latency_ms": 100 + i,
            })
        })
        .collect();
    let (status, body) = server.post(&json!({ "events": events })).await;
    assert_eq!(status, 200, "{body}");
    let before = answers(&server).await;

    server.stop_gracefully();
    let saved = app::store::Store::aggregate_path(&server.db);
    assert!(saved.exists(), "a clean stop saves the aggregate");
    server.start_again(&["--no-login"]);
    assert!(saved.exists(), "the saved aggregate is used and kept for a start after a crash");
    assert_eq!(answers(&server).await, before, "the same answers from the saved aggregate");

    // More calls (new users, more calls in old traces, a trace record moving an old trace's
    // start), then a crash: SIGKILL, no save. The next start reads the file and then what was
    // stored after it.
    let more: Vec<Value> = (300..420)
        .map(|i| {
            json!({
                "id": format!("r{i}"), "trace_id": format!("t{}", i % 150), "timestamp": minutes_ago(i % 500),
                "provider": "openai", "model": "gpt-4o", "agent": if i % 4 == 0 { "writer" } else { "" },
                "tools": if i % 5 == 0 { json!(["calc"]) } else { json!([]) },
                "tags": { "userId": format!("u{}", i % 17), "plan": "team" },
                "usage": { "input_tokens": 50 + i, "output_tokens": 9, "cache_read_tokens": 0, "cache_creation_tokens": i % 5 },
                "latency_ms": 300 + i,
            })
        })
        .collect();
    let record = json!({ "id": "t7", "started_at": minutes_ago(2000), "route_tag": "POST /moved", "tags": { "userId": "u7" } });
    let (status, body) = server.post(&json!({ "events": more, "traces": [record] })).await;
    assert_eq!(status, 200, "{body}");
    // Records without a call in their batch: one moves an old trace's start, one starts a trace
    // that has no calls yet (nothing but the record names them for the replay).
    let records = json!([
        { "id": "t3", "started_at": minutes_ago(3000), "route_tag": "POST /earlier", "tags": { "userId": "u3" } },
        { "id": "t-empty", "started_at": minutes_ago(40), "route_tag": "POST /empty", "tags": { "userId": "u99" } },
    ]);
    let (status, body) = server.post(&json!({ "traces": records })).await;
    assert_eq!(status, 200, "{body}");
    let after = answers(&server).await;
    assert_ne!(after, before);
    let (status, traces) = server.get("/v1/me/ai-apps/traces?window=7d&limit=500").await;
    assert_eq!(status, 200);
    server.start_again(&["--no-login"]);
    assert!(saved.exists(), "after a crash the saved aggregate is used (and kept)");
    assert_eq!(answers(&server).await, after, "the same answers after a crash");
    assert_eq!(server.get("/v1/me/ai-apps/traces?window=7d&limit=500").await, (200, traces));

    // Calls `tokentally demo` writes while the server is down make the next start rebuild.
    server.stop_gracefully();
    assert!(saved.exists());
    let (ok, _, err) =
        cli(&server.db, &["demo", "--events", "40", "--users", "3", "--days", "1", "--seed", "5"]);
    assert!(ok, "{err}");
    server.start_again(&["--no-login"]);
    let (status, overview) = server.get(VIEWS[1]).await;
    assert_eq!(status, 200);
    assert_eq!(overview["current"]["calls"], json!(460), "the demo's calls are counted after the restart");
}

/// Another process writing the same file while the server runs (here `tokentally demo`) takes
/// trace numbers too; the server's next new traces still get numbers of their own, so its
/// ingest keeps committing.
#[tokio::test]
async fn ingest_keeps_working_after_another_process_wrote_traces() {
    let server = TestServer::start();
    let call = |id: &str, trace: &str| {
        json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(5), "provider": "openai", "model": "gpt-4o-mini",
                "tags": { "userId": "u1" }, "usage": { "input_tokens": 10, "output_tokens": 2 } })
    };
    let (status, body) = server.post(&json!({ "events": [call("a", "ta"), call("b", "tb")] })).await;
    assert_eq!(status, 200, "{body}");
    let (ok, _, err) =
        cli(&server.db, &["demo", "--events", "40", "--users", "3", "--days", "1", "--seed", "7"]);
    assert!(ok, "{err}");
    let (status, body) = server.post(&json!({ "events": [call("c", "tc"), call("d", "td")] })).await;
    assert_eq!(status, 200, "a new trace after the other process's: {body}");
    assert_eq!(body["accepted"], 2, "{body}");
    let (status, page) = server.get("/v1/me/ai-apps/traces?window=7d&user=u1").await;
    assert_eq!(status, 200);
    assert_eq!(page["total_traces"], 4, "{page}");
    // The server's aggregate lacks the other process's calls: it is not saved at the stop, and
    // the next start rebuilds with them.
    let mut server = server;
    server.stop_gracefully();
    assert!(
        !app::store::Store::aggregate_path(&server.db).exists(),
        "an aggregate without the demo's calls was saved"
    );
    server.start_again(&["--no-login"]);
    let (status, page) = server.get("/v1/me/ai-apps/overview?window=7d").await;
    assert_eq!(status, 200);
    assert_eq!(page["current"]["calls"], json!(44), "{page}");
}
