//! `POST /oauth2/revoke` (RFC 7009): an agent revokes one of its own tokens, or an operator any
//! token. The revocation takes effect at introspection at once. Invalid or unknown tokens get
//! 200 (RFC 7009 §2.2).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use signet_core::audit::{AuditEvent, event};
use signet_core::token::verify_access_token;

use super::client_auth::{self, Attempt, EndpointCaller, Failure};
use super::error::{OAuthError, no_store};
use super::{audited, read_form};
use crate::request::Caller;
use crate::state::AppState;

/// Revokes a token.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token=…&token_type_hint=access_token"),
    responses(
        (status = 200, description = "Revoked, or not a valid token"),
        (status = 400, description = "The token belongs to another agent", body = super::token::OAuthErrorBody),
        (status = 401, description = "Caller authentication failed", body = super::token::OAuthErrorBody),
    ),
    security(("client_secret_basic" = []), ("admin_token" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut attempt = Attempt::default();
    let (event, response) = decide(&state, &caller, &headers, body, &mut attempt).await;
    // A locked-out caller is answered without touching the database.
    if response.status() == axum::http::StatusCode::TOO_MANY_REQUESTS {
        return response;
    }
    audited(&state, &caller, &attempt, event, response).await
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    attempt: &mut Attempt,
) -> (AuditEvent, Response) {
    let failure = |reason: &str, wire: OAuthError| {
        (
            AuditEvent::failure(event::REVOCATION, reason),
            wire.into_response(),
        )
    };
    let form = match read_form(state, headers, body).await {
        Ok(form) => form,
        Err((reason, wire)) => return failure(reason, wire),
    };
    let identity =
        match client_auth::authenticate_endpoint_caller(state, caller, headers, &form, attempt)
            .await
        {
            Ok(identity) => identity,
            Err(Failure::Client(e)) => {
                return failure(e.reason(), attempt.refusal(e));
            }
            Err(Failure::Store(_)) => {
                return failure("store_unavailable", OAuthError::temporarily_unavailable());
            }
            Err(Failure::Locked(retry)) => {
                return (
                    AuditEvent::failure(event::REVOCATION, "locked"),
                    super::error::locked(retry),
                );
            }
        };
    let Some(token) = form.get("token") else {
        return failure(
            "missing_token",
            OAuthError::invalid_request("token is required"),
        );
    };
    let ok = || (no_store(), StatusCode::OK).into_response();
    // Expired tokens need no revocation; anything that does not verify is not ours.
    let claims = match verify_access_token(
        token,
        state.keys.published().iter().map(|k| k.as_ref()),
        &state.issuer,
        state.now(),
    ) {
        Ok(claims) => claims,
        Err(e) => {
            return (
                AuditEvent::success(event::REVOCATION)
                    .with_detail(serde_json::json!({ "ignored": e.to_string() })),
                ok(),
            );
        }
    };
    let actor = match &identity {
        EndpointCaller::Admin {
            role: signet_core::admin_token::Role::Auditor,
            ..
        } => {
            let (event, response) = failure(
                "auditor_read_only",
                OAuthError::unauthorized_client("an auditor token cannot revoke tokens"),
            );
            return (event.with_jti(&claims.jti), response);
        }
        EndpointCaller::Admin { actor, .. } => actor.clone(),
        EndpointCaller::Agent(c) if c.agent.agent_id.as_str() == claims.client_id => {
            claims.client_id.clone()
        }
        EndpointCaller::Agent(_) => {
            let (event, response) = failure(
                "not_token_owner",
                OAuthError::unauthorized_client("the token was not issued to this client"),
            );
            return (event.with_jti(&claims.jti), response);
        }
    };
    if let Err(e) = state
        .store
        .revoke_token(&claims.jti, &claims.client_id, claims.exp, state.now())
        .await
    {
        tracing::error!(error = %e, "revocation could not be stored");
        return failure("store_unavailable", OAuthError::temporarily_unavailable());
    }
    let event = AuditEvent::success(event::REVOCATION)
        .with_actor(&actor)
        .with_jti(&claims.jti)
        .with_detail(serde_json::json!({ "token_agent_id": claims.client_id }));
    (event, ok())
}
