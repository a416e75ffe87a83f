//! The Users view, read from the in-memory aggregate.

use super::cube::query::UserTotals;
use super::window::{hours, rfc3339};
use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::query::cursor;
use crate::model::{Dir, UserRow, UserSort, UsersFilter, UsersPage};

impl Store {
    /// One page of users ranked by `sort` (ties by user id, in the same direction), with their
    /// totals over the filter's window (whole hours).
    pub async fn list_users(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        sort: UserSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<UsersPage, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let f = filter.clone();
        let (rows, total) = self
            .read_cube(project_id, move |c| {
                let s = c.scope(&f, from_hour, to_hour);
                c.users(&s, sort, dir, offset as usize, limit as usize)
            })
            .await?;
        let next = u64::from(offset) + rows.len() as u64;
        Ok(UsersPage {
            from: rfc3339(from_hour * 3_600_000),
            to: rfc3339(to_hour * 3_600_000),
            total_users: total,
            next_cursor: (rows.len() as u32 == limit && (next as i64) < total)
                .then(|| cursor(next as u32, from_hour * 3_600_000, to_hour * 3_600_000)),
            users: rows.into_iter().map(user_row).collect(),
        })
    }
}

/// A user's row of the API from the aggregate's totals.
pub(super) fn user_row(r: UserTotals) -> UserRow {
    UserRow {
        spend_usd: usd_decimal(r.sums.cost),
        user_id: r.user,
        spend_nano: r.sums.cost,
        traces: r.traces,
        events: r.sums.calls,
        tokens: r.sums.tokens(),
        input_tokens: r.sums.input,
        output_tokens: r.sums.output,
        cache_read_tokens: r.sums.cache_read,
        cache_creation_tokens: r.sums.cache_creation,
        last_seen: rfc3339(r.last_ts),
        top_model: r.top_model,
        unpriced_events: r.sums.unpriced,
    }
}
