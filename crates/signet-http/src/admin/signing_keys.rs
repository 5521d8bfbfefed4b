//! `GET /api/v1/signing-keys`: the token signing keys, their algorithms and states (never the
//! private parts).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    kid: String,
    alg: String,
    /// `active` (signs new tokens) or `retired` (still published until its tokens expire).
    status: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retired_at: Option<String>,
}

/// Lists the signing keys.
#[utoipa::path(
    get, path = "/api/v1/signing-keys", tag = "signing-keys",
    responses((status = 200, body = Vec<SigningKeyView>)),
    security(("admin_token" = []))
)]
pub async fn list_signing_keys(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<SigningKeyView>>, Problem> {
    let keys = state.store.signing_keys().await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| SigningKeyView {
                kid: k.kid,
                alg: k.alg,
                status: k.status,
                created_at: rfc3339(k.created_at),
                retired_at: k.retired_at.map(rfc3339),
            })
            .collect(),
    ))
}
