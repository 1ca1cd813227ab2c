//! The `tessera` command.

mod admin;
pub mod init;

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
    /// Ask what the deployment needs and write a commented tessera.toml to match.
    Init(init::InitArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage sessions.
    #[command(subcommand)]
    Sessions(admin::SessionsCommand),
    /// Read the audit trail, newest first.
    Audit(admin::AuditArgs),
    /// Manage signing keys (jwt and hybrid modes).
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Measure this machine: GET /v1/me per mode against a bare handler, and bytes per session.
    /// With store.postgres_url and store.redis_url set, the distributed backend too (in a
    /// schema and key prefix of its own, removed afterwards) and redis-benchmark GET beside it.
    /// With --login-flood: the server's memory (RSS) before, during and after a login flood.
    Bench {
        /// Seconds of measurement per server and round. Short rounds, many of them: on a
        /// shared or virtual machine whose speed drifts, the medians of ten interleaved
        /// one-second rounds are steadier than those of three five-second ones.
        #[arg(long, default_value_t = 1)]
        seconds: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Interleaved runs per server; medians are reported.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Measures only the modes whose name contains one of these words (comma-separated,
        /// e.g. `session,HS256`); the baselines are always measured.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Instead: flood POST /v1/login on a `tessera serve` child process and report its RSS
        /// before, at the peak, and every 10 s of the idle minute after; fails when RSS a
        /// minute after is more than 20% above the pre-flood level.
        #[arg(long)]
        login_flood: bool,
        /// How long the login flood lasts (`300s`, `5m`).
        #[arg(long, default_value = "300s", value_parser = parse_duration, requires = "login_flood")]
        duration: std::time::Duration,
        /// Concurrent connections sending logins.
        #[arg(long, default_value_t = 32, requires = "login_flood")]
        concurrency: usize,
        /// The server executable the login flood measures (default: this one).
        #[arg(long, hide = true, requires = "login_flood")]
        server_binary: Option<PathBuf>,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::Duration::parse(s)
        .map(crate::duration::Duration::as_std)
        .ok_or_else(|| format!("{s:?} is not a duration such as 300s or 5m"))
}

/// Log lines go to standard error: readable text (colours only on a terminal) or JSON lines.
/// `RUST_LOG` wins over `log.level`; an invalid filter falls back to `info` with a warning.
pub fn init_logging(log: &crate::config::LogConfig) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let wanted = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| if log.level.trim().is_empty() { "info".to_owned() } else { log.level.clone() });
    let (filter, bad) = match EnvFilter::try_new(&wanted) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match log.format {
        crate::config::LogFormat::Json => builder.json().with_current_span(false).try_init(),
        crate::config::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    if installed.is_ok()
        && let Some(e) = bad
    {
        tracing::warn!(filter = %wanted, error = %e, "ignoring an invalid log filter (log.level or RUST_LOG); logging at info");
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // `init` writes a configuration, so it must not need one.
    let command = match cli.command {
        Command::Init(args) => return init::run(&args),
        other => other,
    };
    let mut config = Config::load(cli.config.as_deref())?;
    init_logging(&config.log);
    match command {
        Command::Init(args) => init::run(&args),
        Command::Serve { listen } => {
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            serve(config).await
        }
        Command::Migrate => {
            // The store and its tables only: signing keys and server secrets are created by the
            // first `tessera serve`, under the seal key the server runs with.
            let store = crate::startup::Backend::open(&config).await?;
            println!("migrations applied: {}", store.describe());
            store.close().await;
            Ok(())
        }
        Command::User(cmd) => admin::user(&config, cmd).await,
        Command::Sessions(cmd) => admin::sessions(&config, cmd).await,
        Command::Keys(cmd) => admin::keys(&config, cmd).await,
        Command::Audit(args) => admin::audit(&config, args).await,
        Command::Bench { login_flood: true, duration, concurrency, server_binary, .. } => {
            let options = crate::bench::login_flood::FloodOptions {
                duration,
                concurrency: concurrency.max(1),
                server: server_binary,
                ..Default::default()
            };
            crate::bench::login_flood::run(options).await
        }
        Command::Bench { seconds, connections, rounds, only, .. } => {
            let options = crate::bench::BenchOptions {
                duration: std::time::Duration::from_secs(seconds),
                connections,
                rounds: rounds.max(1),
                only,
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
