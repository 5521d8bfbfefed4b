//! Signet's configuration: one typed value, loaded once at start from an optional TOML file and
//! `SIGNET_*` environment variables (which win), with `SIGNET_<NAME>_FILE` for every secret, and
//! validated with messages that say what to fix. It is passed down, never global.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// `full` (default): every commit is on disk before it is acknowledged; `normal`: survives
    /// a process crash, may lose the last commits on power loss.
    pub sqlite_synchronous_full: bool,
    pub admin_token: Option<Sensitive>,
    pub master_key: Option<Sensitive>,
    pub token_signing_alg: SigningAlgorithm,
    pub access_token_ttl: u64,
    /// Largest accepted request body in bytes at the OAuth and admin endpoints.
    pub max_body_bytes: usize,
    /// Requests in flight past which new ones get 503 (0: no limit).
    pub max_concurrent_requests: usize,
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

fn error(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

/// The TOML file's shape: the same names as the variables, lower-case, without `SIGNET_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    tls_listen: Option<String>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
    client_ca_file: Option<String>,
    client_crl_files: Option<Vec<String>>,
    client_cert_header: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    mtls_base_url: Option<String>,
    agent_cert_ttl: Option<u64>,
    tls_reload_seconds: Option<u64>,
    self_rotation_grace_seconds: Option<u64>,
    secret_max_age_days: Option<u64>,
    signing_key_rotation_days: Option<u64>,
    signing_key_prepublish_seconds: Option<u64>,
    housekeeping_seconds: Option<u64>,
    audit_retention_days: Option<u64>,
    lockout_threshold: Option<u64>,
    alert_failure_burst: Option<u64>,
    alert_failure_window_seconds: Option<u64>,
    alert_credential_rules: Option<bool>,
    alert_new_network_days: Option<u64>,
    alert_token_rate_factor: Option<u64>,
    alert_token_rate_min_per_minute: Option<u64>,
    alert_token_rate_learning_minutes: Option<u64>,
    alert_webhook_url: Option<String>,
    alert_webhook_secret: Option<String>,
    alert_webhook_secret_file: Option<String>,
    alert_webhook_retry_seconds: Option<u64>,
    lockout_window_seconds: Option<u64>,
    lockout_seconds: Option<u64>,
    lockout_max_seconds: Option<u64>,
    expiry_warning_days: Option<u64>,
    issuer: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    sqlite_synchronous: Option<String>,
    admin_token: Option<String>,
    admin_token_file: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<String>,
    token_signing_alg: Option<String>,
    access_token_ttl: Option<u64>,
    max_body_bytes: Option<usize>,
    max_concurrent_requests: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    client_assertion_max_lifetime: Option<u64>,
    clock_skew_seconds: Option<u64>,
    jwks_uri_allowed_hosts: Option<Vec<String>>,
    jwks_uri_allow_http_loopback: Option<bool>,
    jwks_uri_allow_private_networks: Option<bool>,
    jwks_uri_cache_seconds: Option<u64>,
    jwks_uri_min_refetch_seconds: Option<u64>,
    log_format: Option<String>,
    access_log: Option<bool>,
    audit_sink: Option<String>,
}

/// Where configuration comes from; tests pass their own environment.
#[derive(Debug)]
pub struct Sources<'a> {
    /// Contents of the TOML file, with its path for messages, if one was given.
    pub file: Option<(&'a Path, String)>,
    pub env: &'a HashMap<String, String>,
}

impl Config {
    /// Loads and validates the configuration.
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        let file: FileConfig = match &sources.file {
            Some((path, text)) => toml::from_str(text).map_err(|e| {
                error(
                    &path.display().to_string(),
                    format!("invalid configuration file: {e}"),
                )
            })?,
            None => FileConfig::default(),
        };
        let env = sources.env;
        let get = |name: &str, from_file: Option<String>| -> Option<String> {
            env.get(&format!("SIGNET_{name}"))
                .cloned()
                .filter(|v| !v.is_empty())
                .or(from_file)
        };

