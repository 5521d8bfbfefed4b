//! Private Key JWT (RFC 7523) over real HTTP. Assertions are made with jsonwebtoken, a JWT
//! library independent of the server's verification code; keys and certificates with rcgen.

mod common;

use common::TestApp;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
    RsaKeySize,
};
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// An agent's key pair, as the agent holds it.
struct AgentKey {
    pair: KeyPair,
    alg: Algorithm,
}

impl AgentKey {
    fn new(alg: Algorithm) -> Self {
        let pair = match alg {
            Algorithm::ES256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
            Algorithm::ES384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
            Algorithm::EdDSA => KeyPair::generate_for(&PKCS_ED25519),
            _ => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        }
        .expect("key generation");
        Self { pair, alg }
    }

    fn encoding_key(&self) -> EncodingKey {
        let pem = self.pair.serialize_pem();
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("encoding key")
    }

    fn alg_name(&self) -> String {
        serde_json::to_value(self.alg)
            .expect("alg")
            .as_str()
            .expect("name")
            .to_string()
    }
}

struct Fixture {
    app: TestApp,
    agent_id: String,
    key: AgentKey,
    kid: String,
}

impl Fixture {
    async fn new(alg: Algorithm) -> Self {
        // A fixed issuer, so that assertions stay valid across a restart on another port.
        let app = TestApp::spawn_with(&[("SIGNET_ISSUER", "http://signet.test")]).await;
        let (agent_id, key, kid) = jwt_agent(&app, alg).await;
        Self {
            app,
            agent_id,
            key,
            kid,
        }
    }

    fn claims(&self) -> Value {
        claims_for(&self.app, &self.agent_id)
    }

    fn sign(&self, claims: &Value) -> String {
        sign(&self.key, &self.kid, claims)
    }

    async fn token(&self, assertion: &str) -> reqwest::Response {
        token_request(&self.app, Some(&self.agent_id), assertion).await
    }

    async fn refused_with(&self, assertion: &str, reason: &str) {
        let response = self.token(assertion).await;
        assert_eq!(response.status(), 401, "{reason}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client", "{reason}");
        assert_eq!(
            body["error_description"], "client authentication failed",
            "{reason}: the wire error stays vague"
        );
        assert_eq!(
            self.app.last_token_reason(&self.agent_id).await.as_deref(),
            Some(reason)
        );
    }
}

/// Registers a private_key_jwt agent with a new key (as PEM) and returns its ID, key and kid.
async fn jwt_agent(app: &TestApp, alg: Algorithm) -> (String, AgentKey, String) {
    let key = AgentKey::new(alg);
    let agent = app
        .create_agent(json!({ "name": "jwt-agent", "token_endpoint_auth_method": "private_key_jwt", "scopes": ["read"] }))
        .await;
    let agent_id = agent["agent_id"].as_str().expect("id").to_string();
    let kid = add_key(app, &agent_id, &key).await;
    (agent_id, key, kid)
}

