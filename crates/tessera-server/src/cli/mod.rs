//! The `tessera` command.

mod admin;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tessera_core::SystemClock;

use crate::config::Config;
use crate::startup::Application;

#[derive(Parser)]
#[command(name = "tessera", version, about = "A login and session server: sessions, JWTs and every hybrid between")]
pub struct Cli {
    /// Configuration file (default: ./tessera.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Create the store and apply migrations, then exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage sessions.
    #[command(subcommand)]
    Sessions(admin::SessionsCommand),
    /// Manage signing keys (jwt and hybrid modes).
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Measure this machine: GET /v1/me per mode against a bare handler, and bytes per session.
    /// With store.postgres_url and store.redis_url set, the distributed backend too (in a
    /// schema and key prefix of its own, removed afterwards) and redis-benchmark GET beside it.
    Bench {
        /// Seconds of measurement per server.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Interleaved runs per server; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { listen } => {
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            serve(config).await
        }
        Command::Migrate => {
            let (_, store) = crate::startup::open_auth(&config, Arc::new(SystemClock)).await?;
            println!("migrations applied: {}", store.describe());
            store.close().await;
            Ok(())
        }
        Command::User(cmd) => admin::user(&config, cmd).await,
        Command::Sessions(cmd) => admin::sessions(&config, cmd).await,
        Command::Keys(cmd) => admin::keys(&config, cmd).await,
        Command::Bench { seconds, connections, rounds } => {
            let options = crate::bench::BenchOptions {
                duration: std::time::Duration::from_secs(seconds),
                connections,
                rounds: rounds.max(1),
                distributed: config.store.is_distributed().then(|| crate::bench::Distributed {
                    postgres_url: config.store.postgres_url.clone(),
                    redis_url: config.store.redis_url.clone(),
                }),
                ..Default::default()
            };
            crate::bench::run(options).await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let warnings = config.warnings();
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    // Handlers first: a SIGTERM right after the banner must stop us gracefully, not kill us.
    let stop = shutdown_signal()?;
    println!("tessera {} listening on http://{}", env!("CARGO_PKG_VERSION"), app.local_addr());
    println!("  mode:  {}", app.mode().as_str());
    println!("  store: {}", app.store_description());
    // Loudly, on stdout and in the log: a setting that is only right on a test network.
    for (key, why) in &warnings {
        println!("  WARNING {key}: {why}");
        tracing::warn!(key, "{why}");
    }
    app.run_until_stopped(stop).await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT or SIGTERM: stop accepting, let in-flight requests finish. The handlers are
/// installed when this is called, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
