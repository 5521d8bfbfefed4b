//! Self-service key rotation for `private_key_jwt` agents: an agent registers its next public key,
//! or revokes an old one, authenticated by a client assertion signed with a current key. With
//! several keys active at once, rotation needs no downtime and no operator.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use signet_core::agent::AgentId;
use signet_core::audit::{AuditEvent, event};
use signet_core::client_auth::{Assertion, ClientAuthError, PresentedCredentials};
use utoipa::ToSchema;

use crate::admin::json::ApiJson;
use crate::admin::keys::{KeyRegistration, KeyView};
use crate::admin::problem::Problem;
use crate::oauth::client_auth::{lock_keys, record_lock_events};
use crate::request::Caller;
use crate::state::AppState;

/// A self-service request: a client assertion (as at the token endpoint, but with `aud` = this
/// endpoint, `<issuer>/api/v1/self/keys`, for registration and revocation alike) and, for
/// registration, the new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfServiceKeyRequest {
    /// A fresh client assertion signed with one of the agent's current keys, `aud` =
    /// `<issuer>/api/v1/self/keys`.
    client_assertion: String,
    /// The new public key as a JWK…
    #[schema(value_type = Option<Object>)]
    jwk: Option<serde_json::Value>,
    /// …or a JWK Set…
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// …or PEM (public key or certificate).
    pem: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    /// When the new key stops being accepted (RFC 3339).
    expires_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfServiceAuth {
    /// A fresh client assertion signed with one of the agent's current keys, `aud` =
    /// `<issuer>/api/v1/self/keys`.
    client_assertion: String,
}

/// Authenticates the agent by its assertion and records the assertion's `jti`. Failures count
/// towards the same locks as the token endpoint's (per agent and per address); while locked,
/// 429 with nothing looked up and nothing recorded.
async fn authenticate(
    state: &AppState,
    caller: &Caller,
    assertion: &str,
    event_type: &str,
) -> Result<String, Problem> {
    let now = state.now();
    let source = caller.lock_key();
    let parsed = Assertion::parse(assertion);
    let claimed = parsed
        .as_ref()
        .ok()
        .and_then(Assertion::subject)
        .unwrap_or_default()
        .to_string();
    let keys = lock_keys(&claimed, &source);
    let (retry, ended) = state.lockouts.check(&keys, now);
    record_lock_events(state, ended);
    if let Some(retry) = retry {
        return Err(Problem::too_many_requests(retry));
    }
    let failed = || record_lock_events(state, state.lockouts.failure(&keys, now));
    let failure = |e: ClientAuthError, agent: Option<&str>| {
        AuditEvent::failure(event_type, e.reason())
            .with_agent(agent)
            .with_method("private_key_jwt")
            .with_source(caller.source(), caller.user_agent.as_deref())
    };
    let refuse = |e: ClientAuthError| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            format!("client authentication failed ({})", e.reason()),
        )
    };
    let assertion = match parsed {
        Ok(a) => a,
        Err(e) => {
            failed();
            state.store.audit().record(failure(e, None)).await?;
            return Err(refuse(e));
        }
    };
    let agent_id = claimed.clone();
    let credentials = if AgentId::is_well_formed(&agent_id) {
        state.store.agent_credentials(&agent_id).await?
    } else {
        None
    };
    let presented = PresentedCredentials::Assertion {
        agent_id: None,
        assertion,
    };
    let verified = state
        .check_credentials_for(
            &presented,
            credentials.as_deref(),
            caller.ip,
            &state.key_management_policy,
        )
        .map(|a| a.assertion);
    let verified = match verified {
        Ok(Some(v)) => v,
        Ok(None) => return Err(refuse(ClientAuthError::MethodMismatch)),
        Err(e) => {
            failed();
            state
                .store
                .audit()
                .record(failure(e, Some(&agent_id)))
                .await?;
            // Same answer whatever the reason, as at the token endpoint.
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "client authentication failed",
            ));
        }
    };
    if !state
        .store
        .record_jti(&agent_id, &verified.jti, verified.jti_expires_at)
        .await?
    {
        state
            .store
            .audit()
            .record(failure(ClientAuthError::JtiReplayed, Some(&agent_id)))
            .await?;
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "client authentication failed",
        ));
    }
    state.lockouts.success(&keys);
    Ok(agent_id)
}

/// An agent registers another public key for itself.
#[utoipa::path(
    post, path = "/api/v1/self/keys", tag = "self-service", request_body = SelfServiceKeyRequest,
    responses(
        (status = 201, description = "Registered", body = Vec<KeyView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The assertion was refused", body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<SelfServiceKeyRequest>,
) -> Result<(StatusCode, Json<Vec<KeyView>>), Problem> {
    // Who asks first: nothing of an unauthenticated request is parsed beyond its assertion.
    let agent_id = authenticate(
        &state,
        &caller,
        &request.client_assertion,
        event::AGENT_KEY_ADDED,
    )
    .await?;
    let keys = KeyRegistration {
        jwk: request.jwk,
        jwks: request.jwks,
        pem: request.pem,
        kid: request.kid,
        alg: request.alg,
        expires_at: request.expires_at,
    }
    .parse()?;
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    let audit = AuditEvent::success(event::AGENT_KEY_ADDED)
        .with_actor(&agent_id)
        .with_agent(Some(&agent_id))
        .with_source(caller.source(), caller.user_agent.as_deref())
        .with_detail(json!({ "kids": kids, "self_service": true }));
    state.store.add_agent_keys(&agent_id, &keys, audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(keys.iter().map(KeyView::new).collect()),
    ))
}

/// An agent retires one of its keys. The last active key cannot be revoked this way.
#[utoipa::path(
    post, path = "/api/v1/self/keys/{kid}/revoke", tag = "self-service", request_body = SelfServiceAuth,
    params(("kid" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "The assertion was refused", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the agent's last active key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(kid): Path<String>,
    ApiJson(request): ApiJson<SelfServiceAuth>,
) -> Result<StatusCode, Problem> {
    let agent_id = authenticate(
        &state,
        &caller,
        &request.client_assertion,
        event::AGENT_KEY_REVOKED,
    )
    .await?;
    let now = state.now();
    let keys = state.store.agent_keys(&agent_id).await?;
    let active = |k: &&signet_core::jwk::AgentKey| {
        k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now)
    };
    if !keys.iter().filter(active).any(|k| k.kid == kid) {
        return Err(Problem::not_found("active key"));
    }
    if keys.iter().filter(active).count() == 1 {
        return Err(Problem::conflict(
            "this is the agent's last active key: register the next key first",
        ));
    }
    let audit = AuditEvent::success(event::AGENT_KEY_REVOKED)
        .with_actor(&agent_id)
        .with_agent(Some(&agent_id))
        .with_source(caller.source(), caller.user_agent.as_deref())
        .with_detail(json!({ "kid": kid, "self_service": true }));
    // Checked above for a clear answer; the store checks again as it revokes, for the race.
    if !state
        .store
        .revoke_agent_key_keeping_one(&agent_id, &kid, now, audit)
        .await?
    {
        return Err(Problem::conflict(
            "this is the agent's last active key: register the next key first",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
