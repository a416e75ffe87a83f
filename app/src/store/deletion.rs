//! Removing one end user on request (GDPR erasure); old data goes in `retention`.
//!
//! A user's data lives in their tag sets: every event and trace points at one, and the in-memory
//! aggregate keys its rows by them, so deleting the tag sets' rows (SQLite, then the aggregate,
//! while the writer is still held) removes the user's whole share. Afterwards the file is
//! rewritten (VACUUM) and the WAL checkpointed and truncated, so the id is gone from the file, not
//! just unlinked.

use super::cube::traces::Share;
use super::{Store, StoreError, now_ms};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::{Connection, QueryBuilder, Sqlite, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use crate::model::admin::{DeletionRecord, Removed};

/// A deleted call: what its trace's totals lose.
#[derive(sqlx::FromRow)]
struct Gone {
    rowid: i64,
    trace_id: Option<String>,
    tag_set_id: i64,
    ts: i64,
    is_error: bool,
    cost_nano: Option<i64>,
    tokens: i64,
}

/// The `RETURNING` clause of a deletion of calls, as [`Gone`] reads it.
const GONE: &str =
    "RETURNING rowid AS rowid, trace_id, tag_set_id, ts, status = 'error' AS is_error, cost_nano,
    input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens AS tokens";

/// What one user's deletion removed, for the steps after its transaction.
struct UserGone {
    removed: Removed,
    tag_sets: Vec<i64>,
    rowids: Vec<i64>,
    /// Traces that lost calls.
    touched: Vec<String>,
    hmac: String,
    /// The scrub this deletion needs (none when nothing of the user's was in the file).
    ticket: Option<u64>,
    /// Where the aggregate held the user, when the deletion followed it.
    share: Option<Share>,
}

/// Time spent per step, for the debug log.
struct Laps {
    at: Instant,
    laps: Vec<(&'static str, u128)>,
}

impl Default for Laps {
    fn default() -> Self {
        Laps { at: Instant::now(), laps: Vec::new() }
    }
}

impl Laps {
    fn lap(&mut self, name: &'static str) {
        self.laps.push((name, self.at.elapsed().as_micros()));
        self.at = Instant::now();
    }
}

impl std::fmt::Display for Laps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, us) in &self.laps {
            write!(f, "{name}={us}us ")?;
        }
        Ok(())
    }
}

/// How long a background scrub waits for deletions to stop coming, and at most (a scrub
/// rewrites the whole file holding the writer: about a minute at 10M calls, so a long run of
/// deletions should share as few as possible). `TOKENTALLY_SCRUB_QUIET_SECS` and
/// `TOKENTALLY_SCRUB_MAX_WAIT_SECS` set them.
static SCRUB_QUIET: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    let secs = std::env::var("TOKENTALLY_SCRUB_QUIET_SECS").ok().and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(5))
});
static SCRUB_WAIT_MAX: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    let secs = std::env::var("TOKENTALLY_SCRUB_MAX_WAIT_SECS").ok().and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(900))
});

/// Deletions waiting for the scrub that makes them final in the file. Each deletion takes a
/// ticket (`store_meta.scrub_requested`, counted in its transaction); a finished scrub covers
/// every ticket taken before it began (`store_meta.scrub_done`). Both survive a restart, and a
/// start with tickets not covered scrubs.
#[derive(Default)]
pub(crate) struct ScrubState {
    requested: AtomicU64,
    done: AtomicU64,
    /// One scrub at a time: a deletion waiting here usually finds its ticket covered by the
    /// scrub that held it.
    running: tokio::sync::Mutex<()>,
    /// When the last deletion took a ticket.
    last_request: Mutex<Option<Instant>>,
    /// Deletions asked for and not finished (one waiting for its turn is one): no scrub starts
    /// while any is, however long it waits.
    in_flight: AtomicU64,
}

