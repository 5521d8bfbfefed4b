//! `/api/v1/lockouts`: agents, source addresses and console usernames locked by brute-force
//! protection (on this node), and lifting a lock. Lifting is audited with the actor.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use signet_core::audit::event;
use signet_core::lockout::{Lock, LockKind};
use utoipa::ToSchema;

use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct LockView {
    /// `agent`, `source`, `console_user` or `operator_source` (an address refused at the admin
    /// API or the console).
    kind: &'static str,
    /// The agent ID, the source address or the console username.
    key: String,
    locked_at: String,
    until: String,
    /// Requests refused by this lock so far.
    refused: u64,
}

impl LockView {
    fn new(lock: &Lock) -> Self {
        Self {
            kind: lock.kind.as_str(),
            key: lock.key.clone(),
            locked_at: rfc3339(lock.locked_at),
            until: rfc3339(lock.until),
            refused: lock.refused,
        }
    }
}

/// Lists the locks in force on this node.
#[utoipa::path(
    get, path = "/api/v1/lockouts", tag = "audit",
    responses((status = 200, body = Vec<LockView>)),
    security(("admin_token" = []))
)]
pub async fn list_lockouts(_admin: Admin, State(state): State<AppState>) -> Json<Vec<LockView>> {
    Json(
        state
            .lockouts
            .locks(state.now())
            .iter()
            .map(LockView::new)
            .collect(),
    )
}

/// Lifts a lock (`kind` is `agent`, `source`, `console_user` or `operator_source`).
#[utoipa::path(
    delete, path = "/api/v1/lockouts/{kind}/{key}", tag = "audit",
    params(("kind" = String, Path), ("key" = String, Path)),
    responses((status = 204, description = "Lifted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn lift_lockout(
    admin: Admin,
    State(state): State<AppState>,
    Path((kind, key)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let kind = LockKind::parse(&kind).ok_or_else(|| {
        Problem::bad_request("kind must be agent, source, console_user or operator_source")
    })?;
    // An address is locked under its key (an IPv6 address: its /64): lifting by the address
    // an audit record shows lifts that.
    let key = match key.parse() {
        Ok(address) if matches!(kind, LockKind::Source | LockKind::OperatorSource) => {
            signet_core::lockout::source_key(address)
        }
        _ => key,
    };
    // Locks are per node. On a cluster the lift goes to every node, which may hold the lock
    // when this one does not; alone, a lock this node does not hold does not exist.
    let here = state
        .lockouts
        .locks(state.now())
        .into_iter()
        .find(|l| l.kind == kind && l.key == key);
    let cluster = state.store.backend() == signet_store::Backend::Postgres;
    if here.is_none() && !cluster {
        return Err(Problem::not_found("lock"));
    }
    // On record before it takes effect: a lift that cannot be recorded is not made.
    let mut audit = admin
        .event(event::LOCKOUT_LIFTED, "")
        .with_agent(None)
        .with_detail(json!({
            "kind": kind.as_str(),
            "key": key,
            "refused": here.as_ref().map(|l| l.refused),
        }));
    if kind == LockKind::Agent {
        audit = audit.with_agent(Some(&key));
    }
    state.store.audit().record(audit).await?;
    state.lockouts.lift(kind, &key, state.now());
    state.store.announce_lock_lifted(kind.as_str(), &key).await;
    Ok(StatusCode::NO_CONTENT)
}
