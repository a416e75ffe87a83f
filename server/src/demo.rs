//! `tokentally demo`: realistic traffic through the real ingest path. Zipf-skewed users (some
//! anonymous), several OpenAI and Anthropic models, cache tokens, tool calls, errors, an unpriced
//! model, and a daily rhythm.

use app::pricing::{Usage, from_anthropic, from_openai};
use app::store::ingest::{EventIn, TraceIn};
use app::store::{Store, StoreError, now_ms};
use std::collections::BTreeMap;
use std::io::Write;

/// What to generate.
#[derive(Clone, Copy)]
pub struct DemoOptions {
    pub users: u32,
    pub days: u32,
    pub events: u64,
    pub seed: u64,
}

/// xorshift64*: small, fast, deterministic; good enough for demo data (and the fuzzer's inputs).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Route {
    tag: &'static str,
    feature: &'static str,
    agent: &'static str,
    tools: &'static [&'static str],
}

const ROUTES: &[Route] = &[
    Route { tag: "POST /api/chat", feature: "chat", agent: "chat-assistant", tools: &[] },
    Route { tag: "POST /api/search", feature: "search", agent: "search", tools: &["web_search"] },
    Route { tag: "POST /api/summarize", feature: "summarize", agent: "summarizer", tools: &[] },
    Route {
        tag: "POST /api/agent/run",
        feature: "agent",
        agent: "research-agent",
        tools: &["web_search", "fetch_url", "sql_query", "send_email"],
    },
];

/// (provider, model, weight) — the last one has no price on purpose.
const MODELS: &[(&str, &str, u64)] = &[
    ("openai", "gpt-4o-mini", 30),
    ("openai", "gpt-4o-2024-08-06", 12),
    ("openai", "gpt-4.1", 8),
    ("openai", "o3-mini", 5),
    ("anthropic", "claude-haiku-4-5", 18),
    ("anthropic", "claude-sonnet-4-5-20250929", 20),
    ("anthropic", "claude-opus-4-1", 3),
    ("openai", "acme-finetune-v3", 1),
];

/// (question, answer) pairs for the demo's stored prompts and responses.
const EXCHANGES: &[(&str, &str)] = &[
    ("Where is my order #4471?", "Order #4471 shipped yesterday and should arrive on Friday."),
    (
        "Summarise this support ticket in two sentences.",
        "The customer cannot log in after a password reset. A fix was applied.",
    ),
    (
        "Find recent articles about solid-state batteries.",
        "Here are three recent articles on solid-state batteries, with sources.",
    ),
    (
        "Draft a polite reply declining the meeting.",
        "Thank you for the invitation; unfortunately I can't attend this week.",
    ),
    ("Which plan includes SSO?", "SSO is included in the Enterprise plan."),
];

const ORGS: &[&str] =
    &["acme-corp", "globex", "initech", "umbrella", "hooli", "stark-ind", "wayne-ent", "tyrell"];

struct User {
    id: String,
    plan: &'static str,
    org: Option<&'static str>,
}

fn make_users(rng: &mut Rng, n: u32) -> Vec<User> {
    (0..n)
        .map(|i| {
            if rng.chance(100) {
                User { id: format!("anon_{:012x}", rng.next() & 0xffff_ffff_ffff), plan: "free", org: None }
            } else {
                let plan = *rng.pick(&["free", "free", "pro", "pro", "enterprise"]);
                let org = (plan != "free").then(|| *rng.pick(ORGS));
                User { id: format!("user_{:05}", i + 1), plan, org }
            }
        })
        .collect()
}

/// Cumulative Zipf(s≈1.1) weights over ranks, for sampling by binary search.
fn zipf_cdf(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n)
        .map(|r| {
            acc += 1.0 / (r as f64).powf(1.1);
            acc
        })
        .collect()
}

fn sample(cdf: &[f64], rng: &mut Rng) -> usize {
    let total = cdf.last().copied().unwrap_or(1.0);
    let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
    cdf.partition_point(|c| *c < x).min(cdf.len() - 1)
}

fn usage_for(rng: &mut Rng, provider: &str, route: &Route) -> Usage {
    let prompt = match route.feature {
        "summarize" => rng.range(2_000, 30_000),
        "agent" => rng.range(1_500, 12_000),
        _ => rng.range(150, 3_000),
    };
    let completion = rng.range(40, 1_200);
    if provider == "anthropic" {
        let cached = if rng.chance(450) { rng.range(500, 8_000) } else { 0 };
        let written = if rng.chance(150) { rng.range(500, 4_000) } else { 0 };
        let written_1h = if written > 0 && rng.chance(300) { written / 2 } else { 0 };
        from_anthropic(prompt, completion, cached, written, written_1h)
    } else {
        let cached = if prompt > 1_024 && rng.chance(400) { prompt / 2 } else { 0 };
        from_openai(prompt, completion, cached)
    }
}

/// Average calls per trace (chat, search and summarize 1-2, agent runs 2-6): spaces the traces so
/// the timeline spans the requested days.
const CALLS_PER_TRACE: f64 = 2.125;
/// Batches being written at once (the store commits concurrent batches together).
const IN_FLIGHT: usize = 4;

/// One batch for the store, and how many calls were generated up to it.
type Batch = (Vec<TraceIn>, Vec<EventIn>, u64);

