//! The Users table: one row per end user, every column sortable. Rendered on the server
//! (`render::users`); the number and time formats are shared with the other views.

use crate::model::money::group_thousands;
use leptos::prelude::*;

/// `1234567` → `1,234,567`.
pub fn count(n: i64) -> String {
    group_thousands(n.max(0) as u64)
}

/// `2026-11-27T17:43:05Z` → `2026-11-27 17:43` (UTC; deterministic on both sides).
pub fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(0..10), rfc3339.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => rfc3339.to_string(),
    }
}

/// A token total with its four buckets underneath.
pub fn tokens_cell(input: i64, output: i64, cache_read: i64, cache_write: i64) -> impl IntoView {
    let buckets = format!(
        "input {} · output {} · cache read {} · cache write {}",
        count(input),
        count(output),
        count(cache_read),
        count(cache_write)
    );
    let title = buckets.clone();
    view! {
        <td class="num" title=title>
            {count(input + output + cache_read + cache_write)}
            <dl class="buckets" aria-label=buckets>
                <div><dt>"in"</dt><dd>{count(input)}</dd></div>
                <div><dt>"out"</dt><dd>{count(output)}</dd></div>
                <div><dt>"cache read"</dt><dd>{count(cache_read)}</dd></div>
                <div><dt>"cache write"</dt><dd>{count(cache_write)}</dd></div>
            </dl>
        </td>
    }
}

/// The Users view's table, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use super::{count, short_time, tokens_cell};
    use crate::api::Rendered;
    use crate::components::{EmptyState, Pagination, SortableHeader};
    use crate::model::query::encode;
    use crate::model::{UserRow, UserSort, UsersPage, UsersParams, format_usd};
    use leptos::prelude::*;

    /// The Users view's path.
    const USERS: &str = "/ai-apps/users";

    /// The table of `page` (or, with no users, the usual reasons).
    pub fn users(page: UsersPage, params: UsersParams) -> Rendered {
        Rendered::of(move || {
            if page.total_users == 0 {
                view! { <EmptyState/> }.into_any()
            } else {
                view! { <UsersTable page params/> }.into_any()
            }
        })
    }

    /// One user's row.
    #[component]
    fn UserRowView(row: UserRow) -> impl IntoView {
        let unpriced = (row.unpriced_events > 0).then(|| {
            let title = format!("{} calls to models with no known price are not in this sum", row.unpriced_events);
            view! { <span class="unpriced" title=title.clone() aria-label=title>{format!("+{} unpriced", row.unpriced_events)}</span> }
        });
        view! {
            <tr>
                <th scope="row" class="user">
                    <a href=format!("/ai-apps/users/{}", encode(&row.user_id))>{row.user_id.clone()}</a>
                </th>
                <td class="num spend">{format_usd(row.spend_nano)} {unpriced}</td>
                <td class="num">{count(row.traces)}</td>
                {tokens_cell(row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_creation_tokens)}
                <td class="time">{short_time(&row.last_seen)}</td>
                <td class="model">{row.top_model}</td>
            </tr>
        }
    }

    /// The table with its sortable headers, tag filters and page links.
    #[component]
    pub fn UsersTable(
        /// The rows to show.
        page: UsersPage,
        /// The view they were read for.
        params: UsersParams,
    ) -> impl IntoView {
        let total = page.total_users;
        let header = |sort: UserSort, label: &'static str, numeric: bool| {
            view! { <SortableHeader params=params.clone() base=USERS sort label numeric/> }
        };
        view! {
            <p class="range">{format!("{} to {} UTC", short_time(&page.from), short_time(&page.to))}</p>
            <div class="table-wrap">
            <table class="data" aria-label="Users by spend">
                <thead>
                    <tr>
                        {header(UserSort::User, "User", false)}
                        {header(UserSort::Spend, "Spend", true)}
                        {header(UserSort::Traces, "Traces", true)}
                        {header(UserSort::Tokens, "Tokens", true)}
                        {header(UserSort::LastSeen, "Last seen (UTC)", false)}
                        {header(UserSort::TopModel, "Top model", false)}
                    </tr>
                </thead>
                <tbody>
                    {page.users.into_iter().map(|row| view! { <UserRowView row/> }).collect_view()}
                </tbody>
            </table>
            </div>
            <Pagination params base=USERS total noun="users"/>
        }
    }
}
