//! A trace's kept spans → the calls to store: each call's tags from its ancestors, its agent,
//! the tools run after it, the route of the trace's root. Pure: no I/O.

use super::map::{Call, MAX_TAGS, SpanContext};
use app::pricing::Usage;
use app::store::ingest::{EventIn, TraceIn};
use app::store::otel::WaitingSpan;
use std::collections::{BTreeMap, HashMap, HashSet};

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

/// How much a call span reports: of two spans of one call, the one that says more is kept.
fn detail_score(c: &Call) -> u8 {
    u8::from(c.cache_read > 0)
        + u8::from(c.cache_creation > 0)
        + u8::from(c.prompt.is_some())
        + u8::from(c.response.is_some())
}

/// Call spans that report a call another span of the trace reports too: a call span with a
/// call span under it (a framework's span around the provider's), and of two sibling spans from
/// two instrumentation scopes, of the same provider, output count and answer id, whose times
/// overlap (a provider SDK's own spans beside an instrumentation's), the one that says less.
fn duplicates<'a>(calls: &[(&'a str, Call)], nodes: &HashMap<&'a str, Node>) -> HashSet<&'a str> {
    let mut skip = HashSet::new();
    let is_call: HashSet<&str> = calls.iter().map(|(id, _)| *id).collect();
    for (id, _) in calls {
        let mut seen = HashSet::from([*id]);
        let mut next = nodes.get(id).and_then(|n| n.ctx.parent.as_deref());
        while let Some(p) = next {
            if !seen.insert(p) {
                break;
            }
            if let Some((&key, _)) = nodes.get_key_value(p).filter(|(k, _)| is_call.contains(*k)) {
                skip.insert(key);
            }
            next = nodes.get(p).and_then(|n| n.ctx.parent.as_deref());
        }
    }
    for (i, (a, ca)) in calls.iter().enumerate() {
        for (b, cb) in &calls[i + 1..] {
            if skip.contains(a) || skip.contains(b) {
                continue;
            }
            let (Some(na), Some(nb)) = (nodes.get(a), nodes.get(b)) else { continue };
            // One instrumentation makes one span per call: only spans of two scopes can be
            // the same call. The provider's answer id decides when both have one.
            let same = na.ctx.scope != nb.ctx.scope
                && na.ctx.parent == nb.ctx.parent
                && ca.provider == cb.provider
                && ca.output == cb.output
                && na.ctx.start_ms <= nb.ctx.end_ms
                && nb.ctx.start_ms <= na.ctx.end_ms
                && match (&ca.response_id, &cb.response_id) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
            if same {
                let len = |n: &Node| n.ctx.end_ms - n.ctx.start_ms;
                // Keep the one that says more; on a tie, the inner (shorter) one.
                let drop_a = (detail_score(ca), -len(na)) < (detail_score(cb), -len(nb));
                skip.insert(if drop_a { *a } else { *b });
            }
        }
    }
    skip
}

struct Node {
    ctx: SpanContext,
    is_root: bool,
}

