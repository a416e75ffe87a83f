//! `tokentally`: the one binary. CLI (clap), configuration and start-up.

use server::{assets, demo, http, otel};

use app::state::AppState;
use app::store::Store;
use app::store::keys::Scope;
use app::store::projects::{DEFAULT_PROJECT, Privacy, ProjectChange, ProjectInfo};
use clap::{Parser, Subcommand};
use leptos::prelude::LeptosOptions;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "tokentally", version, about = "What each of your end users costs in LLM spend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DbArg {
    /// SQLite database file (created on first use).
    #[arg(long, env = "TOKENTALLY_DB", default_value = "./tokentally.db")]
    db: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the dashboard, ingest and read API.
    Serve {
        #[command(flatten)]
        db: DbArg,
        /// Address to listen on.
        #[arg(long, env = "TOKENTALLY_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Serve the dashboard without login (also TOKENTALLY_NO_LOGIN=1). Refused unless the
        /// address is loopback: for local use and browser tests.
        #[arg(long)]
        no_login: bool,
        /// Seconds an OpenTelemetry call waits for its trace's root span (which carries the
        /// route and often the user) before it is stored with what has arrived.
        #[arg(long, env = "TOKENTALLY_OTEL_WAIT_SECS", default_value_t = 60)]
        otel_wait_secs: u64,
        /// Where browsers reach the dashboard (`https://tokentally.example.com`): its host name is
        /// answered besides localhost and the listening address (any other gets 421), and an
        /// https URL makes the cookies Secure.
        #[arg(long, env = "TOKENTALLY_PUBLIC_URL")]
        public_url: Option<String>,
        /// Trust `X-Forwarded-Proto` / `Forwarded` (a TLS proxy in front sets them) for Secure
        /// cookies. Also TOKENTALLY_TRUST_PROXY=1.
        #[arg(long)]
        trust_proxy: bool,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage projects (each has its own data, keys, privacy mode and retention).
    Projects {
        #[command(subcommand)]
        command: ProjectsCommand,
    },
    /// Manage dashboard administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Copy the database to a new file while it is in use (a consistent snapshot, even while
    /// `serve` ingests). Restore it with `tokentally restore`.
    Backup {
        /// The file to write; must not exist.
        to: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Replace the database with a backup. Refused while `serve` runs on it; the next start
    /// rebuilds the in-memory aggregate from the restored calls.
    Restore {
        /// The backup file (from `tokentally backup`).
        from: PathBuf,
        /// Replace an existing database (everything in it is lost).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print the read and ingest API's OpenAPI 3.1 document (the one served at /v1/openapi.json).
    Openapi,
    /// Build the in-memory aggregate from the database and save it beside it (`<db>.aggregate`),
    /// as `serve` does in a child process when it starts without a saved one.
    #[command(hide = true)]
    Aggregate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Fill the database with realistic demo traffic.
    Demo {
        #[command(flatten)]
        db: DbArg,
        /// Distinct end users (about one in ten anonymous `anon_…` sessions).
        #[arg(long, default_value_t = 400)]
        users: u32,
        /// Days of history, ending now.
        #[arg(long, default_value_t = 28)]
        days: u32,
        /// LLM calls to generate.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Random seed (the same seed gives the same data relative to now).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Project to fill.
        #[arg(long, default_value = DEFAULT_PROJECT)]
        project: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; the key is the last line of standard output, shown only this once.
    Create {
        /// What the key may do.
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        scope: String,
        /// Project the key belongs to (created if missing).
        #[arg(long, default_value = DEFAULT_PROJECT)]
        project: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List keys (prefixes only; the secrets are not stored).
    List {
        /// Only this project's keys.
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a key by its id or prefix (see `keys list`).
    Revoke {
        id_or_prefix: String,
        /// Only match this project's keys.
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum ProjectsCommand {
    /// Create a project.
    Create {
        name: String,
        /// `minimal` drops prompts and responses at ingest.
        #[arg(long, default_value = "full", value_parser = ["full", "minimal"])]
        privacy: String,
        /// Delete events and rollups older than this many days (default: keep everything).
        #[arg(long)]
        retention_days: Option<i64>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Change a project's settings (a privacy change applies to events ingested after it).
    Set {
        name: String,
        #[arg(long, value_parser = ["full", "minimal"])]
        privacy: Option<String>,
        #[arg(long, conflicts_with = "keep_forever")]
        retention_days: Option<i64>,
        /// Remove the retention limit.
        #[arg(long)]
        keep_forever: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List projects and their settings.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator or change their password (read from TOKENTALLY_ADMIN_PASSWORD, or
    /// the first line of standard input). Signs them out everywhere.
    SetPassword {
        #[arg(long, default_value = "admin")]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
}

fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("tokentally")
        .site_pkg_dir(assets::pkg_dir())
        .site_root("target/site")
        .site_addr(addr)
        .build()
}

/// Minimum length of an administrator password.
const MIN_PASSWORD: usize = 8;

/// The password from TOKENTALLY_ADMIN_PASSWORD, else a prompt (on a terminal) or the first line
/// of standard input.
fn read_password(prompt: bool) -> Result<String, Box<dyn std::error::Error>> {
    use std::io::{BufRead, IsTerminal, Write};
    let password = match std::env::var("TOKENTALLY_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            if prompt && std::io::stdin().is_terminal() {
                eprint!("Choose the dashboard's admin password ({MIN_PASSWORD}+ characters): ");
                std::io::stderr().flush()?;
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("the admin password needs at least {MIN_PASSWORD} characters").into());
    }
    Ok(password)
}

async fn set_password(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let hash = http::login::hash_password(password)?;
    store.set_admin_password(username, &hash).await?;
    Ok(())
}

/// Runs each project's retention every `TOKENTALLY_RETENTION_INTERVAL_SECS` (default an hour),
/// starting at once.
fn spawn_retention(store: Store) {
    let every = std::env::var("TOKENTALLY_RETENTION_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600u64);
    tokio::spawn(async move {
        loop {
            match store.list_projects().await {
                Ok(projects) => {
                    for p in projects {
                        let Some(days) = p.retention_days else { continue };
                        match store.apply_retention(p.id, days, app::store::now_ms()).await {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::info!(project = %p.name, days, events = n, "retention removed old data")
                            }
                            Err(e) => tracing::error!(project = %p.name, error = %e, "retention failed"),
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "retention could not list projects"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(every.max(1))).await;
        }
    });
}

async fn serve(
    db: PathBuf,
    addr: SocketAddr,
    no_login: bool,
    otel_wait: std::time::Duration,
    public_url: Option<&str>,
    trust_proxy: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let no_login = no_login || std::env::var("TOKENTALLY_NO_LOGIN").is_ok_and(|v| v == "1" || v == "true");
    if no_login && !addr.ip().is_loopback() {
        return Err(format!("--no-login serves the dashboard to anyone who can connect, so it only listens on a loopback address (127.0.0.1 or ::1), not {addr}").into());
    }
    let access = http::host::Access::new(public_url, addr, !no_login, trust_proxy)?;
    // Held while serving: `restore` refuses this database, and so does a second `serve`.
    let _lock = app::store::backup::lock(&db)?;
    build_aggregate_apart(&db).await;
    let store = Store::open_with_aggregate(&db).await?;
    store.preload_event_keys();
    let default_project = store.ensure_project(DEFAULT_PROJECT).await?;
    if !no_login && !store.admin_exists().await? {
        let password = read_password(true).map_err(|e| {
            format!("no dashboard admin yet ({e}). Set TOKENTALLY_ADMIN_PASSWORD, run `tokentally admin set-password`, or use --no-login on a loopback address")
        })?;
        set_password(&store, "admin", &password).await?;
        tracing::info!(username = "admin", "created the dashboard admin");
    }
    let state = AppState {
        leptos_options: leptos_options(addr),
        store: store.clone(),
        default_project,
        login_required: !no_login,
    };
    spawn_retention(store.clone());
    store.spawn_checkpointer(&db);
    otel::spawn_sweeper(store.clone(), otel_wait);
    store.spawn_aggregate_saver(&Store::aggregate_path(&db));
    http::metrics::install(&db)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(db = %db.display(), login = !no_login, "database ready");
    let stop = shutdown_signal()?;
    println!("tokentally listening on http://{local}/ai-apps/users (database {})", db.display());
    if no_login {
        tracing::warn!(%local, "login is off (--no-login): anyone who can reach this address can use the dashboard");
    }
    if access.answers_any_host() {
        tracing::warn!(%local, "no --public-url: every host name is answered; set it to the URL browsers use, so a page under another name (DNS rebinding) can't reach the dashboard");
    }
    // Each request carries its peer address: `/metrics` checks it (loopback only), sign-ins are
    // throttled by it.
    let limits = http::listen::Limits::from_env();
    http::listen::serve(listener, http::router(state, access, limits.read_timeout), limits, stop).await?;
    // The next start reads the aggregate back instead of re-reading every call.
    let saved = Store::aggregate_path(&db);
    match store.save_aggregate(&saved).await {
        Ok(()) => tracing::info!(file = %saved.display(), "aggregate saved"),
        Err(e) => tracing::warn!(error = %e, "the aggregate was not saved; the next start rebuilds it"),
    }
    store.close().await;
    Ok(())
}

/// A start without a saved aggregate (the first, or after an upgrade or a restore) builds it in a
/// child process (`tokentally aggregate`) that saves it and exits, and then reads the saved file
/// as after a clean stop. What the build allocates on the way (pages of calls, maps, vectors
/// grown by doubling) goes back to the system with the child instead of staying in this
/// process's heap: at 10M calls, 1,077 MiB resident after an in-process rebuild against about
/// 800 MiB after reading the file. If the child fails, `open_with_aggregate` rebuilds here.
async fn build_aggregate_apart(db: &std::path::Path) {
    if Store::aggregate_path(db).exists() {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return tracing::warn!(error = %e, "building the aggregate in this process"),
    };
    let mut child = std::process::Command::new(exe);
    child.arg("aggregate").arg("--db").arg(db);
    let status = tokio::task::spawn_blocking(move || child.status()).await;
    match status {
        Ok(Ok(s)) if s.success() => {}
        Ok(Ok(s)) => tracing::warn!(status = %s, "building the aggregate apart failed; building it here"),
        Ok(Err(e)) => tracing::warn!(error = %e, "building the aggregate apart failed; building it here"),
        Err(e) => tracing::warn!(error = %e, "building the aggregate apart failed; building it here"),
    }
}

/// Resolves at SIGTERM or Ctrl-C (SIGINT). The handlers are installed when this is called, not
/// when the future is first polled: a service manager's SIGTERM right after the listening line
/// still stops the server cleanly (saving the aggregate) instead of killing it.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve { db, addr, no_login, otel_wait_secs, public_url, trust_proxy } => {
            let trust_proxy =
                trust_proxy || std::env::var("TOKENTALLY_TRUST_PROXY").is_ok_and(|v| v == "1" || v == "true");
            let otel_wait = std::time::Duration::from_secs(otel_wait_secs);
            serve(db.db, addr, no_login, otel_wait, public_url.as_deref(), trust_proxy).await
        }
        Command::Keys { command: KeysCommand::Create { scope, project, db } } => {
            let store = Store::open(&db.db).await?;
            let project_id = store.ensure_project(&project).await?;
            let scope = Scope::parse(&scope).ok_or("unknown scope")?;
            let key = store.create_key(project_id, scope).await?;
            store.close().await;
            eprintln!(
                "created an API key (scope {}) for project {project:?}; it is shown only once:",
                scope.as_str()
            );
            println!("{key}");
            Ok(())
        }
        Command::Keys { command: KeysCommand::List { project, db } } => {
            let store = Store::open(&db.db).await?;
            let project_id = match &project {
                Some(name) => Some(store.project_id(name).await?),
                None => None,
            };
            println!(
                "{:<6} {:<16} {:<7} {:<16} {:<11} status",
                "id", "project", "scope", "prefix", "created"
            );
            for k in store.list_keys(project_id).await? {
                let status = k.revoked_at.map_or("live".to_string(), |t| format!("revoked {}", day(t)));
                println!(
                    "{:<6} {:<16} {:<7} {:<16} {:<11} {status}",
                    k.id,
                    k.project,
                    k.scope,
                    k.prefix,
                    day(k.created_at)
                );
            }
            store.close().await;
            Ok(())
        }
        Command::Keys { command: KeysCommand::Revoke { id_or_prefix, project, db } } => {
            let store = Store::open(&db.db).await?;
            let project_id = match &project {
                Some(name) => Some(store.project_id(name).await?),
                None => None,
            };
            let k = store.revoke_key(&id_or_prefix, project_id).await?;
            store.close().await;
            println!("revoked key {} ({}, {} scope, project {})", k.id, k.prefix, k.scope, k.project);
            Ok(())
        }
        Command::Projects { command } => projects(command).await,
        Command::Backup { to, db } => {
            let started = std::time::Instant::now();
            let c = app::store::backup::backup(&db.db, &to).await?;
            println!(
                "backed up {} calls ({} bytes) to {} in {:.1} s",
                c.calls,
                c.bytes,
                to.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Restore { from, force, db } => {
            let c = app::store::backup::restore(&from, &db.db, force).await?;
            println!(
                "restored {} calls ({} bytes) from {} into {}; the next start rebuilds the aggregate",
                c.calls,
                c.bytes,
                from.display(),
                db.db.display()
            );
            Ok(())
        }
        Command::Admin { command: AdminCommand::SetPassword { username, db } } => {
            let password = read_password(true)?;
            let store = Store::open(&db.db).await?;
            set_password(&store, &username, &password).await?;
            store.close().await;
            println!("password set for {username:?}");
            Ok(())
        }
        Command::Aggregate { db } => {
            let store = Store::open_with_aggregate(&db.db).await?;
            store.save_aggregate(&Store::aggregate_path(&db.db)).await?;
            store.close().await;
            Ok(())
        }
        Command::Openapi => {
            print!("{}", http::openapi::document());
            Ok(())
        }
        Command::Demo { db, users, days, events, seed, project } => {
            let store = Store::open(&db.db).await?;
            // A server running on this file doesn't see these calls: its saved aggregate must
            // not be used or saved again (it notices the dropped token).
            store.drop_aggregate_token().await?;
            store.spawn_checkpointer(&db.db);
            let project_id = store.ensure_project(&project).await?;
            let opts = demo::DemoOptions { users: users.max(1), days: days.max(1), events, seed };
            demo::generate(&store, project_id, &opts).await?;
            store.close().await;
            Ok(())
        }
    }
}

async fn projects(command: ProjectsCommand) -> Result<(), Box<dyn std::error::Error>> {
    let privacy = |p: &str| Privacy::parse(p).ok_or("privacy is full or minimal");
    match command {
        ProjectsCommand::Create { name, privacy: p, retention_days, db } => {
            let store = Store::open(&db.db).await?;
            let info = store.create_project(&name, privacy(&p)?, retention_days).await;
            store.close().await;
            print_project(&info?);
        }
        ProjectsCommand::Set { name, privacy: p, retention_days, keep_forever, db } => {
            let change = ProjectChange {
                privacy: p.as_deref().map(privacy).transpose()?,
                retention_days: if keep_forever { Some(None) } else { retention_days.map(Some) },
            };
            let store = Store::open(&db.db).await?;
            let before = store.project(&name).await?;
            let info = store.set_project(&name, &change).await;
            store.close().await;
            let info = info?;
            print_project(&info);
            if info.privacy != before.privacy {
                println!(
                    "privacy is now {}: this applies to events ingested from now on; stored events are unchanged",
                    info.privacy.as_str()
                );
            }
        }
        ProjectsCommand::List { db } => {
            let store = Store::open(&db.db).await?;
            let list = store.list_projects().await;
            store.close().await;
            println!("{:<24} {:<8} {:<10} created", "name", "privacy", "retention");
            for p in list? {
                print_project(&p);
            }
        }
    }
    Ok(())
}

fn print_project(p: &ProjectInfo) {
    let retention = p.retention_days.map_or("forever".to_string(), |d| format!("{d} days"));
    println!("{:<24} {:<8} {:<10} {}", p.name, p.privacy.as_str(), retention, day(p.created_at));
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENTALLY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // TOKENTALLY_LOG_FORMAT=json: one JSON object per line (time, level, target, message and
    // fields), for a log collector.
    let json = std::env::var("TOKENTALLY_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        logs.json().flatten_event(true).with_current_span(false).init();
    } else {
        logs.init();
    }
    if let Err(e) = run(Cli::parse()).await {
        if json {
            tracing::error!(error = %e, "tokentally stopped");
        } else {
            eprintln!("error: {e}");
        }
        std::process::exit(1);
    }
}
