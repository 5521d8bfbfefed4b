//! `signet-bench seed`: registers many agents straight into a (stopped) server's SQLite database,
//! in large batches, and writes their credentials for `run --agents-file`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use signet_core::agent::NewAgent;
use signet_core::client_auth::{AgentSecret, StoredSecret};
use signet_core::crypto::MasterKey;
use signet_store::Store;

const BATCH: usize = 500;

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The server's data directory (its database and master key).
    #[arg(long, default_value = "./signet-data")]
    pub data_dir: PathBuf,
    /// How many agents to register (1 to 1,000,000).
    #[arg(long)]
    pub agents: u64,
    /// Where to write the credentials (JSON lines: agent_id, agent_secret).
    #[arg(long, default_value = "bench-agents.jsonl")]
    pub output: PathBuf,
    /// Write credentials of at most this many agents (the rest exist only in the database).
    #[arg(long, default_value_t = 10_000)]
    pub write: u64,
}

pub async fn run(args: SeedArgs) -> Result<(), String> {
    if !(1..=1_000_000).contains(&args.agents) {
        return Err("--agents must be between 1 and 1000000".into());
    }
    let master = std::fs::read_to_string(args.data_dir.join("master.key")).map_err(|e| {
        format!(
            "cannot read the master key in {}: {e}",
            args.data_dir.display()
        )
    })?;
    let master = MasterKey::from_base64(&master).map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", args.data_dir.join("signet.db").display());
    let store = Store::open(&url, master.audit_key())
        .await
        .map_err(|e| e.to_string())?;
    let mut output = std::io::BufWriter::new(
        std::fs::File::create(&args.output)
            .map_err(|e| format!("cannot create {}: {e}", args.output.display()))?,
    );
    let started = Instant::now();
    let now = signet_core::now();
    let mut done = 0u64;
    while done < args.agents {
        let count = (args.agents - done).min(BATCH as u64);
        let mut batch = Vec::with_capacity(count as usize);
        for i in 0..count {
            let agent = NewAgent {
                name: format!("seed-{}", done + i),
                scopes: Some(vec!["bench".into()]),
                ..Default::default()
            }
            .into_agent(now)
            .map_err(|e| e.to_string())?;
            let secret = AgentSecret::generate();
            if done + i < args.write {
                let line =
                    json!({ "agent_id": agent.agent_id.as_str(), "agent_secret": secret.expose() });
                writeln!(output, "{line}").map_err(|e| e.to_string())?;
            }
            batch.push((agent, StoredSecret::new(&master, &secret, now)));
        }
        store.seed_agents(&batch).await.map_err(|e| e.to_string())?;
        done += count;
    }
    output.flush().map_err(|e| e.to_string())?;
    store.close().await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "registered {done} agents in {seconds:.1} s ({:.0}/s); credentials of {} in {}",
        done as f64 / seconds,
        done.min(args.write),
        args.output.display()
    );
    Ok(())
}
