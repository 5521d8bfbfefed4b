//! `/api/v1/signing-keys`: the token signing keys, their algorithms and states (never the
//! private parts), and rotation by an operator: planned (the next key is published before it
//! signs) or emergency (a new key at once; every other key leaves the JWKS).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use signet_core::agent::MAX_TOKEN_TTL;
use signet_core::audit::event;
use utoipa::ToSchema;

use super::json::ApiJson;
use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::keyring::Rotation;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// A new key signs at once and every other key is removed from the JWKS: every token
    /// issued so far stops verifying. For a leaked signing key only.
    #[serde(default)]
    pub(crate) emergency: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotationResult {
    /// `published` (the next key signs from `activates_at`), `activated` or `emergency`.
    pub(crate) outcome: &'static str,
    pub(crate) kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) activates_at: Option<String>,
    /// Key IDs no longer used to sign (`activated`) or removed (`emergency`).
    pub(crate) previous: Vec<String>,
    /// What the rotation means for tokens already issued.
    pub(crate) note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    pub(crate) kid: String,
    pub(crate) alg: String,
    /// `next` (published, signs from `activates_at`), `active` (signs new tokens) or `retired`
    /// (still published until its tokens expire).
    pub(crate) status: String,
    pub(crate) created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) activates_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retired_at: Option<String>,
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
    Ok(Json(views(&state).await?))
}

/// The signing keys as the API and the console show them.
pub(crate) async fn views(state: &AppState) -> Result<Vec<SigningKeyView>, Problem> {
    let keys = state.store.signing_keys().await?;
    Ok(keys
        .into_iter()
        .map(|k| SigningKeyView {
            kid: k.kid,
            alg: k.alg,
            status: k.status,
            created_at: rfc3339(k.created_at),
            activates_at: k.activates_at.map(rfc3339),
            retired_at: k.retired_at.map(rfc3339),
        })
        .collect())
}

/// Rotates the signing key. Without `emergency`: if a next key is already published it signs from
/// now; otherwise a next key is published and signs after `SIGNET_SIGNING_KEY_PREPUBLISH_SECONDS`
/// (call again to activate it sooner). Tokens signed by earlier keys keep verifying until they
/// expire. With `emergency`: see the request field.
#[utoipa::path(
    post, path = "/api/v1/signing-keys/rotate", tag = "signing-keys",
    request_body(content = RotateRequest, description = "Optional"),
    responses((status = 200, body = RotationResult), (status = 503, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn rotate_signing_key(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RotateRequest>,
) -> Result<(StatusCode, Json<RotationResult>), Problem> {
    let result = rotate(&admin, &state, request.emergency).await?;
    Ok((StatusCode::OK, Json(result)))
}

/// Rotates the signing key for `admin` (the admin API, or the console as its signed-in user)
/// and audits it.
pub(crate) async fn rotate(
    admin: &Admin,
    state: &AppState,
    emergency: bool,
) -> Result<RotationResult, Problem> {
    let now = state.now();
    let fail = |e: crate::keyring::KeyRingError| {
        tracing::error!(error = %e, "signing key rotation failed");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the signing key could not be rotated; retry",
        )
    };
    let result = if emergency {
        let (kid, removed) = state
            .keys
            .emergency_rotate(&state.store, &state.master_key, now)
            .await
            .map_err(fail)?;
        let previous: Vec<String> = removed.into_iter().filter(|k| *k != kid).collect();
        RotationResult {
            outcome: "emergency",
            note: format!(
                "every token signed by {} (issued in the last {} seconds at most) no longer verifies; resource servers must refetch the JWKS, and agents must get new tokens",
                previous.join(", "),
                MAX_TOKEN_TTL
            ),
            kid,
            activates_at: Some(rfc3339(now)),
            previous,
        }
    } else {
        let rotation = state
            .keys
            .rotate_now(
                &state.store,
                &state.master_key,
                state.config.signing_key_prepublish_seconds,
                now,
            )
            .await
            .map_err(fail)?;
        match rotation {
            Rotation::Published { kid, activates_at } => RotationResult {
                outcome: "published",
                note: "the next key is in the JWKS now and signs from activates_at; rotate again to activate it sooner".into(),
                kid,
                activates_at: Some(rfc3339(activates_at)),
                previous: Vec::new(),
            },
            Rotation::Activated { kid, retired } => RotationResult {
                outcome: "activated",
                note: "new tokens are signed by the new key; the previous key stays in the JWKS until its tokens expire".into(),
                kid,
                activates_at: Some(rfc3339(now)),
                previous: vec![retired],
            },
        }
    };
    let audit = admin
        .event(event::SIGNING_KEY_ROTATED, "")
        .with_agent(None)
        .with_detail(json!({
            "outcome": result.outcome,
            "kid": result.kid,
            "previous": result.previous,
        }));
    state.store.audit().record(audit).await?;
    Ok(result)
}
