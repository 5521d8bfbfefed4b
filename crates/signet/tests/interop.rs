//! Standard OAuth client libraries work against Signet unchanged. `scripts/test` installs
//! Authlib and sets `SIGNET_REQUIRE_INTEROP=1`, so in CI these tests always run; a plain
//! `cargo test` without Authlib skips them with a visible message.

mod common;

use common::TestApp;
use serde_json::Value;

fn authlib_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var("SIGNET_REQUIRE_INTEROP").is_err(),
            "SIGNET_REQUIRE_INTEROP is set but Python with authlib and requests is missing"
        );
        eprintln!("SKIPPED: Python's authlib is not installed (scripts/test installs it)");
    }
    available
}

#[tokio::test]
async fn authlib_gets_a_token_with_both_secret_forms() {
    if !authlib_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/authlib_client.py"
    );
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .env("SIGNET_URL", &app.url)
        .env("SIGNET_AGENT_ID", &agent.id)
        .env("SIGNET_AGENT_SECRET", &agent.secret)
        .output()
        .await
        .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "read");
    assert_eq!(
        common::claims(token["access_token"].as_str().expect("token"))["sub"],
        agent.id
    );
    let methods: Vec<String> = app
        .audit(&format!("agent_id={}&outcome=success", agent.id))
        .await
        .iter()
        .filter_map(|e| e["method"].as_str().map(str::to_string))
        .collect();
    assert_eq!(methods, ["client_secret_post", "client_secret_basic"]);
}
