//! `signet audit export` and `signet audit tail`: the audit log as JSON lines, oldest first,
//! with the API's filters; tail prints records as they are written. The time range of the API
//! and of `export` ("which agents failed to authenticate in the last hour, and why").

mod common;

use common::{ADMIN_TOKEN, TestAgent, TestApp, signet_bin};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// `signet audit tail` polling every 0.1 s with `filters`, and its output's lines.
fn spawn_tail(
    app: &TestApp,
    filters: &[&str],
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    let mut tail = tokio::process::Command::new(signet_bin())
        .args(["audit", "tail", "--interval", "0.1"])
        .args(filters)
        .env_clear()
        .env("SIGNET_URL", &app.url)
        .env("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let lines = tokio::io::BufReader::new(tail.stdout.take().expect("stdout")).lines();
    (tail, lines)
}

#[tokio::test]
async fn export_and_tail_print_json_lines() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    for _ in 0..3 {
        app.access_token(&agent).await;
    }
    let output = app
        .cli(&[
            "audit",
            "export",
            "--event-type",
            "token_request",
            "--outcome",
            "success",
        ])
        .await;
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l["id"].as_i64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert!(lines.iter().all(|l| l["event_type"] == "token_request"));

    let (mut tail, mut lines) = spawn_tail(&app, &["--event-type", "token_request"]);
    // tail starts after the newest record when it starts: tokens issued before it is up are
    // not printed, so issue one at a time until one is.
    let mut issued = Vec::new();
    let line = loop {
        issued.push(common::claims(&app.access_token(&agent).await)["jti"].clone());
        let wait = std::time::Duration::from_secs(2);
        if let Ok(line) = tokio::time::timeout(wait, lines.next_line()).await {
            break line.expect("read").expect("a line");
        }
        assert!(issued.len() < 10, "tail printed nothing");
    };
    let record: Value = serde_json::from_str(&line).expect("json");
    assert!(issued.contains(&record["jti"]), "{record}");
    let _ = tail.kill().await;
}

/// An unfiltered tail does not print the records of its own polls (each one an admin request),
/// and does print other admin requests.
#[tokio::test]
async fn tail_leaves_out_its_own_polls() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    app.access_token(&agent).await;
    let (mut tail, mut lines) = spawn_tail(&app, &[]);
    // Issue tokens until tail prints one (it starts after the newest record), then ask for
    // the agents list as an operator would, and read until that request is printed.
    let mut printed = Vec::new();
    let mut asked = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if !asked {
            app.access_token(&agent).await;
        }
        let wait = std::time::Duration::from_millis(500);
        while let Ok(line) = tokio::time::timeout(wait, lines.next_line()).await {
            let record: Value =
                serde_json::from_str(&line.expect("read").expect("a line")).expect("json");
            printed.push(record);
        }
        if !asked && printed.iter().any(|r| r["event_type"] == "token_request") {
            app.get_json("/api/v1/agents").await;
            asked = true;
        }
        let theirs = |r: &&Value| r["event_type"] == "admin_request";
        if printed.iter().filter(theirs).count() > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{printed:?}");
    }
    // Several polls a second ran meanwhile; the only admin request printed is the operator's.
    let admin: Vec<&Value> = printed
        .iter()
        .filter(|r| r["event_type"] == "admin_request")
        .collect();
    assert_eq!(admin.len(), 1, "{admin:?}");
    assert_eq!(admin[0]["detail"]["path"], "/api/v1/agents");
    let _ = tail.kill().await;
}

#[tokio::test]
async fn the_log_is_read_by_time_range() {
    let app = TestApp::spawn_with(&[("SIGNET_TESTING_CLOCK", "1")]).await;
    let agent = app.secret_agent().await;
    // A well-formed secret, but another agent's.
    let wrong = TestAgent {
        id: agent.id.clone(),
        secret: app.secret_agent().await.secret,
    };
    // One failure two hours ago (the server's clock moved back), one now.
    app.set_clock_offset(-7200).await;
    let old = app.token(&wrong, "grant_type=client_credentials").await;
    assert_eq!(old.status(), 401);
    app.set_clock_offset(0).await;
    let new = app.token(&wrong, "grant_type=client_credentials").await;
    assert_eq!(new.status(), 401);
    let failures = app
        .audit(&format!("agent_id={}&outcome=failure", agent.id))
        .await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    let (newer, older) = (&failures[0], &failures[1]);
    let time = |r: &Value| r["time"].as_str().expect("time").to_owned();
    let ids = |records: Vec<Value>| records.iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    let base = format!("agent_id={}&outcome=failure", agent.id);
    // `since` is inclusive, `until` exclusive.
    assert_eq!(
        ids(app.audit(&format!("{base}&since={}", time(newer))).await),
        vec![newer["id"].clone()]
    );
    assert_eq!(
        ids(app.audit(&format!("{base}&until={}", time(newer))).await),
        vec![older["id"].clone()]
    );
    assert_eq!(
        ids(app
            .audit(&format!(
                "{base}&since={}&until={}",
                time(older),
                time(newer)
            ))
            .await),
        vec![older["id"].clone()]
    );
    assert_eq!(newer["reason"], "wrong_secret");
    let refused = app
        .admin(reqwest::Method::GET, "/api/v1/audit?since=yesterday")
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 400);

    // The same range from the CLI, as JSON lines.
    let since = time(newer);
    let (code, stdout, stderr) = common::run_signet(
        &[
            "audit",
            "export",
            "--agent-id",
            &agent.id,
            "--outcome",
            "failure",
            "--since",
            &since,
        ],
        [
            ("SIGNET_URL", app.url.as_str()),
            ("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(ids(lines), vec![newer["id"].clone()]);
}
