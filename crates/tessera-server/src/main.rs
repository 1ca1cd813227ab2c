use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc rather than glibc's malloc: on `GET /v1/me` glibc's malloc and free took an eighth
/// of the server's CPU (its per-thread caches are small and it consolidates often); mimalloc
/// also returns freed memory to the system, which the login-flood bench checks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = tessera_server::cli::Cli::parse();
    match tessera_server::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
