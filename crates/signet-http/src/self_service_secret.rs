//! `POST /api/v1/self/secret/rotate`: a secret agent replaces its own secret, authenticated with
//! its current secret exactly as at the token endpoint. The new secret is returned once; the old
//! one keeps working for a short grace period so that the agent's replicas can pick up the new
//! one. `signet token rotate` drives it from a cron job or sidecar, so no person sees a secret.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use signet_core::audit::{AuditEvent, event};
use signet_core::client_auth::{AgentSecret, ClientAuthError, PresentedCredentials, StoredSecret};

use crate::admin::agents::RegeneratedSecret;
use crate::admin::problem::Problem;
use crate::oauth::client_auth::{self, Attempt, Failure};
use crate::oauth::read_form;
use crate::request::Caller;
use crate::state::AppState;

/// An agent rotates its own secret. Authenticate as at the token endpoint
/// (`Authorization: Basic`, or `client_id` and `client_secret` in the form) with the current
/// secret; a previous secret still in its grace period cannot rotate. Optional form parameter
/// `grace_period_seconds` (default and maximum: `SIGNET_SELF_ROTATION_GRACE_SECONDS`).
#[utoipa::path(
    post, path = "/api/v1/self/secret/rotate", tag = "self-service",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Rotated", body = RegeneratedSecret),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Authentication failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("client_secret_basic" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let form = match read_form(&state, &headers, body).await {
        Ok(form) => form,
        Err((_, wire)) => return Err(Problem::new(wire.status(), wire.description())),
    };
    let max_grace = state.config.self_rotation_grace_seconds;
    let grace = match form.get("grace_period_seconds") {
        None => max_grace,
        Some(text) => match text.parse::<u64>() {
            Ok(g) if g <= max_grace => g,
            _ => {
                return Err(Problem::invalid_field(
                    "grace_period_seconds",
                    format!("grace_period_seconds: 0 to {max_grace}"),
                ));
            }
        },
    };
    let mut attempt = Attempt::default();
    let refuse = |reason: &str, attempt: &Attempt| {
        AuditEvent::failure(event::AGENT_SECRET_REGENERATED, reason)
            .with_agent(crate::oauth::recorded_agent_id(attempt))
            .with_method(attempt.method.unwrap_or("client_secret_basic"))
            .with_source(caller.source(), caller.user_agent.as_deref())
            .with_detail(serde_json::json!({ "self_service": true }))
    };
    let unauthorized = || Problem::new(StatusCode::UNAUTHORIZED, "client authentication failed");
    let presented = client_auth::presented(&headers, &form, None, &mut attempt);
    let authenticated = match presented {
        Ok(PresentedCredentials::Secret { .. }) => {
            client_auth::authenticate(&state, &caller, &headers, &form, &mut attempt).await
        }
        Ok(_) => Err(Failure::Client(ClientAuthError::MethodMismatch)),
        Err(e) => Err(Failure::Client(e)),
    };
    let authenticated = match authenticated {
        Ok(a) => a,
        Err(Failure::Store(e)) => return Err(e.into()),
        Err(Failure::Locked(retry)) => return Err(Problem::too_many_requests(retry)),
        Err(Failure::Client(e)) => {
            state
                .store
                .audit()
                .record(refuse(e.reason(), &attempt))
                .await?;
            return Err(unauthorized());
        }
    };
    // Only the current secret may rotate: not a predecessor still inside its grace period.
    let presented_secret = form
        .get("client_secret")
        .map(str::to_string)
        .or_else(|| client_auth::basic_secret(&headers));
    let current = presented_secret
        .and_then(|s| AgentSecret::parse(&s).ok())
        .is_some_and(|s| {
            signet_core::client_auth::client_secret::is_current(
                &s,
                &authenticated.credentials.secrets,
                &state.master_key,
            )
        });
    if !current {
        state
            .store
            .audit()
            .record(refuse("previous_secret", &attempt))
            .await?;
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "rotate with the current secret, not a previous one",
        ));
    }
    let agent_id = authenticated.credentials.agent.agent_id.to_string();
    let now = state.now();
    let secret = AgentSecret::generate();
    let audit = AuditEvent::success(event::AGENT_SECRET_REGENERATED)
        .with_actor(&agent_id)
        .with_agent(Some(&agent_id))
        .with_method(attempt.method.unwrap_or("client_secret_basic"))
        .with_source(caller.source(), caller.user_agent.as_deref())
        .with_detail(serde_json::json!({ "self_service": true, "grace_period_seconds": grace }));
    state
        .store
        .replace_secret(
            &agent_id,
            &StoredSecret::new(&state.master_key, &secret, now)
                .with_max_age(state.config.secret_max_age_seconds, now),
            now,
            grace,
            audit,
        )
        .await?;
    Ok(RegeneratedSecret::response(
        &state, agent_id, &secret, now, grace,
    ))
}
