//! The store (ssr only): SQLite through sqlx. Typed queries shared by the dashboard's server
//! functions and the REST handlers. Depends on `pricing` and `model`, never on HTTP.

#[cfg(test)]
mod aggregate_tests;
pub mod auth;
pub mod backup;
pub mod cube;
pub mod deletion;
mod derived;
#[cfg(test)]
mod equivalence_tests;
pub mod event_keys;
pub mod ingest;
pub mod keys;
pub mod models;
pub mod otel;
pub mod overview;
pub mod projects;
pub mod retention;
pub mod segments;
mod sql;
mod tag_cache;
pub(crate) mod texts;
pub mod traces;
pub mod users;
pub mod window;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Store failures. Database details are logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("not found: {0}")]
    NotFound(String),
    /// A request the store refuses (a duplicate name, a bad setting); the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The file system failed (e.g. making the WAL durable).
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

/// The events table's status check as the first migration wrote it, and as it is now.
const STATUS_CHECK_V1: &str = "CHECK (status IN ('ok', 'error'))";
const STATUS_CHECK: &str = "CHECK (status IN ('ok', 'error', 'cancelled'))";

/// Widens the events table's status check to admit `cancelled` (a stream the caller stopped).
/// SQLite cannot alter a CHECK constraint, and rebuilding a table of millions of calls would
/// stall the start; loosening a CHECK does not change how rows are stored, so the table's
/// definition is edited in place, as SQLite documents for exactly this change
/// (<https://www.sqlite.org/lang_altertable.html#otheralter>): in one transaction, rewrite the
/// schema text and bump `schema_version` so every connection reloads it. Runs once; a no-op
/// afterwards.
async fn allow_cancelled_status(write: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = write.acquire().await?;
    let mut tx = conn.begin().await?;
    let sql: Option<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'events'")
            .fetch_optional(&mut *tx)
            .await?;
    if !sql.is_some_and(|s| s.contains(STATUS_CHECK_V1)) {
        return Ok(());
    }
    let version: i64 = sqlx::query_scalar("PRAGMA schema_version").fetch_one(&mut *tx).await?;
    sqlx::query("PRAGMA writable_schema = ON").execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'events'",
    )
    .bind(STATUS_CHECK_V1)
    .bind(STATUS_CHECK)
    .execute(&mut *tx)
    .await?;
    // A pragma takes no bound parameters; the value is an integer read just above.
    sqlx::query(AssertSqlSafe(format!("PRAGMA schema_version = {}", version + 1))).execute(&mut *tx).await?;
    sqlx::query("PRAGMA writable_schema = OFF").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Adds the `event_keys` rows of calls stored without one: every call, once, after the upgrade
/// to migration 10 (the migration can't compute the keyed hash). Pages of 50,000 calls, each
/// its own transaction, so an interrupted start resumes where it stopped.
async fn hash_unkeyed_calls(write: &SqlitePool, secret: &[u8; 16]) -> Result<(), StoreError> {
    // Usually nothing to do: checked without the write lock (a server may be ingesting).
    let (unkeyed,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM events WHERE rowid > (SELECT COALESCE(MAX(event), 0) FROM event_keys))",
    )
    .fetch_one(write)
    .await?;
    if !unkeyed {
        return Ok(());
    }
    let mut hashed = 0usize;
    loop {
        let mut conn = write.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let calls: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT rowid, project_id, id FROM events
              WHERE rowid > (SELECT COALESCE(MAX(event), 0) FROM event_keys) ORDER BY rowid LIMIT 50000",
        )
        .fetch_all(&mut *tx)
        .await?;
        if calls.is_empty() {
            break;
        }
        for chunk in calls.chunks(5_000) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO event_keys (event, h) ");
            q.push_values(chunk, |mut b, (rowid, project, id)| {
                b.push_bind(*rowid).push_bind(i64::from(event_keys::key_hash(secret, *project, id)));
            });
            q.push(" ON CONFLICT (event) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        hashed += calls.len();
    }
    if hashed > 0 {
        tracing::info!(calls = hashed, "hashed the ids of calls stored before this release");
    }
    Ok(())
}

