//! Segments: spend and traffic grouped by the values of one tag key (`plan`, `org`, ...).

use serde::{Deserialize, Serialize};

/// One value of the grouping key, or the calls that don't carry the key (`value: None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SegmentRow {
    pub value: Option<String>,
    #[cfg_attr(feature = "ssr", schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$"))]
    pub spend_usd: String,
    pub spend_nano: i64,
    /// Share of the view's spend, in tenths of a percent (0–1000).
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1000))]
    pub share_permille: i64,
    pub users: i64,
    pub traces: i64,
    pub calls: i64,
    pub errors: i64,
    pub unpriced_events: i64,
    pub tokens: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
}

/// The segments of a window, by spend (then calls, then value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SegmentsView {
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub from: String,
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub to: String,
    /// The tag key grouped by.
    pub by: String,
    pub segments: Vec<SegmentRow>,
    /// Values with calls in the window; `segments` holds the biggest when a limit cut it.
    #[serde(default)]
    pub total_segments: i64,
    /// Tag keys seen in the project, for the key picker.
    pub keys: Vec<String>,
}
