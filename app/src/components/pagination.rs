//! Previous / next page links.

use crate::model::{SortKey, ViewParams};
use leptos::prelude::*;

/// Page links under a table of `total` rows.
#[component]
pub fn Pagination<S: SortKey + Send + Sync>(
    /// The current view.
    params: ViewParams<S>,
    /// The view's path.
    base: &'static str,
    /// Rows in the whole result.
    total: i64,
    /// What the rows are, plural (`users`, `traces`).
    noun: &'static str,
) -> impl IntoView {
    let limit = params.limit.max(1);
    let pages = ((total.max(1) - 1) / i64::from(limit) + 1) as u32;
    let page = params.page();
    let link = |p: u32| format!("{base}{}", params.with_offset((p - 1) * limit).to_query());
    let prev = (page > 1).then(|| link(page - 1));
    let next = (page < pages).then(|| link(page + 1));
    view! {
        <nav class="pagination" aria-label="Pages">
            {prev.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
            <span>{format!("Page {page} of {pages} · {total} {noun}")}</span>
            {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
        </nav>
    }
}
