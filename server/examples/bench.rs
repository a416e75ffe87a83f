//! Benchmarks (not tests). `scripts/bench.sh` runs them all at one scale; each mode also runs alone:
//!
//! cargo run --release -p server --example bench -- ingest BASE_URL INGEST_KEY [EVENTS] [CONCURRENCY] [READ_KEY]
//!     POST /v1/events in batches of 100 with random UUID ids, CONCURRENCY clients: events/s; with
//!     READ_KEY, also how soon an acknowledged call shows in the Users view meanwhile.
//! cargo run --release -p server --example bench -- otlp BASE_URL INGEST_KEY [CALLS] [CONCURRENCY]
//!     The same calls as OTLP/HTTP protobuf exports of 512 spans to POST /v1/traces (a request
//!     span and three chat spans per trace): spans/s and calls/s.
//! cargo run --release -p server --example bench -- floor DB_FILE [EVENTS] [CONCURRENCY]
//!     The same rows into a bare SQLite `events` table (primary key on the id, an index by trace
//!     and one by tag set and time; WAL, synchronous=FULL, 100 rows per transaction): the physical
//!     floor of idempotent durable ingest on this disk.
//! cargo run --release -p server --example bench -- deletions BASE_URL INGEST_KEY ADMIN_KEY [EVENTS] [DELETIONS] [USERS]
//!     4-client ingest of EVENTS alone, then 4-client ingest for as long as one client deletes
//!     DELETIONS users (`user_NNNNN` of a demo database, drawn at random from USERS,
//!     `wait=false`) one after another: both ingest rates, the deletions' answer times, and how long after the last one
//!     the file's scrub finished.
//! cargo run --release -p server --example bench -- soak BASE_URL INGEST_KEY READ_KEY ADMIN_KEY SECONDS RATE USERS
//!     Mixed load for SECONDS: ingest paced at RATE events/s (batches of 100, 2 clients), every
//!     read view and the Users page in a loop, and a user of a demo database (`user_NNNNN` of
//!     USERS) deleted every 10 s (`wait=false`); prints what each part did and any error
//!     (`scripts/soak.sh` runs it and samples the server's RSS).
//! cargo run --release -p server --example bench -- reads BASE_URL READ_KEY [REQUESTS]
//!     Every read view (and dashboard page, served with --no-login) unfiltered and under each
//!     filter: median, min and max of REQUESTS after one warm-up request.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A small xorshift generator: ids must look like real clients' (random UUIDs), not sequential.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// One generated call: the fields both the HTTP and the floor benchmark write.
struct Call {
    id: String,
    trace: String,
    ts_ms: i64,
    user: u64,
    plan: &'static str,
    x: u64,
}

fn calls(seed: u64, n: u64) -> Vec<Call> {
    let mut rng = Rng(seed | 1);
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(n as usize);
    let mut trace = rng.uuid();
    let mut user = 0;
    for i in 0..n {
        // Three calls per trace, all of one user (of 100,000, each on one plan).
        if i % 3 == 0 {
            trace = rng.uuid();
            user = rng.next() % 100_000;
        }
        let x = rng.next();
        out.push(Call {
            id: rng.uuid(),
            trace: trace.clone(),
            // Live clients send calls that just happened.
            ts_ms: now - (x % 5_000) as i64,
            user,
            plan: if user.is_multiple_of(3) { "pro" } else { "free" },
            x,
        });
    }
    out
}

fn batch(calls: &[Call]) -> Value {
    let events: Vec<Value> = calls
        .iter()
        .map(|c| {
            let x = c.x;
            json!({
                "id": c.id,
                "trace_id": c.trace,
                "timestamp": chrono::DateTime::from_timestamp_millis(c.ts_ms).map(|t| t.to_rfc3339()),
                "provider": if x % 2 == 0 { "openai" } else { "anthropic" },
                "model": if x % 2 == 0 { "gpt-4o-mini" } else { "claude-sonnet-4-5" },
                "agent": "bench",
                "route_tag": "POST /api/chat",
                "tags": { "userId": format!("user_{}", c.user), "plan": c.plan },
                "usage": { "input_tokens": x % 4000, "output_tokens": x % 700, "cache_read_tokens": x % 2000, "cache_creation_tokens": 0 },
                "latency_ms": x % 5000,
                "status": "ok",
            })
        })
        .collect();
    json!({ "events": events })
}

