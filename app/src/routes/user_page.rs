//! `/ai-apps/users/:user_id`: one user's KPIs, spend over time, models, and traces.

use super::overview_page::OverviewView;
use crate::api::Answer;
use crate::api::{get_overview, get_traces};
use crate::components::users_table::{count, short_time};
use crate::components::{DeleteUser, SectionTabs, WindowPills, refetch_on_new_data, shared_filters};
use crate::model::query::encode;
use crate::model::{TraceSort, UserSort, UsersParams, format_usd};
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
    let overview = Answer::new(move || key.get(), |q| get_overview(q.trim_start_matches('?').to_string()));
    let traces =
        Answer::new(move || key.get(), |q| get_traces(format!("{}&limit=20", q.trim_start_matches('?'))));
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
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let filters = shared_filters(&params.get());
                    match overview.await {
                        Ok(o) => {
                            let p = UsersParams { user: None, ..params.get() };
                            view! { <OverviewView o filters params=p base=base.get()/> }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <h2>"Latest traces " <a class="more" href=move || format!("/ai-apps/traces{}", params.get().for_view::<TraceSort>().to_query())>"all traces →"</a></h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match traces.await {
                        Ok(page) => {
                            let rows = page.traces.into_iter().map(|t| {
                                let href = format!("/ai-apps/traces/{}", encode(&t.trace_id));
                                view! {
                                    <tr>
                                        <td class="time">{short_time(&t.started_at)}</td>
                                        <th scope="row" class="route"><a href=href>{t.route_tag.clone().unwrap_or_else(|| "(no route tag)".into())}</a></th>
                                        <td class="num">{count(t.calls)}</td>
                                        <td class="num">{format_usd(t.spend_nano)}</td>
                                        <td><span class=format!("status {}", t.status)>{t.status.clone()}</span></td>
                                    </tr>
                                }
                            }).collect_view();
                            view! {
                                <table class="data" aria-label="Traces of this user">
                                    <thead><tr><th scope="col">"Started (UTC)"</th><th scope="col">"Route"</th><th scope="col" class="num">"Calls"</th><th scope="col" class="num">"Spend"</th><th scope="col">"Status"</th></tr></thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <DeleteUser user_id=user/>
        </section>
    }
}
