//! The rules for an agent's settings: each field's valid values and the message that says what
//! is wrong.

use super::{AgentError, MAX_TOKEN_TTL, MIN_TOKEN_TTL};
use crate::cidr::Cidr;

/// The shape of a `jwks_uri`; which hosts may be fetched is the server's policy, checked where
/// the fetching happens.
pub(super) fn validate_jwks_uri(uri: String) -> Result<String, AgentError> {
    let ok = (uri.starts_with("https://") || uri.starts_with("http://"))
        && uri.len() <= 2000
        && !uri.chars().any(|c| c.is_control() || c == ' ');
    if !ok {
        return Err(AgentError::Invalid(
            "jwks_uri",
            "must be an https:// URL".into(),
        ));
    }
    Ok(uri)
}

pub(super) fn validate_name(name: String) -> Result<String, AgentError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AgentError::Invalid(
            "name",
            "must be 1 to 200 characters without control characters".into(),
        ));
    }
    Ok(name)
}

/// At most 2,000 characters; line breaks and tabs, but no other control characters (a NUL
/// cannot be stored in PostgreSQL text, and the rest only disturb whoever reads it).
pub(super) fn validate_description(description: String) -> Result<String, AgentError> {
    let controls = description
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if description.chars().count() > 2000 || controls {
        return Err(AgentError::Invalid(
            "description",
            "must be at most 2000 characters, without control characters other than line breaks and tabs".into(),
        ));
    }
    Ok(description)
}

/// Scope tokens per RFC 6749 §3.3: printable ASCII except space, `"` and `\`.
pub(super) fn validate_scopes(scopes: Vec<String>) -> Result<Vec<String>, AgentError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let valid = !scope.is_empty()
            && scope.len() <= 200
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            return Err(AgentError::Invalid(
                "scopes",
                format!(
                    "`{scope}` is not a scope token (printable ASCII without spaces, quotes or backslashes)"
                ),
            ));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.len() > 100 {
        return Err(AgentError::Invalid("scopes", "at most 100 scopes".into()));
    }
    Ok(out)
}

/// Audiences are absolute URIs or plain identifiers; they end up in the `aud` claim.
pub(super) fn validate_audiences(audiences: Vec<String>) -> Result<Vec<String>, AgentError> {
    let mut out: Vec<String> = Vec::with_capacity(audiences.len());
    for audience in audiences {
        if audience.is_empty()
            || audience.len() > 500
            || audience.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(AgentError::Invalid(
                "audiences",
                format!("`{audience}` must be 1 to 500 characters without spaces"),
            ));
        }
        if !out.contains(&audience) {
            out.push(audience);
        }
    }
    if out.len() > 100 {
        return Err(AgentError::Invalid(
            "audiences",
            "at most 100 audiences".into(),
        ));
    }
    Ok(out)
}

pub(super) fn validate_ttl(ttl: u64) -> Result<u64, AgentError> {
    if !(MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&ttl) {
        return Err(AgentError::Invalid(
            "access_token_ttl",
            format!("must be between {MIN_TOKEN_TTL} and {MAX_TOKEN_TTL} seconds"),
        ));
    }
    Ok(ttl)
}

pub(super) fn validate_cidrs(cidrs: Vec<String>) -> Result<Vec<Cidr>, AgentError> {
    cidrs
        .iter()
        .map(|c| {
            c.parse::<Cidr>()
                .map_err(|e| AgentError::Invalid("allowed_cidrs", e))
        })
        .collect()
}