/// While ingest runs: posts one call for a new user every 200 ms and times how long after the
/// acknowledgement it shows in the Users view.
async fn freshness(
    base: String,
    key: String,
    read_key: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut lags = Vec::new();
    let mut n = 0u64;
    let run = chrono::Utc::now().timestamp_millis();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let user = format!("fresh-{run}-{n}");
        let body = json!({ "events": [{
            "id": format!("fresh-{run}-{n}"), "timestamp": chrono::Utc::now().to_rfc3339(),
            "provider": "openai", "model": "gpt-4o-mini", "tags": { "userId": user },
            "usage": { "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_creation_tokens": 0 }
        }]});
        let r = client.post(format!("{base}/v1/events")).bearer_auth(&key).json(&body).send().await;
        if !matches!(&r, Ok(r) if r.status() == 200) {
            continue;
        }
        let acked = Instant::now();
        loop {
            let r = client
                .get(format!("{base}/v1/me/ai-apps/users?window=1d&user={user}"))
                .bearer_auth(&read_key)
                .send()
                .await;
            let seen = match r {
                Ok(r) => r.json::<Value>().await.ok().is_some_and(|b| b["total_users"] == 1),
                Err(_) => false,
            };
            if seen || acked.elapsed() > Duration::from_secs(30) {
                lags.push(acked.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lags
}

/// Posts every body to `path` with `concurrency` clients; the seconds it took.
async fn post_all(
    base: &str,
    key: &str,
    path: &str,
    content_type: &str,
    bodies: Vec<Vec<u8>>,
    concurrency: u64,
) -> f64 {
    let client = reqwest::Client::new();
    let bodies = std::sync::Arc::new(bodies);
    let next = std::sync::Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, key, ct, bodies, next) = (
            client.clone(),
            format!("{base}{path}"),
            key.to_string(),
            content_type.to_string(),
            bodies.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(b) else { break };
                let resp = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", &ct)
                    .body(body.clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => panic!("{url} answered {}", r.status()),
                    Err(e) => panic!("{url} failed: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    started.elapsed().as_secs_f64()
}

/// Posts fresh batches of 100 calls with `concurrency` clients until `stop` is set or `limit`
/// were posted: how many calls were acknowledged and in how many seconds.
async fn post_until(
    base: &str,
    key: &str,
    seed: u64,
    concurrency: u64,
    stop: Arc<AtomicBool>,
    limit: u64,
) -> (u64, f64) {
    let client = reqwest::Client::new();
    let (posted, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (client, url, key, stop, posted, acked) = (
            client.clone(),
            format!("{base}/v1/events"),
            key.to_string(),
            stop.clone(),
            posted.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) && posted.fetch_add(100, Ordering::Relaxed) < limit {
                round += 1;
                let body = batch(&calls(seed ^ (c << 48) ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15), 100));
                let r = client.post(&url).bearer_auth(&key).json(&body).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        acked.fetch_add(100, Ordering::Relaxed);
                    }
                    Ok(r) => panic!("{url} answered {}", r.status()),
                    Err(e) => panic!("{url} failed: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    (acked.load(Ordering::Relaxed), started.elapsed().as_secs_f64())
}

async fn ingest(base: &str, key: &str, events: u64, concurrency: u64, read_key: Option<&str>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = read_key
        .map(|rk| tokio::spawn(freshness(base.to_string(), key.to_string(), rk.to_string(), stop.clone())));
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    let all = calls(seed, events);
    let bodies: Vec<Vec<u8>> = all.chunks(100).map(|c| batch(c).to_string().into_bytes()).collect();
    let batches = bodies.len();
    let secs = post_all(base, key, "/v1/events", "application/json", bodies, concurrency).await;
    println!(
        "ingest: {events} events in {batches} batches of 100, {concurrency} clients: {secs:.2} s = {:.0} events/s",
        events as f64 / secs
    );
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = probe {
        let mut lags = p.await.expect("probe");
        lags.sort();
        if let (Some(min), Some(max)) = (lags.first(), lags.last()) {
            println!(
                "visible after the acknowledgement, during that ingest: {} probes, median {:?}, min {min:?}, max {max:?}",
                lags.len(),
                lags[lags.len() / 2]
            );
        }
    }
}

/// Sets its flag when dropped (the deleter's end, even by a panic, stops the ingest).
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Ingest alone, then ingest while users are deleted (see the header).
async fn deletions(base: &str, key: &str, admin: &str, events: u64, deletions: u64, users: u64) {
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    let (events, alone) = post_until(base, key, seed, 4, Arc::new(AtomicBool::new(false)), events).await;
    println!(
        "ingest alone: {events} events, 4 clients: {alone:.2} s = {:.0} events/s",
        events as f64 / alone
    );

    let mut rng = Rng(seed.rotate_left(17) | 1);
    let mut picked = std::collections::BTreeSet::new();
    while (picked.len() as u64) < deletions.min(users) {
        picked.insert(rng.next() % users + 1);
    }
    let ids: Vec<String> = picked.into_iter().map(|n| format!("user_{n:05}")).collect();
    let (base_owned, admin_owned) = (base.to_string(), admin.to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let stop_ingest = stop.clone();
    let deleter = tokio::spawn(async move {
        let _stop = SetOnDrop(stop_ingest);
        let client = reqwest::Client::new();
        let started = Instant::now();
        let (mut times, mut removed, mut last_ticket) = (Vec::new(), 0i64, None);
        for id in ids {
            let t = Instant::now();
            let r = client
                .delete(format!("{base_owned}/v1/me/ai-apps/users/{id}?wait=false"))
                .bearer_auth(&admin_owned)
                .send()
                .await
                .expect("DELETE");
            assert!(r.status().is_success(), "DELETE {id}: {}", r.status());
            let body: Value = r.json().await.expect("json");
            times.push(t.elapsed());
            removed += body["deleted"]["events"].as_i64().unwrap_or(0);
            if let Some(n) = body["scrub"]["ticket"].as_u64() {
                last_ticket = Some(n);
            }
        }
        (started.elapsed(), times, removed, last_ticket)
    });
    // Ingest runs for exactly as long as the deletions do.
    let (during_events, during) = post_until(base, key, seed ^ 0x5eed, 4, stop, u64::MAX).await;
    let (rate_alone, rate_during) = (events as f64 / alone, during_events as f64 / during);
    println!(
        "ingest during deletions (as long as they ran): {during_events} events, 4 clients: {during:.2} s = {rate_during:.0} events/s ({:.0} % of alone)",
        100.0 * rate_during / rate_alone
    );
    let (took, mut times, removed, last_ticket) = deleter.await.expect("deleter");
    times.sort();
    if let (Some(min), Some(max)) = (times.first(), times.last()) {
        println!(
            "deletions: {} users ({removed} events) in {:.2} s, one client, wait=false: answer median {:?}, min {min:?}, max {max:?}",
            times.len(),
            took.as_secs_f64(),
            times[times.len() / 2]
        );
    }
    if let Some(ticket) = last_ticket {
        let client = reqwest::Client::new();
        let t = Instant::now();
        loop {
            let r = client
                .get(format!("{base}/v1/me/ai-apps/deletions/{ticket}"))
                .bearer_auth(admin)
                .send()
                .await
                .expect("GET deletion");
            if r.json::<Value>().await.ok().is_some_and(|b| b["done"] == true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!(
            "scrub of ticket {ticket} done {:.1} s after the last deletion and the ingest ended",
            t.elapsed().as_secs_f64()
        );
    }
}

/// Mixed load (see the header).
async fn soak(base: &str, keys: [&str; 3], secs: u64, rate: u64, users: u64) {
    let [ingest_key, read_key, admin_key] = keys.map(str::to_string);
    let end = Instant::now() + Duration::from_secs(secs);
    let errors = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    // Ingest: RATE events/s, a batch of 100 every 100/RATE s, shared by two clients.
    let sent = Arc::new(AtomicU64::new(0));
    for part in 0..2u64 {
        let (client, base, key, sent, errors) =
            (client.clone(), base.to_string(), ingest_key.clone(), sent.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let every = Duration::from_secs_f64(200.0 / rate.max(1) as f64);
            let mut next = Instant::now() + every.mul_f64(part as f64 / 2.0);
            let mut seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 ^ part;
            while Instant::now() < end {
                tokio::time::sleep_until(next.into()).await;
                next += every;
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let body = batch(&calls(seed, 100)).to_string();
                let r = client.post(format!("{base}/v1/events")).bearer_auth(&key).body(body).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        sent.fetch_add(100, Ordering::Relaxed);
                    }
                    other => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("ingest: {:?}", other.map(|r| r.status()));
                    }
                }
            }
        }));
    }
    // Reads: every view and the Users page, one after another.
    let read = Arc::new(AtomicU64::new(0));
    {
        let (client, base, key, read, errors) =
            (client.clone(), base.to_string(), read_key.clone(), read.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let paths = [
                "/v1/me/ai-apps/overview",
                "/v1/me/ai-apps/users?sort=spend",
                "/v1/me/ai-apps/users?window=7d&tag.plan=pro",
                "/v1/me/ai-apps/models",
                "/v1/me/ai-apps/tools",
                "/v1/me/ai-apps/traces",
                "/v1/me/ai-apps/segments?by=plan",
                "/v1/me/ai-apps/users/user_00001",
                "/ai-apps/users",
            ];
            while Instant::now() < end {
                for p in paths {
                    let r = client.get(format!("{base}{p}")).bearer_auth(&key).send().await;
                    match r {
                        Ok(r) if r.status() == 200 || (r.status() == 404 && p.contains("user_")) => {
                            let _ = r.bytes().await;
                            read.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("GET {p}: {:?}", other.map(|r| r.status()));
                        }
                    }
                }
            }
        }));
    }
    // Deletions: one user every 10 s.
    let deleted = Arc::new(AtomicU64::new(0));
    {
        let (client, base, key, deleted, errors) =
            (client.clone(), base.to_string(), admin_key.clone(), deleted.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x5eed_50a4 | 1);
            while Instant::now() + Duration::from_secs(10) < end {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let id = format!("user_{:05}", rng.next() % users.max(1) + 1);
                let r = client
                    .delete(format!("{base}/v1/me/ai-apps/users/{id}?wait=false"))
                    .bearer_auth(&key)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        deleted.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("DELETE {id}: {:?}", other.map(|r| r.status()));
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("soak task");
    }
    println!(
        "soak: {secs} s: {} events ingested ({:.0}/s, paced at {rate}/s), {} reads, {} users deleted, {} errors",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) as f64 / secs as f64,
        read.load(Ordering::Relaxed),
        deleted.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed)
    );
}

/// The same calls as OTLP protobuf exports of 512 spans: per trace, a request span (route,
/// user, plan) and its three chat spans, each trace whole in one export.
fn otlp_exports(calls: &[Call]) -> Vec<Vec<u8>> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, InstrumentationScope, KeyValue, any_value::Value as V,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let kv = |k: &str, v: V| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let id = |s: &str, n: usize| -> Vec<u8> {
        let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..n).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
    };
    let mut spans = Vec::new();
    for group in calls.chunks(3) {
        let trace_id = id(&group[0].trace, 16);
        let root_id = id(&group[0].id, 8);
        let start = group.iter().map(|c| c.ts_ms).min().unwrap_or(0) as u64 * 1_000_000;
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: root_id.clone(),
            name: "POST /api/chat".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 6_000_000_000,
            attributes: vec![
                kv("http.route", V::StringValue("POST /api/chat".into())),
                kv("tokentally.tag.userId", V::StringValue(format!("user_{}", group[0].user))),
                kv("tokentally.tag.plan", V::StringValue(group[0].plan.into())),
            ],
            ..Default::default()
        });
        for c in group {
            let x = c.x;
            let (provider, model) =
                if x % 2 == 0 { ("openai", "gpt-4o-mini") } else { ("anthropic", "claude-sonnet-4-5") };
            let cache = (x % 2000) as i64;
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id: id(&c.id[9..], 8),
                parent_span_id: root_id.clone(),
                name: format!("chat {model}"),
                start_time_unix_nano: c.ts_ms as u64 * 1_000_000,
                end_time_unix_nano: (c.ts_ms as u64 + x % 5000) * 1_000_000,
                attributes: vec![
                    kv("gen_ai.operation.name", V::StringValue("chat".into())),
                    kv("gen_ai.provider.name", V::StringValue(provider.into())),
                    kv("gen_ai.request.model", V::StringValue(model.into())),
                    kv("gen_ai.agent.name", V::StringValue("bench".into())),
                    kv("gen_ai.usage.input_tokens", V::IntValue((x % 4000) as i64 + cache)),
                    kv("gen_ai.usage.output_tokens", V::IntValue((x % 700) as i64)),
                    kv("gen_ai.usage.cache_read.input_tokens", V::IntValue(cache)),
                ],
                ..Default::default()
            });
        }
    }
    let scope = Some(InstrumentationScope { name: "bench".into(), ..Default::default() });
    let mut out = Vec::new();
    let mut rest = &spans[..];
    while !rest.is_empty() {
        // 512 spans, cut at a trace boundary (4 spans per trace).
        let n = rest.len().min(512);
        let (now, later) = rest.split_at(n);
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    scope: scope.clone(),
                    spans: now.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        out.push(req.encode_to_vec());
        rest = later;
    }
    out
}

