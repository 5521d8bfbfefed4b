//! `signet-bench`: the load generator. `run` drives a Signet server (token endpoint with each
//! authentication method, introspection) and reports throughput, latency percentiles, errors by
//! status and error code, and the server's CPU time and peak memory; `seed` registers many agents
//! quickly for scale runs; `ceiling` serves a minimal handler that only signs a fixed ES256 JWT
//! with a cached key, the machine's upper bound to compare with.

use std::process::ExitCode;

use signet_bench::{ceiling, load, seed};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "signet-bench", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive load at a Signet server and report.
    Run(load::RunArgs),
    /// Register many agents directly in a stopped server's SQLite database.
    Seed(seed::SeedArgs),
    /// Serve the ceiling handler: sign a fixed ES256 JWT with a cached key, nothing else.
    Ceiling(ceiling::CeilingArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("signet-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match args.command {
            Command::Run(args) => load::run(args).await,
            Command::Seed(args) => seed::run(args).await,
            Command::Ceiling(args) => ceiling::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("signet-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
