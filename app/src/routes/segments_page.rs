//! AI Apps → Segments: spend and traffic per value of one tag key (plan, org, feature, ...),
//! drawn as bars; a value is a link that adds it as a tag filter. The keys and the table are
//! rendered on the server (`render::segments`).

use crate::api::{Answer, ServerPart, get_segments};
use crate::components::{SectionTabs, TagPills, WindowPills, shared_filters};
use crate::model::UserSort;
use leptos::prelude::*;

const SEGMENTS: &str = "/ai-apps/segments";

/// The key picker and the table, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use super::SEGMENTS;
    use crate::api::Rendered;
    use crate::components::users_table::count;
    use crate::model::money::tenths_percent;
    use crate::model::{SegmentRow, SegmentsView, UsersParams, format_usd};
    use leptos::prelude::*;

    /// The Segments view's body for `v` (or, with no tags at all, where they come from).
    pub fn segments(v: SegmentsView, params: UsersParams) -> Rendered {
        Rendered::of(move || {
            if v.keys.is_empty() {
                return view! {
                <p class="empty" role="status">"No tags yet. Tags come from withTrace(fn, { tags: { plan, org, ... } }) or an event's \"tags\" field; every key becomes a way to group spend here."</p>
            }.into_any();
            }
            let picker = key_picker(&v, &params);
            let more = (v.total_segments > v.segments.len() as i64).then(|| {
                format!(
                    "The {} biggest of {} values by spend; the CSV export has them all.",
                    v.segments.len(),
                    v.total_segments
                )
            });
            let table = if v.segments.is_empty() {
                view! { <p class="empty" role="status">"No calls in this window."</p> }.into_any()
            } else {
                view! { <SegmentsTable view=v params/> {more.map(|m| view! { <p class="note">{m}</p> })} }
                    .into_any()
            };
            view! { <div class="segment-keys">"Group by " {picker}</div> {table} }.into_any()
        })
    }

    /// Links choosing the key to group by.
    fn key_picker(view: &SegmentsView, params: &UsersParams) -> impl IntoView + use<> {
        let links = view
            .keys
            .iter()
            .map(|k| {
                let href = format!(
                    "{SEGMENTS}{}",
                    UsersParams { by: Some(k.clone()), offset: 0, ..params.clone() }.to_query()
                );
                let current = if *k == view.by { "true" } else { "false" };
                view! { <a href=href class="pill" aria-current=current>{k.clone()}</a> }
            })
            .collect_view();
        view! { <nav class="pills" aria-label="Group by tag key">{links}</nav> }
    }

    #[component]
    fn SegmentsTable(view: SegmentsView, params: UsersParams) -> impl IntoView {
        let max = view.segments.iter().map(|s| s.spend_nano).max().unwrap_or(0).max(1);
        let by = view.by.clone();
        let body = view
            .segments
            .into_iter()
            .map(|s: SegmentRow| {
                // Bar length relative to the biggest segment, in tenths of a percent.
                let permille = s.spend_nano * 1000 / max;
                let width = format!("width: {}", tenths_percent(permille));
                let bar_label = format!("{} of the biggest", tenths_percent(permille));
                let name = match &s.value {
                    Some(v) => {
                        let mut p = UsersParams { by: Some(by.clone()), offset: 0, ..params.clone() };
                        p.tags.push((by.clone(), v.clone()));
                        let label = format!("Filter by {by}={v}");
                        view! { <a href=format!("{SEGMENTS}{}", p.to_query()) aria-label=label>{v.clone()}</a> }
                            .into_any()
                    }
                    None => view! { <span class="muted">"(not set)"</span> }.into_any(),
                };
                view! {
                    <tr>
                        <th scope="row">{name}</th>
                        <td class="bar-cell"><div class="bar" style=width role="img" aria-label=bar_label></div></td>
                        <td class="num">{format_usd(s.spend_nano)}</td>
                        <td class="num">{tenths_percent(s.share_permille)}</td>
                        <td class="num">{count(s.users)}</td>
                        <td class="num">{count(s.traces)}</td>
                        <td class="num">{count(s.calls)}</td>
                        <td class="num">{count(s.tokens)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data segments" aria-label="Segments">
                <thead>
                    <tr>
                        <th scope="col">{view.by.clone()}</th>
                        <th scope="col" class="bar-cell"><span class="visually-hidden">"Spend bar"</span></th>
                        <th scope="col" class="num">"Spend"</th>
                        <th scope="col" class="num">"Share"</th>
                        <th scope="col" class="num">"Users"</th>
                        <th scope="col" class="num">"Traces"</th>
                        <th scope="col" class="num">"Calls"</th>
                        <th scope="col" class="num">"Tokens"</th>
                    </tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        }
    }
}

/// The Segments view.
#[component]
pub fn SegmentsPage() -> impl IntoView {
    let (raw, params) = super::use_view_query::<UserSort>();
    let segments = Answer::new(move || raw.get(), |q| get_segments(q.trim_start_matches('?').to_string()));
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="segments" filters/> } }}
            <header class="page-head">
                <h1>"Segments"</h1>
                {move || view! { <WindowPills params=params.get() base=SEGMENTS/> }}
            </header>
            {move || view! { <TagPills params=params.get() base=SEGMENTS/> }}
            <ServerPart answer=segments/>
        </section>
    }
}