/// Generates `opts.events` LLM calls grouped into traces, in time order (as live traffic arrives),
/// in batches, with a progress bar. Generation runs on a thread of its own while the store writes
/// the previous batches.
pub async fn generate(store: &Store, project_id: i64, opts: &DemoOptions) -> Result<(), StoreError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(8);
    let opts = DemoOptions { ..*opts };
    let producer = std::thread::spawn(move || produce(&opts, tx));
    let mut writing = tokio::task::JoinSet::new();
    let started = std::time::Instant::now();
    let total = opts.events;
    let mut written = 0u64;
    while let Some((traces, events, made)) = rx.recv().await {
        while writing.len() >= IN_FLIGHT {
            if let Some(done) = writing.join_next().await {
                written = written.max(done.map_err(|e| StoreError::Invalid(e.to_string()))??);
                progress(written, total, started.elapsed().as_secs_f64());
            }
        }
        let store = store.clone();
        writing.spawn(async move { store.ingest(project_id, &traces, &events).await.map(|_| made) });
    }
    while let Some(done) = writing.join_next().await {
        written = written.max(done.map_err(|e| StoreError::Invalid(e.to_string()))??);
        progress(written, total, started.elapsed().as_secs_f64());
    }
    let _ = producer.join();
    eprintln!();
    Ok(())
}

/// The generator: sends batches of about 500 calls until `opts.events` are made.
fn produce(opts: &DemoOptions, tx: tokio::sync::mpsc::Sender<Batch>) {
    let mut rng = Rng(opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let users = make_users(&mut rng, opts.users);
    let user_cdf = zipf_cdf(users.len());
    let model_cdf: Vec<f64> = MODELS
        .iter()
        .scan(0.0, |acc, (_, _, w)| {
            *acc += *w as f64;
            Some(*acc)
        })
        .collect();
    let now = now_ms();
    let span_ms = i64::from(opts.days) * 86_400_000;
    // Traces start one after another from `span` ago to now, twice as far apart at night (UTC
    // 00-08) as in the working day: mean gap × (1/3 × 2 + 2/3 × 1) per trace on average.
    let traces_expected = (opts.events as f64 / CALLS_PER_TRACE).max(1.0);
    let mean_gap = span_ms as f64 / traces_expected * 0.75;
    let mut clock = (now - span_ms) as f64;
    let run = format!("{:x}", rng.next() & 0xffff_ffff);
    let (mut made, mut trace_no) = (0u64, 0u64);
    let (mut events, mut traces) = (Vec::new(), Vec::new());
    while made < opts.events {
        trace_no += 1;
        let user = &users[sample(&user_cdf, &mut rng)];
        let route = rng.pick(ROUTES);
        let night = ((clock as i64) / 3_600_000) % 24 < 8;
        clock += mean_gap * if night { 2.0 } else { 1.0 } * (0.5 + rng.below(1000) as f64 / 1000.0);
        let start = (clock as i64).min(now - 1);
        let mut tags = BTreeMap::from([
            ("userId".to_string(), user.id.clone()),
            ("plan".to_string(), user.plan.to_string()),
            ("feature".to_string(), route.feature.to_string()),
        ]);
        if let Some(org) = user.org {
            tags.insert("org".into(), org.into());
        }
        let trace_id = format!("demo-{run}-t{trace_no}");
        let calls = if route.feature == "agent" { rng.range(2, 6) } else { rng.range(1, 2) };
        let mut t = start;
        let mut failed = false;
        for c in 0..calls.min(opts.events - made) {
            let (provider, model, _) = MODELS[sample(&model_cdf, &mut rng)];
            let latency = rng.range(250, 9_000) as i64;
            let is_error = rng.chance(25);
            failed |= is_error;
            let exchange = *rng.pick(EXCHANGES);
            let tools = if !route.tools.is_empty() && rng.chance(600) {
                vec![rng.pick(route.tools).to_string()]
            } else {
                Vec::new()
            };
            events.push(EventIn {
                id: format!("{trace_id}-e{c}"),
                trace_id: Some(trace_id.clone()),
                ts_ms: t.min(now - 1),
                kind: "llm".into(),
                provider: provider.into(),
                model: model.into(),
                agent: route.agent.into(),
                route_tag: Some(route.tag.into()),
                tags: tags.clone(),
                usage: if is_error { Usage::default() } else { usage_for(&mut rng, provider, route) },
                latency_ms: Some(latency),
                is_error,
                error: is_error.then(|| {
                    rng.pick(&[
                        "429 rate_limit_exceeded",
                        "529 overloaded_error",
                        "500 internal server error",
                    ])
                    .to_string()
                }),
                tools,
                prompt: Some(
                    serde_json::json!([
                        { "role": "system", "content": format!("You are the {} of an online shop.", route.agent) },
                        { "role": "user", "content": exchange.0 },
                    ])
                    .to_string(),
                ),
                response: (!is_error).then(|| serde_json::json!([{ "role": "assistant", "content": exchange.1 }]).to_string()),
                ..EventIn::default()
            });
            t += latency + rng.range(5, 200) as i64;
            made += 1;
        }
        traces.push(TraceIn {
            id: trace_id,
            route_tag: Some(route.tag.into()),
            tags,
            started_ms: start,
            ended_ms: Some(t.min(now - 1)),
            status: Some(if failed { "error" } else { "ok" }.into()),
        });
        if events.len() >= 500 || made >= opts.events {
            let batch = (std::mem::take(&mut traces), std::mem::take(&mut events), made);
            if tx.blocking_send(batch).is_err() {
                return;
            }
        }
    }
}

fn progress(done: u64, total: u64, secs: f64) {
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    let rate = done as f64 / secs.max(0.001);
    eprint!(
        "\rdemo [{}{}] {done}/{total} events ({:.0}/s)   ",
        "#".repeat(filled),
        "-".repeat(width as usize - filled),
        rate
    );
    let _ = std::io::stderr().flush();
}
