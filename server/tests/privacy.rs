//! The privacy promises: `minimal` keeps prompts off the disk, deleting a user scrubs them from
//! the file while everyone else's totals stay, retention removes exactly the old rows; and the
//! project CLI that sets these.

mod common;

use common::{TestServer, cli, create_key, file_contains, minutes_ago};
use reqwest::Method;
use serde_json::{Value, json};

fn llm(id: &str, user: &str, minutes: i64, extra: Value) -> Value {
    let mut e = json!({ "id": id, "trace_id": format!("t-{id}"), "timestamp": minutes_ago(minutes), "provider": "openai",
        "model": "gpt-4o", "agent": "bot", "tags": { "userId": user, "plan": "pro" }, "latency_ms": 900,
        "usage": { "input_tokens": 1000, "output_tokens": 100 }, "tools": ["search"] });
    if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    e
}

async fn post_as(s: &TestServer, key: &str, events: Vec<Value>) {
    let (status, body) = s.post_with(Some(key), &json!({ "events": events })).await;
    assert_eq!(status, 200, "{body}");
}

async fn get_as(s: &TestServer, key: &str, path: &str) -> (u16, Value) {
    let resp = s.http.get(format!("{}{path}", s.base)).bearer_auth(key).send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn minimal_privacy_never_writes_prompts_and_the_cli_manages_projects() {
    let s = TestServer::start();
    let (ok, out, err) =
        cli(&s.db, &["projects", "create", "quiet", "--privacy", "minimal", "--retention-days", "30"]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = cli(&s.db, &["projects", "create", "quiet"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, _) = cli(&s.db, &["projects", "list"]);
    assert!(
        ok && out.lines().any(|l| l.starts_with("quiet") && l.contains("minimal") && l.contains("30 days")),
        "{out}"
    );

    let quiet = create_key(&s.db, "ingest", "quiet");
    let quiet_read = create_key(&s.db, "read", "quiet");
    let marker = "MARKER-prompt-7c1e";
    let content = json!({ "prompt": [{ "role": "user", "content": format!("{marker} in the prompt") }],
                          "response": [{ "role": "assistant", "content": format!("{marker}-response") }] });
    post_as(&s, &quiet, vec![llm("q1", "ann", 5, content.clone())]).await;
    let (_, ev) = get_as(&s, &quiet_read, "/v1/me/ai-apps/events/q1").await;
    assert_eq!((ev["prompt"].as_str(), ev["response"].as_str()), (None, None), "{ev}");
    assert_eq!(ev["summary"]["input_tokens"], 1000, "tokens are kept");
    assert_eq!(ev["tags"]["plan"], "pro", "tags are kept");
    let (_, users) = get_as(&s, &quiet_read, "/v1/me/ai-apps/users").await;
    assert_eq!(users["users"][0]["user_id"], "ann", "the Users view works");
    assert!(!file_contains(&s.db, marker), "the marker reached the database file or WAL");

    // Control: a full project stores it, so the search above can find it.
    post_as(&s, &s.ingest_key, vec![llm("f1", "bo", 5, content.clone())]).await;
    assert!(file_contains(&s.db, marker), "a full project keeps the prompt");

    // Switching modes applies to new events only, and says so.
    let (ok, out, _) = cli(&s.db, &["projects", "set", "quiet", "--privacy", "full", "--keep-forever"]);
    assert!(ok && out.contains("ingested from now on") && out.contains("forever"), "{out}");
    post_as(&s, &quiet, vec![llm("q2", "ann", 4, content)]).await;
    let (_, ev) = get_as(&s, &quiet_read, "/v1/me/ai-apps/events/q2").await;
    assert!(ev["prompt"].as_str().is_some_and(|p| p.contains(marker)));
    let (_, ev) = get_as(&s, &quiet_read, "/v1/me/ai-apps/events/q1").await;
    assert!(ev["prompt"].is_null(), "the old event stays without its prompt");
}

/// The figures a user deletion must leave alone, read through the API.
async fn others(s: &TestServer, victim: &str) -> Value {
    let (_, users) = s.get("/v1/me/ai-apps/users?limit=500&sort=user").await;
    let rest: Vec<Value> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["user_id"] != victim)
        .cloned()
        .collect();
    let (_, other) = s.get("/v1/me/ai-apps/users/carl").await;
    let (_, seg) = s.get("/v1/me/ai-apps/segments?by=plan&user=carl").await;
    json!({ "users": rest, "carl": other["current"], "carl_models": other["models"], "carl_plan": seg["segments"] })
}

#[tokio::test]
async fn deleting_a_user_scrubs_them_and_leaves_everyone_else() {
    let mut s = TestServer::start();
    let admin = create_key(&s.db, "admin", "default");
    let victim = "victim-4e7f9b";
    let secret = "SECRET-of-the-victim";
    let mut events = Vec::new();
    // Enough rows that B-tree pages split and rebalance (which is where stray copies hide).
    for i in 0..3000 {
        let who = [victim, "carl", "dana"][i % 3];
        let prompt = if who == victim {
            json!({ "prompt": [{ "role": "user", "content": secret }] })
        } else {
            json!({})
        };
        // The same hours and models for everyone, so project-wide rollups mix them.
        events.push(llm(&format!("e{i}"), who, 5 + (i as i64 % 40) * 30, prompt));
    }
    events.push(json!({ "id": "anon", "timestamp": minutes_ago(7), "provider": "anthropic", "model": "claude-haiku-4-5",
                        "tags": { "plan": "free" }, "usage": { "input_tokens": 5, "output_tokens": 5 } }));
    for chunk in events.chunks(500) {
        post_as(&s, &s.ingest_key, chunk.to_vec()).await;
    }
    // A restart saves the aggregate beside the file (with the victim in it) and reads it back.
    s.stop_gracefully();
    s.start_again(&["--no-login"]);
    let saved = app::store::Store::aggregate_path(&s.db);
    let holds = |needle: &str| {
        std::fs::read(&saved).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    assert!(holds(victim), "the saved aggregate names the victim before the deletion");
    let before = others(&s, victim).await;
    let (_, o_before) = s.get("/v1/me/ai-apps/overview").await;
    let (_, v) = s.get(&format!("/v1/me/ai-apps/users/{victim}")).await;
    let victim_spend = v["current"]["spend_nano"].as_i64().expect("spend");
    assert!(file_contains(&s.db, victim) && file_contains(&s.db, secret));

    // The dashboard shows what will go before it goes.
    let page = s.text(&format!("/ai-apps/users/{victim}")).await;
    assert!(page.contains("This permanently removes 1,000 events and 1,000 traces"), "confirmation text");

    // A read key may not delete; an admin key may.
    let (status, _) = s.get(&format!("/v1/me/ai-apps/users/{victim}")).await;
    assert_eq!(status, 200);
    let resp = s
        .http
        .request(Method::DELETE, format!("{}/v1/me/ai-apps/users/{victim}", s.base))
        .bearer_auth(&s.read_key)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status(), 401);
    let resp = s
        .http
        .request(Method::DELETE, format!("{}/v1/me/ai-apps/users/{victim}", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["deleted"], json!({ "events": 1000, "traces": 1000 }));

    assert_eq!(others(&s, victim).await, before, "everyone else's figures are unchanged");
    let (_, o_after) = s.get("/v1/me/ai-apps/overview").await;
    let (c0, c1) = (&o_before["current"], &o_after["current"]);
    assert_eq!(c1["spend_nano"].as_i64(), c0["spend_nano"].as_i64().map(|x| x - victim_spend));
    assert_eq!(c1["calls"].as_i64(), c0["calls"].as_i64().map(|x| x - 1000));
    assert_eq!(c1["traces"].as_i64(), c0["traces"].as_i64().map(|x| x - 1000));
    assert_eq!(c1["active_users"].as_i64(), c0["active_users"].as_i64().map(|x| x - 1));
    let (_, m) = s.get("/v1/me/ai-apps/models").await;
    let gpt = m["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|r| r["model"] == "gpt-4o")
        .cloned()
        .expect("gpt-4o");
    assert_eq!(gpt["calls"], 2000, "project-wide model rollup lost exactly the victim's calls");
    assert!(gpt["p50_latency_ms"].as_i64().is_some(), "latency histogram still there for the rest");
    let (_, tools) = s.get("/v1/me/ai-apps/tools").await;
    assert_eq!(tools["tools"][0]["calls"], 2000);
    assert_eq!(tools["tools"][0]["users"], 2);
    let (_, seg) = s.get("/v1/me/ai-apps/segments?by=userId").await;
    assert!(seg["segments"].as_array().expect("rows").iter().all(|r| r["value"] != victim));
    let (status, _) = s.get("/v1/me/ai-apps/events/e0").await;
    assert_eq!(status, 404);

    // Nothing of theirs is left in the file, the WAL or the saved aggregate, nor in the one
    // saved after the deletion.
    assert!(!file_contains(&s.db, victim), "the user id is still in the database file");
    s.stop_gracefully();
    assert!(saved.exists(), "a clean stop saves the aggregate");
    assert!(!holds(victim), "the aggregate saved after the deletion names the victim");
    s.start_again(&["--no-login"]);
    assert!(!file_contains(&s.db, secret), "their prompt is still in the database file");
    // The log has who, when and a hash, not the id.
    let page =
        s.http.get(format!("{}/settings", s.base)).send().await.expect("GET").text().await.expect("html");
    // By HMAC under the install's secret, not by a bare SHA-256 anyone could match guesses to.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.db.display())).await.expect("open");
    let secret: String = sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'install_secret'")
        .fetch_one(&db)
        .await
        .expect("the install's secret");
    db.close().await;
    assert_eq!(secret.len(), 64);
    let hmac = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(victim.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(page.contains(&hmac[..16]), "the deletion is logged by HMAC");
    assert!(!page.contains(&sha256_hex(victim)[..16]), "not by a bare hash");
    assert!(page.contains("key:tt_admin_"), "and by which key");
    assert!(!page.contains(victim));
    // New events for the same id start afresh.
    post_as(&s, &s.ingest_key, vec![llm("again", victim, 1, json!({}))]).await;
    let (_, v) = s.get(&format!("/v1/me/ai-apps/users/{victim}")).await;
    assert_eq!(v["current"]["calls"], 1);
}

fn sha256_hex(s: &str) -> String {
    // A tiny independent SHA-256 would be long; the binary's CLI isn't involved, so use sha2.
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn retention_removes_exactly_the_old_rows() {
    let s = TestServer::start_with(&["--no-login"], &[("TOKENTALLY_RETENTION_INTERVAL_SECS", "1")]);
    let day = 24 * 60;
    let mut events = Vec::new();
    for i in 0..20 {
        events.push(llm(&format!("old{i}"), "olga", 4 * day + i * 7, json!({})));
        events.push(llm(&format!("new{i}"), ["nina", "olga"][i as usize % 2], 60 + i * 7, json!({})));
    }
    post_as(&s, &s.ingest_key, events).await;
    let (_, o) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!(o["current"]["calls"], 40);

    // A retention past its cap is refused (i64::MAX days wrapped to "delete everything").
    let (ok, out, err) =
        cli(&s.db, &["projects", "set", "default", "--retention-days", "9223372036854775807"]);
    assert!(!ok && err.contains("1 to 36500 days"), "{out}{err}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(s.get("/v1/me/ai-apps/overview").await.1["current"]["calls"], 40);

    // A user with old calls only: retention takes their last call, so their id goes too.
    post_as(
        &s,
        &s.ingest_key,
        vec![llm("ghost-call", "ghost", 5 * day, json!({ "tags": { "userId": "ghost" } }))],
    )
    .await;
    let (ok, out, err) = cli(&s.db, &["projects", "set", "default", "--retention-days", "2"]);
    assert!(ok, "{out}{err}");
    let mut gone = false;
    for _ in 0..100 {
        if s.get("/v1/me/ai-apps/events/old0").await.0 == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the retention task ran");
    // Wait for the rollups too (they go after the events).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for i in 0..20 {
        assert_eq!(s.get(&format!("/v1/me/ai-apps/events/old{i}")).await.0, 404, "old{i}");
        assert_eq!(s.get(&format!("/v1/me/ai-apps/events/new{i}")).await.0, 200, "new{i}");
    }
    let (_, o) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!((o["current"]["calls"].as_i64(), o["current"]["traces"].as_i64()), (Some(20), Some(20)));
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.db.display())).await.expect("open");
    let ghost_tags = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM tag_sets WHERE user_id = 'ghost') + (SELECT COUNT(*) FROM tag_kv WHERE value = 'ghost')",
        )
        .fetch_one(&db)
        .await
        .expect("count");
        n
    };
    for _ in 0..100 {
        if ghost_tags().await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ghost_tags().await, 0, "the tag set and tags of a user retention emptied are gone");
    let olga: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tag_sets WHERE user_id = 'olga'")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(olga, 1, "a user with recent calls keeps theirs");
    db.close().await;
    let (_, seg) = s.get("/v1/me/ai-apps/segments?by=userId&window=28d").await;
    assert!(seg["segments"].as_array().expect("rows").iter().all(|r| r["value"] != "ghost"), "{seg}");
    let (_, t) = s.get("/v1/me/ai-apps/traces?limit=100").await;
    assert_eq!(t["total_traces"], 20);
    let (_, u) = s.get("/v1/me/ai-apps/users?user=olga").await;
    assert_eq!(u["users"][0]["events"], 10, "olga keeps only her recent calls");
    let (_, tools) = s.get("/v1/me/ai-apps/tools").await;
    assert_eq!(tools["tools"][0]["calls"], 20);
    let (_, m) = s.get("/v1/me/ai-apps/models?user=olga").await;
    assert_eq!(m["models"][0]["calls"], 10);

    // A call from before the retention window is refused (it would only be deleted again), the
    // batch with it stores nothing; inside the window it is taken.
    let late = vec![llm("fresh", "nina", 30, json!({})), llm("stale", "nina", 3 * day + 60, json!({}))];
    let (status, body) = s.post_with(Some(&s.ingest_key), &json!({ "events": late })).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("events[1].timestamp")), "{body}");
    assert_eq!(s.get("/v1/me/ai-apps/events/fresh").await.0, 404, "nothing of the batch was stored");
    let record =
        json!({ "id": "old-trace", "tags": { "userId": "nina" }, "started_at": minutes_ago(3 * day + 60) });
    let (status, body) = s.post_with(Some(&s.ingest_key), &json!({ "events": [], "traces": [record] })).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("traces[0].started_at")), "{body}");
    post_as(&s, &s.ingest_key, vec![llm("fresh", "nina", 30, json!({}))]).await;
}