        let listen = parse_addr(
            "SIGNET_LISTEN",
            get("LISTEN", file.listen),
            "127.0.0.1:8080",
        )?;
        let tls_listen = match get("TLS_LISTEN", file.tls_listen.clone()) {
            Some(v) if v.eq_ignore_ascii_case("off") => None,
            v => Some(parse_addr("SIGNET_TLS_LISTEN", v, "127.0.0.1:8443")?),
        };
        let list = |setting: &str, from_file: Option<Vec<String>>| -> Vec<String> {
            match env.get(setting).filter(|v| !v.is_empty()) {
                Some(v) => v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                None => from_file.unwrap_or_default(),
            }
        };
        let tls_cert_file = get("TLS_CERT_FILE", file.tls_cert_file).map(PathBuf::from);
        let tls_key_file = get("TLS_KEY_FILE", file.tls_key_file).map(PathBuf::from);
        if tls_cert_file.is_some() != tls_key_file.is_some() {
            return Err(error(
                "SIGNET_TLS_CERT_FILE",
                "set both SIGNET_TLS_CERT_FILE and SIGNET_TLS_KEY_FILE, or neither (a development certificate is generated)",
            ));
        }
        let client_cert_header = get("CLIENT_CERT_HEADER", file.client_cert_header)
            .map(|h| {
                let h = h.trim().to_ascii_lowercase();
                let valid = !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if valid {
                    Ok(h)
                } else {
                    Err(error(
                        "SIGNET_CLIENT_CERT_HEADER",
                        "not an HTTP header name",
                    ))
                }
            })
            .transpose()?;
        let trusted_proxies = list("SIGNET_TRUSTED_PROXIES", file.trusted_proxies)
            .iter()
            .map(|c| {
                c.parse::<crate::cidr::Cidr>()
                    .map_err(|e| error("SIGNET_TRUSTED_PROXIES", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if client_cert_header.is_some() && trusted_proxies.is_empty() {
            return Err(error(
                "SIGNET_TRUSTED_PROXIES",
                "SIGNET_CLIENT_CERT_HEADER needs the addresses of the proxies allowed to send it",
            ));
        }
        let agent_cert_ttl = number("SIGNET_AGENT_CERT_TTL", env, file.agent_cert_ttl, 86_400)?;
        if !(300..=90 * 86_400).contains(&agent_cert_ttl) {
            return Err(error(
                "SIGNET_AGENT_CERT_TTL",
                "must be between 300 seconds and 90 days",
            ));
        }
        let reload_seconds = number("SIGNET_TLS_RELOAD_SECONDS", env, file.tls_reload_seconds, 5)?;
        if !(1..=3600).contains(&reload_seconds) {
            return Err(error(
                "SIGNET_TLS_RELOAD_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        let self_rotation_grace_seconds = number(
            "SIGNET_SELF_ROTATION_GRACE_SECONDS",
            env,
            file.self_rotation_grace_seconds,
            3600,
        )?;
        if self_rotation_grace_seconds > 30 * 86_400 {
            return Err(error(
                "SIGNET_SELF_ROTATION_GRACE_SECONDS",
                "must be at most 2592000 (30 days)",
            ));
        }
        let secret_max_age_days = number(
            "SIGNET_SECRET_MAX_AGE_DAYS",
            env,
            file.secret_max_age_days,
            0,
        )?;
        if secret_max_age_days > 3650 {
            return Err(error(
                "SIGNET_SECRET_MAX_AGE_DAYS",
                "must be at most 3650 (0: secrets do not expire)",
            ));
        }
        let expiry_warning_days = number(
            "SIGNET_EXPIRY_WARNING_DAYS",
            env,
            file.expiry_warning_days,
            14,
        )?;
        if !(1..=365).contains(&expiry_warning_days) {
            return Err(error(
                "SIGNET_EXPIRY_WARNING_DAYS",
                "must be between 1 and 365",
            ));
        }
        let rotation_days = number(
            "SIGNET_SIGNING_KEY_ROTATION_DAYS",
            env,
            file.signing_key_rotation_days,
            30,
        )?;
        if rotation_days > 3650 {
            return Err(error(
                "SIGNET_SIGNING_KEY_ROTATION_DAYS",
                "must be at most 3650 (0: no scheduled rotation)",
            ));
        }
        let signing_key_prepublish_seconds = number(
            "SIGNET_SIGNING_KEY_PREPUBLISH_SECONDS",
            env,
            file.signing_key_prepublish_seconds,
            86_400,
        )?;
        if rotation_days > 0 && signing_key_prepublish_seconds >= rotation_days * 86_400 {
            return Err(error(
                "SIGNET_SIGNING_KEY_PREPUBLISH_SECONDS",
                "must be shorter than the rotation period (SIGNET_SIGNING_KEY_ROTATION_DAYS)",
            ));
        }
        let housekeeping_seconds = number(
            "SIGNET_HOUSEKEEPING_SECONDS",
            env,
            file.housekeeping_seconds,
            60,
        )?;
        if !(1..=3600).contains(&housekeeping_seconds) {
            return Err(error(
                "SIGNET_HOUSEKEEPING_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        let lockout = crate::lockout::LockoutPolicy {
            threshold: number("SIGNET_LOCKOUT_THRESHOLD", env, file.lockout_threshold, 20)?
                .min(1_000_000) as u32,
            window: number(
                "SIGNET_LOCKOUT_WINDOW_SECONDS",
                env,
                file.lockout_window_seconds,
                60,
            )?
            .clamp(1, 86_400) as i64,
            base: number("SIGNET_LOCKOUT_SECONDS", env, file.lockout_seconds, 30)?.clamp(1, 86_400)
                as i64,
            max: number(
                "SIGNET_LOCKOUT_MAX_SECONDS",
                env,
                file.lockout_max_seconds,
                900,
            )?
            .clamp(1, 7 * 86_400) as i64,
        };
        let anomaly = crate::anomaly::AnomalyPolicy {
            burst_failures: number(
                "SIGNET_ALERT_FAILURE_BURST",
                env,
                file.alert_failure_burst,
                20,
            )?
            .min(1_000_000) as u32,
            burst_window: number(
                "SIGNET_ALERT_FAILURE_WINDOW_SECONDS",
                env,
                file.alert_failure_window_seconds,
                60,
            )?
            .clamp(1, 86_400) as i64,
            credential_rules: match env
                .get("SIGNET_ALERT_CREDENTIAL_RULES")
                .filter(|v| !v.is_empty())
            {
                Some(v) if v == "false" || v == "0" => false,
                Some(v) if v == "true" || v == "1" => true,
                Some(v) => {
                    return Err(error(
                        "SIGNET_ALERT_CREDENTIAL_RULES",
                        format!("`{v}` is not true or false"),
                    ));
                }
                None => file.alert_credential_rules.unwrap_or(true),
            },
            new_network_days: number(
                "SIGNET_ALERT_NEW_NETWORK_DAYS",
                env,
                file.alert_new_network_days,
                30,
            )?
            .min(3650),
            rate_factor: number(
                "SIGNET_ALERT_TOKEN_RATE_FACTOR",
                env,
                file.alert_token_rate_factor,
                10,
            )?
            .min(1_000_000) as u32,
            rate_min_per_minute: number(
                "SIGNET_ALERT_TOKEN_RATE_MIN_PER_MINUTE",
                env,
                file.alert_token_rate_min_per_minute,
                60,
            )?
            .min(u64::from(u32::MAX)) as u32,
            rate_learning_minutes: number(
                "SIGNET_ALERT_TOKEN_RATE_LEARNING_MINUTES",
                env,
                file.alert_token_rate_learning_minutes,
                60,
            )?
            .clamp(1, 7 * 24 * 60) as u32,
        };
        let alert_webhook_url = get("ALERT_WEBHOOK_URL", file.alert_webhook_url.clone())
            .map(|u| {
                if u.starts_with("https://") || u.starts_with("http://") {
                    Ok(u)
                } else {
                    Err(error("SIGNET_ALERT_WEBHOOK_URL", "must be an http(s) URL"))
                }
            })
            .transpose()?;
        let alert_webhook_secret = secret(
            env,
            "ALERT_WEBHOOK_SECRET",
            file.alert_webhook_secret.clone(),
            file.alert_webhook_secret_file.clone(),
        )?;
        if alert_webhook_url.is_some() && alert_webhook_secret.is_none() {
            return Err(error(
                "SIGNET_ALERT_WEBHOOK_SECRET",
                "a webhook needs a secret to sign its deliveries (e.g. `openssl rand -hex 32`)",
            ));
        }
        let alert_webhook_retry_seconds = number(
            "SIGNET_ALERT_WEBHOOK_RETRY_SECONDS",
            env,
            file.alert_webhook_retry_seconds,
            1,
        )?
        .clamp(1, 3600);
        let audit_retention_days = number(
            "SIGNET_AUDIT_RETENTION_DAYS",
            env,
            file.audit_retention_days,
            0,
        )?;
        let mtls = MtlsConfig {
            tls_cert_file,
            tls_key_file,
            client_ca_file: get("CLIENT_CA_FILE", file.client_ca_file).map(PathBuf::from),
            client_crl_files: list("SIGNET_CLIENT_CRL_FILES", file.client_crl_files)
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            client_cert_header,
            mtls_base_url: get("MTLS_BASE_URL", file.mtls_base_url)
                .map(|u| validate_issuer(&u).map_err(|e| error("SIGNET_MTLS_BASE_URL", e.problem)))
                .transpose()?,
            agent_cert_ttl,
            reload_seconds,
        };
        let issuer = get("ISSUER", file.issuer)
            .map(|i| validate_issuer(&i))
            .transpose()?;
        let data_dir =
            PathBuf::from(get("DATA_DIR", file.data_dir).unwrap_or_else(|| "./signet-data".into()));
        let database_url = get("DATABASE_URL", file.database_url);
        if let Some(url) = &database_url
            && !url.starts_with("sqlite:")
        {
            return Err(error(
                "SIGNET_DATABASE_URL",
                format!(
                    "`{}…` is not supported: use sqlite://PATH (PostgreSQL support is coming)",
                    url.chars().take(12).collect::<String>()
                ),
            ));
        }
        let sqlite_synchronous_full = match get("SQLITE_SYNCHRONOUS", file.sqlite_synchronous)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("full") => true,
            Some("normal") => false,
            Some(other) => {
                return Err(error(
                    "SIGNET_SQLITE_SYNCHRONOUS",
                    format!("`{other}` is not full or normal"),
                ));
            }
        };
        let admin_token = secret(env, "ADMIN_TOKEN", file.admin_token, file.admin_token_file)?;
        if let Some(token) = &admin_token
            && token.expose().len() < 32
        {
            return Err(error(
                "SIGNET_ADMIN_TOKEN",
                "must be at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        let master_key = secret(env, "MASTER_KEY", file.master_key, file.master_key_file)?;
        let token_signing_alg = get("TOKEN_SIGNING_ALG", file.token_signing_alg)
            .map(|a| {
                a.parse()
                    .map_err(|e: String| error("SIGNET_TOKEN_SIGNING_ALG", e))
            })
            .transpose()?
            .unwrap_or(SigningAlgorithm::Es256);
        let access_token_ttl = number("SIGNET_ACCESS_TOKEN_TTL", env, file.access_token_ttl, 600)?;
        if !(crate::agent::MIN_TOKEN_TTL..=crate::agent::MAX_TOKEN_TTL).contains(&access_token_ttl)
        {
            return Err(error(
                "SIGNET_ACCESS_TOKEN_TTL",
                "must be between 30 and 86400 seconds",
            ));
        }
        let max_body_bytes = number(
            "SIGNET_MAX_BODY_BYTES",
            env,
            file.max_body_bytes.map(|b| b as u64),
            64 * 1024,
        )? as usize;
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(error(
                "SIGNET_MAX_BODY_BYTES",
                "must be between 1024 and 16777216",
            ));
        }
        let shutdown_grace_seconds = number(
            "SIGNET_SHUTDOWN_GRACE_SECONDS",
            env,
            file.shutdown_grace_seconds,
            30,
        )?;
        let client_assertion_max_lifetime = number(
            "SIGNET_CLIENT_ASSERTION_MAX_LIFETIME",
            env,
            file.client_assertion_max_lifetime,
            300,
        )?;
        if !(10..=3600).contains(&client_assertion_max_lifetime) {
            return Err(error(
                "SIGNET_CLIENT_ASSERTION_MAX_LIFETIME",
                "must be between 10 and 3600 seconds",
            ));
        }
        let clock_skew_seconds = number(
            "SIGNET_CLOCK_SKEW_SECONDS",
            env,
            file.clock_skew_seconds,
            30,
        )?;
        if clock_skew_seconds > 300 {
            return Err(error(
                "SIGNET_CLOCK_SKEW_SECONDS",
                "must be at most 300 seconds",
            ));
        }
        let flag = |setting: &str, from_file: Option<bool>| -> Result<bool, ConfigError> {
            match env
                .get(setting)
                .filter(|v| !v.is_empty())
                .map(|v| v.trim().to_ascii_lowercase())
            {
                None => Ok(from_file.unwrap_or(false)),
                Some(v) if v == "true" || v == "1" => Ok(true),
                Some(v) if v == "false" || v == "0" => Ok(false),
                Some(v) => Err(error(setting, format!("`{v}` is not true or false"))),
            }
        };
        let allowed_hosts = match env
            .get("SIGNET_JWKS_URI_ALLOWED_HOSTS")
            .filter(|v| !v.is_empty())
        {
            Some(list) => list
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            None => file
                .jwks_uri_allowed_hosts
                .unwrap_or_default()
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        };
        let jwks_uri = JwksUriConfig {
            allowed_hosts,
            allow_http_loopback: flag(
                "SIGNET_JWKS_URI_ALLOW_HTTP_LOOPBACK",
                file.jwks_uri_allow_http_loopback,
            )?,
            allow_private_networks: flag(
                "SIGNET_JWKS_URI_ALLOW_PRIVATE_NETWORKS",
                file.jwks_uri_allow_private_networks,
            )?,
            cache_seconds: number(
                "SIGNET_JWKS_URI_CACHE_SECONDS",
                env,
                file.jwks_uri_cache_seconds,
                300,
            )?,
            min_refetch_seconds: number(
                "SIGNET_JWKS_URI_MIN_REFETCH_SECONDS",
                env,
                file.jwks_uri_min_refetch_seconds,
                30,
            )?,
        };
        let log_format = match get("LOG_FORMAT", file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(error(
                    "SIGNET_LOG_FORMAT",
                    format!("`{other}` is not text or json"),
                ));
            }
        };
        let audit_sink = get("AUDIT_SINK", file.audit_sink.clone()).map(|v| match v.as_str() {
            "stdout" | "-" => AuditSink::Stdout,
            path => AuditSink::File(PathBuf::from(path)),
        });
        let max_concurrent_requests = number(
            "SIGNET_MAX_CONCURRENT_REQUESTS",
            env,
            file.max_concurrent_requests,
            512,
        )?
        .min(1_000_000) as usize;
        Ok(Config {
            max_concurrent_requests,
            access_log: flag("SIGNET_ACCESS_LOG", file.access_log)?,
            audit_sink,
            audit_off_for_benchmarks: flag("SIGNET_AUDIT_OFF_FOR_BENCHMARKS", None)?,
            listen,
            tls_listen,
            mtls,
            trusted_proxies,
            self_rotation_grace_seconds,
            secret_max_age_seconds: (secret_max_age_days > 0)
                .then_some(secret_max_age_days * 86_400),
            expiry_warning_seconds: expiry_warning_days * 86_400,
            testing_clock: flag("SIGNET_TESTING_CLOCK", None)?,
            signing_key_rotation_seconds: (rotation_days > 0).then_some(rotation_days * 86_400),
            signing_key_prepublish_seconds,
            housekeeping_seconds,
            lockout,
            anomaly,
            alert_webhook_url,
            alert_webhook_secret,
            alert_webhook_retry_seconds,
            audit_retention_seconds: (audit_retention_days > 0)
                .then_some(audit_retention_days * 86_400),
            issuer,
            data_dir,
            database_url,
            sqlite_synchronous_full,
            admin_token,
            master_key,
            token_signing_alg,
            access_token_ttl,
            max_body_bytes,
            shutdown_grace_seconds,
            client_assertion_max_lifetime,
            clock_skew_seconds,
            jwks_uri,
            log_format,
        })
    }

    /// The database URL, defaulting to `signet.db` in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("signet.db").display()))
    }
}

/// A JSON-lines copy of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    Stdout,
    File(PathBuf),
}

fn parse_addr(
    setting: &str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_string());
    value.parse().map_err(|_| {
        error(
            setting,
            format!("`{value}` is not an address like {default}"),
        )
    })
}

fn validate_issuer(issuer: &str) -> Result<String, ConfigError> {
    let issuer = issuer.trim_end_matches('/');
    let ok = (issuer.starts_with("https://") || issuer.starts_with("http://"))
        && !issuer.contains(['?', '#', ' '])
        && issuer.len() > "http://".len();
    if !ok {
        return Err(error(
            "SIGNET_ISSUER",
            format!("`{issuer}` must be an http(s) URL without query or fragment (RFC 8414 §2)"),
        ));
    }
    Ok(issuer.to_string())
}

fn number(
    setting: &str,
    env: &HashMap<String, String>,
    from_file: Option<u64>,
    default: u64,
) -> Result<u64, ConfigError> {
    match env.get(setting).filter(|v| !v.is_empty()) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| error(setting, format!("`{v}` is not a whole number"))),
        None => Ok(from_file.unwrap_or(default)),
    }
}

/// A secret from `SIGNET_<NAME>`, `SIGNET_<NAME>_FILE`, or the TOML file's `name` / `name_file`.
fn secret(
    env: &HashMap<String, String>,
    name: &str,
    from_file: Option<String>,
    file_path_from_file: Option<String>,
) -> Result<Option<Sensitive>, ConfigError> {
    let var = format!("SIGNET_{name}");
    let file_var = format!("SIGNET_{name}_FILE");
    let direct = env.get(&var).filter(|v| !v.is_empty());
    let path = env.get(&file_var).filter(|v| !v.is_empty());
    match (direct, path) {
        (Some(_), Some(_)) => Err(error(
            &var,
            format!("set either {var} or {file_var}, not both"),
        )),
        (Some(value), None) => Ok(Some(Sensitive::new(value.trim()))),
        (None, Some(path)) => read_secret_file(&file_var, path).map(Some),
        (None, None) => match (from_file, file_path_from_file) {
            (Some(_), Some(_)) => Err(error(
                &name.to_lowercase(),
                "set either the value or the _file setting, not both",
            )),
            (Some(value), None) => Ok(Some(Sensitive::new(value.trim()))),
            (None, Some(path)) => {
                read_secret_file(&format!("{}_file", name.to_lowercase()), &path).map(Some)
            }
            (None, None) => Ok(None),
        },
    }
}

fn read_secret_file(setting: &str, path: &str) -> Result<Sensitive, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(setting, format!("cannot read `{path}`: {e}")))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(error(setting, format!("`{path}` is empty")));
    }
    Ok(Sensitive::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(Sources {
            file: file.map(|f| (Path::new("signet.toml"), f.to_string())),
            env: &env,
        })
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = load(&[], None).expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.tls_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(config.mtls.agent_cert_ttl, 86_400);
        assert_eq!(config.token_signing_alg, SigningAlgorithm::Es256);
        assert_eq!(config.access_token_ttl, 600);
        assert_eq!(config.database_url(), "sqlite://./signet-data/signet.db");
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load(
            &[("SIGNET_ACCESS_TOKEN_TTL", "120")],
            Some("access_token_ttl = 300\ntoken_signing_alg = \"EdDSA\""),
        )
        .expect("valid");
        assert_eq!(config.access_token_ttl, 120);
        assert_eq!(config.token_signing_alg, SigningAlgorithm::EdDsa);
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = std::env::temp_dir().join(format!("signet-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("token");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").expect("write");
        let config = load(
            &[("SIGNET_ADMIN_TOKEN_FILE", path.to_str().expect("utf8"))],
            None,
        )
        .expect("valid");
        assert_eq!(
            config
                .admin_token
                .map(|t| t.expose().to_string())
                .as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn errors_name_the_setting() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (&[("SIGNET_LISTEN", "localhost")], None, "SIGNET_LISTEN"),
            (
                &[("SIGNET_TOKEN_SIGNING_ALG", "HS256")],
                None,
                "SIGNET_TOKEN_SIGNING_ALG",
            ),
            (
                &[("SIGNET_ACCESS_TOKEN_TTL", "ten")],
                None,
                "SIGNET_ACCESS_TOKEN_TTL",
            ),
            (
                &[("SIGNET_ACCESS_TOKEN_TTL", "5")],
                None,
                "SIGNET_ACCESS_TOKEN_TTL",
            ),
            (&[("SIGNET_ISSUER", "ftp://x")], None, "SIGNET_ISSUER"),
            (
                &[("SIGNET_ADMIN_TOKEN", "short")],
                None,
                "SIGNET_ADMIN_TOKEN",
            ),
            (
                &[
                    ("SIGNET_ADMIN_TOKEN", "a"),
                    ("SIGNET_ADMIN_TOKEN_FILE", "/x"),
                ],
                None,
                "SIGNET_ADMIN_TOKEN",
            ),
            (
                &[("SIGNET_MASTER_KEY_FILE", "/nonexistent/key")],
                None,
                "SIGNET_MASTER_KEY_FILE",
            ),
            (
                &[("SIGNET_DATABASE_URL", "mysql://x")],
                None,
                "SIGNET_DATABASE_URL",
            ),
            (&[], Some("listen_addr = \"x\""), "signet.toml"),
        ];
        for (env, file, setting) in cases {
            let err = load(env, *file).expect_err("invalid");
            assert_eq!(err.setting, *setting, "{err}");
        }
    }
}
