//! What an operator relies on: `--version`, and logs a collector can parse
//! (`TOKENTALLY_LOG_FORMAT=json`: one JSON object per line, every line).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn version_names_the_binary_and_its_version() {
    let out = Command::new(common::binary()).arg("--version").output().expect("run --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("tokentally {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = std::env::temp_dir().join(format!("tokentally-test-json-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("logs.db");
    let mut child = Command::new(common::binary())
        .args(["serve", "--no-login", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("TOKENTALLY_LOG", "info")
        .env("TOKENTALLY_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    assert!(line.contains("listening on"), "{line}");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(child.wait().expect("wait").success());
    let _ = std::fs::remove_dir_all(&dir);

    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "serve logs at info");
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for o in &objects {
        assert!(o["timestamp"].is_string() && o["level"].is_string() && o["message"].is_string(), "{o}");
    }
    let ready = objects.iter().find(|o| o["message"] == "database ready").expect("the 'database ready' line");
    assert_eq!(ready["db"], db.display().to_string(), "fields are JSON fields: {ready}");
    assert!(
        objects.iter().any(
            |o| o["level"] == "WARN" && o["message"].as_str().is_some_and(|m| m.contains("login is off"))
        )
    );
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_ingest_and_requests_for_this_machine_only() {
    let server = common::TestServer::start();
    let event = |id: &str| {
        serde_json::json!({ "id": id, "timestamp": common::minutes_ago(5), "provider": "openai", "model": "gpt-4o-mini",
            "tags": { "userId": "u1" }, "usage": { "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 0, "cache_creation_tokens": 0 } })
    };
    let (status, _) =
        server.post(&serde_json::json!({ "events": [event("m1"), event("m2"), event("m3")] })).await;
    assert_eq!(status, 200);
    let (status, _) = server.post(&serde_json::json!({ "events": [event("m1")] })).await;
    assert_eq!(status, 200, "a re-sent call is a duplicate, not an error");
    let (status, _) = server.post(&serde_json::json!({ "events": [{ "id": "bad" }] })).await;
    assert_eq!(status, 400);
    let (status, _) =
        server.post_with(Some("tt_ingest_wrong"), &serde_json::json!({ "events": [event("m9")] })).await;
    assert_eq!(status, 401);
    assert_eq!(server.get("/v1/me/ai-apps/users?window=7d").await.0, 200);

    let resp = server.http.get(format!("{}/metrics", server.base)).send().await.expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"].to_str().expect("type").starts_with("text/plain"));
    let text = resp.text().await.expect("body");
    let batches = "tokentally_ingest_batches_total";
    assert_eq!(sample(&text, batches, &[r#"outcome="accepted""#]), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, batches, &[r#"outcome="rejected""#, r#"reason="invalid""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, batches, &[r#"outcome="rejected""#, r#"reason="unauthorized""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "tokentally_ingest_events_total", &[r#"outcome="accepted""#]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "tokentally_ingest_events_total", &[r#"outcome="duplicate""#]),
        Some(1.0),
        "{text}"
    );
    let users = [r#"route="/v1/me/ai-apps/users""#, r#"method="GET""#, r#"status="200""#];
    assert_eq!(sample(&text, "tokentally_http_requests_total", &users), Some(1.0), "{text}");
    let latency = "tokentally_http_request_duration_seconds_count";
    assert_eq!(sample(&text, latency, &[r#"route="/v1/events""#]), Some(4.0), "{text}");
    assert!(sample(&text, "tokentally_database_bytes", &[]).is_some_and(|b| b > 0.0), "{text}");
    assert!(sample(&text, "tokentally_wal_bytes", &[]).is_some(), "{text}");
    assert_eq!(sample(&text, "tokentally_writer_queue_depth", &[]), Some(0.0), "{text}");

    // Through a reverse proxy on this machine (it adds X-Forwarded-For) the endpoint isn't there.
    let proxied = server
        .http
        .get(format!("{}/metrics", server.base))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(proxied.status().as_u16(), 404);
}

/// `docs/tokentally.service` is a unit systemd accepts (checked where `systemd-analyze` exists;
/// its `ExecStart` is pointed at the binary under test, since the documented path is where an
/// install puts it).
#[test]
fn the_documented_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/tokentally.service"))
        .expect("docs/tokentally.service");
    for needed in
        ["ExecStart=/usr/local/bin/tokentally serve", "KillSignal=SIGTERM", "TOKENTALLY_DB=", "[Install]"]
    {
        assert!(unit.contains(needed), "the unit has {needed}");
    }
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: only the unit's contents were checked");
        return;
    };
    assert!(probe.status.success());
    let dir = std::env::temp_dir().join(format!("tokentally-test-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("tokentally.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/tokentally", common::binary())).expect("write unit");
    let out =
        Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze verify");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    // Complaints about the machine (no such user in a container, no running systemd) are not
    // about the unit; anything naming the unit file is.
    let about_unit: Vec<&str> = err.lines().filter(|l| l.contains("tokentally.service")).collect();
    assert!(about_unit.is_empty(), "systemd-analyze verify: {err}");
}
