//! The Users view, read from the hourly rollups (never from raw events).

use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::query::cursor;
use crate::model::{Dir, ParamError, UserRow, UserSort, UsersFilter, UsersPage};
use sqlx::{AssertSqlSafe, FromRow, QueryBuilder, Sqlite};
use std::collections::HashMap;

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
pub(crate) fn tag_clauses(column: &str, filters: usize, first: usize) -> String {
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

/// The `trace_dim_hourly` rows of a provider and/or agent filter (bound at `?p` and `?a`): the
/// traces with a call to that provider, by that agent, or both.
pub(crate) fn trace_dim_cond(filter: &UsersFilter, alias: &str, p: usize, a: usize) -> String {
    let kind = match (filter.provider.is_some(), filter.agent.is_some()) {
        (true, true) => "pa",
        (true, false) => "p",
        _ => "a",
    };
    format!(
        "AND {alias}.kind = '{kind}' AND {alias}.provider = COALESCE(?{p}, '') AND {alias}.agent = COALESCE(?{a}, '')"
    )
}

/// `events <alias>`, for a scan of the window's calls, with the access path chosen here rather
/// than by the planner: a user's calls through the tag-set index; a window longer than three days
/// reads most of the table, where walking the time index row by row is about three times slower
/// than a plain scan.
pub(crate) fn events_scan(filter: &UsersFilter, alias: &str) -> String {
    let long = filter.to_ms - filter.from_ms > 3 * 86_400_000;
    if filter.user.is_some() {
        // One user's few tag sets: their calls through the tag-set index, never the whole window.
        format!("events {alias} INDEXED BY events_tag_set")
    } else if long {
        format!("events {alias} NOT INDEXED")
    } else {
        format!("events {alias}")
    }
}

/// RFC 3339 (UTC, seconds) of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Hour range of a filter: `from` floored, `to` ceiled to whole hours (`to` exclusive).
fn hours(filter: &UsersFilter) -> (i64, i64) {
    (super::hour_of(filter.from_ms), super::hour_of(filter.to_ms + 3_599_999))
}

/// A window split into whole UTC days (`first_day..end_day`, read from the daily tables) and the
/// hours before and after them (`from_hour..head_end`, `tail_start..to_hour`, from the hourly ones).
pub(crate) struct HourRanges {
    pub(crate) from_hour: i64,
    pub(crate) to_hour: i64,
    pub(crate) first_day: i64,
    pub(crate) end_day: i64,
    pub(crate) head_end: i64,
    pub(crate) tail_start: i64,
}

impl HourRanges {
    pub(crate) fn of(filter: &UsersFilter) -> HourRanges {
        let (from_hour, to_hour) = hours(filter);
        let first_day = from_hour.div_euclid(24) + i64::from(from_hour.rem_euclid(24) != 0);
        let end_day = to_hour.div_euclid(24);
        if first_day < end_day {
            HourRanges {
                from_hour,
                to_hour,
                first_day,
                end_day,
                head_end: first_day * 24,
                tail_start: end_day * 24,
            }
        } else {
            // No whole day inside: everything from the hourly tables.
            HourRanges {
                from_hour,
                to_hour,
                first_day: 0,
                end_day: 0,
                head_end: to_hour,
                tail_start: to_hour,
            }
        }
    }
}

fn page_of(rows: Vec<Row>, from_hour: i64, to_hour: i64, offset: u32, limit: u32) -> UsersPage {
    let total = rows.first().map_or(0, |r| r.total);
    let next = u64::from(offset) + rows.len() as u64;
    UsersPage {
        from: rfc3339(from_hour * 3_600_000),
        to: rfc3339(to_hour * 3_600_000),
        total_users: total,
        next_cursor: (rows.len() as u32 == limit && (next as i64) < total)
            .then(|| cursor(next as u32, from_hour * 3_600_000, to_hour * 3_600_000)),
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
    }
}

impl Store {
    /// One page of users ranked by `sort`, with their totals over the filter's window.
    /// Without tag filters this reads the per-user rollups (whole days from `user_daily`, the
    /// window's partial days from `user_hourly`) and then the top model of just the page's users;
    /// with tag filters, sorted by top model, or within a day, it aggregates the per-tag-set rollups.
    pub async fn list_users(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        sort: UserSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<UsersPage, StoreError> {
        // A window without a whole UTC day in it (1d) is cheaper to aggregate from the hourly
        // rollups directly than to split.
        let has_whole_day = HourRanges::of(filter).end_day > 0;
        if filter.tags.is_empty() && !filter.narrows_calls() && sort != UserSort::TopModel && has_whole_day {
            self.list_users_from_user_rollups(project_id, filter, sort, dir, offset, limit).await
        } else {
            self.list_users_from_tag_sets(project_id, filter, sort, dir, offset, limit).await
        }
    }

    async fn list_users_from_user_rollups(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        sort: UserSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<UsersPage, StoreError> {
        let r = HourRanges::of(filter);
        let (col, dir_sql) = (order_column(sort), dir.as_str());
        let sql = format!(
            "WITH parts AS (
               SELECT user_id, events, unpriced, input_tokens, output_tokens, cache_read_tokens,
                 cache_creation_tokens, cost_nano, max_ts, traces
               FROM user_daily WHERE project_id = ?1 AND day >= ?2 AND day < ?3 AND (?10 IS NULL OR user_id = ?10)
               UNION ALL
               SELECT user_id, events, unpriced, input_tokens, output_tokens, cache_read_tokens,
                 cache_creation_tokens, cost_nano, max_ts, traces
               FROM user_hourly WHERE project_id = ?1 AND (?10 IS NULL OR user_id = ?10)
                 AND ((hour >= ?4 AND hour < ?5) OR (hour >= ?6 AND hour < ?7))
             ), u AS (
               SELECT user_id, SUM(cost_nano) AS spend, SUM(traces) AS traces, SUM(events) AS events,
                 SUM(input_tokens) AS input, SUM(output_tokens) AS output,
                 SUM(cache_read_tokens) AS cache_read, SUM(cache_creation_tokens) AS cache_creation,
                 SUM(input_tokens) + SUM(output_tokens) + SUM(cache_read_tokens)
                   + SUM(cache_creation_tokens) AS tokens,
                 MAX(max_ts) AS last_ts, SUM(unpriced) AS unpriced
               FROM parts GROUP BY user_id HAVING SUM(events) > 0
             )
             SELECT u.user_id, spend, traces, events, tokens, input, output, cache_read, cache_creation,
               last_ts, '' AS top_model, unpriced, COUNT(*) OVER () AS total
             FROM u ORDER BY {col} {dir_sql}, u.user_id {dir_sql}
             LIMIT ?8 OFFSET ?9"
        );
        let mut rows = sqlx::query_as::<_, Row>(AssertSqlSafe(sql))
            .bind(project_id)
            .bind(r.first_day)
            .bind(r.end_day)
            .bind(r.from_hour)
            .bind(r.head_end)
            .bind(r.tail_start)
            .bind(r.to_hour)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .bind(&filter.user)
            .fetch_all(&self.read)
            .await?;
        if !rows.is_empty() {
            let top = self.top_models(project_id, &rows, &r).await?;
            for row in &mut rows {
                row.top_model = top.get(&row.user_id).cloned().unwrap_or_default();
            }
        }
        Ok(page_of(rows, r.from_hour, r.to_hour, offset, limit))
    }

    /// The model each of `rows`' users spent most on in the window (ties: more events, then the
    /// model id): whole days from `user_model_daily`, the partial days at the edges from the
    /// hourly rollups through their tag-set index.
    async fn top_models(
        &self,
        project_id: i64,
        rows: &[Row],
        r: &HourRanges,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("WITH page(user_id) AS (");
        q.push_values(rows, |mut b, row| {
            b.push_bind(&row.user_id);
        });
        q.push(
            ") SELECT user_id, model, SUM(cost_nano), SUM(events) FROM (
                 SELECT user_id, model, cost_nano, events FROM user_model_daily
                 WHERE project_id = ",
        );
        q.push_bind(project_id)
            .push(" AND user_id IN (SELECT user_id FROM page) AND day >= ")
            .push_bind(r.first_day)
            .push(" AND day < ")
            .push_bind(r.end_day)
            .push(
                " UNION ALL
                 SELECT t.user_id, h.model, h.cost_nano, h.events
                 FROM tag_sets t JOIN rollup_hourly h ON h.project_id = t.project_id AND h.tag_set_id = t.id
                 WHERE t.project_id = ",
            )
            .push_bind(project_id)
            .push(" AND t.user_id IN (SELECT user_id FROM page) AND ((h.hour >= ")
            .push_bind(r.from_hour)
            .push(" AND h.hour < ")
            .push_bind(r.head_end)
            .push(") OR (h.hour >= ")
            .push_bind(r.tail_start)
            .push(" AND h.hour < ")
            .push_bind(r.to_hour)
            .push("))) GROUP BY user_id, model");
        let per_model: Vec<(String, String, i64, i64)> = q.build_query_as().fetch_all(&self.read).await?;
        let mut best: HashMap<String, (i64, i64, String)> = HashMap::new();
        for (user, model, cost, events) in per_model {
            let better = match best.get(&user) {
                None => true,
                Some((c, e, m)) => (cost, events, std::cmp::Reverse(&model)) > (*c, *e, std::cmp::Reverse(m)),
            };
            if better {
                best.insert(user, (cost, events, model));
            }
        }
        Ok(best.into_iter().map(|(u, (_, _, m))| (u, m)).collect())
    }

    /// The general path: aggregates the per-tag-set hourly rollups (any tag filters, any sort).
    pub async fn list_users_from_tag_sets(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        sort: UserSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<UsersPage, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let tags_r = tag_clauses("r.tag_set_id", filter.tags.len(), 9);
        let tags_h = tag_clauses("h.tag_set_id", filter.tags.len(), 9);
        // Traces are counted per hour and tag set, whatever their calls; when a provider or agent
        // narrows the calls, count the traces that have such a call from the events instead.
        let traces_cte = if filter.narrows_calls() {
            let dims = trace_dim_cond(filter, "h", 7, 8);
            format!(
                "SELECT t.user_id AS user_id, SUM(h.traces) AS traces
                 FROM trace_dim_hourly h JOIN tag_sets t ON t.id = h.tag_set_id
                 WHERE h.project_id = ?1 {dims} AND h.hour >= ?2 AND h.hour < ?3 AND t.user_id IS NOT NULL
                   AND (?6 IS NULL OR t.user_id = ?6) {tags_h}
                 GROUP BY t.user_id"
            )
        } else {
            format!(
                "SELECT t.user_id AS user_id, SUM(h.traces) AS traces
                 FROM trace_hourly h JOIN tag_sets t ON t.id = h.tag_set_id
                 WHERE h.project_id = ?1 AND h.hour >= ?2 AND h.hour < ?3 AND t.user_id IS NOT NULL
                   AND (?6 IS NULL OR t.user_id = ?6) {tags_h}
                 GROUP BY t.user_id"
            )
        };
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
               WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 AND t.user_id IS NOT NULL
                 AND (?6 IS NULL OR t.user_id = ?6) AND (?7 IS NULL OR r.provider = ?7)
                 AND (?8 IS NULL OR r.agent = ?8) {tags_r}
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
             ), per_user_traces AS ({traces_cte})
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
            .bind(i64::from(offset))
            .bind(&filter.user)
            .bind(&filter.provider)
            .bind(&filter.agent);
        for (k, v) in &filter.tags {
            q = q.bind(k).bind(v);
        }
        let rows = q.fetch_all(&self.read).await?;
        Ok(page_of(rows, from_hour, to_hour, offset, limit))
    }
}

/// The longest custom range a view accepts.
pub const MAX_RANGE_DAYS: i64 = 732;

/// The time range and tags a query reads: `from`/`to` (RFC 3339 or dates) when given, else the
/// window ending at `now_ms`.
pub fn resolve_filter<S: crate::model::SortKey>(
    p: &crate::model::ViewParams<S>,
    now_ms: i64,
) -> Result<UsersFilter, ParamError> {
    // A bound is an RFC 3339 instant, or a UTC date: `from` its start, `to` its end (the day
    // after's start), so `from=2026-11-01&to=2026-11-07` is those seven whole days.
    let parse = |name: &str, v: &str, day_offset: i64| {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
            return Ok(t.timestamp_millis());
        }
        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() + day_offset * 86_400_000)
            .ok_or_else(|| ParamError {
                param: name.into(),
                message: "must be an RFC 3339 timestamp or a YYYY-MM-DD date".into(),
            })
    };
    let (from_ms, to_ms) = match (p.pin, &p.from, &p.to) {
        (Some(pin), _, _) => pin,
        (None, Some(f), Some(t)) => (parse("from", f, 0)?, parse("to", t, 1)?),
        _ => (now_ms - p.window.hours() * 3_600_000, now_ms),
    };
    if to_ms <= from_ms {
        return Err(ParamError { param: "to".into(), message: "must be after from".into() });
    }
    if to_ms - from_ms > MAX_RANGE_DAYS * 86_400_000 {
        return Err(ParamError {
            param: "to".into(),
            message: format!("a range spans at most {MAX_RANGE_DAYS} days"),
        });
    }
    Ok(UsersFilter {
        from_ms,
        to_ms,
        tags: p.tags.clone(),
        user: p.user.clone(),
        provider: p.provider.clone(),
        agent: p.agent.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Usage;
    use crate::store::ingest::EventIn;
    use std::collections::BTreeMap;

    #[test]
    fn dates_bound_whole_utc_days_and_ranges_are_capped() {
        let p = crate::model::UsersParams::parse_query("from=2026-11-01&to=2026-11-07").expect("valid");
        let f = resolve_filter(&p, 0).expect("resolves");
        assert_eq!(f.from_ms, 1_793_491_200_000); // 2026-11-01T00:00:00Z
        assert_eq!(f.to_ms - f.from_ms, 7 * 86_400_000);
        let p = crate::model::UsersParams::parse_query("from=2020-01-01&to=2026-01-01").expect("valid");
        assert_eq!(resolve_filter(&p, 0).map_err(|e| e.param), Err("to".into()));
        let p = crate::model::UsersParams::parse_query("from=yesterday&to=2026-01-01").expect("valid");
        assert_eq!(resolve_filter(&p, 0).map_err(|e| e.param), Err("from".into()));
    }

    /// Both read paths must agree on every window, sort and page: the per-user rollups are a
    /// cache of the per-tag-set ones, not a second source of truth.
    #[tokio::test]
    async fn user_rollups_agree_with_tag_set_rollups() {
        let dir = std::env::temp_dir().join(format!("tokentally-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Store::open(&dir.join("t.db")).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        let now = 1_800_000_000_000i64;
        let models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "no-such-model"];
        let mut x = 12345u64;
        let mut events = Vec::new();
        for i in 0..3_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let user = format!("u{}", (x >> 33) % 40);
            let feature = ["chat", "search"][((x >> 20) % 2) as usize];
            events.push(EventIn {
                id: format!("e{i}"),
                trace_id: Some(format!("t{}", i / 2)),
                ts_ms: now - ((x >> 11) % (35 * 86_400_000)) as i64,
                kind: "llm".into(),
                provider: if i % 3 == 0 { "anthropic" } else { "openai" }.into(),
                model: models[((x >> 40) % 4) as usize].into(),
                tags: BTreeMap::from([("userId".into(), user), ("feature".into(), feature.into())]),
                usage: Usage {
                    input: (x >> 7) % 5000,
                    output: (x >> 17) % 800,
                    cache_read: (x >> 27) % 900,
                    ..Usage::default()
                },
                ..EventIn::default()
            });
        }
        for chunk in events.chunks(250) {
            store.ingest(project, &[], chunk).await.expect("ingest");
        }
        for (from_ms, to_ms) in [
            (now - 86_400_000, now),
            (now - 7 * 86_400_000, now),
            (now - 28 * 86_400_000, now),
            (now - 28 * 86_400_000 - 1_800_000, now - 3_600_000 * 5 - 60_000),
            (now - 3 * 3_600_000, now - 3_600_000),
        ] {
            let f = UsersFilter { from_ms, to_ms, tags: Vec::new(), ..UsersFilter::default() };
            for sort in
                [UserSort::Spend, UserSort::Tokens, UserSort::Traces, UserSort::LastSeen, UserSort::User]
            {
                for (dir, offset, limit) in [(Dir::Desc, 0, 50), (Dir::Asc, 0, 7), (Dir::Desc, 7, 7)] {
                    let fast = store.list_users(project, &f, sort, dir, offset, limit).await.expect("fast");
                    let general = store
                        .list_users_from_tag_sets(project, &f, sort, dir, offset, limit)
                        .await
                        .expect("general");
                    assert_eq!(fast, general, "{from_ms}..{to_ms} {sort:?} {dir:?} {offset}");
                }
            }
        }
        let all = store
            .list_users(
                project,
                &UsersFilter {
                    from_ms: now - 28 * 86_400_000,
                    to_ms: now,
                    tags: Vec::new(),
                    ..UsersFilter::default()
                },
                UserSort::Spend,
                Dir::Desc,
                0,
                50,
            )
            .await
            .expect("list");
        assert!(all.total_users >= 39, "{}", all.total_users);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
