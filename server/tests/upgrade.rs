//! Upgrading keeps every stored call and every answer: a database written by the release before
//! the in-memory aggregate (`fixtures/v1_demo.db`: `tokentally demo --events 3000 --users 40
//! --days 10 --seed 7`) is opened by this build, which migrates it and fills in the calls' trace
//! flags, and each read-API answer that release gave (`fixtures/v1_answers.json`, for the
//! requests in `fixtures/v1_urls.txt`) must come back identical.

mod common;

use common::TestServer;
use serde_json::Value;
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[tokio::test]
async fn a_database_of_the_previous_release_answers_as_it_did() {
    let seed = fixture("v1_demo.db");
    let server = TestServer::start_from(Some(&seed), &["--no-login"], &[]);
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("v1_answers.json")).expect("answers"))
            .expect("answers JSON");
    let urls = std::fs::read_to_string(fixture("v1_urls.txt")).expect("urls");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for url in urls.lines().filter(|l| !l.trim().is_empty()) {
        let (status, mut body) = server.get(url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let mut want = expected.get(url).unwrap_or_else(|| panic!("no recorded answer for {url}")).clone();
        // `chart_svg` was always empty in the API and is gone from it (the pages draw the chart).
        if let Some(then) = want.as_object_mut() {
            then.remove("chart_svg");
        }
        // Fields added since that release (e.g. `total_segments`) are additions, not changes:
        // every field it answered must answer the same.
        if let (Some(now), Some(then)) = (body.as_object_mut(), want.as_object()) {
            now.retain(|k, _| then.contains_key(k));
        }
        if body != want {
            wrong.push(format!("{url}\n  now:  {}\n  then: {}", short(&body), short(&want)));
        }
        checked += 1;
    }
    assert_eq!(checked, expected.len(), "every recorded request was replayed");
    assert!(wrong.is_empty(), "{} of {checked} answers changed:\n{}", wrong.len(), wrong.join("\n"));

    // Every stored call is still there, each with its trace flags filled in.
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&server.db)
        .read_only(true)
        .connect()
        .await
        .expect("open the database");
    let counts: (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE firsts IS NULL) FROM events")
            .fetch_one(&mut conn)
            .await
            .expect("count");
    assert_eq!(counts, (3000, 0), "(calls, calls without flags)");

    // The old events table's status check was widened in place: a stopped stream is stored.
    let body = serde_json::json!({ "events": [{ "id": "after-upgrade", "timestamp": common::minutes_ago(1),
        "provider": "openai", "model": "gpt-4o", "status": "cancelled" }] });
    let (status, reply) = server.post(&body).await;
    assert_eq!(status, 200, "{reply}");
    let (_, e) = server.get("/v1/me/ai-apps/events/after-upgrade").await;
    assert_eq!(e["summary"]["status"], "cancelled");
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 { format!("{}…", &s[..600]) } else { s }
}
