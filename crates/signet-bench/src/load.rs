//! `signet-bench run`: `connections` workers, each on its own keep-alive HTTP/1.1 connection,
//! send requests back to back for the warm-up and then the measured period (or until
//! `requests` measured requests), recording latency, status and OAuth error code.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::process;
use crate::report::{Report, WorkerStats};
use crate::setup::{self, AgentKind, BenchAgent};

const MAX_DURATION_SECONDS: f64 = 600.0;
const MAX_CONNECTIONS: usize = 1024;
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// client_secret_basic.
    SecretBasic,
    /// client_secret_post.
    SecretPost,
    /// private_key_jwt with a fresh ES256 assertion (unique jti) per request.
    PrivateKeyJwt,
    /// Introspection of one token, authenticated as an agent.
    Introspect,
    /// self_signed_tls_client_auth on keep-alive TLS connections (the certificate-bound token
    /// path; TLS handshakes only at connection start).
    Mtls,
    /// self_signed_tls_client_auth with a new TLS connection (full handshake, no resumption)
    /// for every request.
    MtlsNewConnection,
    /// tls_client_auth (a certificate issued by Signet's agent CA, bound to the agent's
    /// identity) on keep-alive TLS connections.
    TlsClientAuth,
    /// tls_client_auth with a new TLS connection (full handshake, no resumption) per request.
    TlsClientAuthNewConnection,
}

impl Mode {
    /// The credentials the mode's agents need.
    pub fn agent_kind(self) -> AgentKind {
        match self {
            Self::PrivateKeyJwt => AgentKind::PrivateKeyJwt,
            Self::Mtls | Self::MtlsNewConnection => AgentKind::SelfSignedCertificate,
            Self::TlsClientAuth | Self::TlsClientAuthNewConnection => AgentKind::IssuedCertificate,
            Self::SecretBasic | Self::SecretPost | Self::Introspect => AgentKind::Secret,
        }
    }

    /// Whether the mode talks to the TLS listener with a client certificate.
    pub fn is_mtls(self) -> bool {
        matches!(
            self,
            Self::Mtls
                | Self::MtlsNewConnection
                | Self::TlsClientAuth
                | Self::TlsClientAuthNewConnection
        )
    }

    fn new_connection_per_request(self) -> bool {
        matches!(
            self,
            Self::MtlsNewConnection | Self::TlsClientAuthNewConnection
        )
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, value_enum, default_value = "secret-basic")]
    pub mode: Mode,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured seconds (after the warm-up), at most 600.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many measured requests (the duration still bounds the run).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Seconds of unmeasured warm-up.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Admin token, to register the agents the run uses.
    #[arg(long, env = "SIGNET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Agents written by `signet-bench seed` (secret modes), instead of registering new ones.
    #[arg(long)]
    pub agents_file: Option<PathBuf>,
    /// How many agents the requests rotate over.
    #[arg(long, default_value_t = 1)]
    pub agents: usize,
    /// The server's PID, to report its CPU time and peak memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow a target outside the loopback network (only servers you run yourself).
    #[arg(long)]
    pub allow_remote: bool,
    /// The server's TLS listener, for the mtls modes.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    pub tls_url: String,
    /// Do not wait after a 503 with `Retry-After` (by default a connection waits as long as
    /// the server asks, at most 5 s, as a well-behaved client does).
    #[arg(long)]
    pub ignore_retry_after: bool,
    /// CA certificate (PEM) of the TLS listener's certificate, for the mtls modes (e.g.
    /// signet-data/tls/dev-ca.pem).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// Resolves the target and refuses non-loopback addresses unless allowed.
pub fn target(url: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("the target must be an http:// or https:// URL")?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port} has no address"))?;
    let loopback = match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    };
    if !loopback && !allow_remote {
        return Err(format!(
            "{addr} is not a loopback address; pass --allow-remote to load a server you run elsewhere"
        ));
    }
    Ok(addr)
}

/// What each request looks like for a mode.
#[derive(Clone)]
struct Template {
    mode: Mode,
    addr: SocketAddr,
    agents: Arc<Vec<BenchAgent>>,
    token: Option<String>,
    /// The server CA's certificates, for the mtls modes.
    server_roots: Option<Arc<rustls::RootCertStore>>,
    ignore_retry_after: bool,
}

