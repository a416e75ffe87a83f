//! Bad input against the real server: a clear 4xx naming the field, nothing of the batch written,
//! and the server still answering.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::{Value, json};
use std::io::Write;

fn good(id: &str) -> Value {
    json!({ "id": id, "timestamp": minutes_ago(1), "provider": "openai", "model": "gpt-4o",
            "tags": { "userId": "victim" }, "usage": { "input_tokens": 10, "output_tokens": 5 } })
}

fn with(field: &str, value: Value) -> Value {
    let mut e = good("bad");
    let mut target = &mut e;
    let parts: Vec<&str> = field.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        target = &mut target[*p];
    }
    target[parts[parts.len() - 1]] = value;
    e
}

#[tokio::test]
async fn each_bad_input_is_rejected_with_its_field_and_nothing_is_written() {
    let s = TestServer::start();
    let long = "x".repeat(129);
    let many_tags: serde_json::Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    // 20M output tokens of a $600/M model price to $12,000: over the $10,000 a call may cost.
    let mut too_dear = with("model", json!("o1-pro"));
    too_dear["usage"]["output_tokens"] = json!(20_000_000);
    let cases: Vec<(Value, &str)> = vec![
        (with("usage.input_tokens", json!(-5)), "events[1].usage.input_tokens"),
        (with("usage.output_tokens", json!(2.5)), "events[1].usage.output_tokens"),
        (with("usage.cache_read_tokens", json!("12")), "events[1].usage.cache_read_tokens"),
        (with("usage.output_tokens", json!(1_000_000_001u64)), "events[1].usage.output_tokens"),
        (too_dear, "events[1].usage"),
        (with("status", json!("maybe")), "events[1].status"),
        (with("cost_usd", json!("-0.01")), "events[1].cost_usd"),
        (with("cost_usd", json!("1e-3")), "events[1].cost_usd"),
        (with("cost_usd", json!(0.01)), "events[1].cost_usd"),
        (with("timestamp", json!("last tuesday")), "events[1].timestamp"),
        (with("timestamp", json!("2099-01-01T00:00:00Z")), "events[1].timestamp"),
        (with("timestamp", json!("2001-01-01T00:00:00Z")), "events[1].timestamp"),
        (with("tags.userId", json!("")), "events[1].tags.userId"),
        (with("id", json!(long)), "events[1].id"),
        (with("id", json!("")), "events[1].id"),
        (with("tags", Value::Object(many_tags)), "events[1].tags"),
        (with("tags.plan", json!(7)), "events[1].tags.plan"),
        (with("tags.plan", json!("v".repeat(513))), "events[1].tags.plan"),
        (with("kind", json!("banana")), "events[1].kind"),
        (with("tools", json!("web_search")), "events[1].tools"),
        (with("model", Value::Null), "events[1].model"),
    ];
    for (bad, field) in cases {
        let body = json!({ "events": [good("fine-1"), bad] });
        let (status, reply) = s.post(&body).await;
        assert_eq!(status, 400, "{field}: {reply}");
        assert_eq!(reply["field"], field, "{reply}");
        assert!(reply["error"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
    // Batch-level problems.
    // (An empty batch, `{}`, is a no-op the API document allows.)
    for (body, field) in [
        (json!({ "events": [], "traces": null }), "traces"),
        (json!([]), "body"),
        (json!({ "events": "no" }), "events"),
    ] {
        let (status, reply) = s.post(&body).await;
        assert_eq!((status, &reply["field"]), (400, &json!(field)), "{reply}");
    }
    let resp = s
        .http
        .post(format!("{}/v1/events", s.base))
        .bearer_auth(&s.ingest_key)
        .body("{\"events\": [")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let nested =
        format!("{{\"events\":[{{\"id\":\"n\",\"prompt\":{}1{}}}]}}", "[".repeat(5000), "]".repeat(5000));
    let resp = s
        .http
        .post(format!("{}/v1/events", s.base))
        .bearer_auth(&s.ingest_key)
        .body(nested)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);

    // Nothing of any rejected batch was written, and the server still answers.
    assert!(s.all_users("").await.is_empty());
    assert!(s.healthy().await);
}

#[tokio::test]
async fn keys_limits_and_gzip() {
    let s = TestServer::start();
    let body = json!({ "events": [good("k-1")] });
    assert_eq!(s.post_with(None, &body).await.0, 401);
    assert_eq!(s.post_with(Some("tt_ingest_wrong"), &body).await.0, 401);
    assert_eq!(s.post_with(Some(&s.read_key.clone()), &body).await.0, 401, "a read key cannot ingest");
    let resp = s.http.get(format!("{}/v1/me/ai-apps/users", s.base)).send().await.expect("get");
    assert_eq!(resp.status(), 401);
    let resp = s
        .http
        .get(format!("{}/v1/me/ai-apps/users", s.base))
        .bearer_auth(&s.ingest_key)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401, "an ingest key cannot read");

    // Over 10 MiB raw: 413.
    let big = format!("{{\"events\":[],\"pad\":\"{}\"}}", "a".repeat(11 * 1024 * 1024));
    let resp = s
        .http
        .post(format!("{}/v1/events", s.base))
        .bearer_auth(&s.ingest_key)
        .body(big.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 413);
    // A small gzip body that inflates past the limit: 413 too.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(big.as_bytes()).expect("gzip");
    let bomb = enc.finish().expect("gzip");
    assert!(bomb.len() < 100_000);
    let resp = s
        .http
        .post(format!("{}/v1/events", s.base))
        .bearer_auth(&s.ingest_key)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 413);
    // A gzip body within the limit is accepted.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body.to_string().as_bytes()).expect("gzip");
    let resp = s
        .http
        .post(format!("{}/v1/events", s.base))
        .bearer_auth(&s.ingest_key)
        .header("content-encoding", "gzip")
        .body(enc.finish().expect("gzip"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let users = s.all_users("").await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["events"], 1);
    assert!(s.healthy().await);
}

/// Slowloris: connections that send their headers a line at a time are cut off at the header
/// deadline (1 s here), so they can't hold the connection cap (4 here) and a normal request
/// still gets its answer.
#[tokio::test]
async fn slow_headers_are_cut_off_and_cannot_hold_the_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(
        &["--no-login"],
        &[("TOKENTALLY_HEADER_TIMEOUT_SECS", "1"), ("TOKENTALLY_MAX_CONNECTIONS", "4")],
    );
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("write");
        slow.push(c);
    }
    // Each keeps sending a header line every 200 ms until the server closes it (or 10 s pass).
    let drips = slow.into_iter().map(|mut c| async move {
        let started = std::time::Instant::now();
        let mut buf = [0u8; 512];
        while started.elapsed() < std::time::Duration::from_secs(10) {
            if c.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return true;
            }
            match tokio::time::timeout(std::time::Duration::from_millis(200), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                _ => {}
            }
        }
        false
    });
    let normal = async {
        let resp = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            s.http.get(format!("{}/healthz", s.base)).send(),
        )
        .await
        .expect("answered in time")
        .expect("GET");
        resp.status().as_u16()
    };
    let (closed, status) = tokio::join!(futures::future::join_all(drips), normal);
    assert_eq!(closed, vec![true; 4], "every slow connection is closed by the server");
    assert_eq!(status, 200);
    assert!(s.healthy().await);
}

