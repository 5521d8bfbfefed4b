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
