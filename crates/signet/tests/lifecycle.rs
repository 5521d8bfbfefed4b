//! Start, restart and stop: first start creates everything, a restart keeps agents, keys and
//! audit records, SIGTERM drains in-flight requests, and bad configuration says what to fix.

mod common;

use std::time::Duration;

use common::{TestApp, signet_bin};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn restart_keeps_agents_keys_and_audit_records() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let token = app.access_token(&agent).await;
    let jwks_before: Value = app
        .http
        .get(format!("{}/oauth2/jwks", app.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let audit_before = app.audit("limit=1000").await.len();

    let app = app.restart().await;
    let jwks_after: Value = app
        .http
        .get(format!("{}/oauth2/jwks", app.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        jwks_before, jwks_after,
        "the signing key survives a restart"
    );
    assert_eq!(
        app.access_token(&agent).await.split('.').next(),
        token.split('.').next(),
        "same key, same header"
    );
    let audit_after = app.audit("limit=1000").await;
    assert!(
        audit_after.len() > audit_before,
        "records from before the restart are kept"
    );
    assert!(
        audit_after
            .iter()
            .any(|e| e["jti"] == common::claims(&token)["jti"])
    );
}

#[tokio::test]
async fn first_start_creates_the_data_dir_and_prints_its_secrets_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("fresh");
    let run = |data: std::path::PathBuf| async move {
        let mut child = tokio::process::Command::new(signet_bin())
            .arg("serve")
            .env_clear()
            .env("SIGNET_LISTEN", "127.0.0.1:0")
            .env("SIGNET_TLS_LISTEN", "off")
            .env("SIGNET_DATA_DIR", &data)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("admin token") && !text.contains("Admin token") {
            let n = tokio::time::timeout(Duration::from_secs(20), stdout.read(&mut buf))
                .await
                .expect("output")
                .expect("read");
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(n) = tokio::time::timeout(Duration::from_millis(200), stdout.read(&mut buf)).await
        {
            text.push_str(&String::from_utf8_lossy(&buf[..n.unwrap_or(0)]));
        }
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().expect("pid").to_string())
            .status();
        let status = child.wait().await.expect("wait");
        (status, text)
    };
    let (status, first) = run(data.clone()).await;
    assert!(status.success());
    let token_line = first
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("signet_admin_"))
        .expect("admin token printed");
    assert_eq!(
        first.matches(token_line).count(),
        1,
        "printed once: {first}"
    );
    // So is the console's generated `admin` password.
    let password = first
        .lines()
        .skip_while(|l| !l.contains("as `admin` with this password"))
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("with this password"))
        .expect("console password printed")
        .to_owned();
    assert!(password.len() >= 12, "{password}");
    assert_eq!(first.matches(&password).count(), 1, "printed once: {first}");
    assert!(data.join("signet.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .expect("master key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, second) = run(data).await;
    assert!(
        !second.contains(token_line),
        "the admin token is printed only once"
    );
    assert!(
        !second.contains(&password),
        "the console password is printed only once"
    );
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_request() {
    let mut app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let body = "grant_type=client_credentials";
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", agent.id, agent.secret))
    };
    let address = app.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The request is in flight (its body not yet sent) when the server is told to stop.
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(app.pid().to_string())
        .status();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stream.write_all(body.as_bytes()).await.expect("write body");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answer")
    .expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"));
    let (status, log) = app.stop().await;
    assert!(status.success(), "clean exit: {status}\n{log}");
    assert!(log.contains("SIGTERM"));
}

#[tokio::test]
async fn bad_configuration_says_what_to_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cases: &[(&str, &str, &str)] = &[
        (
            "SIGNET_TOKEN_SIGNING_ALG",
            "HS256",
            "SIGNET_TOKEN_SIGNING_ALG",
        ),
        ("SIGNET_LISTEN", "not-an-address", "SIGNET_LISTEN"),
        (
            "SIGNET_ACCESS_TOKEN_TTL",
            "forever",
            "SIGNET_ACCESS_TOKEN_TTL",
        ),
        ("SIGNET_MASTER_KEY", "too-short", "SIGNET_MASTER_KEY"),
        (
            "SIGNET_ADMIN_TOKEN_FILE",
            "/nonexistent/token",
            "SIGNET_ADMIN_TOKEN_FILE",
        ),
    ];
    for (name, value, expected) in cases {
        let output = tokio::process::Command::new(signet_bin())
            .arg("serve")
            .env_clear()
            .env("SIGNET_LISTEN", "127.0.0.1:0")
            .env("SIGNET_TLS_LISTEN", "off")
            .env("SIGNET_DATA_DIR", tmp.path())
            .env(name, value)
            .output()
            .await
            .expect("run");
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let config = tmp.path().join("signet.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nmystery_setting = 1\n").expect("write");
    let output = tokio::process::Command::new(signet_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env_clear()
        .env("SIGNET_DATA_DIR", tmp.path())
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("mystery_setting"));
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_with_a_clear_message() {
    let mut app = TestApp::spawn().await;
    app.stop().await;
    let output = tokio::process::Command::new(signet_bin())
        .arg("serve")
        .env_clear()
        .env("SIGNET_LISTEN", "127.0.0.1:0")
        .env("SIGNET_TLS_LISTEN", "off")
        .env("SIGNET_DATA_DIR", &app.data_dir)
        .env("SIGNET_DATABASE_URL", app.database_url())
        .env(
            "SIGNET_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SIGNET_MASTER_KEY"));
}

/// `signet migrate` prepares the database `serve` then runs on, settings given as files
/// (`SIGNET_DATABASE_URL_FILE`, `SIGNET_ADMIN_PASSWORD_FILE`) included; a second migrate
/// changes nothing.
#[tokio::test]
async fn migrate_prepares_the_database_serve_then_uses() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let database = tmp.path().join("elsewhere.db");
    let url_file = tmp.path().join("database-url");
    std::fs::write(&url_file, format!("sqlite://{}\n", database.display())).expect("write");
    let password_file = tmp.path().join("console-password");
    std::fs::write(&password_file, "a-password-from-a-file\n").expect("write");
    for _ in 0..2 {
        let env = [
            ("SIGNET_DATA_DIR", &data),
            ("SIGNET_DATABASE_URL_FILE", &url_file),
        ];
        let (code, stdout, stderr) = common::run_signet(&["migrate"], env).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("database is up to date"));
        assert!(database.exists(), "the database named in the file");
        assert!(!data.join("signet.db").exists(), "not the default one");
    }
    let url_file = url_file.to_str().expect("path");
    let password_file = password_file.to_str().expect("path");
    let app = TestApp::spawn_in(
        &data,
        &[
            ("SIGNET_DATABASE_URL_FILE", url_file),
            ("SIGNET_ADMIN_PASSWORD_FILE", password_file),
        ],
    )
    .await;
    let agent = app.secret_agent().await;
    app.access_token(&agent).await;
    let no_redirects = common::no_redirects();
    let sign_in = |password: &'static str| {
        no_redirects
            .post(format!("{}/console/login", app.url))
            .form(&[("username", "admin"), ("password", password)])
            .send()
    };
    let refused = sign_in("not-the-password").await.expect("send");
    assert_eq!(refused.status(), 401);
    let signed_in = sign_in("a-password-from-a-file").await.expect("send");
    assert_eq!(
        signed_in.status(),
        303,
        "the password from the file signs in"
    );
    assert!(signed_in.headers().contains_key("set-cookie"));
}
