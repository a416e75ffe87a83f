//! Online backup and restore of the database file (`tokentally backup` / `tokentally restore`).
//!
//! A backup is SQLite's `VACUUM INTO` on a read-only connection: one read transaction, so the
//! copy is the database as of one commit, while `serve` goes on ingesting (readers never block
//! the writer in WAL mode). It is written to a temporary file and renamed into place once
//! synced, so a file at the backup's path is always complete.
//!
//! Neither file carries the saved aggregate's token (`store_meta.aggregate_token`): an aggregate
//! saved beside the database later must never be taken for the aggregate of a backup's older
//! data. A restored database therefore rebuilds its aggregate at the next start.
//!
//! `serve` holds an exclusive lock on `<db>.lock` while it runs; `restore` takes the same lock,
//! so it refuses a database in use and no server starts on a half-restored file.

use super::{StoreError, beside};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use std::fs::File;
use std::path::Path;

/// What a backup or a restore copied.
#[derive(Debug, Clone)]
pub struct Copied {
    pub calls: i64,
    pub bytes: u64,
}

/// Takes the exclusive lock on `<db>.lock` that says a process is serving (or restoring) this
/// database; held until the returned file is dropped.
pub fn lock(db: &Path) -> Result<File, StoreError> {
    let path = beside(db, ".lock");
    // An existing lock file is opened for reading only (a lock needs no more), so one that
    // another user created (root running `restore`) doesn't keep the service from starting.
    let file = match File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)
        }
        other => other,
    }
    .map_err(|e| StoreError::Invalid(format!("cannot open the lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Invalid(format!(
            "the database {} is in use by another tokentally process (`serve` or `restore`); stop it first",
            db.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StoreError::Invalid(format!("cannot lock {}: {e}", path.display())))
        }
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Invalid(format!("{what} {}: {e}", path.display()))
}

fn remove_if_there(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path, e)),
        _ => Ok(()),
    }
}

/// Writes a consistent copy of `from` (read through SQLite, its WAL included) to `to`, which
/// must not exist: through `<to>.tmp-<pid>`, without the aggregate token, readable by its owner
/// only (it holds prompts), synced, then linked into place (which fails, rather than replace,
/// if `to` appeared meanwhile).
async fn copy_database(from: &Path, to: &Path) -> Result<Copied, StoreError> {
    let tmp = beside(to, &format!(".tmp-{}", std::process::id()));
    remove_if_there(&tmp)?;
    let mut src = SqliteConnectOptions::new().filename(from).read_only(true).connect().await?;
    let target =
        tmp.to_str().ok_or_else(|| StoreError::Invalid(format!("not a UTF-8 path: {}", tmp.display())))?;
    let copied = sqlx::query("VACUUM INTO ?1").bind(target).execute(&mut src).await;
    drop(src);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    let calls = match strip_token(&tmp).await {
        Ok(calls) => calls,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let placed = (|| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("cannot set the permissions of", &tmp, e))?;
        let file = File::open(&tmp).map_err(|e| io("cannot open", &tmp, e))?;
        file.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
        let bytes = file.metadata().map_err(|e| io("cannot read", &tmp, e))?.len();
        match std::fs::hard_link(&tmp, to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(io("cannot put the copy at", to, e));
            }
            // A file system without hard links: a rename, after checking nothing is there.
            Err(_) if !to.exists() => {
                std::fs::rename(&tmp, to).map_err(|e| io("cannot put the copy at", to, e))?
            }
            Err(e) => return Err(io("cannot put the copy at", to, e)),
        }
        Ok(bytes)
    })();
    let _ = std::fs::remove_file(&tmp);
    let bytes = placed?;
    sync_dir(to);
    Ok(Copied { calls, bytes })
}

/// Syncs the directory holding `path`, so a rename into it survives a power loss (best effort:
/// not every file system can open a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d })
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Removes the aggregate token (and the trace records kept for a replay of that aggregate)
/// from a copy, in rollback-journal mode so the copy stays one self-contained file; returns the
/// copy's number of calls.
async fn strip_token(copy: &Path) -> Result<i64, StoreError> {
    let mut conn =
        SqliteConnectOptions::new().filename(copy).journal_mode(SqliteJournalMode::Delete).connect().await?;
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .fetch_all(&mut conn)
        .await?;
    for table in ["events", "_sqlx_migrations"] {
        if !tables.iter().any(|t| t == table) {
            return Err(StoreError::Invalid(format!(
                "{} is not a tokentally database (it has no `{table}` table)",
                copy.display()
            )));
        }
    }
    if tables.iter().any(|t| t == "store_meta") {
        sqlx::query("DELETE FROM store_meta WHERE key = 'aggregate_token'").execute(&mut conn).await?;
    }
    if tables.iter().any(|t| t == "trace_touches") {
        sqlx::query("DELETE FROM trace_touches").execute(&mut conn).await?;
    }
    let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(&mut conn).await?;
    Ok(calls)
}

