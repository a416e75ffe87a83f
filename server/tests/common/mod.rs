//! Starts the real `tokentally` binary on 127.0.0.1 with a fresh SQLite file, and talks HTTP to it.
#![allow(dead_code)] // each test file uses a different part of this helper

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A running server and its keys; killed and its directory removed on drop.
pub struct TestServer {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
    pub db: PathBuf,
    pub ingest_key: String,
    pub read_key: String,
    pub http: reqwest::Client,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tokentally")
}

/// Runs the binary with `args` plus `--db`; returns (success, stdout, stderr).
pub fn cli(db: &PathBuf, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).arg("--db").arg(db).output().expect("run tokentally");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The path of the test binary.
pub fn binary() -> &'static str {
    bin()
}

/// Whether `needle` occurs anywhere in the database file, its WAL or the aggregate saved beside it.
pub fn file_contains(db: &std::path::Path, needle: &str) -> bool {
    let beside = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [db.to_path_buf(), beside("-wal"), beside(".aggregate"), beside(".aggregate-tmp")].iter().any(|p| {
        std::fs::read(p).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

/// Runs `tokentally keys create` and returns the key (the last line of stdout).
pub fn create_key(db: &PathBuf, scope: &str, project: &str) -> String {
    let out = Command::new(bin())
        .args(["keys", "create", "--scope", scope, "--project", project, "--db"])
        .arg(db)
        .output()
        .expect("run keys create");
    assert!(out.status.success(), "keys create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().last().expect("a key line").trim().to_string()
}

impl TestServer {
    /// A server without login (loopback), as most tests want.
    pub fn start() -> TestServer {
        TestServer::start_with(&["--no-login"], &[])
    }

    /// A server with extra `serve` arguments and environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        TestServer::start_from(None, args, env)
    }

    /// A server on a copy of the database file `seed` (or a fresh one).
    pub fn start_from(seed: Option<&std::path::Path>, args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let dir = std::env::temp_dir().join(format!(
            "tokentally-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = dir.join("test.db");
        if let Some(seed) = seed {
            std::fs::copy(seed, &db).expect("copy the seed database");
        }
        let ingest_key = create_key(&db, "ingest", "default");
        let read_key = create_key(&db, "read", "default");
        let (child, base) = spawn(&db, args, env);
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestServer { child, base, dir, db, ingest_key, read_key, http }
    }

    /// Stops the server as a service manager does (SIGTERM) and waits for it to exit.
    pub fn stop_gracefully(&mut self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM");
        let exit = self.child.wait().expect("wait for the server");
        assert!(exit.success(), "the server exits cleanly on SIGTERM: {exit:?}");
    }

    /// Kills the server (SIGKILL: no clean stop, the WAL left as it is) and waits for it.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same database (after `stop_gracefully`, or not).
    pub fn start_again(&mut self, args: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base) = spawn(&self.db, args, &[]);
        self.child = child;
        self.base = base;
    }

    /// POSTs a JSON batch with a key; returns (status, body).
    pub async fn post_with(&self, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}/v1/events", self.base)).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.expect("POST /v1/events");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_with(Some(&self.ingest_key), body).await
    }

    /// GET a read-API path with the read key; returns (status, body).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(&self.read_key)
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Every user of the 28-day view, all pages.
    pub async fn all_users(&self, query: &str) -> Vec<Value> {
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("/v1/me/ai-apps/users?limit=7{query}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = self.get(&q).await;
            assert_eq!(status, 200, "{body}");
            users.extend(body["users"].as_array().expect("users array").iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        users
    }

    /// GET a path without a key (a dashboard page or export); returns the body text.
    pub async fn text(&self, path_and_query: &str) -> String {
        let resp = self.http.get(format!("{}{path_and_query}", self.base)).send().await.expect("GET");
        resp.text().await.expect("text")
    }

    /// What the server has logged so far (at the level `TOKENTALLY_LOG` sets: `warn` unless
    /// the test sets it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.db)).unwrap_or_default()
    }

    pub async fn healthy(&self) -> bool {
        matches!(self.http.get(format!("{}/healthz", self.base)).send().await, Ok(r) if r.status() == 200)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the server's log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server's log (its stderr), beside its database; every start of it appends.
fn log_path(db: &std::path::Path) -> PathBuf {
    db.with_extension("log")
}

fn log_file(db: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new().create(true).append(true).open(log_path(db)).expect("server log file")
}

/// Spawns `tokentally serve` on `db` and returns it with its base URL (from its first line).
fn spawn(db: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(args)
        .env("TOKENTALLY_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log_file(db))
        .spawn()
        .expect("spawn server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
    let base = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|hostport| format!("http://{hostport}"))
        .unwrap_or_else(|| {
            let log = std::fs::read_to_string(log_path(db)).unwrap_or_default();
            panic!("unexpected first line: {line:?}; the server's log:\n{log}")
        });
    (child, base)
}

/// RFC 3339 of now minus `minutes`.
/// `minutes` before the test process started (one "now" for every call, so two of them are
/// exactly their minutes apart).
pub fn minutes_ago(minutes: i64) -> String {
    static NOW: std::sync::LazyLock<chrono::DateTime<chrono::Utc>> =
        std::sync::LazyLock::new(chrono::Utc::now);
    (*NOW - chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
