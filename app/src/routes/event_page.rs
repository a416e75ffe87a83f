//! One LLM call: model, tokens by bucket, cost and how it was priced, latency, tools, and the
//! prompt and response rendered as chat messages when they look like them. The call is rendered
//! on the server (`render::event`); the page shows the markup.

use crate::api::{Answer, ServerPart, get_event};
use crate::components::SectionTabs;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// The call's view, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use crate::api::Rendered;
    use crate::components::users_table::{count, short_time};
    use crate::model::query::encode;
    use crate::model::traces::{EventPageData, Shown};
    use crate::model::{EventDetail, format_usd};
    use crate::routes::traces_page::duration;
    use leptos::prelude::*;

    /// The markup of one call's page body.
    pub fn event(data: EventPageData) -> Rendered {
        Rendered::of(move || view! { <EventView data/> })
    }

    /// Renders a stored prompt or response as the server read it: chat messages, or JSON.
    #[component]
    fn Conversation(
        /// Heading.
        title: &'static str,
        /// What was stored, read on the server (`None`: not stored).
        shown: Option<Shown>,
    ) -> impl IntoView {
        match shown {
            None => view! { <section><h2>{title}</h2><p class="muted">"Not stored (privacy mode, or not sent)."</p></section> }.into_any(),
            Some(Shown::Messages(msgs)) => view! {
                <section>
                    <h2>{title}</h2>
                    <ol class="messages" aria-label=title>
                        {msgs.into_iter().map(|(role, text)| view! {
                            <li class=format!("message {role}")><span class="role">{role.clone()}</span><pre>{text}</pre></li>
                        }).collect_view()}
                    </ol>
                </section>
            }.into_any(),
            Some(Shown::Json(text)) => view! {
                <section>
                    <h2>{title}</h2>
                    <pre class="json">{text}</pre>
                </section>
            }.into_any(),
        }
    }

    /// Output tokens with the parts the provider broke out (reasoning, audio), which are billed as
    /// output and already counted in it.
    fn output_breakdown(d: &EventDetail) -> String {
        let parts: Vec<String> = [("reasoning", d.reasoning_tokens), ("audio", d.audio_output_tokens)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{} {name}", count(n)))
            .collect();
        if parts.is_empty() {
            count(d.summary.output_tokens)
        } else {
            format!("{} (of which {})", count(d.summary.output_tokens), parts.join(", "))
        }
    }

    #[component]
    fn EventView(data: EventPageData) -> impl IntoView {
        let EventPageData { detail: d, prompt, response } = data;
        let e = d.summary.clone();
        let cost = match (e.cost_nano, d.cost_source.as_str()) {
            (Some(n), "override") => format!("{} (cost sent by the app)", format_usd(n)),
            (Some(n), _) => format!("{} (price table)", format_usd(n)),
            (None, _) => "unpriced: no known price for this model".to_string(),
        };
        let trace = d
            .trace_id
            .clone()
            .map(|t| view! { <a href=format!("/ai-apps/traces/{}", encode(&t))>{t.clone()}</a> });
        let user = d
            .tags
            .get("userId")
            .cloned()
            .map(|u| view! { <a href=format!("/ai-apps/users/{}", encode(&u))>{u.clone()}</a> });
        let tags =
            d.tags.iter().map(|(k, v)| view! { <li><code>{format!("{k}={v}")}</code></li> }).collect_view();
        view! {
            <header class="page-head">
                <h1>{e.model.clone()}</h1>
                <span class=format!("status {}", e.status)>{e.status.clone()}</span>
            </header>
            <section aria-label="Call details"><dl class="facts">
                <div><dt>"Provider"</dt><dd>{e.provider.clone()}</dd></div>
                <div><dt>"Agent"</dt><dd>{if e.agent.is_empty() { "—".to_string() } else { e.agent.clone() }}</dd></div>
                <div><dt>"Time"</dt><dd>{format!("{} UTC", short_time(&e.timestamp))}</dd></div>
                <div><dt>"Latency"</dt><dd>{duration(e.latency_ms)}</dd></div>
                <div><dt>"Trace"</dt><dd>{trace}</dd></div>
                <div><dt>"User"</dt><dd>{user}</dd></div>
                <div><dt>"Cost"</dt><dd>{cost}</dd></div>
                {d.reported_cost_usd.clone().map(|c| view! {
                    <div><dt>"Reported by the instrumentation"</dt><dd>{format!("${c} (not used: spend is priced from the table)")}</dd></div>
                })}
                <div><dt>"Input tokens"</dt><dd>{count(e.input_tokens)}{(d.audio_input_tokens > 0).then(|| format!(" ({} of the input, cache included, was audio)", count(d.audio_input_tokens)))}</dd></div>
                <div><dt>"Output tokens"</dt><dd>{output_breakdown(&d)}</dd></div>
                <div><dt>"Cache reads"</dt><dd>{count(e.cache_read_tokens)}</dd></div>
                <div><dt>"Cache writes"</dt><dd>{format!("{} ({} with 1-hour TTL)", count(e.cache_creation_tokens), count(d.cache_creation_1h_tokens))}</dd></div>
                <div><dt>"Tools"</dt><dd>{if e.tools.is_empty() { "—".to_string() } else { e.tools.join(", ") }}</dd></div>
            </dl></section>
            {d.usage_estimated.then(|| view! {
                <p class="note estimated">"Token counts are the SDK's estimate: the provider reported no usage for this call (a stream stopped before its end). The cost is priced from the estimate."</p>
            })}
            {d.error.clone().map(|err| view! { <p class="error" role="alert">{err}</p> })}
            <h2>"Tags"</h2>
            <ul class="tags" aria-label="Tags">{tags}</ul>
            <Conversation title="Prompt" shown=prompt/>
            <Conversation title="Response" shown=response/>
        }
    }
}

/// `/ai-apps/events/:event_id`.
#[component]
pub fn EventPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("event_id").unwrap_or_default()));
    let event = Answer::new(move || id.get(), get_event);
    view! {
        <section class="page">
            <SectionTabs active="traces"/>
            <ServerPart answer=event/>
        </section>
    }
}
