//! A column header that sorts the table by its column, as a link.

use crate::model::{Dir, UserSort, UsersParams};
use leptos::prelude::*;

/// `<th>` with a link that sorts by `sort` (flipping the direction when already sorted by it).
#[component]
pub fn SortableHeader(
    /// The current view.
    params: UsersParams,
    /// The column this header sorts by.
    sort: UserSort,
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
    let href = format!("/ai-apps/users{}", params.with_sort(sort).to_query());
    view! {
        <th scope="col" aria-sort=aria class:num=numeric>
            <a href=href>{label}{arrow}</a>
        </th>
    }
}
