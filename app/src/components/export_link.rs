//! "Export CSV": a download of exactly the current filtered, sorted view (all its pages).

use crate::model::query::query_string;
use crate::model::{SortKey, ViewParams};
use leptos::prelude::*;

/// A link to `/export/{list}.csv` with the view's parameters (page left out: every row).
#[component]
pub fn ExportLink<S: SortKey + Send + Sync>(
    /// `users` or `traces`.
    list: &'static str,
    params: ViewParams<S>,
) -> impl IntoView {
    let href = format!("/export/{list}.csv{}", query_string(&params.pairs(false)));
    view! {
        <a class="export" href=href rel="external" download=format!("{list}.csv")>"Export CSV"</a>
    }
}
