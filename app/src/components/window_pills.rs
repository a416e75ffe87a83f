//! The 1d / 7d / 28d window selector, as links, and a custom from–to range as a GET form.

use super::tag_pills::hidden_fields;
use crate::model::{SortKey, ViewParams, Window};
use leptos::prelude::*;

/// Window pills; each is a link to the same view in that window.
#[component]
pub fn WindowPills<S: SortKey + Send + Sync>(
    /// The current view.
    params: ViewParams<S>,
    /// The view's path, e.g. `/ai-apps/users`.
    #[prop(into)]
    base: String,
) -> impl IntoView {
    let custom = params.from.is_some();
    // A date field shows the date part of a bound; `to` dates are inclusive (see resolve_filter).
    let date =
        |v: &Option<String>| v.as_deref().map(|d| d.chars().take(10).collect::<String>()).unwrap_or_default();
    let (from, to) = (date(&params.from), date(&params.to));
    let range = view! {
        <form class="range-form" method="get" action=base.clone() aria-label="Custom range">
            {hidden_fields(&params, &["window", "from", "to"])}
            <input type="date" name="from" value=from aria-label="From (UTC date)" required/>
            "–"
            <input type="date" name="to" value=to aria-label="To (UTC date, inclusive)" required/>
            <button type="submit" class:active=custom>"Apply"</button>
        </form>
    };
    view! {
        <nav class="pills" aria-label="Time window">
            {Window::ALL
                .into_iter()
                .map(|w| {
                    let current = (!custom && params.window == w).then_some("true");
                    let href = format!("{}{}", base, params.with_window(w).to_query());
                    view! {
                        <a href=href class="pill" aria-current=current>
                            {w.as_str()}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
        {range}
    }
}
