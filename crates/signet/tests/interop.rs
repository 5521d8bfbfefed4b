//! Standard OAuth client libraries work against Signet unchanged. `scripts/test` installs
//! Authlib and sets `SIGNET_REQUIRE_INTEROP=1`, so in CI these tests always run; a plain
//! `cargo test` without Authlib skips them with a visible message.

mod common;

use common::TestApp;
use serde_json::Value;

fn authlib_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import authlib, requests, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var("SIGNET_REQUIRE_INTEROP").is_err(),
            "SIGNET_REQUIRE_INTEROP is set but Python with authlib, requests and cryptography is missing"
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

#[tokio::test]
async fn authlib_private_key_jwt_gets_a_token() {
    if !authlib_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let agent = app
        .create_agent(serde_json::json!({ "name": "authlib-jwt", "token_endpoint_auth_method": "private_key_jwt", "scopes": ["read"] }))
        .await;
    let agent_id = agent["agent_id"].as_str().expect("id").to_string();
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent_id}/keys"),
        )
        .json(&serde_json::json!({ "pem": pair.public_key_pem() }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let key_file = app.data_dir.join("authlib-agent.pem");
    std::fs::write(&key_file, pair.serialize_pem()).expect("write");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/authlib_private_key_jwt.py"
    );
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .env("SIGNET_URL", &app.url)
        .env("SIGNET_AGENT_ID", &agent_id)
        .env("SIGNET_AGENT_KEY_FILE", &key_file)
        .output()
        .await
        .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        common::claims(token["access_token"].as_str().expect("token"))["sub"],
        agent_id
    );
    let audit = app
        .audit(&format!("agent_id={agent_id}&outcome=success"))
        .await;
    assert_eq!(audit[0]["method"], "private_key_jwt");
}
