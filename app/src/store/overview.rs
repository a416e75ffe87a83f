//! The Overview (and the hourly reads the Models view shares): project-wide totals from
//! `model_hourly` when nothing narrows them, from the per-tag-set rollups when a user or tag does.

use super::models::models_of;
use super::users::{HourRanges, rfc3339, tag_clauses, trace_dim_cond};
use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::{Dir, Kpis, Overview, SpendSeries, Stack, UserSort, UsersFilter};
use sqlx::{AssertSqlSafe, FromRow};
use std::collections::HashMap;

/// How many users the filter bar's user menu offers.
const USER_MENU_SIZE: i64 = 20;

#[derive(FromRow)]
pub(super) struct HourModel {
    pub(super) hour: i64,
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) events: i64,
    pub(super) errors: i64,
    pub(super) unpriced: i64,
    pub(super) input: i64,
    pub(super) output: i64,
    pub(super) cache_read: i64,
    pub(super) cache_creation: i64,
    pub(super) cost: i64,
    pub(super) latency: i64,
}

const SUMS: &str = "SUM(events) AS events, SUM(errors) AS errors, SUM(unpriced) AS unpriced,
    SUM(input_tokens) AS input, SUM(output_tokens) AS output, SUM(cache_read_tokens) AS cache_read,
    SUM(cache_creation_tokens) AS cache_creation, SUM(cost_nano) AS cost, SUM(latency_ms_sum) AS latency";

/// The user condition on a rollup alias: through the tag-set index when a user is given (so the
/// planner walks that user's tag sets, not every hour of every user), else a no-op that still
/// names ?4.
pub(super) fn user_cond(filter: &UsersFilter, alias: &str) -> String {
    if filter.user.is_some() {
        format!("AND {alias}.tag_set_id IN (SELECT id FROM tag_sets WHERE project_id = ?1 AND user_id = ?4)")
    } else {
        "AND ?4 IS NULL".to_string()
    }
}

/// A query over the window's hours with the filter's standard parameters bound: ?1 project,
/// ?2–?3 hour range, ?4 user, ?5 provider, ?6 agent, then the tag pairs from ?7.
pub(super) fn scoped<'q, O>(
    sql: String,
    project_id: i64,
    filter: &'q UsersFilter,
    from_hour: i64,
    to_hour: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, O, sqlx::sqlite::SqliteArguments>
where
    O: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    let mut q = sqlx::query_as(AssertSqlSafe(sql))
        .bind(project_id)
        .bind(from_hour)
        .bind(to_hour)
        .bind(&filter.user)
        .bind(&filter.provider)
        .bind(&filter.agent);
    for (k, v) in &filter.tags {
        q = q.bind(k).bind(v);
    }
    q
}

pub(super) fn narrowed(filter: &UsersFilter) -> bool {
    filter.user.is_some() || !filter.tags.is_empty()
}

/// Series kept by name in a chart; the rest are summed as "other".
const MAX_SERIES: usize = 6;

