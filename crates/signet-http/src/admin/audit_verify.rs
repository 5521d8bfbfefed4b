//! `GET /api/v1/audit/verify`: recomputes the audit log's hash chain and names the first record
//! that was changed, removed or reordered ("has the audit log been tampered with?"). The chain
//! is keyed by the master key, so a record changed in the database cannot be hidden by
//! recomputing the hashes after it. `?anchor=ID:HASH` (a head an earlier check reported) also
//! proves the log still reaches that record unchanged.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use signet_core::audit::ChainAnchor;
use signet_store::ChainReport;
use utoipa::{IntoParams, ToSchema};

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
    /// The end of the chain as checked, `ID:HASH`: keep it outside the database and pass it as
    /// `anchor` later to prove the log still reaches it unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    /// With `anchor`: whether it was found unchanged (`false`: it lies before the retention
    /// checkpoint and cannot be checked, or the chain broke before it).
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_checked: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerifyParams {
    /// A head an earlier verification reported (`ID:HASH`).
    anchor: Option<String>,
}

/// Verifies the audit chain.
#[utoipa::path(
    get, path = "/api/v1/audit/verify", tag = "audit", params(VerifyParams),
    responses((status = 200, body = ChainVerification), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn verify_audit(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<VerifyParams>, QueryRejection>,
) -> Result<Json<ChainVerification>, Problem> {
    let Query(params) =
        params.map_err(|e| Problem::bad_request(format!("invalid query: {}", e.body_text())))?;
    let (report, anchor) = check(&state, params.anchor.as_deref()).await?;
    Ok(Json(ChainVerification::new(report, anchor.is_some())))
}

impl ChainVerification {
    /// The report as the API states it (also `signet audit verify --json` on the database).
    pub fn new(report: ChainReport, anchor_asked: bool) -> Self {
        Self {
            valid: report.first_broken.is_none(),
            checked: report.checked,
            unchained: report.unchained,
            unkeyed: report.unkeyed,
            first_broken_id: report.first_broken,
            checkpoint_id: report.checkpoint,
            head: report.head.map(|h| h.to_string()),
            anchor_checked: anchor_asked.then_some(report.anchor_checked),
        }
    }
}

/// Verifies the chain, to `anchor` (as typed; empty: none) if given, and logs a break: what the
/// API and the console show.
pub(crate) async fn check(
    state: &AppState,
    anchor: Option<&str>,
) -> Result<(ChainReport, Option<ChainAnchor>), Problem> {
    let anchor = anchor
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::parse::<ChainAnchor>)
        .transpose()
        .map_err(|e| Problem::invalid_field("anchor", e))?;
    let report = state.store.verify_audit_chain_to(anchor.as_ref()).await?;
    if let Some(id) = report.first_broken {
        tracing::error!(record = id, "the audit chain is broken");
    }
    Ok((report, anchor))
}
