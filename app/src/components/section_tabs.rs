//! The tabs of the AI Apps section.

use leptos::prelude::*;

/// Tabs of the AI Apps section; `active` is the current tab's key.
#[component]
pub fn SectionTabs(
    /// Key of the tab to mark as current.
    active: &'static str,
) -> impl IntoView {
    let tabs = [("users", "Users", "/ai-apps/users")];
    view! {
        <nav class="tabs" aria-label="AI Apps">
            {tabs
                .into_iter()
                .map(|(key, label, href)| {
                    let current = (key == active).then_some("page");
                    view! { <a href=href class="tab" aria-current=current>{label}</a> }
                })
                .collect_view()}
        </nav>
    }
}
