//! Ingest → Users JSON view against the real server: totals equal an independent computation,
//! re-sent batches change nothing, filters, windows, sorting and paging.

mod common;

use common::{TestServer, minutes_ago};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// nano-USD per million tokens for (input, output, cache read, cache write) of the models used
/// here, transcribed from prices.json (USD/Mtok × 1e9).
fn price(model: &str) -> Option<[u128; 4]> {
    match model {
        "gpt-4o-mini" => Some([150_000_000, 600_000_000, 75_000_000, 150_000_000]),
        "gpt-4o" => Some([2_500_000_000, 10_000_000_000, 1_250_000_000, 2_500_000_000]),
        "claude-sonnet-4-5" => Some([3_000_000_000, 15_000_000_000, 300_000_000, 3_750_000_000]),
        "claude-haiku-4-5" => Some([1_000_000_000, 5_000_000_000, 100_000_000, 1_250_000_000]),
        _ => None,
    }
}

#[derive(Default, Debug, PartialEq)]
struct Expected {
    spend: i64,
    events: i64,
    traces: std::collections::BTreeSet<String>,
    tokens: [i64; 4],
    unpriced: i64,
    by_model: BTreeMap<String, i64>,
}

/// A deterministic mix of events for `users`, and the totals computed independently.
fn batch(users: &[&str], n: usize, seed: u64) -> (Value, BTreeMap<String, Expected>) {
    let models = [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("acme", "house-model-1"),
    ];
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut events = Vec::new();
    let mut x = seed;
    for i in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let user = users[(x >> 33) as usize % users.len()];
        let (provider, model) = models[(x >> 20) as usize % models.len()];
        let tok = [(x >> 8) % 5_000, (x >> 16) % 900, (x >> 24) % 3_000, (x >> 40) % 700];
        let trace = format!("{user}-trace-{}", i / 3);
        let override_cost = (i % 17 == 0).then(|| "0.012345678".to_string());
        let e = expected.entry(user.to_string()).or_default();
        e.events += 1;
        e.traces.insert(trace.clone());
        for (sum, t) in e.tokens.iter_mut().zip(tok) {
            *sum += t as i64;
        }
        let cost = match (&override_cost, price(model)) {
            (Some(_), _) => Some(12_345_678i64),
            (None, Some(p)) => {
                let scaled: u128 = (0..4).map(|b| u128::from(tok[b]) * p[b]).sum();
                Some(((scaled + 500_000) / 1_000_000) as i64)
            }
            (None, None) => None,
        };
        match cost {
            Some(c) => {
                e.spend += c;
                *e.by_model.entry(model.to_string()).or_default() += c;
            }
            None => e.unpriced += 1,
        }
        let mut ev = json!({
            "id": format!("{seed}-evt-{i}"),
            "trace_id": trace,
            "timestamp": minutes_ago((i % 600) as i64 + 1),
            "provider": provider,
            "model": model,
            "agent": "support-bot",
            "route_tag": "POST /api/chat",
            "tags": { "userId": user, "plan": if user.len().is_multiple_of(2) { "pro" } else { "free" } },
            "usage": { "input_tokens": tok[0], "output_tokens": tok[1], "cache_read_tokens": tok[2], "cache_creation_tokens": tok[3] },
            "latency_ms": 500 + i,
            "status": if i % 11 == 0 { "error" } else { "ok" },
        });
        if let Some(c) = override_cost {
            ev["cost_usd"] = json!(c);
        }
        events.push(ev);
    }
    (json!({ "events": events }), expected)
}

