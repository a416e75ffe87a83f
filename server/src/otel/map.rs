//! OTLP spans → what tokentally needs from each: its place in the trace, what it says for
//! attribution (tags, route, agent, tool) and, for a GenAI call, the call itself. Pure: no I/O.
//! The mapping is documented in `docs/otel.md`; keep the two in step.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The tag key whose value is the end user.
const USER_TAG: &str = app::store::ingest::USER_TAG;
/// Attribute prefixes whose suffix is a tag key.
const TAG_PREFIXES: [&str; 3] =
    ["tokentally.tag.", "traceloop.association.properties.", "ai.telemetry.metadata."];
/// Attributes whose value is the end user (a `userId` tag under a prefix above wins).
const USER_ATTRS: [&str; 2] = ["user.id", "enduser.id"];
const CALL_OPERATIONS: [&str; 4] = ["chat", "text_completion", "generate_content", "embeddings"];
/// The limits of `/v1/events`, which OTLP calls meet too.
pub use crate::http::ingest::MAX_TAGS;
use crate::http::ingest::{
    MAX_AGE_MS, MAX_COST_USD, MAX_ERROR, MAX_FUTURE_MS, MAX_LATENCY_MS, MAX_NAME, MAX_TAG_KEY, MAX_TAG_VALUE,
    MAX_TOKENS,
};

/// What one span says for the attribution of the calls in its trace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SpanContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub name: String,
    /// Its own tags and its resource's (its own win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `gen_ai.agent.name` of an `invoke_agent` span (or of a call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `gen_ai.tool.name` of an `execute_tool` span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    /// The instrumentation scope that made the span.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// When the span is a call: what tells it apart, kept after the call is stored so a later
    /// span of the same call (another instrumentation's) is known for a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallKey>,
}

/// What identifies a call across the spans two instrumentations make of it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CallKey {
    pub provider: String,
    pub model: String,
    pub output: u64,
    /// Input, cache reads and cache writes together (however the span split them).
    pub input_total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// How much the span reports (cache counts, prompt, response): the richer span is kept.
    pub detail: u8,
}

impl Call {
    pub fn key(&self) -> CallKey {
        CallKey {
            provider: self.provider.clone(),
            model: self.model.clone(),
            output: self.output,
            input_total: self.input + self.cache_read + self.cache_creation,
            response_id: self.response_id.clone(),
            detail: u8::from(self.cache_read > 0)
                + u8::from(self.cache_creation > 0)
                + u8::from(self.prompt.is_some())
                + u8::from(self.response.is_some()),
        }
    }
}

/// A GenAI call as mapped from its span, waiting for its trace's attribution.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Call {
    pub provider: String,
    pub model: String,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    #[serde(default)]
    pub reasoning: u64,
    pub latency_ms: i64,
    pub is_error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// A cost the instrumentation reported (OpenLIT's `gen_ai.usage.cost`), shown, never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost_usd: Option<String>,
    /// The input count was smaller than the cached tokens it should include: set to 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clamped: bool,
    /// The provider's id of the answer (`gen_ai.response.id`): two spans of one call share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

/// One span of an export, mapped.
#[derive(Debug)]
pub struct Mapped {
    pub trace_id: String,
    pub span_id: String,
    pub is_root: bool,
    pub context: SpanContext,
    /// A GenAI call, or why a GenAI span was refused.
    pub call: Option<Result<Call, String>>,
}

/// An export, mapped: every span with valid ids, and the GenAI spans without them (refused).
pub fn map_request(req: &ExportTraceServiceRequest, now_ms: i64) -> Vec<Mapped> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes[..]);
        let resource_tags = tags_of(resource);
        let resource_provider = Attrs::new(resource).first_str(&PROVIDER_ATTRS);
        for ss in &rs.scope_spans {
            let (scope, version) =
                ss.scope.as_ref().map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
            for span in &ss.spans {
                let from = Source {
                    resource_tags: &resource_tags,
                    resource_provider: resource_provider.as_deref(),
                    scope,
                    version,
                };
                out.extend(map_span(span, &from, now_ms));
            }
        }
    }
    out
}

