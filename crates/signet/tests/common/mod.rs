//! `TestApp`: spawns the real `signet` binary on port 0 with a fresh data directory, and talks
//! to it over real HTTP. Each test gets its own server and database.

#![allow(dead_code)]

pub mod jwt;
pub mod pki;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";

pub fn signet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_signet")
}

/// Runs `signet ARGS` with only `env` set; its exit code, stdout and stderr.
pub async fn run_signet<K, V>(
    args: &[&str],
    env: impl IntoIterator<Item = (K, V)>,
) -> (i32, String, String)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let output = tokio::process::Command::new(signet_bin())
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .await
        .expect("run signet");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub struct TestApp {
    pub url: String,
    /// The TLS listener's base URL (`https://127.0.0.1:PORT`).
    pub tls_url: Option<String>,
    /// `SIGNET_ISSUER` if the test set it, else the URL.
    pub issuer: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    /// Lines the server wrote to stdout after its start banner.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    child: Option<Child>,
    stderr: Option<tokio::task::JoinHandle<String>>,
    _tmp: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
}

/// With `SIGNET_TEST_DATABASE=postgres` (the second pass of `scripts/test`), every test server
/// runs on a fresh database of the PostgreSQL server at `SIGNET_TEST_POSTGRES_URL`.
pub fn postgres_database() -> Option<String> {
    if std::env::var("SIGNET_TEST_DATABASE").as_deref() != Ok("postgres") {
        return None;
    }
    Some(
        new_postgres_database()
            .expect("SIGNET_TEST_DATABASE=postgres needs SIGNET_TEST_POSTGRES_URL"),
    )
}

/// A fresh database on the PostgreSQL server at `SIGNET_TEST_POSTGRES_URL`; `None` (after
/// saying so) without one, unless `SIGNET_REQUIRE_POSTGRES=1` (set by `scripts/test`).
pub fn new_postgres_database() -> Option<String> {
    let Some(admin) = std::env::var("SIGNET_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("SIGNET_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "SIGNET_REQUIRE_POSTGRES=1 but SIGNET_TEST_POSTGRES_URL is not set"
        );
        // Written to the process's stderr itself, past the test harness's capture: visible in a
        // plain `cargo test`.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: no PostgreSQL server (set SIGNET_TEST_POSTGRES_URL, or run scripts/test)\n",
        );
        return None;
    };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "signet_it_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    run_psql(&admin, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}"))
}

