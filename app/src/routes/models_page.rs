//! AI Apps → Models: per model calls, users, tokens by bucket, spend and share, latency, error
//! rate. The table and the chart are rendered on the server (`render::models`).

use crate::api::{Answer, ServerPart, get_models};
use crate::components::{SectionTabs, TagPills, WindowPills, shared_filters};
use leptos::prelude::*;

const MODELS: &str = "/ai-apps/models";

/// The table and the chart, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use crate::api::Rendered;
    use crate::components::SpendChart;
    use crate::components::users_table::{count, tokens_cell};
    use crate::model::{Charted, ModelRow, ModelsView, format_usd};
    use leptos::prelude::*;

    /// The Models view's body (or, with no calls, says so).
    pub fn models(charted: Charted<ModelsView>) -> Rendered {
        Rendered::of(move || {
            let Charted { view: v, chart_svg } = charted;
            if v.models.is_empty() {
                return view! { <p class="empty" role="status">"No LLM calls in this window."</p> }
                    .into_any();
            }
            view! {
                <ModelsTable rows=v.models/>
                <h2>"Spend by model over time"</h2>
                <SpendChart series=v.spend_by_model svg=chart_svg/>
            }
            .into_any()
        })
    }

    /// `≈1,234 ms`, or a dash when unknown.
    fn ms(v: Option<i64>) -> String {
        v.map_or_else(|| "—".to_string(), |v| format!("≈{} ms", count(v)))
    }

    #[component]
    fn ModelsTable(rows: Vec<ModelRow>) -> impl IntoView {
        let total: i64 = rows.iter().map(|m| m.spend_nano).sum();
        let body = rows
            .into_iter()
            .map(|m| {
                let share = if total > 0 {
                    format!("{}.{}%", m.spend_nano * 100 / total, (m.spend_nano * 1000 / total) % 10)
                } else {
                    "—".into()
                };
                let errors = if m.calls > 0 {
                    format!("{}.{}%", m.errors * 100 / m.calls, (m.errors * 1000 / m.calls) % 10)
                } else {
                    "—".into()
                };
                let unpriced = (m.unpriced > 0)
                    .then(|| view! { <span class="unpriced">{format!("+{} unpriced", m.unpriced)}</span> });
                view! {
                    <tr>
                        <th scope="row" class="model">{m.model.clone()} <span class="provider">{m.provider.clone()}</span></th>
                        <td class="num">{count(m.calls)}</td>
                        <td class="num">{m.users.map(count).unwrap_or_default()}</td>
                        {tokens_cell(m.input_tokens, m.output_tokens, m.cache_read_tokens, m.cache_creation_tokens)}
                        <td class="num spend">{format_usd(m.spend_nano)} {unpriced} <span class="share">{share}</span></td>
                        <td class="num">
                            {ms(m.p50_latency_ms)}
                            <dl class="buckets" aria-label="Latency">
                                <div><dt>"p95"</dt><dd>{ms(m.p95_latency_ms)}</dd></div>
                                <div><dt>"mean"</dt><dd>{format!("{} ms", count(m.avg_latency_ms))}</dd></div>
                            </dl>
                        </td>
                        <td class="num">{errors}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="data" aria-label="Models">
                    <thead>
                        <tr>
                            <th scope="col">"Model"</th>
                            <th scope="col" class="num">"Calls"</th>
                            <th scope="col" class="num">"Users"</th>
                            <th scope="col" class="num">"Tokens"</th>
                            <th scope="col" class="num" title="and its share of all spend">"Spend"</th>
                            <th scope="col" class="num" title="median, with p95 and mean below; percentiles within 15 %">"Latency p50"</th>
                            <th scope="col" class="num">"Errors"</th>
                        </tr>
                    </thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        }
    }
}

/// The Models view.
#[component]
pub fn ModelsPage() -> impl IntoView {
    let (raw, params) = super::use_view_query::<crate::model::UserSort>();
    let models = Answer::new(move || raw.get(), |q| get_models(q.trim_start_matches('?').to_string()));
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="models" filters/> } }}
            <header class="page-head">
                <h1>"Models"</h1>
                {move || view! { <WindowPills params=params.get() base=MODELS/> }}
            </header>
            {move || view! { <TagPills params=params.get() base=MODELS/> }}
            <ServerPart answer=models/>
        </section>
    }
}
