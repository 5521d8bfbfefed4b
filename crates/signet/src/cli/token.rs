//! `signet token`: the agent side. Reads the agent's credentials from the environment
//! (`SIGNET_AGENT_ID`, `SIGNET_AGENT_SECRET` or `SIGNET_AGENT_SECRET_FILE`), asks the token
//! endpoint with `client_secret_basic`, and prints the access token (or its claims).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::Args;
use serde_json::Value;

use super::client::{form_encode, http, json, unreachable};
use super::{CliError, EXIT_REFUSED, env_secret};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Base URL of the Signet server (the issuer).
    #[arg(long, env = "SIGNET_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Scopes to request, space-separated (default: all of the agent's scopes).
    #[arg(long)]
    scope: Option<String>,
    /// Resource (audience) to request; repeat for several.
    #[arg(long)]
    resource: Vec<String>,
    /// Print the token's decoded claims instead of the token.
    #[arg(long)]
    claims: bool,
    /// Print the whole token response as JSON.
    #[arg(long, conflicts_with = "claims")]
    json: bool,
}

pub async fn run(args: TokenArgs) -> Result<(), CliError> {
    let agent_id = std::env::var("SIGNET_AGENT_ID")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| CliError::failure("SIGNET_AGENT_ID is not set: export the agent's ID"))?;
    let secret = env_secret("AGENT_SECRET")?
        .ok_or_else(|| CliError::failure("SIGNET_AGENT_SECRET is not set: export the agent's secret (or SIGNET_AGENT_SECRET_FILE)"))?;
    let url = args.url.trim_end_matches('/');
    let mut body = String::from("grant_type=client_credentials");
    if let Some(scope) = &args.scope {
        body.push_str(&format!("&scope={}", form_encode(scope)));
    }
    for resource in &args.resource {
        body.push_str(&format!("&resource={}", form_encode(resource)));
    }
    // RFC 6749 §2.3.1: ID and secret are form-encoded before Basic encoding.
    let basic = STANDARD.encode(format!(
        "{}:{}",
        form_encode(&agent_id),
        form_encode(&secret)
    ));
    let response = http()
        .post(format!("{url}/oauth2/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    let answer = json(response, "getting a token").await?;
    let token = answer["access_token"]
        .as_str()
        .ok_or_else(|| CliError::new(EXIT_REFUSED, "the server's answer has no access_token"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    } else if args.claims {
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .ok_or_else(|| CliError::failure("the access token is not a JWT"))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&claims).unwrap_or_default()
        );
    } else {
        println!("{token}");
    }
    Ok(())
}
