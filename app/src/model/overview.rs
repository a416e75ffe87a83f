//! The Overview: KPIs of a window and the one before it, spend over time, top users and models.

use super::users::UserRow;
use serde::{Deserialize, Serialize};

/// Totals of one window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Kpis {
    pub spend_nano: i64,
    pub traces: i64,
    pub calls: i64,
    pub tokens: i64,
    pub active_users: i64,
    pub errors: i64,
    pub unpriced: i64,
}

/// Spend per time bucket, one series per model (or provider), largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpendSeries {
    /// Bucket length: an hour (1d windows) or a day.
    pub bucket_ms: i64,
    /// Start of each bucket, ms since the epoch.
    pub buckets: Vec<i64>,
    /// (name, nano-USD per bucket).
    pub series: Vec<(String, Vec<i64>)>,
}

/// One model's totals in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelRow {
    pub provider: String,
    pub model: String,
    pub calls: i64,
    /// Distinct end users who called the model; `None` in the Overview's top models.
    pub users: Option<i64>,
    pub errors: i64,
    pub unpriced: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    #[cfg_attr(feature = "ssr", schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$"))]
    pub spend_usd: String,
    pub spend_nano: i64,
    /// Mean latency of the calls, ms.
    pub avg_latency_ms: i64,
    /// Median latency (ms, rounded up to a histogram bucket, so within 15 % above); `None` when
    /// no call had a latency (and in the Overview's top models).
    pub p50_latency_ms: Option<i64>,
    /// 95th-percentile latency, like `p50_latency_ms`.
    pub p95_latency_ms: Option<i64>,
}

/// Everything the Overview shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Overview {
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub from: String,
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub to: String,
    pub current: Kpis,
    /// The window of the same length just before.
    pub previous: Kpis,
    pub spend_by_model: SpendSeries,
    pub top_users: Vec<UserRow>,
    pub top_models: Vec<ModelRow>,
}

/// A view as a dashboard page shows it: with its spend chart drawn on the server (SVG; empty
/// when nothing was spent). The read API answers the view alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charted<T> {
    pub view: T,
    pub chart_svg: String,
}

/// Colours of chart series, in order (the legend and the SVG use the same).
pub const SERIES_COLORS: [&str; 7] =
    ["#1f5fbf", "#e07b00", "#2e9d5b", "#b0306a", "#7a54c4", "#0f8fa3", "#8a8f98"];

/// One tool's use in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ToolRow {
    pub tool: String,
    /// LLM calls that used the tool.
    pub calls: i64,
    pub users: i64,
    pub traces: i64,
    #[cfg_attr(feature = "ssr", schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$"))]
    pub spend_usd: String,
    /// Spend of the calls that used it (a call with two tools counts for both).
    pub spend_nano: i64,
}

/// Values seen in a window, offered by the Provider and Agent filter menus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterValues {
    pub providers: Vec<String>,
    pub agents: Vec<String>,
    /// The window's biggest spenders, most first.
    pub users: Vec<String>,
}

/// The Models view: per-model totals and spend by model over time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelsView {
    pub models: Vec<ModelRow>,
    pub spend_by_model: SpendSeries,
}
