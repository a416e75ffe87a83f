//! The tabs of the AI Apps section.

use leptos::prelude::*;

/// Tabs of the AI Apps section; `active` is the current tab's key.
#[component]
pub fn SectionTabs(
    /// Key of the tab to mark as current.
    active: &'static str,
    /// The shared filters (window, user, tags) as a query string, carried to every tab.
    #[prop(optional)]
    filters: String,
) -> impl IntoView {
    let tabs = [
        ("overview", "Overview", "/ai-apps"),
        ("traces", "Traces", "/ai-apps/traces"),
        ("models", "Models", "/ai-apps/models"),
        ("tools", "Tools", "/ai-apps/tools"),
        ("users", "Users", "/ai-apps/users"),
        ("segments", "Segments", "/ai-apps/segments"),
    ];
    view! {
        <nav class="tabs" aria-label="AI Apps">
            {tabs
                .into_iter()
                .map(|(key, label, href)| {
                    let current = (key == active).then_some("page");
                    view! { <a href=format!("{href}{filters}") class="tab" aria-current=current>{label}</a> }
                })
                .collect_view()}
        </nav>
    }
}

/// The filters every tab shares (window, range, user, tags) as a query string, sort and page left out.
pub fn shared_filters<S: crate::model::SortKey>(params: &crate::model::ViewParams<S>) -> String {
    params.for_view::<S>().to_query()
}
