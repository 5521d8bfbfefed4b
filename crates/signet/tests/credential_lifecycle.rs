//! Credential lifecycle with a controllable clock (`SIGNET_TESTING_CLOCK=1`), never sleeps:
//! rotation with a grace period, expiry under the age policy and the expiry listing,
//! self-service rotation through the CLI, scheduled, manual and emergency signing-key rotation,
//! and the client address behind trusted proxies.

mod common;

use common::{ADMIN_TOKEN, TestAgent, TestApp};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

async fn token_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    app.token(
        &TestAgent {
            id: id.into(),
            secret: secret.into(),
        },
        "grant_type=client_credentials",
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn grace_period_and_expiry_follow_the_clock() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_SECRET_MAX_AGE_DAYS", "30"),
        ("SIGNET_EXPIRY_WARNING_DAYS", "7"),
        ("SIGNET_HOUSEKEEPING_SECONDS", "1"),
    ])
    .await;
    let agent = app.secret_agent().await;
    let shown = app.get_json(&format!("/api/v1/agents/{}", agent.id)).await;
    assert!(shown["secret"]["expires_at"].is_string(), "{shown}");

    // Rotate with a one-hour grace period: both work inside it, only the new one after it.
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/secret/regenerate", agent.id),
        )
        .json(&json!({ "grace_period_seconds": 3600 }))
        .send()
        .await
        .expect("send");
    let body: Value = response.json().await.expect("json");
    let new_secret = body["agent_secret"].as_str().expect("secret").to_string();
    assert_eq!(token_status(&app, &agent.id, &agent.secret).await, 200);
    assert_eq!(token_status(&app, &agent.id, &new_secret).await, 200);
    // Well inside the hour: the grace period counts from the regenerate request's second.
    app.set_clock_offset(3590).await;
    assert_eq!(token_status(&app, &agent.id, &agent.secret).await, 200);
    app.set_clock_offset(3601).await;
    assert_eq!(token_status(&app, &agent.id, &agent.secret).await, 401);
    // Recognised as stale, not as unknown, with where it came from.
    let audit = app
        .audit(&format!("agent_id={}&reason=stale_secret", agent.id))
        .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["source"], "127.0.0.1");
    assert_eq!(token_status(&app, &agent.id, &agent.secret).await, 401);
    // Counted on the agent: which service still uses the old secret, from where, since when.
    let shown = app.get_json(&format!("/api/v1/agents/{}", agent.id)).await;
    let stale = &shown["stale_credential_use"][0];
    assert_eq!(stale["kind"], "secret");
    assert_eq!(stale["count"], 2);
    assert_eq!(stale["last_source"], "127.0.0.1");
    assert!(stale["first_at"].is_string() && stale["last_at"].is_string());
    assert_eq!(token_status(&app, &agent.id, &new_secret).await, 200);

    // Not expiring yet; inside the warning window it is listed; after 30 days it is refused.
    let listed = app.get_json("/api/v1/credentials/expiring").await;
    assert!(!listed.to_string().contains(&agent.id), "{listed}");
    app.set_clock_offset(24 * DAY).await;
    let listed = app.get_json("/api/v1/credentials/expiring").await;
    let item = listed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["agent_id"] == json!(agent.id)))
        .cloned()
        .expect("the secret is listed as expiring");
    assert_eq!(item["kind"], "secret");
    assert_eq!(item["expired"], json!(false));
    // The scheduled check raises one alert (audit event) for it, however often it runs.
    let mut warnings = Vec::new();
    for _ in 0..100 {
        warnings = app
            .audit(&format!(
                "event_type=credential_expiring&agent_id={}",
                agent.id
            ))
            .await;
        if !warnings.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(warnings.len(), 1, "one expiry alert");
    assert_eq!(warnings[0]["detail"]["kind"], "secret");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let again = app
        .audit(&format!(
            "event_type=credential_expiring&agent_id={}",
            agent.id
        ))
        .await;
    assert_eq!(again.len(), 1, "not repeated");
    assert_eq!(token_status(&app, &agent.id, &new_secret).await, 200);
    app.set_clock_offset(31 * DAY).await;
    assert_eq!(token_status(&app, &agent.id, &new_secret).await, 401);
    assert_eq!(
        app.last_token_reason(&agent.id).await.as_deref(),
        Some("expired_secret")
    );
    // The test clock endpoint does not exist on a normal server.
    let normal = TestApp::spawn().await;
    let response = normal
        .admin(reqwest::Method::PUT, "/api/v1/testing/clock")
        .json(&json!({ "offset_seconds": 10 }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
}

async fn signet(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    common::run_signet(args, env.iter().copied()).await
}

#[tokio::test]
async fn an_agent_rotates_its_own_secret_with_the_cli() {
    let app = TestApp::spawn_with(&[("SIGNET_TESTING_CLOCK", "1")]).await;
    let agent = app.secret_agent().await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{}\n", agent.secret)).expect("write");
    let file_s = file.to_string_lossy().to_string();
    let env = [
        ("SIGNET_URL", app.url.as_str()),
        ("SIGNET_AGENT_ID", agent.id.as_str()),
        ("SIGNET_AGENT_SECRET_FILE", file_s.as_str()),
    ];
    let (code, stdout, stderr) = signet(&["token", "rotate", "--grace-period", "600"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Secret rotated"), "{stdout}");
    let new_secret = std::fs::read_to_string(&file)
        .expect("read")
        .trim()
        .to_string();
    assert_ne!(new_secret, agent.secret);
    assert!(!stdout.contains(&new_secret), "the secret is never printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    assert_eq!(token_status(&app, &agent.id, &new_secret).await, 200);
    assert_eq!(token_status(&app, &agent.id, &agent.secret).await, 200);
    // The old secret, inside its grace period, cannot rotate.
    let response = app
        .http
        .post(format!("{}/api/v1/self/secret/rotate", app.url))
        .basic_auth(&agent.id, Some(&agent.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    app.set_clock_offset(601).await;
    assert_eq!(token_status(&app, &agent.id, &agent.secret).await, 401);
    assert_eq!(token_status(&app, &agent.id, &new_secret).await, 200);
    let audit = app
        .audit(&format!(
            "agent_id={}&event_type=agent_secret_regenerated",
            agent.id
        ))
        .await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["outcome"], "failure");
    assert_eq!(audit[0]["reason"], "previous_secret");
    assert_eq!(audit[1]["actor"], json!(agent.id));
    assert!(!audit.iter().any(|a| a.to_string().contains(&new_secret)));
}

async fn jwks(app: &TestApp) -> JwkSet {
    app.http
        .get(format!("{}/oauth2/jwks", app.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("jwks")
}

fn verifies(token: &str, jwks: &JwkSet, issuer: &str) -> bool {
    let Ok(header) = decode_header(token) else {
        return false;
    };
    let Some(jwk) = header.kid.as_deref().and_then(|kid| jwks.find(kid)) else {
        return false;
    };
    let Ok(key) = DecodingKey::from_jwk(jwk) else {
        return false;
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    // The server's clock runs ahead in this test; check the signature, not the expiry.
    validation.validate_exp = false;
    decode::<Value>(token, &key, &validation).is_ok()
}

fn kid(token: &str) -> String {
    decode_header(token).expect("header").kid.expect("kid")
}

async fn signing_keys(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/v1/signing-keys")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn eventually_status(app: &TestApp, status: &str, kid_wanted: Option<&str>) -> Vec<Value> {
    for _ in 0..100 {
        let keys = signing_keys(app).await;
        if keys
            .iter()
            .any(|k| k["status"] == status && kid_wanted.is_none_or(|kid| k["kid"] == json!(kid)))
        {
            return keys;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "no {status} signing key appeared: {:?}",
        signing_keys(app).await
    );
}

#[tokio::test]
async fn signing_keys_rotate_on_schedule_with_the_next_key_published_first() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_SIGNING_KEY_ROTATION_DAYS", "30"),
        ("SIGNET_SIGNING_KEY_PREPUBLISH_SECONDS", "86400"),
        ("SIGNET_HOUSEKEEPING_SECONDS", "1"),
    ])
    .await;
    let agent = app.secret_agent().await;
    let first = app.access_token(&agent).await;
    let first_kid = kid(&first);

    // A day before the period ends, the next key is published but does not sign yet.
    app.set_clock_offset(29 * DAY + 60).await;
    let keys = eventually_status(&app, "next", None).await;
    let next_kid = keys
        .iter()
        .find(|k| k["status"] == "next")
        .and_then(|k| k["kid"].as_str())
        .expect("next")
        .to_string();
    // The store has it first; the JWKS serves it once this node has reloaded its keys.
    let mut in_jwks = false;
    for _ in 0..100 {
        if jwks(&app).await.find(&next_kid).is_some() {
            in_jwks = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(in_jwks, "published before it signs");
    let token = app.access_token(&agent).await;
    assert_eq!(kid(&token), first_kid, "the next key does not sign yet");

    // When the period ends it signs; the old key stays published for its tokens.
    app.set_clock_offset(30 * DAY + 60).await;
    eventually_status(&app, "active", Some(&next_kid)).await;
    let mut token = app.access_token(&agent).await;
    for _ in 0..100 {
        if kid(&token) == next_kid {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        token = app.access_token(&agent).await;
    }
    assert_eq!(
        kid(&token),
        next_kid,
        "the next key signs once its time has come"
    );
    let published = jwks(&app).await;
    assert!(
        verifies(&first, &published, &app.url),
        "old tokens still verify"
    );
    assert!(verifies(&token, &published, &app.url));
}

#[tokio::test]
async fn manual_and_emergency_rotation() {
    let app = TestApp::spawn_with(&[("SIGNET_SIGNING_KEY_PREPUBLISH_SECONDS", "3600")]).await;
    let agent = app.secret_agent().await;
    let first = app.access_token(&agent).await;
    let admin = [
        ("SIGNET_URL", app.url.as_str()),
        ("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN),
    ];

    // First call publishes the next key; the second activates it.
    let (code, stdout, stderr) = signet(&["signing-key", "rotate", "--json"], &admin).await;
    assert_eq!(code, 0, "{stderr}");
    let published: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(published["outcome"], "published");
    let next = published["kid"].as_str().expect("kid").to_string();
    assert!(jwks(&app).await.find(&next).is_some());
    assert_eq!(kid(&app.access_token(&agent).await), kid(&first));
    let (code, stdout, _) = signet(&["signing-key", "rotate", "--json"], &admin).await;
    assert_eq!(code, 0);
    let activated: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(activated["outcome"], "activated");
    let second = app.access_token(&agent).await;
    assert_eq!(kid(&second), next);
    assert!(verifies(&first, &jwks(&app).await, &app.url));
    let introspected = app.introspect(&first).await;
    assert_eq!(introspected["active"], json!(true));

    // Emergency: refused without confirmation off a terminal; with --yes every old key is gone.
    let (code, _, stderr) = signet(&["signing-key", "rotate", "--emergency"], &admin).await;
    assert_eq!(code, 2, "{stderr}");
    let (code, stdout, stderr) = signet(
        &["signing-key", "rotate", "--emergency", "--yes", "--json"],
        &admin,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let emergency: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(emergency["outcome"], "emergency");
    assert!(
        emergency["note"]
            .as_str()
            .expect("note")
            .contains("no longer verifies")
    );
    let published = jwks(&app).await;
    assert_eq!(published.keys.len(), 1);
    assert!(!verifies(&first, &published, &app.url));
    assert!(!verifies(&second, &published, &app.url));
    assert_eq!(app.introspect(&second).await["active"], json!(false));
    let third = app.access_token(&agent).await;
    assert!(verifies(&third, &published, &app.url));
    let audit = app.audit("event_type=signing_key_rotated").await;
    assert_eq!(audit.len(), 3);
}

#[tokio::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    // Behind a trusted proxy (the test client is 127.0.0.1): X-Forwarded-For names the client.
    let behind = TestApp::spawn_with(&[("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let created = behind
        .create_agent(json!({ "name": "netbound", "allowed_cidrs": ["203.0.113.0/24"] }))
        .await;
    let agent = TestAgent {
        id: created["agent_id"].as_str().expect("id").into(),
        secret: created["agent_secret"].as_str().expect("secret").into(),
    };
    let with_xff = |app: &TestApp, xff: &str| {
        app.http
            .post(format!("{}/oauth2/token", app.url))
            .basic_auth(&agent.id, Some(&agent.secret))
            .header("x-forwarded-for", xff)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(
        with_xff(&behind, "203.0.113.9")
            .await
            .expect("send")
            .status(),
        200
    );
    assert_eq!(
        with_xff(&behind, "198.51.100.7")
            .await
            .expect("send")
            .status(),
        401
    );
    let audit = behind
        .audit(&format!("agent_id={}&event_type=token_request", agent.id))
        .await;
    assert_eq!(audit[0]["source"], "198.51.100.7");
    assert_eq!(audit[0]["reason"], "source_not_allowed");
    assert_eq!(audit[1]["source"], "203.0.113.9");

    // Without a trusted proxy the header is the client's own claim: ignored.
    let direct = TestApp::spawn().await;
    let created = direct
        .create_agent(json!({ "name": "netbound", "allowed_cidrs": ["203.0.113.0/24"] }))
        .await;
    let spoofer = TestAgent {
        id: created["agent_id"].as_str().expect("id").into(),
        secret: created["agent_secret"].as_str().expect("secret").into(),
    };
    let response = direct
        .http
        .post(format!("{}/oauth2/token", direct.url))
        .basic_auth(&spoofer.id, Some(&spoofer.secret))
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    let audit = direct
        .audit(&format!("agent_id={}&event_type=token_request", spoofer.id))
        .await;
    assert_eq!(audit[0]["source"], "127.0.0.1");
    assert_eq!(audit[0]["reason"], "source_not_allowed");
}

#[tokio::test]
async fn a_key_with_an_expiry_is_listed_then_refused() {
    use common::jwt::{AgentKey, claims_for, sign, token_request, with};
    let app = TestApp::spawn_with(&[("SIGNET_TESTING_CLOCK", "1")]).await;
    let created = app
        .create_agent(json!({ "name": "jwt", "token_endpoint_auth_method": "private_key_jwt" }))
        .await;
    let agent_id = created["agent_id"].as_str().expect("id").to_string();
    let key = AgentKey::new(Algorithm::ES256);
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent_id}/keys"),
        )
        .json(&json!({ "pem": key.pair.public_key_pem(), "expires_at": expires }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let keys: Value = response.json().await.expect("json");
    let kid = keys[0]["kid"].as_str().expect("kid").to_string();
    assert!(keys[0]["expires_at"].is_string());

    let assertion = |offset: i64| {
        let claims = claims_for(&app, &agent_id);
        let now = signet_core::now() + offset;
        let claims = with(with(claims, "iat", json!(now)), "exp", json!(now + 60));
        sign(&key, &kid, &claims)
    };
    assert_eq!(token_request(&app, None, &assertion(0)).await.status(), 200);
    let listed = app.get_json("/api/v1/credentials/expiring").await;
    assert_eq!(listed["items"][0]["kind"], "key");
    assert_eq!(listed["items"][0]["id"], json!(kid));
    app.set_clock_offset(11 * DAY).await;
    let response = token_request(&app, None, &assertion(11 * DAY)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        app.last_token_reason(&agent_id).await.as_deref(),
        Some("key_expired")
    );
    // An expiry in the past is refused at registration.
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent_id}/keys"),
        )
        .json(&json!({ "pem": AgentKey::new(Algorithm::ES256).pair.public_key_pem(), "expires_at": "2001-01-01T00:00:00Z" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
}
