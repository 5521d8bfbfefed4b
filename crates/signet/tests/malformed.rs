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

/// Deeply nested JSON (a stack-exhaustion attempt) in an admin body, a client assertion's header
/// and claims, and a registered JWK: each is a clean refusal, the server keeps serving.
#[tokio::test]
async fn deeply_nested_inputs_are_refused_cleanly() {
    use base64::Engine as _;
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let response = app
        .admin(reqwest::Method::POST, "/api/v1/agents")
        .header("content-type", "application/json")
        .body(format!(r#"{{"name": "x", "scopes": {deep}}}"#))
        .send()
        .await
        .expect("send");
    assert!(
        [400, 413].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/keys", agent.id),
        )
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"jwk": {{"kty": "EC", "x": {}}}}}"#,
            &deep[..20_000]
        ))
        .send()
        .await
        .expect("send");
    assert!(
        [400, 409, 413].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let nested = format!("{}{}", "{\"a\":".repeat(400), "}".repeat(400));
    let assertion = format!("{}.{}.AAAA", b64(&nested), b64(&nested));
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}",
        agent.id
    );
    let response = app.post_form("/oauth2/token", None, &form).await;
    assert!(
        [400, 401].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    // Still serving.
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
}

/// `text` with its first (ASCII) character in its full-width form.
fn full_width_first(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().expect("a character");
    let wide = char::from_u32(first as u32 + 0xFEE0).expect("full-width form");
    std::iter::once(wide).chain(chars).collect()
}

/// Agent IDs that only look like one (Unicode lookalikes, full-width letters, a trailing NUL,
/// percent-encoded path tricks) are unknown agents: refused like any wrong credential, never
/// matched to the real agent, and not recorded as an agent in the audit log.
#[tokio::test]
async fn lookalike_agent_ids_are_unknown() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let tail = &agent.id["agt_".len()..];
    let lookalikes = [
        format!("аgt_{tail}"), // Cyrillic а
        format!("agt_{}", full_width_first(tail)),
        format!("{}\u{0}", agent.id),
        format!("{}\u{200b}", agent.id), // zero-width space
        format!("../{}", agent.id),
        agent.id.to_uppercase(),
    ];
    for id in &lookalikes {
        let response = app
            .post_form(
                "/oauth2/token",
                Some((id, &agent.secret)),
                "grant_type=client_credentials",
            )
            .await;
        assert_eq!(response.status(), 401, "{id:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client");
    }
    let failures = app
        .audit("event_type=token_request&outcome=failure&limit=100")
        .await;
    assert_eq!(failures.len(), lookalikes.len());
    for failure in &failures {
        assert!(failure["agent_id"].is_null(), "{failure}");
    }
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
}

/// Found by fuzzing (`fuzz/corpus/pem_key/crash-overlapping-begin-end`): a PEM whose END marker
/// overlaps its BEGIN line once made the key parser panic. Over HTTP it is a 400 that says why.
#[tokio::test]
async fn a_pem_with_overlapping_markers_is_a_400() {
    let app = TestApp::spawn().await;
    let created = app
        .create_agent(json!({ "name": "jwt", "token_endpoint_auth_method": "private_key_jwt" }))
        .await;
    let id = created["agent_id"].as_str().expect("id");
    let response = app
        .admin(reqwest::Method::POST, &format!("/api/v1/agents/{id}/keys"))
        .json(&json!({ "pem": "-----BEGIN PUBLIC KEY--------END PUBLIC KEY-----\n" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["field"], "key");
}
