//! A trace's kept spans → the calls to store: each call's tags from its ancestors, its agent,
//! the tools run after it, the route of its root; one call reported by two spans counted once.
//! Pure: no I/O. Near-linear in the trace's spans (each ancestor chain is walked once; tag maps
//! stay capped; duplicates are compared only among overlapping spans of one group).

use super::map::{Call, CallKey, SpanContext, cap_tags};
use app::pricing::Usage;
use app::store::ingest::{EventIn, TraceIn};
use app::store::otel::WaitingSpan;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Deepest ancestor chain followed (a deeper one counts as broken there).
const MAX_DEPTH: usize = 256;
/// Most `execute_tool` spans of one trace given to calls.
const MAX_TOOL_SPANS: usize = 1_000;

/// What a trace's resolution stores.
#[derive(Debug, Default)]
pub struct Resolution {
    pub trace: Option<TraceIn>,
    pub events: Vec<EventIn>,
    /// The (trace, span) ids of the calls in `events`, and of those left out as duplicates.
    pub spans: Vec<(String, String)>,
    /// Call spans left out because another span of the trace reports the same call.
    pub duplicates: usize,
}

struct Node {
    ctx: SpanContext,
    is_root: bool,
}

/// What a span has from itself and the spans above it.
#[derive(Clone)]
struct Up<'a> {
    tags: BTreeMap<String, String>,
    agent: Option<String>,
    /// The topmost span reached, and whether it is a root (no link missing on the way, and
    /// at most [`MAX_DEPTH`] spans up).
    top: &'a str,
    complete: bool,
    depth: usize,
}

/// Each span's [`Up`], every ancestor chain walked once.
fn ups<'a>(nodes: &'a HashMap<&'a str, Node>) -> HashMap<&'a str, Up<'a>> {
    let mut memo: HashMap<&'a str, Up<'a>> = HashMap::with_capacity(nodes.len());
    for &start in nodes.keys() {
        if memo.contains_key(start) {
            continue;
        }
        // Up from `start` to a span already known, a root, a missing parent or a cycle.
        let mut path: Vec<&'a str> = Vec::new();
        let mut on_path: HashSet<&'a str> = HashSet::new();
        let mut cur = start;
        let mut base: Option<Up<'a>> = None;
        while let Some(n) = nodes.get(cur) {
            path.push(cur);
            on_path.insert(cur);
            if n.is_root {
                break;
            }
            let Some((&p, _)) = n.ctx.parent.as_deref().and_then(|p| nodes.get_key_value(p)) else { break };
            if let Some(known) = memo.get(p) {
                base = Some(known.clone());
                break;
            }
            if on_path.contains(p) {
                break;
            }
            cur = p;
        }
        for &id in path.iter().rev() {
            let n = &nodes[id];
            let up = match base.take() {
                Some(above) => {
                    let mut tags = above.tags;
                    tags.extend(n.ctx.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                    // The same tags as capping at the end: the cap keeps the first keys.
                    cap_tags(&mut tags);
                    Up {
                        tags,
                        agent: n.ctx.agent.clone().or(above.agent),
                        top: above.top,
                        complete: above.complete && above.depth < MAX_DEPTH,
                        depth: above.depth + 1,
                    }
                }
                None => Up {
                    tags: n.ctx.tags.clone(),
                    agent: n.ctx.agent.clone(),
                    top: id,
                    complete: n.is_root,
                    depth: 0,
                },
            };
            base = Some(up.clone());
            memo.insert(id, up);
        }
    }
    memo
}