/// Counts a deletion in flight while it lives.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Deletions yield to ingest: while ingest is writing, a deletion takes the writer only after
/// it was left to ingest for `INGEST_SHARE` times as long as the last deletion held it, so a
/// long run of deletions (an app deleting thousands of users back to back) leaves ingest at
/// least about two thirds of the writer's time instead of taking it in turns of one group
/// commit each. Without ingest, deletions don't wait.
#[derive(Default)]
pub(crate) struct Pace {
    /// When ingest last took the writer.
    ingest_at: Mutex<Option<Instant>>,
    /// When the next deletion may take the writer, if ingest is still writing.
    deletion_at: Mutex<Option<Instant>>,
}

/// How many times as long as a deletion held the writer ingest gets it before the next one.
const INGEST_SHARE: u32 = 2;

impl Pace {
    pub(crate) fn ingest_wrote(&self) {
        *self.ingest_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Waits for the deletion's turn (called with deletions serialized).
    async fn turn(&self) {
        let at = *self.deletion_at.lock().unwrap_or_else(|e| e.into_inner());
        let Some(at) = at else { return };
        // Ingest wrote within the last second: it is running.
        let ingesting = || {
            let ingest = *self.ingest_at.lock().unwrap_or_else(|e| e.into_inner());
            ingest.is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        };
        if ingesting() {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// A deletion held the writer for `held`, until now.
    fn deleted(&self, held: Duration) {
        let next = Instant::now() + held.saturating_mul(INGEST_SHARE).min(Duration::from_secs(60));
        *self.deletion_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(next);
    }
}

/// The user's traces among these seqs, as (id, seq, tag set).
async fn traces_by_seq(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    seqs: &[u32],
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(500) {
        // Through `traces_seq` by name: without statistics the planner walks the project's
        // whole primary key.
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, seq, tag_set_id FROM traces INDEXED BY traces_seq WHERE project_id = ",
        );
        q.push_bind(project_id).push(" AND seq IN (");
        let mut list = q.separated(", ");
        for seq in chunk {
            list.push_bind(i64::from(*seq));
        }
        q.push(")");
        out.extend(q.build_query_as::<(String, i64, i64)>().fetch_all(&mut *tx).await?);
    }
    Ok(out)
}

/// Deletes the calls of these traces (id, seq, tag set) that name no user other than
/// `user_id`: theirs, and those with tags of their own without a `userId`.
async fn calls_of_traces(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    user_id: &str,
    traces: &[(String, i64, i64)],
) -> Result<Vec<Gone>, StoreError> {
    const NOT_OTHERS: &str = " AND NOT EXISTS (SELECT 1 FROM tag_sets s WHERE s.id = events.tag_set_id
        AND s.user_id IS NOT NULL AND s.user_id <> ";
    let mut gone = Vec::new();
    for chunk in traces.chunks(500) {
        // Calls of a stored trace carry its seq; those stored before it (see migration 11)
        // only its id.
        let mut q = QueryBuilder::<Sqlite>::new(
            "DELETE FROM events INDEXED BY events_trace_seq WHERE trace_seq IS NOT NULL AND project_id = ",
        );
        q.push_bind(project_id).push(" AND trace_seq IN (");
        let mut list = q.separated(", ");
        for (_, seq, _) in chunk {
            list.push_bind(*seq);
        }
        q.push(")").push(NOT_OTHERS).push_bind(user_id).push(") ").push(GONE);
        gone.extend(q.build_query_as::<Gone>().fetch_all(&mut *tx).await?);
        let mut q = QueryBuilder::<Sqlite>::new(
            "DELETE FROM events INDEXED BY events_trace WHERE trace_seq IS NULL AND project_id = ",
        );
        q.push_bind(project_id).push(" AND trace_id IN (");
        let mut list = q.separated(", ");
        for (id, _, _) in chunk {
            list.push_bind(id.as_str());
        }
        q.push(")").push(NOT_OTHERS).push_bind(user_id).push(") ").push(GONE);
        gone.extend(q.build_query_as::<Gone>().fetch_all(&mut *tx).await?);
    }
    Ok(gone)
}

/// Deletes tag sets and their `tag_kv` rows (found by key from each set's canonical tags),
/// once nothing names them. Run with foreign keys off: each deleted set's check would scan
/// `events` and `traces` (no index starts with `tag_set_id`).
pub(crate) async fn delete_tag_set_rows(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    ids: &[i64],
) -> Result<(), StoreError> {
    // `+project_id` everywhere: with the project as a bound parameter SQLite otherwise walks
    // the project's whole `tag_sets_user` index (366,000 rows at 10M calls: 90 ms a deletion)
    // instead of looking the ids up.
    for chunk in ids.chunks(500) {
        let sets: Vec<(i64, String)> = fetch_ids(
            tx,
            &format!(
                "SELECT id, canonical FROM tag_sets WHERE +project_id = ?1 AND id IN {}",
                placeholders(2, chunk.len())
            ),
            project_id,
            chunk,
        )
        .await?;
        let (mut expected, mut deleted) = (0u64, 0u64);
        for (id, canonical) in &sets {
            let tags: BTreeMap<String, String> = serde_json::from_str(canonical).unwrap_or_default();
            for (k, v) in &tags {
                expected += 1;
                deleted +=
                    sqlx::query("DELETE FROM tag_kv WHERE key = ?1 AND value = ?2 AND tag_set_id = ?3")
                        .bind(k)
                        .bind(v)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
        }
        if deleted != expected || sets.is_empty() {
            // Not as the canonical text says: every row of these sets, by a scan.
            let list = placeholders(1, chunk.len());
            let mut q =
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM tag_kv WHERE tag_set_id IN {list}")));
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        exec_ids(
            tx,
            &format!(
                "DELETE FROM tag_sets WHERE +project_id = ?1 AND id IN {}",
                placeholders(2, chunk.len())
            ),
            project_id,
            chunk,
        )
        .await?;
    }
    Ok(())
}

/// `(?, ?, ...)` with `n` placeholders from `?first`.
fn placeholders(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("?{i}")).collect();
    format!("({})", list.join(", "))
}

/// Runs `sql` (whose last placeholders are the id list) with the project and then the ids.
async fn exec_ids(
    tx: &mut sqlx::SqliteConnection,
    sql: &str,
    project_id: i64,
    ids: &[i64],
) -> Result<u64, StoreError> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(project_id);
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.execute(&mut *tx).await?.rows_affected())
}

/// `exec_ids` for a statement that returns rows (`RETURNING`).
async fn fetch_ids<R>(
    tx: &mut sqlx::SqliteConnection,
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
    Ok(q.fetch_all(&mut *tx).await?)
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

/// Counts one more deletion waiting for a scrub, in its transaction: its ticket.
async fn take_ticket(tx: &mut Transaction<'_, Sqlite>) -> Result<u64, StoreError> {
    sqlx::query("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('scrub_done', '0')")
        .execute(&mut **tx)
        .await?;
    let n: String = sqlx::query_scalar(
        "INSERT INTO store_meta (key, value) VALUES ('scrub_requested', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?;
    n.parse().map_err(|_| StoreError::Invalid(format!("store_meta.scrub_requested is not a number: {n}")))
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
    /// transaction, with the calls of their traces that name no other user (a call with tags of
    /// its own and no `userId`), logs it (by HMAC) for `actor`, and scrubs the file (see
    /// [`Store::scrub_after`]). Everyone else's totals are unchanged, except traces of others
    /// that held some of the user's calls: their totals lose those calls.
    pub async fn delete_user(
        &self,
        project_id: i64,
        user_id: &str,
        actor: &str,
    ) -> Result<Removed, StoreError> {
        let (removed, scrub) = self.delete_user_later(project_id, user_id, actor).await?;
        if let Some(ticket) = scrub {
            self.scrub_after(ticket).await?;
        }
        Ok(removed)
    }

    /// [`Store::delete_user`] without waiting for the scrub: returns what went and, when
    /// something was removed, the scrub ticket [`Store::scrub_done`] answers for. The scrub
    /// runs once no deletion came for a moment (many deletions share one rewrite of the file).
    /// The deletion runs on a task of its own: a request that goes away (a client timeout)
    /// can't stop it halfway (foreign keys off on the writer, the aggregate not yet told, no
    /// scrub asked for).
    pub async fn delete_user_later(
        &self,
        project_id: i64,
        user_id: &str,
        actor: &str,
    ) -> Result<(Removed, Option<u64>), StoreError> {
        let (store, user_id, actor) = (self.clone(), user_id.to_string(), actor.to_string());
        tokio::spawn(async move { store.delete_user_rows(project_id, &user_id, &actor).await })
            .await
            .map_err(|e| StoreError::Invalid(format!("the deletion failed: {e}")))?
    }

    /// The deletion itself, up to the scrub: what went, and the ticket of the scrub it needs
    /// (none when nothing of the user's was in the file).
    async fn delete_user_rows(
        &self,
        project_id: i64,
        user_id: &str,
        actor: &str,
    ) -> Result<(Removed, Option<u64>), StoreError> {
        // No aggregate is saved while the deletion runs (see `drop_aggregate_token_on` below).
        let started = Instant::now();
        let _in_flight = InFlight::new(&self.scrub.in_flight);
        let _maintenance = self.maintenance.lock().await;
        self.pace.turn().await;
        let otel = self.otel_gate_exclusive().await;
        let mut conn = self.write.acquire().await?;
        let held = Instant::now();
        // Taken while the writer is held: the aggregate then holds every committed call, and
        // says where the user's are, so no table is scanned for them.
        let share = if self.aggregate_complete() {
            let user = user_id.to_string();
            Some(self.read_cube(project_id, move |c| c.share(&user)).await?)
        } else {
            None
        };
        // Every row naming the user's tag sets is deleted first (and counted against the
        // aggregate, else found by a scan): the foreign-key check of each deleted tag set would
        // scan `events` and `traces` once per set.
        let share_ms = held.elapsed().as_millis() as u64;
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *conn).await?;
        let done = self.delete_user_tx(&mut conn, project_id, user_id, actor, share).await;
        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
        let done = done?;
        // Committed: the scrub is asked for at once (a background one, which a caller waiting
        // for it shares), whatever fails after this.
        if let Some(ticket) = done.ticket {
            self.scrub.requested.fetch_max(ticket, Ordering::AcqRel);
            *self.scrub.last_request.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            self.scrub_soon(ticket);
        }
        let tx_ms = held.elapsed().as_millis() as u64;
        drop(otel);
        self.forget_in_cube(project_id, &done.tag_sets, done.share.as_ref());
        self.forget_event_keys(&done.rowids);
        drop(conn);
        let held = held.elapsed();
        self.pace.deleted(held);
        // Traces that lost calls: their remaining calls' flags and providers/agents are derived
        // again.
        self.reflag_traces(project_id, &done.touched).await?;
        self.bump_version([project_id]);
        let removed = done.removed;
        tracing::info!(project_id, actor, user_id_hmac = %done.hmac, events = removed.events, traces = removed.traces, ms = started.elapsed().as_millis() as u64, writer_ms = held.as_millis() as u64, share_ms, tx_ms, "deleted a user");
        Ok((removed, done.ticket))
    }

    /// The deletion's transaction on the writer connection (foreign keys off: the caller's).
    async fn delete_user_tx(
        &self,
        conn: &mut sqlx::SqliteConnection,
        project_id: i64,
        user_id: &str,
        actor: &str,
        share: Option<Share>,
    ) -> Result<UserGone, StoreError> {
        let mut laps = Laps::default();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        // The aggregate saved for a start after a crash holds the user: it goes with the
        // deletion (its file at once; its token and trace records in this transaction).
        self.drop_aggregate_token_on(&mut tx).await?;
        let mut tag_sets: Vec<i64> =
            sqlx::query_as::<_, (i64,)>("SELECT id FROM tag_sets WHERE project_id = ?1 AND user_id = ?2")
                .bind(project_id)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id,)| id)
                .collect();
        tag_sets.sort_unstable();
        // The aggregate is followed only when it holds every stored call (asked inside the
        // transaction: no other process can write now) and knows exactly these tag sets.
        let share = if self.aggregate_holds_every_call(&mut tx).await? { share } else { None };
        let share = share.filter(|s| {
            let mut known = s.tag_sets.clone();
            known.sort_unstable();
            known == tag_sets
        });
        let mine: HashSet<i64> = tag_sets.iter().copied().collect();

        // The user's traces: by seq as the aggregate has them, else (or when it missed some)
        // by a scan.
        let mut traces: Vec<(String, i64, i64)> = Vec::new();
        if let Some(s) = &share {
            traces = traces_by_seq(&mut tx, project_id, &s.traces).await?;
            traces.retain(|(_, _, tag_set)| mine.contains(tag_set));
        }
        if share.as_ref().is_none_or(|s| traces.len() != s.traces.len()) {
            for chunk in tag_sets.chunks(500) {
                let found: Vec<(String, i64, i64)> = fetch_ids(
                    &mut tx,
                    &format!(
                        "SELECT id, seq, tag_set_id FROM traces WHERE project_id = ?1 AND tag_set_id IN {}",
                        placeholders(2, chunk.len())
                    ),
                    project_id,
                    chunk,
                )
                .await?;
                traces.extend(found);
            }
            traces.sort_unstable();
            traces.dedup();
        }
        laps.lap("find");
        let seqs: Vec<i64> = traces.iter().map(|(_, seq, _)| *seq).collect();
        for chunk in seqs.chunks(500) {
            exec_ids(
                &mut tx,
                &format!(
                    "DELETE FROM traces INDEXED BY traces_seq WHERE project_id = ?1 AND seq IN {}",
                    placeholders(2, chunk.len())
                ),
                project_id,
                chunk,
            )
            .await?;
        }

        laps.lap("traces");
        // Their calls, with those of their traces that name no other user.
        let mut gone = calls_of_traces(&mut tx, project_id, user_id, &traces).await?;
        laps.lap("calls");
        // The user's calls elsewhere (in others' traces, or in none): in the hours where the
        // aggregate has more of them than were found, by time bucket.
        if let Some(s) = &share {
            let mut per_hour: HashMap<i64, i64> = HashMap::new();
            for g in gone.iter().filter(|g| mine.contains(&g.tag_set_id)) {
                *per_hour.entry(super::hour_of(g.ts)).or_default() += 1;
            }
            for (hour, calls) in &s.hours {
                if per_hour.get(hour).copied().unwrap_or(0) < *calls {
                    let from = hour.saturating_mul(3_600_000);
                    for chunk in tag_sets.chunks(500) {
                        let sql = format!(
                            "DELETE FROM events WHERE project_id = ?1 AND (ts >> 16) BETWEEN ({from} >> 16)
                               AND ({to} >> 16) AND ts >= {from} AND ts < {to} AND tag_set_id IN {list} {GONE}",
                            to = from.saturating_add(3_600_000),
                            list = placeholders(2, chunk.len()),
                        );
                        gone.extend(fetch_ids::<Gone>(&mut tx, &sql, project_id, chunk).await?);
                    }
                }
            }
        }
        laps.lap("hours");
        let expected: Option<i64> = share.as_ref().map(|s| s.hours.iter().map(|(_, n)| n).sum());
        let found = gone.iter().filter(|g| mine.contains(&g.tag_set_id)).count() as i64;
        if expected.is_none_or(|n| found != n) {
            for chunk in tag_sets.chunks(500) {
                let sql = format!(
                    "DELETE FROM events WHERE project_id = ?1 AND tag_set_id IN {} {GONE}",
                    placeholders(2, chunk.len())
                );
                gone.extend(fetch_ids::<Gone>(&mut tx, &sql, project_id, chunk).await?);
            }
        }

        laps.lap("scan");
        // Calls of others left in the user's traces stay, without the trace's seq.
        super::ingest::orphan_calls(&mut tx, project_id, &seqs).await?;
        laps.lap("orphans");
        // Traces of others that held some of the deleted calls lose them from their totals.
        let deleted_traces: HashSet<&str> = traces.iter().map(|(id, _, _)| id.as_str()).collect();
        let mut lost: HashMap<&str, [i64; 5]> = HashMap::new();
        for g in &gone {
            if let Some(t) = g.trace_id.as_deref().filter(|t| !deleted_traces.contains(t)) {
                let l = lost.entry(t).or_default();
                l[0] += 1;
                l[1] += i64::from(g.is_error);
                l[2] += i64::from(g.cost_nano.is_none());
                l[3] = l[3].saturating_add(g.tokens);
                l[4] = l[4].saturating_add(g.cost_nano.unwrap_or(0));
            }
        }
        let mut totals = Vec::with_capacity(lost.len());
        for (trace, l) in &lost {
            let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
                "UPDATE traces SET calls = MAX(calls - ?3, 0), errors = MAX(errors - ?4, 0),
                   unpriced = MAX(unpriced - ?5, 0), tokens = MAX(tokens - ?6, 0), cost_nano = MAX(cost_nano - ?7, 0)
                 WHERE project_id = ?1 AND id = ?2 RETURNING seq, calls, tokens, cost_nano",
            )
            .bind(project_id)
            .bind(*trace)
            .bind(l[0])
            .bind(l[1])
            .bind(l[2])
            .bind(l[3])
            .bind(l[4])
            .fetch_optional(&mut *tx)
            .await?;
            totals.extend(row);
        }
        // The aggregate's rows of the other tag sets that lost calls (calls in the user's
        // traces with tags of their own) are counted again from what stays.
        let mut recount: Vec<(i64, i64)> = gone
            .iter()
            .filter(|g| !mine.contains(&g.tag_set_id))
            .map(|g| (super::hour_of(g.ts), g.tag_set_id))
            .collect();
        recount.sort_unstable();
        recount.dedup();
        laps.lap("totals");
        let refill = self.recount_facts(&mut tx, project_id, &recount).await?;
        laps.lap("recount");

