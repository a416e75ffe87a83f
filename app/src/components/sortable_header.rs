//! A column header that sorts the table by its column, as a link.

use crate::model::{Dir, SortKey, ViewParams};
use leptos::prelude::*;

/// `<th>` with a link that sorts by `sort` (flipping the direction when already sorted by it).
#[component]
pub fn SortableHeader<S: SortKey + Send + Sync>(
    /// The current view.
    params: ViewParams<S>,
    /// The view's path.
    base: &'static str,
    /// The column this header sorts by.
    sort: S,
    /// Header text.
    label: &'static str,
    /// Right-aligned numeric column.
    #[prop(optional)]
    numeric: bool,
) -> impl IntoView {
    let active = params.sort == sort;
    let aria = match (active, params.dir) {
        (false, _) => "none",
        (true, Dir::Asc) => "ascending",
        (true, Dir::Desc) => "descending",
    };
    let arrow = match (active, params.dir) {
        (false, _) => "",
        (true, Dir::Asc) => " ▲",
        (true, Dir::Desc) => " ▼",
    };
    let href = format!("{base}{}", params.with_sort(sort).to_query());
    view! {
        <th scope="col" aria-sort=aria class:num=numeric>
            <a href=href>{label}{arrow}</a>
        </th>
    }
}
