//! Loading the configuration: the TOML file's shape, then each setting from the file or its
//! `SIGNET_*` variable (which wins), validated with the setting's name in every error.

use std::path::PathBuf;

use super::file::FileConfig;
use super::values::{error, number, parse_addr, secret, validate_issuer};
use super::*;
use crate::token::SigningAlgorithm;

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
        let cluster_resync_seconds = number(
            "SIGNET_CLUSTER_RESYNC_SECONDS",
            env,
            file.cluster_resync_seconds,
            30,
        )?
        .clamp(1, 86_400);
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
        // May carry a password: also from SIGNET_DATABASE_URL_FILE (a secrets manager's file).
        let database_url = secret(
            env,
            "DATABASE_URL",
            file.database_url.clone(),
            file.database_url_file.clone(),
        )?
        .map(|url| url.expose().to_owned());
        if let Some(url) = &database_url
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(error(
                "SIGNET_DATABASE_URL",
                format!(
                    "`{}…` is not supported: use sqlite://PATH or postgres://USER@HOST/DATABASE",
                    url.chars().take(12).collect::<String>()
                ),
            ));
        }
        let database_pool_size = number(
            "SIGNET_DATABASE_POOL_SIZE",
            env,
            file.database_pool_size,
            if database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
            {
                16
            } else {
                4
            },
        )?
        .clamp(1, 1000) as u32;
        let database_statement_timeout_seconds = number(
            "SIGNET_DATABASE_STATEMENT_TIMEOUT_SECONDS",
            env,
            file.database_statement_timeout_seconds,
            5,
        )?
        .clamp(1, 3600);
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
        let admin_password = secret(
            env,
            "ADMIN_PASSWORD",
            file.admin_password.clone(),
            file.admin_password_file.clone(),
        )?;
        if let Some(password) = &admin_password {
            crate::console_user::validate_password(password.expose())
                .map_err(|e| error("SIGNET_ADMIN_PASSWORD", e))?;
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
        let max_connections = number("SIGNET_MAX_CONNECTIONS", env, file.max_connections, 4096)?
            .clamp(1, 1_000_000) as usize;
        Ok(Config {
            max_concurrent_requests,
            max_connections,
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
            database_pool_size,
            database_statement_timeout_seconds,
            cluster_resync_seconds,
            sqlite_synchronous_full,
            admin_token,
            admin_password,
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
}

#[cfg(test)]
mod tests;
