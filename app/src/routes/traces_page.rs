//! AI Apps → Traces: one row per `withTrace` block, sortable, searchable by route tag. The table
//! is rendered on the server (`render::traces`); the filters are components.

use crate::api::{Answer, ServerPart, get_traces};
use crate::components::{ExportLink, SectionTabs, TagPills, WindowPills, shared_filters};
use crate::model::TraceSort;
use leptos::prelude::*;

const TRACES: &str = "/ai-apps/traces";

/// `1234` → `1.2 s`, `87` → `87 ms`.
pub fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) => format!("{}.{} s", ms / 1_000, (ms % 1_000) / 100),
    }
}

/// The traces' tables, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use super::{TRACES, duration};
    use crate::api::Rendered;
    use crate::components::users_table::{count, short_time};
    use crate::components::{Pagination, SortableHeader};
    use crate::model::query::encode;
    use crate::model::{TraceRow, TraceSort, TracesPage, TracesParams, format_usd};
    use leptos::prelude::*;

    /// The Traces view's table (or, with no traces, what to do about it).
    pub fn traces(page: TracesPage, params: TracesParams) -> Rendered {
        Rendered::of(move || {
            if page.total_traces == 0 {
                view! {
                    <div class="empty" role="status">
                        <h2>"No traces in this window"</h2>
                        <p>"A trace is one " <code>"withTrace"</code> " block. Widen the window, remove filters, or check that the app wraps its request handlers."</p>
                    </div>
                }
                .into_any()
            } else {
                view! { <TracesTable page params/> }.into_any()
            }
        })
    }

    /// A user's latest traces, compact.
    pub fn latest(page: TracesPage) -> Rendered {
        Rendered::of(move || {
            let rows = page.traces.into_iter().map(|t| {
                let href = format!("/ai-apps/traces/{}", encode(&t.trace_id));
                view! {
                    <tr>
                        <td class="time">{short_time(&t.started_at)}</td>
                        <th scope="row" class="route"><a href=href>{t.route_tag.clone().unwrap_or_else(|| "(no route tag)".into())}</a></th>
                        <td class="num">{count(t.calls)}</td>
                        <td class="num">{format_usd(t.spend_nano)}</td>
                        <td><span class=format!("status {}", t.status)>{t.status.clone()}</span></td>
                    </tr>
                }
            }).collect_view();
            view! {
                <table class="data" aria-label="Traces of this user">
                    <thead><tr><th scope="col">"Started (UTC)"</th><th scope="col">"Route"</th><th scope="col" class="num">"Calls"</th><th scope="col" class="num">"Spend"</th><th scope="col">"Status"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }
        })
    }

    #[component]
    fn TraceRowView(row: TraceRow) -> impl IntoView {
        let href = format!("/ai-apps/traces/{}", encode(&row.trace_id));
        let user = row.user_id.clone().map(|u| {
            view! { <a href=format!("/ai-apps/users/{}", encode(&u))>{u.clone()}</a> }
        });
        let unpriced = (row.unpriced_events > 0)
            .then(|| view! { <span class="unpriced">{format!("+{} unpriced", row.unpriced_events)}</span> });
        view! {
            <tr>
                <td class="time"><a href=href.clone()>{short_time(&row.started_at)}</a></td>
                <th scope="row" class="route"><a href=href>{row.route_tag.clone().unwrap_or_else(|| "(no route tag)".into())}</a></th>
                <td class="user">{user}</td>
                <td class="num">{count(row.calls)}</td>
                <td class="num">{count(row.tokens)}</td>
                <td class="num spend">{format_usd(row.spend_nano)} {unpriced}</td>
                <td class="num">{duration(row.duration_ms)}</td>
                <td><span class=format!("status {}", row.status)>{row.status.clone()}</span></td>
            </tr>
        }
    }

    #[component]
    fn TracesTable(page: TracesPage, params: TracesParams) -> impl IntoView {
        let header = |sort: TraceSort, label: &'static str, numeric: bool| {
            view! { <SortableHeader params=params.clone() base=TRACES sort label numeric/> }
        };
        let total = page.total_traces;
        view! {
            <p class="range">{format!("{} to {} UTC", short_time(&page.from), short_time(&page.to))}</p>
            <div class="table-wrap">
                <table class="data" aria-label="Traces">
                    <thead>
                        <tr>
                            {header(TraceSort::Started, "Started (UTC)", false)}
                            <th scope="col">"Route"</th>
                            <th scope="col">"User"</th>
                            {header(TraceSort::Calls, "Calls", true)}
                            {header(TraceSort::Tokens, "Tokens", true)}
                            {header(TraceSort::Spend, "Spend", true)}
                            <th scope="col" class="num">"Duration"</th>
                            <th scope="col">"Status"</th>
                        </tr>
                    </thead>
                    <tbody>{page.traces.into_iter().map(|row| view! { <TraceRowView row/> }).collect_view()}</tbody>
                </table>
            </div>
            <Pagination params base=TRACES total noun="traces"/>
        }
    }
}

/// The Traces view.
#[component]
pub fn TracesPage() -> impl IntoView {
    let (raw, params) = super::use_view_query::<crate::model::TraceSort>();
    let traces = Answer::new(move || raw.get(), |q| get_traces(q.trim_start_matches('?').to_string()));
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="traces" filters/> } }}
            <header class="page-head">
                <h1>"Traces"</h1>
                {move || view! { <WindowPills params=params.get() base=TRACES/> }}
                {move || view! { <ExportLink list="traces" params=params.get()/> }}
            </header>
            {move || {
                let p = params.get();
                let hidden = p.for_view::<TraceSort>();
                view! {
                    <form method="get" action=TRACES class="search" role="search">
                        {(hidden.window != Default::default()).then(|| view! { <input type="hidden" name="window" value=hidden.window.as_str()/> })}
                        {hidden.user.clone().map(|u| view! { <input type="hidden" name="user" value=u/> })}
                        {hidden.tags.iter().map(|(k, v)| view! { <input type="hidden" name=format!("tag.{k}") value=v.clone()/> }).collect_view()}
                        <input type="search" name="q" value=p.q.clone().unwrap_or_default() placeholder="Search route tags" aria-label="Search route tags"/>
                        <button type="submit">"Search"</button>
                    </form>
                    <TagPills params=p base=TRACES/>
                }
            }}
            <ServerPart answer=traces/>
        </section>
    }
}
