//! Removing one end user on request (GDPR erasure); old data goes in `retention`.
//!
//! A user's data lives in their tag sets (every event, trace and per-tag-set rollup row points at
//! one), in the per-user tables (keyed by the id), and as a share of the project-wide tables
//! (`model_hourly`, `project_trace_hourly`, `latency_hourly`), from which their contribution is
//! subtracted. Afterwards the file is rewritten (VACUUM) and the WAL checkpointed and truncated,
//! so the id is gone from the file, not just unlinked.

use super::{Store, StoreError, now_ms};
use crate::model::latency::latency_bucket;
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, Transaction};
use std::collections::HashMap;

pub use crate::model::admin::{DeletionRecord, Removed};

/// `(?, ?, ...)` with `n` placeholders from `?first`.
fn placeholders(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("?{i}")).collect();
    format!("({})", list.join(", "))
}

/// Runs `sql` (whose last placeholders are the id list) with the project and then the ids.
async fn exec_ids(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &str,
    project_id: i64,
    ids: &[i64],
) -> Result<u64, StoreError> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(project_id);
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

impl Store {
    /// How many events and traces deleting `user_id` would remove (all time).
    pub async fn user_footprint(&self, project_id: i64, user_id: &str) -> Result<Removed, StoreError> {
        let (events, traces): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM events WHERE project_id = ?1 AND tag_set_id IN
                       (SELECT id FROM tag_sets WHERE project_id = ?1 AND user_id = ?2)),
                    (SELECT COUNT(*) FROM traces WHERE project_id = ?1 AND tag_set_id IN
                       (SELECT id FROM tag_sets WHERE project_id = ?1 AND user_id = ?2))",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(&self.read)
        .await?;
        Ok(Removed { events, traces })
    }

    /// Deletes every event, trace, tag set and rollup contribution of `user_id` in one
    /// transaction, logs it (by hash) for `actor`, and scrubs the file. Everyone else's totals
    /// are unchanged.
    pub async fn delete_user(
        &self,
        project_id: i64,
        user_id: &str,
        actor: &str,
    ) -> Result<Removed, StoreError> {
        let mut tx = self.write.begin().await?;
        let ids: Vec<i64> =
            sqlx::query_as::<_, (i64,)>("SELECT id FROM tag_sets WHERE project_id = ?1 AND user_id = ?2")
                .bind(project_id)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id,)| id)
                .collect();
        let mut removed = Removed::default();
        // SQLite allows 32,766 bound parameters; a user has few tag sets, but stay well inside.
        for chunk in ids.chunks(500) {
            let r = self.delete_tag_sets(&mut tx, project_id, chunk).await?;
            removed.events += r.events;
            removed.traces += r.traces;
        }
        // The per-user tables. (event_tools rows go with their tag sets above: their user_id is
        // their tag set's.)
        for table in ["user_hourly", "user_daily", "user_model_daily"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE project_id = ?1 AND user_id = ?2"
            )))
            .bind(project_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let hash: String = Sha256::digest(user_id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        sqlx::query(
            "INSERT INTO deletion_log (project_id, at, actor, user_id_sha256, events, traces)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(project_id)
        .bind(now_ms())
        .bind(actor)
        .bind(&hash)
        .bind(removed.events)
        .bind(removed.traces)
        .execute(&mut *tx)
        .await?;
        // Cached ids of the deleted tag sets must not be reused; ingest waits for this writer.
        self.forget_tag_sets();
        tx.commit().await?;
        self.bump_version();
        self.scrub().await?;
        tracing::info!(project_id, actor, user_id_sha256 = %hash, events = removed.events, traces = removed.traces, "deleted a user");
        Ok(removed)
    }

    /// Deletes the data of some tag sets, subtracting it from the project-wide rollups first.
    async fn delete_tag_sets(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        project_id: i64,
        ids: &[i64],
    ) -> Result<Removed, StoreError> {
        let list = placeholders(2, ids.len());
        // model_hourly: minus the tag sets' rollups.
        exec_ids(
            tx,
            &format!(
                "UPDATE model_hourly AS m SET events = m.events - d.events, errors = m.errors - d.errors,
                   unpriced = m.unpriced - d.unpriced, input_tokens = m.input_tokens - d.input_tokens,
                   output_tokens = m.output_tokens - d.output_tokens,
                   cache_read_tokens = m.cache_read_tokens - d.cache_read_tokens,
                   cache_creation_tokens = m.cache_creation_tokens - d.cache_creation_tokens,
                   cost_nano = m.cost_nano - d.cost_nano, latency_ms_sum = m.latency_ms_sum - d.latency_ms_sum
                 FROM (SELECT hour, provider, model, agent, SUM(events) AS events, SUM(errors) AS errors,
                         SUM(unpriced) AS unpriced, SUM(input_tokens) AS input_tokens,
                         SUM(output_tokens) AS output_tokens, SUM(cache_read_tokens) AS cache_read_tokens,
                         SUM(cache_creation_tokens) AS cache_creation_tokens, SUM(cost_nano) AS cost_nano,
                         SUM(latency_ms_sum) AS latency_ms_sum
                       FROM rollup_hourly WHERE project_id = ?1 AND tag_set_id IN {list}
                       GROUP BY hour, provider, model, agent) AS d
                 WHERE m.project_id = ?1 AND m.hour = d.hour AND m.provider = d.provider
                   AND m.model = d.model AND m.agent = d.agent"
            ),
            project_id,
            ids,
        )
        .await?;
        exec_ids(tx, "DELETE FROM model_hourly WHERE project_id = ?1 AND events <= 0", project_id, &[])
            .await?;
        // project_trace_hourly: minus the tag sets' traces per hour.
        exec_ids(
            tx,
            &format!(
                "UPDATE project_trace_hourly AS p SET traces = p.traces - d.traces
                 FROM (SELECT hour, SUM(traces) AS traces FROM trace_hourly
                       WHERE project_id = ?1 AND tag_set_id IN {list} GROUP BY hour) AS d
                 WHERE p.project_id = ?1 AND p.hour = d.hour"
            ),
            project_id,
            ids,
        )
        .await?;
        // latency_hourly: minus the buckets of the tag sets' calls.
        let mut q = sqlx::query_as::<_, (i64, String, String, String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT ts, provider, model, agent, latency_ms FROM events
             WHERE project_id = ?1 AND tag_set_id IN {list} AND latency_ms IS NOT NULL"
        )))
        .bind(project_id);
        for id in ids {
            q = q.bind(id);
        }
        let mut buckets: HashMap<(i64, String, String, String, i64), i64> = HashMap::new();
        for (ts, provider, model, agent, ms) in q.fetch_all(&mut **tx).await? {
            *buckets
                .entry((ts.div_euclid(3_600_000), provider, model, agent, latency_bucket(ms)))
                .or_default() += 1;
        }
        for ((hour, provider, model, agent, bucket), n) in buckets {
            sqlx::query(
                "UPDATE latency_hourly SET n = n - ?7 WHERE project_id = ?1 AND hour = ?2 AND provider = ?3
                   AND model = ?4 AND agent = ?5 AND bucket = ?6",
            )
            .bind(project_id)
            .bind(hour)
            .bind(provider)
            .bind(model)
            .bind(agent)
            .bind(bucket)
            .bind(n)
            .execute(&mut **tx)
            .await?;
        }
        exec_ids(tx, "DELETE FROM latency_hourly WHERE project_id = ?1 AND n <= 0", project_id, &[]).await?;

        let events = exec_ids(
            tx,
            &format!("DELETE FROM events WHERE project_id = ?1 AND tag_set_id IN {list}"),
            project_id,
            ids,
        )
        .await?;
        let traces = exec_ids(
            tx,
            &format!("DELETE FROM traces WHERE project_id = ?1 AND tag_set_id IN {list}"),
            project_id,
            ids,
        )
        .await?;
        for table in ["rollup_hourly", "trace_hourly", "trace_dim_hourly", "event_tools"] {
            exec_ids(
                tx,
                &format!("DELETE FROM {table} WHERE project_id = ?1 AND tag_set_id IN {list}"),
                project_id,
                ids,
            )
            .await?;
        }
        let tag_list = placeholders(1, ids.len());
        let mut q =
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM tag_kv WHERE tag_set_id IN {tag_list}")));
        for id in ids {
            q = q.bind(id);
        }
        q.execute(&mut **tx).await?;
        exec_ids(
            tx,
            &format!("DELETE FROM tag_sets WHERE project_id = ?1 AND id IN {list}"),
            project_id,
            ids,
        )
        .await?;
        Ok(Removed { events: events as i64, traces: traces as i64 })
    }

    /// Rewrites the database file so no fragment of deleted rows survives (`secure_delete` zeroes
    /// deleted cells, but B-tree rebalancing can leave old bytes in a page's unused space), then
    /// empties the WAL. The rewrite goes through a temporary file, not memory, so it works for any
    /// size of database.
    async fn scrub(&self) -> Result<(), StoreError> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("PRAGMA temp_store = FILE").execute(&mut *conn).await?;
        let vacuum = sqlx::query("VACUUM").execute(&mut *conn).await;
        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
        vacuum?;
        drop(conn);
        self.checkpoint().await
    }

    /// Moves the WAL's pages into the database file and truncates the WAL, retrying while
    /// readers hold old snapshots, so deleted content is left in neither file.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        for attempt in 0..50 {
            let (busy, _, _): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.write).await?;
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
        }
        tracing::warn!("WAL checkpoint stayed busy; it completes at the next idle checkpoint");
        Ok(())
    }

    /// The project's logged user deletions, newest first.
    pub async fn deletion_log(&self, project_id: i64) -> Result<Vec<DeletionRecord>, StoreError> {
        let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT at, actor, user_id_sha256, events, traces FROM deletion_log
             WHERE project_id = ?1 ORDER BY id DESC LIMIT 100",
        )
        .bind(project_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, user_id_sha256, events, traces)| DeletionRecord {
                at,
                actor,
                user_id_sha256,
                events,
                traces,
            })
            .collect())
    }
}
