//! Every aggregate the dashboard shows, checked against plain sums over the events that were
//! ingested: random events, every filter kind, three windows.

use super::Store;
use super::ingest::EventIn;
use crate::model::latency::{latency_bucket, latency_bucket_upper};
use crate::model::{Dir, Stack, TraceSort, UserSort, UsersFilter};
use crate::pricing::Usage;
use std::collections::{BTreeMap, BTreeSet};

const HOUR: i64 = 3_600_000;

/// A tiny deterministic generator, so a failure reproduces.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    pub(super) fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next(items.len() as u64) as usize]
    }
}

fn events(now: i64) -> Vec<EventIn> {
    let mut r = Lcg(7);
    let mut out = Vec::new();
    let models = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")];
    for t in 0..900 {
        // Every trace sits inside one hour, so "traces in the window" has one meaning.
        let start = (now / HOUR - 1 - r.next(30 * 24) as i64) * HOUR + r.next(50 * 60_000) as i64;
        let user = (r.next(10) > 0).then(|| format!("u{}", r.next(25)));
        let plan = ["free", "pro", "team"][r.next(3) as usize];
        for e in 0..=r.next(3) {
            let mut tags = BTreeMap::from([("plan".to_string(), plan.to_string())]);
            if let Some(u) = &user {
                tags.insert("userId".into(), u.clone());
            }
            let unpriced = r.next(15) == 0;
            let (provider, model) =
                if unpriced { ("openai", "no-such-model") } else { models[r.next(3) as usize] };
            let tools = match r.next(4) {
                0 => vec!["search".to_string()],
                1 => vec!["search".to_string(), "calc".to_string()],
                _ => Vec::new(),
            };
            // Some calls so big that an hour's row sums pass 32 bits (stored as more rows).
            let huge = t % 50 == 0;
            out.push(EventIn {
                id: format!("e{t}-{e}"),
                trace_id: Some(format!("t{t}")),
                ts_ms: start + e as i64 * 1000,
                kind: "llm".into(),
                provider: provider.into(),
                model: model.into(),
                agent: ["", "planner", "writer"][r.next(3) as usize].into(),
                tags,
                usage: Usage {
                    input: r.next(5000) + if huge { 3_000_000_000 } else { 0 },
                    output: r.next(900),
                    cache_read: r.next(700),
                    cache_creation: r.next(300),
                    ..Usage::default()
                },
                cost_override_nano: (!unpriced).then(|| r.next(3_000_000) as i64 + 1),
                latency_ms: Some(100 + r.next(4000) as i64 + if huge { 2_500_000_000 } else { 0 }),
                is_error: r.next(40) == 0,
                tools,
                ..EventIn::default()
            });
        }
    }
    out
}

/// The filter a check applies, and the same test written over one event.
struct Case {
    name: &'static str,
    filter: UsersFilter,
}

fn matches(f: &UsersFilter, e: &EventIn) -> bool {
    e.ts_ms >= f.from_ms
        && e.ts_ms < f.to_ms
        && f.user.as_ref().is_none_or(|u| e.tags.get("userId") == Some(u))
        && f.provider.as_ref().is_none_or(|p| &e.provider == p)
        && f.agent.as_ref().is_none_or(|a| &e.agent == a)
        && f.tags.iter().all(|(k, v)| e.tags.get(k) == Some(v))
}

fn cost(e: &EventIn) -> i64 {
    e.cost_override_nano.unwrap_or(0)
}

fn tokens(e: &EventIn) -> i64 {
    (e.usage.input + e.usage.output + e.usage.cache_read + e.usage.cache_creation) as i64
}

