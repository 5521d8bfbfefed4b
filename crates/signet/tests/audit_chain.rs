//! Tamper evidence: every audit record is chained to the previous one by hash; changing,
//! removing or truncating records is detected by `signet audit verify`, which names the first
//! broken record (through the server's API, or in the configured database with the server
//! stopped); an anchor (a head an earlier check printed) also catches a log cut short with its
//! head moved back; retention keeps the rest verifiable from a checkpoint.

mod common;

use common::{ADMIN_TOKEN, TestApp, run_signet};
use serde_json::json;

async fn verify(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let env = [
        ("SIGNET_URL", app.url.as_str()),
        ("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    run_signet(&[&["audit", "verify"], args].concat(), env).await
}

/// Runs SQL against the server's database behind its back, as an intruder with access would.
fn tamper(app: &TestApp, sql: &str) {
    app.execute_sql(sql);
}

async fn busy_log(app: &TestApp) {
    let agent = app.secret_agent().await;
    for _ in 0..5 {
        app.access_token(&agent).await;
    }
}

#[tokio::test]
async fn a_changed_record_is_named() {
    let app = TestApp::spawn().await;
    busy_log(&app).await;
    let (code, stdout, stderr) = verify(&app, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("audit log intact"), "{stdout}");
    // A log begun by this version is keyed from its first record.
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["unkeyed"], json!(0), "{report}");
    assert_eq!(report["valid"], json!(true), "{report}");
    // Someone rewrites where a request came from.
    tamper(
        &app,
        "UPDATE audit_events SET source = '10.9.9.9' WHERE id = 3",
    );
    let (code, _, stderr) = verify(&app, &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("breaks at record 3"), "{stderr}");
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["valid"], json!(false));
    assert_eq!(report["first_broken_id"], json!(3));
}

/// `signet audit verify` in the configured database, with no server to ask (the environment of
/// `signet serve`: data directory, database URL; no `SIGNET_URL`).
async fn verify_in_place(
    data_dir: &std::path::Path,
    env: &[(String, String)],
    args: &[&str],
) -> (i32, String, String) {
    let database = env
        .iter()
        .filter(|(k, _)| k == "SIGNET_DATABASE_URL" || k == "SIGNET_MASTER_KEY")
        .cloned();
    let env = database.chain([("SIGNET_DATA_DIR".into(), data_dir.display().to_string())]);
    run_signet(&[&["audit", "verify"], args].concat(), env).await
}

#[tokio::test]
async fn verify_checks_the_configured_database_with_the_server_stopped() {
    let mut app = TestApp::spawn().await;
    busy_log(&app).await;
    app.stop().await;
    let env: Vec<(String, String)> = app.env_map().into_iter().collect();
    let (code, stdout, stderr) = verify_in_place(&app.data_dir, &env, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("audit log intact"), "{stdout}");
    let head = stdout
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .expect("the head is printed")
        .to_owned();
    tamper(
        &app,
        "UPDATE audit_events SET user_agent = 'innocent/1.0' WHERE id = 3",
    );
    let (code, _, stderr) = verify_in_place(&app.data_dir, &env, &[]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("breaks at record 3"), "{stderr}");
    let (code, stdout, _) =
        verify_in_place(&app.data_dir, &env, &["--json", "--anchor", &head]).await;
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["valid"], json!(false), "{report}");
    assert_eq!(report["first_broken_id"], json!(3), "{report}");
    let (code, _, stderr) = verify_in_place(&app.data_dir, &env, &["--anchor", "nonsense"]).await;
    assert_eq!(code, 6, "a malformed anchor is refused: {stderr}");
    // Another master key is not mistaken for tampering.
    let mut wrong_key = env.clone();
    wrong_key.push((
        "SIGNET_MASTER_KEY".into(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    ));
    let (code, _, stderr) = verify_in_place(&app.data_dir, &wrong_key, &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("SIGNET_MASTER_KEY"), "{stderr}");
    assert!(!stderr.contains("tampered"), "{stderr}");

    // Somewhere with no database: said plainly, and nothing is created there.
    let empty = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = verify_in_place(empty.path(), &[], &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no database at"), "{stderr}");
    assert_eq!(std::fs::read_dir(empty.path()).expect("dir").count(), 0);
    // An empty file where the database should be is not given a schema (nor called intact).
    std::fs::copy(
        app.data_dir.join("master.key"),
        empty.path().join("master.key"),
    )
    .expect("copy");
    std::fs::write(empty.path().join("signet.db"), b"").expect("write");
    let (code, stdout, stderr) = verify_in_place(empty.path(), &[], &[]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("not a Signet database"), "{stderr}");
    let size = std::fs::metadata(empty.path().join("signet.db"))
        .expect("meta")
        .len();
    assert_eq!(size, 0, "nothing written");
}

#[tokio::test]
async fn removed_records_are_detected_in_the_middle_and_at_the_end() {
    let app = TestApp::spawn().await;
    busy_log(&app).await;
    tamper(&app, "DELETE FROM audit_events WHERE id = 4");
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["first_broken_id"], json!(5), "{report}");

    let app = TestApp::spawn().await;
    busy_log(&app).await;
    let last = app.get_json("/api/v1/audit?limit=1").await["items"][0]["id"]
        .as_i64()
        .expect("id");
    tamper(&app, &format!("DELETE FROM audit_events WHERE id = {last}"));
    // The verification request is itself on record (admin_request), right after the gap: it
    // is the first record whose chain does not hold.
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["first_broken_id"], json!(last + 1), "{report}");
    // New records after the gap do not hide it.
    busy_log(&app).await;
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["valid"], json!(false), "{report}");
}

