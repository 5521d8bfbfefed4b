//! `GET /api/v1/credentials/expiring`: credentials that expire within a window (default
//! `SIGNET_EXPIRY_WARNING_DAYS`) or have expired — secrets under the age policy, keys,
//! registered certificates, and each agent's newest certificate from the agent CA — so an
//! operator (or a monitor polling this) rotates them before agents are locked out.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpiringParams {
    /// Window in days (1–365); default `SIGNET_EXPIRY_WARNING_DAYS`.
    within_days: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringView {
    agent_id: String,
    /// `secret`, `key`, `certificate` or `issued_certificate`.
    kind: String,
    /// The key's `kid` or the certificate's thumbprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    expires_at: String,
    /// Whether it has already expired.
    expired: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringList {
    items: Vec<ExpiringView>,
    /// The end of the window.
    until: String,
}

/// Lists credentials that expire within the window, or have expired, soonest first.
#[utoipa::path(
    get, path = "/api/v1/credentials/expiring", tag = "agents", params(ExpiringParams),
    responses((status = 200, body = ExpiringList), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn list_expiring(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<ExpiringParams>, QueryRejection>,
) -> Result<Json<ExpiringList>, Problem> {
    let Query(params) =
        params.map_err(|e| Problem::bad_request(format!("invalid query: {}", e.body_text())))?;
    let window = match params.within_days {
        None => state.config.expiry_warning_seconds,
        Some(days) if (1..=365).contains(&days) => days * 86_400,
        Some(_) => {
            return Err(Problem::invalid_field(
                "within_days",
                "within_days: 1 to 365",
            ));
        }
    };
    let now = state.now();
    let until = now + window as i64;
    let items = state.store.expiring_credentials(until).await?;
    Ok(Json(ExpiringList {
        items: items
            .into_iter()
            .map(|c| ExpiringView {
                expired: c.expires_at <= now,
                agent_id: c.agent_id,
                kind: c.kind,
                id: c.id,
                expires_at: rfc3339(c.expires_at),
            })
            .collect(),
        until: rfc3339(until),
    }))
}
