//! The filter bar: User, Provider and Agent menus (values seen in the window), a tag field, and
//! the active filters (user, provider, agent, tags) as removable pills. Every choice is a link
//! or a GET form, so it works before hydration and without JavaScript.

use crate::api::Answer;
use crate::api::get_filter_values;
use crate::model::{SortKey, UserSort, ViewParams};
use leptos::prelude::*;

fn pill(label: String, href: String) -> impl IntoView {
    let remove = format!("Remove filter {label}");
    view! {
        <span class="pill tag">
            {label}
            <a href=href class="remove" aria-label=remove>"×"</a>
        </span>
    }
}

/// Hidden fields carrying a view's other parameters through a GET form (back to page 1).
pub fn hidden_fields<S: SortKey>(params: &ViewParams<S>, except: &[&str]) -> impl IntoView + use<S> {
    params
        .pairs(false)
        .into_iter()
        .filter(|(k, _)| !except.contains(&k.as_str()))
        .map(|(name, value)| view! { <input type="hidden" name=name value=value/> })
        .collect_view()
}

/// A `<details>` menu of links setting one filter.
fn menu<S: SortKey + Send + Sync>(
    name: &'static str,
    values: Vec<String>,
    params: &ViewParams<S>,
    base: &'static str,
    set: fn(&mut ViewParams<S>, String),
) -> impl IntoView + use<S> {
    let items = values
        .into_iter()
        .map(|v| {
            let mut p = params.with_offset(0);
            set(&mut p, v.clone());
            view! { <li><a href=format!("{base}{}", p.to_query())>{v}</a></li> }
        })
        .collect_view();
    view! {
        <details class="menu">
            <summary>{name}" ▾"</summary>
            <ul aria-label=format!("{name} filter")>{items}</ul>
        </details>
    }
}

/// The filter bar of a view.
#[component]
pub fn TagPills<S: SortKey + Send + Sync>(
    /// The current view.
    params: ViewParams<S>,
    /// The view's path.
    base: &'static str,
) -> impl IntoView {
    let query = params.for_view::<UserSort>().to_query();
    let values =
        Answer::new(move || query.clone(), |q| get_filter_values(q.trim_start_matches('?').to_string()));
    let menus = {
        let params = params.clone();
        move || {
            let params = params.clone();
            Suspend::new(async move {
                let v = values.await.unwrap_or_default();
                view! {
                    {menu("User", v.users, &params, base, |p, v| p.user = Some(v))}
                    {menu("Provider", v.providers, &params, base, |p, v| p.provider = Some(v))}
                    {menu("Agent", v.agents, &params, base, |p, v| p.agent = Some(v))}
                }
            })
        }
    };
    let href_without = |f: &dyn Fn(&mut ViewParams<S>)| {
        let mut p = params.with_offset(0);
        f(&mut p);
        format!("{base}{}", p.to_query())
    };
    let mut pills = Vec::new();
    if let Some(u) = &params.user {
        pills.push(pill(format!("user={u}"), href_without(&|p| p.user = None)).into_any());
    }
    if let Some(v) = &params.provider {
        pills.push(pill(format!("provider={v}"), href_without(&|p| p.provider = None)).into_any());
    }
    if let Some(v) = &params.agent {
        pills.push(pill(format!("agent={v}"), href_without(&|p| p.agent = None)).into_any());
    }
    for (i, (k, v)) in params.tags.iter().enumerate() {
        pills.push(
            pill(
                format!("{k}={v}"),
                href_without(&|p| {
                    p.tags.remove(i);
                }),
            )
            .into_any(),
        );
    }
    let user_form = view! {
        <form class="filter-form" method="get" action=base>
            {hidden_fields(&params, &["user"])}
            <input name="user" placeholder="user id" aria-label="Filter by user id" required/>
        </form>
    };
    let tag_form = view! {
        <form class="filter-form" method="get" action=base>
            {hidden_fields(&params, &[])}
            <input name="tag" placeholder="tag: plan=pro" aria-label="Add a tag filter (key=value)" pattern=".+=.*" required/>
        </form>
    };
    view! {
        <div class="filters" aria-label="Filters">
            <Suspense fallback=|| ()>{menus}</Suspense>
            {user_form}
            {tag_form}
            {pills}
        </div>
    }
}
