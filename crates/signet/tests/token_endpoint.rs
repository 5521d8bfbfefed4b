//! The token endpoint over real HTTP: both secret forms, every error code with its status,
//! headers and precise audit reason.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{TestAgent, TestApp, claims};
use serde_json::{Value, json};

async fn error_of(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body: Value = response.json().await.expect("json error body");
    (
        status,
        challenge,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn both_secret_forms_get_a_token() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;

    let basic = app.token(&agent, "grant_type=client_credentials").await;
    assert_eq!(basic.status(), 200);
    assert_eq!(basic.headers()["cache-control"], "no-store");
    assert_eq!(basic.headers()["pragma"], "no-cache");
    let body: Value = basic.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "read write");
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["sub"], agent.id);
    assert_eq!(c["client_id"], agent.id);
    assert_eq!(c["iss"], app.url);
    assert_eq!(c["aud"], "https://api.example");
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        600
    );

    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=read",
        agent.id, agent.secret
    );
    let post = app.post_form("/oauth2/token", None, &form).await;
    assert_eq!(post.status(), 200);
    let body: Value = post.json().await.expect("json");
    assert_eq!(body["scope"], "read");

    let successes = app
        .audit(&format!(
            "agent_id={}&outcome=success&event_type=token_request",
            agent.id
        ))
        .await;
    assert_eq!(successes.len(), 2);
    let methods: Vec<&str> = successes
        .iter()
        .filter_map(|e| e["method"].as_str())
        .collect();
    assert_eq!(methods, ["client_secret_post", "client_secret_basic"]);
    assert_eq!(successes[0]["source"], "127.0.0.1");
    assert!(successes[0]["jti"].is_string());
}

