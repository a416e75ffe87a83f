//! The in-memory aggregate against a plain recompute from the `events` and `traces` tables
//! (SQL `GROUP BY` written here): random corpora, every filter kind and some pairs, windows with
//! hour edges, every Users sort and pages, after ingest (with a re-sent batch), after a restart
//! (rebuild), after deleting users and after retention. Any one derived number off by one fails.

use super::Store;
use super::aggregate_tests::Lcg;
use super::ingest::{EventIn, TraceIn};
use super::traces::TraceList;
use crate::model::latency::{latency_bucket, percentile};
use crate::model::{Dir, Stack, TraceSort, UserSort, UsersFilter};
use crate::pricing::Usage;
use sqlx::{QueryBuilder, Sqlite};
use std::collections::{BTreeMap, HashMap};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// A fixed "now", on no hour boundary.
const NOW: i64 = 1_800_000_000_000 + 37 * 60_000 + 12_345;

const PROVIDERS_MODELS: [(&str, &str); 5] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "no-such-model"),
];
const AGENTS: [&str; 3] = ["", "planner", "writer"];
const TOOLS: [&str; 3] = ["search", "calc", "mail"];
const ROUTES: [&str; 3] = ["POST /chat", "GET /search", "POST /Chat/v2"];

/// A corpus: trace records and calls, in time order (each trace's calls arrive in time order,
/// which is what makes "the trace's first call with X" the earliest one).
fn corpus(seed: u64, traces: usize) -> (Vec<TraceIn>, Vec<EventIn>) {
    let mut r = Lcg(seed);
    let (mut recs, mut calls) = (Vec::new(), Vec::new());
    for t in 0..traces {
        let start = NOW - r.next(33 * DAY as u64) as i64;
        let mut tags = BTreeMap::new();
        if r.next(8) > 0 {
            tags.insert("userId".to_string(), format!("u{}", r.next(30)));
        }
        tags.insert("plan".to_string(), r.pick(&["free", "pro", "team"]).to_string());
        if r.next(2) == 0 {
            tags.insert("org".to_string(), r.pick(&["acme", "globex"]).to_string());
        }
        let trace_id = (r.next(12) > 0).then(|| format!("t{seed}-{t}"));
        // Some traces have a record (sometimes starting before its first call), and their calls
        // then carry no tags of their own: they inherit the record's.
        let record = trace_id.is_some() && r.next(3) == 0;
        if record {
            recs.push(TraceIn {
                id: trace_id.clone().unwrap_or_default(),
                route_tag: Some(r.pick(&ROUTES).to_string()),
                tags: tags.clone(),
                started_ms: start - r.next(2 * HOUR as u64) as i64,
                ended_ms: None,
                status: None,
            });
        }
        let mut ts = start;
        for c in 0..=r.next(4) {
            let (provider, model) = *r.pick(&PROVIDERS_MODELS);
            let mut own = tags.clone();
            // Now and then a call with its own tags inside a trace.
            if r.next(15) == 0 {
                own.insert("plan".to_string(), "team".to_string());
                // Sometimes on behalf of another user (deleting that user takes the call out of
                // this trace).
                if r.next(2) == 0 {
                    own.insert("userId".to_string(), format!("u{}", r.next(30)));
                }
            }
            let tools: Vec<String> = (0..r.next(3)).map(|_| r.pick(&TOOLS).to_string()).collect();
            calls.push(EventIn {
                id: format!("e{seed}-{t}-{c}"),
                trace_id: trace_id.clone(),
                ts_ms: ts.min(NOW - 1),
                kind: "llm".into(),
                provider: provider.into(),
                model: model.into(),
                agent: r.pick(&AGENTS).to_string(),
                tags: if record && r.next(4) > 0 { BTreeMap::new() } else { own },
                route_tag: (r.next(3) == 0).then(|| r.pick(&ROUTES).to_string()),
                usage: Usage {
                    input: r.next(5000),
                    output: r.next(900),
                    cache_read: r.next(700),
                    cache_creation: r.next(300),
                    ..Usage::default()
                },
                cost_override_nano: (r.next(3) == 0).then(|| r.next(3_000_000) as i64 + 1),
                latency_ms: (r.next(10) > 0).then(|| r.next(6000) as i64),
                is_error: r.next(30) == 0,
                tools,
                ..EventIn::default()
            });
            ts += r.next(40 * 60_000) as i64;
        }
    }
    calls.sort_by_key(|e| e.ts_ms);
    (recs, calls)
}

