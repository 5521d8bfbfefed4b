//! `signet admin-token …`: named admin API tokens (create, list, revoke) and retiring the
//! bootstrap token.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::CliError;
use super::admin_api::{AdminConnection, Api, print_json, segment};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Everything the admin API offers.
    Admin,
    /// Read-only.
    Auditor,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create a named token; it is printed once (keep it in your secrets manager).
    Create {
        #[command(flatten)]
        connection: AdminConnection,
        /// The name (the actor in audit records): a-z, 0-9, '.', '_', '-'.
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Days until it stops working (at most 366); without: until revoked.
        #[arg(long)]
        expires_in_days: Option<u64>,
    },
    /// List the named tokens with their role, expiry and last use.
    List {
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// Revoke a named token at once.
    Revoke {
        #[command(flatten)]
        connection: AdminConnection,
        name: String,
    },
    /// Retire the bootstrap token for good (needs a working named token with the admin role).
    RetireBootstrap {
        #[command(flatten)]
        connection: AdminConnection,
    },
}

pub async fn run(command: AdminTokenCommand) -> Result<(), CliError> {
    use reqwest::Method;
    match command {
        AdminTokenCommand::Create {
            connection,
            name,
            role,
            expires_in_days,
        } => {
            let role = match role {
                RoleArg::Admin => "admin",
                RoleArg::Auditor => "auditor",
            };
            let body = json!({
                "name": name,
                "role": role,
                "expires_in_seconds": expires_in_days.map(|d| d.saturating_mul(86_400)),
            });
            let created = Api::new(&connection)?
                .call(
                    Method::POST,
                    "/api/v1/admin-tokens",
                    Some(body),
                    "creating an admin token",
                )
                .await?;
            if connection.json {
                return print_json(&created);
            }
            println!(
                "Admin token created: {} ({}, {})\n\n    {}\n\nIt is shown this once: store it now.",
                created["name"].as_str().unwrap_or_default(),
                created["role"].as_str().unwrap_or_default(),
                created["expires_at"]
                    .as_str()
                    .map_or("no expiry".to_string(), |e| format!("expires {e}")),
                created["token"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        AdminTokenCommand::List { connection } => {
            let list = Api::new(&connection)?
                .call(
                    Method::GET,
                    "/api/v1/admin-tokens",
                    None,
                    "listing admin tokens",
                )
                .await?;
            if connection.json {
                return print_json(&list);
            }
            for token in list["items"].as_array().into_iter().flatten() {
                let text = |k: &str| token[k].as_str().unwrap_or("-").to_string();
                println!(
                    "{:<24} {:<8} {:<8} expires {:<20} last used {}",
                    text("name"),
                    text("role"),
                    text("status"),
                    text("expires_at"),
                    text("last_used_at")
                );
            }
            let bootstrap = if list["bootstrap_token_active"] == true {
                "active"
            } else {
                "retired"
            };
            println!("bootstrap token: {bootstrap}");
            Ok(())
        }
        AdminTokenCommand::Revoke { connection, name } => {
            Api::new(&connection)?
                .call(
                    Method::DELETE,
                    &format!("/api/v1/admin-tokens/{}", segment(&name)),
                    None,
                    "revoking an admin token",
                )
                .await?;
            println!("Admin token {name} revoked.");
            Ok(())
        }
        AdminTokenCommand::RetireBootstrap { connection } => {
            Api::new(&connection)?
                .call(
                    Method::POST,
                    "/api/v1/admin-tokens/bootstrap/retire",
                    None,
                    "retiring the bootstrap token",
                )
                .await?;
            println!("The bootstrap admin token is retired: only named tokens work from now on.");
            Ok(())
        }
    }
}
