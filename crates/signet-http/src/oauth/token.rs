//! `POST /oauth2/token`: the `client_credentials` grant (RFC 6749 §4.4) with RFC 9068 JWT
//! access tokens. Every request, granted or refused, is audited before the response leaves.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use signet_core::audit::{AuditEvent, event};
use signet_core::client_auth::{AgentCredentials, ClientAuthError, VerifiedAssertion};
use signet_core::token::{TokenRequest, grant};
use utoipa::ToSchema;

use super::client_auth::{self, Attempt, Failure};
use super::error::{OAuthError, no_store};
use super::{audited, audited_with_jti, read_form};
use crate::request::Caller;
use crate::state::AppState;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT access token (RFC 9068).
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Lifetime in seconds.
    expires_in: u64,
    /// Granted scopes, space-delimited.
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_target`, …
    error: String,
    error_description: String,
}

/// Form parameters of a token request.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    /// Must be `client_credentials`.
    grant_type: String,
    /// Space-delimited scopes; all of the agent's scopes when omitted.
    scope: Option<String>,
    /// Resource indicator (RFC 8707); may repeat.
    resource: Option<String>,
    /// Audience; like `resource`.
    audience: Option<String>,
    /// Agent ID, for `client_secret_post`.
    client_id: Option<String>,
    /// Agent secret, for `client_secret_post`.
    client_secret: Option<String>,
}

struct Refusal {
    reason: String,
    wire: OAuthError,
    /// Locked out for this many seconds: answered at once, without an audit record.
    locked: Option<i64>,
}

/// A token ready to leave, with its audit record, and the client assertion whose `jti` is
/// recorded with that record (`private_key_jwt`): the agent and the verified assertion.
struct Issued {
    event: AuditEvent,
    response: Response,
    assertion: Option<(Arc<AgentCredentials>, VerifiedAssertion)>,
}

impl Refusal {
    fn new(reason: &str, wire: OAuthError) -> Self {
        Self {
            reason: reason.to_string(),
            wire,
            locked: None,
        }
    }
}

/// Issues an access token to an authenticated agent.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        (status = 400, description = "Invalid request, grant, scope or target", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = OAuthErrorBody),
        (status = 503, description = "Storage unavailable; retry", body = OAuthErrorBody),
    ),
    security((), ("client_secret_basic" = []))
)]
pub async fn token(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let mut refused_reason: Option<String> = None;
    let mut attempt = Attempt::default();
    let issued = match issue(&state, &caller, &headers, body, &mut attempt).await {
        Ok(issued) => issued,
        Err(Refusal {
            locked: Some(retry),
            ..
        }) => {
            state
                .metrics
                .token_request(attempt.method, Some("locked"), started.elapsed());
            return super::error::locked(retry);
        }
        Err(refusal) => {
            refused_reason = Some(refusal.reason.clone());
            Issued {
                event: AuditEvent::failure(event::TOKEN_REQUEST, &refusal.reason),
                response: refusal.wire.into_response(),
                assertion: None,
            }
        }
    };
    // The record of a token is committed before the token leaves the server.
    let response = match issued.assertion {
        None => audited(&state, &caller, &attempt, issued.event, issued.response).await,
        Some((credentials, assertion)) => {
            // Its `jti` in the same commit: a replay is refused there, a refused request
            // burns nothing (every other check has passed).
            let replay = ClientAuthError::JtiReplayed;
            let replayed = (
                || AuditEvent::failure(event::TOKEN_REQUEST, replay.reason()),
                || OAuthError::from_client_auth(replay).into_response(),
            );
            let issued = (issued.event, issued.response);
            let (response, was_replay) = audited_with_jti(
                &state,
                &caller,
                &attempt,
                &assertion,
                credentials.agent.agent_id.as_str(),
                issued,
                replayed,
            )
            .await;
            if was_replay {
                refused_reason = Some(replay.reason().to_string());
            }
            response
        }
    };
    let failure = (!response.status().is_success()).then(|| {
        refused_reason
            .as_deref()
            .unwrap_or(if response.status().as_u16() == 503 {
                "store_unavailable"
            } else {
                "other"
            })
    });
    state
        .metrics
        .token_request(attempt.method, failure, started.elapsed());
    response
}

async fn issue(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    attempt: &mut Attempt,
) -> Result<Issued, Refusal> {
    let form = read_form(state, headers, body)
        .await
        .map_err(|(reason, wire)| Refusal::new(reason, wire))?;
    // The client is authenticated first, so that every later refusal is audited against a
    // known agent.
    let refuse = |failure: Failure| match failure {
        Failure::Client(e) => Refusal::new(e.reason(), OAuthError::from_client_auth(e)),
        Failure::Store(e) => {
            tracing::error!(error = %e, "agent lookup failed");
            Refusal::new("store_unavailable", OAuthError::temporarily_unavailable())
        }
        Failure::Locked(retry) => Refusal {
            locked: Some(retry),
            ..Refusal::new("locked", OAuthError::temporarily_unavailable())
        },
    };
    let authenticated = client_auth::authenticate(state, caller, headers, &form, attempt)
        .await
        .map_err(refuse)?;
    match form.get("grant_type") {
        None => {
            return Err(Refusal::new(
                "missing_grant_type",
                OAuthError::invalid_request("grant_type is required"),
            ));
        }
        Some("client_credentials") => {}
        Some(_) => {
            return Err(Refusal::new(
                "unsupported_grant_type",
                OAuthError::unsupported_grant_type(),
            ));
        }
    }
    let agent = &authenticated.credentials.agent;
    let request = TokenRequest {
        scope: form.get("scope").map(str::to_string),
        audiences: form
            .all("resource")
            .chain(form.get("audience"))
            .map(str::to_string)
            .collect(),
    };
    let ttl = state.token_ttl(agent.access_token_ttl);
    let mut claims = grant(agent, &request, &state.issuer, ttl, state.now())
        .map_err(|e| Refusal::new(e.reason(), OAuthError::from_token(&e)))?;
    // RFC 8705 §3: a token requested with a client certificate is bound to it.
    if let Some(thumbprint) = &authenticated.certificate_thumbprint {
        claims.cnf = Some(serde_json::json!({ "x5t#S256": thumbprint }));
    }
    let key = state.keys.active();
    let claims_json = serde_json::to_vec(&claims)
        .map_err(|_| Refusal::new("internal", OAuthError::temporarily_unavailable()))?;
    let access_token = key.sign_jws(&claims_json);
    let event = AuditEvent::success(event::TOKEN_REQUEST)
        .with_jti(&claims.jti)
        .with_detail(serde_json::json!({
            "scope": claims.scope,
            "kid": key.kid(),
            "exp": claims.exp,
            "client_kid": authenticated.assertion.as_ref().map(|a| a.kid.as_str()),
            "x5t#S256": authenticated.certificate_thumbprint,
        }));
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: claims.scope,
    };
    Ok(Issued {
        event,
        response: (no_store(), Json(body)).into_response(),
        assertion: authenticated
            .assertion
            .map(|a| (authenticated.credentials, a)),
    })
}
