//! `GET /api/v1/audit/verify`: recomputes the audit log's hash chain and names the first record
//! that was changed, removed or reordered ("has the audit log been tampered with?"). The chain
//! is keyed by the master key, so a record changed in the database cannot be hidden by
//! recomputing the hashes after it.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::Admin;
use super::problem::Problem;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainVerification {
    /// Whether every chained record verifies.
    valid: bool,
    /// Records checked.
    checked: u64,
    /// Records from before tamper evidence existed (no hash), at the start of the log.
    unchained: u64,
    /// Of the records checked, those chained before the chain was keyed (plain SHA-256), at
    /// its start: whoever could write to the database could have recomputed them.
    unkeyed: u64,
    /// The first record that breaks the chain: changed, or a record before it was removed or
    /// reordered (or, at the end, the first missing id).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_broken_id: Option<i64>,
    /// The retention checkpoint the check started from (the last deleted record's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint_id: Option<i64>,
}

/// Verifies the audit chain.
#[utoipa::path(
    get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = ChainVerification)),
    security(("admin_token" = []))
)]
pub async fn verify_audit(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<ChainVerification>, Problem> {
    let report = state.store.verify_audit_chain().await?;
    if let Some(id) = report.first_broken {
        tracing::error!(record = id, "the audit chain is broken");
    }
    Ok(Json(ChainVerification {
        valid: report.first_broken.is_none(),
        checked: report.checked,
        unchained: report.unchained,
        unkeyed: report.unkeyed,
        first_broken_id: report.first_broken,
        checkpoint_id: report.checkpoint,
    }))
}
