//! Request ids and the JSON-lines audit sink: one id ties a response (`X-Request-Id`), the
//! server's JSON log line and the audit record together; the sink copies every committed record
//! to a file (resuming after a crash with no gap and no duplicate) or to stdout.

mod common;

use std::time::Duration;

use common::{TestAgent, TestApp, claims};
use serde_json::Value;

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id header")
        .to_string()
}

#[tokio::test]
async fn one_request_id_ties_the_response_the_log_line_and_the_audit_record() {
    let mut app =
        TestApp::spawn_with(&[("SIGNET_LOG_FORMAT", "json"), ("SIGNET_ACCESS_LOG", "true")]).await;
    let agent = app.secret_agent().await;

    let ok = app.token(&agent, "grant_type=client_credentials").await;
    assert_eq!(ok.status(), 200);
    let ok_id = request_id(&ok);
    let body: Value = ok.json().await.expect("json");
    let jti = claims(body["access_token"].as_str().expect("token"))["jti"].clone();
    let records = app.audit(&format!("request_id={ok_id}")).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["event_type"], "token_request");
    assert_eq!(records[0]["jti"], jti);
    assert_eq!(records[0]["request_id"], ok_id.as_str());

    let wrong = TestAgent {
        id: agent.id.clone(),
        secret: signet_core::client_auth::AgentSecret::generate()
            .expose()
            .to_string(),
    };
    let refused = app.token(&wrong, "grant_type=client_credentials").await;
    assert_eq!(refused.status(), 401);
    let refused_id = request_id(&refused);
    assert_ne!(refused_id, ok_id);
    let records = app.audit(&format!("request_id={refused_id}")).await;
    assert_eq!(records[0]["reason"], "wrong_secret");

    // Admin changes carry it too.
    let created = app
        .admin(reqwest::Method::POST, "/api/v1/agents")
        .json(&serde_json::json!({ "name": "tied" }))
        .send()
        .await
        .expect("send");
    let created_id = request_id(&created);
    let records = app.audit(&format!("request_id={created_id}")).await;
    assert_eq!(records[0]["event_type"], "agent_created");

    // A client cannot choose its id: only a trusted proxy's is kept.
    let chosen = app
        .http
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "chosen-by-client")
        .send()
        .await
        .expect("send");
    assert_ne!(request_id(&chosen), "chosen-by-client");

    let (_, log) = app.stop().await;
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines: {log}");
    let access = lines
        .iter()
        .find(|l| l["span"]["request_id"] == ok_id.as_str() && l["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no access log line for {ok_id}: {log}"));
    assert_eq!(access["fields"]["path"], "/oauth2/token");
    assert_eq!(access["fields"]["status"], 200);
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == refused_id.as_str() && l["fields"]["status"] == 401)
    );
    assert!(!log.contains(&agent.secret), "no secret in the log");
}