async fn add_key(app: &TestApp, agent_id: &str, key: &AgentKey) -> String {
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent_id}/keys"),
        )
        .json(&json!({ "pem": key.pair.public_key_pem(), "alg": key.alg_name() }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let keys: Value = response.json().await.expect("json");
    keys[0]["kid"].as_str().expect("kid").to_string()
}

fn claims_for(app: &TestApp, agent_id: &str) -> Value {
    let now = signet_core::now();
    let jti: [u8; 12] = signet_core::crypto::random_bytes();
    json!({
        "iss": agent_id,
        "sub": agent_id,
        "aud": format!("{}/oauth2/token", app.issuer),
        "iat": now,
        "exp": now + 60,
        "jti": signet_core::encoding::b64url(jti),
    })
}

fn sign(key: &AgentKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(kid.to_string());
    encode(&header, claims, &key.encoding_key()).expect("sign")
}

async fn token_request(
    app: &TestApp,
    client_id: Option<&str>,
    assertion: &str,
) -> reqwest::Response {
    let mut form = format!(
        "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
    );
    if let Some(id) = client_id {
        form.push_str(&format!("&client_id={id}"));
    }
    app.post_form("/oauth2/token", None, &form).await
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().expect("object").remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    signet_core::encoding::b64url(bytes)
}

#[tokio::test]
async fn every_algorithm_is_accepted() {
    let app = TestApp::spawn().await;
    let algorithms = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    for alg in algorithms {
        let (agent_id, key, kid) = jwt_agent(&app, alg).await;
        let assertion = sign(&key, &kid, &claims_for(&app, &agent_id));
        // With client_id, and without (the agent is then found by `sub`).
        let response = token_request(&app, Some(&agent_id), &assertion).await;
        assert_eq!(response.status(), 200, "{alg:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            common::claims(body["access_token"].as_str().expect("token"))["sub"],
            agent_id
        );
        let second = sign(&key, &kid, &claims_for(&app, &agent_id));
        assert_eq!(
            token_request(&app, None, &second).await.status(),
            200,
            "{alg:?} without client_id"
        );
        let audit = app
            .audit(&format!("agent_id={agent_id}&outcome=success&limit=1"))
            .await;
        assert_eq!(audit[0]["method"], "private_key_jwt");
        assert_eq!(audit[0]["detail"]["client_kid"], kid);
    }
}

#[tokio::test]
async fn attacks_are_refused_with_precise_reasons() {
    let f = Fixture::new(Algorithm::ES256).await;
    let attacker = AgentKey::new(Algorithm::ES256);
    let claims = f.claims();
    let payload = b64(claims.to_string());

    // alg: none.
    let none = format!(
        "{}.{payload}.",
        b64(json!({"alg": "none", "kid": f.kid}).to_string())
    );
    f.refused_with(&none, "alg_not_allowed").await;

    // Algorithm confusion: HS256 keyed with the public key's bytes.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(f.kid.clone());
    let public_pem = f.key.pair.public_key_pem();
    let hs256 = encode(
        &header,
        &claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .expect("sign");
    f.refused_with(&hs256, "alg_not_allowed").await;

    // Headers that carry or point to the attacker's key, with the victim's kid.
    let attacker_jwk = json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
    for (name, value) in [
        ("jwk", attacker_jwk),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut header = json!({"alg": "ES256", "kid": f.kid, "typ": "JWT"});
        header[name] = value;
        let signing_input = format!("{}.{payload}", b64(header.to_string()));
        let signature = encode_raw(&attacker, &signing_input);
        f.refused_with(
            &format!("{signing_input}.{signature}"),
            "embedded_key_header",
        )
        .await;
    }

    // Claims.
    let aud = format!("{}/oauth2/token", f.app.issuer);
    let now = signet_core::now();
    let cases = [
        (
            with(f.claims(), "aud", json!([aud, "https://other.example"])),
            "bad_audience",
        ),
        (
            with(
                f.claims(),
                "aud",
                json!("https://other.example/oauth2/token"),
            ),
            "bad_audience",
        ),
        (
            with(f.claims(), "iss", json!("agt_0000000000000000000000")),
            "bad_issuer",
        ),
        (
            with(
                with(f.claims(), "exp", json!(now - 120)),
                "iat",
                json!(now - 180),
            ),
            "assertion_expired",
        ),
        (
            with(f.claims(), "exp", json!(now + 3600)),
            "lifetime_too_long",
        ),
        (with(f.claims(), "jti", Value::Null), "missing_jti"),
        (with(f.claims(), "nbf", json!(now + 600)), "not_yet_valid"),
    ];
    for (claims, reason) in cases {
        f.refused_with(&f.sign(&claims), reason).await;
    }
    // An array holding exactly the token endpoint, and the issuer itself, are fine.
    assert_eq!(
        f.token(&f.sign(&with(f.claims(), "aud", json!([aud]))))
            .await
            .status(),
        200
    );
    assert_eq!(
        f.token(&f.sign(&with(f.claims(), "aud", json!(f.app.issuer))))
            .await
            .status(),
        200
    );

    // `sub` of another agent, signed by this agent's key, presented as this agent.
    let (other_id, _, _) = jwt_agent(&f.app, Algorithm::ES256).await;
    let impersonation = with(
        with(f.claims(), "sub", json!(other_id)),
        "iss",
        json!(other_id),
    );
    f.refused_with(&f.sign(&impersonation), "subject_mismatch")
        .await;

    // Unknown kid, wrong key, alg other than the pinned one.
    f.refused_with(
        &sign(&attacker, "not-a-registered-kid", &f.claims()),
        "unknown_kid",
    )
    .await;
    f.refused_with(&sign(&attacker, &f.kid, &f.claims()), "bad_signature")
        .await;
    let mut header = json!({"alg": "ES384", "kid": f.kid});
    header["typ"] = json!("JWT");
    let forged = format!("{}.{payload}.{}", b64(header.to_string()), b64([7u8; 96]));
    f.refused_with(&forged, "alg_mismatch").await;

    // Broken tokens.
    let good = f.sign(&f.claims());
    f.refused_with(&good[..good.len() / 2], "malformed_assertion")
        .await;
    f.refused_with("not$base64.at~all.!!", "malformed_assertion")
        .await;
    f.refused_with(
        &format!("{}.{}.{}", "a".repeat(6000), "b".repeat(6000), "c"),
        "assertion_too_large",
    )
    .await;

    // No token was issued by any of the above.
    let successes = f
        .app
        .audit(&format!(
            "agent_id={}&outcome=success&event_type=token_request",
            f.agent_id
        ))
        .await;
    assert_eq!(successes.len(), 2);
}

/// Signs a hand-made signing input (ES256 keys only): jsonwebtoken always writes its own header.
fn encode_raw(key: &AgentKey, signing_input: &str) -> String {
    let der = key.pair.serialize_der();
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    )
    .expect("pkcs8");
    let signature = pair
        .sign(
            &aws_lc_rs::rand::SystemRandom::new(),
            signing_input.as_bytes(),
        )
        .expect("sign");
    b64(signature.as_ref())
}

#[tokio::test]
async fn a_jti_is_used_once_even_across_a_restart() {
    let f = Fixture::new(Algorithm::EdDSA).await;
    let claims = f.claims();
    let assertion = f.sign(&claims);

    // A request with a bad signature but an unused jti must not burn it...
    let attacker = AgentKey::new(Algorithm::EdDSA);
    f.refused_with(&sign(&attacker, &f.kid, &claims), "bad_signature")
        .await;
    // ...nor one refused for a scope it may not have.
    let form = format!(
        "grant_type=client_credentials&scope=admin&client_assertion_type={JWT_BEARER}&client_assertion={assertion}&client_id={}",
        f.agent_id
    );
    assert_eq!(
        f.app.post_form("/oauth2/token", None, &form).await.status(),
        400
    );
    // ...so the legitimate request with that jti succeeds.
    assert_eq!(f.token(&assertion).await.status(), 200);
    f.refused_with(&assertion, "jti_replayed").await;

    let Fixture {
        app,
        agent_id,
        key,
        kid,
    } = f;
    let app = app.restart().await;
    let f = Fixture {
        app,
        agent_id,
        key,
        kid,
    };
    f.refused_with(&assertion, "jti_replayed").await;
    assert_eq!(
        f.token(&f.sign(&f.claims())).await.status(),
        200,
        "a fresh jti still works"
    );
}

#[tokio::test]
async fn keys_rotate_without_downtime() {
    let f = Fixture::new(Algorithm::ES256).await;
    let next = AgentKey::new(Algorithm::ES256);

    // The agent registers its next key itself, proving possession of the current one.
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
        .json(&json!({ "client_assertion": sign(&next, &next_kid, &f.claims()) }))
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
        .json(&json!({ "client_assertion": sign(&next, &next_kid, &f.claims()) }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
    let response = f
        .app
        .http
        .post(format!("{}/api/v1/self/keys", f.app.url))
        .json(&json!({ "client_assertion": f.sign(&f.claims()), "pem": AgentKey::new(Algorithm::ES256).pair.public_key_pem() }))
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
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/agents/{}/keys", f.agent_id),
        )
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
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
        (json!({}), "exactly one"),
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
    let keys: Value = app
        .admin(reqwest::Method::GET, &format!("/api/v1/agents/{id}/keys"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(3),
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
async fn signet_token_signs_a_fresh_assertion_from_a_key_file() {
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
}
