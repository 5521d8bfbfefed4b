//! Signet's domain: agents, their credentials, client authentication, access tokens and audit
//! events. This crate knows nothing about HTTP or SQL; it is pure functions and plain types, so
//! that every rule of the product can be unit-tested without a server.
//!
//! Errors: [`client_auth::ClientAuthError`] for why an agent failed to authenticate,
//! [`token::TokenError`] for why a token request was refused, [`agent::AgentError`] for invalid
//! agent data and [`config::ConfigError`] for configuration. Each variant is precise because it is
//! written to the audit log; the HTTP crate maps them to deliberately vague wire errors.

pub mod admin_token;
pub mod agent;
pub mod anomaly;
pub mod audit;
pub mod cidr;
pub mod client_auth;
pub mod clock;
pub mod config;
pub mod console_user;
pub mod crypto;
pub mod encoding;
pub mod fuzzing;
pub mod jwk;
pub mod lockout;
pub mod pki;
pub mod sensitive;
pub mod token;

/// Seconds since the Unix epoch, the unit of every timestamp in Signet.
pub type UnixTime = i64;

/// The current time in seconds since the Unix epoch.
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