        delete_tag_set_rows(&mut tx, project_id, &tag_sets).await?;
        laps.lap("tag_sets");
        // OpenTelemetry spans still kept for attribution (see `otel_forget_user`).
        let spans = Store::otel_forget_user(&mut tx, project_id, user_id).await?;
        let removed = Removed { events: gone.len() as i64, traces: traces.len() as i64 };
        let hmac = user_id_hmac(&install_secret(&mut tx).await?, user_id);
        // Nothing of theirs was in the file (no tag set names them, no span waits): nothing to
        // scrub, and a deletion of an unknown id costs no rewrite of the whole file.
        let ticket = if !tag_sets.is_empty() || spans > 0 { Some(take_ticket(&mut tx).await?) } else { None };
        sqlx::query(
            "INSERT INTO deletion_log (project_id, at, actor, user_id_hmac, events, traces, ticket)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(project_id)
        .bind(now_ms())
        .bind(actor)
        .bind(&hmac)
        .bind(removed.events)
        .bind(removed.traces)
        .bind(ticket.map(|t| t as i64))
        .execute(&mut *tx)
        .await?;
        // Cached ids of the deleted tag sets must not be reused; ingest waits for this writer.
        self.forget_tag_sets(&tag_sets);
        laps.lap("log");
        tx.commit().await?;
        laps.lap("commit");
        tracing::debug!(laps = %laps, calls = gone.len(), traces = traces.len(), "deletion's transaction");
        self.recount_in_cube(project_id, &recount, refill);
        self.retotal_in_cube(project_id, &totals);
        // Every trace that lost calls: its remaining calls' flags are derived again (those left
        // in a deleted trace too, found by its id).
        let mut touched: Vec<String> = gone.iter().filter_map(|g| g.trace_id.clone()).collect();
        touched.sort_unstable();
        touched.dedup();
        Ok(UserGone {
            removed,
            tag_sets,
            rowids: gone.iter().map(|g| g.rowid).collect(),
            touched,
            hmac,
            ticket,
            share,
        })
    }