/// `WHERE` conditions of a filter over `events e` (joined to `tag_sets t` on its tag set).
fn push_filter(q: &mut QueryBuilder<Sqlite>, f: &UsersFilter, from_hour: i64, to_hour: i64) {
    q.push(" e.ts >= ").push_bind(from_hour * HOUR).push(" AND e.ts < ").push_bind(to_hour * HOUR);
    push_tag_filter(q, f, "e.tag_set_id");
    if let Some(p) = &f.provider {
        q.push(" AND e.provider = ").push_bind(p.clone());
    }
    if let Some(a) = &f.agent {
        q.push(" AND e.agent = ").push_bind(a.clone());
    }
}

fn push_tag_filter(q: &mut QueryBuilder<Sqlite>, f: &UsersFilter, column: &str) {
    if let Some(u) = &f.user {
        q.push(format!(" AND {column} IN (SELECT id FROM tag_sets WHERE user_id = "))
            .push_bind(u.clone())
            .push(")");
    }
    for (k, v) in &f.tags {
        q.push(format!(" AND {column} IN (SELECT tag_set_id FROM tag_kv WHERE key = "))
            .push_bind(k.clone())
            .push(" AND value = ")
            .push_bind(v.clone())
            .push(")");
    }
}

/// The calls that count a trace under the filter: with no provider or agent filter none (traces
/// are counted by their start, from `traces`); else each trace's earliest call with the filter's
/// provider / agent / both.
fn first_calls_sql(f: &UsersFilter) -> Option<String> {
    let same = match (f.provider.is_some(), f.agent.is_some()) {
        (false, false) => return None,
        (true, false) => "e2.provider = e.provider",
        (false, true) => "e2.agent = e.agent",
        (true, true) => "e2.provider = e.provider AND e2.agent = e.agent",
    };
    Some(format!(
        " AND e.trace_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e2 WHERE e2.trace_id = e.trace_id
           AND {same} AND (e2.ts < e.ts OR (e2.ts = e.ts AND e2.rowid < e.rowid)))"
    ))
}