/// `tokentally backup`: a consistent copy of `db` at `to` while the database may be in use.
pub async fn backup(db: &Path, to: &Path) -> Result<Copied, StoreError> {
    if !db.exists() {
        return Err(StoreError::Invalid(format!("no database at {}", db.display())));
    }
    if to.exists() {
        return Err(StoreError::Invalid(format!(
            "{} exists; a backup never overwrites a file",
            to.display()
        )));
    }
    copy_database(db, to).await
}

/// `tokentally restore`: replaces `db` with the backup `from`. Refuses while a server holds the
/// database, when `from` is not a sound tokentally database, when it was written by a newer
/// tokentally (more migrations than this binary knows), and (unless `force`) when `db` exists.
pub async fn restore(from: &Path, db: &Path, force: bool) -> Result<Copied, StoreError> {
    if !from.is_file() {
        return Err(StoreError::Invalid(format!("no backup file at {}", from.display())));
    }
    if db.exists() && !force {
        return Err(StoreError::Invalid(format!(
            "{} exists: restoring replaces it and everything in it; add --force to do that",
            db.display()
        )));
    }
    let _lock = lock(db)?;
    check_backup(from).await?;
    if db.exists() {
        settle(db).await?;
    }
    let staged = beside(db, ".restoring");
    remove_if_there(&staged)?;
    let copied = copy_database(from, &staged).await?;
    if let Ok(old) = std::fs::metadata(db) {
        keep_owner_and_mode(&old, &staged);
    }
    // The old database's WAL must not meet the restored file (SQLite would apply it), nor its
    // saved aggregate (a start would trust it). The WAL, empty after `settle`, is moved aside
    // first, then the copy replaces the database in one rename.
    let aside = beside(db, ".pre-restore-wal");
    match std::fs::rename(beside(db, "-wal"), &aside) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            let _ = std::fs::remove_file(&staged);
            return Err(io("cannot move aside the WAL of", db, e));
        }
        _ => {}
    }
    for file in [beside(db, "-shm"), beside(db, "-journal")]
        .into_iter()
        .chain(super::Store::aggregate_files(&super::Store::aggregate_path(db)))
    {
        remove_if_there(&file)?;
    }
    std::fs::rename(&staged, db).map_err(|e| io("cannot move the restored copy to", db, e))?;
    sync_dir(db);
    remove_if_there(&aside)?;
    Ok(copied)
}

/// Copies everything of the database being replaced from its WAL into its file and empties the
/// WAL; refuses when another process holds it (an open transaction, or a connection that keeps
/// the checkpoint from completing).
async fn settle(db: &Path) -> Result<(), StoreError> {
    let in_use = || {
        StoreError::Invalid(format!(
            "the database {} is in use by another process (a tokentally command or an sqlite3 shell); stop it first",
            db.display()
        ))
    };
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(std::time::Duration::from_secs(2))
        .connect()
        .await
        .map_err(|_| in_use())?;
    let (busy, _, _): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut conn).await.map_err(|_| in_use())?;
    if busy != 0 {
        return Err(in_use());
    }
    Ok(())
}

/// Gives the restored file the owner and permissions of the database it replaces (best effort:
/// changing the owner needs the rights to).
fn keep_owner_and_mode(old: &std::fs::Metadata, new: &Path) {
    use std::os::unix::fs::MetadataExt;
    let _ = std::os::unix::fs::chown(new, Some(old.uid()), Some(old.gid()));
    let _ = std::fs::set_permissions(new, old.permissions());
}

/// Whether `from` opens, passes SQLite's `quick_check` and needs no migration newer than this
/// binary's.
async fn check_backup(from: &Path) -> Result<(), StoreError> {
    let not_db = |e: sqlx::Error| {
        StoreError::Invalid(format!("{} is not a readable SQLite database: {e}", from.display()))
    };
    let mut conn =
        SqliteConnectOptions::new().filename(from).read_only(true).connect().await.map_err(not_db)?;
    let check: Vec<String> =
        sqlx::query_scalar("PRAGMA quick_check").fetch_all(&mut conn).await.map_err(not_db)?;
    if check != ["ok"] {
        return Err(StoreError::Invalid(format!(
            "{} fails SQLite's integrity check: {}",
            from.display(),
            check.join("; ")
        )));
    }
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .map_err(|_| StoreError::Invalid(format!("{} is not a tokentally database", from.display())))?;
    // What `serve` would refuse to start on: a migration this binary doesn't have (a newer
    // tokentally wrote it), one that differs from this binary's, one that failed.
    let migrator = sqlx::migrate!("../migrations");
    for (version, success, checksum) in applied {
        let Some(known) = migrator.iter().find(|m| m.version == version) else {
            return Err(StoreError::Invalid(format!(
                "{} was written by a newer tokentally (migration {version} is unknown to this one); restore it with that version",
                from.display()
            )));
        };
        if !success || known.checksum.as_ref() != checksum.as_slice() {
            return Err(StoreError::Invalid(format!(
                "{}: migration {version} was not applied as this tokentally applies it; restore it with the version that wrote it",
                from.display()
            )));
        }
    }
    Ok(())
}
