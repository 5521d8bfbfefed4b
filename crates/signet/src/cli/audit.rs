//! `signet audit …`: verify the audit log's hash chain (in the configured database, or through
//! a server's admin API), export the log or follow it as JSON lines (one record per line, oldest
//! first) for a SIEM or `jq`.

use clap::{Args, Subcommand};
use serde_json::Value;

use signet_core::audit::ChainAnchor;
use signet_http::admin::audit_verify::ChainVerification;

use super::admin_api::{AdminConnection, Api, print_json};
use super::serve::{ServeArgs, open_existing_store};
use super::{CliError, EXIT_FAILURE, EXIT_REFUSED, EXIT_UNAVAILABLE};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exits 1 and names the first broken record if it was
    /// tampered with. Prints the chain's head (`ID:HASH`): keep it outside the server, and pass
    /// it as `--anchor` later to prove the log still reaches it unchanged. Reads the configured
    /// database (the configuration of `signet serve`: SIGNET_DATA_DIR or SIGNET_DATABASE_URL,
    /// and the master key) unless --url or SIGNET_URL names a server to ask instead.
    Verify {
        #[command(flatten)]
        connection: AdminConnection,
        #[command(flatten)]
        configuration: ServeArgs,
        /// A head printed by an earlier verification.
        #[arg(long, value_name = "ID:HASH")]
        anchor: Option<String>,
    },
    /// Print matching records as JSON lines, oldest first.
    Export {
        #[command(flatten)]
        connection: AdminConnection,
        #[command(flatten)]
        filters: Filters,
        /// Most records to export (newest ones).
        #[arg(long, default_value_t = 100_000)]
        limit: usize,
    },
    /// Print new records as JSON lines as they are written, until interrupted.
    Tail {
        #[command(flatten)]
        connection: AdminConnection,
        #[command(flatten)]
        filters: Filters,
        /// Seconds between polls.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
}

/// The audit API's filters.
#[derive(Debug, Args)]
pub struct Filters {
    #[arg(long)]
    agent_id: Option<String>,
    #[arg(long)]
    event_type: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long)]
    source: Option<String>,
    /// The X-Request-Id of the request behind the records.
    #[arg(long)]
    request_id: Option<String>,
    /// RFC 3339 lower bound.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339 upper bound.
    #[arg(long)]
    until: Option<String>,
}

impl Filters {
    fn query(&self) -> String {
        let pairs = [
            ("agent_id", &self.agent_id),
            ("event_type", &self.event_type),
            ("outcome", &self.outcome),
            ("reason", &self.reason),
            ("source", &self.source),
            ("request_id", &self.request_id),
            ("since", &self.since),
            ("until", &self.until),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| {
                v.as_ref()
                    .map(|v| format!("&{k}={}", super::client::form_encode(v)))
            })
            .collect()
    }
}

/// Pages newest first until `stop` says so or `limit` records; returns them oldest first.
async fn collect(
    api: &Api,
    filters: &str,
    limit: usize,
    stop_at_id: Option<i64>,
) -> Result<Vec<Value>, CliError> {
    let mut records: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    'pages: while records.len() < limit {
        let page_size = (limit - records.len()).min(1000);
        let mut path = format!("/api/v1/audit?limit={page_size}{filters}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", super::client::form_encode(c)));
        }
        let page = api
            .call(reqwest::Method::GET, &path, None, "reading the audit log")
            .await?;
        for item in page["items"].as_array().into_iter().flatten() {
            if stop_at_id.is_some_and(|stop| item["id"].as_i64().unwrap_or(0) <= stop) {
                break 'pages;
            }
            records.push(item.clone());
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    records.reverse();
    Ok(records)
}

fn print_lines(records: &[Value]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for record in records {
        let _ = writeln!(out, "{record}");
    }
    let _ = out.flush();
}

pub async fn run(command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Export {
            connection,
            filters,
            limit,
        } => {
            let api = Api::new(&connection)?;
            let records = collect(&api, &filters.query(), limit, None).await?;
            print_lines(&records);
            Ok(())
        }
        AuditCommand::Tail {
            connection,
            filters,
            interval,
        } => {
            let api = Api::new(&connection)?;
            let filters = filters.query();
            // Start from the newest record: only what is written from now on is printed.
            let newest = collect(&api, &filters, 1, None).await?;
            let mut last = newest.last().and_then(|r| r["id"].as_i64()).unwrap_or(0);
            let period = std::time::Duration::from_secs_f64(interval.clamp(0.1, 60.0));
            loop {
                tokio::time::sleep(period).await;
                let mut fresh = collect(&api, &filters, 100_000, Some(last)).await?;
                if let Some(id) = fresh.last().and_then(|r| r["id"].as_i64()) {
                    last = id;
                }
                // Each poll is an admin request, on record: not news to the one polling.
                fresh.retain(|record| !api.made_by_me(record));
                print_lines(&fresh);
            }
        }
        AuditCommand::Verify {
            connection,
            configuration,
            anchor,
        } => {
            let report = if connection.names_a_server() {
                let api = Api::new(&connection)?;
                let mut path = "/api/v1/audit/verify".to_string();
                if let Some(anchor) = &anchor {
                    path.push_str(&format!("?anchor={}", super::client::form_encode(anchor)));
                }
                api.call(reqwest::Method::GET, &path, None, "verifying the audit log")
                    .await?
            } else {
                verify_in_place(&configuration, anchor.as_deref()).await?
            };
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
                        if let Some(unkeyed) = report["unkeyed"].as_u64().filter(|n| *n > 0) {
                            println!(
                                "  (the first {unkeyed} of them were chained before the chain was keyed: whoever could write to the database could have rewritten those)"
                            );
                        }
                        if let Some(id) = report["checkpoint_id"].as_i64() {
                            println!("  (from the retention checkpoint after record {id})");
                        }
                        if let Some(anchor) = &anchor {
                            match report["anchor_checked"].as_bool() {
                                Some(true) => println!("  (and it still reaches {anchor})"),
                                _ => println!(
                                    "  (the anchor {anchor} was deleted by retention and could not be checked)"
                                ),
                            }
                        }
                        if let Some(head) = report["head"].as_str() {
                            println!("head: {head}");
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

/// Verifies the chain in the configured database, as the API would report it.
async fn verify_in_place(
    configuration: &ServeArgs,
    anchor: Option<&str>,
) -> Result<Value, CliError> {
    // As the API reads it: empty is none.
    let anchor = anchor
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::parse::<ChainAnchor>)
        .transpose()
        .map_err(|e| CliError::new(EXIT_REFUSED, format!("--anchor: {e}")))?;
    let store = open_existing_store(configuration).await?;
    let checked = store.verify_audit_chain_to(anchor.as_ref()).await;
    store.close().await;
    let report = checked
        .map_err(|e| CliError::new(EXIT_UNAVAILABLE, format!("cannot read the audit log: {e}")))?;
    serde_json::to_value(ChainVerification::new(report, anchor.is_some()))
        .map_err(|e| CliError::failure(e.to_string()))
}
