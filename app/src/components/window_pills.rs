//! The 1d / 7d / 28d window selector, as links.

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
    view! {
        <nav class="pills" aria-label="Time window">
            {Window::ALL
                .into_iter()
                .map(|w| {
                    let current = (!custom && params.window == w).then_some("true");
                    let href = format!("{}{}", base, params.with_window(w).to_query());
                    view! {
                        <a href=href class="pill" aria-pressed=current.unwrap_or("false")>
                            {w.as_str()}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}
