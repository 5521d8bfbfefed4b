//! `signet serve` and `signet migrate`: load the configuration, prepare the data directory,
//! master key, database, signing keys and admin token on first start, and run the server. Also
//! opens the configured database for commands that check it in place (`signet audit verify`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use signet_core::config::{Config, LogFormat, Sources};
use signet_core::crypto::{MasterKey, random_bytes, sha256};
use signet_core::encoding::{b64url, b64url_decode, base62};
use signet_http::state::PublicUrls;
use signet_http::tls::{ServerCertificate, server_config};

use signet_http::{AppState, KeyRing, PkiState, TlsListener};
use signet_store::{DatabaseOptions, Durability, Store};

use super::{CliError, write_private};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (settings as in SIGNET_* variables, lower-case, without the prefix).
    #[arg(long, env = "SIGNET_CONFIG")]
    config: Option<PathBuf>,
}

const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

fn load_config(args: &ServeArgs) -> Result<Config, CliError> {
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SIGNET_"))
        .collect();
    let file = match &args.config {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::failure(format!(
                    "cannot read configuration file {}: {e}",
                    path.display()
                ))
            })?;
            Some((path.as_path(), text))
        }
    };
    Config::load(Sources { file, env: &env })
        .map_err(|e| CliError::failure(format!("configuration: {e}")))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Creates the data directory (mode 0700) if it does not exist.
fn prepare_data_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::failure(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    // The database, its journal and the TLS files are written here: say so now, not with a
    // database error later.
    let probe = dir.join(".signet-write-check");
    let written = std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = written {
        let why = if e.raw_os_error() == Some(30) {
            "the file system is read-only".to_owned()
        } else {
            e.to_string()
        };
        return Err(CliError::failure(format!(
            "the data directory {} is not writable ({why}): Signet keeps its database and keys there; mount it read-write, fix its permissions, or point SIGNET_DATA_DIR elsewhere",
            dir.display()
        )));
    }
    Ok(())
}

/// The master key from configuration, or from `master.key` in the data directory, which is
/// generated (mode 0600) on first start.
fn master_key(config: &Config) -> Result<MasterKey, CliError> {
    if let Some(key) = existing_master_key(config)? {
        return Ok(key);
    }
    let path = config.data_dir.join("master.key");
    let (key, encoded) = MasterKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(format!("{encoded}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    tracing::warn!(
        path = %path.display(),
        "generated a master key next to the database; in production deliver it with SIGNET_MASTER_KEY_FILE from a secrets manager instead"
    );
    Ok(key)
}

/// The master key from configuration or `master.key` in the data directory, if there is one.
fn existing_master_key(config: &Config) -> Result<Option<MasterKey>, CliError> {
    if let Some(key) = &config.master_key {
        return MasterKey::from_base64(key.expose())
            .map(Some)
            .map_err(|e| CliError::failure(format!("SIGNET_MASTER_KEY: {e}")));
    }
    let path = config.data_dir.join("master.key");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
    MasterKey::from_base64(&text)
        .map(Some)
        .map_err(|e| CliError::failure(format!("{}: {e}", path.display())))
}

/// Opens the configured database as `serve` would, for a command that checks it in place; it
/// changes nothing: no data directory, no master key, no empty SQLite file, no migration (the
/// schema must be this binary's). A master key that is
/// not the database's is refused as `serve` refuses it (the chain would look broken everywhere).
pub async fn open_existing_store(args: &ServeArgs) -> Result<Store, CliError> {
    let config = load_config(args)?;
    let url = config.database_url();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))
    {
        let path = Path::new(path.split('?').next().unwrap_or_default());
        if !path.is_file() {
            return Err(CliError::failure(format!(
                "no database at {} (set SIGNET_DATA_DIR or SIGNET_DATABASE_URL as for `signet serve`, or pass --url to ask a running server)",
                path.display()
            )));
        }
    }
    let master_key = existing_master_key(&config)?.ok_or_else(|| {
        CliError::failure(format!(
            "no master key (SIGNET_MASTER_KEY, SIGNET_MASTER_KEY_FILE or {}): the audit chain is keyed by it",
            config.data_dir.join("master.key").display()
        ))
    })?;
    let options = DatabaseOptions {
        max_connections: 1,
        statement_timeout: Duration::from_secs(config.database_statement_timeout_seconds),
        migrate: false,
        ..DatabaseOptions::default()
    };
    // Unreachable is not tampered: exit 5, not 1, for a scheduled check.
    let unreachable = |e: signet_store::StoreError| match e {
        signet_store::StoreError::Unavailable(_) => CliError::new(
            super::EXIT_UNAVAILABLE,
            format!(
                "cannot reach the database {}: {e}",
                config.database_url_redacted()
            ),
        ),
        other => CliError::failure(format!(
            "cannot open the database {}: {other}",
            config.database_url_redacted()
        )),
    };
    let store = Store::open_with(&url, master_key.audit_key(), &options)
        .await
        .map_err(unreachable)?;
    let keys = store.signing_keys().await.map_err(unreachable)?;
    if let Some(key) = keys.first()
        && master_key
            .open(key.kid.as_bytes(), &key.private_key_sealed)
            .is_err()
    {
        store.close().await;
        return Err(CliError::failure(format!(
            "signing key {} cannot be decrypted: is SIGNET_MASTER_KEY the key this database was created with?",
            key.kid
        )));
    }
    Ok(store)
}