async fn otlp(base: &str, key: &str, events: u64, concurrency: u64) {
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    let all = calls(seed, events - events % 3);
    let spans = all.len() + all.len() / 3;
    let bodies = otlp_exports(&all);
    let exports = bodies.len();
    let secs = post_all(base, key, "/v1/traces", "application/x-protobuf", bodies, concurrency).await;
    println!(
        "otlp: {} calls ({spans} spans) in {exports} protobuf exports of 512 spans, {concurrency} clients: {secs:.2} s = {:.0} spans/s, {:.0} calls/s",
        all.len(),
        spans as f64 / secs,
        all.len() as f64 / secs
    );
}

async fn floor(db: &str, events: u64) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    let opts = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.expect("open floor db");
    for sql in [
        "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, trace_id TEXT, ts INTEGER NOT NULL,
           tag_set INTEGER NOT NULL, provider TEXT, model TEXT, agent TEXT, input INTEGER, output INTEGER,
           cache_read INTEGER, cache_creation INTEGER, cost INTEGER, latency INTEGER)",
        "CREATE INDEX IF NOT EXISTS events_trace ON events (trace_id)",
        "CREATE INDEX IF NOT EXISTS events_tag_set_ts ON events (tag_set, ts)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("schema");
    }
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    let all = calls(seed, events);
    let started = Instant::now();
    for chunk in all.chunks(100) {
        let mut tx = pool.begin().await.expect("begin");
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO events (id, trace_id, ts, tag_set, provider, model, agent, input, output, cache_read,
               cache_creation, cost, latency) ",
        );
        q.push_values(chunk, |mut b, c| {
            let x = c.x as i64 & 0xffff_ffff;
            b.push_bind(&c.id)
                .push_bind(&c.trace)
                .push_bind(c.ts_ms)
                .push_bind(c.user as i64 * 2 + i64::from(c.plan == "pro"))
                .push_bind(if x % 2 == 0 { "openai" } else { "anthropic" })
                .push_bind(if x % 2 == 0 { "gpt-4o-mini" } else { "claude-sonnet-4-5" })
                .push_bind("bench")
                .push_bind(x % 4000)
                .push_bind(x % 700)
                .push_bind(x % 2000)
                .push_bind(0)
                .push_bind(x % 100_000)
                .push_bind(x % 5000);
        });
        q.push(" ON CONFLICT (id) DO NOTHING");
        q.build().execute(&mut *tx).await.expect("insert");
        tx.commit().await.expect("commit");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "floor: {events} rows in batches of 100 into a bare SQLite table: {secs:.2} s = {:.0} rows/s",
        events as f64 / secs
    );
}

