//! The HTTP client the `agent` and `token` commands use, and how its outcomes map to messages
//! and exit codes.

use reqwest::{Response, StatusCode};
use serde_json::Value;

use super::{CliError, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_UNAVAILABLE};

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("signet-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// A client that presents the agent's certificate (`cert_pem`, `key_pem`) and trusts the
/// server's TLS certificate by the system roots plus `ca_file`, with the base URL to use: `url`
/// itself when it is `https://`, else the TLS listener named in the server's metadata
/// (`mtls_endpoint_aliases`).
pub async fn mtls_client(
    url: &str,
    cert_pem: &str,
    key_pem: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<(reqwest::Client, String), CliError> {
    let url = url.trim_end_matches('/');
    let base = if url.starts_with("https://") {
        url.to_string()
    } else {
        let metadata = http()
            .get(format!("{url}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .map_err(|e| unreachable(url, e))?;
        let metadata = json(metadata, "reading the server's metadata").await?;
        let token_endpoint = metadata["mtls_endpoint_aliases"]["token_endpoint"]
            .as_str()
            .ok_or_else(|| {
                CliError::failure(format!(
                    "the server at {url} has no mutual TLS listener (mtls_endpoint_aliases); give its https:// URL"
                ))
            })?;
        token_endpoint.trim_end_matches("/oauth2/token").to_string()
    };
    let identity = reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes())
        .map_err(|e| {
            CliError::failure(format!(
                "SIGNET_AGENT_CERT_FILE / SIGNET_AGENT_CERT_KEY_FILE: {e}"
            ))
        })?;
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("signet-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .identity(identity);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            CliError::failure(format!(
                "SIGNET_CA_FILE: cannot read {}: {e}",
                path.display()
            ))
        })?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| CliError::failure(format!("SIGNET_CA_FILE: {e}")))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    let client = builder
        .build()
        .map_err(|e| CliError::failure(format!("TLS client: {e}")))?;
    Ok((client, base))
}

/// Turns a transport error into a message a person can act on.
pub fn unreachable(url: &str, error: reqwest::Error) -> CliError {
    CliError::new(
        EXIT_UNAVAILABLE,
        format!(
            "cannot reach the Signet server at {url}: {error} (is it running? set --url or SIGNET_URL)"
        ),
    )
}

/// Reads a JSON response, mapping error statuses to exit codes with the server's explanation
/// (problem `detail` or OAuth `error`/`error_description`).
pub async fn json(response: Response, what: &str) -> Result<Value, CliError> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let explanation = body
        .get("detail")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let error = body.get("error").and_then(Value::as_str)?;
            let description = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Some(format!("{error}: {description}"))
        })
        .unwrap_or_else(|| status.to_string());
    let code = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => EXIT_AUTH,
        StatusCode::NOT_FOUND => EXIT_NOT_FOUND,
        s if s.is_server_error() => EXIT_UNAVAILABLE,
        _ => EXIT_REFUSED,
    };
    Err(CliError::new(
        code,
        format!("{what} failed ({}): {explanation}", status.as_u16()),
    ))
}

/// The `Authorization` header value for an agent's ID and secret: RFC 6749 §2.3.1 form-encodes
/// both before the Basic encoding.
pub fn basic_authorization(agent_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{}:{}", form_encode(agent_id), form_encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
