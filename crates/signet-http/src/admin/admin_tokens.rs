//! `/api/v1/admin-tokens`: named admin API tokens with a role (`admin`, or `auditor` for
//! read-only access) and an optional expiry. A token is shown once, when created; only its
//! SHA-256 is stored. Revoking takes effect at the next request, on every node. Once a named
//! `admin` token exists, the bootstrap token can be retired.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use signet_core::admin_token::{self, AdminToken, Role};
use signet_core::audit::event;
use utoipa::ToSchema;

use super::json::ApiJson;
use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

/// The longest lifetime a token may be given: one year.
const MAX_LIFETIME_SECONDS: u64 = 366 * 86_400;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminTokenRequest {
    /// 1 to 64 characters `a-z 0-9 . _ -`; the actor in audit records.
    pub(crate) name: String,
    /// `admin` (everything) or `auditor` (read-only).
    pub(crate) role: String,
    /// Seconds until the token stops working (at most a year); none: until revoked.
    #[serde(default)]
    pub(crate) expires_in_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTokenView {
    pub(crate) name: String,
    pub(crate) role: &'static str,
    /// `active`, `expired` or `revoked`.
    pub(crate) status: &'static str,
    pub(crate) created_at: String,
    pub(crate) created_by: String,
    pub(crate) expires_at: Option<String>,
    /// To the minute.
    pub(crate) last_used_at: Option<String>,
    pub(crate) revoked_at: Option<String>,
}

impl AdminTokenView {
    fn new(token: &AdminToken, now: i64) -> Self {
        let status = match token.check(now) {
            Ok(()) => "active",
            Err(admin_token::Refusal::Expired) => "expired",
            Err(admin_token::Refusal::Revoked) => "revoked",
        };
        Self {
            name: token.name.clone(),
            role: token.role.as_str(),
            status,
            created_at: rfc3339(token.created_at),
            created_by: token.created_by.clone(),
            expires_at: token.expires_at.map(rfc3339),
            last_used_at: token.last_used_at.map(rfc3339),
            revoked_at: token.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAdminToken {
    #[serde(flatten)]
    pub(crate) view: AdminTokenView,
    /// The token, shown this once: send it as `Authorization: Bearer <token>`.
    pub(crate) token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTokenList {
    pub(crate) items: Vec<AdminTokenView>,
    /// Whether the bootstrap token (`SIGNET_ADMIN_TOKEN`, or the one printed at first start)
    /// still works.
    pub(crate) bootstrap_token_active: bool,
}

/// Creates a named admin token; the response is the only place it appears.
#[utoipa::path(
    post, path = "/api/v1/admin-tokens", tag = "admin-tokens",
    request_body = CreateAdminTokenRequest,
    responses(
        (status = 201, body = CreatedAdminToken),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn create_admin_token(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateAdminTokenRequest>,
) -> Result<Response, Problem> {
    let body = create(&admin, &state, request).await?;
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Creates a named admin token for `admin` (the admin API, or the console as its signed-in
/// user) and audits it. The result holds the token, to be shown once.
pub(crate) async fn create(
    admin: &Admin,
    state: &AppState,
    request: CreateAdminTokenRequest,
) -> Result<CreatedAdminToken, Problem> {
    admin_token::validate_name(&request.name).map_err(|e| Problem::invalid_field("name", e))?;
    let role = Role::parse(&request.role)
        .ok_or_else(|| Problem::invalid_field("role", "role is admin or auditor"))?;
    let lifetime = match request.expires_in_seconds {
        Some(0) => {
            return Err(Problem::invalid_field(
                "expires_in_seconds",
                "expires_in_seconds must be positive",
            ));
        }
        Some(s) if s > MAX_LIFETIME_SECONDS => {
            return Err(Problem::invalid_field(
                "expires_in_seconds",
                format!("expires_in_seconds is at most {MAX_LIFETIME_SECONDS} (a year)"),
            ));
        }
        other => other,
    };
    let now = state.now();
    let (secret, digest) = admin_token::generate();
    let token = AdminToken {
        name: request.name,
        role,
        token_sha256: digest,
        created_at: now,
        created_by: admin.actor.clone(),
        expires_at: lifetime.map(|s| now + s as i64),
        last_used_at: None,
        revoked_at: None,
    };
    let audit = admin
        .event(event::ADMIN_TOKEN_CREATED, "")
        .with_agent(None)
        .with_detail(json!({
            "name": token.name,
            "role": role.as_str(),
            "expires_at": token.expires_at,
        }));
    state.store.insert_admin_token(&token, audit).await?;
    Ok(CreatedAdminToken {
        view: AdminTokenView::new(&token, now),
        token: secret.expose().to_owned(),
    })
}

/// Lists the named tokens (never the tokens themselves) with their last use.
#[utoipa::path(
    get, path = "/api/v1/admin-tokens", tag = "admin-tokens",
    responses((status = 200, body = AdminTokenList)),
    security(("admin_token" = []))
)]
pub async fn list_admin_tokens(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<AdminTokenList>, Problem> {
    Ok(Json(list(&state).await?))
}

/// The named tokens and whether the bootstrap token still works.
pub(crate) async fn list(state: &AppState) -> Result<AdminTokenList, Problem> {
    let now = state.now();
    let tokens = state.store.admin_tokens().await?;
    Ok(AdminTokenList {
        items: tokens.iter().map(|t| AdminTokenView::new(t, now)).collect(),
        bootstrap_token_active: state.store.bootstrap_token_retired_at().await?.is_none(),
    })
}

/// Revokes a named token at once (it stays listed, as revoked).
#[utoipa::path(
    delete, path = "/api/v1/admin-tokens/{name}", tag = "admin-tokens",
    params(("name" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn revoke_admin_token(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    revoke(&admin, &state, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a named admin token for `admin` and audits it.
pub(crate) async fn revoke(admin: &Admin, state: &AppState, name: &str) -> Result<(), Problem> {
    let audit = admin
        .event(event::ADMIN_TOKEN_REVOKED, "")
        .with_agent(None)
        .with_detail(json!({ "name": name }));
    if !state
        .store
        .revoke_admin_token(name, state.now(), audit)
        .await?
    {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no active admin token with this name",
        ));
    }
    Ok(())
}

/// Retires the bootstrap token for good: from now on only named tokens work. Refused unless a
/// named `admin` token that works exists.
#[utoipa::path(
    post, path = "/api/v1/admin-tokens/bootstrap/retire", tag = "admin-tokens",
    responses(
        (status = 204, description = "Retired"),
        (status = 409, description = "No working named admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn retire_bootstrap_token(
    admin: Admin,
    State(state): State<AppState>,
) -> Result<StatusCode, Problem> {
    let audit = admin
        .event(event::BOOTSTRAP_TOKEN_RETIRED, "")
        .with_agent(None);
    if !state
        .store
        .retire_bootstrap_token(state.now(), audit)
        .await?
    {
        return Err(Problem::conflict(
            "create a named admin token with the admin role first: without one, nobody could manage Signet",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
