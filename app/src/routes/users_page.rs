//! AI Apps → Users: end users ranked by spend, narrowed by window and tags, all in the URL.

use crate::api::Answer;
use crate::api::{ServerPart, get_users};
use crate::components::{
    ExportLink, SectionTabs, TagPills, WindowPills, refetch_on_new_data, shared_filters,
};
use leptos::prelude::*;

/// The Users view.
#[component]
pub fn UsersPage() -> impl IntoView {
    let (raw, params) = super::use_view_query::<crate::model::UserSort>();
    let users = Answer::new(move || raw.get(), |q| get_users(q.trim_start_matches('?').to_string()));
    refetch_on_new_data(move || users.refetch());
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="users" filters/> } }}
            <header class="page-head">
                <h1>"Users"</h1>
                {move || view! { <WindowPills params=params.get() base="/ai-apps/users"/> }}
                {move || view! { <ExportLink list="users" params=params.get()/> }}
            </header>
            {move || view! { <TagPills params=params.get() base="/ai-apps/users"/> }}
            <ServerPart answer=users/>
        </section>
    }
}
