//! The `signet` binary: command-line parsing and wiring only. `serve` runs the server; `agent`
//! manages agents through a running server's admin API; `token` is the agent-side command that
//! gets an access token.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Signet: a self-hosted identity provider for AI agents.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (creates the data directory, database and keys on first start).
    Serve(cli::serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate(cli::serve::ServeArgs),
    /// Print the admin API's OpenAPI document.
    Openapi,
    /// Manage agents through a running server's admin API.
    #[command(subcommand)]
    Agent(cli::agent::AgentCommand),
    /// The audit log: verify its hash chain, export records, or tail new ones as JSON lines.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
    /// Named admin API tokens: create (admin or auditor role), list, revoke; retire the
    /// bootstrap token.
    #[command(subcommand)]
    AdminToken(cli::admin_token::AdminTokenCommand),
    /// Token signing keys: list, rotate (planned or emergency).
    #[command(subcommand)]
    SigningKey(cli::signing_key::SigningKeyCommand),
    /// Client certificates for mutual TLS: issue, register, list, revoke, renew.
    #[command(subcommand)]
    Cert(cli::cert::CertCommand),
    /// Get an access token as an agent (SIGNET_AGENT_ID with a secret, key or certificate).
    Token(cli::token::TokenArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One crypto backend for every TLS client and server in the process: aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("signet: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match args.command {
            Command::Serve(args) => cli::serve::serve(args).await,
            Command::Migrate(args) => cli::serve::migrate(args).await,
            Command::Openapi => {
                println!("{}", signet_http::router::openapi_json());
                Ok(())
            }
            Command::Agent(command) => cli::agent::run(command).await,
            Command::Cert(command) => cli::cert::run(command).await,
            Command::SigningKey(command) => cli::signing_key::run(command).await,
            Command::AdminToken(command) => cli::admin_token::run(command).await,
            Command::Audit(command) => cli::audit::run(command).await,
            Command::Token(args) => cli::token::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    /// Thumbprints and key ids are base64url, so one in 64 begins with `-`: the commands that
    /// take them must not mistake it for an option.
    #[test]
    fn thumbprints_and_key_ids_may_begin_with_a_hyphen() {
        let thumbprint = "-2bX9vQ8Xz5bT4rL6hJ9sPcA2dEfGiKoMuWy3q27wYk";
        for args in [
            vec!["cert", "revoke", "--thumbprint", thumbprint],
            vec!["cert", "remove", "agt_x", thumbprint],
            vec!["agent", "revoke-key", "agt_x", thumbprint],
            vec![
                "agent", "add-key", "agt_x", "--file", "k.pem", "--kid", thumbprint,
            ],
        ] {
            let parsed = Args::try_parse_from(std::iter::once("signet").chain(args.clone()));
            let parsed = parsed.unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(format!("{parsed:?}").contains(thumbprint), "{args:?}");
        }
    }
}
