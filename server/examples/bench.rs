//! Benchmark (not a test): ingest events/s over HTTP in batches of 100, and Users-view latency.
//!
//! cargo run --release -p server --example bench -- ingest BASE_URL INGEST_KEY [EVENTS] [CONCURRENCY]
//! cargo run --release -p server --example bench -- users  BASE_URL READ_KEY [REQUESTS] [QUERY]

use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn batch(start: u64, n: u64, run: u64) -> Value {
    let now = chrono::Utc::now();
    let events: Vec<Value> = (start..start + n)
        .map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            json!({
                "id": format!("bench-{run}-{i}"),
                "trace_id": format!("bench-{run}-t{}", i / 3),
                "timestamp": (now - chrono::Duration::seconds((x % 2_000_000) as i64)).to_rfc3339(),
                "provider": if x % 2 == 0 { "openai" } else { "anthropic" },
                "model": if x % 2 == 0 { "gpt-4o-mini" } else { "claude-sonnet-4-5" },
                "agent": "bench",
                "route_tag": "POST /api/chat",
                "tags": { "userId": format!("user_{}", (x >> 7) % 10_000), "plan": if x % 3 == 0 { "pro" } else { "free" } },
                "usage": { "input_tokens": x % 4000, "output_tokens": x % 700, "cache_read_tokens": x % 2000, "cache_creation_tokens": 0 },
                "latency_ms": x % 5000,
                "status": "ok",
            })
        })
        .collect();
    json!({ "events": events })
}

async fn ingest(base: &str, key: &str, events: u64, concurrency: u64) {
    let client = reqwest::Client::new();
    let run = chrono::Utc::now().timestamp_millis() as u64;
    let batches = events.div_ceil(100);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, base, key) = (client.clone(), base.to_string(), key.to_string());
        tasks.push(tokio::spawn(async move {
            let mut b = w;
            while b < batches {
                let body = batch(b * 100, 100, run);
                let resp =
                    client.post(format!("{base}/v1/events")).bearer_auth(&key).json(&body).send().await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => panic!("ingest answered {}", r.status()),
                    Err(e) => panic!("ingest failed: {e}"),
                }
                b += concurrency;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest: {} events in {batches} batches of 100, {concurrency} concurrent: {secs:.2} s = {:.0} events/s",
        batches * 100,
        (batches * 100) as f64 / secs
    );
}

async fn users(base: &str, key: &str, requests: usize, query: &str) {
    let client = reqwest::Client::new();
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..=requests {
        let started = Instant::now();
        let r = client
            .get(format!("{base}/v1/me/ai-apps/users?{query}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET users");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("json");
        if i == 0 {
            println!(
                "users: {} users in the window; first request (cold) {:?}",
                body["total_users"],
                started.elapsed()
            );
            continue;
        }
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "users?{query}: {requests} requests, median {:?}, p90 {:?}, min {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[0],
        times[times.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench ingest|users BASE_URL KEY [N] [CONCURRENCY|QUERY]";
    let (mode, base, key) = match (args.get(1), args.get(2), args.get(3)) {
        (Some(m), Some(b), Some(k)) => (m.as_str(), b.as_str(), k.as_str()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    match mode {
        "ingest" => {
            let n = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            let c = args.get(5).and_then(|v| v.parse().ok()).unwrap_or(4);
            ingest(base, key, n, c).await;
        }
        "users" => {
            let n = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(20);
            let q = args.get(5).cloned().unwrap_or_else(|| "window=28d&limit=50".into());
            users(base, key, n, &q).await;
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
