//! Private Key JWT (RFC 7523) over real HTTP: every algorithm, the attack list, replay. Assertions
//! are made with jsonwebtoken, a JWT library independent of the server's verification code.

mod common;

use common::TestApp;
use common::jwt::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

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

/// Concurrent uses of one assertion: its `jti` is recorded with the request's audit record in
/// one commit, so one request gets a token (and the success record carries that token's
/// `jti`), every other is refused as a replay and audited as one.
#[tokio::test]
async fn concurrent_replays_get_one_token_and_every_use_is_audited() {
    let f = Fixture::new(Algorithm::ES256).await;
    let assertion = f.sign(&f.claims());
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}&client_id={}",
        f.agent_id
    );
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let request = f
                .app
                .http
                .post(format!("{}/oauth2/token", f.app.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone());
            tokio::spawn(async move { request.send().await.expect("send") })
        })
        .collect();
    let mut tokens = Vec::new();
    for request in requests {
        let response = request.await.expect("join");
        match response.status().as_u16() {
            200 => {
                let body: serde_json::Value = response.json().await.expect("json");
                tokens.push(body["access_token"].as_str().expect("token").to_string());
            }
            401 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(tokens.len(), 1, "exactly one request gets a token");
    let issued = common::claims(&tokens[0]);
    let records = f
        .app
        .audit(&format!(
            "agent_id={}&event_type=token_request&limit=100",
            f.agent_id
        ))
        .await;
    let successes: Vec<_> = records
        .iter()
        .filter(|r| r["outcome"] == "success")
        .collect();
    assert_eq!(successes.len(), 1);
    assert_eq!(successes[0]["jti"], issued["jti"]);
    let replays = records
        .iter()
        .filter(|r| r["reason"] == "jti_replayed")
        .count();
    assert_eq!(replays, 19);
}
