//! Bad input gets a clear 4xx, an audit record, and changes nothing.

mod common;

use common::TestApp;
use serde_json::{Value, json};

async fn agent_count(app: &TestApp) -> usize {
    let body: Value = app.get_json("/api/v1/agents?limit=500").await;
    body["items"].as_array().map(Vec::len).unwrap_or_default()
}

async fn raw_token_request(
    app: &TestApp,
    agent: &common::TestAgent,
    body: Vec<u8>,
) -> reqwest::Response {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", agent.id, agent.secret));
    app.http
        .post(format!("{}/oauth2/token", app.url))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn malformed_token_requests_are_refused_and_audited() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"grant_type=client_credentials&scope=%FF%FE".to_vec(),
            400,
            "form_not_utf8",
        ),
        (
            b"grant_type=client_credentials&scope=\xff".to_vec(),
            400,
            "form_not_utf8",
        ),
        (
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
            400,
            "duplicate_parameter",
        ),
        (
            b"grant_type=client_credentials&scope=read&scope=write".to_vec(),
            400,
            "duplicate_parameter",
        ),
        (
            b"grant_type=client_credentials&scope=%ZZ".to_vec(),
            400,
            "malformed_form",
        ),
        (
            format!(
                "grant_type=client_credentials&pad={}",
                "a".repeat(1024 * 1024)
            )
            .into_bytes(),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, reason) in cases {
        let before = app
            .audit(&format!("event_type=token_request&reason={reason}"))
            .await
            .len();
        let response = raw_token_request(&app, &agent, body).await;
        assert_eq!(response.status().as_u16(), status, "{reason}");
        let error: Value = response.json().await.expect("OAuth error body");
        assert_eq!(error["error"], "invalid_request", "{reason}");
        let audit = app
            .audit(&format!("event_type=token_request&reason={reason}"))
            .await;
        assert_eq!(audit.len(), before + 1, "{reason} audited once");
    }
    let response = app
        .http
        .post(format!("{}/oauth2/token", app.url))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    assert_eq!(app.audit("reason=bad_content_type").await.len(), 1);
    assert!(
        app.audit("event_type=token_request&outcome=success")
            .await
            .is_empty(),
        "no token was issued"
    );
}

#[tokio::test]
async fn malformed_admin_requests_change_nothing() {
    let app = TestApp::spawn().await;
    app.secret_agent().await;
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "/api/v1/agents", b"{not json".to_vec(), 400),
        ("POST", "/api/v1/agents", br#"{"name": 5}"#.to_vec(), 400),
        (
            "POST",
            "/api/v1/agents",
            br#"{"description": "no name"}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/agents",
            br#"{"name": "x", "unknown_field": 1}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/agents",
            br#"{"name": "x", "scopes": ["has space"]}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/agents",
            br#"{"name": "x", "allowed_cidrs": ["10.0.0.0/99"]}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/agents",
            br#"{"name": "x", "access_token_ttl": 1}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/agents",
            br#"{"name": "x", "token_endpoint_auth_method": "none"}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/api/v1/agents",
            format!(r#"{{"name": "{}"}}"#, "a".repeat(1024 * 1024)).into_bytes(),
            413,
        ),
        ("POST", "/api/v1/agents", b"\xff\xfe".to_vec(), 400),
    ];
    for (method, path, body, status) in cases {
        let response = app
            .admin(method.parse().expect("method"), path)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(
            response.status().as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["status"], status);
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(
        agent_count(&app).await,
        1,
        "no agent was created by bad input"
    );
    assert_eq!(app.audit("event_type=agent_created").await.len(), 1);

    // A bad PATCH leaves the agent as it was.
    let list: Value = app.get_json("/api/v1/agents").await;
    let id = list["items"][0]["agent_id"]
        .as_str()
        .expect("id")
        .to_string();
    let response = app
        .admin(reqwest::Method::PATCH, &format!("/api/v1/agents/{id}"))
        .json(&json!({ "name": "renamed", "status": "sleeping" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.expect("json")["field"],
        "status"
    );
    let agent: Value = app.get_json(&format!("/api/v1/agents/{id}")).await;
    assert_eq!(agent["name"], "test-agent");
    assert_eq!(agent["status"], "active");
}