/// The admin token's hash: from configuration, from the database, or a new token that is
/// returned to be printed once.
async fn admin_token(
    config: &Config,
    store: &Store,
) -> Result<([u8; 32], Option<String>), CliError> {
    if let Some(token) = &config.admin_token {
        return Ok((sha256(token.expose().as_bytes()), None));
    }
    let stored = store
        .setting(ADMIN_TOKEN_SETTING)
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    if let Some(hash) = stored
        .and_then(|h| b64url_decode(&h))
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
    {
        return Ok((hash, None));
    }
    let random: [u8; 32] = random_bytes();
    let token = format!("signet_admin_{}", base62(&random, 43));
    let hash = sha256(token.as_bytes());
    store
        .set_setting(ADMIN_TOKEN_SETTING, &b64url(hash))
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok((hash, Some(token)))
}

/// Opens the database with the master key, which also keys the audit chain.
async fn open_store(config: &Config) -> Result<(Store, MasterKey), CliError> {
    prepare_data_dir(&config.data_dir)?;
    let master_key = master_key(config)?;
    let options = DatabaseOptions {
        durability: if config.sqlite_synchronous_full {
            Durability::Full
        } else {
            Durability::Normal
        },
        max_connections: config.database_pool_size,
        statement_timeout: Duration::from_secs(config.database_statement_timeout_seconds),
        resync: Duration::from_secs(config.cluster_resync_seconds),
        migrate: true,
    };
    let store = Store::open_with(&config.database_url(), master_key.audit_key(), &options)
        .await
        .map_err(|e| {
            CliError::failure(format!(
                "cannot open the database {}: {e}",
                config.database_url_redacted()
            ))
        })?;
    Ok((store, master_key))
}

pub async fn migrate(args: ServeArgs) -> Result<(), CliError> {
    let config = load_config(&args)?;
    init_logging(config.log_format);
    let (store, _) = open_store(&config).await?;
    store.close().await;
    println!("database is up to date");
    Ok(())
}

pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = load_config(&args)?;
    init_logging(config.log_format);
    let (store, master_key) = open_store(&config).await?;
    let keys = KeyRing::load(
        &store,
        &master_key,
        config.token_signing_alg,
        signet_core::now(),
    )
    .await
    .map_err(|e| CliError::failure(e.to_string()))?;
    let (admin_token_sha256, new_admin_token) = admin_token(&config, &store).await?;
    let new_admin_password =
        super::console_admin::ensure_first_admin(config.admin_password.as_ref(), &store).await?;
    let agent_ca = signet_http::pki::load_agent_ca(&store, &master_key, signet_core::now())
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    let pki = PkiState::new(Some(agent_ca));
    pki.reload_trust(&config.mtls)
        .map_err(|e| CliError::failure(format!("client certificate trust: {e}")))?;
    pki.reload_revocations(&store)
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    let tls = match config.tls_listen {
        None => None,
        Some(address) => Some(tls_listener(&config, address).await?),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            CliError::failure(format!(
                "SIGNET_LISTEN: cannot listen on {}: {e}",
                config.listen
            ))
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let mtls_base_url = tls.as_ref().map(|t| {
        config
            .mtls
            .mtls_base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", t.local))
    });
    let state = AppState::new(
        config.clone(),
        store.clone(),
        master_key,
        keys,
        admin_token_sha256,
        PublicUrls {
            issuer: issuer.clone(),
            mtls_base_url,
        },
        pki,
    );
    if state.clock.is_adjustable() {
        tracing::warn!(
            "SIGNET_TESTING_CLOCK=1: the clock can be moved through PUT /api/v1/testing/clock; never use this in production"
        );
    }
    if config.audit_off_for_benchmarks {
        state.store.audit().turn_off_for_benchmarks();
        tracing::warn!(
            "SIGNET_AUDIT_OFF_FOR_BENCHMARKS=1: no audit record is written; only for measuring what audit costs"
        );
    }
    if let Some(sink) = config.audit_sink.clone() {
        super::audit_sink::spawn(state.store.clone(), sink)
            .await
            .map_err(CliError::failure)?;
    }
    super::housekeeping::spawn(state.clone());
    signet_http::cluster::follow_changes(state.clone());
    signet_http::oauth::client_auth::spawn_lock_sweeper(state.clone());
    spawn_tls_reload(state.clone(), tls.as_ref().map(|t| t.certificate.clone()));
    print_banner(
        &config,
        local,
        tls.as_ref(),
        &state,
        new_admin_token.as_deref(),
        new_admin_password.as_ref().map(|p| p.expose()),
    );
    let tls = tls.map(|t| TlsListener {
        listener: t.listener,
        config: t.config,
    });
    signet_http::serve(listener, tls, state, shutdown_signal())
        .await
        .map_err(|e| CliError::failure(format!("server error: {e}")))?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The bound TLS listener with its reloadable certificate.
struct BoundTls {
    listener: tokio::net::TcpListener,
    local: std::net::SocketAddr,
    config: std::sync::Arc<rustls::ServerConfig>,
    certificate: std::sync::Arc<ServerCertificate>,
    /// The development CA to trust, when Signet generated the server certificate.
    development_ca: Option<PathBuf>,
}

/// Binds the TLS listener with the configured server certificate, or a development one that
/// is generated into `<data dir>/tls/` on first start.
async fn tls_listener(
    config: &Config,
    address: std::net::SocketAddr,
) -> Result<BoundTls, CliError> {
    let (cert_file, key_file, development_ca) =
        match (&config.mtls.tls_cert_file, &config.mtls.tls_key_file) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone(), None),
            _ => {
                let (cert, key, ca) = development_certificate(&config.data_dir)?;
                (cert, key, Some(ca))
            }
        };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certificate = std::sync::Arc::new(
        ServerCertificate::load(cert_file, key_file, provider.clone())
            .map_err(|e| CliError::failure(format!("SIGNET_TLS_CERT_FILE: {e}")))?,
    );
    let tls_config = server_config(certificate.clone(), provider)
        .map_err(|e| CliError::failure(format!("TLS: {e}")))?;
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        CliError::failure(format!(
            "SIGNET_TLS_LISTEN: cannot listen on {address}: {e} (set SIGNET_TLS_LISTEN=off to run without mutual TLS)"
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(BoundTls {
        listener,
        local,
        config: tls_config,
        certificate,
        development_ca,
    })
}

/// The development TLS files in `<data dir>/tls/`, generated when missing: (certificate
/// chain, key, CA certificate).
fn development_certificate(data_dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), CliError> {
    let dir = data_dir.join("tls");
    let (cert, key, ca) = (
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("dev-ca.pem"),
    );
    if cert.exists() && key.exists() && ca.exists() {
        return Ok((cert, key, ca));
    }
    prepare_data_dir(&dir)?;
    let generated = signet_core::pki::development::generate(&[])
        .map_err(|e| CliError::failure(format!("development certificate: {e}")))?;
    write_private(&key, generated.key_pem.as_bytes())?;
    std::fs::write(&cert, generated.chain_pem)
        .and_then(|()| std::fs::write(&ca, generated.ca_pem))
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", dir.display())))?;
    tracing::warn!(
        ca = %ca.display(),
        "generated a development TLS certificate for localhost; clients must trust its CA. In production set SIGNET_TLS_CERT_FILE and SIGNET_TLS_KEY_FILE"
    );
    Ok((cert, key, ca))
}

/// Every `SIGNET_TLS_RELOAD_SECONDS`: the server certificate, client CAs and CRLs are loaded
/// again if their files changed, and operator revocations are read again (another node, or a
/// later PostgreSQL cluster, may have added some).
fn spawn_tls_reload(state: AppState, certificate: Option<std::sync::Arc<ServerCertificate>>) {
    let period = std::time::Duration::from_secs(state.config.mtls.reload_seconds);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.tick().await;
        loop {
            interval.tick().await;
            let mut reloaded = Vec::new();
            if let Some(certificate) = &certificate {
                match certificate.reload() {
                    Ok(true) => reloaded.push("server_certificate"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "server certificate not reloaded; keeping the current one")
                    }
                }
            }
            match state.pki.reload_trust(&state.config.mtls) {
                Ok(true) => reloaded.push("client_trust"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "client CAs or CRLs not reloaded; keeping the current ones")
                }
            }
            if let Err(e) = state.pki.reload_revocations(&state.store).await {
                tracing::warn!(error = %e, "certificate revocations not reloaded");
            }
            if !reloaded.is_empty() {
                tracing::info!(?reloaded, "TLS material reloaded");
                let event = signet_core::audit::AuditEvent::success(
                    signet_core::audit::event::TLS_RELOADED,
                )
                .with_actor("signet")
                .with_detail(serde_json::json!({ "reloaded": reloaded }));
                if let Err(e) = state.store.audit().record(event).await {
                    tracing::warn!(error = %e, "TLS reload could not be audited");
                }
            }
        }
    });
}

