//! Signet's configuration: one typed value, loaded once at start from an optional TOML file and
//! `SIGNET_*` environment variables (which win), with `SIGNET_<NAME>_FILE` for every secret, and
//! validated with messages that say what to fix. It is passed down, never global.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::sensitive::Sensitive;
use crate::token::SigningAlgorithm;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The HTTPS listener for mutual TLS; `None` when set to `off`.
    pub tls_listen: Option<SocketAddr>,
    /// The TLS listener's certificates, client CAs and CRLs, and the proxy header.
    pub mtls: MtlsConfig,
    /// Reverse proxies whose `X-Forwarded-For` (and client certificate header) is believed.
    pub trusted_proxies: Vec<crate::cidr::Cidr>,
    /// Longest grace period of an agent's self-service secret rotation (also its default).
    pub self_rotation_grace_seconds: u64,
    /// Credential age policy: new secrets expire this long after creation; `None`: never.
    pub secret_max_age_seconds: Option<u64>,
    /// How long before a credential expires it is reported as expiring (audit and listing).
    pub expiry_warning_seconds: u64,
    /// `SIGNET_TESTING_CLOCK=1`: the clock can be moved through the admin API. For tests only.
    pub testing_clock: bool,
    /// A signing key signs for this many seconds before the next one takes over; `None`: no
    /// scheduled rotation.
    pub signing_key_rotation_seconds: Option<u64>,
    /// The next signing key is in the JWKS this long before it signs.
    pub signing_key_prepublish_seconds: u64,
    /// How often scheduled jobs (key rotation, clean-up) run, in seconds.
    pub housekeeping_seconds: u64,
    /// Brute-force protection: failures per agent and per source before a lock, and its timing.
    pub lockout: crate::lockout::LockoutPolicy,
    /// Anomaly detection rules.
    pub anomaly: crate::anomaly::AnomalyPolicy,
    /// Where new alerts are POSTed, signed with `alert_webhook_secret` (HMAC-SHA-256).
    pub alert_webhook_url: Option<String>,
    pub alert_webhook_secret: Option<Sensitive>,
    /// The first retry's delay; each further retry doubles it (five attempts in all).
    pub alert_webhook_retry_seconds: u64,
    /// Audit records older than this are deleted (the chain stays verifiable from a
    /// checkpoint); `None`: kept forever.
    pub audit_retention_seconds: Option<u64>,
    /// `None` until the listener is bound: then it defaults to `http://<listen address>`.
    pub issuer: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// Connections in the database pool (the audit writer has one more of its own).
    pub database_pool_size: u32,
    /// PostgreSQL: statements (and lock waits) running longer are cancelled.
    pub database_statement_timeout_seconds: u64,
    /// PostgreSQL: seconds between full reloads of what is cached, in case an announced change
    /// was missed.
    pub cluster_resync_seconds: u64,
    /// `full` (default): every commit is on disk before it is acknowledged; `normal`: survives
    /// a process crash, may lose the last commits on power loss.
    pub sqlite_synchronous_full: bool,
    pub admin_token: Option<Sensitive>,
    /// The console's first user (`admin`) gets this password at the first start; without it,
    /// one is generated and printed once.
    pub admin_password: Option<Sensitive>,
    pub master_key: Option<Sensitive>,
    pub token_signing_alg: SigningAlgorithm,
    pub access_token_ttl: u64,
    /// Largest accepted request body in bytes at the OAuth and admin endpoints.
    pub max_body_bytes: usize,
    /// Requests in flight past which new ones get 503 (0: no limit).
    pub max_concurrent_requests: usize,
    /// Open client connections, both listeners together, past which new ones wait in the
    /// listen backlog until one closes.
    pub max_connections: usize,
    /// Seconds that a shutdown waits for in-flight requests.
    pub shutdown_grace_seconds: u64,
    /// Longest accepted `exp - iat` of a client assertion (private_key_jwt), in seconds.
    pub client_assertion_max_lifetime: u64,
    /// Tolerated clock difference for assertion `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew_seconds: u64,
    /// Where agents' `jwks_uri` may point: host names, `*.example.com` for subdomains.
    pub jwks_uri: JwksUriConfig,
    pub log_format: LogFormat,
    /// One log line per HTTP request (method, path, status, duration, request id).
    pub access_log: bool,
    /// Where audit records are also written as JSON lines, for SIEM shipping.
    pub audit_sink: Option<AuditSink>,
    /// Audit records are not written at all: only for measuring what durable audit costs.
    pub audit_off_for_benchmarks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The `jwks_uri` fetch policy (SSRF protection) and cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwksUriConfig {
    /// Hosts a `jwks_uri` may name; empty means `jwks_uri` cannot be used.
    pub allowed_hosts: Vec<String>,
    /// Allow `http://` to loopback addresses (for tests and local development only).
    pub allow_http_loopback: bool,
    /// Allow hosts that resolve to private networks (10/8, 172.16/12, 192.168/16, fc00::/7).
    pub allow_private_networks: bool,
    /// How long fetched keys are used before they are fetched again.
    pub cache_seconds: u64,
    /// Shortest time between two fetches of the same set (an unknown `kid` triggers one).
    pub min_refetch_seconds: u64,
}

/// Mutual TLS settings (RFC 8705).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtlsConfig {
    /// Server certificate chain (PEM); with `tls_key_file`, else a development certificate.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// CAs trusted for `tls_client_auth` (PEM bundle), besides Signet's own agent CA.
    pub client_ca_file: Option<PathBuf>,
    /// CRLs (PEM or DER) of the trusted CAs.
    pub client_crl_files: Vec<PathBuf>,
    /// Header in which a TLS-terminating proxy forwards the client certificate (URL-encoded
    /// PEM), lower-case; honoured only from [`Config::trusted_proxies`].
    pub client_cert_header: Option<String>,
    /// Base URL of the mTLS endpoints in metadata (`mtls_endpoint_aliases`); defaults to
    /// `https://<tls listen address>`.
    pub mtls_base_url: Option<String>,
    /// Default lifetime of certificates issued by the agent CA, in seconds.
    pub agent_cert_ttl: u64,
    /// How often certificate, CA and CRL files are checked for changes, in seconds.
    pub reload_seconds: u64,
}

/// A configuration error, naming the setting and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

/// Where configuration comes from; tests pass their own environment.
#[derive(Debug)]
pub struct Sources<'a> {
    /// Contents of the TOML file, with its path for messages, if one was given.
    pub file: Option<(&'a Path, String)>,
    pub env: &'a HashMap<String, String>,
}

impl Config {
    /// The database URL, defaulting to `signet.db` in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("signet.db").display()))
    }

    /// The database URL without its password, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url_password(&self.database_url())
    }
}

/// `scheme://user:password@host…` with the password replaced by `***`; other URLs unchanged.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let password = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{password}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A JSON-lines copy of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    Stdout,
    File(PathBuf),
}

mod file;
mod load;
mod values;
