//! The one route table. The OpenAPI document served at `/api/v1/openapi.json` is generated from
//! it, so the two cannot drift apart.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::problem::Problem;
use crate::admin::{
    admin_tokens, agents, alerts, audit, audit_verify, certificates, expiring, keys, lockouts,
    revocations, signing_keys,
};
use crate::agent_ca;
use crate::health;
use crate::oauth::{introspect, jwks, metadata, revoke, token};
use crate::state::AppState;
use crate::{self_service, self_service_secret};

#[derive(OpenApi)]
#[openapi(
    info(title = "Signet", description = "Identity provider for AI agents: OAuth 2.0 endpoints and the admin API."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "oauth", description = "OAuth 2.0 endpoints for agents and resource servers"),
        (name = "agents", description = "Register and manage agents"),
        (name = "keys", description = "Public keys of private_key_jwt agents"),
        (name = "certificates", description = "Client certificates for mutual TLS: registration, issuance by the agent CA, revocation"),
        (name = "pki", description = "The agent CA's certificate and CRL"),
        (name = "self-service", description = "Agents managing their own credentials"),
        (name = "audit", description = "The audit log"),
        (name = "signing-keys", description = "Token signing keys"),
        (name = "admin-tokens", description = "Named admin API tokens with a role, and retiring the bootstrap token"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "client_secret_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The route table and the OpenAPI document generated from it.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(metadata::metadata))
        .routes(routes!(metadata::openid_configuration))
        .routes(routes!(token::token))
        .routes(routes!(jwks::jwks))
        .routes(routes!(introspect::introspect))
        .routes(routes!(revoke::revoke))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(
            agents::get_agent,
            agents::patch_agent,
            agents::delete_agent
        ))
        .routes(routes!(agents::regenerate_secret))
        .routes(routes!(agents::revoke_tokens))
        .routes(routes!(keys::list_keys, keys::add_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(
            certificates::list_certificates,
            certificates::add_certificate
        ))
        .routes(routes!(certificates::remove_certificate))
        .routes(routes!(certificates::issue_certificate))
        .routes(routes!(
            revocations::revoke_certificate,
            revocations::list_revocations
        ))
        .routes(routes!(revocations::trusted_cas))
        .routes(routes!(expiring::list_expiring))
        .routes(routes!(agent_ca::ca_certificate))
        .routes(routes!(agent_ca::crl))
        .routes(routes!(agent_ca::renew))
        .routes(routes!(self_service_secret::rotate_secret))
        .routes(routes!(self_service::register_key))
        .routes(routes!(self_service::revoke_key))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit_verify::verify_audit))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::acknowledge_alert))
        .routes(routes!(alerts::alert_deliveries))
        .routes(routes!(
            admin_tokens::create_admin_token,
            admin_tokens::list_admin_tokens
        ))
        .routes(routes!(admin_tokens::revoke_admin_token))
        .routes(routes!(admin_tokens::retire_bootstrap_token))
        .routes(routes!(lockouts::list_lockouts))
        .routes(routes!(lockouts::lift_lockout))
        .routes(routes!(signing_keys::list_signing_keys))
        .routes(routes!(signing_keys::rotate_signing_key))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::metrics::metrics))
        .split_for_parts()
}

/// The application: routes, the OpenAPI document, and a problem-details 404.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes();
    let openapi = std::sync::Arc::new(openapi);
    router
        // Not in the OpenAPI document: it answers only with SIGNET_TESTING_CLOCK=1.
        .route(
            "/api/v1/testing/clock",
            axum::routing::put(crate::admin::testing_clock::set_clock),
        )
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()).into_response() }),
        )
        // The console's forms are small (the largest carry a JWK Set, a certificate or a CSR);
        // its routes read them with axum's limit.
        .merge(crate::console::routes(state.clone()).layer(DefaultBodyLimit::max(64 * 1024)))
        .fallback(|| async {
            Problem::new(axum::http::StatusCode::NOT_FOUND, "no such endpoint").into_response()
        })
        // Bodies are read by the endpoints themselves, with the configured limit and a clean 413.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::request_id::assign,
        ))
        // Outermost: a shed request costs as little as possible.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::overload::admit,
        ))
        .with_state(state)
}

/// The OpenAPI document as JSON, for snapshot tests and `signet openapi`.
pub fn openapi_json() -> String {
    let (_, openapi) = routes();
    openapi.to_pretty_json().unwrap_or_default()
}