/// A day of calls at the caps (10^9 tokens in each of two buckets, $10,000 each, one an hour)
/// reads back exactly in every view.
#[tokio::test]
async fn a_day_of_calls_at_the_caps_reads_exactly() {
    let s = TestServer::start();
    let events: Vec<Value> = (0..24)
        .map(|h| {
            json!({ "id": format!("cap{h}"), "timestamp": minutes_ago(h * 60 + 1), "provider": "openai",
                    "model": "gpt-4o", "cost_usd": "10000", "tags": { "userId": "whale", "plan": "max" },
                    "usage": { "input_tokens": 1_000_000_000u64, "output_tokens": 1_000_000_000u64 } })
        })
        .collect();
    let (status, reply) = s.post(&json!({ "events": events })).await;
    assert_eq!(status, 200, "{reply}");
    let (_, users) = s.get("/v1/me/ai-apps/users?window=7d").await;
    let whale = &users["users"][0];
    assert_eq!(
        (whale["spend_usd"].as_str(), whale["spend_nano"].as_i64()),
        (Some("240000.00"), Some(240_000_000_000_000))
    );
    assert_eq!(whale["tokens"].as_i64(), Some(48_000_000_000));
    let (_, overview) = s.get("/v1/me/ai-apps/overview?window=7d").await;
    assert_eq!(overview["current"]["spend_nano"].as_i64(), Some(240_000_000_000_000), "{overview}");
    let (_, models) = s.get("/v1/me/ai-apps/models?window=7d").await;
    assert_eq!(models["models"][0]["spend_nano"].as_i64(), Some(240_000_000_000_000), "{models}");
    let (_, segments) = s.get("/v1/me/ai-apps/segments?by=plan&window=7d").await;
    assert_eq!(segments["segments"][0]["spend_nano"].as_i64(), Some(240_000_000_000_000), "{segments}");
}
