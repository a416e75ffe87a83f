//! Active tag filters, each removable.

use crate::model::UsersParams;
use leptos::prelude::*;

/// One pill per `tag.<key>=<value>` filter, with a link that removes it.
#[component]
pub fn TagPills(
    /// The current view.
    params: UsersParams,
) -> impl IntoView {
    let pills = params
        .tags
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let mut without = params.with_offset(0);
            without.tags.remove(i);
            let href = format!("/ai-apps/users{}", without.to_query());
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
    view! { <div class="tag-pills" aria-label="Tag filters">{pills}</div> }
}
