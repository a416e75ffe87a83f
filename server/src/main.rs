//! `tokentally`: the one binary. CLI (clap), configuration and start-up.

mod assets;
mod demo;
mod http;

use app::state::AppState;
use app::store::Store;
use app::store::keys::Scope;
use app::store::projects::DEFAULT_PROJECT;
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
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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
}

fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("tokentally")
        .site_pkg_dir("pkg")
        .site_root("target/site")
        .site_addr(addr)
        .build()
}

async fn serve(db: PathBuf, addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&db).await?;
    let default_project = store.ensure_project(DEFAULT_PROJECT).await?;
    let state = AppState { leptos_options: leptos_options(addr), store: store.clone(), default_project };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(db = %db.display(), "database ready");
    println!("tokentally listening on http://{local}/ai-apps/users (database {})", db.display());
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    store.close().await;
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve { db, addr } => serve(db.db, addr).await,
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
        Command::Demo { db, users, days, events, seed, project } => {
            let store = Store::open(&db.db).await?;
            let project_id = store.ensure_project(&project).await?;
            let opts = demo::DemoOptions { users: users.max(1), days: days.max(1), events, seed };
            demo::generate(&store, project_id, &opts).await?;
            store.close().await;
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOKENTALLY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
