//! The OAuth 2.0 endpoints: token (RFC 6749 §4.4), JWKS, introspection (RFC 7662), revocation
//! (RFC 7009) and authorization server metadata (RFC 8414).

pub mod client_auth;
pub mod error;
pub mod form;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod revoke;
pub mod token;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use axum::response::{IntoResponse, Response};
use signet_core::agent::AgentId;
use signet_core::audit::{AuditEvent, event};

use crate::body;
use crate::request::Caller;
use crate::state::AppState;
use client_auth::Attempt;
use error::OAuthError;
use form::Form;

/// Reads and parses a form-encoded OAuth request body. On failure returns the audit reason and
/// the wire error.
pub(crate) async fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    request_body: Body,
) -> Result<Form, (&'static str, OAuthError)> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err((
            "bad_content_type",
            OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"),
        ));
    }
    let bytes: Bytes = body::read(request_body, state.config.max_body_bytes)
        .await
        .map_err(|e| {
            let wire = match e {
                body::BodyError::TooLarge => OAuthError::payload_too_large(),
                body::BodyError::Timeout => OAuthError::request_timeout(),
                body::BodyError::Broken => {
                    OAuthError::invalid_request("the request body could not be read")
                }
            };
            (e.reason(), wire)
        })?;
    Form::parse(&bytes).map_err(|e| (e.reason(), OAuthError::invalid_request(e.description())))
}

/// The claimed agent ID as the audit log may keep it: only a well-formed one. Anything else
/// may be a secret typed into the wrong field (ID and secret swapped), and a secret is never
/// recorded; the failure's reason still says what happened.
pub(crate) fn recorded_agent_id(attempt: &Attempt) -> Option<&str> {
    attempt
        .claimed_agent_id
        .as_deref()
        .filter(|id| AgentId::is_well_formed(id))
}

/// Records an OAuth endpoint's audit event, with who called and how, and then returns
/// `response`. If the record cannot be committed the caller gets 503 instead: nothing (a token
/// least of all) leaves the server unaudited.
pub(crate) async fn audited(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    event: AuditEvent,
    response: Response,
) -> Response {
    let event = match described(state, caller, attempt, event).await {
        Ok(event) => event,
        Err(unavailable) => return unavailable,
    };
    let observed = (event.outcome == signet_core::audit::Outcome::Failure).then(|| event.clone());
    let issued = event.event_type == event::TOKEN_REQUEST;
    if let Err(e) = state.store.audit().record(event).await {
        tracing::error!(error = %e, "request could not be audited; refusing it");
        return OAuthError::temporarily_unavailable().into_response();
    }
    observe(state, caller, attempt, observed, issued);
    response
}

/// A token issued to a client assertion: its `jti` is recorded with the token's audit record
/// in one commit. A `jti` recorded before is a replay: then the record is `replayed()` and the
/// caller gets `replay_response` instead of the token. Returns the response and whether it was
/// a replay. (Both replay parts are functions: a granted request builds neither twice.)
pub(crate) async fn audited_with_jti(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    assertion: &signet_core::client_auth::VerifiedAssertion,
    agent_id: &str,
    (issued, response): (AuditEvent, Response),
    (replayed, replay_response): (impl Fn() -> AuditEvent, impl FnOnce() -> Response),
) -> (Response, bool) {
    let issued = match described(state, caller, attempt, issued).await {
        Ok(event) => event,
        Err(unavailable) => return (unavailable, false),
    };
    let recorded = state
        .store
        .audit()
        .record_with_jti(
            agent_id,
            &assertion.jti,
            assertion.jti_expires_at,
            issued,
            describe(caller, attempt, replayed()),
        )
        .await;
    match recorded {
        Ok(true) => {
            observe(state, caller, attempt, None, true);
            (response, false)
        }
        Ok(false) => {
            let observed = describe(caller, attempt, replayed());
            observe(state, caller, attempt, Some(observed), false);
            (replay_response(), true)
        }
        Err(e) => {
            tracing::error!(error = %e, "request could not be audited; refusing it");
            (OAuthError::temporarily_unavailable().into_response(), false)
        }
    }
}

/// The event with who called, from where and how.
fn describe(caller: &Caller, attempt: &Attempt, event: AuditEvent) -> AuditEvent {
    let event = event
        .with_agent(recorded_agent_id(attempt))
        .with_source(caller.source(), caller.user_agent.as_deref());
    match attempt.method {
        Some(method) => event.with_method(method),
        None => event,
    }
}

/// [`describe`], and what comes with an event before it is recorded: a stale credential's use
/// is counted, and a client certificate header from an untrusted address gets its own record
/// (503 if that cannot be committed).
async fn described(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    event: AuditEvent,
) -> Result<AuditEvent, Response> {
    let event = describe(caller, attempt, event);
    // Use of a replaced credential is counted per agent, for "still used by … since …".
    let stale = match event.reason.as_deref() {
        Some("stale_secret") => Some("secret"),
        Some("key_revoked") => Some("key"),
        Some("stale_certificate") => Some("certificate"),
        _ => None,
    };
    if let (Some(kind), Some(agent_id)) = (stale, event.agent_id.as_deref())
        && let Err(e) = state
            .store
            .record_stale_use(
                agent_id,
                kind,
                state.now(),
                event.source.as_deref(),
                event.user_agent.as_deref(),
            )
            .await
    {
        tracing::warn!(error = %e, "stale credential use could not be counted");
    }
    if caller.ignored_certificate_header {
        // A client certificate header from an address that is not a trusted proxy: ignored,
        // and recorded, since it is what a forgery attempt looks like.
        let ignored = AuditEvent::failure(event::CLIENT_CERT_HEADER_IGNORED, "untrusted_proxy")
            .with_agent(recorded_agent_id(attempt))
            .with_source(caller.source(), caller.user_agent.as_deref());
        if let Err(e) = state.store.audit().record(ignored).await {
            tracing::error!(error = %e, "request could not be audited; refusing it");
            return Err(OAuthError::temporarily_unavailable().into_response());
        }
    }
    Ok(event)
}

/// Feeds a recorded request to anomaly detection: a failure's event, or a success (`issued`
/// when a token was issued).
fn observe(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    failure: Option<AuditEvent>,
    issued: bool,
) {
    match failure {
        Some(event) => state.alerts.observe(&state.store, &event, state.now()),
        None => {
            if let Some(agent_id) = attempt.claimed_agent_id.as_deref()
                && AgentId::is_well_formed(agent_id)
            {
                let now = state.now();
                state
                    .alerts
                    .observe_success(&state.store, agent_id, caller.ip, now);
                if issued {
                    state.alerts.observe_issued(&state.store, agent_id, now);
                }
            }
        }
    }
}