/// Median, min and max of `n` timed GETs after one warm-up.
async fn time_get(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    n: usize,
) -> (Duration, Duration, Duration) {
    let mut times = Vec::with_capacity(n);
    for i in 0..=n {
        let started = Instant::now();
        let r = client.get(url).bearer_auth(key).send().await.expect("GET");
        let status = r.status();
        let _ = r.bytes().await;
        assert!(status.is_success(), "{url}: {status}");
        let took = started.elapsed();
        // A request slower than 3 s is timed once (its warm-up), not n more times.
        if i == 0 && took > Duration::from_secs(3) {
            return (took, took, took);
        }
        if i > 0 {
            times.push(took);
        }
    }
    times.sort();
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

async fn reads(base: &str, key: &str, n: usize) {
    let client = reqwest::Client::new();
    // BENCH_SKIP=a,b leaves out the requests containing any of those strings, BENCH_ONLY=a,b
    // keeps only those containing one (a quick rerun).
    let list = |var: &str| -> Vec<String> {
        std::env::var(var)
            .map(|s| s.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (skip, only) = (list("BENCH_SKIP"), list("BENCH_ONLY"));
    let skipped = |q: &str| {
        skip.iter().any(|p| q.contains(p.as_str()))
            || (!only.is_empty() && !only.iter().any(|p| q.contains(p.as_str())))
    };
    // The biggest spender and an agent: filters that select real data.
    let top: Value = client
        .get(format!("{base}/v1/me/ai-apps/users?window=28d&limit=1"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET users")
        .json()
        .await
        .expect("json");
    let user = top["users"][0]["user_id"].as_str().unwrap_or("nobody").to_string();
    let filters = [
        String::new(),
        "&tag.plan=pro".into(),
        "&provider=openai".into(),
        "&agent=research-agent".into(),
        format!("&user={user}"),
        "&tag.plan=pro&provider=openai".into(),
    ];
    let views = [
        "users?sort=spend&limit=50",
        "users?sort=last_seen&limit=50",
        "users?sort=top_model&limit=50",
        "overview?",
        "models?",
        "tools?",
        "traces?limit=50",
        "traces?limit=50&sort=spend",
        "segments?by=plan",
        "segments?by=org",
        "segments?by=userId",
    ];
    println!("| request (28d unless said) | median | min | max |");
    println!("|---|---|---|---|");
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    for view in views {
        for f in &filters {
            let sep = if view.ends_with('?') { "" } else { "&" };
            let q = format!("{view}{sep}window=28d{f}");
            if skipped(&q) {
                continue;
            }
            let (med, min, max) = time_get(&client, &format!("{base}/v1/me/ai-apps/{q}"), key, n).await;
            println!("| `/{q}` | {} | {} | {} |", ms(med), ms(min), ms(max));
        }
    }
    for w in ["1d", "7d"] {
        for view in ["users?limit=50&", "overview?", "models?", "segments?by=plan&"] {
            let q = format!("{view}window={w}");
            if skipped(&q) {
                continue;
            }
            let (med, min, max) = time_get(&client, &format!("{base}/v1/me/ai-apps/{q}"), key, n).await;
            println!("| `/{q}` | {} | {} | {} |", ms(med), ms(min), ms(max));
        }
    }
    for page in [
        "/ai-apps",
        "/ai-apps/users",
        "/ai-apps/users?tag=plan%3Dpro",
        "/ai-apps/models",
        "/ai-apps/tools",
        "/ai-apps/segments",
        "/ai-apps/traces",
    ] {
        if skipped(page) {
            continue;
        }
        let (med, min, max) = time_get(&client, &format!("{base}{page}"), key, n).await;
        println!("| page `{page}` (server render) | {} | {} | {} |", ms(med), ms(min), ms(max));
    }
}

/// The server's peak resident memory so far (VmHWM, kB), when its pid is known.
fn peak_kb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CSV exports of the whole 28-day window: rows, bytes, time to the first byte and to the
/// end, rows a second, and the server's peak memory after each (with its pid). An export
/// still running after `cap_secs` is stopped and reported as far as it got.
async fn exports(base: &str, key: &str, pid: Option<u32>, cap_secs: u64) {
    let client = reqwest::Client::new();
    println!("| export (window=28d) | rows | MB | first byte | whole | rows/s | server peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for path in [
        "users?window=28d&sort=spend",
        "users?window=28d&sort=user&dir=asc",
        "traces?window=28d",
        "traces?window=28d&sort=spend",
    ] {
        let url = format!("{base}/v1/me/ai-apps/{path}&format=csv");
        let t = Instant::now();
        let mut resp = client.get(&url).bearer_auth(key).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{url}");
        let (mut first, mut bytes, mut lines, mut cut) = (None, 0usize, 0usize, false);
        while let Some(chunk) = resp.chunk().await.expect("body") {
            first.get_or_insert(t.elapsed());
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
            if t.elapsed().as_secs() >= cap_secs {
                cut = true;
                break;
            }
        }
        let whole = t.elapsed();
        let rows = lines.saturating_sub(1);
        let peak = peak_kb(pid).map_or("-".into(), |kb| format!("{} MB", kb / 1024));
        println!(
            "| `{path}` | {rows}{} | {:.1} | {} | {:.1} s | {:.0} | {peak} |",
            if cut { " (stopped)" } else { "" },
            bytes as f64 / 1e6,
            first.map_or("-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0)),
            whole.as_secs_f64(),
            rows as f64 / whole.as_secs_f64()
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench ingest BASE_URL KEY [N] [CONCURRENCY] | otlp BASE_URL KEY [N] [CONCURRENCY] | deletions BASE_URL KEY ADMIN_KEY [N] [DELETIONS] [USERS] | soak BASE_URL KEY READ_KEY ADMIN_KEY SECS RATE USERS | floor DB [N] | reads BASE_URL KEY [N] | exports BASE_URL READ_KEY [SERVER_PID] [CAP_SECS]";
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(1), arg(2)) {
        (Some("ingest"), Some(base)) => {
            let key = arg(3).unwrap_or_default();
            let n = arg(4).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            let c = arg(5).and_then(|v| v.parse().ok()).unwrap_or(4);
            ingest(base, key, n, c, arg(6)).await;
        }
        (Some("otlp"), Some(base)) => {
            let key = arg(3).unwrap_or_default();
            let n = arg(4).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            let c = arg(5).and_then(|v| v.parse().ok()).unwrap_or(4);
            otlp(base, key, n, c).await;
        }
        (Some("deletions"), Some(base)) => {
            let (key, admin) = (arg(3).unwrap_or_default(), arg(4).unwrap_or_default());
            let n = arg(5).and_then(|v| v.parse().ok()).unwrap_or(200_000);
            let d = arg(6).and_then(|v| v.parse().ok()).unwrap_or(1_000);
            let users = arg(7).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            deletions(base, key, admin, n, d, users).await;
        }
        (Some("soak"), Some(base)) => {
            let keys = [arg(3).unwrap_or_default(), arg(4).unwrap_or_default(), arg(5).unwrap_or_default()];
            let secs = arg(6).and_then(|v| v.parse().ok()).unwrap_or(1_800);
            let rate = arg(7).and_then(|v| v.parse().ok()).unwrap_or(10_000);
            let users = arg(8).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            soak(base, keys, secs, rate, users).await;
        }
        (Some("floor"), Some(db)) => {
            let n = arg(3).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            floor(db, n).await;
        }
        (Some("reads"), Some(base)) => {
            let key = arg(3).unwrap_or_default();
            let n = arg(4).and_then(|v| v.parse().ok()).unwrap_or(10);
            reads(base, key, n).await;
        }
        (Some("exports"), Some(base)) => {
            let key = arg(3).unwrap_or_default();
            let pid = arg(4).and_then(|v| v.parse().ok());
            let cap = arg(5).and_then(|v| v.parse().ok()).unwrap_or(600);
            exports(base, key, pid, cap).await;
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
