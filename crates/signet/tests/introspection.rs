//! Introspection (RFC 7662) and revocation (RFC 7009): valid, expired, revoked, disabled-agent
//! and deleted-agent tokens, and who may revoke what.

mod common;

use common::{TestAgent, TestApp};
use serde_json::{Value, json};
use signet_core::crypto::MasterKey;
use signet_core::token::{SigningAlgorithm, SigningKey};
use signet_store::Store;

/// Signs `claims` with the server's own active key, read from its database with its master
/// key, to make tokens a test cannot get from the token endpoint (e.g. already expired).
async fn sign_with_server_key(app: &TestApp, claims: &Value) -> String {
    let master = std::fs::read_to_string(app.data_dir.join("master.key")).expect("master key");
    let master = MasterKey::from_base64(&master).expect("valid");
    let store = Store::open(&app.database_url(), master.audit_key())
        .await
        .expect("open");
    let row = store
        .signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .find(|k| k.status == "active")
        .expect("active key");
    let pkcs8 = master
        .open(row.kid.as_bytes(), &row.private_key_sealed)
        .expect("unseal");
    let alg: SigningAlgorithm = row.alg.parse().expect("alg");
    let key = SigningKey::from_pkcs8(alg, &pkcs8).expect("key");
    store.close().await;
    key.sign_jws(&serde_json::to_vec(claims).expect("json"))
}

#[tokio::test]
async fn introspection_of_valid_expired_revoked_and_disabled_tokens() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let token = app.access_token(&agent).await;

    let active = app.introspect(&token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], agent.id);
    assert_eq!(active["sub"], agent.id);
    assert_eq!(active["scope"], "read write");
    assert_eq!(active["iss"], app.url);
    assert_eq!(active["token_type"], "Bearer");

    // Expired: a genuine server signature, but `exp` in the past.
    let now = signet_core::now();
    let mut expired = common::claims(&token);
    expired["iat"] = json!(now - 700);
    expired["nbf"] = json!(now - 700);
    expired["exp"] = json!(now - 100);
    expired["jti"] = json!("expired-token-jti");
    let expired = sign_with_server_key(&app, &expired).await;
    assert_eq!(app.introspect(&expired).await, json!({ "active": false }));

    // A token from another issuer or signed by another key is not active.
    let mut foreign = common::claims(&token);
    foreign["iss"] = json!("https://evil.example");
    assert_eq!(
        app.introspect(&sign_with_server_key(&app, &foreign).await)
            .await["active"],
        false
    );
    let (other_key, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
    let forged = other_key.sign_jws(&serde_json::to_vec(&common::claims(&token)).expect("json"));
    assert_eq!(app.introspect(&forged).await["active"], false);
    assert_eq!(app.introspect("not-a-jwt").await["active"], false);

    // Disabled agent: its live tokens turn inactive at once, and active again when re-enabled.
    app.set_status(&agent.id, "disabled").await;
    assert_eq!(app.introspect(&token).await["active"], false);
    app.set_status(&agent.id, "active").await;
    assert_eq!(app.introspect(&token).await["active"], true);

    // Revoked by the agent itself.
    let response = app
        .post_form(
            "/oauth2/revoke",
            Some((&agent.id, &agent.secret)),
            &format!("token={token}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&token).await["active"], false);

    let reasons: Vec<Value> = app
        .audit("event_type=introspection&limit=50")
        .await
        .iter()
        .map(|e| e["detail"]["inactive_reason"].clone())
        .collect();
    for reason in [
        "expired",
        "wrong_issuer",
        "unknown_key",
        "malformed",
        "agent_disabled",
        "revoked",
    ] {
        assert!(reasons.contains(&json!(reason)), "{reason} in {reasons:?}");
    }
}

#[tokio::test]
async fn agents_introspect_and_revoke_with_their_credentials() {
    let app = TestApp::spawn().await;
    let alice = app.secret_agent().await;
    let bob = app.secret_agent().await;
    let alice_token = app.access_token(&alice).await;

    // A resource server registered as an agent may introspect.
    let response = app
        .post_form(
            "/oauth2/introspect",
            Some((&bob.id, &bob.secret)),
            &format!("token={alice_token}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("json")["active"],
        true
    );

    // Bad caller credentials: 401 invalid_client, no answer about the token.
    let wrong = TestAgent {
        id: bob.id.clone(),
        secret: alice.secret.clone(),
    };
    let response = app
        .post_form(
            "/oauth2/introspect",
            Some((&wrong.id, &wrong.secret)),
            &format!("token={alice_token}"),
        )
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"signet\", charset=\"UTF-8\""
    );
    let response = app
        .post_form("/oauth2/introspect", None, &format!("token={alice_token}"))
        .await;
    assert_eq!(response.status(), 401);
    // A refused bearer (admin) token is challenged as one (RFC 6750 §3.1), at both endpoints.
    for endpoint in ["/oauth2/introspect", "/oauth2/revoke"] {
        let response = app
            .http
            .post(format!("{}{endpoint}", app.url))
            .bearer_auth("signet_at_not-a-real-token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={alice_token}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401, "{endpoint}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"signet\", error=\"invalid_token\"",
            "{endpoint}"
        );
    }

    // Bob cannot revoke Alice's token; an operator can.
    let response = app
        .post_form(
            "/oauth2/revoke",
            Some((&bob.id, &bob.secret)),
            &format!("token={alice_token}"),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"],
        "unauthorized_client"
    );
    assert_eq!(app.introspect(&alice_token).await["active"], true);
    let response = app
        .admin(reqwest::Method::POST, "/oauth2/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={alice_token}&token_type_hint=access_token"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&alice_token).await["active"], false);

    // Revoking garbage is a quiet 200 (RFC 7009 §2.2).
    let response = app
        .post_form(
            "/oauth2/revoke",
            Some((&bob.id, &bob.secret)),
            "token=garbage",
        )
        .await;
    assert_eq!(response.status(), 200);

    let revocations = app.audit("event_type=revocation&outcome=success").await;
    assert!(revocations.iter().any(|e| e["actor"] == "admin-token"));
}

#[tokio::test]
async fn deleting_an_agent_deactivates_its_tokens() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let token = app.access_token(&agent).await;
    let response = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/agents/{}", agent.id),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    assert_eq!(app.introspect(&token).await["active"], false);
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("unknown_agent")
    );
}

#[tokio::test]
async fn revoking_all_of_an_agents_tokens_keeps_new_ones_working() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let other = app.secret_agent().await;
    let first = app.access_token(&agent).await;
    let second = app.access_token(&agent).await;
    let unrelated = app.access_token(&other).await;

    let output = tokio::process::Command::new(common::signet_bin())
        .args(["agent", "revoke-tokens", &agent.id])
        .env_clear()
        .env("SIGNET_URL", &app.url)
        .env("SIGNET_ADMIN_TOKEN", common::ADMIN_TOKEN)
        .output()
        .await
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(app.introspect(&first).await["active"], false);
    assert_eq!(app.introspect(&second).await["active"], false);
    assert_eq!(
        app.introspect(&unrelated).await["active"],
        true,
        "other agents are untouched"
    );

    // Tokens issued afterwards (in a later second) are active.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = app.access_token(&agent).await;
    assert_eq!(app.introspect(&fresh).await["active"], true);
    let audit = app
        .audit(&format!(
            "agent_id={}&event_type=agent_tokens_revoked",
            agent.id
        ))
        .await;
    assert_eq!(audit[0]["actor"], "admin-token");
    let response = app
        .admin(
            reqwest::Method::POST,
            "/api/v1/agents/agt_0000000000000000000000/tokens/revoke",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
}