/// Whether two models name the same one (a dated id and its alias).
fn same_model(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Call spans that report a call another span of the trace (stored or waiting) reports too:
/// a call span with a call span under it (a framework's span around the provider's); and of two
/// sibling spans from two instrumentation scopes with the same provider, model, input and output
/// counts and answer id whose times overlap (a provider SDK's own span beside an
/// instrumentation's), the one already stored, else the one that reports more.
fn duplicates<'a>(nodes: &HashMap<&'a str, Node>, waiting: &HashSet<&'a str>) -> HashSet<&'a str> {
    let mut skip = HashSet::new();
    let key = |id: &str| nodes.get(id).and_then(|n| n.ctx.call.as_ref());
    for (&id, n) in nodes.iter().filter(|(_, n)| n.ctx.call.is_some()) {
        let mut next = n.ctx.parent.as_deref();
        let mut depth = 0;
        while let Some(p) = next {
            depth += 1;
            let Some((&pid, pn)) = nodes.get_key_value(p) else { break };
            if depth > MAX_DEPTH || pid == id {
                break;
            }
            if pn.ctx.call.is_some() {
                // Its own walk marks the calls above it.
                skip.insert(pid);
                break;
            }
            next = pn.ctx.parent.as_deref();
        }
    }
    let mut groups: HashMap<(Option<&str>, &str, u64, u64), Vec<&'a str>> = HashMap::new();
    for (&id, n) in nodes {
        if let (Some(k), false) = (&n.ctx.call, skip.contains(id)) {
            groups
                .entry((n.ctx.parent.as_deref(), k.provider.as_str(), k.output, k.input_total))
                .or_default()
                .push(id);
        }
    }
    for mut group in groups.into_values().filter(|g| g.len() > 1) {
        group.sort_by_key(|id| (nodes[id].ctx.start_ms, *id));
        for (i, &a) in group.iter().enumerate() {
            for &b in &group[i + 1..] {
                let (na, nb) = (&nodes[a].ctx, &nodes[b].ctx);
                // Sorted by start: no later span overlaps `a` either.
                if nb.start_ms > na.end_ms {
                    break;
                }
                if skip.contains(a) || skip.contains(b) {
                    continue;
                }
                let (Some(ka), Some(kb)) = (key(a), key(b)) else { continue };
                // One instrumentation makes one span per call: only two scopes can be one call.
                let same = na.scope != nb.scope
                    && same_model(&ka.model, &kb.model)
                    && na.start_ms <= nb.end_ms
                    && nb.start_ms <= na.end_ms
                    && match (&ka.response_id, &kb.response_id) {
                        (Some(x), Some(y)) => x == y,
                        _ => true,
                    };
                if same {
                    skip.insert(if keep_first((a, na, ka), (b, nb, kb), waiting) { b } else { a });
                }
            }
        }
    }
    skip
}

/// Of two spans of one call: a stored one stays; else the one that reports more, else the inner.
fn keep_first(
    a: (&str, &SpanContext, &CallKey),
    b: (&str, &SpanContext, &CallKey),
    waiting: &HashSet<&str>,
) -> bool {
    match (waiting.contains(a.0), waiting.contains(b.0)) {
        (false, true) => true,
        (true, false) => false,
        _ => (a.2.detail, b.1.end_ms - b.1.start_ms) >= (b.2.detail, a.1.end_ms - a.1.start_ms),
    }
}

/// Gives each `execute_tool` span to the call it followed, if that call is counted now: among
/// the call spans (stored or waiting) under the same parent, else the whole trace, the last to
/// end before the tool started, else the nearest.
fn tools_of<'a>(nodes: &HashMap<&'a str, Node>, counted: &HashSet<&'a str>) -> HashMap<&'a str, Vec<String>> {
    let mut tools: HashMap<&'a str, Vec<String>> = HashMap::new();
    if counted.is_empty() {
        return tools;
    }
    let all: Vec<&'a str> = nodes.iter().filter(|(_, n)| n.ctx.call.is_some()).map(|(id, _)| *id).collect();
    let mut by_parent: HashMap<Option<&str>, Vec<&'a str>> = HashMap::new();
    for &c in &all {
        by_parent.entry(nodes[c].ctx.parent.as_deref()).or_default().push(c);
    }
    let mut tool_spans: Vec<&Node> = nodes.values().filter(|n| n.ctx.tool.is_some()).collect();
    tool_spans.sort_by_key(|n| n.ctx.start_ms);
    for t in tool_spans.into_iter().take(MAX_TOOL_SPANS) {
        let pool = by_parent.get(&t.ctx.parent.as_deref()).map_or(all.as_slice(), Vec::as_slice);
        let ctx = |id: &&str| &nodes[*id].ctx;
        let chosen = pool
            .iter()
            .filter(|id| ctx(id).end_ms <= t.ctx.start_ms)
            .max_by_key(|id| (ctx(id).end_ms, **id))
            .or_else(|| pool.iter().min_by_key(|id| ((ctx(id).start_ms - t.ctx.start_ms).abs(), **id)));
        if let (Some(&id), Some(name)) = (chosen.filter(|id| counted.contains(**id)), t.ctx.tool.clone()) {
            let list = tools.entry(id).or_default();
            if !list.contains(&name) && list.len() < 256 {
                list.push(name);
            }
        }
    }
    tools
}

/// Resolves the waiting calls of one trace from all its kept spans: each call whose ancestors
/// are all here up to a root, and each received before `waited_before` (its wait is over).
pub fn resolve(trace_id: &str, kept: &[WaitingSpan], waited_before: Option<i64>) -> Resolution {
    let mut nodes: HashMap<&str, Node> = HashMap::new();
    let mut calls: Vec<(&str, Call)> = Vec::new();
    let mut overdue: HashSet<&str> = HashSet::new();
    for s in kept.iter().filter(|s| s.trace_id == trace_id) {
        let Ok(ctx) = serde_json::from_str::<SpanContext>(&s.context) else { continue };
        if let Some(call) = s.call.as_deref().and_then(|c| serde_json::from_str::<Call>(c).ok()) {
            calls.push((s.span_id.as_str(), call));
            if waited_before.is_some_and(|w| s.received_at < w) {
                overdue.insert(s.span_id.as_str());
            }
        }
        nodes.insert(s.span_id.as_str(), Node { ctx, is_root: s.is_root });
    }
    if calls.is_empty() {
        return Resolution::default();
    }
    let ups = ups(&nodes);
    calls.retain(|(id, _)| overdue.contains(id) || ups.get(id).is_some_and(|u| u.complete));
    calls.sort_by_key(|(id, _)| (nodes.get(id).map_or(0, |n| n.ctx.start_ms), *id));
    let waiting: HashSet<&str> = calls.iter().map(|(id, _)| *id).collect();
    let skip = duplicates(&nodes, &waiting);
    let counted: HashSet<&str> = calls.iter().map(|(id, _)| *id).filter(|id| !skip.contains(id)).collect();
    let mut tools = tools_of(&nodes, &counted);
    // The trace record: from a call whose root has no parent at all (the trace's own root), else
    // one under a root here (a service's own), else the first call (tags left out).
    let record_from = calls
        .iter()
        .filter(|(id, _)| counted.contains(id))
        .filter_map(|(id, _)| ups.get(id).map(|u| (*id, u)))
        .min_by_key(|(_, u)| match (u.complete, nodes[u.top].ctx.parent.is_none()) {
            (true, true) => 0,
            (true, false) => 1,
            _ => 2,
        })
        .map(|(id, _)| id);
    let route_of = |up: &Up| {
        let top = &nodes[up.top];
        top.ctx.route.clone().or_else(|| up.complete.then(|| top.ctx.name.clone())).filter(|r| !r.is_empty())
    };

    let mut out = Resolution::default();
    for (span_id, call) in calls {
        let (Some(node), Some(up)) = (nodes.get(span_id), ups.get(span_id)) else { continue };
        out.spans.push((trace_id.to_string(), span_id.to_string()));
        if skip.contains(span_id) {
            out.duplicates += 1;
            continue;
        }
        let mut tags = up.tags.clone();
        cap_tags(&mut tags);
        let route = route_of(up);
        let mut detail = serde_json::Map::new();
        if call.reasoning > 0 {
            detail.insert("reasoning_tokens".into(), call.reasoning.into());
        }
        if let Some(cost) = &call.reported_cost_usd {
            detail.insert("reported_cost_usd".into(), cost.clone().into());
        }
        if call.clamped {
            detail.insert("input_clamped".into(), true.into());
        }
        if Some(span_id) == record_from {
            // The trace's own tags are its root's: a call's other ancestors speak for it alone.
            let root = up.complete.then(|| &nodes[up.top].ctx);
            out.trace = Some(TraceIn {
                id: trace_id.to_string(),
                route_tag: route.clone(),
                tags: root.map(|r| r.tags.clone()).unwrap_or_default(),
                started_ms: root.map_or(node.ctx.start_ms, |r| r.start_ms.min(node.ctx.start_ms)),
                ended_ms: root.map(|r| r.end_ms.max(r.start_ms)),
                status: root.map(|r| if r.error { "error" } else { "ok" }.to_string()),
            });
        }
        out.events.push(EventIn {
            id: format!("{trace_id}-{span_id}"),
            trace_id: Some(trace_id.to_string()),
            ts_ms: node.ctx.start_ms,
            kind: "llm".into(),
            provider: call.provider,
            model: call.model,
            agent: up.agent.clone().unwrap_or_default(),
            route_tag: route,
            tags,
            usage: Usage {
                input: call.input,
                output: call.output,
                cache_read: call.cache_read,
                cache_creation: call.cache_creation,
                cache_creation_1h: 0,
            },
            cost_override_nano: None,
            latency_ms: Some(call.latency_ms),
            is_error: call.is_error,
            cancelled: false,
            usage_detail: (!detail.is_empty()).then(|| serde_json::Value::Object(detail).to_string()),
            error: call.error,
            tools: tools.remove(span_id).unwrap_or_default(),
            prompt: call.prompt,
            response: call.response,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(
        id: &str,
        parent: Option<&str>,
        start: i64,
        end: i64,
        edit: impl FnOnce(&mut SpanContext),
    ) -> SpanContext {
        let mut c = SpanContext {
            parent: parent.map(str::to_string),
            start_ms: start,
            end_ms: end,
            name: id.to_string(),
            ..SpanContext::default()
        };
        edit(&mut c);
        c
    }

    /// As the handler keeps a span (a call's key in its context).
    fn kept(id: &str, ctx: &SpanContext, call: Option<&Call>) -> WaitingSpan {
        let mut ctx = ctx.clone();
        ctx.call = call.map(Call::key);
        WaitingSpan {
            trace_id: "t".into(),
            span_id: id.into(),
            received_at: 0,
            is_root: ctx.parent.is_none(),
            context: serde_json::to_string(&ctx).expect("json"),
            call: call.map(|c| serde_json::to_string(c).expect("json")),
        }
    }

    fn chat() -> Call {
        Call { provider: "openai".into(), model: "gpt-4o".into(), input: 10, output: 5, ..Call::default() }
    }

    /// An agent run: root (route, user) → invoke_agent (plan) → two calls with a tool between.
    fn trace() -> Vec<WaitingSpan> {
        let root = span("root", None, 0, 100, |c| {
            c.route = Some("/chat".into());
            c.tags.insert("userId".into(), "u1".into());
        });
        let agent = span("agent", Some("root"), 1, 99, |c| {
            c.agent = Some("planner".into());
            c.tags.insert("plan".into(), "pro".into());
        });
        let c1 = span("c1", Some("agent"), 2, 10, |_| {});
        let tool = span("tool", Some("agent"), 11, 20, |c| c.tool = Some("search".into()));
        let c2 = span("c2", Some("agent"), 21, 30, |c| {
            c.tags.insert("plan".into(), "team".into());
        });
        vec![
            kept("c2", &c2, Some(&chat())),
            kept("tool", &tool, None),
            kept("c1", &c1, Some(&chat())),
            kept("agent", &agent, None),
            kept("root", &root, None),
        ]
    }

    #[test]
    fn calls_take_their_ancestors_tags_agent_route_and_tools() {
        let r = resolve("t", &trace(), None);
        assert_eq!(r.events.len(), 2);
        let (c1, c2) = (&r.events[0], &r.events[1]);
        assert_eq!(c1.id, "t-c1");
        assert_eq!(c1.tags.get("userId").map(String::as_str), Some("u1"));
        assert_eq!(c1.tags.get("plan").map(String::as_str), Some("pro"));
        // The nearer span wins.
        assert_eq!(c2.tags.get("plan").map(String::as_str), Some("team"));
        assert_eq!((c1.agent.as_str(), c1.route_tag.as_deref()), ("planner", Some("/chat")));
        assert_eq!(c1.tools, vec!["search".to_string()]);
        assert!(c2.tools.is_empty());
        let t = r.trace.expect("a trace record");
        assert_eq!((t.started_ms, t.ended_ms, t.route_tag.as_deref()), (0, Some(100), Some("/chat")));
    }

    #[test]
    fn the_order_spans_arrive_in_does_not_matter() {
        let mut spans = trace();
        let a = resolve("t", &spans, None);
        spans.reverse();
        let b = resolve("t", &spans, None);
        let key = |r: &Resolution| {
            r.events.iter().map(|e| (e.id.clone(), e.tags.clone(), e.tools.clone())).collect::<Vec<_>>()
        };
        assert_eq!(key(&a), key(&b));
    }

    #[test]
    fn without_its_root_a_trace_waits_unless_forced() {
        let spans: Vec<WaitingSpan> = trace().into_iter().filter(|s| s.span_id != "root").collect();
        assert!(resolve("t", &spans, None).events.is_empty());
        let forced = resolve("t", &spans, Some(i64::MAX));
        assert_eq!(forced.events.len(), 2);
        assert_eq!(forced.events[0].tags.get("plan").map(String::as_str), Some("pro"));
        assert_eq!(forced.events[0].tags.get("userId"), None);
        assert_eq!(forced.events[0].route_tag, None);
    }

    #[test]
    fn two_spans_of_one_call_count_once() {
        let root = span("root", None, 0, 100, |_| {});
        // A provider SDK's own span and an instrumentation's around it, siblings.
        let sdk = span("sdk", Some("root"), 10, 20, |c| c.scope = "com.anthropic.sdk.python".into());
        let inst =
            span("inst", Some("root"), 9, 21, |c| c.scope = "opentelemetry.instrumentation.anthropic".into());
        // Two calls alike in every way from one instrumentation, at once: both count.
        let twin1 = span("twin1", Some("root"), 85, 90, |_| {});
        let twin2 = span("twin2", Some("root"), 85, 90, |_| {});
        // Two scopes but two answers: both count.
        let id = |r: &str| Call { response_id: Some(r.into()), ..chat() };
        let a1 = span("a1", Some("root"), 91, 95, |c| c.scope = "a".into());
        let b1 = span("b1", Some("root"), 91, 95, |c| c.scope = "b".into());
        // The same totals, split better.
        let rich = Call { input: 5, cache_read: 5, ..chat() };
        // A framework's chat span with the provider's chat span under it.
        let outer = span("outer", Some("root"), 30, 60, |_| {});
        let inner = span("inner", Some("outer"), 31, 59, |_| {});
        // Same provider and output but later: another call.
        let later = span("later", Some("root"), 70, 80, |_| {});
        let r = resolve(
            "t",
            &[
                kept("root", &root, None),
                kept("sdk", &sdk, Some(&chat())),
                kept("inst", &inst, Some(&rich)),
                kept("outer", &outer, Some(&chat())),
                kept("inner", &inner, Some(&chat())),
                kept("later", &later, Some(&chat())),
                kept("twin1", &twin1, Some(&chat())),
                kept("twin2", &twin2, Some(&chat())),
                kept("a1", &a1, Some(&id("r1"))),
                kept("b1", &b1, Some(&id("r2"))),
            ],
            None,
        );
        let ids: Vec<&str> = r.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["t-inst", "t-inner", "t-later", "t-twin1", "t-twin2", "t-a1", "t-b1"]);
        assert_eq!(r.duplicates, 2);
        assert_eq!(r.spans.len(), 9, "the left-out spans wait no more either");
    }

    #[test]
    fn a_call_waits_for_its_own_root_not_any_root() {
        // A gateway's root is here; the service's own server span (remote parent) is not yet.
        let gateway = span("gw", None, 0, 100, |c| {
            c.tags.insert("userId".into(), "u1".into());
        });
        let handler = span("handler", Some("svc-root"), 10, 20, |_| {});
        let call = span("c", Some("handler"), 11, 19, |_| {});
        let mut spans = vec![
            kept("gw", &gateway, None),
            kept("handler", &handler, None),
            kept("c", &call, Some(&chat())),
        ];
        assert!(resolve("t", &spans, None).events.is_empty(), "its chain is broken above `handler`");
        let svc_root = span("svc-root", Some("gw"), 5, 30, |c| c.route = Some("/svc".into()));
        let mut root = kept("svc-root", &svc_root, None);
        root.is_root = true;
        spans.push(root);
        let r = resolve("t", &spans, None);
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].route_tag.as_deref(), Some("/svc"));
        let t = r.trace.expect("trace");
        assert!(t.tags.is_empty(), "the trace's tags are its root's");
    }

    #[test]
    fn a_call_already_stored_keeps_its_place_against_a_later_twin() {
        let root = span("root", None, 0, 100, |_| {});
        let a = span("a", Some("root"), 10, 20, |c| c.scope = "one".into());
        let b = span("b", Some("root"), 10, 20, |c| c.scope = "two".into());
        let richer = Call { input: 5, cache_read: 5, ..chat() };
        // `a` was stored earlier: its span is kept without the waiting call.
        let mut stored = kept("a", &a, Some(&chat()));
        stored.call = None;
        let r = resolve("t", &[kept("root", &root, None), stored, kept("b", &b, Some(&richer))], None);
        assert!(r.events.is_empty());
        assert_eq!(r.duplicates, 1);
    }

    #[test]
    fn after_the_wait_only_the_calls_that_waited_it_are_stored() {
        let parent = span("p", Some("gone"), 0, 10, |_| {});
        let (c1, c2) = (span("c1", Some("p"), 1, 2, |_| {}), span("c2", Some("p"), 3, 4, |_| {}));
        let mut late = kept("c2", &c2, Some(&chat()));
        late.received_at = 100;
        let spans = [kept("p", &parent, None), kept("c1", &c1, Some(&chat())), late];
        let ids = |r: Resolution| r.events.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(resolve("t", &spans, Some(50))), vec!["t-c1".to_string()]);
        assert_eq!(ids(resolve("t", &spans, Some(101))).len(), 2);
    }

    #[test]
    fn a_chain_deeper_than_the_limit_is_never_complete_whatever_the_walk_order() {
        // root s0 → s1 → … → s400, a call at depth 120 and one at 300.
        let mut spans: Vec<WaitingSpan> = (0..=400)
            .map(|i| {
                let parent = (i > 0).then(|| format!("s{}", i - 1));
                let ctx = span(&format!("s{i}"), parent.as_deref(), i, i + 1, |c| {
                    c.tags.insert(format!("k{i:03}"), "v".into());
                });
                kept(&format!("s{i}"), &ctx, None)
            })
            .collect();
        for (i, id) in [(120, "c120"), (300, "c300")] {
            let ctx = span(id, Some(&format!("s{i}")), i, i + 1, |_| {});
            spans.push(kept(id, &ctx, Some(&chat())));
        }
        for _ in 0..5 {
            spans.reverse();
            let r = resolve("t", &spans, None);
            let ids: Vec<&str> = r.events.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids, vec!["t-c120"]);
            assert_eq!(r.events[0].tags.len(), super::super::map::MAX_TAGS);
        }
    }

    #[test]
    fn a_parent_cycle_ends() {
        let a = span("a", Some("b"), 0, 1, |_| {});
        let b = span("b", Some("a"), 0, 1, |c| {
            c.tags.insert("plan".into(), "x".into());
        });
        // A malformed trace: resolution ends, never complete, and the call is stored when forced.
        let spans = [kept("a", &a, Some(&chat())), kept("b", &b, None)];
        assert!(resolve("t", &spans, None).events.is_empty());
        assert_eq!(resolve("t", &spans, Some(i64::MAX)).events.len(), 1);
    }

    #[test]
    fn a_long_chain_of_calls_resolves_in_linear_time() {
        // 20,000 spans deep, a call on every one: each is walked once (and at most 256 up).
        let n = 20_000;
        let spans: Vec<WaitingSpan> = (0..n)
            .map(|i| {
                let parent = (i > 0).then(|| format!("s{}", i - 1));
                let ctx = span(&format!("s{i}"), parent.as_deref(), i, i + 1, |_| {});
                kept(&format!("s{i}"), &ctx, Some(&chat()))
            })
            .collect();
        let r = resolve("t", &spans, Some(i64::MAX));
        // Every call but the innermost has a call under it: only the innermost counts.
        assert_eq!((r.events.len(), r.duplicates), (1, n as usize - 1));
    }
}