/// Where a span's provider may be named, in order.
const PROVIDER_ATTRS: [&str; 3] = ["gen_ai.provider.name", "gen_ai.system", "ai.model.provider"];

/// What a span takes from the resource and scope it came in.
struct Source<'a> {
    resource_tags: &'a BTreeMap<String, String>,
    resource_provider: Option<&'a str>,
    scope: &'a str,
    version: &'a str,
}

/// Attributes by key (the last one wins, as in the SDKs).
struct Attrs<'a>(BTreeMap<&'a str, &'a any_value::Value>);

impl<'a> Attrs<'a> {
    fn new(kvs: &'a [KeyValue]) -> Self {
        Attrs(
            kvs.iter().filter_map(|kv| Some((kv.key.as_str(), kv.value.as_ref()?.value.as_ref()?))).collect(),
        )
    }
    fn str(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(|v| scalar_text(v)).filter(|s| !s.is_empty())
    }
    fn first_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.str(k))
    }
    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    /// A token count: an integer, an integral double, or a decimal string; `Err` names a bad one.
    fn count(&self, keys: &[&str]) -> Result<Option<u64>, String> {
        for k in keys {
            let Some(v) = self.0.get(k) else { continue };
            let n = match v {
                any_value::Value::IntValue(i) => u64::try_from(*i).ok(),
                any_value::Value::DoubleValue(d) if d.fract() == 0.0 && *d >= 0.0 && *d <= 9.0e15 => {
                    Some(*d as u64)
                }
                any_value::Value::StringValue(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            return match n {
                Some(n) if n <= MAX_TOKENS => Ok(Some(n)),
                Some(_) => Err(format!("{k} is more than {MAX_TOKENS}")),
                None => Err(format!("{k} is not a non-negative integer")),
            };
        }
        Ok(None)
    }
}

fn scalar_text(v: &any_value::Value) -> Option<String> {
    match v {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

/// An attribute value as JSON (structured values keep their shape).
pub fn to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(to_json).collect()),
        Some(any_value::Value::KvlistValue(l)) => Value::Object(
            l.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, to_json)))
                .collect(),
        ),
        Some(any_value::Value::BytesValue(b)) => Value::String(format!("<{} bytes>", b.len())),
        Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
    }
}

/// Tags named by attributes: the prefixed ones, and the user. Values that are too long and keys
/// out of bounds are left out (a span's attribution is best effort; a call is never refused for
/// another span's tags).
pub fn tags_of(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    let attrs = Attrs::new(kvs);
    let mut tags = BTreeMap::new();
    if let Some(user) = attrs.first_str(&USER_ATTRS) {
        tags.insert(USER_TAG.to_string(), user);
    }
    for (k, v) in &attrs.0 {
        let Some(key) = TAG_PREFIXES.iter().find_map(|p| k.strip_prefix(p)) else { continue };
        let Some(value) = scalar_text(v) else { continue };
        tags.insert(key.to_string(), value);
    }
    tags.retain(|k, v| {
        (1..=MAX_TAG_KEY).contains(&k.chars().count()) && v.chars().count() <= MAX_TAG_VALUE && !v.is_empty()
    });
    cap_tags(&mut tags);
    tags
}

/// At most [`MAX_TAGS`] tags: the last keys go, never the user.
pub fn cap_tags(tags: &mut BTreeMap<String, String>) {
    while tags.len() > MAX_TAGS {
        let Some(last) = tags.keys().rev().find(|k| k.as_str() != USER_TAG).cloned() else { break };
        tags.remove(&last);
    }
}

/// A trace or span id: the right length and not all zeros (the specification's invalid id).
fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|b| *b != 0)
}

