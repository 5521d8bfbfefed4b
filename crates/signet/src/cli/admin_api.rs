//! The admin API client the `agent`, `cert`, `signing-key` and `audit` commands share: where
//! the server is, the admin token, one call with the CLI's error mapping, and JSON output.

use clap::Args;
use serde_json::Value;

use super::client::{http, json as read_json, unreachable};
use super::{CliError, env_secret};

/// Where the server is when neither `--url` nor `SIGNET_URL` says.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where the server is and how to authenticate to its admin API.
#[derive(Debug, Args)]
pub struct AdminConnection {
    /// Base URL of the Signet server [default: http://127.0.0.1:8080].
    #[arg(long, env = "SIGNET_URL", global = true)]
    url: Option<String>,
    /// Admin token (default: SIGNET_ADMIN_TOKEN or the file in SIGNET_ADMIN_TOKEN_FILE, which
    /// other users of the machine cannot read in the process list as they can this flag).
    #[arg(long, global = true, hide_env_values = true)]
    admin_token: Option<String>,
    /// Print the server's JSON instead of a summary.
    #[arg(long, global = true)]
    pub(super) json: bool,
}

impl AdminConnection {
    /// Whether a server was named (`--url` or `SIGNET_URL`), not just assumed.
    pub(super) fn names_a_server(&self) -> bool {
        self.url.is_some()
    }
}

pub(super) struct Api {
    url: String,
    token: String,
    client: reqwest::Client,
    /// The request ids the server gave this client's latest requests (`X-Request-Id`), so that
    /// `audit tail` can leave out the records of its own polls.
    own_requests: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// Request ids remembered by [`Api`]: far more than one poll of `audit tail` makes.
const OWN_REQUESTS_KEPT: usize = 1024;

impl Api {
    pub(super) fn new(connection: &AdminConnection) -> Result<Self, CliError> {
        let token = match &connection.admin_token {
            Some(token) => {
                // Arguments are readable by every user of the machine (`ps`, /proc) and end up
                // in shell history; the variable and the file are not.
                eprintln!(
                    "warning: --admin-token is visible to other users of this machine; prefer SIGNET_ADMIN_TOKEN or SIGNET_ADMIN_TOKEN_FILE"
                );
                token.clone()
            }
            None => env_secret("ADMIN_TOKEN")?.ok_or_else(|| {
                CliError::failure("no admin token: pass --admin-token or set SIGNET_ADMIN_TOKEN (or SIGNET_ADMIN_TOKEN_FILE)")
            })?,
        };
        Ok(Self {
            url: connection
                .url
                .as_deref()
                .unwrap_or(DEFAULT_URL)
                .trim_end_matches('/')
                .to_string(),
            token,
            client: http(),
            own_requests: Default::default(),
        })
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Value, CliError> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.url, e))?;
        if let Some(id) = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            let mut own = self.own_requests.lock().unwrap_or_else(|e| e.into_inner());
            if own.len() == OWN_REQUESTS_KEPT {
                own.pop_front();
            }
            own.push_back(id.to_owned());
        }
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        read_json(response, what).await
    }
}

impl Api {
    /// Whether an audit record was written by one of this client's own recent requests.
    pub(super) fn made_by_me(&self, record: &Value) -> bool {
        let Some(id) = record["request_id"].as_str() else {
            return false;
        };
        let own = self.own_requests.lock().unwrap_or_else(|e| e.into_inner());
        own.iter().any(|mine| mine == id)
    }
}

pub(super) fn segment(id: &str) -> String {
    super::client::form_encode(id)
}

pub(super) fn print_json(value: &Value) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    Ok(())
}