#[tokio::test]
async fn every_aggregate_matches_sums_over_the_events() {
    let dir = super::scratch_dir("aggregates");
    let store = Store::open_with_aggregate(&dir.join("t.db")).await.expect("open");
    let project = store.ensure_project("p").await.expect("project");
    let now = 1_800_000_000_000 / HOUR * HOUR;
    let all = events(now);
    for chunk in all.chunks(300) {
        store.ingest(project, &[], chunk).await.expect("ingest");
    }

    let mut cases = Vec::new();
    for days in [1, 7, 28] {
        let base = UsersFilter { from_ms: now - days * 24 * HOUR, to_ms: now, ..UsersFilter::default() };
        cases.push(Case { name: "window", filter: base.clone() });
        cases.push(Case {
            name: "tag",
            filter: UsersFilter { tags: vec![("plan".into(), "pro".into())], ..base.clone() },
        });
        // A user with calls in this window.
        let user = all
            .iter()
            .find(|e| matches(&base, e) && e.tags.contains_key("userId"))
            .map(|e| e.tags["userId"].clone());
        cases.push(Case { name: "user", filter: UsersFilter { user, ..base.clone() } });
        cases.push(Case {
            name: "provider",
            filter: UsersFilter { provider: Some("anthropic".into()), ..base.clone() },
        });
        cases.push(Case {
            name: "agent+tag",
            filter: UsersFilter {
                agent: Some("planner".into()),
                tags: vec![("plan".into(), "team".into())],
                ..base.clone()
            },
        });
    }

    for Case { name, filter: f } in &cases {
        let days = (f.to_ms - f.from_ms) / (24 * HOUR);
        let ctx = format!("{name} over {days}d");
        let picked: Vec<&EventIn> = all.iter().filter(|e| matches(f, e)).collect();
        assert!(!picked.is_empty(), "{ctx}: the case selects some events");

        // Overview KPIs and the chart.
        let o = store.overview(project, f, Stack::Model).await.expect("overview");
        let k = &o.current;
        assert_eq!(k.spend_nano, picked.iter().map(|e| cost(e)).sum::<i64>(), "{ctx}: spend");
        assert_eq!(k.calls, picked.len() as i64, "{ctx}: calls");
        assert_eq!(k.tokens, picked.iter().map(|e| tokens(e)).sum::<i64>(), "{ctx}: tokens");
        assert_eq!(k.errors, picked.iter().filter(|e| e.is_error).count() as i64, "{ctx}: errors");
        assert_eq!(
            k.unpriced,
            picked.iter().filter(|e| e.cost_override_nano.is_none()).count() as i64,
            "{ctx}: unpriced"
        );
        let users: BTreeSet<&String> = picked.iter().filter_map(|e| e.tags.get("userId")).collect();
        assert_eq!(k.active_users, users.len() as i64, "{ctx}: active users");
        let traces: BTreeSet<&String> = picked.iter().filter_map(|e| e.trace_id.as_ref()).collect();
        assert_eq!(k.traces, traces.len() as i64, "{ctx}: traces");
        for stack in [Stack::Model, Stack::Provider] {
            let o = store.overview(project, f, stack).await.expect("overview");
            let charted: i64 = o.spend_by_model.series.iter().flat_map(|(_, v)| v.iter()).sum();
            assert_eq!(charted, k.spend_nano, "{ctx}: the {stack:?} chart adds up to the spend");
            let names: BTreeSet<&str> = picked
                .iter()
                .filter(|e| cost(e) > 0)
                .map(|e| if stack == Stack::Model { e.model.as_str() } else { e.provider.as_str() })
                .collect();
            assert_eq!(o.spend_by_model.series.len(), names.len(), "{ctx}: one {stack:?} series each");
        }

        // Models.
        let models = store.list_models(project, f).await.expect("models").models;
        let mut want: BTreeMap<&str, (i64, i64, i64, i64, BTreeSet<&String>)> = BTreeMap::new();
        for e in &picked {
            let w = want.entry(&e.model).or_default();
            w.0 += 1;
            w.1 += cost(e);
            w.2 += e.usage.cache_read as i64;
            w.3 += i64::from(e.is_error);
            w.4.extend(e.tags.get("userId"));
        }
        let want: BTreeMap<&str, (i64, i64, i64, i64, Option<i64>)> =
            want.into_iter().map(|(m, w)| (m, (w.0, w.1, w.2, w.3, Some(w.4.len() as i64)))).collect();
        let got: BTreeMap<&str, (i64, i64, i64, i64, Option<i64>)> = models
            .iter()
            .map(|m| (m.model.as_str(), (m.calls, m.spend_nano, m.cache_read_tokens, m.errors, m.users)))
            .collect();
        assert_eq!(got, want, "{ctx}: models");
        // Percentiles: the bucket holding the nearest-rank call, from whichever source.
        for m in &models {
            let mut lat: Vec<i64> =
                picked.iter().filter(|e| e.model == m.model).filter_map(|e| e.latency_ms).collect();
            lat.sort_unstable();
            let rank = |pm: usize| lat[((lat.len() * pm).div_ceil(1000)).max(1) - 1];
            let bucketed = |ms: i64| latency_bucket_upper(latency_bucket(ms));
            assert_eq!(m.p50_latency_ms, Some(bucketed(rank(500))), "{ctx}: p50 of {}", m.model);
            assert_eq!(m.p95_latency_ms, Some(bucketed(rank(950))), "{ctx}: p95 of {}", m.model);
        }

        // Tools: a call with two tools counts for both.
        let tools = store.list_tools(project, f).await.expect("tools");
        type ToolSums<'a> = (i64, BTreeSet<&'a String>, BTreeSet<&'a String>, i64);
        let mut want: BTreeMap<&str, ToolSums> = BTreeMap::new();
        for e in &picked {
            for tool in &e.tools {
                let w = want.entry(tool).or_default();
                w.0 += 1;
                w.1.extend(e.tags.get("userId"));
                w.2.extend(e.trace_id.as_ref());
                w.3 += cost(e);
            }
        }
        let want: BTreeMap<&str, (i64, i64, i64, i64)> =
            want.into_iter().map(|(t, (c, u, tr, s))| (t, (c, u.len() as i64, tr.len() as i64, s))).collect();
        let got: BTreeMap<&str, (i64, i64, i64, i64)> =
            tools.iter().map(|t| (t.tool.as_str(), (t.calls, t.users, t.traces, t.spend_nano))).collect();
        assert_eq!(got, want, "{ctx}: tools");

        // Users: every user's spend, calls and tokens.
        let page = store.list_users(project, f, UserSort::User, Dir::Asc, 0, 500).await.expect("users");
        let mut want: BTreeMap<&str, (i64, i64, i64, BTreeSet<&String>)> = BTreeMap::new();
        for e in &picked {
            if let Some(u) = e.tags.get("userId") {
                let w = want.entry(u).or_default();
                w.0 += cost(e);
                w.1 += 1;
                w.2 += tokens(e);
                w.3.extend(e.trace_id.as_ref());
            }
        }
        let want: BTreeMap<&str, (i64, i64, i64, i64)> =
            want.into_iter().map(|(u, w)| (u, (w.0, w.1, w.2, w.3.len() as i64))).collect();
        let got: BTreeMap<&str, (i64, i64, i64, i64)> = page
            .users
            .iter()
            .map(|u| (u.user_id.as_str(), (u.spend_nano, u.events, u.tokens, u.traces)))
            .collect();
        assert_eq!(got, want, "{ctx}: users");
        assert_eq!(page.total_users, users.len() as i64, "{ctx}: user count");

        // Traces: count and each trace's totals (a trace's totals are all its calls).
        let page =
            store.list_traces(project, f, None, TraceSort::Started, Dir::Desc, 0, 500).await.expect("traces");
        assert_eq!(page.total_traces, traces.len() as i64, "{ctx}: trace count");
        for t in &page.traces {
            let calls: Vec<&EventIn> =
                all.iter().filter(|e| e.trace_id.as_ref() == Some(&t.trace_id)).collect();
            assert_eq!(t.calls, calls.len() as i64, "{ctx}: calls of {}", t.trace_id);
            assert_eq!(
                t.spend_nano,
                calls.iter().map(|e| cost(e)).sum::<i64>(),
                "{ctx}: spend of {}",
                t.trace_id
            );
        }
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_trace_counts_once_per_provider_and_agent_across_batches() {
    let dir = super::scratch_dir("dims");
    let store = Store::open_with_aggregate(&dir.join("t.db")).await.expect("open");
    let project = store.ensure_project("p").await.expect("project");
    let now = 1_800_000_000_000 / HOUR * HOUR;
    let call = |id: &str, provider: &str, agent: &str, minutes: i64| EventIn {
        id: id.into(),
        trace_id: Some("t1".into()),
        ts_ms: now - minutes * 60_000,
        kind: "llm".into(),
        provider: provider.into(),
        model: "m".into(),
        agent: agent.into(),
        tags: BTreeMap::from([("userId".to_string(), "u".to_string())]),
        cost_override_nano: Some(1),
        ..EventIn::default()
    };
    store.ingest(project, &[], &[call("a", "openai", "x", 50)]).await.expect("batch 1");
    let second = [call("b", "openai", "y", 40), call("c", "anthropic", "x", 30)];
    store.ingest(project, &[], &second).await.expect("batch 2");
    store.ingest(project, &[], &second).await.expect("batch 2 again");
    let base = UsersFilter { from_ms: now - 24 * HOUR, to_ms: now, ..UsersFilter::default() };
    for (provider, agent, want) in [
        (Some("openai"), None, 1),
        (Some("anthropic"), None, 1),
        (None, Some("x"), 1),
        (None, Some("y"), 1),
        (Some("openai"), Some("x"), 1),
        (Some("anthropic"), Some("y"), 0),
        (Some("google"), None, 0),
    ] {
        let f = UsersFilter {
            provider: provider.map(String::from),
            agent: agent.map(String::from),
            ..base.clone()
        };
        let o = store.overview(project, &f, Stack::Model).await.expect("overview");
        assert_eq!(o.current.traces, want, "{provider:?} {agent:?}");
        let users = store.list_users(project, &f, UserSort::Spend, Dir::Desc, 0, 10).await.expect("users");
        assert_eq!(users.users.iter().map(|u| u.traces).sum::<i64>(), want, "{provider:?} {agent:?} users");
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A call stored after its trace but timed before it (a late retry) doesn't move the trace's
/// start; once retention removes that call, the Traces list under its provider no longer shows
/// the trace (its providers are re-derived from the calls left), while the trace itself stays.
#[tokio::test]
async fn retention_re_derives_the_providers_the_traces_list_filters_on() {
    let dir = super::scratch_dir("trace-mask");
    let store = Store::open_with_aggregate(&dir.join("t.db")).await.expect("open");
    let project = store.ensure_project("p").await.expect("project");
    let day = 24 * HOUR;
    let now = 1_800_000_000_000 / day * day + 5 * HOUR;
    let cutoff = (now / day - 2) * day;
    let call = |id: &str, provider: &str, ts_ms: i64| EventIn {
        id: id.into(),
        trace_id: Some("t1".into()),
        ts_ms,
        kind: "llm".into(),
        provider: provider.into(),
        model: "m".into(),
        tags: BTreeMap::from([("userId".to_string(), "u".to_string())]),
        cost_override_nano: Some(1),
        ..EventIn::default()
    };
    store.ingest(project, &[], &[call("a", "openai", cutoff + HOUR)]).await.expect("batch 1");
    store.ingest(project, &[], &[call("b", "anthropic", cutoff - HOUR)]).await.expect("late call");
    let listed = |provider: &'static str| {
        let f = UsersFilter {
            from_ms: now - 28 * day,
            to_ms: now,
            provider: Some(provider.into()),
            ..UsersFilter::default()
        };
        let store = store.clone();
        async move {
            let got = store
                .list_traces(project, &f, None, TraceSort::Started, Dir::Desc, 0, 50)
                .await
                .expect("list");
            let sql = store
                .list_traces_sql(project, &f, None, TraceSort::Started, Dir::Desc, 0, 50)
                .await
                .expect("sql");
            assert_eq!(got, sql, "{provider}: the trace index and SQL agree");
            got.traces.iter().map(|t| (t.trace_id.clone(), t.calls)).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("anthropic").await, vec![("t1".to_string(), 2)]);
    store.apply_retention(project, 2, now).await.expect("retention");
    assert_eq!(listed("anthropic").await, Vec::<(String, i64)>::new(), "its only anthropic call is gone");
    assert_eq!(listed("openai").await, vec![("t1".to_string(), 2)], "the trace stays, with its totals");
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