    /// Whether the scrub of deletion `ticket` is done: `None` for a ticket never given.
    pub fn scrub_done(&self, ticket: u64) -> Option<bool> {
        (ticket >= 1 && ticket <= self.scrub.requested.load(Ordering::Acquire))
            .then(|| self.scrub.done.load(Ordering::Acquire) >= ticket)
    }

    /// Whether the scrub of `project_id`'s deletion `ticket` is done: `None` for a ticket no
    /// deletion of this project took (another project's tickets are not its business).
    pub async fn deletion_scrubbed(&self, project_id: i64, ticket: u64) -> Result<Option<bool>, StoreError> {
        let Ok(t) = i64::try_from(ticket) else { return Ok(None) };
        let ours: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM deletion_log WHERE ticket = ?1 AND project_id = ?2")
                .bind(t)
                .bind(project_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(ours.and_then(|_| self.scrub_done(ticket)))
    }

    /// Whether every scrub asked for so far has finished.
    pub fn scrubs_done(&self) -> bool {
        self.scrub.done.load(Ordering::Acquire) >= self.scrub.requested.load(Ordering::Acquire)
    }

    /// Whether a user was deleted in the last minute (the aggregate's saver waits).
    pub(crate) fn deleted_lately(&self) -> bool {
        let last = *self.scrub.last_request.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|t| t.elapsed() < Duration::from_secs(60))
    }