fn assert_matches(users: &[Value], expected: &BTreeMap<String, Expected>) {
    assert_eq!(users.len(), expected.len(), "{users:?}");
    for u in users {
        let id = u["user_id"].as_str().expect("user_id");
        let e = &expected[id];
        assert_eq!(u["spend_nano"].as_i64(), Some(e.spend), "spend of {id}");
        assert_eq!(u["events"].as_i64(), Some(e.events), "events of {id}");
        assert_eq!(u["traces"].as_i64(), Some(e.traces.len() as i64), "traces of {id}");
        assert_eq!(u["input_tokens"].as_i64(), Some(e.tokens[0]), "input of {id}");
        assert_eq!(u["output_tokens"].as_i64(), Some(e.tokens[1]), "output of {id}");
        assert_eq!(u["cache_read_tokens"].as_i64(), Some(e.tokens[2]), "cache read of {id}");
        assert_eq!(u["cache_creation_tokens"].as_i64(), Some(e.tokens[3]), "cache creation of {id}");
        assert_eq!(u["tokens"].as_i64(), Some(e.tokens.iter().sum::<i64>()), "tokens of {id}");
        assert_eq!(u["unpriced_events"].as_i64(), Some(e.unpriced), "unpriced of {id}");
        let top = e
            .by_model
            .iter()
            .max_by_key(|(m, c)| (**c, std::cmp::Reverse((*m).clone())))
            .map(|(m, _)| m.clone());
        assert_eq!(u["top_model"].as_str().map(str::to_string), top, "top model of {id}");
        let nano = e.spend;
        let dollars = format!("{}.{:09}", nano / 1_000_000_000, nano % 1_000_000_000);
        let want = dollars.trim_end_matches('0');
        let got = u["spend_usd"].as_str().expect("spend_usd");
        assert!(got.starts_with(want.trim_end_matches('.')), "spend_usd {got} vs {want}");
    }
}

const USERS: [&str; 5] =
    ["alice", "bob-the-builder", "carol", "dave@example.com", "<img src=x onerror=alert(1)>"];

#[tokio::test]
async fn users_view_equals_independent_sums_and_resent_batches_do_not_double_count() {
    let s = TestServer::start();
    let (body, expected) = batch(&USERS, 300, 7);
    let (status, reply) = s.post(&body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({ "accepted": 300, "duplicates": 0 }));

    let users = s.all_users("").await;
    assert_matches(&users, &expected);
    let spends: Vec<i64> = users.iter().map(|u| u["spend_nano"].as_i64().unwrap_or(-1)).collect();
    assert!(spends.windows(2).all(|w| w[0] >= w[1]), "default order is spend descending: {spends:?}");

    // The same batch again (a retry after a timeout): all duplicates, nothing changes.
    let (status, reply) = s.post(&body).await;
    assert_eq!(status, 200);
    assert_eq!(reply, json!({ "accepted": 0, "duplicates": 300 }));
    assert_eq!(s.all_users("").await, users);
}

