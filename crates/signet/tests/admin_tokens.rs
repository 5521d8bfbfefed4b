//! Named admin API tokens: an auditor reads but changes nothing (403, audited), an admin acts
//! under its own name in the audit log, expired and revoked tokens are refused with their
//! reasons, the bootstrap token can be retired once a named admin token exists, and a token
//! appears nowhere after its creation (listing, audit records, server output).

mod common;

use common::{ADMIN_TOKEN, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

fn with_token(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.http
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(token)
}

async fn create_token(app: &TestApp, body: Value) -> Value {
    let response = app
        .admin(Method::POST, "/api/v1/admin-tokens")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("json")
}

async fn last_admin_auth_failure(app: &TestApp) -> Value {
    app.audit("event_type=admin_auth&outcome=failure&limit=1")
        .await
        .into_iter()
        .next()
        .expect("an admin_auth failure")
}

#[tokio::test]
async fn roles_expiry_revocation_and_the_audit_trail() {
    let mut app = TestApp::spawn_with(&[("SIGNET_TESTING_CLOCK", "1")]).await;
    let auditor = create_token(&app, json!({ "name": "soc-reader", "role": "auditor" })).await;
    let auditor_token = auditor["token"].as_str().expect("token").to_string();
    assert!(auditor_token.starts_with("signet_at_"));
    assert_eq!(auditor["status"], "active");
    assert_eq!(auditor["created_by"], "admin-token");
    let admin = create_token(
        &app,
        json!({ "name": "deploy-bot", "role": "admin", "expires_in_seconds": 3600 }),
    )
    .await;
    let admin_token = admin["token"].as_str().expect("token").to_string();

    // The auditor reads, and every attempt to change something is refused and audited.
    let read = with_token(&app, &auditor_token, Method::GET, "/api/v1/agents")
        .send()
        .await
        .expect("send");
    assert_eq!(read.status(), 200);
    let write = with_token(&app, &auditor_token, Method::POST, "/api/v1/agents")
        .json(&json!({ "name": "sneaky" }))
        .send()
        .await
        .expect("send");
    assert_eq!(write.status(), 403);
    let refused = last_admin_auth_failure(&app).await;
    assert_eq!(refused["reason"], "auditor_read_only");
    assert_eq!(refused["actor"], "soc-reader");
    let agents = app.get_json("/api/v1/agents").await;
    assert_eq!(agents["items"].as_array().map(Vec::len), Some(0));

    // The named admin acts under its own name.
    let created = with_token(&app, &admin_token, Method::POST, "/api/v1/agents")
        .json(&json!({ "name": "billing" }))
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let agent_id = created["agent_id"].as_str().expect("id");
    let events = app
        .audit(&format!("agent_id={agent_id}&event_type=agent_created"))
        .await;
    assert_eq!(events[0]["actor"], "deploy-bot");
    let requests = app.audit("event_type=admin_request&limit=100").await;
    assert!(requests.iter().any(|e| e["actor"] == "soc-reader"
        && e["detail"]["method"] == "GET"
        && e["detail"]["path"] == "/api/v1/agents"));

    // Introspection is a read: the auditor may; revocation is a change: it may not.
    let agent = app.secret_agent().await;
    let token = app.access_token(&agent).await;
    let introspection = with_token(&app, &auditor_token, Method::POST, "/oauth2/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .expect("send");
    assert_eq!(introspection.status(), 200);
    assert_eq!(
        introspection.json::<Value>().await.expect("json")["active"],
        true
    );
    let revocation = with_token(&app, &auditor_token, Method::POST, "/oauth2/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .expect("send");
    assert_eq!(revocation.status(), 400);
    assert_eq!(app.introspect(&token).await["active"], true);

    // Listed with role, status and last use; never the token.
    let list = app.get_json("/api/v1/admin-tokens").await;
    let listed = list["items"].as_array().expect("items");
    assert_eq!(listed.len(), 2);
    let reader = listed
        .iter()
        .find(|t| t["name"] == "soc-reader")
        .expect("listed");
    assert_eq!(reader["role"], "auditor");
    assert!(reader["last_used_at"].is_string());
    assert!(reader.get("token").is_none());
    assert_eq!(list["bootstrap_token_active"], true);

    // Expired (the test clock moves past its hour): refused with the reason on record.
    app.set_clock_offset(3601).await;
    let expired = with_token(&app, &admin_token, Method::GET, "/api/v1/agents")
        .send()
        .await
        .expect("send");
    assert_eq!(expired.status(), 401);
    assert_eq!(
        last_admin_auth_failure(&app).await["reason"],
        "expired_admin_token"
    );

    // Revoked: refused at the next request.
    let revoke = app
        .admin(Method::DELETE, "/api/v1/admin-tokens/soc-reader")
        .send()
        .await
        .expect("send");
    assert_eq!(revoke.status(), 204);
    let after = with_token(&app, &auditor_token, Method::GET, "/api/v1/agents")
        .send()
        .await
        .expect("send");
    assert_eq!(after.status(), 401);
    assert_eq!(
        last_admin_auth_failure(&app).await["reason"],
        "revoked_admin_token"
    );
    // A revoked token keeps its name.
    let again = app
        .admin(Method::POST, "/api/v1/admin-tokens")
        .json(&json!({ "name": "soc-reader", "role": "auditor" }))
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 409);

    // The tokens appear in no audit record and in none of the server's output.
    let everything = app.audit("limit=1000").await;
    let text = serde_json::to_string(&everything).expect("json");
    let (_, stderr) = app.stop().await;
    let logs = format!("{stderr}{}", app.stdout.lock().expect("lock").join("\n"));
    for secret in [&auditor_token, &admin_token] {
        assert!(!text.contains(secret.as_str()), "a token in the audit log");
        assert!(!logs.contains(secret.as_str()), "a token in the logs");
    }
}

#[tokio::test]
async fn the_bootstrap_token_retires_once_a_named_admin_token_exists() {
    let app = TestApp::spawn().await;
    let retire = |token: String| {
        with_token(
            &app,
            &token,
            Method::POST,
            "/api/v1/admin-tokens/bootstrap/retire",
        )
        .send()
    };
    // Not while nobody else could manage Signet (an auditor token does not count).
    create_token(&app, json!({ "name": "reader", "role": "auditor" })).await;
    let refused = retire(ADMIN_TOKEN.into()).await.expect("send");
    assert_eq!(refused.status(), 409);

    // Created with the CLI, as an operator would.
    let output = app
        .cli(&[
            "admin-token",
            "create",
            "ops",
            "--role",
            "admin",
            "--expires-in-days",
            "30",
        ])
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let ops_token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("signet_at_"))
        .expect("the token, printed once")
        .to_string();

    assert_eq!(retire(ops_token.clone()).await.expect("send").status(), 204);
    let bootstrap = app
        .admin(Method::GET, "/api/v1/agents")
        .send()
        .await
        .expect("send");
    assert_eq!(bootstrap.status(), 401);
    assert_eq!(
        last_admin_auth_failure_as(&app, &ops_token).await["reason"],
        "retired_admin_token"
    );
    let list = with_token(&app, &ops_token, Method::GET, "/api/v1/admin-tokens")
        .send()
        .await
        .expect("send");
    let list: Value = list.json().await.expect("json");
    assert_eq!(list["bootstrap_token_active"], false);
    let ops = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["name"] == "ops")
        .cloned()
        .expect("listed");
    assert_eq!(ops["role"], "admin");
    assert!(ops["expires_at"].is_string());
}