#[tokio::test]
async fn basic_credentials_are_form_decoded_per_rfc_6749() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    // "%5F" is "_": a client that form-encodes before Basic-encoding must still work.
    let encoded_secret = agent.secret.replacen('_', "%5F", 1);
    let response = app
        .post_form(
            "/oauth2/token",
            Some((&agent.id, &encoded_secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn every_error_code_from_a_real_request() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let wrong = common::TestAgent {
        id: agent.id.clone(),
        secret: app.secret_agent().await.secret,
    };
    let unknown = common::TestAgent {
        id: "agt_0000000000000000000000".into(),
        secret: agent.secret.clone(),
    };
    let pkjwt = app
        .create_agent(
            json!({ "name": "jwt-agent", "token_endpoint_auth_method": "private_key_jwt" }),
        )
        .await;
    let pkjwt_id = pkjwt["agent_id"].as_str().expect("id").to_string();
    assert!(pkjwt.get("agent_secret").is_none());

    // Missing and unsupported grant types.
    let (status, _, error) = error_of(app.token(&agent, "scope=read").await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("missing_grant_type")
    );
    let (status, _, error) = error_of(
        app.token(&agent, "grant_type=password&username=a&password=b")
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("unsupported_grant_type")
    );

    // A broken Basic header: 401 with a Basic challenge.
    let response = app
        .http
        .post(format!("{}/oauth2/token", app.url))
        .header("authorization", "Basic not-base64!")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("send");
    let (status, challenge, error) = error_of(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(challenge.expect("WWW-Authenticate").starts_with("Basic"));

    // Wrong secret, unknown agent, disabled agent, method mismatch: one vague answer, four reasons.
    let mut descriptions = Vec::new();
    for (who, reason) in [(&wrong, "wrong_secret"), (&unknown, "unknown_agent")] {
        let response = app.token(who, "grant_type=client_credentials").await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client");
        descriptions.push(body["error_description"].clone());
        assert_eq!(
            app.last_token_reason(&who.id).await.as_deref(),
            Some(reason)
        );
    }
    let secret_of_pkjwt_agent = common::TestAgent {
        id: pkjwt_id.clone(),
        secret: agent.secret.clone(),
    };
    let (status, _, error) = error_of(
        app.token(&secret_of_pkjwt_agent, "grant_type=client_credentials")
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(
        app.last_token_reason(&pkjwt_id).await.as_deref(),
        Some("method_mismatch")
    );

    app.set_status(&agent.id, "disabled").await;
    let response = app.token(&agent, "grant_type=client_credentials").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    descriptions.push(body["error_description"].clone());
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("agent_disabled")
    );
    assert!(
        descriptions.windows(2).all(|w| w[0] == w[1]),
        "error text must not reveal which agents exist"
    );
    app.set_status(&agent.id, "active").await;

    // Every 401 carries a challenge (RFC 9110 §15.5.2), also for methods without the
    // Authorization header: client_secret_post here, an assertion below.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        wrong.id, wrong.secret
    );
    let (status, challenge, error) =
        error_of(app.post_form("/oauth2/token", None, &form).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(challenge.expect("WWW-Authenticate").starts_with("Basic"));
    let stranger = common::jwt::AgentKey::new(jsonwebtoken::Algorithm::ES256);
    let assertion = common::jwt::sign(&stranger, "k1", &common::jwt::claims_for(&app, &pkjwt_id));
    let (status, challenge, error) =
        error_of(common::jwt::token_request(&app, None, &assertion).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(challenge.expect("WWW-Authenticate").starts_with("Basic"));

    // A malformed secret is refused before any lookup.
    let mangled = common::TestAgent {
        id: agent.id.clone(),
        secret: {
            // Change the last character (to another one: a secret may end in 'x').
            let (kept, last) = agent.secret.split_at(agent.secret.len() - 1);
            format!("{kept}{}", if last == "x" { "y" } else { "x" })
        },
    };
    let (status, _, _) = error_of(app.token(&mangled, "grant_type=client_credentials").await).await;
    assert_eq!(status, 401);
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("malformed_secret")
    );

    // Two methods in one request.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        agent.id, agent.secret
    );
    let (status, _, error) = error_of(
        app.post_form("/oauth2/token", Some((&agent.id, &agent.secret)), &form)
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("multiple_auth_methods")
    );

    // No credentials at all.
    let (status, challenge, error) = error_of(
        app.post_form("/oauth2/token", None, "grant_type=client_credentials")
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(challenge.is_some());

    // Scope and audience outside the agent's.
    let (status, _, error) = error_of(
        app.token(&agent, "grant_type=client_credentials&scope=read+admin")
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_scope"));
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("scope_not_allowed")
    );
    let (status, _, error) = error_of(
        app.token(
            &agent,
            "grant_type=client_credentials&resource=https%3A%2F%2Fevil.example",
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_target"));
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("audience_not_allowed")
    );
    let (status, _, error) = error_of(
        app.token(&agent, "grant_type=client_credentials&audience=other")
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_target"));

    // Nothing above issued a token.
    let successes = app
        .audit(&format!(
            "agent_id={}&outcome=success&event_type=token_request",
            agent.id
        ))
        .await;
    assert!(successes.is_empty());
}

#[tokio::test]
async fn resource_selects_the_audience() {
    let app = TestApp::spawn().await;
    let agent = app
        .create_agent(json!({ "name": "multi", "audiences": ["https://a.example", "https://b.example"], "access_token_ttl": 120 }))
        .await;
    let agent = common::TestAgent {
        id: agent["agent_id"].as_str().expect("id").into(),
        secret: agent["agent_secret"].as_str().expect("s").into(),
    };
    let body: Value = app
        .token(&agent, "grant_type=client_credentials")
        .await
        .json()
        .await
        .expect("json");
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["aud"], json!(["https://a.example", "https://b.example"]));
    assert_eq!(body["expires_in"], 120);
    assert!(
        c.get("scope").is_none(),
        "an agent without scopes gets no scope claim"
    );
    let body: Value = app
        .token(
            &agent,
            "grant_type=client_credentials&resource=https%3A%2F%2Fb.example",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["aud"],
        "https://b.example"
    );
}

#[tokio::test]
async fn secrets_never_reach_logs_or_audit_records() {
    let mut app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    app.access_token(&agent).await;
    let wrong = format!("{}:{}", agent.id, "signet_not-a-real-secret");
    app.http
        .post(format!("{}/oauth2/token", app.url))
        .header("authorization", format!("Basic {}", STANDARD.encode(wrong)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("send");
    let audit = serde_json::to_string(&app.audit("limit=1000").await).expect("json");
    assert!(!audit.contains(&agent.secret));
    assert!(!audit.contains("signet_not-a-real-secret"));
    let agent_view = app
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/agents/{}", agent.id),
        )
        .send()
        .await
        .expect("send");
    assert!(
        !agent_view
            .text()
            .await
            .expect("text")
            .contains(&agent.secret)
    );
    let (_, log) = app.stop().await;
    assert!(!log.contains(&agent.secret));
    assert!(!log.contains(common::ADMIN_TOKEN));
}

/// A client that swaps its ID and secret (in the Basic header or the form) is refused, and the
/// secret it sent as an ID appears in no audit record and in none of the server's output (token
/// endpoint and the agent's own secret rotation).
#[tokio::test]
async fn a_secret_sent_as_the_agent_id_is_never_recorded() {
    let mut app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let swapped = TestAgent {
        id: agent.secret.clone(),
        secret: agent.id.clone(),
    };
    let response = app.token(&swapped, "grant_type=client_credentials").await;
    assert_eq!(response.status(), 401);
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        agent.secret, agent.id
    );
    let response = app.post_form("/oauth2/token", None, &form).await;
    assert_eq!(response.status(), 401);
    // The same swap at the agent's own secret rotation.
    let response = app
        .http
        .post(format!("{}/api/v1/self/secret/rotate", app.url))
        .basic_auth(&swapped.id, Some(&swapped.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    let refused = app.audit("event_type=token_request&outcome=failure").await;
    assert_eq!(refused.len(), 2);
    let rotations = app
        .audit("event_type=agent_secret_regenerated&outcome=failure")
        .await;
    assert_eq!(rotations.len(), 1);
    assert!(
        refused
            .iter()
            .chain(&rotations)
            .all(|e| e["agent_id"].is_null()),
        "{refused:?} {rotations:?}"
    );
    let everything = serde_json::to_string(&app.audit("limit=1000").await).expect("json");
    let (_, stderr) = app.stop().await;
    let stdout = app.stdout.lock().expect("lock").join("\n");
    for text in [&everything, &stderr, &stdout] {
        assert!(!text.contains(&agent.secret), "the secret was recorded");
    }
}

/// Two `Authorization` headers could be read differently by a proxy and by Signet: the token
/// endpoint refuses the request (neither header is used) and the admin API does not authorize.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let other = app.secret_agent().await;
    let basic = |a: &TestAgent| {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", a.id, a.secret))
        )
    };
    let response = app
        .http
        .post(format!("{}/oauth2/token", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic(&agent))
        .header("authorization", basic(&other))
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("send");
    let (status, _, error) = error_of(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    let refused = app
        .audit("event_type=token_request&outcome=failure&limit=1")
        .await;
    assert_eq!(refused[0]["reason"], "duplicate_authorization_header");

    let response = app
        .http
        .get(format!("{}/api/v1/agents", app.url))
        .header("authorization", format!("Bearer {}", common::ADMIN_TOKEN))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
}

/// Method downgrade for every method: key and certificate agents presented a secret, and a secret
/// agent presented an assertion, are refused with `method_mismatch`, never served. (The two
/// secret forms are one method: SPEC §4 accepts either for every secret agent.)
#[tokio::test]
async fn every_method_refuses_the_credentials_of_another() {
    let app = TestApp::spawn().await;
    let secret_agent = app.secret_agent().await;
    let mut others = Vec::new();
    for method in [
        "private_key_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth",
    ] {
        let created = app
            .create_agent(json!({ "name": method, "token_endpoint_auth_method": method }))
            .await;
        let id = created["agent_id"].as_str().expect("id").to_string();
        let secret = created["agent_secret"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| secret_agent.secret.clone());
        others.push((method, TestAgent { id, secret }));
    }
    // A secret, over Basic or in the body: refused for the key and certificate agents.
    for (method, agent) in &others {
        let response = app.token(agent, "grant_type=client_credentials").await;
        assert_eq!(response.status(), 401, "{method}");
        assert_eq!(
            app.last_token_reason(&agent.id).await.as_deref(),
            Some("method_mismatch"),
            "{method}"
        );
    }
    for (method, agent) in &others {
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            agent.id, agent.secret
        );
        let response = app.post_form("/oauth2/token", None, &form).await;
        assert_eq!(response.status(), 401, "{method}");
        assert_eq!(
            app.last_token_reason(&agent.id).await.as_deref(),
            Some("method_mismatch"),
            "{method}"
        );
    }
    // An assertion for a secret agent, signed by a key it never registered.
    let key = common::jwt::AgentKey::new(jsonwebtoken::Algorithm::ES256);
    let assertion = common::jwt::sign(&key, "k1", &common::jwt::claims_for(&app, &secret_agent.id));
    let response = common::jwt::token_request(&app, None, &assertion).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        app.last_token_reason(&secret_agent.id).await.as_deref(),
        Some("method_mismatch")
    );
    // The right method still works.
    assert_eq!(
        app.token(&secret_agent, "grant_type=client_credentials")
            .await
            .status(),
        200
    );
}
