//! `POST /v1/traces` against the real server: OTLP protobuf and JSON exports become the same
//! calls `/v1/events` would store, attributed from their ancestors whatever the order they
//! arrive in, once per span, with the limits and errors the OTLP specification asks for.

mod common;

use common::{TestServer, create_key, file_contains};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode};
use prost::Message;
use serde_json::{Value, json};
use std::io::Write;

fn sa(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}
fn ia(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(v)) }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_nanos_opt().expect("now")).expect("after 1970")
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ns: u64, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + 800_000_000,
        attributes: attrs,
        ..Default::default()
    }
}

fn export(scope: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![sa("service.name", "shop"), sa("tokentally.tag.org", "acme")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: scope.into(),
                    version: "1.0.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A request span (root: route and user) and the chat call under it.
fn root(trace: u8, user: &str, start: u64) -> Span {
    span(
        trace,
        1,
        None,
        "POST /chat",
        start,
        vec![sa("http.route", "/chat"), sa("tokentally.tag.userId", user), sa("tokentally.tag.plan", "pro")],
    )
}
fn chat(
    trace: u8,
    id: u8,
    parent: u8,
    start: u64,
    model: &str,
    (input, output, cache_read): (i64, i64, i64),
) -> Span {
    span(
        trace,
        id,
        Some(parent),
        &format!("chat {model}"),
        start,
        vec![
            sa("gen_ai.operation.name", "chat"),
            sa("gen_ai.system", "openai"),
            sa("gen_ai.request.model", model),
            ia("gen_ai.usage.input_tokens", input),
            ia("gen_ai.usage.output_tokens", output),
            ia("gen_ai.usage.cache_read.input_tokens", cache_read),
        ],
    )
}

async fn post_proto(s: &TestServer, body: Vec<u8>, gzip: bool) -> (u16, Vec<u8>) {
    let mut req = s
        .http
        .post(format!("{}/v1/traces", s.base))
        .bearer_auth(&s.ingest_key)
        .header("content-type", "application/x-protobuf");
    let body = if gzip {
        req = req.header("content-encoding", "gzip");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).expect("gzip");
        enc.finish().expect("gzip")
    } else {
        body
    };
    let resp = req.body(body).send().await.expect("POST /v1/traces");
    let status = resp.status().as_u16();
    assert!(
        status != 200 || resp.headers()["content-type"] == "application/x-protobuf",
        "answered in the request's type"
    );
    (status, resp.bytes().await.expect("body").to_vec())
}

async fn post_json(s: &TestServer, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = s.http.post(format!("{}/v1/traces", s.base)).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.body(body.to_string()).send().await.expect("POST /v1/traces");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn users_of(s: &TestServer, read_key: &str) -> Vec<Value> {
    let resp = s
        .http
        .get(format!("{}/v1/me/ai-apps/users?limit=100", s.base))
        .bearer_auth(read_key)
        .send()
        .await
        .expect("GET users");
    let body: Value = resp.json().await.expect("json");
    body["users"].as_array().cloned().unwrap_or_default()
}

fn row(users: &[Value], user: &str) -> Option<Value> {
    users.iter().find(|u| u["user_id"] == user).map(|u| {
        json!([
            u["spend_nano"],
            u["events"],
            u["traces"],
            u["input_tokens"],
            u["output_tokens"],
            u["cache_read_tokens"],
            u["top_model"]
        ])
    })
}

#[tokio::test]
async fn otlp_protobuf_calls_equal_the_same_calls_through_v1_events() {
    let s = TestServer::start();
    let t0 = now_ns() - 60_000_000_000;
    let req = export(
        "opentelemetry.instrumentation.openai_v2",
        vec![
            chat(7, 2, 1, t0 + 1_000_000, "gpt-4o", (1_200, 300, 1_000)),
            chat(7, 3, 1, t0 + 2_000_000_000, "gpt-4o-mini", (5_000, 40, 0)),
            root(7, "alice", t0),
        ],
    );
    let (status, body) = post_proto(&s, req.encode_to_vec(), true).await;
    assert_eq!(status, 200);
    let answer = ExportTraceServiceResponse::decode(&body[..]).expect("an ExportTraceServiceResponse");
    assert_eq!(answer.partial_success, None, "every span taken");

    // The same calls in another project through /v1/events.
    let ev_ingest = create_key(&s.db, "ingest", "events");
    let ev_read = create_key(&s.db, "read", "events");
    let ts = |ns: u64| chrono::DateTime::from_timestamp_nanos(ns as i64).to_rfc3339();
    let events = json!({ "events": [
        { "id": "a", "trace_id": "t", "timestamp": ts(t0 + 1_000_000), "provider": "openai", "model": "gpt-4o",
          "tags": { "userId": "alice", "plan": "pro", "org": "acme" },
          "usage": { "input_tokens": 200, "output_tokens": 300, "cache_read_tokens": 1000 } },
        { "id": "b", "trace_id": "t", "timestamp": ts(t0 + 2_000_000_000), "provider": "openai", "model": "gpt-4o-mini",
          "tags": { "userId": "alice", "plan": "pro", "org": "acme" },
          "usage": { "input_tokens": 5000, "output_tokens": 40 } } ] });
    let (status, body) = s.post_with(Some(&ev_ingest), &events).await;
    assert_eq!(status, 200, "{body}");

    let otel = row(&users_of(&s, &s.read_key).await, "alice").expect("alice from OTLP");
    let direct = row(&users_of(&s, &ev_read).await, "alice").expect("alice from /v1/events");
    assert_eq!(otel, direct);
    assert!(otel[0].as_i64().is_some_and(|n| n > 0), "priced: {otel}");

    // The call keeps the root's route, the resource's and the root's tags.
    let (status, e) = s.get(&format!("/v1/me/ai-apps/events/{}-{}", "07".repeat(16), "02".repeat(8))).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["route_tag"], "/chat");
    assert_eq!(e["tags"]["org"], "acme");

    // The same export again: counted once.
    let (status, _) = post_proto(&s, req.encode_to_vec(), false).await;
    assert_eq!(status, 200);
    assert_eq!(row(&users_of(&s, &s.read_key).await, "alice"), Some(otel));
}

#[tokio::test]
async fn children_before_parents_wait_for_the_root_and_give_the_same_result() {
    let s = TestServer::start();
    let t0 = now_ns() - 30_000_000_000;
    // Trace 1: the call, then (another request) an agent span, then the root.
    let call = chat(1, 3, 2, t0 + 5_000_000, "gpt-4o", (100, 10, 0));
    let mut agent = span(
        1,
        2,
        Some(1),
        "invoke_agent",
        t0 + 1_000_000,
        vec![sa("gen_ai.operation.name", "invoke_agent"), sa("gen_ai.agent.name", "planner")],
    );
    agent.attributes.push(sa("traceloop.association.properties.plan", "team"));
    let tool = span(
        1,
        4,
        Some(2),
        "execute_tool",
        t0 + 900_000_000,
        vec![sa("gen_ai.operation.name", "execute_tool"), sa("gen_ai.tool.name", "search")],
    );
    let (st, _) = post_proto(&s, export("x", vec![call.clone()]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    assert!(users_of(&s, &s.read_key).await.is_empty(), "the call waits for its trace's root");
    let (st, _) = post_proto(&s, export("x", vec![tool.clone(), agent.clone()]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    assert!(users_of(&s, &s.read_key).await.is_empty(), "still no root");
    let (st, _) = post_proto(&s, export("x", vec![root(1, "bob", t0)]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    // Trace 2: the same spans, parents first, in one request.
    let mut same = vec![root(2, "bob", t0), agent, tool, call];
    for sp in &mut same {
        sp.trace_id = vec![2; 16];
    }
    let (st, _) = post_proto(&s, export("x", same).encode_to_vec(), false).await;
    assert_eq!(st, 200);

    let users = users_of(&s, &s.read_key).await;
    let bob = row(&users, "bob").expect("bob");
    assert_eq!(bob[1], 2, "two calls: {bob}");
    assert_eq!(bob[2], 2, "two traces: {bob}");
    for trace in [1u8, 2] {
        let id = format!("{}-{}", format!("{trace:02x}").repeat(16), "03".repeat(8));
        let (status, e) = s.get(&format!("/v1/me/ai-apps/events/{id}")).await;
        assert_eq!(status, 200, "{e}");
        assert_eq!(e["summary"]["agent"], "planner", "{e}");
        assert_eq!(e["tags"]["plan"], "team", "the nearer span's tag wins: {e}");
        assert_eq!(e["summary"]["tools"], json!(["search"]), "{e}");
        assert_eq!(e["route_tag"], "/chat", "{e}");
    }
}

#[tokio::test]
async fn a_call_whose_root_never_comes_is_stored_after_the_wait() {
    let s = TestServer::start_with(&["--no-login"], &[("TOKENTALLY_OTEL_WAIT_SECS", "1")]);
    let t0 = now_ns() - 10_000_000_000;
    let mut parent = span(9, 2, Some(1), "handler", t0, vec![sa("user.id", "carol")]);
    parent.attributes.push(sa("gen_ai.conversation.id", "conv-1"));
    let (st, _) = post_proto(
        &s,
        export("x", vec![chat(9, 3, 2, t0 + 1, "gpt-4o", (10, 1, 0)), parent]).encode_to_vec(),
        false,
    )
    .await;
    assert_eq!(st, 200);
    let mut found = None;
    for _ in 0..50 {
        found = row(&users_of(&s, &s.read_key).await, "carol");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let carol = found.expect("stored after the wait, attributed from the parent that came");
    assert_eq!(carol[1], 1);
    assert!(row(&users_of(&s, &s.read_key).await, "conv-1").is_none(), "a conversation id is not a user");
}

#[tokio::test]
async fn json_quirks_partial_success_and_refusals() {
    let s = TestServer::start();
    let start = now_ns() - 5_000_000_000;
    // Upper-case hex ids, enums as integers, 64-bit integers as strings, unknown fields.
    let body = json!({ "resourceSpans": [{ "resource": { "attributes": [] }, "futureField": 1, "scopeSpans": [{
        "scope": { "name": "ai", "version": "6.0.0" },
        "spans": [
            { "traceId": "ABCDEF0123456789ABCDEF0123456789", "spanId": "0102030405060708", "name": "ai.generateText.doGenerate",
              "kind": 3, "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string(),
              "status": { "code": 2, "message": "rate limited" },
              "attributes": [
                {"key": "ai.operationId", "value": {"stringValue": "ai.generateText.doGenerate"}},
                {"key": "ai.model.provider", "value": {"stringValue": "anthropic.messages"}},
                {"key": "ai.model.id", "value": {"stringValue": "claude-3-5-sonnet"}},
                {"key": "ai.usage.inputTokens", "value": {"intValue": "1200"}},
                {"key": "ai.usage.outputTokens", "value": {"intValue": 30}},
                {"key": "ai.usage.cachedInputTokens", "value": {"intValue": "1000"}},
                {"key": "ai.telemetry.metadata.userId", "value": {"stringValue": "dana"}} ] },
            { "traceId": "abcdef0123456789abcdef0123456789", "spanId": "1111111111111111", "name": "bad",
              "startTimeUnixNano": start, "endTimeUnixNano": start,
              "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.system", "value": {"stringValue": "openai"}} ] } ] }] }] });
    let (status, answer) = post_json(&s, Some(&s.ingest_key), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 1, "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"].as_str().is_some_and(|m| m.contains("model")),
        "{answer}"
    );
    // The root is the call itself: stored at once. AI SDK 6 input includes the cache.
    let (st, e) = s.get("/v1/me/ai-apps/events/abcdef0123456789abcdef0123456789-0102030405060708").await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["summary"]["status"], "error");
    assert_eq!(e["error"], "rate limited");
    assert_eq!(e["summary"]["provider"], "anthropic");
    assert_eq!(
        [&e["summary"]["input_tokens"], &e["summary"]["cache_read_tokens"], &e["summary"]["output_tokens"]],
        [&json!(200), &json!(1000), &json!(30)],
        "{e}"
    );
    assert_eq!(e["tags"]["userId"], "dana");

    let (st, _) = post_json(&s, None, "{}").await;
    assert_eq!(st, 401);
    let (st, e) = post_json(&s, Some(&s.ingest_key), "{not json").await;
    assert_eq!((st, e["field"].as_str()), (400, Some("body")));
    let (st, body) = post_proto(&s, b"\xff\xff\xff garbage".to_vec(), false).await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("protobuf"));
    // A batch with no GenAI span: taken, nothing stored.
    let http_only = export(
        "opentelemetry.instrumentation.flask",
        vec![span(5, 1, None, "GET /", start, vec![sa("http.route", "/")])],
    );
    let (st, body) = post_proto(&s, http_only.encode_to_vec(), false).await;
    assert_eq!(st, 200);
    assert_eq!(ExportTraceServiceResponse::decode(&body[..]).expect("answer").partial_success, None);
    assert_eq!(users_of(&s, &s.read_key).await.len(), 1, "only dana");
    // 70 MB once inflated: 413, and the server stays up.
    let mut big =
        export("x", vec![span(6, 1, None, "big", start, vec![sa("blob", &"a".repeat(70 * 1024 * 1024))])]);
    big.resource_spans[0].scope_spans[0].spans[0].status =
        Some(Status { code: StatusCode::Ok as i32, message: String::new() });
    let (st, _) = post_proto(&s, big.encode_to_vec(), true).await;
    assert_eq!(st, 413);
    let (st, _) = s
        .http
        .post(format!("{}/v1/traces", s.base))
        .bearer_auth(&s.ingest_key)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("POST");
    assert_eq!(st, 415);
    assert!(s.healthy().await);
}

#[tokio::test]
async fn minimal_privacy_keeps_otlp_prompts_off_the_disk_even_while_waiting() {
    let s = TestServer::start();
    let (ok, out, err) = common::cli(&s.db, &["projects", "set", "default", "--privacy", "minimal"]);
    assert!(ok, "{out}{err}");
    let t0 = now_ns() - 5_000_000_000;
    let mut call = chat(3, 2, 1, t0, "gpt-4o", (10, 1, 0));
    call.attributes
        .push(sa("gen_ai.input.messages", r#"[{"role":"user","content":"secret-otel-prompt-7731"}]"#));
    // No root yet: the call waits in the file, without its prompt.
    let (st, _) = post_proto(&s, export("x", vec![call]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    let (st, _) = post_proto(&s, export("x", vec![root(3, "erin", t0)]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    assert!(row(&users_of(&s, &s.read_key).await, "erin").is_some());
    assert!(!file_contains(&s.db, "secret-otel-prompt-7731"));
}

#[tokio::test]
async fn deleting_a_user_drops_their_waiting_otlp_calls() {
    let s = TestServer::start();
    let admin = create_key(&s.db, "admin", "default");
    let t0 = now_ns() - 5_000_000_000;
    let mut call = chat(4, 3, 2, t0 + 1, "gpt-4o", (10, 1, 0));
    call.attributes
        .push(sa("gen_ai.input.messages", r#"[{"role":"user","content":"frank-secret-prompt-5521"}]"#));
    let handler = span(4, 2, Some(1), "handler", t0, vec![sa("user.id", "frank")]);
    // The root has not come: the call waits, naming frank through its parent.
    let (st, _) = post_proto(&s, export("x", vec![call, handler]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    assert!(file_contains(&s.db, "frank-secret-prompt-5521"), "kept while waiting (full privacy)");
    let resp = s
        .http
        .delete(format!("{}/v1/me/ai-apps/users/frank", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 200);
    let (st, _) = post_proto(&s, export("x", vec![root(4, "frank", t0)]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    // The root alone names frank again, but no call of theirs is left to store.
    assert!(row(&users_of(&s, &s.read_key).await, "frank").is_none());
    assert!(!file_contains(&s.db, "frank-secret-prompt-5521"), "scrubbed from the file");
}

#[tokio::test]
async fn the_instrumentations_own_cost_is_shown_not_used() {
    let s = TestServer::start();
    let t0 = now_ns() - 5_000_000_000;
    let mut call = chat(8, 1, 0, t0, "gpt-4o", (1_000, 100, 0));
    call.parent_span_id.clear();
    call.attributes.push(sa("gen_ai.usage.cost", "0.0042"));
    let (st, _) = post_proto(&s, export("openlit.otel.tracing", vec![call]).encode_to_vec(), false).await;
    assert_eq!(st, 200);
    let id = format!("{}-{}", "08".repeat(16), "01".repeat(8));
    let (st, e) = s.get(&format!("/v1/me/ai-apps/events/{id}")).await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["reported_cost_usd"], "0.0042");
    assert_eq!(e["cost_source"], "table");
    // gpt-4o: 1,000 input at $2.50/M and 100 output at $10/M.
    assert_eq!(e["summary"]["cost_nano"], 3_500_000);
    let page = s.text(&format!("/ai-apps/events/{id}")).await;
    assert!(page.contains("Reported by the instrumentation") && page.contains("$0.0042"), "{page}");
}
