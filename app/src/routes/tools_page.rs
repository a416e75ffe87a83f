//! AI Apps → Tools: per tool name, the calls that used it, their users, traces and spend. The
//! table is rendered on the server (`render::tools`).

use crate::api::{Answer, ServerPart, get_tools};
use crate::components::{SectionTabs, TagPills, WindowPills, shared_filters};
use leptos::prelude::*;

const TOOLS: &str = "/ai-apps/tools";

/// The table, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use crate::api::Rendered;
    use crate::components::users_table::count;
    use crate::model::{ToolRow, format_usd};
    use leptos::prelude::*;

    /// The Tools view's table of `rows` (or, with none, where tool names come from).
    pub fn tools(rows: Vec<ToolRow>) -> Rendered {
        Rendered::of(move || {
            if rows.is_empty() {
                view! {
                    <p class="empty" role="status">"No tool calls in this window. Tool names come from the calls' tool_calls / tool_use blocks (the SDK records them), or an event's \"tools\" field."</p>
                }
                .into_any()
            } else {
                view! { <ToolsTable rows/> }.into_any()
            }
        })
    }

    #[component]
    fn ToolsTable(rows: Vec<ToolRow>) -> impl IntoView {
        let body = rows
            .into_iter()
            .map(|t| {
                view! {
                    <tr>
                        <th scope="row" class="model">{t.tool.clone()}</th>
                        <td class="num">{count(t.calls)}</td>
                        <td class="num">{count(t.users)}</td>
                        <td class="num">{count(t.traces)}</td>
                        <td class="num">{format_usd(t.spend_nano)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data" aria-label="Tools">
                <thead>
                    <tr>
                        <th scope="col">"Tool"</th>
                        <th scope="col" class="num">"Calls"</th>
                        <th scope="col" class="num">"Users"</th>
                        <th scope="col" class="num">"Traces"</th>
                        <th scope="col" class="num">"Spend of these calls"</th>
                    </tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        }
    }
}

/// The Tools view.
#[component]
pub fn ToolsPage() -> impl IntoView {
    let (raw, params) = super::use_view_query::<crate::model::UserSort>();
    let tools = Answer::new(move || raw.get(), |q| get_tools(q.trim_start_matches('?').to_string()));
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="tools" filters/> } }}
            <header class="page-head">
                <h1>"Tools"</h1>
                {move || view! { <WindowPills params=params.get() base=TOOLS/> }}
            </header>
            {move || view! { <TagPills params=params.get() base=TOOLS/> }}
            <ServerPart answer=tools/>
        </section>
    }
}
