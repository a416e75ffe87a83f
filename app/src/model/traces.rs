//! The Traces view, one trace, and one event: rows and sort columns.

use super::query::{SortKey, ViewParams};
use super::users::Dir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Columns the Traces table sorts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TraceSort {
    #[default]
    Started,
    Spend,
    Calls,
    Tokens,
}

impl TraceSort {
    pub const ALL: [TraceSort; 4] =
        [TraceSort::Started, TraceSort::Spend, TraceSort::Calls, TraceSort::Tokens];
}

impl SortKey for TraceSort {
    const ALL: &'static [Self] = &TraceSort::ALL;
    fn as_str(self) -> &'static str {
        match self {
            TraceSort::Started => "started",
            TraceSort::Spend => "spend",
            TraceSort::Calls => "calls",
            TraceSort::Tokens => "tokens",
        }
    }
    fn natural_dir(self) -> Dir {
        Dir::Desc
    }
}

/// The Traces view's parameters.
pub type TracesParams = ViewParams<TraceSort>;

/// One `withTrace` block in a list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TraceRow {
    pub trace_id: String,
    /// RFC 3339.
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub started_at: String,
    pub route_tag: Option<String>,
    pub user_id: Option<String>,
    pub calls: i64,
    pub tokens: i64,
    #[cfg_attr(feature = "ssr", schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$"))]
    pub spend_usd: String,
    pub spend_nano: i64,
    pub unpriced_events: i64,
    pub errors: i64,
    /// From the trace record's start and end, when it has arrived.
    pub duration_ms: Option<i64>,
    /// `ok` or `error`: the trace record's status, else `error` when any call failed.
    pub status: String,
}

/// One page of traces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TracesPage {
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub from: String,
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub to: String,
    pub traces: Vec<TraceRow>,
    pub total_traces: i64,
    pub next_cursor: Option<String>,
}

/// One call as listed in a trace's timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventSummary {
    pub event_id: String,
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub timestamp: String,
    /// Milliseconds after the trace started.
    pub offset_ms: i64,
    pub kind: String,
    pub provider: String,
    pub model: String,
    pub agent: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    /// `None` when unpriced.
    pub cost_nano: Option<i64>,
    pub latency_ms: Option<i64>,
    pub status: String,
    pub tools: Vec<String>,
}

/// A trace with its tags and the timeline of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TraceDetail {
    pub trace: TraceRow,
    pub tags: BTreeMap<String, String>,
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub ended_at: Option<String>,
    /// The trace's calls in time order, one page of them (at most `limit`, 500 by default).
    pub events: Vec<EventSummary>,
    /// Present when more calls follow: pass it as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Calls of a trace's detail per page unless `limit` says otherwise, and at most.
pub const TRACE_CALLS_PAGE: u32 = 500;
pub const TRACE_CALLS_MAX: u32 = 1000;

/// The cursor after a call of a trace's timeline (ordered by time, then id): its time and its
/// id in hex (any text an id may hold stays URL-safe).
pub fn calls_cursor(ts: i64, event_id: &str) -> String {
    let hex: String = event_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{ts}.{hex}")
}

/// Reads a [`calls_cursor`]: `None` when it isn't one.
pub fn parse_calls_cursor(cursor: &str) -> Option<(i64, String)> {
    let (ts, hex) = cursor.split_once('.')?;
    if ts.is_empty() || ts.len() > 15 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let lower_hex = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 1024 || !lower_hex {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    // Bytes that aren't UTF-8 (no id is) still make a position: between ids, as they sort.
    Some((ts.parse().ok()?, String::from_utf8_lossy(&bytes?).into_owned()))
}

/// One call in full.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventDetail {
    pub summary: EventSummary,
    pub trace_id: Option<String>,
    pub route_tag: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub cache_creation_1h_tokens: i64,
    /// Part of `output_tokens` spent on reasoning (0 when the client sent none).
    pub reasoning_tokens: i64,
    /// Part of the input that was audio.
    pub audio_input_tokens: i64,
    /// Part of `output_tokens` that was audio.
    pub audio_output_tokens: i64,
    /// The client estimated the token counts (the provider reported none).
    pub usage_estimated: bool,
    /// `table`, `override` or `unpriced`.
    pub cost_source: String,
    /// A cost the OpenTelemetry instrumentation reported (e.g. OpenLIT's `gen_ai.usage.cost`), in
    /// USD as sent: shown beside ours, never used for spend.
    #[serde(default)]
    pub reported_cost_usd: Option<String>,
    pub error: Option<String>,
    /// The stored JSON text, when privacy allowed it.
    pub prompt: Option<String>,
    pub response: Option<String>,
}

/// A stored prompt or response as the event page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shown {
    /// A list of chat messages: (role, text).
    Messages(Vec<(String, String)>),
    /// Anything else, pretty-printed JSON.
    Json(String),
}

/// The event page's data: the call, and its prompt and response read on the server (so the
/// browser bundle carries no JSON value parser).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPageData {
    pub detail: EventDetail,
    pub prompt: Option<Shown>,
    pub response: Option<Shown>,
}

#[cfg(feature = "ssr")]
mod shown {
    use super::Shown;
    use serde_json::Value;

    /// Text of a message's `content`: a string, or the text parts of an array of blocks.
    fn content_text(content: &Value) -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .map(|p| {
                    match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                        (_, Some(text)) => text.to_string(),
                        (Some("tool_use"), _) => {
                            format!("[tool call: {}]", p.get("name").and_then(Value::as_str).unwrap_or("?"))
                        }
                        _ => p.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    impl Shown {
        /// Reads stored JSON text: a list of chat messages as messages, anything else
        /// pretty-printed.
        pub fn of(json: &str) -> Shown {
            let value: Value = serde_json::from_str(json).unwrap_or(Value::String(json.to_string()));
            match &value {
                Value::Array(items)
                    if !items.is_empty()
                        && items.iter().all(|m| m.get("role").is_some() || m.get("type").is_some()) =>
                {
                    Shown::Messages(items.iter().map(message).collect())
                }
                Value::String(s) => Shown::Messages(vec![("text".into(), s.clone())]),
                _ => Shown::Json(serde_json::to_string_pretty(&value).unwrap_or_else(|_| json.to_string())),
            }
        }
    }

    /// One chat message: its role (or type) and its text, tool calls included.
    fn message(m: &Value) -> (String, String) {
        let role =
            m.get("role").or_else(|| m.get("type")).and_then(Value::as_str).unwrap_or("message").to_string();
        let mut text = content_text(m.get("content").unwrap_or(&Value::Null));
        for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or("?");
            text.push_str(&format!("\n[tool call: {name}]"));
        }
        if text.is_empty() {
            text = m.to_string();
        }
        (role, text)
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::Shown;

    #[test]
    fn stored_json_is_shown_as_messages_or_pretty_json() {
        let chat = r#"[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"hello"}],"tool_calls":[{"function":{"name":"search"}}]}]"#;
        assert_eq!(
            Shown::of(chat),
            Shown::Messages(vec![
                ("user".into(), "hi".into()),
                ("assistant".into(), "hello\n[tool call: search]".into())
            ])
        );
        assert_eq!(Shown::of(r#""plain""#), Shown::Messages(vec![("text".into(), "plain".into())]));
        assert_eq!(Shown::of(r#"{"a":1}"#), Shown::Json("{\n  \"a\": 1\n}".into()));
        assert_eq!(Shown::of("not json"), Shown::Messages(vec![("text".into(), "not json".into())]));
    }
}