impl Template {
    /// Builds the request for agent number `n`; returns it with the time spent signing.
    fn build(
        &self,
        n: usize,
        signer: Option<&signet_core::token::SigningKey>,
    ) -> (hyper::Request<Full<Bytes>>, Duration) {
        let agent = &self.agents[n % self.agents.len()];
        let mut signing = Duration::ZERO;
        let (path, authorization, body) = match self.mode {
            Mode::SecretBasic => (
                "/oauth2/token",
                Some(agent.basic_header()),
                "grant_type=client_credentials".to_string(),
            ),
            Mode::SecretPost => (
                "/oauth2/token",
                None,
                format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    agent.agent_id,
                    agent.secret.as_deref().unwrap_or_default()
                ),
            ),
            Mode::PrivateKeyJwt => {
                let started = Instant::now();
                let now = signet_core::now();
                let jti: [u8; 16] = signet_core::crypto::random_bytes();
                let claims = serde_json::json!({
                    "iss": agent.agent_id,
                    "sub": agent.agent_id,
                    "aud": format!("http://{}/oauth2/token", self.addr),
                    "iat": now,
                    "exp": now + 60,
                    "jti": signet_core::encoding::b64url(jti),
                });
                let assertion = signer
                    .map(|k| k.sign_assertion(None, claims.to_string().as_bytes()))
                    .unwrap_or_default();
                signing = started.elapsed();
                (
                    "/oauth2/token",
                    None,
                    format!(
                        "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
                    ),
                )
            }
            Mode::Introspect => (
                "/oauth2/introspect",
                Some(agent.basic_header()),
                format!("token={}", self.token.as_deref().unwrap_or_default()),
            ),
            Mode::Mtls
            | Mode::MtlsNewConnection
            | Mode::TlsClientAuth
            | Mode::TlsClientAuthNewConnection => (
                "/oauth2/token",
                None,
                format!("grant_type=client_credentials&client_id={}", agent.agent_id),
            ),
        };
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", "signet-bench");
        if let Some(authorization) = authorization {
            builder = builder.header("authorization", authorization);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default();
        (request, signing)
    }
}

struct Window {
    measure_from: Instant,
    stop_at: Instant,
    limit: Option<u64>,
    issued: AtomicU64,
}