/// The newest admin_auth failure, read with `token` (the bootstrap token may be retired).
async fn last_admin_auth_failure_as(app: &TestApp, token: &str) -> Value {
    let response = with_token(
        app,
        token,
        Method::GET,
        "/api/v1/audit?event_type=admin_auth&outcome=failure&limit=1",
    )
    .send()
    .await
    .expect("send");
    let body: Value = response.json().await.expect("json");
    body["items"][0].clone()
}

/// Every operation of the admin API that is not a read, taken from the OpenAPI document (so a
/// new endpoint is covered the day it is added), refuses an auditor token with 403 and changes
/// nothing; the same token still reads.
#[tokio::test]
async fn an_auditor_token_is_refused_by_every_admin_write() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let auditor = create_token(&app, json!({ "name": "soc-reader", "role": "auditor" })).await;
    let token = auditor["token"].as_str().expect("token").to_string();
    let openapi = app.get_json("/api/v1/openapi.json").await;
    let mut writes = 0;
    for (path, operations) in openapi["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let admin_only = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s.get("admin_token").is_some());
            // Introspection (POST, but a read) admits auditors; revocation is tested above.
            let admin_api = path.starts_with("/api/v1/");
            if !admin_only || !admin_api || ["get", "head"].contains(&method.as_str()) {
                continue;
            }
            let concrete = path
                .replace("{agent_id}", &agent.id)
                .replace("{kid}", "k1")
                .replace("{thumbprint}", "t1")
                .replace("{name}", "soc-reader")
                .replace("{id}", "1")
                .replace("{kind}", "agent")
                .replace("{key}", &agent.id);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = with_token(&app, &token, method.clone(), &concrete)
                .json(&json!({}))
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 403, "{method} {concrete}");
            writes += 1;
        }
    }
    assert!(writes >= 17, "only {writes} write operations found");
    // Nothing changed: the agent's secret still works and the auditor token was not revoked.
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
    let read = with_token(&app, &token, Method::GET, "/api/v1/agents")
        .send()
        .await
        .expect("send");
    assert_eq!(read.status(), 200);
}

