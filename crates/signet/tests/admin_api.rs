//! The admin API: authentication, CRUD, pagination and search, problem details, OpenAPI.

mod common;

use common::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn the_admin_api_requires_the_admin_token() {
    let app = TestApp::spawn().await;
    for token in [None, Some("wrong-token")] {
        let mut request = app.http.get(format!("{}/api/v1/agents", app.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let failures = app.audit("event_type=admin_auth&outcome=failure").await;
    let reasons: Vec<&str> = failures
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["bad_admin_token", "missing_admin_token"]);
}

#[tokio::test]
async fn agents_can_be_created_read_changed_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app
        .create_agent(json!({
            "name": "inventory-bot",
            "description": "Reads stock levels",
            "scopes": ["inventory:read"],
            "audiences": ["https://inventory.example"],
            "access_token_ttl": 300,
            "allowed_cidrs": ["127.0.0.0/8"],
        }))
        .await;
    let id = created["agent_id"].as_str().expect("id").to_string();
    assert!(id.starts_with("agt_"));
    assert!(
        created["agent_secret"]
            .as_str()
            .expect("secret")
            .starts_with("signet_")
    );
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["status"], "active");

    let agent: Value = app.get_json(&format!("/api/v1/agents/{id}")).await;
    assert_eq!(agent["name"], "inventory-bot");
    assert_eq!(agent["allowed_cidrs"], json!(["127.0.0.0/8"]));
    assert!(
        agent.get("agent_secret").is_none(),
        "the secret is shown only at creation"
    );
    assert!(agent["secret"]["created_at"].is_string());

    let patched: Value = app
        .admin(reqwest::Method::PATCH, &format!("/api/v1/agents/{id}"))
        .json(&json!({ "scopes": ["inventory:read", "inventory:write"], "access_token_ttl": null }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        patched["scopes"],
        json!(["inventory:read", "inventory:write"])
    );
    assert_eq!(patched["access_token_ttl"], Value::Null);
    let updates = app
        .audit(&format!("agent_id={id}&event_type=agent_updated"))
        .await;
    assert_eq!(updates.len(), 1);
    assert!(updates[0]["detail"]["changes"]["scopes"].is_object());

    // Changing the method is audited with the old and new values. A PATCH may also be sent as
    // a JSON merge patch (RFC 7396).
    let response = app
        .admin(reqwest::Method::PATCH, &format!("/api/v1/agents/{id}"))
        .header("content-type", "application/merge-patch+json")
        .body(json!({ "token_endpoint_auth_method": "private_key_jwt" }).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let updates = app
        .audit(&format!("agent_id={id}&event_type=agent_updated"))
        .await;
    assert_eq!(
        updates[0]["detail"]["changes"]["token_endpoint_auth_method"],
        json!({ "from": "client_secret_basic", "to": "private_key_jwt" })
    );
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{id}/secret/regenerate"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.status(),
        409,
        "a private_key_jwt agent has no secret to regenerate"
    );

    let response = app
        .admin(reqwest::Method::DELETE, &format!("/api/v1/agents/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    let response = app
        .admin(reqwest::Method::GET, &format!("/api/v1/agents/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = app
        .admin(reqwest::Method::DELETE, &format!("/api/v1/agents/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.audit(&format!("agent_id={id}&event_type=agent_deleted"))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn listing_paginates_and_searches() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.create_agent(json!({ "name": format!("worker-{i}") }))
            .await;
    }
    app.create_agent(json!({ "name": "billing", "description": "Invoices" }))
        .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/agents?limit=3&cursor={c}"),
            None => "/api/v1/agents?limit=3".to_string(),
        };
        let page: Value = app
            .admin(reqwest::Method::GET, &path)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|a| a["agent_id"].as_str().expect("id").to_string()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 8);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are ordered and do not overlap");

    let found: Value = app.get_json("/api/v1/agents?search=invoice").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["items"][0]["name"], "billing");
    let response = app
        .admin(reqwest::Method::GET, "/api/v1/agents?limit=0")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let response = app
        .admin(reqwest::Method::GET, "/api/v1/agents?limit=abc")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn allowed_cidrs_are_enforced() {
    let app = TestApp::spawn().await;
    let agent = app
        .create_agent(json!({ "name": "lan-only", "allowed_cidrs": ["10.0.0.0/8"] }))
        .await;
    let agent = common::TestAgent {
        id: agent["agent_id"].as_str().expect("id").into(),
        secret: agent["agent_secret"].as_str().expect("s").into(),
    };
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("source_not_allowed")
    );
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/{agent_id}",
        "/api/v1/agents/{agent_id}/secret/regenerate",
        "/api/v1/audit",
        "/api/v1/signing-keys",
        "/oauth2/token",
        "/oauth2/jwks",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/.well-known/oauth-authorization-server",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(paths["/api/v1/agents/{agent_id}"].get("patch").is_some());
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(format!("{}/readyz", app.url))
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    let response = app
        .http
        .get(format!("{}/nope", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let response = app
        .http
        .get(format!("{}/oauth2/token", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 405);
    let keys: Value = app.get_json("/api/v1/signing-keys").await;
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["status"], "active");
}

/// No admin read shows a secret: every GET operation in the OpenAPI document, called for agents
/// of every method and a named admin token, answers without the agent secret, the admin token
/// or any private key; nor does the server's log, read after it stops.
#[tokio::test]
async fn no_admin_read_and_no_log_line_shows_a_secret() {
    let mut app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let mut agent_ids = vec![agent.id.clone()];
    for method in ["private_key_jwt", "tls_client_auth"] {
        let created = app
            .create_agent(json!({ "name": method, "token_endpoint_auth_method": method }))
            .await;
        agent_ids.push(created["agent_id"].as_str().expect("id").to_string());
    }
    let created = app
        .admin(reqwest::Method::POST, "/api/v1/admin-tokens")
        .json(&json!({ "name": "reader", "role": "auditor" }))
        .send()
        .await
        .expect("send");
    let token: Value = created.json().await.expect("json");
    let token = token["token"].as_str().expect("token").to_string();
    // Some use, so that the audit log and the listings have something to show.
    assert_eq!(
        app.token(&agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
    let secrets = [agent.secret.as_str(), token.as_str(), common::ADMIN_TOKEN];
    let openapi = app.get_json("/api/v1/openapi.json").await;
    let mut reads = 0;
    for (path, operations) in openapi["paths"].as_object().expect("paths") {
        let Some(get) = operations.get("get") else {
            continue;
        };
        let admin_only = get["security"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s.get("admin_token").is_some());
        if !admin_only {
            continue;
        }
        for agent_id in &agent_ids {
            let concrete = path.replace("{agent_id}", agent_id).replace("{id}", "1");
            let body = app
                .admin(reqwest::Method::GET, &concrete)
                .send()
                .await
                .expect("send")
                .text()
                .await
                .expect("text");
            for secret in secrets {
                assert!(!body.contains(secret), "GET {concrete} shows a secret");
            }
            assert!(!body.contains("PRIVATE KEY"), "GET {concrete}");
            reads += 1;
        }
    }
    assert!(reads >= 30, "only {reads} reads");
    let (_, log) = app.stop().await;
    for secret in secrets {
        assert!(!log.contains(secret), "the log shows a secret");
    }
}