/// The one change the chain alone cannot show: records removed from the end with the chain head
/// moved back to the new last record, so that the next record chains on. The head printed by an
/// earlier check, kept elsewhere, shows it.
#[tokio::test]
async fn a_log_cut_short_with_its_head_moved_back_falls_short_of_its_anchor() {
    let app = TestApp::spawn().await;
    busy_log(&app).await;
    let (code, stdout, stderr) = verify(&app, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let anchor = stdout
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .expect("the head is printed")
        .to_string();
    let anchor_id: i64 = anchor
        .split(':')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("ID:HASH");
    busy_log(&app).await;
    let (code, stdout, stderr) = verify(&app, &["--anchor", &anchor]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("still reaches {anchor}")),
        "{stdout}"
    );
    // Every record read back carries its hash: a copy kept elsewhere is an anchor too.
    let record = &app.get_json("/api/v1/audit?limit=1").await["items"][0];
    let exported = format!(
        "{}:{}",
        record["id"],
        record["hash"].as_str().expect("hash")
    );
    let (code, stdout, stderr) = verify(&app, &["--anchor", &exported]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("still reaches"), "{stdout}");

    let keep = anchor_id - 5;
    tamper(&app, &format!("DELETE FROM audit_events WHERE id > {keep}"));
    tamper(
        &app,
        &format!(
            "UPDATE audit_chain_head SET last_id = {keep}, hash = (SELECT hash FROM audit_events WHERE id = {keep}) WHERE id = 1"
        ),
    );
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(
        report["valid"],
        json!(true),
        "the chain alone cannot see it: {report}"
    );
    let (code, _, stderr) = verify(&app, &["--anchor", &anchor]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the chain breaks at record"), "{stderr}");
    let report = app
        .get_json(&format!("/api/v1/audit/verify?anchor={anchor}"))
        .await;
    assert_eq!(report["valid"], json!(false), "{report}");
    let broken = report["first_broken_id"].as_i64().expect("named");
    assert!(keep < broken && broken <= anchor_id, "{report}");

    // An anchor that is not one gets a clear 400.
    for bad in ["12", "12:abc", "x:y"] {
        let response = app
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/audit/verify?anchor={bad}"),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400, "{bad}");
        let problem: serde_json::Value = response.json().await.expect("problem");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("ID:HASH"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn retention_keeps_the_chain_verifiable_from_a_checkpoint() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_AUDIT_RETENTION_DAYS", "1"),
        ("SIGNET_HOUSEKEEPING_SECONDS", "1"),
        ("SIGNET_SIGNING_KEY_ROTATION_DAYS", "0"),
    ])
    .await;
    busy_log(&app).await;
    // Token requests only: each admin request (these listings too) adds a record of its own.
    let listing = "/api/v1/audit?event_type=token_request&limit=1000";
    let before = app.get_json(listing).await["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(before >= 5);
    let old_head = app.get_json("/api/v1/audit/verify").await["head"]
        .as_str()
        .expect("head")
        .to_string();
    busy_log(&app).await;
    // Two days later the old records are deleted; new ones keep the chain going.
    app.set_clock_offset(2 * 86_400).await;
    let mut remaining = before;
    for _ in 0..100 {
        remaining = app.get_json(listing).await["items"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default();
        if remaining < before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(remaining < before, "old records were pruned");
    busy_log(&app).await;
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["valid"], json!(true), "{report}");
    assert!(report["checkpoint_id"].is_number(), "{report}");
    assert!(report["checked"].as_u64().unwrap_or_default() >= 6);
    // An anchor among the deleted records cannot be checked, and the report says so.
    let report = app
        .get_json(&format!("/api/v1/audit/verify?anchor={old_head}"))
        .await;
    assert_eq!(report["valid"], json!(true), "{report}");
    assert_eq!(report["anchor_checked"], json!(false), "{report}");
}
