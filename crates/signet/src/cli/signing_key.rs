//! `signet signing-key …`: list the token signing keys and rotate them (planned or emergency).

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;
use serde_json::json;

use super::CliError;
use super::admin_api::{AdminConnection, Api, print_json};

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// List the signing keys: next, active and retired.
    List {
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// Rotate: publish the next key (it signs after the pre-publication period), or activate
    /// the next key if one is published. --emergency replaces every key at once.
    Rotate {
        #[command(flatten)]
        connection: AdminConnection,
        /// A new key signs now and all other keys leave the JWKS: every token issued so far
        /// stops verifying. For a leaked signing key.
        #[arg(long)]
        emergency: bool,
        /// Do not ask for confirmation of an emergency rotation.
        #[arg(long, short)]
        yes: bool,
    },
}

pub async fn run(command: SigningKeyCommand) -> Result<(), CliError> {
    use reqwest::Method;
    match command {
        SigningKeyCommand::List { connection } => {
            let api = Api::new(&connection)?;
            let keys = api
                .call(
                    Method::GET,
                    "/api/v1/signing-keys",
                    None,
                    "listing signing keys",
                )
                .await?;
            if connection.json {
                return print_json(&keys);
            }
            for key in keys.as_array().into_iter().flatten() {
                let when = match key["status"].as_str() {
                    Some("next") => {
                        format!("signs from {}", key["activates_at"].as_str().unwrap_or("?"))
                    }
                    Some("retired") => {
                        format!("retired {}", key["retired_at"].as_str().unwrap_or("?"))
                    }
                    _ => format!(
                        "since {}",
                        key["activates_at"]
                            .as_str()
                            .or(key["created_at"].as_str())
                            .unwrap_or("?")
                    ),
                };
                println!(
                    "{:<8} {}  {}  {when}",
                    key["status"].as_str().unwrap_or_default(),
                    key["kid"].as_str().unwrap_or_default(),
                    key["alg"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        SigningKeyCommand::Rotate {
            connection,
            emergency,
            yes,
        } => {
            if emergency && !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(CliError::new(
                        2,
                        "an emergency rotation invalidates every token issued so far: add --yes",
                    ));
                }
                print!(
                    "Every token issued so far will stop verifying and resource servers must refetch the JWKS. Type 'rotate' to continue: "
                );
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                if answer.trim() != "rotate" {
                    return Err(CliError::failure("not rotated"));
                }
            }
            let api = Api::new(&connection)?;
            let result = api
                .call(
                    Method::POST,
                    "/api/v1/signing-keys/rotate",
                    Some(json!({ "emergency": emergency })),
                    "rotating the signing key",
                )
                .await?;
            if connection.json {
                return print_json(&result);
            }
            println!(
                "{}: {} ({})",
                result["outcome"].as_str().unwrap_or_default(),
                result["kid"].as_str().unwrap_or_default(),
                result["note"].as_str().unwrap_or_default()
            );
            Ok(())
        }
    }
}