/// Handles to one SQLite database file: a pool of readers and a single writer connection
/// (SQLite has one writer at a time; one connection makes every write transaction wait in line
/// inside the process instead of failing with SQLITE_BUSY).
#[derive(Clone)]
pub struct Store {
    pub read: SqlitePool,
    pub write: SqlitePool,
    /// (project id, canonical tags) → tag set id, filled after commits.
    tag_cache: Arc<Mutex<tag_cache::TagCache>>,
    /// Recent prompt and response messages → their `texts` rows (see `texts`).
    text_cache: Arc<Mutex<texts::TextCache>>,
    /// The aggregate every analytic view reads (see `derived`).
    cube: Arc<RwLock<cube::Cube>>,
    /// Batches waiting for the writer, and the gate the writer holds (see `ingest`).
    pending: Arc<Mutex<std::collections::VecDeque<ingest::Job>>>,
    writer_gate: Arc<tokio::sync::Mutex<()>>,
    /// Whether the aggregate was built (only then do commits update it).
    aggregate_loaded: Arc<std::sync::atomic::AtomicBool>,
    /// The state of the aggregate saved beside the file (see `derived`).
    saved: Arc<derived::Saved>,
    /// Held by user deletion and retention from start to end, and by a save of the aggregate:
    /// no file is saved halfway through a deletion.
    maintenance: Arc<tokio::sync::Mutex<()>>,
    /// Bumped after every committed batch that stored something: open dashboards poll it and
    /// refetch only when it moved.
    version: Arc<AtomicU64>,
    /// Each project's version: the value of `version` when something of that project was last
    /// stored or removed (a dashboard tab polls its own project's, so ingest into one project
    /// doesn't make every other project's tabs refetch).
    project_versions: Arc<Mutex<HashMap<i64, u64>>>,
    /// The filter bar's top-spender menus (see `overview`).
    user_menus: Arc<Mutex<overview::UserMenus>>,
    /// Shared while OpenTelemetry calls move from the waiting area into `events`, exclusive for
    /// a user deletion: a call read from the waiting area is never stored after its user was
    /// deleted.
    otel_gate: Arc<tokio::sync::RwLock<()>>,
    /// Which calls may hold an event id (see `event_keys`), read from the file on first use.
    event_keys: Arc<tokio::sync::OnceCell<RwLock<event_keys::EventKeys>>>,
    /// The key of the ids' hash (`secrets.event_key`).
    key_secret: [u8; 16],
    /// The database's WAL file, which ingest makes durable itself (see `Store::sync_wal`).
    wal: Arc<Wal>,
    /// Deletions waiting for the file to be scrubbed (see `deletion`).
    scrub: Arc<deletion::ScrubState>,
    /// When ingest last wrote, and when the next deletion may take the writer (see `deletion`).
    pace: Arc<deletion::Pace>,
}

/// The WAL file as ingest syncs it (see `Store::sync_wal`).
pub(crate) struct Wal {
    /// Where SQLite keeps it: beside the database file as SQLite resolved it (symlinks followed).
    pub path: std::path::PathBuf,
    /// Opened at the first sync and kept: Linux reports a write-back error to the descriptors
    /// open when it happened, so one long-lived descriptor sees every error after it (the
    /// writer's connection never closes, so the file is never replaced while this one is held).
    pub file: Mutex<Option<Arc<std::fs::File>>>,
    /// Set by a failed sync: what was committed since the last good sync may not be on disk,
    /// so ingest refuses every batch from then until a restart (SQLite recovers the file).
    pub failed: std::sync::atomic::AtomicBool,
}

/// How often the background checkpointer looks for new commits, and the WAL size past which it
/// makes the writer start the WAL over.
const CHECKPOINT_EVERY_MS: u64 = 1_000;
const WAL_RESTART_BYTES: u64 = 1 << 30;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Hour bucket (hours since the epoch) of a millisecond timestamp.
pub fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(3_600_000)
}

