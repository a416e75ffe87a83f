//! `/ai-apps/users/:user_id`: one user's KPIs, spend over time, models, and traces.

use crate::api::{Answer, ServerPart, get_user_overview, get_user_traces};
use crate::components::{DeleteUser, SectionTabs, WindowPills, refetch_on_new_data, shared_filters};
use crate::model::query::encode;
use crate::model::{TraceSort, UserSort, UsersParams};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// One user's page: the Overview narrowed to them, and their latest traces.
#[component]
pub fn UserPage() -> impl IntoView {
    let path = use_params_map();
    let (_, from_url) = super::use_view_query::<UserSort>();
    let user = Memo::new(move |_| path.with(|p| p.get("user_id").unwrap_or_default()));
    let params = Memo::new(move |_| UsersParams { user: Some(user.get()), ..from_url.get() });
    let key = Memo::new(move |_| params.get().to_query());
    let overview =
        Answer::new(move || key.get(), |q| get_user_overview(q.trim_start_matches('?').to_string()));
    let traces = Answer::new(move || key.get(), |q| get_user_traces(q.trim_start_matches('?').to_string()));
    refetch_on_new_data(move || {
        overview.refetch();
        traces.refetch();
    });
    let base = Memo::new(move |_| format!("/ai-apps/users/{}", encode(&user.get())));
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="users" filters/> } }}
            <header class="page-head">
                <h1>"User " <span class="user-id">{move || user.get()}</span></h1>
                {move || {
                    // Window pills for this page: same path, other window.
                    let p = params.get();
                    view! { <WindowPills params=UsersParams { user: None, ..p } base=base.get()/> }
                }}
            </header>
            <ServerPart answer=overview/>
            <h2>"Latest traces " <a class="more" href=move || format!("/ai-apps/traces{}", params.get().for_view::<TraceSort>().to_query())>"all traces →"</a></h2>
            <ServerPart answer=traces quiet=true/>
            <DeleteUser user_id=user/>
        </section>
    }
}
