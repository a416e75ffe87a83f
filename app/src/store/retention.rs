//! Retention: deleting a project's events and traces older than its retention period, in small
//! batches so ingest keeps flowing, and the aggregate's hours before it.

use super::{Store, StoreError};
use sqlx::Connection;

/// Rows deleted per statement by the retention task, so ingest never waits long.
const RETENTION_BATCH: i64 = 2_000;

impl Store {
    /// Deletes a project's events and traces from before the UTC day `days` days ago,
    /// in small batches (each its own transaction, so ingest interleaves). Returns the events
    /// removed.
    pub async fn apply_retention(&self, project_id: i64, days: i64, now: i64) -> Result<i64, StoreError> {
        // A retention stored before its cap (or any out-of-range value) reads as the cap, so
        // the cutoff can't wrap around to a day after today.
        let days = days.clamp(1, super::projects::MAX_RETENTION_DAYS);
        let cutoff_day = now.div_euclid(86_400_000) - days;
        let cutoff_ms = cutoff_day * 86_400_000;
        let cutoff_hour = cutoff_day * 24;
        let mut events = 0;
        // The traces losing calls: their remaining calls' trace flags are re-derived after.
        let touched: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT trace_id FROM events WHERE project_id = ?1 AND (ts >> 16) <= (?2 >> 16) AND ts < ?2
               AND trace_id IS NOT NULL",
        )
        .bind(project_id)
        .bind(cutoff_ms)
        .fetch_all(&self.read)
        .await?;
        // The aggregate saved for a start after a crash will no longer match once anything is
        // deleted: it is dropped first (a crash in between means a rebuild, never a file that
        // holds deleted calls), and no new one is saved until this pass is done.
        let _maintenance = self.maintenance.lock().await;
        if self.has_older(&self.read, project_id, cutoff_ms).await? {
            self.drop_aggregate_token().await?;
        }
        // Events and traces: a batch of old ones at a time (by their time buckets, migration
        // 12). The calls' rowids are kept to forget them in the event keys; the calls left of a
        // deleted trace record give up its seq in the same transaction.
        let mut rowids: Vec<i64> = Vec::new();
        loop {
            let gone: Vec<(i64,)> = sqlx::query_as(
                "DELETE FROM events WHERE project_id = ?1 AND rowid IN (SELECT rowid FROM events
                   WHERE project_id = ?1 AND (ts >> 16) <= (?2 >> 16) AND ts < ?2 LIMIT ?3) RETURNING rowid",
            )
            .bind(project_id)
            .bind(cutoff_ms)
            .bind(RETENTION_BATCH)
            .fetch_all(&self.write)
            .await?;
            if gone.is_empty() {
                break;
            }
            events += gone.len() as i64;
            rowids.extend(gone.into_iter().map(|(r,)| r));
            tokio::task::yield_now().await;
        }
        loop {
            let mut conn = self.write.acquire().await?;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            let seqs = self.delete_old_traces(&mut tx, project_id, cutoff_ms, Some(RETENTION_BATCH)).await?;
            tx.commit().await?;
            if seqs == 0 {
                break;
            }
            drop(conn);
            tokio::task::yield_now().await;
        }
        // The aggregate drops the old hours while the writer is held, after a last pass for any
        // old call committed meanwhile, so SQLite and the aggregate agree.
        {
            let mut conn = self.write.acquire().await?;
            if self.has_older(&mut *conn, project_id, cutoff_ms).await? {
                self.drop_aggregate_token_on(&mut conn).await?;
            }
            let gone: Vec<(i64,)> =
                sqlx::query_as(
                    "DELETE FROM events WHERE project_id = ?1 AND (ts >> 16) <= (?2 >> 16) AND ts < ?2 RETURNING rowid",
                )
                    .bind(project_id)
                    .bind(cutoff_ms)
                    .fetch_all(&mut *conn)
                    .await?;
            events += gone.len() as i64;
            rowids.extend(gone.into_iter().map(|(r,)| r));
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            self.delete_old_traces(&mut tx, project_id, cutoff_ms, None).await?;
            tx.commit().await?;
            self.drop_in_cube(project_id, cutoff_hour);
            self.forget_event_keys(&rowids);
        }
        let touched: Vec<String> = touched.into_iter().map(|(t,)| t).collect();
        self.reflag_traces(project_id, &touched).await?;
        let tag_sets = self.drop_unused_tag_sets(project_id).await?;
        if tag_sets > 0 {
            tracing::info!(project_id, tag_sets, "retention removed tag sets no call names any more");
        }
        if events > 0 || tag_sets > 0 {
            self.bump_version([project_id]);
            self.checkpoint().await?;
        }
        Ok(events)
    }

    /// Deletes the tag sets (and their tags) that no stored call or trace names any more, in
    /// the file and the aggregate: once retention took a user's last call, their id is gone
    /// too. Decided from the aggregate while the writer is held (it then holds every committed
    /// call); without a loaded aggregate, nothing is done. Returns how many went.
    async fn drop_unused_tag_sets(&self, project_id: i64) -> Result<usize, StoreError> {
        let mut conn = self.write.acquire().await?;
        if !self.aggregate_holds_every_call(&mut conn).await? {
            return Ok(0);
        }
        let unused = self.read_cube(project_id, |c| c.unused_tag_sets()).await?;
        if unused.is_empty() {
            return Ok(0);
        }
        // The saved aggregate names them: it goes first (a crash in between means a rebuild).
        self.drop_aggregate_token_on(&mut conn).await?;
        // Nothing names them (the aggregate holds every committed call and trace): the
        // foreign-key check, a scan of `events` and `traces` per set, is skipped.
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *conn).await?;
        let done = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            super::deletion::delete_tag_set_rows(&mut tx, project_id, &unused).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        }
        .await;
        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
        done?;
        // Ingest must not reuse a cached id of a deleted tag set; it waits for this writer.
        self.forget_tag_sets(&unused);
        self.forget_in_cube(project_id, &unused, None);
        Ok(unused.len())
    }

    /// Deletes trace records that started before `cutoff_ms` (at most `limit`), and takes their
    /// seq from the calls they leave; returns how many were deleted.
    async fn delete_old_traces(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        cutoff_ms: i64,
        limit: Option<i64>,
    ) -> Result<usize, StoreError> {
        let seqs: Vec<(i64,)> = sqlx::query_as(
            "DELETE FROM traces WHERE project_id = ?1 AND id IN (SELECT id FROM traces
               WHERE project_id = ?1 AND (started_at >> 16) <= (?2 >> 16) AND started_at < ?2 LIMIT ?3)
             RETURNING seq",
        )
        .bind(project_id)
        .bind(cutoff_ms)
        .bind(limit.unwrap_or(-1))
        .fetch_all(&mut *tx)
        .await?;
        let seqs: Vec<i64> = seqs.into_iter().map(|(s,)| s).collect();
        super::ingest::orphan_calls(tx, project_id, &seqs).await?;
        Ok(seqs.len())
    }

    /// Whether a project holds events or traces from before `cutoff_ms` (time buckets).
    async fn has_older<'e, E>(&self, db: E, project_id: i64, cutoff_ms: i64) -> Result<bool, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        let (old,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM events WHERE project_id = ?1 AND (ts >> 16) <= (?2 >> 16) AND ts < ?2)
                 OR EXISTS (SELECT 1 FROM traces
                   WHERE project_id = ?1 AND (started_at >> 16) <= (?2 >> 16) AND started_at < ?2)",
        )
        .bind(project_id)
        .bind(cutoff_ms)
        .fetch_one(db)
        .await?;
        Ok(old)
    }
}