/// Traces per user (`None`: no user) under the filter, recomputed.
async fn traces_per_user(
    store: &Store,
    f: &UsersFilter,
    from_hour: i64,
    to_hour: i64,
) -> HashMap<Option<String>, i64> {
    let mut q = QueryBuilder::<Sqlite>::new("");
    match first_calls_sql(f) {
        None => {
            q.push("SELECT t.user_id, COUNT(*) FROM traces tr JOIN tag_sets t ON t.id = tr.tag_set_id WHERE tr.started_at >= ")
                .push_bind(from_hour * HOUR)
                .push(" AND tr.started_at < ")
                .push_bind(to_hour * HOUR);
            push_tag_filter(&mut q, f, "tr.tag_set_id");
        }
        Some(first) => {
            q.push("SELECT t.user_id, COUNT(*) FROM events e JOIN tag_sets t ON t.id = e.tag_set_id WHERE ");
            push_filter(&mut q, f, from_hour, to_hour);
            q.push(first);
        }
    }
    q.push(" GROUP BY t.user_id");
    let rows: Vec<(Option<String>, i64)> = q.build_query_as().fetch_all(&store.read).await.expect("traces");
    rows.into_iter().collect()
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct UserExpect {
    user_id: String,
    spend: i64,
    events: i64,
    unpriced: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    last_ts: i64,
    top_model: String,
}

async fn expected_users(store: &Store, f: &UsersFilter, from_hour: i64, to_hour: i64) -> Vec<UserExpect> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "WITH m AS (SELECT t.user_id AS user_id, e.model AS model, COALESCE(SUM(e.cost_nano), 0) AS cost,
           COUNT(*) AS n, SUM(e.cost_nano IS NULL) AS unpriced, SUM(e.input_tokens) AS input,
           SUM(e.output_tokens) AS output, SUM(e.cache_read_tokens) AS cache_read,
           SUM(e.cache_creation_tokens) AS cache_creation, MAX(e.ts) AS last_ts
         FROM events e JOIN tag_sets t ON t.id = e.tag_set_id WHERE t.user_id IS NOT NULL AND ",
    );
    push_filter(&mut q, f, from_hour, to_hour);
    q.push(
        " GROUP BY t.user_id, e.model), r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id
           ORDER BY cost DESC, n DESC, model) AS rn FROM m)
         SELECT user_id, SUM(cost) AS spend, SUM(n) AS events, SUM(unpriced) AS unpriced, SUM(input) AS input,
           SUM(output) AS output, SUM(cache_read) AS cache_read, SUM(cache_creation) AS cache_creation,
           MAX(last_ts) AS last_ts, MAX(CASE WHEN rn = 1 THEN model END) AS top_model
         FROM r GROUP BY user_id",
    );
    q.build_query_as().fetch_all(&store.read).await.expect("users")
}