#[tokio::test]
async fn deletion_leaves_no_fragment_in_a_realistic_database() {
    // Demo traffic (many users interleaved in every table) is what makes B-tree pages split and
    // keep stray copies of rows in their unused space; zeroing deleted cells alone leaves some.
    let s = TestServer::start();
    let (ok, out, err) = cli(&s.db, &["demo", "--events", "30000", "--users", "600"]);
    assert!(ok, "{out}{err}");
    let admin = create_key(&s.db, "admin", "default");
    let victims = ["user_00001", "user_00002", "user_00003", "user_00004", "user_00005", "user_00006"];
    for victim in victims {
        assert!(file_contains(&s.db, victim));
        let resp = s
            .http
            .request(Method::DELETE, format!("{}/v1/me/ai-apps/users/{victim}", s.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("DELETE");
        let body: Value = resp.json().await.expect("json");
        assert!(body["deleted"]["events"].as_i64().is_some_and(|n| n > 100), "{body}");
    }
    let left: Vec<&str> = victims.into_iter().filter(|v| file_contains(&s.db, v)).collect();
    assert!(left.is_empty(), "fragments of {left:?} survived in the file or WAL");
    assert!(file_contains(&s.db, "user_00007"), "the others are still there");
}

/// Deleting an id nothing names (a typo, a repeat) answers zero counts without rewriting the
/// file; deleting a real user scrubs it.
#[tokio::test]
async fn deleting_an_unknown_id_rewrites_nothing() {
    let s = TestServer::start_with(&["--no-login"], &[("TOKENTALLY_LOG", "info")]);
    let admin = create_key(&s.db, "admin", "default");
    post_as(&s, &s.ingest_key, vec![llm("k1", "kim", 5, json!({}))]).await;
    let delete = |who: &'static str| {
        s.http
            .request(Method::DELETE, format!("{}/v1/me/ai-apps/users/{who}", s.base))
            .bearer_auth(&admin)
            .send()
    };
    let resp = delete("nobody").await.expect("DELETE");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json")["deleted"], json!({ "events": 0, "traces": 0 }));
    let scrubs = || s.log().matches("scrubbed the file after a deletion").count();
    assert!(s.log().contains("deleted a user"), "{}", s.log());
    assert_eq!(scrubs(), 0, "no rewrite for an unknown id");
    let resp = delete("kim").await.expect("DELETE");
    assert_eq!(resp.json::<Value>().await.expect("json")["deleted"], json!({ "events": 1, "traces": 1 }));
    assert_eq!(scrubs(), 1, "a real deletion scrubs the file");
}

/// One call of `trace`, with its own tags when `tags` is not null.
fn call_in(id: &str, trace: &str, minutes: i64, input: i64, tags: Value, extra: Value) -> Value {
    let mut e = json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(minutes), "provider": "openai",
        "model": "gpt-4o", "usage": { "input_tokens": input, "output_tokens": 100 } });
    if !tags.is_null() {
        e["tags"] = tags;
    }
    if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    e
}

