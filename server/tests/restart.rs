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

/// Crash safety: four clients ingest with retries while the server is killed (SIGKILL) five
/// times at random moments and started again. Afterwards every call is stored exactly once
/// (a batch acknowledged or not is resent until acknowledged; resends count once), the file
/// passes `integrity_check`, and the views equal a recompute from the calls table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_or_counted_twice_across_kills() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let mut s = TestServer::start();
    let base = Arc::new(Mutex::new(s.base.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let (key, http) = (s.ingest_key.clone(), s.http.clone());
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (base, done, key, http) = (base.clone(), done.clone(), key.clone(), http.clone());
            tokio::spawn(async move {
                let mut sent = 0usize;
                let mut batch = 0;
                while !done.load(Ordering::Acquire) {
                    let events: Vec<Value> = (0..20)
                        .map(|i| {
                            json!({ "id": format!("c{c}-b{batch}-{i}"), "timestamp": minutes_ago(1 + (i % 50) as i64),
                                    "provider": "openai", "model": "gpt-4o", "trace_id": format!("t{c}-{batch}"),
                                    "tags": { "userId": format!("u{}", (batch + i) % 7), "plan": if c % 2 == 0 { "free" } else { "pro" } },
                                    "usage": { "input_tokens": 100 + i, "output_tokens": 10 + c } })
                        })
                        .collect();
                    let body = json!({ "events": events });
                    // Resent until acknowledged: a kill may come before or after the commit.
                    for attempt in 0.. {
                        assert!(attempt < 600, "client {c}: batch {batch} never acknowledged");
                        let url = format!("{}/v1/events", base.lock().expect("base"));
                        let ok = http.post(url).bearer_auth(&key).json(&body).send().await.is_ok_and(|r| r.status() == 200);
                        if ok {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    sent += 20;
                    batch += 1;
                }
                sent
            })
        })
        .collect();
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_nanos() as u64
            | 1;
    eprintln!("kill schedule seed {seed}");
    // Five kills in the test command; `TOKENTALLY_TEST_KILLS=20` for the longer run.
    let kills: usize = std::env::var("TOKENTALLY_TEST_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    for _ in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(std::time::Duration::from_millis(300 + seed % 700)).await;
        s.crash();
        s.start_again(&["--no-login"]);
        *base.lock().expect("base") = s.base.clone();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    done.store(true, Ordering::Release);
    let mut sent = 0;
    for c in clients {
        sent += c.await.expect("client");
    }
    eprintln!("{sent} calls sent across {kills} kills");
    assert!(sent >= 4 * 20, "the clients sent something ({sent})");

    let (_, o) = s.get("/v1/me/ai-apps/overview?window=1d").await;
    assert_eq!(o["current"]["calls"].as_u64(), Some(sent as u64), "every call once: {o}");
    let (_, users) = s.get("/v1/me/ai-apps/users?window=1d&limit=500").await;
    let from_view: std::collections::BTreeMap<String, (i64, i64)> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            let id = u["user_id"].as_str().expect("id").to_string();
            (id, (u["events"].as_i64().expect("events"), u["spend_nano"].as_i64().expect("spend")))
        })
        .collect();
    s.stop_gracefully();
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.db.display())).await.expect("open");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&db).await.expect("check");
    assert_eq!(check, "ok");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(&db).await.expect("count");
    assert_eq!(stored, sent as i64, "no call stored twice");
    let recomputed: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t.user_id, COUNT(*), SUM(e.cost_nano) FROM events e JOIN tag_sets t ON t.id = e.tag_set_id
         GROUP BY t.user_id ORDER BY t.user_id",
    )
    .fetch_all(&db)
    .await
    .expect("recompute");
    db.close().await;
    let recomputed: std::collections::BTreeMap<String, (i64, i64)> =
        recomputed.into_iter().map(|(u, n, c)| (u, (n, c))).collect();
    assert_eq!(from_view, recomputed, "the Users view equals a recompute from the calls");
}
