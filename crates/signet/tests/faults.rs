//! Fault injection against the real server: the database locked by another process, the disk
//! full under load, a read-only data directory, a damaged signing-key table, and the clock
//! jumping. Each is answered with 503 and `Retry-After`, or with a refusal to start that says what
//! to fix; no acknowledged write is lost and no change is half applied. (A PostgreSQL restart
//! under load is `cluster_outage.rs`.)
//!
//! The disk tests mount a small tmpfs, which needs root: `scripts/test` sets
//! `SIGNET_REQUIRE_FAULT_INJECTION=1` so that they cannot be skipped there.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TestAgent, TestApp, claims, signet_bin};

/// A tmpfs of `megabytes` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(megabytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Some(Self { dir });
        }
        assert!(
            std::env::var("SIGNET_REQUIRE_FAULT_INJECTION").as_deref() != Ok("1"),
            "SIGNET_REQUIRE_FAULT_INJECTION=1 but a tmpfs cannot be mounted (run as root)"
        );
        eprintln!("SKIPPED: mounting a tmpfs needs root (scripts/test runs these tests as root)");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "remount {options}");
    }

    /// Writes zeros into `filler` until the file system is full.
    fn fill(&self) -> PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The disk tests are about the embedded SQLite file; the PostgreSQL pass skips them.
fn on_sqlite() -> bool {
    common::postgres_database().is_none()
}

/// A token request's status, its `Retry-After`, and the token's `jti` when one was issued.
async fn token(app: &TestApp, agent: &TestAgent) -> (u16, Option<String>, Option<String>) {
    let response = app.token(agent, "grant_type=client_credentials").await;
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let jti = body["access_token"]
        .as_str()
        .and_then(|t| claims(t)["jti"].as_str().map(str::to_string));
    (status, retry, jti)
}

async fn regenerate(app: &TestApp, agent_id: &str) -> reqwest::Response {
    app.admin(
        reqwest::Method::POST,
        &format!("/api/v1/agents/{agent_id}/secret/regenerate"),
    )
    .json(&serde_json::json!({}))
    .send()
    .await
    .expect("send")
}

/// After a regenerate that was answered with `status`: either it happened completely (a new
/// secret, the old one refused, an audit record) or not at all (the old secret works, no
/// record). Never the secret changed without its record.
async fn regenerate_was_all_or_nothing(app: &TestApp, agent: &TestAgent, status: u16) {
    let records = app
        .audit(&format!(
            "event_type=agent_secret_regenerated&agent_id={}",
            agent.id
        ))
        .await;
    let (old_secret, _, _) = token(app, agent).await;
    if status == 200 {
        assert_eq!(
            records.len(),
            1,
            "a regenerate that answered 200 is audited"
        );
        assert_eq!(old_secret, 401, "and the old secret is refused");
    } else {
        assert_eq!(
            status, 503,
            "a refused regenerate says the service is unavailable"
        );
        assert_eq!(
            (old_secret, records.len()),
            (200, 0),
            "a refused regenerate changed nothing"
        );
    }
}

#[tokio::test]
async fn a_database_locked_by_another_process_is_answered_with_503_then_recovers() {
    if !on_sqlite() {
        return;
    }
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let mut received = vec![
        token(&app, &agent)
            .await
            .2
            .expect("a token before the lock"),
    ];
    // Another process takes SQLite's write lock for longer than the busy timeout (5 s), and
    // writes under it, so the lock is certainly held when it says so.
    let database = app.data_dir.join("signet.db");
    let mut holder = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             c.execute('CREATE TABLE fault_lock_probe (x)')\n\
             print('locked', flush=True)\n\
             time.sleep(15)\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(&database)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let stdout = holder.stdout.take().expect("stdout");
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut line)
        .await
        .expect("read");
    assert_eq!(line.trim(), "locked");
    // While it holds the lock (15 s): no token without its audit record (the writer gives up
    // after 5 s), and no half regenerate (refused after 5 s more).
    let during = token(&app, &agent).await;
    assert_eq!(
        during.0, 503,
        "a token needs its audit record committed: {during:?}"
    );
    assert!(during.1.is_some(), "503 says when to retry");
    let regenerated = regenerate(&app, &agent.id).await;
    let regenerate_status = regenerated.status().as_u16();
    assert_eq!(
        regenerate_status, 503,
        "a change that cannot be written is refused"
    );
    let body: serde_json::Value = regenerated.json().await.unwrap_or_default();
    holder.wait().await.expect("lock released");
    // Released: the server serves again by itself.
    let current = TestAgent {
        id: agent.id.clone(),
        secret: body["agent_secret"]
            .as_str()
            .unwrap_or(&agent.secret)
            .to_string(),
    };
    let after = token(&app, &current).await;
    assert_eq!(after.0, 200, "served again once the lock is gone");
    received.extend(after.2);
    regenerate_was_all_or_nothing(&app, &agent, regenerate_status).await;
    let audited = app.issued_jtis().await;
    assert!(received.iter().all(|jti| audited.contains(jti)));
}