#[tokio::test]
async fn a_trusted_proxys_request_id_is_kept_if_it_is_plain() {
    let app = TestApp::spawn_with(&[("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let agent = app.secret_agent().await;
    let send = |id: &'static str| {
        app.http
            .post(format!("{}/oauth2/token", app.url))
            .basic_auth(&agent.id, Some(&agent.secret))
            .header("x-request-id", id)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let kept = send("lb-7f3a.42").await.expect("send");
    assert_eq!(request_id(&kept), "lb-7f3a.42");
    assert_eq!(app.audit("request_id=lb-7f3a.42").await.len(), 1);
    let replaced = send("has spaces; and more").await.expect("send");
    assert_ne!(request_id(&replaced), "has spaces; and more");
}

/// Reads the sink file's records.
fn sink_records(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Only whole lines: the server may be appending a batch as the file is read.
    let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a JSON record"))
        .collect()
}

async fn tokens(app: &TestApp, agent: &TestAgent, n: usize) -> Vec<Value> {
    let mut jtis = Vec::new();
    for _ in 0..n {
        jtis.push(claims(&app.access_token(agent).await)["jti"].clone());
    }
    jtis
}

async fn until_in_sink(path: &std::path::Path, jtis: &[Value]) -> Vec<Value> {
    for _ in 0..100 {
        let records = sink_records(path);
        if jtis.iter().all(|j| records.iter().any(|r| &r["jti"] == j)) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not all tokens reached the sink: {:?}", sink_records(path));
}

#[tokio::test]
async fn the_file_sink_copies_every_record_and_resumes_after_a_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("audit.jsonl");
    let app = TestApp::spawn_with(&[("SIGNET_AUDIT_SINK", path.to_str().expect("path"))]).await;
    let agent = app.secret_agent().await;
    let mut jtis = tokens(&app, &agent, 5).await;
    until_in_sink(&path, &jtis).await;

    let app = app.crash_and_restart().await;
    jtis.extend(tokens(&app, &agent, 5).await);
    let records = until_in_sink(&path, &jtis).await;

    // Consecutive ids: nothing skipped, nothing written twice, across the crash.
    let ids: Vec<i64> = records
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    let first = ids[0];
    assert_eq!(ids, (first..first + ids.len() as i64).collect::<Vec<_>>());
    // The same records the API has, field for field.
    let from_api = app.audit("limit=1000").await;
    for record in &records {
        let same = from_api
            .iter()
            .find(|r| r["id"] == record["id"])
            .expect("record in the API");
        assert_eq!(same, record);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the sink file is private");
    }
}

/// Records deleted before the sink copied them (retention while the sink was stopped or
/// behind): the sink says which, and copies on.
#[tokio::test]
async fn records_deleted_before_the_sink_copied_them_are_named_in_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("audit.jsonl");
    let app = TestApp::spawn_with(&[
        ("SIGNET_AUDIT_SINK", path.to_str().expect("path")),
        ("SIGNET_LOG_FORMAT", "json"),
    ])
    .await;
    let agent = app.secret_agent().await;
    let jtis = tokens(&app, &agent, 6).await;
    let copied = until_in_sink(&path, &jtis).await;
    let ids: Vec<i64> = copied
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    let kept = ids[ids.len() - 4];
    let mut app = app
        .restart_after(|stopped| {
            // As if the sink had copied only up to `kept`, and retention then deleted every
            // record up to two after it.
            let lines: Vec<String> = std::fs::read_to_string(&path)
                .expect("sink")
                .lines()
                .filter(|l| {
                    serde_json::from_str::<Value>(l).expect("json")["id"].as_i64() <= Some(kept)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&path, lines.concat()).expect("truncate the sink");
            stopped.execute_sql(&format!(
                "DELETE FROM audit_events WHERE id <= {}",
                kept + 2
            ));
        })
        .await;
    let more = tokens(&app, &agent, 1).await;
    let copied = until_in_sink(&path, &more).await;
    assert!(
        copied.iter().any(|r| r["id"].as_i64() == Some(kept + 3)),
        "copies on after the gap"
    );
    let (_, log) = app.stop().await;
    let warned = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("deleted before the sink copied them"))
                && l["fields"]["from"] == kept + 1
                && l["fields"]["to"] == kept + 2
        });
    assert!(warned, "{log}");
}

#[tokio::test]
async fn the_stdout_sink_prints_one_record_per_line() {
    let app = TestApp::spawn_with(&[("SIGNET_AUDIT_SINK", "stdout")]).await;
    let agent = app.secret_agent().await;
    let jtis = tokens(&app, &agent, 3).await;
    for _ in 0..100 {
        let lines = app.stdout.lock().expect("lock").clone();
        let records: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if jtis.iter().all(|j| records.iter().any(|r| &r["jti"] == j)) {
            assert!(
                records
                    .iter()
                    .all(|r| r["time"].is_string() && r["id"].is_i64())
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "tokens not on stdout: {:?}",
        app.stdout.lock().expect("lock")
    );
}

#[tokio::test]
async fn an_unwritable_sink_file_stops_the_start_with_its_name() {
    let output = std::process::Command::new(common::signet_bin())
        .arg("serve")
        .env_clear()
        .env("SIGNET_LISTEN", "127.0.0.1:0")
        .env("SIGNET_TLS_LISTEN", "off")
        .env("SIGNET_DATA_DIR", tempfile::tempdir().expect("tmp").path())
        .env("SIGNET_AUDIT_SINK", "/nonexistent-dir/audit.jsonl")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent-dir/audit.jsonl"),
        "names the file: {stderr}"
    );
}
