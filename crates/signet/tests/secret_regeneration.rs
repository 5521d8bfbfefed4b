//! Regenerating an agent's secret over the admin API, seen from the token endpoint: at once,
//! or with a grace period during which both secrets work.

mod common;

use common::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn regenerate_kills_the_old_secret_at_once() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );

    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/secret/regenerate", agent.id),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json");
    let new_secret = body["agent_secret"].as_str().expect("secret").to_string();
    assert_ne!(new_secret, agent.secret);

    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("stale_secret")
    );
    let renewed = common::TestAgent {
        id: agent.id.clone(),
        secret: new_secret,
    };
    assert_eq!(
        app.token(&renewed, "grant_type=client_credentials")
            .await
            .status(),
        200
    );

    let changes = app
        .audit(&format!(
            "agent_id={}&event_type=agent_secret_regenerated",
            agent.id
        ))
        .await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["actor"], "admin-token");
}

#[tokio::test]
async fn regenerate_with_grace_keeps_both_secrets_for_a_while() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/secret/regenerate", agent.id),
        )
        .json(&json!({ "grace_period_seconds": 300 }))
        .send()
        .await
        .expect("send");
    let body: Value = response.json().await.expect("json");
    assert!(body["previous_secret_valid_until"].is_string());
    let renewed = common::TestAgent {
        id: agent.id.clone(),
        secret: body["agent_secret"].as_str().expect("s").into(),
    };
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.token(&renewed, "grant_type=client_credentials")
            .await
            .status(),
        200
    );

    // A second regeneration ends the first grace period: the oldest secret stops now.
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/secret/regenerate", agent.id),
        )
        .json(&json!({ "grace_period_seconds": 300 }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.token(&renewed, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
}