#[tokio::test]
async fn filters_windows_sorting_and_paging() {
    let s = TestServer::start();
    let (body, expected) = batch(&USERS, 120, 11);
    assert_eq!(s.post(&body).await.0, 200);

    // tag filter: only users whose plan is pro (even-length ids in `batch`).
    let pro: BTreeMap<String, Expected> =
        expected.into_iter().filter(|(u, _)| u.len().is_multiple_of(2)).collect();
    assert_matches(&s.all_users("&tag.plan=pro").await, &pro);
    assert!(s.all_users("&tag.plan=pro&tag.userId=nobody").await.is_empty());

    // An event three days ago is in 7d and 28d but not 1d.
    let old = json!({ "events": [{
        "id": "old-1", "timestamp": minutes_ago(3 * 24 * 60), "provider": "openai", "model": "gpt-4o",
        "tags": { "userId": "zed-old" }, "usage": { "input_tokens": 1000 }
    }]});
    assert_eq!(s.post(&old).await.0, 200);
    let has_zed = |users: Vec<Value>| users.iter().any(|u| u["user_id"] == "zed-old");
    assert!(!has_zed(s.all_users("&window=1d").await));
    assert!(has_zed(s.all_users("&window=7d").await));
    assert!(has_zed(s.all_users("").await));

    // Sorting by user ascending, then descending.
    let names = |users: Vec<Value>| {
        users.iter().map(|u| u["user_id"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    let asc = names(s.all_users("&sort=user&dir=asc").await);
    let mut sorted = asc.clone();
    sorted.sort();
    assert_eq!(asc, sorted);
    let mut desc = names(s.all_users("&sort=user&dir=desc").await);
    desc.reverse();
    assert_eq!(desc, asc);
    let tokens: Vec<i64> = s
        .all_users("&sort=tokens&dir=asc")
        .await
        .iter()
        .map(|u| u["tokens"].as_i64().unwrap_or(-1))
        .collect();
    assert!(tokens.windows(2).all(|w| w[0] <= w[1]), "{tokens:?}");

    // Paging: limit 2 gives a cursor, the pages join up to the whole list.
    let (_, first) = s.get("/v1/me/ai-apps/users?limit=2").await;
    assert_eq!(first["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["total_users"].as_i64(), Some(6));
    assert!(first["next_cursor"].is_string());

    // Bad query parameters: 400 naming the parameter.
    for (q, param) in [
        ("window=2d", "window"),
        ("sort=cost", "sort"),
        ("limit=100000", "limit"),
        ("foo=1", "foo"),
        ("from=2026-01-01T00:00:00Z&to=y", "to"),
        ("from=x&to=y", "from"),
    ] {
        let (status, body) = s.get(&format!("/v1/me/ai-apps/users?{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["field"], param, "{q}: {body}");
    }
    // A custom range that covers everything.
    let (status, body) = s
        .get(&format!(
            "/v1/me/ai-apps/users?from={}&to={}",
            urlenc(&minutes_ago(5 * 24 * 60)),
            urlenc(&minutes_ago(-5))
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_users"].as_i64(), Some(6));
}

fn urlenc(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn traces_and_events_sent_separately_are_joined() {
    let s = TestServer::start();
    // The SDK sends the trace record at the end of withTrace; events may carry no tags of their own.
    let body = json!({
        "traces": [{ "id": "t-1", "route_tag": "POST /api/chat", "tags": { "userId": "uma", "org": "acme" },
                     "started_at": minutes_ago(10), "ended_at": minutes_ago(9), "status": "ok" }],
        "events": [
            { "id": "a", "trace_id": "t-1", "timestamp": minutes_ago(10), "provider": "openai", "model": "gpt-4o",
              "usage": { "input_tokens": 100, "output_tokens": 10 } },
            { "id": "b", "trace_id": "t-1", "timestamp": minutes_ago(9), "provider": "openai", "model": "gpt-4o",
              "usage": { "input_tokens": 100, "output_tokens": 10 } }
        ]
    });
    let (status, reply) = s.post(&body).await;
    assert_eq!((status, reply), (200, json!({ "accepted": 3, "duplicates": 0 })));
    let users = s.all_users("&tag.org=acme").await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["user_id"], "uma");
    assert_eq!(users[0]["traces"], 1);
    assert_eq!(users[0]["events"], 2);
    // 200 input × $2.5/M + 20 output × $10/M = $0.0005 + $0.0002 = 700,000 nano-USD
    assert_eq!(users[0]["spend_nano"], 700_000);
}

#[tokio::test]
async fn a_trace_is_counted_once_whichever_arrives_first_and_repeated_ids_once() {
    let s = TestServer::start();
    let ev = |id: &str, trace: &str| {
        json!({ "id": id, "trace_id": trace, "timestamp": minutes_ago(3), "provider": "anthropic",
                "model": "claude-haiku-4-5", "tags": { "userId": "vera" }, "usage": { "input_tokens": 1000 } })
    };
    // Events first (as the SDK sends them during the block), the same id twice in one batch.
    let (status, reply) =
        s.post(&json!({ "events": [ev("x1", "t-9"), ev("x2", "t-9"), ev("x1", "t-9")] })).await;
    assert_eq!((status, reply), (200, json!({ "accepted": 2, "duplicates": 1 })));
    // Then the trace record at the end of the block: completes the trace, not a second one.
    let trace = json!({ "traces": [{ "id": "t-9", "route_tag": "POST /x", "tags": { "userId": "vera" },
                                      "started_at": minutes_ago(4), "ended_at": minutes_ago(2), "status": "ok" }] });
    let (status, reply) = s.post(&trace).await;
    assert_eq!((status, reply), (200, json!({ "accepted": 0, "duplicates": 1 })));
    let users = s.all_users("").await;
    assert_eq!(users.len(), 1);
    assert_eq!((users[0]["traces"].as_i64(), users[0]["events"].as_i64()), (Some(1), Some(2)));
    // claude-haiku-4-5 input $1/M: 2 × 1000 tokens = $0.002
    assert_eq!(users[0]["spend_nano"], 2_000_000);
}