impl Store {
    /// Opens (creating if missing) the database file, in WAL mode with full fsync on commit
    /// (an acknowledged batch survives a power cut), and runs pending migrations. Calls this
    /// process appends are replayed by the next start that reads a saved aggregate; a user
    /// deletion or retention makes that start rebuild instead (see `derived`).
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_file(path).await
    }

    async fn open_file(path: &Path) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Long enough to wait out a background WAL restart (see `spawn_checkpointer`).
            .busy_timeout(Duration::from_secs(120))
            .foreign_keys(true)
            .pragma("secure_delete", "ON")
            // A bigger page cache for the writer (16 MiB): ingest touches many index pages. No
            // memory-mapped reads: the aggregate answers the scans, and a mapped file would count
            // in the server's resident memory as it is read.
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "MEMORY");
        // The writer never checkpoints on commit (that would copy the WAL's pages into the
        // file inside an acknowledged request); `spawn_checkpointer` does it beside the writer.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Never closed while the store is open: it keeps the WAL file that ingest syncs.
            .max_lifetime(None)
            .idle_timeout(None)
            // A scrub after user deletions rewrites the whole file holding the writer (about a
            // minute at 10M calls): a batch waits for it rather than failing.
            .acquire_timeout(Duration::from_secs(600))
            .connect_with(
                opts.clone().pragma("wal_autocheckpoint", "0").pragma("journal_size_limit", "67108864"),
            )
            .await?;
        // Migrations that copy a table or build an index sort millions of rows: on disk, not in
        // memory (temp_store MEMORY held 7 GB while migration 10 ran on 11.6M calls).
        sqlx::query("PRAGMA temp_store = FILE").execute(&write).await?;
        sqlx::migrate!("../migrations").run(&write).await?;
        sqlx::query("PRAGMA temp_store = MEMORY").execute(&write).await?;
        allow_cancelled_status(&write).await?;
        let secret: Vec<u8> = sqlx::query_scalar("SELECT value FROM secrets WHERE name = 'event_key'")
            .fetch_one(&write)
            .await?;
        let key_secret: [u8; 16] = secret
            .try_into()
            .map_err(|_| StoreError::Invalid("the database's event_key secret is not 16 bytes".into()))?;
        hash_unkeyed_calls(&write, &key_secret).await?;
        let (file,): (String,) = sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&write)
            .await?;
        let wal = Wal {
            path: beside(Path::new(&file), "-wal"),
            file: Mutex::default(),
            failed: std::sync::atomic::AtomicBool::new(false),
        };
        // Readers keep a small page cache (4 MiB each): the aggregate answers the scans, and
        // what readers read (a page of traces, a call) is a few pages.
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true).pragma("cache_size", "-4096"))
            .await?;
        Ok(Store {
            read,
            write,
            tag_cache: Arc::default(),
            text_cache: Arc::default(),
            cube: Arc::default(),
            pending: Arc::default(),
            writer_gate: Arc::default(),
            aggregate_loaded: Arc::default(),
            saved: Arc::default(),
            maintenance: Arc::default(),
            version: Arc::default(),
            project_versions: Arc::default(),
            user_menus: Arc::default(),
            otel_gate: Arc::default(),
            event_keys: Arc::default(),
            key_secret,
            wal: Arc::new(wal),
            scrub: Arc::default(),
            pace: Arc::default(),
        })
    }

    /// The hash of an event id in a project (see `event_keys`).
    pub(crate) fn key_hash(&self, project_id: i64, id: &str) -> u32 {
        event_keys::key_hash(&self.key_secret, project_id, id)
    }

    /// The in-memory event keys, read from `event_keys` on first use (`serve` starts that at
    /// once, beside the aggregate): two readers over halves of the rowid range, each row packed
    /// into one integer by SQLite (rows cross from SQLite's thread one by one, the read's cost).
    pub(crate) async fn event_keys(&self) -> Result<&RwLock<event_keys::EventKeys>, StoreError> {
        self.event_keys
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(event), 0) FROM event_keys")
                    .fetch_one(&self.read)
                    .await?;
                let mid = last / 2;
                let (low, high) = tokio::try_join!(self.packed_keys(0, mid), self.packed_keys(mid, last))?;
                let keys = event_keys::EventKeys::from_packed(low.into_iter().chain(high).collect());
                tracing::info!(
                    calls = keys.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "event keys read"
                );
                Ok::<_, StoreError>(RwLock::new(keys))
            })
            .await
    }

    /// `event_keys` rows with `after < event <= to`, packed as `h << 32 | event`.
    async fn packed_keys(&self, mut after: i64, to: i64) -> Result<Vec<u64>, StoreError> {
        let mut packed: Vec<u64> = Vec::new();
        loop {
            let page: Vec<i64> = sqlx::query_scalar(
                "SELECT (h << 32) | event FROM event_keys WHERE event > ?1 AND event <= ?2 ORDER BY event LIMIT 500000",
            )
            .bind(after)
            .bind(to)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = page.last() else { break };
            after = last & 0xffff_ffff;
            packed.extend(page.into_iter().map(|k| k as u64));
        }
        Ok(packed)
    }

    /// Starts reading the event keys in the background (`serve`, at start): the first ingest
    /// then finds them read, or waits for the read under way.
    pub fn preload_event_keys(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.event_keys().await {
                tracing::warn!(error = %e, "reading the event keys failed; the first ingest tries again");
            }
        });
    }

    /// The newest call rowid this process has stored or read into the event keys (`None`
    /// before they are read): a larger one in the file was written by another process.
    pub(crate) fn seen_calls_to(&self) -> Option<i64> {
        self.event_keys.get().map(|k| k.read().unwrap_or_else(|e| e.into_inner()).loaded_to)
    }

    /// Forgets deleted calls in the in-memory event keys (when they were read at all).
    pub(crate) fn forget_event_keys(&self, rowids: &[i64]) {
        if let Some(keys) = self.event_keys.get() {
            keys.write().unwrap_or_else(|e| e.into_inner()).remove_rowids(rowids);
        }
    }

    /// Opens the database and builds the in-memory aggregate the views read (what `serve`
    /// needs; the CLI's other commands use [`Store::open`] and never pay for it): from the file
    /// last saved ([`Store::aggregate_path`]) and the calls stored after it when it still
    /// matches the database, else from all the stored calls.
    pub async fn open_with_aggregate(path: &Path) -> Result<Store, StoreError> {
        let store = Store::open_file(path).await?;
        let started = std::time::Instant::now();
        let saved = store.load_aggregate(&Store::aggregate_path(path)).await?;
        if !saved {
            store.drop_aggregate_token().await?;
            store.rebuild_cube().await?;
            store.claim_token().await?;
        }
        let [rows, lat, tools, starts, traces, tags] = store.aggregate_megabytes();
        tracing::info!(rows, lat, tools, starts, traces, tags, "aggregate memory (MB)");
        tracing::info!(
            rows = store.aggregate_rows(),
            ms = started.elapsed().as_millis() as u64,
            from = if saved { "saved file" } else { "database" },
            "aggregate ready"
        );
        store.resume_scrub().await?;
        Ok(store)
    }

    /// Where the aggregate of the database at `db` is saved between runs (`<db>.aggregate`).
    pub fn aggregate_path(db: &Path) -> std::path::PathBuf {
        beside(db, ".aggregate")
    }

    /// Copies the WAL into the database file in the background, on a connection of its own, so
    /// commits only append to the WAL: every second after new commits a PASSIVE checkpoint
    /// (never blocks the writer or readers) copies what it can; once the WAL passes
    /// `WAL_RESTART_BYTES` a RESTART checkpoint waits for the writer's current transaction,
    /// copies the few frames left and makes the next transaction reuse the WAL from its start,
    /// so the WAL stays bounded under any ingest rate.
    pub fn spawn_checkpointer(&self, path: &Path) {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let version = self.version.clone();
        let wal = self.wal.path.clone();
        tokio::spawn(async move {
            let pool = match SqlitePoolOptions::new().max_connections(1).connect_with(opts).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "the WAL checkpointer could not open the database");
                    return;
                }
            };
            let mut seen = version.load(Ordering::Acquire);
            loop {
                tokio::time::sleep(Duration::from_millis(CHECKPOINT_EVERY_MS)).await;
                let now = version.load(Ordering::Acquire);
                if now == seen {
                    continue;
                }
                seen = now;
                let copied_all = match passive_checkpoint(&pool).await {
                    Ok(all) => all,
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                        continue;
                    }
                };
                // A RESTART holds new writers while it waits for readers of older snapshots;
                // only once nothing is left to copy (no such reader: a backup's long read keeps
                // frames back) does it wait for no one, and the WAL starts over.
                let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                if copied_all
                    && size > WAL_RESTART_BYTES
                    && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&pool).await
                {
                    tracing::warn!(error = %e, "WAL restart failed; retrying");
                }
            }
        });
    }

    /// Write jobs (ingest batches) waiting for the writer.
    pub fn writer_queue_depth(&self) -> usize {
        self.pending.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Changes whenever this process commits new data.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Changes whenever this process commits or removes data of project `project_id`.
    pub fn project_version(&self, project_id: i64) -> u64 {
        self.project_versions.lock().unwrap_or_else(|e| e.into_inner()).get(&project_id).copied().unwrap_or(0)
    }

    /// Drops the cached ids of deleted tag sets, and the cached messages (after a deletion:
    /// neither outlives it in memory).
    pub(crate) fn forget_tag_sets(&self, ids: &[i64]) {
        let ids: std::collections::HashSet<i64> = ids.iter().copied().collect();
        self.tag_cache.lock().unwrap_or_else(|e| e.into_inner()).forget(&ids);
        self.text_cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Marks new data in these projects.
    pub(crate) fn bump_version(&self, projects: impl IntoIterator<Item = i64>) {
        let now = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        let mut versions = self.project_versions.lock().unwrap_or_else(|e| e.into_inner());
        for p in projects {
            versions.insert(p, now);
        }
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// An empty directory for one test's database files (`<tmp>/tokentally-<name>-<pid>`).
#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tokentally-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One LLM call of `user`, a minute ago, for a store test.
#[cfg(test)]
pub(crate) fn test_call(id: &str, user: &str) -> ingest::EventIn {
    ingest::EventIn {
        id: id.into(),
        ts_ms: now_ms() - 60_000,
        kind: "llm".into(),
        provider: "openai".into(),
        model: "gpt-4o".into(),
        tags: std::collections::BTreeMap::from([("userId".to_string(), user.to_string())]),
        ..Default::default()
    }
}

/// `<db><suffix>`: the files SQLite and tokentally keep beside a database (`-wal`, `.aggregate`,
/// `.lock`, ...).
pub fn beside(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    std::path::PathBuf::from(p)
}

/// A PASSIVE checkpoint (never waits for the writer or readers); whether it copied every frame
/// of the WAL into the database file, i.e. no reader holds an older snapshot.
pub(crate) async fn passive_checkpoint<'c, E>(conn: E) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let (busy, log, copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(conn).await?;
    Ok(busy == 0 && copied == log)
}

#[cfg(test)]
mod version_tests {
    /// A dashboard polls its own project's version: ingest into one project moves that one only,
    /// a batch of duplicates moves nothing, a deletion moves its project's.
    #[tokio::test]
    async fn each_project_has_its_own_data_version() {
        let dir = super::scratch_dir("versions");
        let store = super::Store::open(&dir.join("v.db")).await.expect("open");
        let (a, b) =
            (store.ensure_project("a").await.expect("a"), store.ensure_project("b").await.expect("b"));
        let call = super::test_call("e1", "u");
        let (a0, b0) = (store.project_version(a), store.project_version(b));
        store.ingest(a, &[], std::slice::from_ref(&call)).await.expect("ingest");
        let a1 = store.project_version(a);
        assert!(a1 != a0, "a moved");
        assert_eq!(store.project_version(b), b0, "b didn't");
        store.ingest(a, &[], std::slice::from_ref(&call)).await.expect("resend");
        assert_eq!(store.project_version(a), a1, "a resent call stores nothing");
        store.delete_user(a, "u", "test").await.expect("delete");
        assert!(store.project_version(a) != a1);
        assert_eq!(store.project_version(b), b0);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