async fn delete_as(s: &TestServer, key: &str, path: &str) -> (u16, Value) {
    let resp = s
        .http
        .request(Method::DELETE, format!("{}{path}", s.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("DELETE");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The Traces list's row of one trace.
async fn trace_row(s: &TestServer, id: &str) -> Value {
    let (_, page) = s.get("/v1/me/ai-apps/traces").await;
    page["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .find(|t| t["trace_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Deleting a user takes the calls inside their traces that name no other user (tags of their
/// own without a `userId`, prompt and all) and leaves another user's call there as that user's;
/// a trace of someone else that held one of the deleted user's calls loses it from its totals,
/// in the list and after a restart.
#[tokio::test]
async fn deletion_takes_their_traces_calls_and_others_traces_lose_theirs() {
    let mut s = TestServer::start();
    let admin = create_key(&s.db, "admin", "default");
    let secret = "OWN-TAGS-secret-inside-alices-trace";
    let body = json!({
        "traces": [
            { "id": "t-alice", "tags": { "userId": "alice", "plan": "pro" }, "started_at": minutes_ago(30) },
            { "id": "t-carol", "tags": { "userId": "carol" }, "started_at": minutes_ago(20) }
        ],
        "events": [
            call_in("a1", "t-alice", 29, 1000, Value::Null, json!({})),
            call_in("a2", "t-alice", 28, 1000, json!({ "plan": "pro" }),
                    json!({ "prompt": [{ "role": "user", "content": secret }] })),
            call_in("b1", "t-alice", 27, 3000, json!({ "userId": "bob" }), json!({})),
            call_in("c1", "t-carol", 19, 1000, Value::Null, json!({})),
            call_in("b2", "t-carol", 18, 2000, json!({ "userId": "bob" }), json!({}))
        ]
    });
    assert_eq!(s.post(&body).await.0, 200);
    let carol = trace_row(&s, "t-carol").await;
    assert_eq!(carol["calls"], 2, "{carol}");
    let (_, bob_before) = s.get("/v1/me/ai-apps/users/bob").await;
    let (_, c1) = s.get("/v1/me/ai-apps/events/c1").await;
    assert!(file_contains(&s.db, secret));

    let (status, gone) = delete_as(&s, &admin, "/v1/me/ai-apps/users/alice").await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["deleted"], json!({ "events": 2, "traces": 1 }), "a1 and a2 with the trace");
    assert_eq!(gone["scrub"], json!({ "ticket": null, "done": true }));
    assert_eq!(s.get("/v1/me/ai-apps/events/a2").await.0, 404, "the call with tags of its own went too");
    assert_eq!(s.get("/v1/me/ai-apps/events/b1").await.0, 200, "bob's call in alice's trace stays");
    let (_, bob) = s.get("/v1/me/ai-apps/users/bob").await;
    assert_eq!(bob["current"], bob_before["current"], "bob's figures are unchanged");
    let (_, o) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!(o["current"]["calls"], 3, "b1, c1, b2 remain");
    assert!(!file_contains(&s.db, secret), "the prompt of the call with its own tags is in the file");

    let (_, gone) = delete_as(&s, &admin, "/v1/me/ai-apps/users/bob").await;
    assert_eq!(gone["deleted"], json!({ "events": 2, "traces": 0 }));
    let expect = |row: &Value| {
        assert_eq!(row["calls"], 1, "{row}");
        assert_eq!(row["tokens"], 1100, "{row}");
        assert_eq!(row["spend_nano"], c1["summary"]["cost_nano"], "{row} vs {c1}");
    };
    expect(&trace_row(&s, "t-carol").await);
    let (_, o) = s.get("/v1/me/ai-apps/overview").await;
    assert_eq!(o["current"]["calls"], 1);
    // The file and the aggregate rebuilt from it agree.
    s.crash();
    std::fs::remove_file(app::store::Store::aggregate_path(&s.db)).ok();
    s.start_again(&["--no-login"]);
    expect(&trace_row(&s, "t-carol").await);
}

/// `wait=false` answers before the scrub with a ticket (its project's alone); the scrub runs
/// once deletions stop coming and the ticket then says done; a ticket still pending when the server is killed is
/// scrubbed at the next start.
#[tokio::test]
async fn a_deletion_that_does_not_wait_is_scrubbed_soon_even_across_a_crash() {
    let mut s = TestServer::start();
    let admin = create_key(&s.db, "admin", "default");
    let secrets = ["SECRET-of-wanda-0001", "SECRET-of-xena-0002"];
    let mut events = vec![llm("y1", "yara", 3, json!({}))];
    for (i, who) in ["wanda", "xena"].into_iter().enumerate() {
        events.push(llm(
            &format!("{who}1"),
            who,
            5,
            json!({ "prompt": [{ "role": "user", "content": secrets[i] }] }),
        ));
    }
    post_as(&s, &s.ingest_key, events).await;
    // Bad parameters change nothing.
    let (status, body) = delete_as(&s, &admin, "/v1/me/ai-apps/users/wanda?wait=maybe").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("wait")), "{body}");
    let (status, body) = get_as(&s, &admin, "/v1/me/ai-apps/deletions/zero").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("ticket")), "{body}");
    assert_eq!(get_as(&s, &admin, "/v1/me/ai-apps/deletions/1").await.0, 404, "no deletion yet");
    assert_eq!(s.get("/v1/me/ai-apps/users/wanda").await.1["current"]["calls"], 1);

    // Another project's admin can't read this project's tickets.
    let other_admin = create_key(&s.db, "admin", "tenant-b");
    let poll = async |s: &TestServer, ticket: &Value| {
        let path = format!("/v1/me/ai-apps/deletions/{ticket}");
        assert_eq!(get_as(s, &s.read_key, &path).await.0, 401, "admin keys only");
        assert_eq!(get_as(s, &other_admin, &path).await.0, 404, "another project's ticket");
        for _ in 0..600 {
            let (status, body) = get_as(s, &admin, &path).await;
            assert_eq!(status, 200, "{body}");
            if body["done"] == true {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("the scrub of ticket {ticket} did not finish: {}", s.log());
    };
    let (status, body) = delete_as(&s, &admin, "/v1/me/ai-apps/users/wanda?wait=false").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deleted"], json!({ "events": 1, "traces": 1 }));
    assert_eq!(body["scrub"]["done"], false);
    let ticket = body["scrub"]["ticket"].clone();
    assert!(ticket.as_u64().is_some(), "{body}");
    let (status, _) = s.get("/v1/me/ai-apps/users/wanda").await;
    assert_eq!(status, 404, "gone from the views at once");
    poll(&s, &ticket).await;
    assert!(!file_contains(&s.db, secrets[0]), "scrubbed once the ticket says done");

    let (status, body) = delete_as(&s, &admin, "/v1/me/ai-apps/users/xena?wait=false").await;
    assert_eq!(status, 202, "{body}");
    let ticket = body["scrub"]["ticket"].clone();
    s.crash();
    s.start_again(&["--no-login"]);
    poll(&s, &ticket).await;
    assert!(!file_contains(&s.db, secrets[1]), "the scrub left pending by the crash ran at start");
    assert!(file_contains(&s.db, "yara"));
}
