//! One trace: its tags, totals and the timeline of its calls, rendered on the server
//! (`render::trace`); the page shows the markup.

use crate::api::{Answer, ServerPart, get_trace};
use crate::components::SectionTabs;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The trace's view, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use crate::api::Rendered;
    use crate::components::users_table::{count, short_time};
    use crate::model::query::encode;
    use crate::model::{TraceDetail, format_usd};
    use crate::routes::traces_page::duration;
    use leptos::prelude::*;

    /// The markup of a trace's page body; `from_cursor`: the address has a cursor (not the first calls).
    pub fn trace(d: TraceDetail, from_cursor: bool) -> Rendered {
        Rendered::of(move || {
            let t = d.trace.clone();
            let user = t.user_id.clone().map(|u| {
                view! {
                    <a href=format!("/ai-apps/users/{}", encode(&u))>{u.clone()}</a>
                }
            });
            let tags = d
                .tags
                .iter()
                .map(|(k, v)| {
                    view! {
                        <li><code>{format!("{k}={v}")}</code></li>
                    }
                })
                .collect_view();
            // A trace with more calls than a page: where this page is, and on.
            let shown = d.events.len() as i64;
            let paged = from_cursor || d.next_cursor.is_some();
            let note = paged.then(|| view! {
            <p class="page-note">{format!("{} of this trace's {} calls, in time order.", count(shown), count(t.calls))}</p>
        });
            let trace_href = format!("/ai-apps/traces/{}", encode(&t.trace_id));
            let first = from_cursor.then(|| {
                view! {
                    <a href=trace_href.clone()>"First calls"</a>
                }
            });
            let next = d.next_cursor.clone().map(|c| {
                view! {
                    <a rel="next" href=format!("{trace_href}?cursor={}", encode(&c))>"Next calls →"</a>
                }
            });
            view! {
                <header class="page-head">
                    <h1>{t.route_tag.clone().unwrap_or_else(|| "Trace".into())}</h1>
                    <span class=format!("status {}", t.status)>{t.status.clone()}</span>
                </header>
                <dl class="facts">
                    <div><dt>"Trace"</dt><dd><code>{t.trace_id.clone()}</code></dd></div>
                    <div><dt>"User"</dt><dd>{user}</dd></div>
                    <div><dt>"Started"</dt><dd>{format!("{} UTC", short_time(&t.started_at))}</dd></div>
                    <div><dt>"Duration"</dt><dd>{duration(t.duration_ms)}</dd></div>
                    <div><dt>"Calls"</dt><dd>{count(t.calls)}</dd></div>
                    <div><dt>"Tokens"</dt><dd>{count(t.tokens)}</dd></div>
                    <div><dt>"Spend"</dt><dd>{format_usd(t.spend_nano)}</dd></div>
                </dl>
                <h2>"Tags"</h2>
                <ul class="tags" aria-label="Tags">{tags}</ul>
                <h2>"Calls"</h2>
                {note}
                <Timeline detail=d/>
                <nav class="pager" aria-label="Calls of this trace">{first}" "{next}</nav>
            }
        })
    }

    #[component]
    fn Timeline(detail: TraceDetail) -> impl IntoView {
        // Bars are placed on the trace's own time axis: offset and latency as % of its span.
        let span = detail
            .events
            .iter()
            .map(|e| e.offset_ms + e.latency_ms.unwrap_or(0))
            .chain(detail.trace.duration_ms)
            .max()
            .unwrap_or(1)
            .max(1);
        let rows = detail
            .events
            .into_iter()
            .map(|e| {
                let left = e.offset_ms.clamp(0, span) * 100 / span;
                let width = (e.latency_ms.unwrap_or(0) * 100 / span).clamp(1, 100 - left.min(99));
                let href = format!("/ai-apps/events/{}", encode(&e.event_id));
                let cost = e.cost_nano.map_or_else(|| "unpriced".to_string(), format_usd);
                view! {
                    <tr>
                        <td class="num">{format!("+{}", duration(Some(e.offset_ms)))}</td>
                        <th scope="row" class="model"><a href=href>{e.model.clone()}</a></th>
                        <td>{e.provider.clone()}</td>
                        <td class="num">{count(e.input_tokens + e.output_tokens + e.cache_read_tokens + e.cache_creation_tokens)}</td>
                        <td class="num">{cost}</td>
                        <td class="num">{duration(e.latency_ms)}</td>
                        <td><span class=format!("status {}", e.status)>{e.status.clone()}</span></td>
                        <td>{e.tools.join(", ")}</td>
                        <td class="bar-cell" aria-hidden="true">
                            <div class="bar" style=format!("margin-left:{left}%;width:{width}%")></div>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data" aria-label="Calls in this trace">
                <thead>
                    <tr>
                        <th scope="col" class="num">"At"</th>
                        <th scope="col">"Model"</th>
                        <th scope="col">"Provider"</th>
                        <th scope="col" class="num">"Tokens"</th>
                        <th scope="col" class="num">"Cost"</th>
                        <th scope="col" class="num">"Latency"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Tools"</th>
                        <th scope="col" class="bar-cell">"Timeline"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        }
    }
}

/// `/ai-apps/traces/:trace_id`.
#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.with(|p| p.get("trace_id").unwrap_or_default()));
    let cursor = Memo::new(move |_| query.with(|q| q.get("cursor")));
    let trace = Answer::new(move || (id.get(), cursor.get()), |(id, cursor)| get_trace(id, cursor));
    view! {
        <section class="page">
            <SectionTabs active="traces"/>
            <ServerPart answer=trace/>
        </section>
    }
}