/// Every check of one filter and window.
async fn check(store: &Store, project: i64, f: &UsersFilter, ctx: &str) {
    let (from_hour, to_hour) = super::window::hours(f);
    let users = expected_users(store, f, from_hour, to_hour).await;
    let traces = traces_per_user(store, f, from_hour, to_hour).await;

    // Users: every sort, both directions, pages.
    for sort in UserSort::ALL {
        for dir in [Dir::Desc, Dir::Asc] {
            let mut want: Vec<&UserExpect> = users.iter().collect();
            let t = |u: &UserExpect| traces.get(&Some(u.user_id.clone())).copied().unwrap_or(0);
            want.sort_by(|a, b| {
                let key = |u: &UserExpect| -> (i64, String) {
                    let tokens = u.input + u.output + u.cache_read + u.cache_creation;
                    match sort {
                        UserSort::User => (0, String::new()),
                        UserSort::Spend => (u.spend, String::new()),
                        UserSort::Traces => (t(u), String::new()),
                        UserSort::Events => (u.events, String::new()),
                        UserSort::Tokens => (tokens, String::new()),
                        UserSort::LastSeen => (u.last_ts, String::new()),
                        UserSort::TopModel => (0, u.top_model.clone()),
                    }
                };
                let o = key(a).cmp(&key(b)).then_with(|| a.user_id.cmp(&b.user_id));
                if dir == Dir::Desc { o.reverse() } else { o }
            });
            for (offset, limit) in [(0u32, 500u32), (0, 3), (3, 4), (want.len() as u32 / 2, 5)] {
                let page = store.list_users(project, f, sort, dir, offset, limit).await.expect("users");
                assert_eq!(page.total_users, want.len() as i64, "{ctx} {sort:?}: total users");
                let got: Vec<_> = page.users.iter().map(|u| u.user_id.clone()).collect();
                let expect: Vec<_> = want
                    .iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .map(|u| u.user_id.clone())
                    .collect();
                assert_eq!(got, expect, "{ctx} {sort:?} {dir:?} {offset}+{limit}: order");
                for row in &page.users {
                    let u = users.iter().find(|u| u.user_id == row.user_id).expect("a known user");
                    let c = format!("{ctx} {sort:?} user {}", u.user_id);
                    assert_eq!(row.spend_nano, u.spend, "{c}: spend");
                    assert_eq!(row.events, u.events, "{c}: events");
                    assert_eq!(row.unpriced_events, u.unpriced, "{c}: unpriced");
                    assert_eq!(
                        (
                            row.input_tokens,
                            row.output_tokens,
                            row.cache_read_tokens,
                            row.cache_creation_tokens
                        ),
                        (u.input, u.output, u.cache_read, u.cache_creation),
                        "{c}: token buckets"
                    );
                    assert_eq!(
                        row.tokens,
                        u.input + u.output + u.cache_read + u.cache_creation,
                        "{c}: tokens"
                    );
                    assert_eq!(row.last_seen, super::window::rfc3339(u.last_ts), "{c}: last seen");
                    assert_eq!(row.top_model, u.top_model, "{c}: top model");
                    assert_eq!(row.traces, t(u), "{c}: traces");
                }
            }
        }
    }

    // Overview KPIs.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT COUNT(*), COALESCE(SUM(e.cost_nano), 0), COALESCE(SUM(e.input_tokens + e.output_tokens
           + e.cache_read_tokens + e.cache_creation_tokens), 0), COALESCE(SUM(e.status = 'error'), 0),
           COALESCE(SUM(e.cost_nano IS NULL), 0), COUNT(DISTINCT t.user_id)
         FROM events e JOIN tag_sets t ON t.id = e.tag_set_id WHERE ",
    );
    push_filter(&mut q, f, from_hour, to_hour);
    let (calls, spend, tokens, errors, unpriced, active): (i64, i64, i64, i64, i64, i64) =
        q.build_query_as().fetch_one(&store.read).await.expect("kpis");
    let o = store.overview(project, f, Stack::Model).await.expect("overview");
    let k = &o.current;
    assert_eq!(
        (k.calls, k.spend_nano, k.tokens, k.errors, k.unpriced, k.active_users),
        (calls, spend, tokens, errors, unpriced, active),
        "{ctx}: overview KPIs (calls, spend, tokens, errors, unpriced, users)"
    );
    assert_eq!(k.traces, traces.values().sum::<i64>(), "{ctx}: overview traces");
    let chart: i64 = o.spend_by_model.series.iter().flat_map(|(_, v)| v.iter()).sum();
    assert_eq!(chart, spend, "{ctx}: the chart's bars add up to the spend");
    // Its top users come from its own scan: the same five as the Users view (checked above).
    let top = store.list_users(project, f, UserSort::Spend, Dir::Desc, 0, 5).await.expect("users");
    assert_eq!(o.top_users, top.users, "{ctx}: overview top users");

    // Models: totals, users, latency percentiles.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT e.provider, e.model, COUNT(*), COALESCE(SUM(e.cost_nano), 0), SUM(e.input_tokens),
           SUM(e.output_tokens), SUM(e.cache_read_tokens), SUM(e.cache_creation_tokens),
           SUM(e.status = 'error'), SUM(e.cost_nano IS NULL), COUNT(DISTINCT t.user_id),
           SUM(COALESCE(e.latency_ms, 0))
         FROM events e JOIN tag_sets t ON t.id = e.tag_set_id WHERE ",
    );
    push_filter(&mut q, f, from_hour, to_hour);
    q.push(" GROUP BY e.provider, e.model");
    type ModelSums = (String, String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let want: Vec<ModelSums> = q.build_query_as().fetch_all(&store.read).await.expect("models");
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT e.provider, e.model, e.latency_ms FROM events e WHERE e.latency_ms IS NOT NULL AND ",
    );
    push_filter(&mut q, f, from_hour, to_hour);
    let lat: Vec<(String, String, i64)> = q.build_query_as().fetch_all(&store.read).await.expect("latency");
    let models = store.list_models(project, f).await.expect("models view").models;
    assert_eq!(models.len(), want.len(), "{ctx}: models");
    for (p, m, n, cost, i, o, cr, cc, err, unp, users, lat_sum) in want {
        let row = models.iter().find(|r| r.provider == p && r.model == m).expect("model row");
        let c = format!("{ctx} model {m}");
        assert_eq!(
            (row.calls, row.spend_nano, row.input_tokens, row.output_tokens, row.cache_read_tokens),
            (n, cost, i, o, cr),
            "{c}"
        );
        assert_eq!((row.cache_creation_tokens, row.errors, row.unpriced), (cc, err, unp), "{c}");
        assert_eq!(row.users, Some(users), "{c}: users");
        assert_eq!(row.avg_latency_ms, lat_sum / n, "{c}: mean latency");
        let mut hist: HashMap<i64, i64> = HashMap::new();
        for (_, _, ms) in lat.iter().filter(|(lp, lm, _)| *lp == p && *lm == m) {
            *hist.entry(latency_bucket(*ms)).or_default() += 1;
        }
        let hist: Vec<(i64, i64)> = hist.into_iter().collect();
        assert_eq!(row.p50_latency_ms, percentile(&hist, 500), "{c}: p50");
        assert_eq!(row.p95_latency_ms, percentile(&hist, 950), "{c}: p95");
    }

    // Tools: calls, users, traces (each trace's first call with the tool under the filter) and spend.
    let same = match (f.provider.is_some(), f.agent.is_some()) {
        (false, false) => "",
        (true, false) => " AND e2.provider = e.provider",
        (false, true) => " AND e2.agent = e.agent",
        (true, true) => " AND e2.provider = e.provider AND e2.agent = e.agent",
    };
    let sql = format!(
        "WITH c AS (SELECT DISTINCT e.rowid AS r, e.trace_id, e.ts, e.provider, e.agent, e.tag_set_id,
           e.cost_nano, j.value AS tool FROM events e, json_each(e.tools) j
           WHERE e.tools IS NOT NULL AND {{}})
         SELECT c.tool, COUNT(*), COUNT(DISTINCT t.user_id), COALESCE(SUM(c.cost_nano), 0),
           SUM(c.trace_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e2, json_each(e2.tools) j2
             WHERE e2.trace_id = c.trace_id AND j2.value = c.tool {same_c}
               AND (e2.ts < c.ts OR (e2.ts = c.ts AND e2.rowid < c.r))))
         FROM c JOIN tag_sets t ON t.id = c.tag_set_id GROUP BY c.tool",
        same_c = same.replace("e.provider", "c.provider").replace("e.agent", "c.agent")
    );
    // The filter goes where the placeholder is.
    let (head, tail) = sql.split_once("{}").expect("placeholder");
    let mut q = QueryBuilder::<Sqlite>::new(head.to_string());
    push_filter(&mut q, f, from_hour, to_hour);
    q.push(tail.to_string());
    let want: Vec<(String, i64, i64, i64, i64)> =
        q.build_query_as().fetch_all(&store.read).await.expect("tools");
    let tools = store.list_tools(project, f).await.expect("tools view");
    assert_eq!(tools.len(), want.len(), "{ctx}: tools");
    for (tool, calls, users, spend, traces) in want {
        let row = tools.iter().find(|t| t.tool == tool).expect("tool row");
        assert_eq!(
            (row.calls, row.users, row.spend_nano, row.traces),
            (calls, users, spend, traces),
            "{ctx} tool {tool}: (calls, users, spend, traces)"
        );
    }

    // Traces: the trace index's pages against the list in SQL alone: every sort, pages, one
    // ascending order, route searches (case-insensitive, the empty one matching all).
    let mut asks: Vec<(TraceSort, Dir, Option<&str>, u32, u32)> = Vec::new();
    for sort in TraceSort::ALL {
        asks.extend([(sort, Dir::Desc, None, 0, 500), (sort, Dir::Desc, None, 7, 7)]);
    }
    let asc = TraceSort::ALL[ctx.len() % TraceSort::ALL.len()];
    asks.extend([
        (asc, Dir::Asc, None, 0, 500),
        (TraceSort::Started, Dir::Desc, Some("chat"), 3, 5),
        (TraceSort::Spend, Dir::Desc, Some(""), 0, 500),
    ]);
    for (sort, dir, search, offset, limit) in asks {
        let got = store.list_traces(project, f, search, sort, dir, offset, limit).await.expect("traces");
        let want =
            store.list_traces_sql(project, f, search, sort, dir, offset, limit).await.expect("traces sql");
        assert_eq!(got, want, "{ctx}: traces by {sort:?} {dir:?}, search {search:?}, {offset}+{limit}");
        // An export from the same offset, in keyset pages of 250 (through the index, or SQL
        // alone where the index can't answer), is the list from there on, each trace once.
        if offset == 0 && dir == Dir::Desc {
            continue; // (each sort is exported from an offset below)
        }
        let all =
            store.list_traces_sql(project, f, search, sort, dir, offset, 1 << 20).await.expect("traces sql");
        let mut exported = Vec::new();
        let mut after = None;
        loop {
            let (rows, next) = store
                .export_traces_page(project, &TraceList { filter: f, search, sort, dir }, offset, after, 250)
                .await
                .expect("export page");
            exported.extend(rows);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
            assert!(exported.len() <= all.traces.len(), "{ctx}: the export moves on");
        }
        assert_eq!(
            exported, all.traces,
            "{ctx}: export by {sort:?} {dir:?}, search {search:?}, from {offset}"
        );
    }

    // Segments by plan, org and userId.
    for by in ["plan", "org", "userId"] {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT kv.value, COUNT(*), COALESCE(SUM(e.cost_nano), 0), SUM(e.input_tokens + e.output_tokens
               + e.cache_read_tokens + e.cache_creation_tokens), COUNT(DISTINCT t.user_id), SUM(e.status = 'error')
             FROM events e JOIN tag_sets t ON t.id = e.tag_set_id
             LEFT JOIN tag_kv kv ON kv.tag_set_id = e.tag_set_id AND kv.key = ",
        );
        q.push_bind(by).push(" WHERE ");
        push_filter(&mut q, f, from_hour, to_hour);
        q.push(" GROUP BY kv.value");
        let want: Vec<(Option<String>, i64, i64, i64, i64, i64)> =
            q.build_query_as().fetch_all(&store.read).await.expect("segments");
        let view = store.segments(project, f, Some(by), None).await.expect("segments view");
        assert_eq!(view.segments.len(), want.len(), "{ctx} by {by}: segments");
        for (value, calls, spend, tokens, users, errors) in want {
            let row = view.segments.iter().find(|s| s.value == value).expect("segment row");
            assert_eq!(
                (row.calls, row.spend_nano, row.tokens, row.users, row.errors),
                (calls, spend, tokens, users, errors),
                "{ctx} by {by} = {value:?}: (calls, spend, tokens, users, errors)"
            );
        }
        // A limited view (by userId: ranked on columns, only the kept users summed) is the
        // full view's first rows, traces and order included.
        for keep in [1, 3, 1000] {
            let page = store.segments(project, f, Some(by), Some(keep)).await.expect("segments page");
            let first: Vec<_> = view.segments.iter().take(keep).cloned().collect();
            assert_eq!(page.segments, first, "{ctx} by {by}: the first {keep}");
            assert_eq!(page.total_segments, view.total_segments, "{ctx} by {by}: total with limit {keep}");
        }
    }
}