/// Resolves the waiting calls of one trace from all its kept spans, if it is complete (its root
/// has arrived) or `force` (the wait is over).
pub fn resolve(trace_id: &str, kept: &[WaitingSpan], force: bool) -> Resolution {
    let mut nodes: HashMap<&str, Node> = HashMap::new();
    let mut calls: Vec<(&str, Call)> = Vec::new();
    for s in kept.iter().filter(|s| s.trace_id == trace_id) {
        let Ok(ctx) = serde_json::from_str::<SpanContext>(&s.context) else { continue };
        if let Some(call) = s.call.as_deref().and_then(|c| serde_json::from_str::<Call>(c).ok()) {
            calls.push((s.span_id.as_str(), call));
        }
        nodes.insert(s.span_id.as_str(), Node { ctx, is_root: s.is_root });
    }
    let root = nodes.values().filter(|n| n.is_root).min_by_key(|n| n.ctx.start_ms);
    if calls.is_empty() || (root.is_none() && !force) {
        return Resolution::default();
    }
    calls.sort_by_key(|(id, _)| (nodes.get(id).map_or(0, |n| n.ctx.start_ms), *id));
    let route =
        root.map(|r| r.ctx.route.clone().unwrap_or_else(|| r.ctx.name.clone())).filter(|r| !r.is_empty());

    // Each execute_tool span goes to the call it followed: among the calls under the same
    // parent (else the whole trace), the last to end before the tool started, else the nearest.
    let mut tools: HashMap<&str, Vec<String>> = HashMap::new();
    let mut tool_spans: Vec<&Node> = nodes.values().filter(|n| n.ctx.tool.is_some()).collect();
    tool_spans.sort_by_key(|n| n.ctx.start_ms);
    for t in tool_spans {
        let ctx_of = |id: &str| nodes.get(id).map(|n| &n.ctx);
        let siblings: Vec<&str> = calls
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| ctx_of(id).is_some_and(|c| c.parent == t.ctx.parent))
            .collect();
        let pool: Vec<&str> =
            if siblings.is_empty() { calls.iter().map(|(id, _)| *id).collect() } else { siblings };
        let before = pool
            .iter()
            .filter_map(|id| ctx_of(id).map(|c| (*id, c)))
            .filter(|(_, c)| c.end_ms <= t.ctx.start_ms)
            .max_by_key(|(_, c)| c.end_ms)
            .map(|(id, _)| id);
        let nearest = before.or_else(|| {
            pool.iter()
                .filter_map(|id| ctx_of(id).map(|c| (*id, c)))
                .min_by_key(|(_, c)| (c.start_ms - t.ctx.start_ms).abs())
                .map(|(id, _)| id)
        });
        if let (Some(id), Some(name)) = (nearest, t.ctx.tool.clone()) {
            let list = tools.entry(id).or_default();
            if !list.contains(&name) && list.len() < 256 {
                list.push(name);
            }
        }
    }

    let mut out = Resolution::default();
    let skip = duplicates(&calls, &nodes);
    for (span_id, call) in calls {
        if skip.contains(span_id) {
            out.duplicates += 1;
            out.spans.push((trace_id.to_string(), span_id.to_string()));
            continue;
        }
        let Some(node) = nodes.get(span_id) else { continue };
        // The span and its ancestors, nearest first.
        let mut chain = vec![&node.ctx];
        let mut seen: HashSet<&str> = HashSet::from([span_id]);
        let mut next = node.ctx.parent.as_deref();
        while let Some(p) = next {
            if !seen.insert(p) {
                break;
            }
            let Some(n) = nodes.get(p) else { break };
            chain.push(&n.ctx);
            next = n.ctx.parent.as_deref();
        }
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        for c in chain.iter().rev() {
            tags.extend(c.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        while tags.len() > MAX_TAGS {
            let last = tags.keys().next_back().cloned();
            last.map(|k| tags.remove(&k));
        }
        let agent = chain.iter().find_map(|c| c.agent.clone()).unwrap_or_default();
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
        if out.trace.is_none() {
            out.trace = Some(TraceIn {
                id: trace_id.to_string(),
                route_tag: route.clone(),
                tags: tags.clone(),
                started_ms: root.map_or(node.ctx.start_ms, |r| r.ctx.start_ms.min(node.ctx.start_ms)),
                ended_ms: root.map(|r| r.ctx.end_ms.max(r.ctx.start_ms)),
                status: root.map(|r| if r.ctx.error { "error" } else { "ok" }.to_string()),
            });
        }
        out.events.push(EventIn {
            id: format!("{trace_id}-{span_id}"),
            trace_id: Some(trace_id.to_string()),
            ts_ms: node.ctx.start_ms,
            kind: "llm".into(),
            provider: call.provider,
            model: call.model,
            agent,
            route_tag: route.clone(),
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
        out.spans.push((trace_id.to_string(), span_id.to_string()));
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

    fn kept(id: &str, ctx: &SpanContext, call: Option<&Call>) -> WaitingSpan {
        WaitingSpan {
            trace_id: "t".into(),
            span_id: id.into(),
            received_at: 0,
            is_root: ctx.parent.is_none(),
            context: serde_json::to_string(ctx).expect("json"),
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
        let r = resolve("t", &trace(), false);
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
        let a = resolve("t", &spans, false);
        spans.reverse();
        let b = resolve("t", &spans, false);
        let key = |r: &Resolution| {
            r.events.iter().map(|e| (e.id.clone(), e.tags.clone(), e.tools.clone())).collect::<Vec<_>>()
        };
        assert_eq!(key(&a), key(&b));
    }

    #[test]
    fn without_its_root_a_trace_waits_unless_forced() {
        let spans: Vec<WaitingSpan> = trace().into_iter().filter(|s| s.span_id != "root").collect();
        assert!(resolve("t", &spans, false).events.is_empty());
        let forced = resolve("t", &spans, true);
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
        let rich = Call { cache_read: 5, ..chat() };
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
            false,
        );
        let ids: Vec<&str> = r.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["t-inst", "t-inner", "t-later", "t-twin1", "t-twin2", "t-a1", "t-b1"]);
        assert_eq!(r.duplicates, 2);
        assert_eq!(r.spans.len(), 9, "the left-out spans wait no more either");
    }

    #[test]
    fn a_parent_cycle_ends() {
        let a = span("a", Some("b"), 0, 1, |_| {});
        let b = span("b", Some("a"), 0, 1, |c| {
            c.tags.insert("plan".into(), "x".into());
        });
        let r = resolve("t", &[kept("a", &a, Some(&chat())), kept("b", &b, None)], true);
        assert_eq!(r.events[0].tags.get("plan").map(String::as_str), Some("x"));
    }
}
