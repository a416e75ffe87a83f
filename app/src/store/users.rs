//! The Users view, read from the hourly rollups (never from raw events).

use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::{Dir, ParamError, UserRow, UserSort, UsersFilter, UsersPage, UsersParams};
use sqlx::{AssertSqlSafe, FromRow};

#[derive(FromRow)]
struct Row {
    user_id: String,
    spend: i64,
    traces: i64,
    events: i64,
    tokens: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    last_ts: i64,
    top_model: String,
    unpriced: i64,
    total: i64,
}

fn order_column(sort: UserSort) -> &'static str {
    match sort {
        UserSort::User => "u.user_id",
        UserSort::Spend => "spend",
        UserSort::Traces => "traces",
        UserSort::Events => "events",
        UserSort::Tokens => "tokens",
        UserSort::LastSeen => "last_ts",
        UserSort::TopModel => "top_model",
    }
}

/// `AND <column> IN (tag sets having key=value)` for each filter, with bind numbers from `first`.
fn tag_clauses(column: &str, filters: usize, first: usize) -> String {
    (0..filters)
        .map(|i| {
            let k = first + 2 * i;
            format!(
                " AND {column} IN (SELECT tag_set_id FROM tag_kv WHERE key = ?{k} AND value = ?{})",
                k + 1
            )
        })
        .collect()
}

/// RFC 3339 (UTC, seconds) of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Store {
    /// One page of users ranked by `sort`, with their totals over the filter's window.
    pub async fn list_users(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        sort: UserSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<UsersPage, StoreError> {
        let from_hour = super::hour_of(filter.from_ms);
        let to_hour = super::hour_of(filter.to_ms + 3_599_999);
        let tags_r = tag_clauses("r.tag_set_id", filter.tags.len(), 6);
        let tags_h = tag_clauses("h.tag_set_id", filter.tags.len(), 6);
        let (col, dir_sql) = (order_column(sort), dir.as_str());
        // Tie-break on user id so pages are stable.
        let sql = format!(
            "WITH per_model AS (
               SELECT t.user_id AS user_id, r.model AS model, SUM(r.cost_nano) AS cost,
                 SUM(r.events) AS events, SUM(r.unpriced) AS unpriced,
                 SUM(r.input_tokens) AS input, SUM(r.output_tokens) AS output,
                 SUM(r.cache_read_tokens) AS cache_read, SUM(r.cache_creation_tokens) AS cache_creation,
                 MAX(r.max_ts) AS last_ts
               FROM rollup_hourly r JOIN tag_sets t ON t.id = r.tag_set_id
               WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 AND t.user_id IS NOT NULL {tags_r}
               GROUP BY t.user_id, r.model
             ), ranked AS (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY cost DESC, events DESC, model) AS rn
               FROM per_model
             ), per_user AS (
               SELECT user_id, SUM(cost) AS spend, SUM(events) AS events, SUM(unpriced) AS unpriced,
                 SUM(input) AS input, SUM(output) AS output, SUM(cache_read) AS cache_read,
                 SUM(cache_creation) AS cache_creation,
                 SUM(input) + SUM(output) + SUM(cache_read) + SUM(cache_creation) AS tokens,
                 MAX(last_ts) AS last_ts, MAX(CASE WHEN rn = 1 THEN model END) AS top_model
               FROM ranked GROUP BY user_id
             ), per_user_traces AS (
               SELECT t.user_id AS user_id, SUM(h.traces) AS traces
               FROM trace_hourly h JOIN tag_sets t ON t.id = h.tag_set_id
               WHERE h.project_id = ?1 AND h.hour >= ?2 AND h.hour < ?3 AND t.user_id IS NOT NULL {tags_h}
               GROUP BY t.user_id
             )
             SELECT u.user_id, u.spend, COALESCE(pt.traces, 0) AS traces, u.events, u.tokens, u.input,
               u.output, u.cache_read, u.cache_creation, u.last_ts, u.top_model, u.unpriced,
               COUNT(*) OVER () AS total
             FROM per_user u LEFT JOIN per_user_traces pt ON pt.user_id = u.user_id
             ORDER BY {col} {dir_sql}, u.user_id {dir_sql}
             LIMIT ?4 OFFSET ?5"
        );
        let mut q = sqlx::query_as::<_, Row>(AssertSqlSafe(sql))
            .bind(project_id)
            .bind(from_hour)
            .bind(to_hour)
            .bind(i64::from(limit))
            .bind(i64::from(offset));
        for (k, v) in &filter.tags {
            q = q.bind(k).bind(v);
        }
        let rows = q.fetch_all(&self.read).await?;
        let total = rows.first().map_or(0, |r| r.total);
        let next = u64::from(offset) + rows.len() as u64;
        Ok(UsersPage {
            from: rfc3339(from_hour * 3_600_000),
            to: rfc3339(to_hour * 3_600_000),
            total_users: total,
            next_cursor: (rows.len() as u32 == limit && (next as i64) < total)
                .then(|| next.to_string()),
            users: rows
                .into_iter()
                .map(|r| UserRow {
                    spend_usd: usd_decimal(r.spend),
                    user_id: r.user_id,
                    spend_nano: r.spend,
                    traces: r.traces,
                    events: r.events,
                    tokens: r.tokens,
                    input_tokens: r.input,
                    output_tokens: r.output,
                    cache_read_tokens: r.cache_read,
                    cache_creation_tokens: r.cache_creation,
                    last_seen: rfc3339(r.last_ts),
                    top_model: r.top_model,
                    unpriced_events: r.unpriced,
                })
                .collect(),
        })
    }
}

/// The time range and tags a query reads: `from`/`to` (RFC 3339) when given, else the window
/// ending at `now_ms`.
pub fn resolve_filter(p: &UsersParams, now_ms: i64) -> Result<UsersFilter, ParamError> {
    let parse = |name: &str, v: &str| {
        chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| t.timestamp_millis())
            .map_err(|_| ParamError {
                param: name.into(),
                message: "must be an RFC 3339 timestamp".into(),
            })
    };
    let (from_ms, to_ms) = match (&p.from, &p.to) {
        (Some(f), Some(t)) => (parse("from", f)?, parse("to", t)?),
        _ => (now_ms - p.window.hours() * 3_600_000, now_ms),
    };
    if to_ms <= from_ms {
        return Err(ParamError {
            param: "to".into(),
            message: "must be after from".into(),
        });
    }
    Ok(UsersFilter {
        from_ms,
        to_ms,
        tags: p.tags.clone(),
    })
}
