//! Authorization server metadata (RFC 8414), also served at the OpenID Connect discovery path
//! for client libraries that only look there. Signet is not an OpenID Provider: it issues no ID
//! tokens and has no authorization endpoint, so `response_types_supported` is empty.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;
use signet_core::token::SigningAlgorithm;

/// Metadata document.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "RFC 8414 metadata", body = Object))
)]
pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = &*state.issuer;
    let mut auth_methods = vec![
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    if state.mtls_base_url.is_some() {
        auth_methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
    }
    let assertion_algs: Vec<&str> = SigningAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    let mut document = json!({
        "issuer": issuer,
        "token_endpoint": state.token_endpoint(),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "access_token_signing_alg_values_supported": [state.keys.active().alg().as_str()],
        "service_documentation": format!("{issuer}/api/v1/openapi.json"),
    });
    // RFC 8705 §5: tokens requested over mutual TLS are certificate-bound, and the endpoints
    // that take client certificates live on the TLS listener.
    if let Some(base) = state.mtls_base_url.as_deref() {
        document["tls_client_certificate_bound_access_tokens"] = json!(true);
        document["mtls_endpoint_aliases"] = json!({
            "token_endpoint": format!("{base}/oauth2/token"),
            "introspection_endpoint": format!("{base}/oauth2/introspect"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
        });
    }
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(document),
    )
}

/// The same document at the OpenID Connect discovery path.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "oauth",
    responses((status = 200, description = "The RFC 8414 metadata document", body = Object))
)]
pub async fn openid_configuration(state: State<AppState>) -> impl IntoResponse {
    metadata(state).await
}
