//! The admin REST API (`/api/v1`): bearer admin token, JSON in and out, errors as RFC 9457
//! problem details (see [`problem`]). One file per resource.

pub mod agent_view;
pub mod agents;
pub mod alerts;
pub mod audit;
pub mod audit_verify;
pub mod certificates;
pub mod expiring;
pub mod json;
pub mod keys;
pub mod lockouts;
pub mod problem;
pub mod signing_keys;
pub mod testing_clock;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use signet_core::audit::{AuditEvent, event};
use signet_core::crypto::{constant_time_eq, sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::request::Caller;
use crate::state::AppState;
use problem::Problem;

/// Proof that the request carried the admin token. Handlers that take it are admin-only.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who acted, for audit records.
    pub actor: &'static str,
    pub caller: Caller,
}

/// The bearer token of an `Authorization: Bearer` header, if that is what the request has.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Constant-time check of a presented admin token (compared as SHA-256 digests).
pub fn is_admin_token(state: &AppState, token: &str) -> bool {
    constant_time_eq(&sha256(token.as_bytes()), &state.admin_token_sha256)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_parts(parts, state);
        match bearer_token(&parts.headers) {
            Some(token) if is_admin_token(state, token) => Ok(Admin {
                actor: "admin-token",
                caller,
            }),
            presented => {
                let reason = if presented.is_some() {
                    "bad_admin_token"
                } else {
                    "missing_admin_token"
                };
                let event = AuditEvent::failure(event::ADMIN_AUTH, reason)
                    .with_source(caller.source(), caller.user_agent.as_deref())
                    .with_detail(serde_json::json!({ "path": parts.uri.path() }));
                state.store.audit().record(event).await?;
                Err(Problem::unauthorized())
            }
        }
    }
}

impl Admin {
    /// Who acted, for audit records and stored changes.
    pub fn actor_name(&self) -> String {
        self.actor.to_string()
    }

    /// An audit event of an admin change, with actor and source filled in.
    pub fn event(&self, event_type: &str, agent_id: &str) -> AuditEvent {
        AuditEvent::success(event_type)
            .with_actor(self.actor)
            .with_agent(Some(agent_id))
            .with_source(self.caller.source(), self.caller.user_agent.as_deref())
    }
}

/// RFC 3339 form of a Unix time, as the admin API shows timestamps.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp from a query parameter.
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}
