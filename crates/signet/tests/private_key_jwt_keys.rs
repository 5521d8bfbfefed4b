//! Private Key JWT key management over real HTTP: rotation without downtime, registration of
//! every key format (and refusal of the rest), agents created with keys, and `signet token` with a
//! key file.

mod common;

use common::TestApp;
use common::jwt::*;
use jsonwebtoken::Algorithm;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde_json::{Value, json};

#[tokio::test]
async fn keys_rotate_without_downtime() {
    let f = Fixture::new(Algorithm::ES256).await;
    let next = AgentKey::new(Algorithm::ES256);

    // An assertion for the token endpoint does not register a key (a leaked one would give
    // lasting access), and one for key management gets no token.
    let response = f
        .app
        .http
        .post(format!("{}/api/v1/self/keys", f.app.url))
        .json(
            &json!({ "client_assertion": f.sign(&f.claims()), "pem": next.pair.public_key_pem() }),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    let refused = f
        .app
        .audit_eventually("event_type=agent_key_added&outcome=failure", 1)
        .await;
    assert_eq!(refused[0]["reason"], "bad_audience", "{refused:?}");
    f.refused_with(&f.sign(&f.key_claims()), "bad_audience")
        .await;

    // The agent registers its next key itself, proving possession of the current one.
    let response = f
        .app
        .http
        .post(format!("{}/api/v1/self/keys", f.app.url))
        .json(
            &json!({ "client_assertion": f.sign(&f.key_claims()), "pem": next.pair.public_key_pem() }),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let next_kid = response.json::<Value>().await.expect("json")[0]["kid"]
        .as_str()
        .expect("kid")
        .to_string();

    // Both keys work.
    assert_eq!(f.token(&f.sign(&f.claims())).await.status(), 200);
    assert_eq!(
        f.token(&sign(&next, &next_kid, &f.claims())).await.status(),
        200
    );

    // The agent retires the old key, authenticated with the new one.
    let response = f
        .app
        .http
        .post(format!("{}/api/v1/self/keys/{}/revoke", f.app.url, f.kid))
        .json(&json!({ "client_assertion": sign(&next, &next_kid, &f.key_claims()) }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    f.refused_with(&f.sign(&f.claims()), "key_revoked").await;
    assert_eq!(
        f.token(&sign(&next, &next_kid, &f.claims())).await.status(),
        200
    );

    // The last key cannot be retired by the agent, and a self-service call needs a valid assertion.
    let response = f
        .app
        .http
        .post(format!("{}/api/v1/self/keys/{next_kid}/revoke", f.app.url))
        .json(&json!({ "client_assertion": sign(&next, &next_kid, &f.key_claims()) }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
    let response = f
        .app
        .http
        .post(format!("{}/api/v1/self/keys", f.app.url))
        .json(&json!({ "client_assertion": f.sign(&f.key_claims()), "pem": AgentKey::new(Algorithm::ES256).pair.public_key_pem() }))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.status(),
        401,
        "a revoked key cannot register new keys"
    );

    // An operator revokes instantly.
    let response = f
        .app
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/agents/{}/keys/{next_kid}", f.agent_id),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    f.refused_with(&sign(&next, &next_kid, &f.claims()), "key_revoked")
        .await;
    let keys: Value = f
        .app
        .get_json(&format!("/api/v1/agents/{}/keys", f.agent_id))
        .await;
    let statuses: Vec<&str> = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["status"].as_str())
        .collect();
    assert_eq!(statuses, ["revoked", "revoked"]);
    let changes = f
        .app
        .audit(&format!(
            "agent_id={}&event_type=agent_key_revoked",
            f.agent_id
        ))
        .await;
    let actors: Vec<&str> = changes.iter().filter_map(|e| e["actor"].as_str()).collect();
    assert_eq!(actors, ["admin-token", f.agent_id.as_str()]);
}

#[tokio::test]
async fn key_registration_accepts_public_keys_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let agent = app
        .create_agent(json!({ "name": "k", "token_endpoint_auth_method": "private_key_jwt" }))
        .await;
    let id = agent["agent_id"].as_str().expect("id").to_string();
    let register = |body: Value| {
        let request = app
            .admin(reqwest::Method::POST, &format!("/api/v1/agents/{id}/keys"))
            .json(&body);
        async move {
            let response = request.send().await.expect("send");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };

    // A certificate: the key is taken from it and expires with it.
    let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let certificate = rcgen::CertificateParams::new(vec!["agent.example".into()])
        .expect("params")
        .self_signed(&pair)
        .expect("cert");
    let (status, keys) = register(json!({ "pem": certificate.pem(), "kid": "from-cert" })).await;
    assert_eq!(status, 201, "{keys}");
    assert_eq!(keys[0]["kid"], "from-cert");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0]["expires_at"].is_string());

    // A JWK Set of two keys; kids default to RFC 7638 thumbprints.
    let jwk = |alg| {
        signet_core::token::SigningKey::generate(alg)
            .expect("key")
            .0
            .public_jwk()
            .clone()
    };
    let (status, keys) = register(json!({ "jwks": { "keys": [jwk(signet_core::token::SigningAlgorithm::EdDsa), jwk(signet_core::token::SigningAlgorithm::Es384)] } })).await;
    assert_eq!(status, 201, "{keys}");
    assert_eq!(keys.as_array().map(Vec::len), Some(2));
    // The body may also be the JWK or the JWK Set itself.
    let (status, keys) = register(jwk(signet_core::token::SigningAlgorithm::Es256)).await;
    assert_eq!(status, 201, "{keys}");
    assert_eq!(keys[0]["alg"], "ES256");
    let (status, keys) =
        register(json!({ "keys": [jwk(signet_core::token::SigningAlgorithm::Rs256)] })).await;
    assert_eq!(status, 201, "{keys}");
    assert_eq!(keys[0]["alg"], "RS256");

    let mut private_jwk = jwk(signet_core::token::SigningAlgorithm::Es256);
    private_jwk["d"] = json!("c2VjcmV0");
    let refusals = [
        (json!({ "pem": pair.serialize_pem() }), "private key"),
        (json!({ "jwk": private_jwk }), "private key"),
        (
            json!({ "jwk": { "kty": "RSA", "n": b64([0xC1u8; 128]), "e": "AQAB" } }),
            "at least 2048 bits",
        ),
        (
            json!({ "jwk": { "kty": "EC", "crv": "secp256k1", "x": b64([1u8; 32]), "y": b64([1u8; 32]) } }),
            "unsupported curve",
        ),
        (
            json!({ "jwk": { "kty": "oct", "k": "c2VjcmV0" } }),
            "symmetric",
        ),
        (
            json!({ "jwk": jwk(signet_core::token::SigningAlgorithm::Es256), "alg": "HS256" }),
            "not allowed",
        ),
        (
            json!({ "jwk": jwk(signet_core::token::SigningAlgorithm::Es256), "alg": "none" }),
            "not allowed",
        ),
        (
            json!({ "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }),
            "malformed",
        ),
        (json!({ "pem": "hello" }), "malformed"),
        (json!({ "kty": "oct", "k": "c2VjcmV0" }), "symmetric"),
        (json!({}), "exactly one"),
        (json!({ "jwk": {}, "extra": 1 }), "unknown field"),
        (
            json!({ "keys": [jwk(signet_core::token::SigningAlgorithm::Es256)], "expires_at": "2099-01-01T00:00:00Z" }),
            "cannot have `expires_at`",
        ),
    ];
    for (body, expected) in refusals {
        let (status, problem) = register(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        let detail = problem["detail"].as_str().expect("detail").to_lowercase();
        assert!(
            detail.contains(expected),
            "{detail} should mention {expected}"
        );
    }
    let keys: Value = app.get_json(&format!("/api/v1/agents/{id}/keys")).await;
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(5),
        "refused keys changed nothing"
    );

    // Keys belong to private_key_jwt agents only.
    let secret_agent = app.secret_agent().await;
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/keys", secret_agent.id),
        )
        .json(&json!({ "jwk": jwk(signet_core::token::SigningAlgorithm::Es256) }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn agents_can_be_created_with_a_jwks_and_metadata_advertises_the_method() {
    let app = TestApp::spawn().await;
    let (signing, pkcs8) =
        signet_core::token::SigningKey::generate(signet_core::token::SigningAlgorithm::Es256)
            .expect("key");
    let agent = app
        .create_agent(json!({ "name": "with-keys", "token_endpoint_auth_method": "private_key_jwt", "jwks": { "keys": [signing.public_jwk()] } }))
        .await;
    assert_eq!(agent["keys"][0]["kid"], signing.kid());
    let agent_id = agent["agent_id"].as_str().expect("id");
    let key = signet_core::token::SigningKey::from_pkcs8(
        signet_core::token::SigningAlgorithm::Es256,
        &pkcs8,
    )
    .expect("key");
    let assertion = key.sign_assertion(None, claims_for(&app, agent_id).to_string().as_bytes());
    assert_eq!(token_request(&app, None, &assertion).await.status(), 200);

    let metadata: Value = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.url
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .expect("methods");
    assert!(methods.iter().any(|m| m == "private_key_jwt"));
    let algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .expect("algs");
    for alg in ["RS256", "PS512", "ES256", "ES384", "EdDSA"] {
        assert!(algs.iter().any(|a| a == alg), "{alg}");
    }
    assert!(!algs.iter().any(|a| a == "none" || a == "HS256"));
}

#[tokio::test]
async fn signet_token_signs_a_fresh_assertion_from_a_key_file_and_rotates_it() {
    let app = TestApp::spawn().await;
    let key = AgentKey::new(Algorithm::ES256);
    let agent = app
        .create_agent(json!({ "name": "cli-jwt", "token_endpoint_auth_method": "private_key_jwt" }))
        .await;
    let agent_id = agent["agent_id"].as_str().expect("id").to_string();
    let public = app.data_dir.join("agent.pub.pem");
    let private = app.data_dir.join("agent.key.pem");
    std::fs::write(&public, key.pair.public_key_pem()).expect("write");
    std::fs::write(&private, key.pair.serialize_pem()).expect("write");

    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let url = app.url.clone();
        async move {
            tokio::process::Command::new(common::signet_bin())
                .args(args)
                .env_clear()
                .env("SIGNET_URL", url)
                .envs(env)
                .output()
                .await
                .expect("run")
        }
    };
    let admin = vec![("SIGNET_ADMIN_TOKEN", common::ADMIN_TOKEN.to_string())];
    let added = run(
        vec![
            "agent".into(),
            "add-key".into(),
            agent_id.clone(),
            "--file".into(),
            public.display().to_string(),
        ],
        admin.clone(),
    )
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = run(vec!["agent".into(), "keys".into(), agent_id.clone()], admin).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains("active"));

    let agent_env = vec![
        ("SIGNET_AGENT_ID", agent_id.clone()),
        ("SIGNET_AGENT_KEY_FILE", private.display().to_string()),
    ];
    for _ in 0..2 {
        let output = run(vec!["token".into(), "--claims".into()], agent_env.clone()).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let claims: Value = serde_json::from_slice(&output.stdout).expect("claims");
        assert_eq!(claims["sub"], agent_id);
    }
    let audit = app
        .audit(&format!(
            "agent_id={agent_id}&outcome=success&event_type=token_request"
        ))
        .await;
    assert_eq!(audit.len(), 2, "each run made a fresh assertion");

    // Creating the agent with its key in one command.
    let created = run(
        vec![
            "agent".into(),
            "create".into(),
            "--name".into(),
            "one-step".into(),
            "--key-file".into(),
            public.display().to_string(),
            "--json".into(),
        ],
        vec![("SIGNET_ADMIN_TOKEN", common::ADMIN_TOKEN.to_string())],
    )
    .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).expect("json");
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    let second_id = created["agent_id"].as_str().expect("id").to_string();
    let output = run(
        vec!["token".into()],
        vec![
            ("SIGNET_AGENT_ID", second_id),
            ("SIGNET_AGENT_KEY_FILE", private.display().to_string()),
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The first agent rotates its own key pair, as a cron job would: a new key in the file
    // (mode 0600), registered; the old one revoked.
    let old_key = std::fs::read_to_string(&private).expect("read");
    // With a key ID set by hand the rotated key could not be named: refused before any change.
    let mut named = agent_env.clone();
    named.push(("SIGNET_AGENT_KEY_ID", "my-key".into()));
    let refused = run(vec!["token".into(), "rotate-key".into()], named).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("SIGNET_AGENT_KEY_ID"));
    assert_eq!(std::fs::read_to_string(&private).expect("read"), old_key);
    let keys = app
        .get_json(&format!("/api/v1/agents/{agent_id}/keys"))
        .await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "no key added");
    let rotated = run(vec!["token".into(), "rotate-key".into()], agent_env.clone()).await;
    let said = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(
        rotated.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        said.contains("New key") && said.contains("is revoked"),
        "{said}"
    );
    let new_key = std::fs::read_to_string(&private).expect("read");
    assert_ne!(new_key, old_key);
    assert!(new_key.contains("BEGIN PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let output = run(vec!["token".into()], agent_env.clone()).await;
    assert!(output.status.success(), "the new key gets tokens");
    let old_file = app.data_dir.join("old.key.pem");
    std::fs::write(&old_file, &old_key).expect("write");
    let output = run(
        vec!["token".into()],
        vec![
            ("SIGNET_AGENT_ID", agent_id.clone()),
            ("SIGNET_AGENT_KEY_FILE", old_file.display().to_string()),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "the old key is refused");
    let keys = app
        .get_json(&format!("/api/v1/agents/{agent_id}/keys"))
        .await;
    let mut statuses: Vec<&str> = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["status"].as_str())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["active", "revoked"]);
    for event_type in ["agent_key_added", "agent_key_revoked"] {
        let changes = app
            .audit(&format!("agent_id={agent_id}&event_type={event_type}"))
            .await;
        assert_eq!(changes[0]["actor"], agent_id.as_str(), "{event_type}");
    }
}

/// The agent's own key management is locked like the token endpoint: past the threshold of
/// failed assertions from an address, 429 with `Retry-After`, nothing looked up and nothing more
/// written to the audit log.
#[tokio::test]
async fn self_service_failures_are_locked_out() {
    let app = TestApp::spawn_with(&[("SIGNET_LOCKOUT_THRESHOLD", "3")]).await;
    let attempt = || {
        app.http
            .post(format!("{}/api/v1/self/keys", app.url))
            .json(&json!({ "client_assertion": "not.an.assertion", "pem": "-" }))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt().await.expect("send").status(), 401);
    }
    let locked = attempt().await.expect("send");
    assert_eq!(locked.status(), 429);
    let retry: i64 = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0);
    let recorded = app
        .audit("event_type=agent_key_added&outcome=failure")
        .await;
    assert_eq!(recorded.len(), 3, "{recorded:?}");
}
