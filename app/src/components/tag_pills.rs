//! Active tag filters, each removable.

use crate::model::{SortKey, ViewParams};
use leptos::prelude::*;

/// One pill per `tag.<key>=<value>` filter, with a link that removes it.
#[component]
pub fn TagPills<S: SortKey + Send + Sync>(
    /// The current view.
    params: ViewParams<S>,
    /// The view's path.
    base: &'static str,
) -> impl IntoView {
    let pills = params
        .tags
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let mut without = params.with_offset(0);
            without.tags.remove(i);
            let href = format!("{base}{}", without.to_query());
            let label = format!("{k}={v}");
            let remove = format!("Remove filter {label}");
            view! {
                <span class="pill tag">
                    {label}
                    <a href=href class="remove" aria-label=remove>"×"</a>
                </span>
            }
        })
        .collect_view();
    let user = params.user.clone().map(|u| {
        let without = ViewParams { user: None, ..params.with_offset(0) };
        let href = format!("{base}{}", without.to_query());
        let label = format!("user={u}");
        let remove = format!("Remove filter {label}");
        view! {
            <span class="pill tag">
                {label}
                <a href=href class="remove" aria-label=remove>"×"</a>
            </span>
        }
    });
    view! { <div class="tag-pills" aria-label="Filters">{user}{pills}</div> }
}