/// No secret is truncated before it is compared (the bcrypt 72-byte class): an admin token with
/// a character more or less is refused, and a long console password that differs only after
/// its 72nd byte does not sign in.
#[tokio::test]
async fn long_secrets_are_compared_whole() {
    let password = format!("{}{}", "p".repeat(72), "the-rest-of-the-password");
    let app = TestApp::spawn_with(&[("SIGNET_ADMIN_PASSWORD", password.as_str())]).await;
    let created = create_token(&app, json!({ "name": "ops", "role": "admin" })).await;
    let token = created["token"].as_str().expect("token").to_string();
    for variant in [
        format!("{token}x"),
        token[..token.len() - 1].to_string(),
        token.clone(),
    ] {
        let status = with_token(&app, &variant, Method::GET, "/api/v1/agents")
            .send()
            .await
            .expect("send")
            .status();
        let expected = if variant == token { 200 } else { 401 };
        assert_eq!(status, expected, "{variant}");
    }
    let client = common::no_redirects();
    for (attempt, expected) in [
        (
            format!("{}{}", "p".repeat(72), "something-else-entirely"),
            401,
        ),
        ("p".repeat(72), 401),
        (password.clone(), 303),
    ] {
        let status = client
            .post(format!("{}/console/login", app.url))
            .form(&[("username", "admin"), ("password", attempt.as_str())])
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status, expected, "{} bytes", attempt.len());
    }
}

/// A flood of bad admin tokens from one address: recorded up to the lockout threshold (each
/// with the path cut short), then refused with 429 and Retry-After without a record; a working
/// token from the same address still works.
#[tokio::test]
async fn a_flood_of_bad_admin_tokens_is_not_recorded_past_the_lock() {
    let app = TestApp::spawn_with(&[("SIGNET_LOCKOUT_THRESHOLD", "3")]).await;
    let long_path = format!("/api/v1/agents/{}", "x".repeat(10_000));
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = with_token(&app, "signet_admin_not-a-token", Method::GET, &long_path)
            .send()
            .await
            .expect("send");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry: i64 = response.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!(retry > 0);
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    let refused = app.audit("event_type=admin_auth&outcome=failure").await;
    assert_eq!(refused.len(), 3, "only the refusals before the lock");
    let path = refused[0]["detail"]["path"].as_str().expect("path");
    assert_eq!(path.chars().count(), 256, "{path}");
    let locks = app.get_json("/api/v1/lockouts").await;
    assert_eq!(locks[0]["kind"], "operator_source", "{locks}");
    assert_eq!(locks[0]["key"], "127.0.0.1", "{locks}");
    // The agents behind that address are not locked out of the token endpoint.
    let agent = app.secret_agent().await;
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
}