pub async fn run(args: RunArgs) -> Result<(), String> {
    if !(0.1..=MAX_DURATION_SECONDS).contains(&args.duration) {
        return Err(format!(
            "--duration must be between 0.1 and {MAX_DURATION_SECONDS} seconds"
        ));
    }
    if !(1..=MAX_CONNECTIONS).contains(&args.connections) {
        return Err(format!(
            "--connections must be between 1 and {MAX_CONNECTIONS}"
        ));
    }
    if !(0.0..=60.0).contains(&args.warmup) {
        return Err("--warmup must be between 0 and 60 seconds".into());
    }
    let addr = target(&args.url, args.allow_remote)?;
    let kind = args.mode.agent_kind();
    let agents = match (&args.agents_file, &args.admin_token) {
        (Some(path), _) if kind == AgentKind::Secret => setup::read_agents_file(path, args.agents.max(1))?,
        (_, Some(token)) => setup::create_agents(addr, token, args.agents.max(1), kind).await?,
        _ => return Err("pass --admin-token (or SIGNET_ADMIN_TOKEN) so the run can register its agents, or --agents-file".into()),
    };
    if agents.is_empty() {
        return Err("no agents to load with".into());
    }
    let token = match args.mode {
        Mode::Introspect => Some(setup::access_token(addr, &agents[0]).await?),
        _ => None,
    };
    let (addr, server_roots) = if args.mode.is_mtls() {
        let path = args.ca_file.as_ref().ok_or(
            "the mtls modes need --ca-file, the CA of the server's TLS certificate (signet-data/tls/dev-ca.pem)",
        )?;
        (
            target(&args.tls_url, args.allow_remote)?,
            Some(Arc::new(setup::root_store(path)?)),
        )
    } else {
        (addr, None)
    };
    let report = drive(&args, addr, Arc::new(agents), token, server_roots).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Runs the load and builds the report.
pub async fn drive(
    args: &RunArgs,
    addr: SocketAddr,
    agents: Arc<Vec<BenchAgent>>,
    token: Option<String>,
    server_roots: Option<Arc<rustls::RootCertStore>>,
) -> Report {
    let template = Template {
        mode: args.mode,
        addr,
        agents,
        token,
        server_roots,
        ignore_retry_after: args.ignore_retry_after,
    };
    let started = Instant::now();
    let window = Arc::new(Window {
        measure_from: started + Duration::from_secs_f64(args.warmup),
        stop_at: started + Duration::from_secs_f64(args.warmup + args.duration),
        limit: args.requests,
        issued: AtomicU64::new(0),
    });
    let mut workers = Vec::with_capacity(args.connections);
    for worker in 0..args.connections {
        let (template, window) = (template.clone(), window.clone());
        workers.push(tokio::spawn(
            async move { work(worker, template, window).await },
        ));
    }
    tokio::time::sleep_until(window.measure_from.into()).await;
    let cpu_before = args.server_pid.and_then(process::cpu_seconds);
    let mut stats = Vec::with_capacity(workers.len());
    for worker in workers {
        if let Ok(s) = worker.await {
            stats.push(s);
        }
    }
    let measured_until = stats
        .iter()
        .filter_map(|s| s.last_completion)
        .max()
        .unwrap_or(window.measure_from);
    let elapsed = measured_until.saturating_duration_since(window.measure_from);
    let cpu_after = args.server_pid.and_then(process::cpu_seconds);
    let server_cpu = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    let peak_rss = args.server_pid.and_then(process::peak_rss_bytes);
    Report::new(
        args.mode,
        args.connections,
        elapsed,
        stats,
        server_cpu,
        peak_rss,
    )
}

async fn work(worker: usize, template: Template, window: Arc<Window>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let signer = template
        .agents
        .get(worker % template.agents.len())
        .and_then(BenchAgent::signing_key);
    let tls = template.mode.is_mtls().then(|| {
        let agent = &template.agents[worker % template.agents.len()];
        setup::tls_connector(
            template
                .server_roots
                .clone()
                .unwrap_or_else(|| Arc::new(rustls::RootCertStore::empty())),
            agent,
            !template.mode.new_connection_per_request(),
        )
    });
    let tls = match tls {
        Some(Err(e)) => {
            *stats.errors.entry(format!("tls_setup: {e}")).or_default() += 1;
            return stats;
        }
        Some(Ok(connector)) => Some(connector),
        None => None,
    };
    let mut n = worker;
    'connections: while Instant::now() < window.stop_at {
        let connected_at = Instant::now();
        let Ok(stream) = tokio::net::TcpStream::connect(template.addr).await else {
            *stats.errors.entry("connect_failed".into()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handshake = match &tls {
            None => hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map(|(sender, connection)| {
                    tokio::spawn(connection);
                    sender
                })
                .map_err(|_| "handshake_failed"),
            Some(connector) => {
                let name = rustls::pki_types::ServerName::IpAddress(template.addr.ip().into());
                match connector.connect(name, stream).await {
                    Ok(stream) => hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map(|(sender, connection)| {
                            tokio::spawn(connection);
                            sender
                        })
                        .map_err(|_| "handshake_failed"),
                    Err(_) => Err("tls_handshake_failed"),
                }
            }
        };
        let mut sender = match handshake {
            Ok(sender) => sender,
            Err(what) => {
                *stats.errors.entry(what.into()).or_default() += 1;
                continue;
            }
        };
        let one_per_connection = template.mode.new_connection_per_request();
        let mut sent_on_connection = 0u32;
        loop {
            if one_per_connection && sent_on_connection == 1 {
                continue 'connections;
            }
            sent_on_connection += 1;
            let now = Instant::now();
            if now >= window.stop_at {
                break 'connections;
            }
            let measured = now >= window.measure_from;
            if measured
                && let Some(limit) = window.limit
                && window.issued.fetch_add(1, Ordering::Relaxed) >= limit
            {
                break 'connections;
            }
            // Secret modes rotate over the agents; an assertion or a TLS connection is this
            // worker's agent's.
            let agent = if template.mode == Mode::PrivateKeyJwt || template.mode.is_mtls() {
                worker
            } else {
                n
            };
            n = n.wrapping_add(1);
            let (request, signing) = template.build(agent, signer.as_ref());
            let sent = Instant::now();
            let outcome = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(hyper::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    let body = response.into_body().collect().await.map(|b| b.to_bytes());
                    Ok((status, retry_after, body.ok()))
                }
                Err(e) => Err(e),
            };
            // With a connection per request, the handshakes are part of what is measured.
            let latency = if one_per_connection {
                connected_at.elapsed()
            } else {
                sent.elapsed()
            };
            if !measured {
                if outcome.is_err() {
                    continue 'connections;
                }
                continue;
            }
            stats.signing += signing;
            match outcome {
                Ok((status, retry_after, body)) => {
                    stats.record(status, latency);
                    if let Some(wait) = retry_after.filter(|_| !template.ignore_retry_after) {
                        let wait = Duration::from_secs_f64(wait.clamp(0.0, 5.0));
                        let until = (Instant::now() + wait).min(window.stop_at);
                        tokio::time::sleep_until(until.into()).await;
                    }
                    if status != 200 {
                        let code = body
                            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                            .and_then(|v| {
                                v.get("error").and_then(Value::as_str).map(str::to_string)
                            })
                            .unwrap_or_else(|| format!("http_{status}"));
                        *stats.errors.entry(code).or_default() += 1;
                    }
                    stats.last_completion = Some(Instant::now());
                }
                Err(_) => {
                    *stats.errors.entry("connection_error".into()).or_default() += 1;
                    continue 'connections;
                }
            }
        }
    }
    stats
}

/// Errors by code, merged across workers.
pub fn merge_counts(into: &mut HashMap<String, u64>, from: &HashMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}