fn filters(r: &mut Lcg) -> Vec<(String, UsersFilter)> {
    let windows: Vec<(String, i64, i64)> = vec![
        ("1d".into(), NOW - DAY, NOW),
        ("7d".into(), NOW - 7 * DAY, NOW),
        ("28d".into(), NOW - 28 * DAY, NOW),
        ("hour edges".into(), NOW - 9 * DAY - 17 * 60_000, NOW - 2 * DAY + 59 * 60_000),
        ("one hour".into(), NOW - 5 * HOUR, NOW - 4 * HOUR),
        ("random".into(), NOW - r.next(30 * DAY as u64) as i64 - DAY, NOW - r.next(DAY as u64) as i64),
    ];
    let kinds: Vec<(&str, UsersFilter)> = vec![
        ("all", UsersFilter::default()),
        ("plan=pro", UsersFilter { tags: vec![("plan".into(), "pro".into())], ..UsersFilter::default() }),
        ("org=acme", UsersFilter { tags: vec![("org".into(), "acme".into())], ..UsersFilter::default() }),
        ("openai", UsersFilter { provider: Some("openai".into()), ..UsersFilter::default() }),
        ("agent planner", UsersFilter { agent: Some("planner".into()), ..UsersFilter::default() }),
        ("user u3", UsersFilter { user: Some("u3".into()), ..UsersFilter::default() }),
        (
            "plan=team + anthropic",
            UsersFilter {
                tags: vec![("plan".into(), "team".into())],
                provider: Some("anthropic".into()),
                ..UsersFilter::default()
            },
        ),
        (
            "anthropic + writer",
            UsersFilter {
                provider: Some("anthropic".into()),
                agent: Some("writer".into()),
                ..UsersFilter::default()
            },
        ),
        (
            "user u5 + agent none",
            UsersFilter { user: Some("u5".into()), agent: Some(String::new()), ..UsersFilter::default() },
        ),
        ("unknown tag", UsersFilter { tags: vec![("plan".into(), "nope".into())], ..UsersFilter::default() }),
    ];
    let mut out = Vec::new();
    for (wname, from_ms, to_ms) in &windows {
        for (kname, k) in &kinds {
            out.push((
                format!("{wname} / {kname}"),
                UsersFilter { from_ms: *from_ms, to_ms: *to_ms, ..k.clone() },
            ));
        }
    }
    out
}

