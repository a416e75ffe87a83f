//! The spend-over-time chart: the server-rendered SVG with an HTML legend, or an empty state.

use crate::model::{SERIES_COLORS, SpendSeries, format_usd};
use leptos::prelude::*;

/// Stacked spend per bucket, one series per model (or provider), with a legend of totals.
#[component]
pub fn SpendChart(
    /// The data the SVG was drawn from (for the legend).
    series: SpendSeries,
    /// The SVG, rendered on the server by plotters; empty when nothing was spent.
    svg: String,
    /// What a series is: "model" or "provider".
    #[prop(default = "model")]
    by: &'static str,
) -> impl IntoView {
    if svg.is_empty() {
        return view! { <p class="empty" role="status">"No spend in this window: nothing to chart."</p> }
            .into_any();
    }
    let label = format!("Spend over time by {by}, {} series", series.series.len());
    let legend = series
        .series
        .iter()
        .enumerate()
        .map(|(k, (name, values))| {
            let total: i64 = values.iter().sum();
            let swatch = format!("background:{}", SERIES_COLORS[k % SERIES_COLORS.len()]);
            view! { <li><span class="swatch" style=swatch></span>{name.clone()}" "<span class="muted">{format_usd(total)}</span></li> }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <div role="img" aria-label=label inner_html=svg></div>
            <ul class="legend" aria-label="Chart legend">{legend}</ul>
        </figure>
    }
    .into_any()
}