impl Store {
    /// Totals per (hour, provider, model) in `[from_hour, to_hour)`.
    pub(super) async fn hour_models(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<HourModel>, StoreError> {
        if !narrowed(filter) {
            let sql = format!(
                "SELECT hour, provider, model, {SUMS} FROM model_hourly
                 WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3
                   AND (?4 IS NULL OR provider = ?4) AND (?5 IS NULL OR agent = ?5)
                 GROUP BY hour, provider, model"
            );
            return Ok(sqlx::query_as(AssertSqlSafe(sql))
                .bind(project_id)
                .bind(from_hour)
                .bind(to_hour)
                .bind(&filter.provider)
                .bind(&filter.agent)
                .fetch_all(&self.read)
                .await?);
        }
        let tags = tag_clauses("r.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "r");
        let sql = format!(
            "SELECT r.hour AS hour, r.provider AS provider, r.model AS model, {SUMS}
             FROM rollup_hourly r
             WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 {user}
               AND (?5 IS NULL OR r.provider = ?5) AND (?6 IS NULL OR r.agent = ?6) {tags}
             GROUP BY r.hour, r.provider, r.model"
        );
        Ok(scoped(sql, project_id, filter, from_hour, to_hour).fetch_all(&self.read).await?)
    }

    async fn count_traces(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<i64, StoreError> {
        if filter.narrows_calls() {
            // Traces with at least one call to the provider / by the agent.
            let tags = tag_clauses("h.tag_set_id", filter.tags.len(), 7);
            let user = user_cond(filter, "h");
            let dims = trace_dim_cond(filter, "h", 5, 6);
            let sql = format!(
                "SELECT COALESCE(SUM(h.traces), 0) FROM trace_dim_hourly h
                 WHERE h.project_id = ?1 {dims} AND h.hour >= ?2 AND h.hour < ?3 {user} {tags}"
            );
            let (n,): (i64,) =
                scoped(sql, project_id, filter, from_hour, to_hour).fetch_one(&self.read).await?;
            return Ok(n);
        }
        if !narrowed(filter) {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COALESCE(SUM(traces), 0) FROM project_trace_hourly WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3",
            )
            .bind(project_id)
            .bind(from_hour)
            .bind(to_hour)
            .fetch_one(&self.read)
            .await?;
            return Ok(n);
        }
        let tags = tag_clauses("h.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "h");
        // Provider and agent are unset here; the clause only names ?5 and ?6.
        let sql = format!(
            "SELECT COALESCE(SUM(h.traces), 0) FROM trace_hourly h
             WHERE h.project_id = ?1 AND h.hour >= ?2 AND h.hour < ?3 {user}
               AND ?5 IS NULL AND ?6 IS NULL {tags}"
        );
        let (n,): (i64,) = scoped(sql, project_id, filter, from_hour, to_hour).fetch_one(&self.read).await?;
        Ok(n)
    }

    async fn count_users(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<i64, StoreError> {
        let f = UsersFilter { from_ms: from_hour * 3_600_000, to_ms: to_hour * 3_600_000, ..filter.clone() };
        if !narrowed(filter) && !filter.narrows_calls() {
            let r = HourRanges::of(&f);
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(DISTINCT user_id) FROM (
                   SELECT user_id FROM user_daily WHERE project_id = ?1 AND day >= ?2 AND day < ?3 AND events > 0
                   UNION ALL
                   SELECT user_id FROM user_hourly WHERE project_id = ?1 AND events > 0
                     AND ((hour >= ?4 AND hour < ?5) OR (hour >= ?6 AND hour < ?7)))",
            )
            .bind(project_id)
            .bind(r.first_day)
            .bind(r.end_day)
            .bind(r.from_hour)
            .bind(r.head_end)
            .bind(r.tail_start)
            .bind(r.to_hour)
            .fetch_one(&self.read)
            .await?;
            return Ok(n);
        }
        let tags = tag_clauses("r.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "r");
        let sql = format!(
            "SELECT COUNT(DISTINCT t.user_id) FROM rollup_hourly r JOIN tag_sets t ON t.id = r.tag_set_id
             WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 AND t.user_id IS NOT NULL
               {user} AND (?5 IS NULL OR r.provider = ?5)
               AND (?6 IS NULL OR r.agent = ?6) {tags}"
        );
        let (n,): (i64,) = scoped(sql, project_id, filter, from_hour, to_hour).fetch_one(&self.read).await?;
        Ok(n)
    }

    async fn kpis(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<(Kpis, Vec<HourModel>), StoreError> {
        let rows = self.hour_models(project_id, filter, from_hour, to_hour).await?;
        let mut k = Kpis {
            traces: self.count_traces(project_id, filter, from_hour, to_hour).await?,
            active_users: self.count_users(project_id, filter, from_hour, to_hour).await?,
            ..Kpis::default()
        };
        for r in &rows {
            k.spend_nano += r.cost;
            k.calls += r.events;
            k.tokens += r.input + r.output + r.cache_read + r.cache_creation;
            k.errors += r.errors;
            k.unpriced += r.unpriced;
        }
        Ok((k, rows))
    }

    /// The Overview of the filter's window: KPIs now and in the window before, spend by model
    /// over time, top users and models.
    pub async fn overview(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        stack: Stack,
    ) -> Result<Overview, StoreError> {
        let r = HourRanges::of(filter);
        let len = r.to_hour - r.from_hour;
        let (current, rows) = self.kpis(project_id, filter, r.from_hour, r.to_hour).await?;
        let (previous, _) = self.kpis(project_id, filter, r.from_hour - len, r.from_hour).await?;
        let top_users = self.list_users(project_id, filter, UserSort::Spend, Dir::Desc, 0, 5).await?.users;
        let mut top_models = models_of(&rows);
        top_models.truncate(5);
        let spend_by_model = series_of(&rows, r.from_hour, r.to_hour, stack);
        Ok(Overview {
            from: rfc3339(r.from_hour * 3_600_000),
            to: rfc3339(r.to_hour * 3_600_000),
            chart_svg: crate::charts::spend_chart(&spend_by_model),
            current,
            previous,
            spend_by_model,
            top_users,
            top_models,
        })
    }
}

/// Spend per bucket (hours for windows up to two days, else UTC days) per model or provider, the biggest
/// `MAX_SERIES` by name and the rest as "other".
pub(super) fn series_of(rows: &[HourModel], from_hour: i64, to_hour: i64, stack: Stack) -> SpendSeries {
    fn by(stack: Stack) -> fn(&HourModel) -> &str {
        match stack {
            Stack::Model => |r| &r.model,
            Stack::Provider => |r| &r.provider,
        }
    }
    let key = by(stack);
    let per_bucket_hours = if to_hour - from_hour <= 48 { 1 } else { 24 };
    let first = from_hour.div_euclid(per_bucket_hours);
    let last = (to_hour - 1).div_euclid(per_bucket_hours);
    let n = (last - first + 1).max(0) as usize;
    let mut totals: HashMap<&str, i64> = HashMap::new();
    for r in rows {
        *totals.entry(key(r)).or_default() += r.cost;
    }
    let mut names: Vec<(&str, i64)> = totals.into_iter().filter(|(_, c)| *c > 0).collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: Vec<&str> = names.iter().take(MAX_SERIES).map(|(m, _)| *m).collect();
    let has_other = names.len() > MAX_SERIES;
    let mut series: Vec<(String, Vec<i64>)> = kept.iter().map(|m| (m.to_string(), vec![0; n])).collect();
    if has_other {
        series.push(("other".into(), vec![0; n]));
    }
    for r in rows {
        let i = (r.hour.div_euclid(per_bucket_hours) - first) as usize;
        if i >= n || r.cost == 0 {
            continue;
        }
        let s = kept.iter().position(|m| *m == key(r)).unwrap_or(kept.len());
        if s < series.len() {
            series[s].1[i] += r.cost;
        }
    }
    SpendSeries {
        bucket_ms: per_bucket_hours * 3_600_000,
        buckets: (0..n as i64).map(|i| (first + i) * per_bucket_hours * 3_600_000).collect(),
        series,
    }
}

#[derive(FromRow)]
struct ToolDbRow {
    tool: String,
    calls: i64,
    users: i64,
    traces: i64,
    spend: i64,
}

impl Store {
    /// Per tool name in the filter's window: calls, distinct users and traces, spend of those calls.
    pub async fn list_tools(
        &self,
        project_id: i64,
        filter: &UsersFilter,
    ) -> Result<Vec<crate::model::ToolRow>, StoreError> {
        let r = HourRanges::of(filter);
        let tags = tag_clauses("tag_set_id", filter.tags.len(), 7);
        let sql = format!(
            "SELECT tool, COUNT(*) AS calls, COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT trace_id) AS traces,
               COALESCE(SUM(cost_nano), 0) AS spend
             FROM event_tools
             WHERE project_id = ?1 AND ts >= ?2 AND ts < ?3 AND (?4 IS NULL OR user_id = ?4)
               AND (?5 IS NULL OR provider = ?5) AND (?6 IS NULL OR agent = ?6) {tags}
             GROUP BY tool ORDER BY spend DESC, calls DESC, tool"
        );
        let mut q = sqlx::query_as::<_, ToolDbRow>(AssertSqlSafe(sql))
            .bind(project_id)
            .bind(r.from_hour * 3_600_000)
            .bind(r.to_hour * 3_600_000)
            .bind(&filter.user)
            .bind(&filter.provider)
            .bind(&filter.agent);
        for (k, v) in &filter.tags {
            q = q.bind(k).bind(v);
        }
        Ok(q.fetch_all(&self.read)
            .await?
            .into_iter()
            .map(|t| crate::model::ToolRow {
                spend_usd: usd_decimal(t.spend),
                tool: t.tool,
                calls: t.calls,
                users: t.users,
                traces: t.traces,
                spend_nano: t.spend,
            })
            .collect())
    }
}

impl Store {
    /// Providers and agents with calls in the filter's window (all of them, whatever else is
    /// filtered, so a menu never offers only the current choice).
    pub async fn filter_values(
        &self,
        project_id: i64,
        filter: &UsersFilter,
    ) -> Result<crate::model::FilterValues, StoreError> {
        let r = HourRanges::of(filter);
        let pairs: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT provider, agent FROM model_hourly WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3",
        )
        .bind(project_id)
        .bind(r.from_hour)
        .bind(r.to_hour)
        .fetch_all(&self.read)
        .await?;
        let mut providers: Vec<String> = pairs.iter().map(|(p, _)| p.clone()).collect();
        let mut agents: Vec<String> = pairs.into_iter().map(|(_, a)| a).filter(|a| !a.is_empty()).collect();
        providers.sort();
        providers.dedup();
        agents.sort();
        agents.dedup();
        // The user menu offers the biggest spenders of the days the window touches (a picker,
        // so whole days are close enough and far cheaper than the hours).
        let users: Vec<(String,)> = sqlx::query_as(
            "SELECT user_id FROM user_daily WHERE project_id = ?1 AND day >= ?2 AND day < ?3
             GROUP BY user_id ORDER BY SUM(cost_nano) DESC, user_id LIMIT ?4",
        )
        .bind(project_id)
        .bind(r.from_hour.div_euclid(24))
        .bind((r.to_hour + 23).div_euclid(24))
        .bind(USER_MENU_SIZE)
        .fetch_all(&self.read)
        .await?;
        let users = users.into_iter().map(|(u,)| u).collect();
        Ok(crate::model::FilterValues { providers, agents, users })
    }
}
