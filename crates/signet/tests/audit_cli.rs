//! `signet audit export` and `signet audit tail`: the audit log as JSON lines, oldest first,
//! with the API's filters; tail prints records as they are written.

mod common;

use common::{ADMIN_TOKEN, TestApp, signet_bin};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

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

    let mut tail = tokio::process::Command::new(signet_bin())
        .args([
            "audit",
            "tail",
            "--interval",
            "0.1",
            "--event-type",
            "token_request",
        ])
        .env_clear()
        .env("SIGNET_URL", &app.url)
        .env("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = tokio::io::BufReader::new(tail.stdout.take().expect("stdout")).lines();
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