async fn check_all(store: &Store, project: i64, seed: u64, stage: &str) {
    // What deleting a user would remove, from the aggregate, against counts in SQL.
    for u in ["u1", "u3", "u7", "nobody"] {
        let (events, traces): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM events e JOIN tag_sets t ON t.id = e.tag_set_id WHERE t.user_id = ?1),
                    (SELECT COUNT(*) FROM traces tr JOIN tag_sets t ON t.id = tr.tag_set_id WHERE t.user_id = ?1)",
        )
        .bind(u)
        .fetch_one(&store.read)
        .await
        .expect("footprint");
        let got = store.user_footprint(project, u).await.expect("footprint");
        assert_eq!((got.events, got.traces), (events, traces), "seed {seed}, {stage}: footprint of {u}");
    }
    let mut r = Lcg(seed ^ 0x5eed);
    for (name, f) in filters(&mut r) {
        check(store, project, &f, &format!("seed {seed}, {stage}, {name}")).await;
    }
}

#[tokio::test]
async fn the_aggregate_equals_a_recompute_from_the_events() {
    for seed in [1u64, 2] {
        let dir = super::scratch_dir(&format!("equiv-{seed}"));
        let path = dir.join("t.db");
        let store = Store::open_with_aggregate(&path).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        let (traces, calls) = corpus(seed, 700);
        // Trace records first (as an SDK flushes them with the calls), calls in batches of 97;
        // one batch sent twice changes nothing. Halfway the aggregate is saved, as `serve` does
        // from time to time; some traces' records come again later with an earlier start and a
        // new route (a record of its own, without calls).
        let saved = Store::aggregate_path(&path);
        store.ingest(project, &traces, &[]).await.expect("traces");
        let chunks: Vec<&[EventIn]> = calls.chunks(97).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            if i == chunks.len() / 2 {
                store.save_aggregate(&saved).await.expect("save while serving");
            }
            store.ingest(project, &[], chunk).await.expect("ingest");
            if i == 3 {
                let again = store.ingest(project, &[], chunk).await.expect("re-send");
                assert_eq!(again.accepted, 0, "a re-sent batch is all duplicates");
            }
        }
        let moved: Vec<TraceIn> = traces
            .iter()
            .step_by(5)
            .map(|t| TraceIn {
                started_ms: t.started_ms - 3 * HOUR,
                route_tag: Some("POST /moved".into()),
                ..t.clone()
            })
            .collect();
        store.ingest(project, &moved, &[]).await.expect("moved records");
        check_all(&store, project, seed, "after ingest").await;

        // A crash (no save at the stop): the next start reads the file saved halfway and then
        // the calls, traces and tag sets stored after it.
        store.close().await;
        let store = Store::open_file(&path).await.expect("reopen");
        assert!(store.load_aggregate(&saved).await.expect("load"), "the file saved halfway is used");
        check_all(&store, project, seed, "after a crash (saved halfway, then the rest replayed)").await;

        // A clean stop saves the aggregate; the next start reads it back.
        store.save_aggregate(&saved).await.expect("save");
        store.close().await;
        let store = Store::open_file(&path).await.expect("reopen");
        assert!(store.load_aggregate(&saved).await.expect("load"), "the saved aggregate is used");
        store.drop_aggregate_token().await.expect("token");
        check_all(&store, project, seed, "after a restart from the saved aggregate").await;
        // Calls another process (the CLI's `demo`) appends while the server is down are
        // replayed at the next start like calls after a crash.
        store.save_aggregate(&saved).await.expect("save");
        store.close().await;
        let cli = Store::open(&path).await.expect("open as the CLI does");
        let extra: Vec<EventIn> = calls
            .iter()
            .step_by(7)
            .map(|e| EventIn {
                id: format!("x{}", e.id),
                trace_id: e.trace_id.as_ref().map(|t| format!("x{t}")),
                ..e.clone()
            })
            .collect();
        cli.ingest(project, &[], &extra).await.expect("another process's calls");
        cli.close().await;
        let store = Store::open_file(&path).await.expect("reopen");
        assert!(store.load_aggregate(&saved).await.expect("load"), "the saved aggregate is used");
        check_all(&store, project, seed, "after calls from another process while stopped").await;

        // Without the file, a start rebuilds the aggregate from the database.
        store.close().await;
        std::fs::remove_file(&saved).expect("remove the saved aggregate");
        let store = Store::open_with_aggregate(&path).await.expect("reopen");
        check_all(&store, project, seed, "after a restart").await;

        // Deleting users takes exactly their share out; a file saved before is not used after.
        store.save_aggregate(&saved).await.expect("save");
        for u in ["u3", "u7"] {
            store.delete_user(project, u, "test").await.expect("delete");
        }
        check_all(&store, project, seed, "after deletions").await;
        let other = Store::open_file(&path).await.expect("open beside");
        assert!(
            !other.load_aggregate(&saved).await.expect("load"),
            "a file saved before a deletion is not used"
        );
        other.close().await;

        // Retention drops whole old days; a file saved before is not used after.
        store.save_aggregate(&saved).await.expect("save");
        store.apply_retention(project, 20, NOW).await.expect("retention");
        check_all(&store, project, seed, "after retention").await;
        // Later calls of traces that deletion and retention cut: a trace whose record went keeps
        // its remaining calls (they give up its seq), and they count with the new ones. They come
        // after every stored call (flags follow arrival order across batches).
        let later: Vec<EventIn> = calls
            .iter()
            .step_by(3)
            .filter(|e| e.trace_id.is_some())
            .map(|e| EventIn { id: format!("late{}", e.id), ts_ms: NOW, ..e.clone() })
            .collect();
        store.ingest(project, &[], &later).await.expect("later calls");
        check_all(&store, project, seed, "after later calls of cut traces").await;
        let other = Store::open_file(&path).await.expect("open beside");
        assert!(
            !other.load_aggregate(&saved).await.expect("load"),
            "a file saved before retention is not used"
        );
        other.close().await;
        store.close().await;
        let store = Store::open_with_aggregate(&path).await.expect("reopen");
        check_all(&store, project, seed, "after retention and a restart").await;
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