/// A name cut to [`MAX_NAME`] characters.
fn clip(s: &str) -> String {
    s.chars().take(MAX_NAME).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ms(nanos: u64) -> i64 {
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// The W3C flags bits that say whether the parent is in another process (OTLP 1.1+).
const PARENT_KNOWN_MASK: u32 = 0x100;
const PARENT_REMOTE_MASK: u32 = 0x200;

/// One span, or `None` when its ids are invalid and it is no call (it cannot be placed in a
/// trace); a GenAI span with invalid ids comes back refused.
fn map_span(span: &Span, from: &Source, now_ms: i64) -> Option<Mapped> {
    let attrs = Attrs::new(&span.attributes);
    let parent = (!span.parent_span_id.is_empty() && span.parent_span_id.iter().any(|b| *b != 0))
        .then(|| hex(&span.parent_span_id));
    let remote_parent =
        span.flags & PARENT_KNOWN_MASK != 0 && span.flags & PARENT_REMOTE_MASK != 0 && parent.is_some();
    let mut tags = from.resource_tags.clone();
    tags.extend(tags_of(&span.attributes));
    let status_error = span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
    let error_type = attrs.str("error.type");
    let operation = attrs.str("gen_ai.operation.name").map(|o| o.to_ascii_lowercase());
    let context = SpanContext {
        parent: parent.clone(),
        start_ms: ms(span.start_time_unix_nano),
        end_ms: ms(span.end_time_unix_nano.max(span.start_time_unix_nano)),
        name: clip(&span.name),
        tags,
        route: attrs.str("http.route").as_deref().map(clip),
        agent: match operation.as_deref() {
            Some("invoke_agent") | Some("create_agent") => {
                attrs.str("gen_ai.agent.name").as_deref().map(clip)
            }
            _ => None,
        },
        tool: (operation.as_deref() == Some("execute_tool"))
            .then(|| attrs.str("gen_ai.tool.name"))
            .flatten()
            .as_deref()
            .map(clip),
        error: status_error || error_type.is_some(),
        scope: clip(from.scope),
        call: None,
    };
    let call = is_call(&attrs, operation.as_deref()).then(|| {
        call_of(span, &attrs, from, now_ms).map(|mut c| {
            c.is_error = context.error;
            if c.is_error {
                c.error = span
                    .status
                    .as_ref()
                    .map(|s| s.message.clone())
                    .filter(|m| !m.is_empty())
                    .or(error_type)
                    .map(|m| m.chars().take(MAX_ERROR).collect());
            }
            c
        })
    });
    let mut context = context;
    if let Some(Ok(c)) = &call {
        context.agent = attrs.str("gen_ai.agent.name").as_deref().map(clip);
        context.call = Some(c.key());
    }
    if !(valid_id(&span.trace_id, 16) && valid_id(&span.span_id, 8)) {
        return call.map(|_| Mapped {
            trace_id: String::new(),
            span_id: String::new(),
            is_root: false,
            context: SpanContext::default(),
            call: Some(Err("a GenAI span without a valid trace or span id".into())),
        });
    }
    Some(Mapped {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        is_root: parent.is_none() || remote_parent,
        context,
        call,
    })
}

/// Where each token bucket may be named, first present wins (see `docs/otel.md`).
const INPUT_TOKENS: [&str; 5] = [
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.usage.prompt_tokens",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
];
const OUTPUT_TOKENS: [&str; 5] = [
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.completion_tokens",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
];

/// Whether a span is an LLM call (see `docs/otel.md`, "Which spans are calls").
fn is_call(attrs: &Attrs, operation: Option<&str>) -> bool {
    if let Some(op) = operation {
        if CALL_OPERATIONS.contains(&op) {
            return true;
        }
        if op == "execute_tool" || op == "invoke_agent" || op == "create_agent" {
            return false;
        }
    }
    // The Vercel AI SDK: only the provider call (`ai.generateText.doGenerate`, ...) is a call;
    // the outer `ai.generateText` span sums its steps.
    if let Some(op) = attrs.str("ai.operationId") {
        return op.ends_with(".doGenerate") || op.ends_with(".doStream") || op.ends_with(".doEmbed");
    }
    let has_usage = INPUT_TOKENS.iter().chain(&OUTPUT_TOKENS).any(|k| attrs.has(k));
    has_usage
        && (attrs.has("gen_ai.system") || attrs.has("llm.request.type") || attrs.has("gen_ai.provider.name"))
}

/// Our provider name (the price table's) for an OpenTelemetry provider or system value.
pub fn provider_name(raw: &str) -> String {
    let p = raw.trim().to_ascii_lowercase();
    let alias = |p: &str| -> Option<&'static str> {
        Some(match p {
            "openai" => "openai",
            "anthropic" => "anthropic",
            "aws.bedrock" | "amazon-bedrock" | "bedrock" => "bedrock",
            "az.ai.openai" | "azure.ai.openai" | "azure_openai" | "azure-openai" | "azure" => "azure",
            "az.ai.inference" | "azure.ai.inference" | "azure_ai" => "azure_ai",
            "gcp.vertex_ai" | "vertex_ai" | "vertexai" | "google.vertex" | "google-vertex" => "vertex_ai",
            "gcp.gemini" | "gcp.gen_ai" | "gemini" | "google" | "google.generative-ai" => "gemini",
            "mistral_ai" | "mistralai" | "mistral" => "mistral",
            "x_ai" | "xai" => "xai",
            "deepseek" => "deepseek",
            "groq" => "groq",
            "cohere" => "cohere",
            _ => return None,
        })
    };
    if let Some(a) = alias(&p) {
        return a.to_string();
    }
    // The AI SDK names the provider and its API: `openai.chat`, `anthropic.messages`.
    let mut head = p.as_str();
    while let Some((h, _)) = head.rsplit_once('.') {
        if let Some(a) = alias(h) {
            return a.to_string();
        }
        head = h;
    }
    p
}

/// Whether this instrumentation's `input_tokens` for this provider already leaves the cached
/// tokens out (Anthropic's raw count) instead of including them as the conventions say.
pub fn input_excludes_cache(scope: &str, version: &str, provider: &str, v6_details: bool) -> bool {
    let major = version.split('.').next().and_then(|m| m.parse::<u32>().ok());
    match scope {
        // OpenLIT reports each provider's own numbers.
        s if s.starts_with("openlit") => provider == "anthropic",
        // AI SDK 5 passed Anthropic's raw count; 6 and later follow the conventions. Its tracer
        // carries no version, so the 6-only usage breakdown tells them apart.
        "ai" => provider == "anthropic" && !v6_details && major.is_none_or(|m| m < 6),
        _ => false,
    }
}

/// Messages as JSON text: a string holding JSON is that JSON; any other value its JSON form.
fn json_text(v: &AnyValue) -> String {
    match to_json(v) {
        Value::String(s) => serde_json::from_str::<Value>(&s).unwrap_or(Value::String(s)).to_string(),
        other => other.to_string(),
    }
}

/// A prompt or response from the span: the current JSON attributes, the older indexed ones, or
/// the older span events.
fn content(span: &Span, attrs: &Attrs, side: &str) -> Option<String> {
    let (current, indexed, event, event_attr, ai) = if side == "input" {
        (
            "gen_ai.input.messages",
            "gen_ai.prompt.",
            "gen_ai.content.prompt",
            "gen_ai.prompt",
            "ai.prompt.messages",
        )
    } else {
        (
            "gen_ai.output.messages",
            "gen_ai.completion.",
            "gen_ai.content.completion",
            "gen_ai.completion",
            "ai.response.text",
        )
    };
    for key in [current, ai] {
        if let Some(v) =
            span.attributes.iter().rev().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
        {
            return Some(json_text(v));
        }
    }
    // gen_ai.prompt.0.role, gen_ai.prompt.0.content, ...
    let mut items: BTreeMap<u32, serde_json::Map<String, Value>> = BTreeMap::new();
    for (k, v) in &attrs.0 {
        let Some(rest) = k.strip_prefix(indexed) else { continue };
        let Some((i, field)) = rest.split_once('.') else { continue };
        let (Ok(i), Some(text)) = (i.parse::<u32>(), scalar_text(v)) else { continue };
        items.entry(i).or_default().insert(field.to_string(), Value::String(text));
    }
    if !items.is_empty() {
        return Some(Value::Array(items.into_values().map(Value::Object).collect()).to_string());
    }
    span.events.iter().find(|e| e.name == event).and_then(|e| {
        e.attributes.iter().find(|kv| kv.key == event_attr).and_then(|kv| kv.value.as_ref()).map(json_text)
    })
}

fn call_of(span: &Span, attrs: &Attrs, from: &Source, now_ms: i64) -> Result<Call, String> {
    let raw_provider = attrs
        .first_str(&PROVIDER_ATTRS)
        .or_else(|| from.resource_provider.map(str::to_string))
        .ok_or("a GenAI span without gen_ai.provider.name or gen_ai.system")?;
    let provider = provider_name(&raw_provider);
    let model = attrs
        .first_str(&[
            "gen_ai.response.model",
            "gen_ai.request.model",
            "ai.response.model",
            "ai.model.id",
            "llm.response.model",
            "llm.request.model",
        ])
        .ok_or("a GenAI span without gen_ai.response.model or gen_ai.request.model")?;
    if provider.chars().count() > MAX_NAME || model.chars().count() > MAX_NAME {
        return Err(format!("a provider or model name longer than {MAX_NAME} characters"));
    }
    let start = ms(span.start_time_unix_nano);
    if start <= 0 {
        return Err("a GenAI span without a start time".into());
    }
    if start > now_ms + MAX_FUTURE_MS {
        return Err("a GenAI span that starts more than 24 hours in the future".into());
    }
    if start < now_ms.saturating_sub(MAX_AGE_MS) {
        return Err("a GenAI span that starts more than 10 years in the past".into());
    }
    let input = attrs.count(&INPUT_TOKENS)?;
    let output = attrs.count(&OUTPUT_TOKENS)?;
    let cache_read = attrs.count(&[
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "ai.usage.cachedInputTokens",
        "ai.usage.inputTokenDetails.cacheReadTokens",
    ])?;
    let cache_creation = attrs.count(&[
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "ai.usage.inputTokenDetails.cacheWriteTokens",
    ])?;
    let reasoning =
        attrs.count(&["gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"])?;
    let (cache_read, cache_creation) = (cache_read.unwrap_or(0), cache_creation.unwrap_or(0));
    let raw_input = input.unwrap_or(0);
    let cached = cache_read + cache_creation;
    let v6_details = attrs.0.keys().any(|k| k.starts_with("ai.usage.inputTokenDetails."));
    let (input, clamped) = if input_excludes_cache(from.scope, from.version, &provider, v6_details) {
        (raw_input, false)
    } else {
        (raw_input.saturating_sub(cached), raw_input < cached)
    };
    let output = output.unwrap_or(0);
    let usage = app::pricing::Usage { input, output, cache_read, cache_creation, cache_creation_1h: 0 };
    if !crate::http::ingest::cost_within_cap(&provider, &model, &usage, None) {
        return Err(format!("a GenAI span whose tokens price to more than ${MAX_COST_USD}"));
    }
    let end = ms(span.end_time_unix_nano.max(span.start_time_unix_nano));
    Ok(Call {
        provider,
        model,
        input,
        output,
        cache_read,
        cache_creation,
        reasoning: reasoning.unwrap_or(0).min(output),
        latency_ms: (end - start).clamp(0, MAX_LATENCY_MS),
        is_error: false,
        error: None,
        prompt: content(span, attrs, "input"),
        response: content(span, attrs, "output"),
        reported_cost_usd: attrs.str("gen_ai.usage.cost").filter(|c| c.len() <= 64),
        clamped,
        response_id: attrs
            .first_str(&["gen_ai.response.id", "ai.response.id"])
            .filter(|r| r.len() <= MAX_NAME),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }
    fn s(k: &str, v: &str) -> KeyValue {
        kv(k, any_value::Value::StringValue(v.into()))
    }
    fn i(k: &str, v: i64) -> KeyValue {
        kv(k, any_value::Value::IntValue(v))
    }

    fn request(scope: &str, version: &str, attrs: Vec<KeyValue>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: scope.into(),
                        version: version.into(),
                        ..Default::default()
                    }),
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_250_000_000,
                        attributes: attrs,
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// A chat call's attributes without usage.
    fn chat_attrs() -> Vec<KeyValue> {
        vec![s("gen_ai.operation.name", "chat"), s("gen_ai.system", "openai"), s("gen_ai.request.model", "m")]
    }

    fn call(scope: &str, version: &str, attrs: Vec<KeyValue>) -> Result<Call, String> {
        let mut m = map_request(&request(scope, version, attrs), 1_800_000_000_000);
        m.pop().and_then(|m| m.call).unwrap_or_else(|| Err("not a call".into()))
    }

    #[test]
    fn conventions_input_includes_the_cache_and_is_split_into_buckets() {
        let c = call(
            "opentelemetry.instrumentation.anthropic",
            "0.40.0",
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.system", "Anthropic"),
                s("gen_ai.request.model", "claude-3-5-sonnet"),
                i("gen_ai.usage.input_tokens", 1_300),
                i("gen_ai.usage.output_tokens", 40),
                i("gen_ai.usage.cache_read_input_tokens", 1_000),
                i("gen_ai.usage.cache_creation_input_tokens", 200),
            ],
        )
        .expect("a call");
        assert_eq!(
            (c.provider.as_str(), c.input, c.output, c.cache_read, c.cache_creation),
            ("anthropic", 100, 40, 1_000, 200)
        );
        assert_eq!(c.latency_ms, 250);
        assert!(!c.clamped);
    }

    #[test]
    fn openlit_anthropic_input_excludes_the_cache() {
        let c = call(
            "openlit.otel.tracing",
            "1.30.0",
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.system", "anthropic"),
                s("gen_ai.request.model", "claude-3-5-sonnet"),
                i("gen_ai.usage.input_tokens", 100),
                i("gen_ai.usage.cache_read_input_tokens", 1_000),
                s("gen_ai.usage.cost", "0.0042"),
            ],
        )
        .expect("a call");
        assert_eq!((c.input, c.cache_read), (100, 1_000));
        assert_eq!(c.reported_cost_usd.as_deref(), Some("0.0042"));
    }

    #[test]
    fn an_input_smaller_than_its_cache_is_clamped_not_negative() {
        let c = call(
            "x",
            "",
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.response.model", "gpt-4o"),
                i("gen_ai.usage.input_tokens", 10),
                i("gen_ai.usage.cache_read.input_tokens", 50),
            ],
        )
        .expect("a call");
        assert_eq!((c.input, c.cache_read, c.clamped), (0, 50, true));
    }

    #[test]
    fn vercel_ai_sdk_counts_the_provider_call_not_the_outer_span() {
        let outer = call(
            "ai",
            "5.0.0",
            vec![
                s("ai.operationId", "ai.generateText"),
                s("ai.model.provider", "openai.chat"),
                i("ai.usage.promptTokens", 5),
            ],
        );
        assert!(outer.is_err());
        let inner = call(
            "ai",
            "5.0.0",
            vec![
                s("ai.operationId", "ai.generateText.doGenerate"),
                s("ai.model.provider", "openai.chat"),
                s("ai.model.id", "gpt-4o-mini"),
                s("ai.usage.promptTokens", "12"),
                i("ai.usage.completionTokens", 7),
            ],
        )
        .expect("a call");
        assert_eq!(
            (inner.provider.as_str(), inner.model.as_str(), inner.input, inner.output),
            ("openai", "gpt-4o-mini", 12, 7)
        );
    }

    #[test]
    fn ai_sdk_anthropic_input_is_read_as_its_version_sends_it() {
        let attrs = |extra: Vec<KeyValue>| {
            let mut a = vec![
                s("ai.operationId", "ai.generateText.doGenerate"),
                s("ai.model.provider", "anthropic.messages"),
                s("ai.model.id", "claude-sonnet-4-5"),
                i("ai.usage.inputTokens", 100),
                i("ai.usage.cachedInputTokens", 1_000),
            ];
            a.extend(extra);
            a
        };
        // The SDK's tracer has no version: 5 (raw Anthropic input, without the cache) ...
        let v5 = call("ai", "", attrs(vec![])).expect("a call");
        assert_eq!((v5.input, v5.cache_read, v5.clamped), (100, 1_000, false));
        // ... unless the span has 6's breakdown (input includes the cache).
        let v6 = call(
            "ai",
            "",
            vec![
                s("ai.operationId", "ai.generateText.doGenerate"),
                s("ai.model.provider", "anthropic.messages"),
                s("ai.model.id", "claude-sonnet-4-5"),
                i("ai.usage.inputTokens", 1_100),
                i("ai.usage.inputTokenDetails.cacheReadTokens", 1_000),
            ],
        )
        .expect("a call");
        assert_eq!((v6.input, v6.cache_read), (100, 1_000));
    }

    #[test]
    fn all_zero_ids_are_refused_and_the_user_survives_the_tag_cap() {
        let mut req = request("x", "", chat_attrs());
        req.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![0; 16];
        let m = map_request(&req, 1_800_000_000_000);
        assert!(matches!(m.as_slice(), [Mapped { call: Some(Err(_)), .. }]));
        let mut many: Vec<KeyValue> = (0..100).map(|n| s(&format!("tokentally.tag.k{n:03}"), "v")).collect();
        many.push(s("tokentally.tag.userId", "u"));
        let tags = tags_of(&many);
        assert_eq!(tags.len(), MAX_TAGS);
        assert_eq!(tags.get("userId").map(String::as_str), Some("u"));
    }

    #[test]
    fn providers_map_to_the_price_table_names() {
        for (raw, ours) in [
            ("az.ai.openai", "azure"),
            ("aws.bedrock", "bedrock"),
            ("Anthropic", "anthropic"),
            ("xai", "xai"),
            ("gcp.vertex_ai", "vertex_ai"),
            ("anthropic.messages", "anthropic"),
            ("mistral_ai", "mistral"),
            ("somebody.new", "somebody.new"),
        ] {
            assert_eq!(provider_name(raw), ours, "{raw}");
        }
    }

    #[test]
    fn bad_counts_and_missing_models_are_refused_with_a_reason() {
        let mut attrs = chat_attrs();
        attrs.push(i("gen_ai.usage.input_tokens", -3));
        let bad = call("x", "", attrs);
        assert!(bad.expect_err("refused").contains("gen_ai.usage.input_tokens"));
        let no_model = call("x", "", vec![s("gen_ai.operation.name", "chat"), s("gen_ai.system", "openai")]);
        assert!(no_model.expect_err("refused").contains("model"));
    }

    #[test]
    fn tags_come_from_every_prefix_and_the_user_attributes() {
        let tags = tags_of(&[
            s("enduser.id", "u-1"),
            s("tokentally.tag.plan", "pro"),
            s("traceloop.association.properties.org", "acme"),
            i("ai.telemetry.metadata.tier", 3),
            s("gen_ai.conversation.id", "not-a-user"),
        ]);
        let want: BTreeMap<String, String> =
            [("userId", "u-1"), ("plan", "pro"), ("org", "acme"), ("tier", "3")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
        assert_eq!(tags, want);
        // A userId tag under a prefix wins over user.id.
        let tags = tags_of(&[s("user.id", "a"), s("tokentally.tag.userId", "b")]);
        assert_eq!(tags.get("userId").map(String::as_str), Some("b"));
    }

    #[test]
    fn prompts_come_from_json_indexed_attributes_or_events() {
        let c = call(
            "x",
            "",
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.system", "openai"),
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.input.messages", r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#),
                s("gen_ai.completion.0.role", "assistant"),
                s("gen_ai.completion.0.content", "hello"),
            ],
        )
        .expect("a call");
        assert_eq!(
            c.prompt.as_deref(),
            Some(r#"[{"parts":[{"content":"hi","type":"text"}],"role":"user"}]"#)
        );
        assert_eq!(c.response.as_deref(), Some(r#"[{"content":"hello","role":"assistant"}]"#));
    }
}
