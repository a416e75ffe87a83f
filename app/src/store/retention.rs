//! Retention: deleting a project's events, traces and rollups older than its retention period,
//! in small batches so ingest keeps flowing.

use super::{Store, StoreError};

/// Rows deleted per statement by the retention task, so ingest never waits long.
const RETENTION_BATCH: i64 = 2_000;

impl Store {
    /// Deletes a project's events, traces and rollups from before the UTC day `days` days ago,
    /// in small batches (each its own transaction, so ingest interleaves). Returns the events
    /// removed.
    pub async fn apply_retention(&self, project_id: i64, days: i64, now: i64) -> Result<i64, StoreError> {
        let cutoff_day = now.div_euclid(86_400_000) - days;
        let cutoff_ms = cutoff_day * 86_400_000;
        let cutoff_hour = cutoff_day * 24;
        let mut events = 0;
        // Events and traces: a batch of old ones at a time (by their time index).
        for (table, column) in [("events", "ts"), ("traces", "started_at")] {
            loop {
                let n = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE project_id = ?1 AND id IN (SELECT id FROM {table}
                       WHERE project_id = ?1 AND {column} < ?2 LIMIT ?3)"
                )))
                .bind(project_id)
                .bind(cutoff_ms)
                .bind(RETENTION_BATCH)
                .execute(&self.write)
                .await?
                .rows_affected();
                if table == "events" {
                    events += n as i64;
                }
                if n == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        // Keyed tables: a day of hours (or a day) at a time, oldest first.
        let hourly = [
            "rollup_hourly",
            "trace_hourly",
            "trace_dim_hourly",
            "user_hourly",
            "model_hourly",
            "project_trace_hourly",
            "latency_hourly",
        ];
        for (table, column, end, step) in hourly
            .iter()
            .map(|t| (*t, "hour", cutoff_hour, 24))
            .chain([("user_daily", "day", cutoff_day, 1), ("user_model_daily", "day", cutoff_day, 1)])
            .chain([("event_tools", "ts", cutoff_ms, 86_400_000)])
        {
            let (oldest,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT MIN({column}) FROM {table} WHERE project_id = ?1"
            )))
            .bind(project_id)
            .fetch_one(&self.read)
            .await?;
            let mut from = match oldest {
                Some(o) if o < end => o,
                _ => continue,
            };
            while from < end {
                let to = (from + step).min(end);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE project_id = ?1 AND {column} >= ?2 AND {column} < ?3"
                )))
                .bind(project_id)
                .bind(from)
                .bind(to)
                .execute(&self.write)
                .await?;
                from = to;
                tokio::task::yield_now().await;
            }
        }
        if events > 0 {
            self.bump_version();
            self.checkpoint().await?;
        }
        Ok(events)
    }
}