    /// At start: the tickets of the file, and a scrub when some deletion's is not done (the
    /// process stopped before it).
    pub(crate) async fn resume_scrub(&self) -> Result<(), StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM store_meta WHERE key IN ('scrub_requested', 'scrub_done')",
        )
        .fetch_all(&self.read)
        .await?;
        for (key, value) in rows {
            let n = value.parse().unwrap_or(0);
            match key.as_str() {
                "scrub_requested" => self.scrub.requested.fetch_max(n, Ordering::AcqRel),
                _ => self.scrub.done.fetch_max(n, Ordering::AcqRel),
            };
        }
        let requested = self.scrub.requested.load(Ordering::Acquire);
        if self.scrub.done.load(Ordering::Acquire) < requested {
            tracing::info!("a deletion's scrub was not done before the last stop: it runs now");
            self.scrub_soon(requested);
        }
        Ok(())
    }

    /// Returns once a scrub that began after deletion `ticket` committed has finished: runs
    /// one unless another (which then covers it) is running.
    pub(crate) async fn scrub_after(&self, ticket: u64) -> Result<(), StoreError> {
        loop {
            if self.scrub.done.load(Ordering::Acquire) >= ticket {
                return Ok(());
            }
            let _running = self.scrub.running.lock().await;
            if self.scrub.done.load(Ordering::Acquire) >= ticket {
                return Ok(());
            }
            let target = self.scrub.requested.load(Ordering::Acquire);
            if self.scrub().await? {
                let mut conn = self.write.acquire().await?;
                sqlx::query(
                    "INSERT INTO store_meta (key, value) VALUES ('scrub_done', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(target.to_string())
                .execute(&mut *conn)
                .await?;
                self.scrub.done.fetch_max(target, Ordering::AcqRel);
            } else {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Scrubs for deletion `ticket` in the background, once no deletion came for
    /// `SCRUB_QUIET` (at most `SCRUB_WAIT_MAX` after this call): a run of deletions shares one
    /// rewrite of the file.
    pub(crate) fn scrub_soon(&self, ticket: u64) {
        let store = self.clone();
        tokio::spawn(async move {
            let asked = Instant::now();
            loop {
                let last =
                    store.scrub.last_request.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(asked);
                let quiet = last.elapsed();
                let busy = store.scrub.in_flight.load(Ordering::Acquire) > 0;
                if (quiet >= *SCRUB_QUIET && !busy) || asked.elapsed() >= *SCRUB_WAIT_MAX {
                    break;
                }
                tokio::time::sleep(SCRUB_QUIET.saturating_sub(quiet).max(Duration::from_millis(100))).await;
            }
            for attempt in 1..=10u32 {
                match store.scrub_after(ticket).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "scrubbing the file after a deletion failed; trying again");
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                }
            }
        });
    }

    /// Rewrites the database file so no fragment of deleted rows survives (`secure_delete` zeroes
    /// deleted cells, but B-tree rebalancing can leave old bytes in a page's unused space), then
    /// empties the WAL. The rewrite goes through a temporary file, not memory, so it works for any
    /// size of database. False when the WAL could not be emptied for about 15 minutes (a reader
    /// held it): the old pages may still be in the file, so the scrub is not done.
    async fn scrub(&self) -> Result<bool, StoreError> {
        let started = Instant::now();
        let mut conn = self.write.acquire().await?;
        sqlx::query("PRAGMA temp_store = FILE").execute(&mut *conn).await?;
        let vacuum = sqlx::query("VACUUM").execute(&mut *conn).await;
        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
        vacuum?;
        drop(conn);
        // A reader of an older snapshot (a backup runs for minutes) keeps the WAL from being
        // emptied: the truncation is retried, never the rewrite (each would append the whole
        // file to a WAL that can't be reset).
        for attempt in 0..120u64 {
            if self.checkpoint_truncated().await? {
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "scrubbed the file after a deletion (VACUUM, WAL truncated)"
                );
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_secs(1 + attempt.min(9))).await;
        }
        Ok(false)
    }

    /// Moves the WAL's pages into the database file and truncates the WAL, retrying while
    /// readers hold old snapshots, so deleted content is left in neither file. The TRUNCATE,
    /// which holds new writers while it waits for readers, runs only once a PASSIVE checkpoint
    /// found no reader of an older snapshot (a backup is one for minutes), and waits at most
    /// 2 s: ingest is not held up behind a long reader.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        if !self.checkpoint_truncated().await? {
            tracing::warn!("WAL checkpoint stayed busy; it completes at the next idle checkpoint");
        }
        Ok(())
    }

    /// [`Store::checkpoint`], saying whether the WAL was emptied.
    pub(crate) async fn checkpoint_truncated(&self) -> Result<bool, StoreError> {
        for attempt in 0..50 {
            // The writer connection, taken per attempt: ingest goes on between attempts.
            let mut conn = self.write.acquire().await?;
            if super::passive_checkpoint(&mut *conn).await? {
                sqlx::query("PRAGMA busy_timeout = 2000").execute(&mut *conn).await?;
                let truncated: Result<(i64, i64, i64), sqlx::Error> =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut *conn).await;
                sqlx::query("PRAGMA busy_timeout = 120000").execute(&mut *conn).await?;
                if truncated?.0 == 0 {
                    return Ok(true);
                }
            }
            drop(conn);
            tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
        }
        Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deletion waits for its turn only while ingest is writing: twice as long as the last
    /// deletion held the writer (at most a minute); without ingest it doesn't wait.
    #[tokio::test]
    async fn deletions_wait_their_turn_only_while_ingest_writes() {
        let pace = Pace::default();
        pace.turn().await; // no deletion yet: nothing to wait for
        // The last deletion held the writer for 10 s; no ingest: the next goes at once
        // (a wait would be 20 s).
        pace.deleted(Duration::from_secs(10));
        tokio::time::timeout(Duration::from_secs(5), pace.turn()).await.expect("no wait without ingest");
        // Ingest is writing: the next deletion waits twice the 150 ms the last one held it.
        pace.ingest_wrote();
        pace.deleted(Duration::from_millis(150));
        let started = Instant::now();
        pace.turn().await;
        assert!(started.elapsed() >= Duration::from_millis(290), "waited {:?}", started.elapsed());
        // A deletion that held the writer for an hour doesn't stop the next for two.
        pace.deleted(Duration::from_secs(3600));
        let at = pace.deletion_at.lock().expect("lock").expect("set");
        assert!(at <= Instant::now() + Duration::from_secs(60));
    }

    /// No background scrub starts while a deletion is in flight, however long it has been
    /// since the last ticket (a scrub rewrites the whole file holding the writer: one starting
    /// mid-run would hold up every deletion behind it); it starts once none is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_scrub_starts_while_a_deletion_is_in_flight() {
        let dir = super::super::scratch_dir("scrub-in-flight");
        let store = Store::open(&dir.join("s.db")).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        store.ingest(project, &[], &[super::super::test_call("e1", "u")]).await.expect("ingest");
        // Another deletion, still waiting for its turn.
        let other = InFlight::new(&store.scrub.in_flight);
        let (removed, ticket) = store.delete_user_later(project, "u", "test").await.expect("delete");
        assert_eq!(removed.events, 1);
        let ticket = ticket.expect("something was removed: a scrub is owed");
        tokio::time::sleep(*SCRUB_QUIET + Duration::from_millis(1500)).await;
        assert_eq!(store.scrub_done(ticket), Some(false), "a scrub started with a deletion in flight");
        drop(other);
        let started = Instant::now();
        while store.scrub_done(ticket) != Some(true) {
            assert!(started.elapsed() < Duration::from_secs(60), "the scrub never came");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
