//! Access tokens verify against the published JWKS with an independent JWT library
//! (jsonwebtoken), for every signing algorithm; metadata points at the right places.

mod common;

use common::TestApp;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

async fn verify_with_jwks(alg: &str, expected: Algorithm) {
    let app = TestApp::spawn_with(&[("SIGNET_TOKEN_SIGNING_ALG", alg)]).await;
    let agent = app.secret_agent().await;
    let token = app.access_token(&agent).await;

    let jwks: JwkSet = app
        .http
        .get(format!("{}/oauth2/jwks", app.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("jwks");
    let header = decode_header(&token).expect("header");
    assert_eq!(header.alg, expected, "{alg}");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the token's kid is published");
    let key = DecodingKey::from_jwk(jwk).expect("usable JWK");
    let mut validation = Validation::new(expected);
    validation.set_audience(&["https://api.example"]);
    validation.set_issuer(&[&app.url]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = decode::<Value>(&token, &key, &validation).unwrap_or_else(|e| panic!("{alg}: {e}"));
    assert_eq!(data.claims["sub"], agent.id);

    // A tampered token does not verify.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert!(
        decode::<Value>(&parts.join("."), &key, &validation).is_err(),
        "{alg}"
    );
}

#[tokio::test]
async fn es256_tokens_verify() {
    verify_with_jwks("ES256", Algorithm::ES256).await;
}

#[tokio::test]
async fn es384_tokens_verify() {
    verify_with_jwks("ES384", Algorithm::ES384).await;
}

#[tokio::test]
async fn eddsa_tokens_verify() {
    verify_with_jwks("EdDSA", Algorithm::EdDSA).await;
}

#[tokio::test]
async fn rs256_tokens_verify() {
    verify_with_jwks("RS256", Algorithm::RS256).await;
}

#[tokio::test]
async fn ps256_tokens_verify() {
    verify_with_jwks("PS256", Algorithm::PS256).await;
}

#[tokio::test]
async fn metadata_describes_the_server() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata: Value = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(metadata["issuer"], app.url);
        assert_eq!(
            metadata["token_endpoint"],
            format!("{}/oauth2/token", app.url)
        );
        assert_eq!(metadata["jwks_uri"], format!("{}/oauth2/jwks", app.url));
        assert_eq!(
            metadata["introspection_endpoint"],
            format!("{}/oauth2/introspect", app.url)
        );
        assert_eq!(
            metadata["revocation_endpoint"],
            format!("{}/oauth2/revoke", app.url)
        );
        assert_eq!(
            metadata["grant_types_supported"],
            serde_json::json!(["client_credentials"])
        );
        let methods = metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("methods");
        assert!(methods.iter().any(|m| m == "client_secret_basic"));
        assert!(methods.iter().any(|m| m == "client_secret_post"));
    }
}

#[tokio::test]
async fn changing_the_algorithm_keeps_the_old_key_published() {
    let app = TestApp::spawn_with(&[("SIGNET_TOKEN_SIGNING_ALG", "ES256")]).await;
    let agent = app.secret_agent().await;
    let old_token = app.access_token(&agent).await;
    let data_dir = app.data_dir.clone();
    let database_url = app.database_url();
    let mut first = app;
    first.stop().await; // `first` keeps the temporary data directory alive until the end.
    // Same data directory and database, new algorithm: a new key signs, the old one stays
    // published.
    let env = [
        ("SIGNET_TOKEN_SIGNING_ALG", "EdDSA"),
        ("SIGNET_DATA_DIR", data_dir.to_str().expect("utf8")),
        ("SIGNET_DATABASE_URL", database_url.as_str()),
    ];
    let app = TestApp::spawn_with(&env).await;
    let jwks: Value = app
        .http
        .get(format!("{}/oauth2/jwks", app.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["alg"], "EdDSA", "the active key comes first");
    assert_eq!(keys[1]["alg"], "ES256");
    let new_token = app.access_token(&agent).await;
    assert_eq!(
        decode_header(&new_token).expect("header").alg,
        Algorithm::EdDSA
    );
    assert_eq!(
        decode_header(&old_token).expect("header").alg,
        Algorithm::ES256
    );
}
