//! Removing one end user on request (GDPR erasure); old data goes in `retention`.
//!
//! A user's data lives in their tag sets: every event and trace points at one, and the in-memory
//! aggregate keys its rows by them, so deleting the tag sets' rows (SQLite, then the aggregate,
//! while the writer is still held) removes the user's whole share. Afterwards the file is
//! rewritten (VACUUM) and the WAL checkpointed and truncated, so the id is gone from the file, not
//! just unlinked.

use super::{Store, StoreError, now_ms};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::{Connection, Sqlite, Transaction};

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

/// `exec_ids` for a statement that returns rows (`RETURNING`).
async fn fetch_ids<R>(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &str,
    project_id: i64,
    ids: &[i64],
) -> Result<Vec<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let mut q = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql.to_string())).bind(project_id);
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(&mut **tx).await?)
}

/// This install's secret for the deletion log (made, from the OS's randomness, the first time
/// it is needed; it stays in the file and its backups).
async fn install_secret(tx: &mut Transaction<'_, Sqlite>) -> Result<String, StoreError> {
    let fresh = super::auth::random_hex(32)?;
    sqlx::query("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('install_secret', ?1)")
        .bind(&fresh)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'install_secret'")
        .fetch_one(&mut **tx)
        .await?)
}

/// HMAC-SHA256 of a user id under the install's secret, as hex: the deletion log's name for a
/// deleted user. Unlike a bare hash, it can't be reversed by hashing guesses (emails, numbers)
/// without the secret; with it, an operator can still check whether a given id was deleted.
fn user_id_hmac(secret: &str, user_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(user_id.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// How many events and traces deleting `user_id` would remove (all time): from the
    /// aggregate when it is loaded (which holds every stored call and trace), else counted in
    /// SQLite.
    pub async fn user_footprint(&self, project_id: i64, user_id: &str) -> Result<Removed, StoreError> {
        if self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            let user = user_id.to_string();
            let (events, traces) = self.read_cube(project_id, move |c| c.footprint(&user)).await?;
            return Ok(Removed { events, traces });
        }
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
        // The aggregate saved for a start after a crash holds this user: dropped first, and no
        // new one is saved until the deletion is done.
        let _maintenance = self.maintenance.lock().await;
        let otel = self.otel_gate_exclusive().await;
        self.drop_aggregate_token().await?;
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut touched: Vec<String> = Vec::new();
        let mut rowids: Vec<i64> = Vec::new();
        // SQLite allows 32,766 bound parameters; a user has few tag sets, but stay well inside.
        for chunk in ids.chunks(500) {
            let r = self.delete_tag_sets(&mut tx, project_id, chunk, &mut touched, &mut rowids).await?;
            removed.events += r.events;
            removed.traces += r.traces;
        }
        // OpenTelemetry spans still kept for attribution (see `otel_forget_user`).
        let spans = Store::otel_forget_user(&mut tx, project_id, user_id).await?;
        let hash = user_id_hmac(&install_secret(&mut tx).await?, user_id);
        sqlx::query(
            "INSERT INTO deletion_log (project_id, at, actor, user_id_hmac, events, traces)
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
        drop(otel);
        self.forget_in_cube(project_id, &ids);
        self.forget_event_keys(&rowids);
        drop(conn);
        // Other users' traces that held some of these calls (calls with tags of their own):
        // their remaining calls' trace flags and providers/agents are derived again.
        touched.sort_unstable();
        touched.dedup();
        self.reflag_traces(project_id, &touched).await?;
        self.bump_version([project_id]);
        // Nothing of theirs was in the file (no tag set names them, no span waits): nothing to
        // scrub, and a deletion of an unknown id costs no rewrite of the whole file.
        if !ids.is_empty() || spans > 0 {
            self.scrub().await?;
        }
        tracing::info!(project_id, actor, user_id_hmac = %hash, events = removed.events, traces = removed.traces, "deleted a user");
        Ok(removed)
    }

    /// Deletes the events, traces and tags of some tag sets; the deleted calls' trace ids go to
    /// `touched` and their rowids to `rowids`.
    async fn delete_tag_sets(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        project_id: i64,
        ids: &[i64],
        touched: &mut Vec<String>,
        rowids: &mut Vec<i64>,
    ) -> Result<Removed, StoreError> {
        let list = placeholders(2, ids.len());
        let gone: Vec<(i64, Option<String>)> = fetch_ids(
            tx,
            &format!(
                "DELETE FROM events WHERE project_id = ?1 AND tag_set_id IN {list} RETURNING rowid, trace_id"
            ),
            project_id,
            ids,
        )
        .await?;
        let events = gone.len() as u64;
        for (rowid, trace) in gone {
            rowids.push(rowid);
            touched.extend(trace);
        }
        let seqs: Vec<(i64,)> = fetch_ids(
            tx,
            &format!("DELETE FROM traces WHERE project_id = ?1 AND tag_set_id IN {list} RETURNING seq"),
            project_id,
            ids,
        )
        .await?;
        let seqs: Vec<i64> = seqs.into_iter().map(|(s,)| s).collect();
        let traces = seqs.len() as u64;
        // Calls of these traces with tags of their own stay, without the trace's seq.
        super::ingest::orphan_calls(tx, project_id, &seqs).await?;
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
        self.checkpoint().await?;
        tracing::info!("scrubbed the file after a deletion (VACUUM, WAL truncated)");
        Ok(())
    }

    /// Moves the WAL's pages into the database file and truncates the WAL, retrying while
    /// readers hold old snapshots, so deleted content is left in neither file. The TRUNCATE,
    /// which holds new writers while it waits for readers, runs only once a PASSIVE checkpoint
    /// found no reader of an older snapshot (a backup is one for minutes), and waits at most
    /// 2 s: ingest is not held up behind a long reader.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        for attempt in 0..50 {
            // The writer connection, taken per attempt: ingest goes on between attempts.
            let mut conn = self.write.acquire().await?;
            if super::passive_checkpoint(&mut *conn).await? {
                sqlx::query("PRAGMA busy_timeout = 2000").execute(&mut *conn).await?;
                let truncated: Result<(i64, i64, i64), sqlx::Error> =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut *conn).await;
                sqlx::query("PRAGMA busy_timeout = 120000").execute(&mut *conn).await?;
                if truncated?.0 == 0 {
                    return Ok(());
                }
            }
            drop(conn);
            tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
        }
        tracing::warn!("WAL checkpoint stayed busy; it completes at the next idle checkpoint");
        Ok(())
    }

    /// The project's logged user deletions, newest first.
    pub async fn deletion_log(&self, project_id: i64) -> Result<Vec<DeletionRecord>, StoreError> {
        let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT at, actor, user_id_hmac, events, traces FROM deletion_log
             WHERE project_id = ?1 ORDER BY id DESC LIMIT 100",
        )
        .bind(project_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, user_id_hmac, events, traces)| DeletionRecord {
                at,
                actor,
                user_id_hmac,
                events,
                traces,
            })
            .collect())
    }
}
