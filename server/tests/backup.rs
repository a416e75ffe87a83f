//! `tokentally backup` while the server ingests: the copy opens, passes SQLite's integrity check
//! and holds every call acknowledged before the backup started. `tokentally restore` refuses a
//! database in use and a file that is not a database; after a restore the server answers from
//! the backup's calls (not from the aggregate saved beside the database before).

mod common;

use common::{TestServer, cli, minutes_ago};
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn batch(prefix: &str, n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("{prefix}-{i}"), "trace_id": format!("{prefix}-t{}", i / 4),
                "timestamp": minutes_ago((i % 300) as i64), "provider": "openai", "model": "gpt-4o-mini",
                "tags": { "userId": format!("u{}", i % 13), "plan": "pro" },
                "usage": { "input_tokens": 100 + i, "output_tokens": 20, "cache_read_tokens": 0, "cache_creation_tokens": 0 },
                "latency_ms": 250,
            })
        })
        .collect();
    json!({ "events": events })
}

async fn open(path: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("open the copy")
}

async fn event_ids(conn: &mut sqlx::SqliteConnection) -> BTreeSet<String> {
    sqlx::query_scalar("SELECT id FROM events").fetch_all(conn).await.expect("ids").into_iter().collect()
}

async fn total_calls(server: &TestServer) -> i64 {
    let (status, body) = server.get("/v1/me/ai-apps/overview?window=7d").await;
    assert_eq!(status, 200, "{body}");
    body["current"]["calls"].as_i64().unwrap_or_else(|| panic!("current.calls in {body}"))
}

#[tokio::test]
async fn a_backup_taken_during_ingest_holds_every_acknowledged_call_and_restores() {
    let mut server = TestServer::start();
    // Acknowledged before the backup starts.
    let mut acked = BTreeSet::new();
    for b in 0..20 {
        let body = batch(&format!("pre{b}"), 100);
        let (status, answer) = server.post(&body).await;
        assert_eq!(status, 200, "{answer}");
        acked.extend((0..100).map(|i| format!("pre{b}-{i}")));
    }

    // Ingest goes on while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let during = {
        let (base, key, stop) = (server.base.clone(), server.ingest_key.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0;
            while !stop.load(Ordering::Acquire) {
                let r = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(&key)
                    .json(&batch(&format!("during{sent}"), 50))
                    .send()
                    .await
                    .expect("POST during the backup");
                assert_eq!(r.status().as_u16(), 200);
                sent += 1;
            }
            sent
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let copy = server.dir.join("backup.db");
    let (db, to) = (server.db.clone(), copy.clone());
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || cli(&db, &["backup", to.to_str().expect("utf-8")]))
            .await
            .expect("join");
    assert!(ok, "backup failed: {out} {err}");
    assert!(out.contains("backed up"), "{out}");
    stop.store(true, Ordering::Release);
    let sent_during = during.await.expect("ingest during the backup");

    let mut conn = open(&copy).await;
    let check: Vec<String> =
        sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await.expect("check");
    assert_eq!(check, ["ok"]);
    let in_copy = event_ids(&mut conn).await;
    let missing: Vec<&String> = acked.difference(&in_copy).collect();
    assert!(
        missing.is_empty(),
        "calls acknowledged before the backup are missing: {:?}",
        &missing[..missing.len().min(5)]
    );
    // A batch ingested while the backup ran is in the copy whole or not at all.
    for b in 0..sent_during {
        let n = (0..50).filter(|i| in_copy.contains(&format!("during{b}-{i}"))).count();
        assert!(n == 0 || n == 50, "batch during{b} is in the copy in part ({n} of 50 calls)");
    }
    let token: Option<String> =
        sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'aggregate_token'")
            .fetch_optional(&mut conn)
            .await
            .expect("meta");
    assert_eq!(token, None, "a backup carries no aggregate token");
    drop(conn);
    let backed_up = in_copy.len() as i64;

    // A second backup never overwrites the first.
    let (ok, _, err) = cli(&server.db, &["backup", copy.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("exists"), "{err}");

    // More calls after the backup, then a restore: refused while the server runs.
    let (status, answer) = server.post(&batch("after", 100)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(total_calls(&server).await > backed_up);
    let (ok, _, err) = cli(&server.db, &["restore", copy.to_str().expect("utf-8"), "--force"]);
    assert!(!ok && err.contains("in use"), "restore must refuse a served database: {err}");

    // A clean stop saves the aggregate (with the calls the backup lacks) beside the database.
    server.stop_gracefully();
    assert!(app::store::Store::aggregate_path(&server.db).exists());
    let (ok, _, err) = cli(&server.db, &["restore", copy.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("--force"), "restore asks before replacing a database: {err}");
    let garbage = server.dir.join("not-a-backup.db");
    std::fs::write(&garbage, b"this is not a database, just some bytes that are long enough").expect("write");
    let before_refusals = event_ids(&mut open(&server.db).await).await;
    let (ok, _, err) = cli(&server.db, &["restore", garbage.to_str().expect("utf-8"), "--force"]);
    assert!(!ok, "a file that is not a database is refused: {err}");
    assert_eq!(
        event_ids(&mut open(&server.db).await).await,
        before_refusals,
        "a refused restore changes nothing"
    );
    assert!(before_refusals.len() as i64 > backed_up);
    let (ok, out, err) = cli(&server.db, &["restore", copy.to_str().expect("utf-8"), "--force"]);
    assert!(ok, "restore failed: {out} {err}");
    assert!(
        !app::store::Store::aggregate_path(&server.db).exists(),
        "restore removes the aggregate saved for the database it replaced"
    );

    server.start_again(&["--no-login"]);
    assert_eq!(total_calls(&server).await, backed_up, "the restored calls, not the aggregate saved before");
    let mut conn = open(&server.db).await;
    assert_eq!(event_ids(&mut conn).await, in_copy);
    drop(conn);

    // Restoring over a database a crash left with a WAL: the old WAL's calls never reach the
    // restored file.
    let (status, answer) = server.post(&batch("crashed", 100)).await;
    assert_eq!(status, 200, "{answer}");
    server.crash();
    let (ok, out, err) = cli(&server.db, &["restore", copy.to_str().expect("utf-8"), "--force"]);
    assert!(ok, "restore after a crash failed: {out} {err}");
    server.start_again(&["--no-login"]);
    assert_eq!(total_calls(&server).await, backed_up);
    let mut conn = open(&server.db).await;
    assert_eq!(event_ids(&mut conn).await, in_copy);
    let check: Vec<String> =
        sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await.expect("check");
    assert_eq!(check, ["ok"]);
}
