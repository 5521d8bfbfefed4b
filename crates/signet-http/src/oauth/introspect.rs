//! `POST /oauth2/introspect` (RFC 7662): whether a token is active right now. A token is
//! inactive when its signature, issuer or expiry fail, when it was revoked, or when its agent
//! was disabled or deleted, so revocation takes effect here at once.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use signet_core::agent::AgentStatus;
use signet_core::audit::{AuditEvent, event};
use signet_core::token::{AccessTokenClaims, verify_access_token};
use signet_store::StoreError;

use super::client_auth::{self, Attempt, Failure};
use super::error::{OAuthError, no_store};
use super::{audited, read_form};
use crate::request::Caller;
use crate::state::AppState;

/// Introspects a token.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token=…&token_type_hint=access_token"),
    responses(
        (status = 200, description = "Introspection response; `active: false` for any token that is not active", body = Object),
        (status = 401, description = "Caller authentication failed", body = super::token::OAuthErrorBody),
    ),
    security(("client_secret_basic" = []), ("admin_token" = []))
)]
pub async fn introspect(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut attempt = Attempt::default();
    let form = match read_form(&state, &headers, body).await {
        Ok(form) => form,
        Err((reason, wire)) => {
            return audited(
                &state,
                &caller,
                &attempt,
                AuditEvent::failure(event::INTROSPECTION, reason),
                wire.into_response(),
            )
            .await;
        }
    };
    let caller_identity = match client_auth::authenticate_endpoint_caller(
        &state,
        &caller,
        &headers,
        &form,
        &mut attempt,
    )
    .await
    {
        Ok(identity) => identity,
        Err(Failure::Client(e)) => {
            let event = AuditEvent::failure(event::INTROSPECTION, e.reason());
            return audited(
                &state,
                &caller,
                &attempt,
                event,
                attempt.refusal(e).into_response(),
            )
            .await;
        }
        Err(Failure::Store(_)) => return OAuthError::temporarily_unavailable().into_response(),
        Err(Failure::Locked(retry)) => return super::error::locked(retry),
    };
    let Some(token) = form.get("token") else {
        let event = AuditEvent::failure(event::INTROSPECTION, "missing_token");
        return audited(
            &state,
            &caller,
            &attempt,
            event,
            OAuthError::invalid_request("token is required").into_response(),
        )
        .await;
    };
    let (reason, answer) = match active_claims(&state, token).await {
        Ok(Ok(claims)) => (None, active_response(&claims)),
        Ok(Err(reason)) => (Some(reason), json!({ "active": false })),
        Err(e) => {
            tracing::error!(error = %e, "introspection lookup failed");
            return OAuthError::temporarily_unavailable().into_response();
        }
    };
    let actor = caller_identity.actor();
    let mut event = AuditEvent::success(event::INTROSPECTION)
        .with_actor(&actor)
        .with_detail(json!({ "active": reason.is_none(), "inactive_reason": reason }));
    if let Some(jti) = answer.get("jti").and_then(Value::as_str) {
        event = event.with_jti(jti);
    }
    audited(
        &state,
        &caller,
        &attempt,
        event,
        (no_store(), Json(answer)).into_response(),
    )
    .await
}

/// The claims of `token` if it is active, or why it is not.
pub(crate) async fn active_claims(
    state: &AppState,
    token: &str,
) -> Result<Result<AccessTokenClaims, &'static str>, StoreError> {
    let claims = match verify_access_token(
        token,
        state.keys.published().iter().map(|k| k.as_ref()),
        &state.issuer,
        state.now(),
    ) {
        Ok(claims) => claims,
        Err(e) => {
            return Ok(Err(match e {
                signet_core::token::VerifyError::Expired => "expired",
                signet_core::token::VerifyError::UnknownKey => "unknown_key",
                signet_core::token::VerifyError::BadSignature => "bad_signature",
                signet_core::token::VerifyError::WrongIssuer => "wrong_issuer",
                signet_core::token::VerifyError::Malformed => "malformed",
            }));
        }
    };
    if state.store.is_token_revoked(&claims.jti).await? {
        return Ok(Err("revoked"));
    }
    match state.store.agent_credentials(&claims.client_id).await? {
        None => Ok(Err("agent_deleted")),
        Some(c) if c.agent.status != AgentStatus::Active => Ok(Err("agent_disabled")),
        Some(c)
            if c.agent
                .tokens_revoked_before
                .is_some_and(|t| claims.iat <= t) =>
        {
            Ok(Err("agent_tokens_revoked"))
        }
        Some(_) => Ok(Ok(claims)),
    }
}

fn active_response(claims: &AccessTokenClaims) -> Value {
    let mut answer = json!({
        "active": true,
        "token_type": "Bearer",
        "client_id": claims.client_id,
        "sub": claims.sub,
        "iss": claims.iss,
        "aud": claims.aud,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
    });
    if !claims.scope.is_empty() {
        answer["scope"] = json!(claims.scope);
    }
    if let Some(cnf) = &claims.cnf {
        answer["cnf"] = cnf.clone();
    }
    answer
}
