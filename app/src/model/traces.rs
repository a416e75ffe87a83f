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
    pub events: Vec<EventSummary>,
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