fn print_banner(
    config: &Config,
    local: std::net::SocketAddr,
    tls: Option<&BoundTls>,
    state: &AppState,
    new_admin_token: Option<&str>,
    new_admin_password: Option<&str>,
) {
    let issuer = &*state.issuer;
    let alg = state.keys.active().alg().as_str();
    let mut out = String::new();
    if let Some(tls) = tls {
        out.push_str(&format!(
            "signet: mtls listening on https://{}\n",
            tls.local
        ));
    }
    out.push_str(&format!("signet: listening on http://{local}\n"));
    out.push_str(&format!("  issuer           {issuer}\n"));
    out.push_str(&format!(
        "  token endpoint   {issuer}/oauth2/token  (tokens signed with {alg})\n"
    ));
    out.push_str(&format!(
        "  admin API        http://{local}/api/v1  (OpenAPI: /api/v1/openapi.json)\n"
    ));
    if let (Some(tls), Some(base)) = (tls, state.mtls_base_url.as_deref()) {
        out.push_str(&format!(
            "  mutual TLS       {base}/oauth2/token  (tls_client_auth, self_signed_tls_client_auth)\n"
        ));
        if let Some(ca) = &tls.development_ca {
            out.push_str(&format!(
                "  dev TLS CA       {}  (trust it: curl --cacert …)\n",
                ca.display()
            ));
        }
        out.push_str(&format!(
            "  agent CA         {issuer}/pki/agent-ca.pem  (CRL: /pki/agent-ca.crl)\n"
        ));
    }
    out.push_str(&format!("  console          http://{local}/console\n"));
    out.push_str(&format!(
        "  data directory   {}\n",
        config.data_dir.display()
    ));
    match new_admin_token {
        Some(token) => {
            out.push_str(
                "\nAdmin token (shown only this once; store it in your secrets manager now):\n\n",
            );
            out.push_str(&format!("    {token}\n\n"));
            // Once: a second copy on the screen is one more to leak (SPEC: nothing secret is
            // printed twice).
            out.push_str(&format!(
                "Try it:  export SIGNET_URL=http://{local} SIGNET_ADMIN_TOKEN=<the token above>\n"
            ));
            out.push_str("         signet agent create --name my-agent\n");
        }
        None => out.push_str(
            "  admin token      from SIGNET_ADMIN_TOKEN or the one printed on first start\n",
        ),
    }
    if let Some(password) = new_admin_password {
        out.push_str(&format!(
            "\nConsole: sign in at http://{local}/console as `admin` with this password (shown only this once):\n\n    {password}\n\n"
        ));
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM"),
            _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
