//! The admin REST API (`/api/v1`): bearer admin token, JSON in and out, errors as RFC 9457
//! problem details (see [`problem`]). One file per resource.

pub mod admin_tokens;
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
pub mod revocations;
pub mod signing_keys;
pub mod testing_clock;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use signet_core::admin_token::Role;
use signet_core::audit::{AuditEvent, event};
use signet_core::crypto::{constant_time_eq, sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::oauth::client_auth::operator_refusal;
use crate::request::Caller;
use crate::state::AppState;
use problem::Problem;

/// Proof that the request carried a working admin token: the bootstrap token (until retired) or
/// a named token. Handlers that take it are admin-API-only; a named `auditor` token gets through
/// only for reads (GET), anything else is refused here with 403.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who acted, for audit records: `admin-token` (the bootstrap token) or the token's name.
    pub actor: String,
    pub role: Role,
    pub caller: Caller,
}

/// Characters of a request's path kept in its audit record.
const MAX_RECORDED_PATH: usize = 256;

/// The actor name of the bootstrap token.
pub const BOOTSTRAP_ACTOR: &str = "admin-token";

/// The bearer token of an `Authorization: Bearer` header, if that is what the request has.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        // Two headers could be read differently by a proxy and by Signet: neither counts.
        return None;
    }
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
        // The path as requested, cut short: a refused request must not write 64 KiB of it.
        let path: String = parts.uri.path().chars().take(MAX_RECORDED_PATH).collect();
        let detail = serde_json::json!({ "method": parts.method.as_str(), "path": path });
        let (actor, role) = match authenticate(state, bearer_token(&parts.headers)).await? {
            Ok(found) => found,
            Err(reason) => {
                // Refusals count towards the address's lock at the operators' surfaces; while
                // it holds they get 429 and no record. A working token still works: admin
                // tokens are too long to guess, and an operator must not be locked out by a
                // neighbour.
                if let Some(retry) = operator_refusal(state, &caller) {
                    return Err(Problem::too_many_requests(retry));
                }
                let event = AuditEvent::failure(event::ADMIN_AUTH, reason)
                    .with_source(caller.source(), caller.user_agent.as_deref())
                    .with_detail(detail);
                state.store.audit().record(event).await?;
                return Err(Problem::unauthorized());
            }
        };
        let read = matches!(parts.method, Method::GET | Method::HEAD);
        if role == Role::Auditor && !read {
            let event = AuditEvent::failure(event::ADMIN_AUTH, "auditor_read_only")
                .with_actor(&actor)
                .with_source(caller.source(), caller.user_agent.as_deref())
                .with_detail(detail);
            state.store.audit().record(event).await?;
            return Err(Problem::forbidden(
                "this admin token has the auditor role: read-only",
            ));
        }
        // Every admin request is on record with who made it (changes also have their own
        // events, with what changed).
        let event = AuditEvent::success(event::ADMIN_REQUEST)
            .with_actor(&actor)
            .with_source(caller.source(), caller.user_agent.as_deref())
            .with_detail(detail);
        state.store.audit().record(event).await?;
        Ok(Admin {
            actor,
            role,
            caller,
        })
    }
}

/// Who a presented admin token is (actor and role), or the audit reason it is refused.
pub(crate) async fn authenticate(
    state: &AppState,
    presented: Option<&str>,
) -> Result<Result<(String, Role), &'static str>, signet_store::StoreError> {
    let Some(token) = presented else {
        return Ok(Err("missing_admin_token"));
    };
    if is_admin_token(state, token) {
        return Ok(match state.store.bootstrap_token_retired_at().await? {
            Some(_) => Err("retired_admin_token"),
            None => Ok((BOOTSTRAP_ACTOR.to_owned(), Role::Admin)),
        });
    }
    let Some(named) = state
        .store
        .admin_token_by_digest(&sha256(token.as_bytes()))
        .await?
    else {
        return Ok(Err("bad_admin_token"));
    };
    let now = state.now();
    if let Err(refusal) = named.check(now) {
        return Ok(Err(refusal.reason()));
    }
    state.store.touch_admin_token(&named.name, now).await?;
    Ok(Ok((named.name, named.role)))
}

impl Admin {
    /// Who acted, for audit records and stored changes.
    pub fn actor_name(&self) -> String {
        self.actor.clone()
    }

    /// An audit event of an admin change, with actor and source filled in.
    pub fn event(&self, event_type: &str, agent_id: &str) -> AuditEvent {
        AuditEvent::success(event_type)
            .with_actor(&self.actor)
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