/// The result of one query, as psql prints it unaligned (`-tA`): one line per row.
pub fn psql_query(url: &str, sql: &str) -> String {
    let output = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("run psql");
    assert!(output.status.success(), "psql: {sql}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn run_psql(url: &str, sql: &str) {
    let status = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .status()
        .expect("run psql");
    assert!(status.success(), "psql: {sql}");
}

/// An agent registered through the admin API.
#[derive(Debug, Clone)]
pub struct TestAgent {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Spawns with extra `SIGNET_*` variables.
    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env.iter().any(|(k, _)| k == "SIGNET_DATABASE_URL")
            && let Some(url) = postgres_database()
        {
            env.push(("SIGNET_DATABASE_URL".into(), url));
        }
        let mut app = Self::start(&data_dir, &env).await;
        app._tmp = Some(tmp);
        app
    }

    /// Spawns on `data_dir` (which the caller owns, e.g. on a mounted file system), with extra
    /// `SIGNET_*` variables.
    pub async fn spawn_in(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start(data_dir, &env).await
    }

    async fn start(data_dir: &Path, env: &[(String, String)]) -> Self {
        // The test's own HTTP client uses rustls with aws-lc-rs, as the server does.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut command = Command::new(signet_bin());
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIGNET_LISTEN", "127.0.0.1:0")
            .env("SIGNET_TLS_LISTEN", "127.0.0.1:0")
            .env("SIGNET_DATA_DIR", data_dir)
            .env("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SIGNET_LOG", "info")
            // Refusal tests send many bad requests from one address; tests of brute-force
            // protection set their own threshold.
            .env("SIGNET_LOCKOUT_THRESHOLD", "100000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn signet");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let (url, tls_url) = tokio::time::timeout(Duration::from_secs(30), async {
            let mut tls_url = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("signet: mtls listening on ") {
                    tls_url = Some(url.trim().to_string());
                }
                if let Some(url) = line.strip_prefix("signet: listening on ") {
                    return (url.trim().to_string(), tls_url);
                }
            }
            (String::new(), None)
        })
        .await
        .expect("server started in time");
        if url.is_empty() {
            let status = child.wait().await.expect("wait");
            let log = stderr.await.unwrap_or_default();
            panic!("signet exited before listening ({status}):\n{log}");
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        let stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let kept = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().expect("lock").push(line);
            }
        });
        let issuer = env
            .iter()
            .find(|(k, _)| k == "SIGNET_ISSUER")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| url.clone());
        Self {
            url,
            tls_url,
            issuer,
            data_dir: data_dir.to_path_buf(),
            http: reqwest::Client::new(),
            stdout,
            child: Some(child),
            stderr: Some(stderr),
            _tmp: None,
            env: env.to_vec(),
        }
    }

    /// Stops the server with SIGTERM and waits; returns its exit status and stderr.
    pub async fn stop(&mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("pid");
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("exit in time")
            .expect("wait");
        let log = self
            .stderr
            .take()
            .expect("stderr")
            .await
            .unwrap_or_default();
        (status, log)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).expect("running")
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and starts a new one on the
    /// same data directory.
    pub async fn crash_and_restart(mut self) -> Self {
        let mut child = self.child.take().expect("running");
        let _ = child.start_kill();
        let _ = child.wait().await;
        let mut next = Self::start(&self.data_dir, &self.env).await;
        next._tmp = self._tmp.take();
        next
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(self) -> Self {
        self.restart_after(|_| {}).await
    }

    /// Stops the server, runs `meanwhile` on its files, and starts a new one on the same data
    /// directory.
    pub async fn restart_after(mut self, meanwhile: impl FnOnce(&Self)) -> Self {
        self.stop().await;
        meanwhile(&self);
        let mut next = Self::start(&self.data_dir, &self.env).await;
        next._tmp = self._tmp.take();
        next
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// Moves the server's clock (the server must run with `SIGNET_TESTING_CLOCK=1`).
    /// Lifts a brute-force lock through the admin API; the response status.
    pub async fn lift_lock(&self, kind: &str, key: &str) -> u16 {
        self.admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/lockouts/{kind}/{key}"),
        )
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
    }

    pub async fn set_clock_offset(&self, seconds: i64) {
        let response = self
            .admin(reqwest::Method::PUT, "/api/v1/testing/clock")
            .json(&json!({ "offset_seconds": seconds }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "is SIGNET_TESTING_CLOCK=1 set?");
    }

    /// GET an admin API path and read the JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }

    pub async fn create_agent(&self, body: Value) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/api/v1/agents")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 201, "create agent");
        response.json().await.expect("json")
    }

    /// A `client_secret_basic` agent with scopes `read write` and audience `https://api.example`.
    pub async fn secret_agent(&self) -> TestAgent {
        let agent = self
            .create_agent(json!({ "name": "test-agent", "scopes": ["read", "write"], "audiences": ["https://api.example"] }))
            .await;
        TestAgent {
            id: agent["agent_id"].as_str().expect("id").to_string(),
            secret: agent["agent_secret"].as_str().expect("secret").to_string(),
        }
    }

    /// POSTs a form to `path` with optional Basic credentials.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some((id, secret)) = basic {
            request = request.header(
                "authorization",
                format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
            );
        }
        request.send().await.expect("send")
    }

    /// Gets a token with `client_secret_basic`; returns the response.
    pub async fn token(&self, agent: &TestAgent, form: &str) -> reqwest::Response {
        self.post_form("/oauth2/token", Some((&agent.id, &agent.secret)), form)
            .await
    }

    /// Gets a token and returns the access token; panics on failure.
    pub async fn access_token(&self, agent: &TestAgent) -> String {
        let response = self.token(agent, "grant_type=client_credentials").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_string()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/oauth2/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// Audit records matching the query string (newest first).
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let response = self
            .admin(reqwest::Method::GET, &format!("/api/v1/audit?{query}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Like [`Self::audit`], for records written off the request path: asks again (for up to
    /// 5 s) until at least `at_least` match.
    pub async fn audit_eventually(&self, query: &str, at_least: usize) -> Vec<Value> {
        let mut records = Vec::new();
        for _ in 0..100 {
            records = self.audit(query).await;
            if records.len() >= at_least {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        records
    }

    /// The reason of the newest token-request audit record for `agent_id`.
    pub async fn last_token_reason(&self, agent_id: &str) -> Option<String> {
        let items = self
            .audit(&format!(
                "event_type=token_request&agent_id={agent_id}&limit=1"
            ))
            .await;
        items
            .first()
            .and_then(|e| e["reason"].as_str())
            .map(str::to_string)
    }

    pub async fn set_status(&self, agent_id: &str, status: &str) {
        let response = self
            .admin(
                reqwest::Method::PATCH,
                &format!("/api/v1/agents/{agent_id}"),
            )
            .json(&json!({ "status": status }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
    }

    /// The `jti` of every token the audit log records as issued.
    pub async fn issued_jtis(&self) -> std::collections::HashSet<String> {
        let mut audited = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path =
                "/api/v1/audit?event_type=token_request&outcome=success&limit=1000".to_string();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get_json(&path).await;
            for item in page["items"].as_array().into_iter().flatten() {
                if let Some(jti) = item["jti"].as_str() {
                    audited.insert(jti.to_string());
                }
            }
            cursor = page["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return audited;
            }
        }
    }

    /// Runs the `signet` CLI against this server as an operator with the bootstrap token.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(signet_bin())
            .args(args)
            .env_clear()
            .env("SIGNET_URL", &self.url)
            .env("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .await
            .expect("run signet")
    }

    /// The server's database URL.
    pub fn database_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "SIGNET_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("signet.db").display()))
    }

    /// The `/metrics` text exposition.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Runs SQL against the server's database behind its back, as an intruder with access to
    /// the database would (psql, or Python's sqlite3 for the SQLite file).
    pub fn execute_sql(&self, sql: &str) {
        let url = self.database_url();
        match url.strip_prefix("sqlite://") {
            None => run_psql(&url, sql),
            Some(path) => {
                let status = std::process::Command::new("python3")
                    .args([
                        "-c",
                        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
                        path,
                        sql,
                    ])
                    .status()
                    .expect("python3");
                assert!(status.success(), "{sql}");
            }
        }
    }

    pub fn env_map(&self) -> HashMap<String, String> {
        self.env.iter().cloned().collect()
    }
}

/// Decodes a JWT's payload without verifying it (for assertions on claims).
/// An HTTP client that does not follow redirects (to see a console sign-in's 303 and cookie).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}
