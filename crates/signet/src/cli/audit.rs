//! `signet audit …`: the audit log through the admin API.

use clap::Subcommand;

use super::agent::{AdminConnection, Api, print_json};
use super::{CliError, EXIT_FAILURE};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exits 1 and names the first broken record if it was
    /// tampered with.
    Verify {
        #[command(flatten)]
        connection: AdminConnection,
    },
}

pub async fn run(command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Verify { connection } => {
            let api = Api::new(&connection)?;
            let report = api
                .call(
                    reqwest::Method::GET,
                    "/api/v1/audit/verify",
                    None,
                    "verifying the audit log",
                )
                .await?;
            if connection.json {
                print_json(&report)?;
            }
            let checked = report["checked"].as_u64().unwrap_or_default();
            match report["first_broken_id"].as_i64() {
                Some(id) => Err(CliError::new(
                    EXIT_FAILURE,
                    format!(
                        "the audit log was tampered with: the chain breaks at record {id} ({checked} records before it verify)"
                    ),
                )),
                None => {
                    if !connection.json {
                        println!("audit log intact: {checked} records verify");
                        if let Some(unchained) = report["unchained"].as_u64().filter(|n| *n > 0) {
                            println!("  ({unchained} older records predate tamper evidence)");
                        }
                        if let Some(id) = report["checkpoint_id"].as_i64() {
                            println!("  (from the retention checkpoint after record {id})");
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}