#[tokio::test]
async fn a_full_disk_is_answered_with_503_and_loses_nothing() {
    if !on_sqlite() {
        return;
    }
    let Some(disk) = Tmpfs::mount(48) else {
        return;
    };
    let app = TestApp::spawn_in(&disk.path().join("data"), &[]).await;
    let agent = app.secret_agent().await;
    let mut received = Vec::new();
    for _ in 0..20 {
        let (status, _, jti) = token(&app, &agent).await;
        assert_eq!(status, 200);
        received.extend(jti);
    }
    let filler = disk.fill();
    // Tokens until the database cannot grow any more (SQLite reuses free pages for a while).
    let mut refused = 0;
    for _ in 0..20_000 {
        let (status, retry, jti) = token(&app, &agent).await;
        match status {
            200 => received.extend(jti),
            503 => {
                assert!(retry.is_some(), "503 says when to retry");
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("a full disk answered {other}"),
        }
    }
    assert_eq!(refused, 5, "a full disk is noticed");
    let regenerated = regenerate(&app, &agent.id).await.status().as_u16();
    // Space again: the server recovers by itself, and everything it acknowledged is there.
    std::fs::remove_file(filler).expect("free the disk");
    let mut recovered = false;
    for _ in 0..50 {
        let (status, _, jti) = token(&app, &agent).await;
        if status == 200 {
            received.extend(jti);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered || regenerated == 200,
        "served again once there is space"
    );
    regenerate_was_all_or_nothing(&app, &agent, regenerated).await;
    let audited = app.issued_jtis().await;
    let lost: Vec<_> = received.iter().filter(|j| !audited.contains(*j)).collect();
    assert!(
        lost.is_empty(),
        "tokens issued without an audit record: {lost:?}"
    );
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["valid"], true, "{report}");
}

/// Runs `signet serve` on `data_dir` and expects it to refuse to start; returns its stderr.
async fn refused_start(data_dir: &Path, database_url: Option<String>) -> String {
    let mut command = tokio::process::Command::new(signet_bin());
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGNET_LISTEN", "127.0.0.1:0")
        .env("SIGNET_TLS_LISTEN", "127.0.0.1:0")
        .env("SIGNET_DATA_DIR", data_dir)
        .env("SIGNET_ADMIN_TOKEN", common::ADMIN_TOKEN);
    if let Some(url) = database_url {
        command.env("SIGNET_DATABASE_URL", url);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("exits in time")
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[tokio::test]
async fn a_read_only_data_directory_stops_the_start_with_what_to_fix() {
    if !on_sqlite() {
        return;
    }
    let Some(disk) = Tmpfs::mount(32) else {
        return;
    };
    let data = disk.path().join("data");
    let mut app = TestApp::spawn_in(&data, &[]).await;
    let agent = app.secret_agent().await;
    app.stop().await;
    disk.remount("ro");
    let stderr = refused_start(&data, None).await;
    assert!(
        stderr.contains("read-only") || stderr.contains("readonly"),
        "{stderr}"
    );
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
    // Writable again: it starts, with everything it had.
    disk.remount("rw");
    let app = TestApp::spawn_in(&data, &[]).await;
    assert_eq!(token(&app, &agent).await.0, 200);
}

#[tokio::test]
async fn a_damaged_signing_key_table_stops_the_start_with_what_to_fix() {
    let mut app = TestApp::spawn().await;
    let database_url = app.database_url();
    app.stop().await;
    let garbage = if database_url.starts_with("postgres") {
        "decode('00ff00ff', 'hex')"
    } else {
        "X'00ff00ff'"
    };
    app.execute_sql(&format!(
        "UPDATE signing_keys SET private_key_sealed = {garbage}"
    ));
    let stderr = refused_start(&app.data_dir, Some(database_url)).await;
    assert!(stderr.contains("signing key"), "{stderr}");
}

#[tokio::test]
async fn clock_jumps_keep_tokens_replays_and_the_audit_chain_right() {
    let app = TestApp::spawn_with(&[("SIGNET_TESTING_CLOCK", "1")]).await;
    let agent = app.secret_agent().await;
    let before = app.access_token(&agent).await;
    // An hour back (a corrected clock): tokens are still issued, the earlier one still holds.
    app.set_clock_offset(-3600).await;
    let during = app.access_token(&agent).await;
    assert_eq!(app.introspect(&before).await["active"], true);
    assert_eq!(app.introspect(&during).await["active"], true);
    // Two days forward: earlier tokens have expired; new ones are issued.
    app.set_clock_offset(2 * 86_400).await;
    assert_eq!(app.introspect(&before).await["active"], false);
    assert_eq!(app.introspect(&during).await["active"], false);
    let after = app.access_token(&agent).await;
    assert_eq!(app.introspect(&after).await["active"], true);
    // The audit chain does not depend on timestamps going forward.
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["valid"], true, "{report}");
}
