//! `/api/v1/agents/{agent_id}/keys`: the public keys a `private_key_jwt` agent signs its
//! assertions with. Several may be active at once (that is how rotation works without
//! downtime); revoking one takes effect at the next request.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signet_core::agent::AuthMethod;
use signet_core::audit::event;
use signet_core::jwk::{AgentKey, KeyError, KeyInput, parse_keys};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

/// Public keys to register: exactly one of `jwk`, `jwks` or `pem`. A body that is itself a JWK
/// (it has `kty`) or a JWK Set (`{"keys": [...]}`) is taken as one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRegistration {
    /// One public JWK.
    #[schema(value_type = Option<Object>)]
    pub jwk: Option<Value>,
    /// A JWK Set: `{"keys": [...]}`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// A PEM public key (`BEGIN PUBLIC KEY`) or certificate (`BEGIN CERTIFICATE`).
    pub pem: Option<String>,
    /// Key ID for a single key; default: its RFC 7638 thumbprint (or the JWK's own `kid`).
    pub kid: Option<String>,
    /// Pinned algorithm for a single key; default: ES256, ES384 or EdDSA by curve, RS256 for RSA.
    pub alg: Option<String>,
    /// When the key stops being accepted (RFC 3339); a certificate's own expiry applies too.
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl KeyRegistration {
    /// Reads a request body: the fields above, a bare JWK or a bare JWK Set.
    pub fn from_body(body: Value) -> Result<Self, Problem> {
        let bare = |jwk, jwks| Self {
            jwk,
            jwks,
            pem: None,
            kid: None,
            alg: None,
            expires_at: None,
        };
        // A bare key or set cannot carry this form's fields too: they would be silently lost
        // (`expires_at`), or say something else than the body (`pem`).
        let mixed =
            |fields: &[&'static str]| fields.iter().find(|f| body.get(**f).is_some()).copied();
        let form = ["jwk", "jwks", "pem", "expires_at"];
        if body.get("kty").is_some() {
            if let Some(field) = mixed(&form) {
                return Err(Problem::bad_request(format!(
                    "a bare JWK cannot have `{field}`: send {{\"jwk\": {{…}}, \"{field}\": …}}"
                )));
            }
            return Ok(bare(Some(body), None));
        }
        if body.get("keys").is_some() {
            if let Some(field) = mixed(&["jwk", "jwks", "pem", "expires_at", "kid", "alg"]) {
                return Err(Problem::bad_request(format!(
                    "a bare JWK Set cannot have `{field}`: send {{\"jwks\": {{\"keys\": […]}}, …}}"
                )));
            }
            return Ok(bare(None, Some(body)));
        }
        serde_json::from_value(body)
            .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
    }

    /// Parses the submitted keys; a bad key is a 400 that says why.
    pub fn parse(&self) -> Result<Vec<AgentKey>, Problem> {
        let input = match (&self.jwk, &self.jwks, &self.pem) {
            (Some(jwk), None, None) => KeyInput::Jwk(jwk),
            (None, Some(jwks), None) => KeyInput::Jwks(jwks),
            (None, None, Some(pem)) => KeyInput::Pem(pem),
            _ => return Err(Problem::bad_request("give exactly one of jwk, jwks or pem")),
        };
        let now = signet_core::now();
        let expires_at = match &self.expires_at {
            None => None,
            Some(text) => {
                let at = super::parse_rfc3339(text)
                    .map(|t| t.unix_timestamp())
                    .ok_or_else(|| {
                        Problem::invalid_field("expires_at", "expires_at: an RFC 3339 timestamp")
                    })?;
                if at <= now {
                    return Err(Problem::invalid_field(
                        "expires_at",
                        "expires_at: must be in the future",
                    ));
                }
                Some(at)
            }
        };
        let mut keys = parse_keys(input, self.kid.as_deref(), self.alg.as_deref(), now)
            .map_err(key_problem)?;
        for key in &mut keys {
            key.expires_at = match (key.expires_at, expires_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(keys)
    }
}

/// A bad key as a problem: which field, and why.
pub fn key_problem(error: KeyError) -> Problem {
    Problem::invalid_field("key", error.to_string())
}

/// A registered key as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub(crate) kid: String,
    pub(crate) alg: String,
    /// RFC 7638 thumbprint.
    pub(crate) thumbprint: String,
    /// `active`, `expired` or `revoked`.
    pub(crate) status: &'static str,
    #[schema(value_type = Object)]
    pub(crate) jwk: Value,
    pub(crate) created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_at: Option<String>,
}

impl KeyView {
    pub fn new(key: &AgentKey) -> Self {
        let now = signet_core::now();
        let status = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        };
        Self {
            kid: key.kid.clone(),
            alg: key.alg.as_str().to_string(),
            thumbprint: key.thumbprint.clone(),
            status,
            jwk: key.jwk.clone(),
            created_at: rfc3339(key.created_at),
            expires_at: key.expires_at.map(rfc3339),
            revoked_at: key.revoked_at.map(rfc3339),
        }
    }
}

/// Checks that keys may be registered for this agent.
pub async fn require_key_agent(state: &AppState, agent_id: &str) -> Result<(), Problem> {
    let agent = state
        .store
        .find_agent(agent_id)
        .await?
        .ok_or_else(|| Problem::not_found("agent"))?;
    if agent.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
        return Err(Problem::conflict(format!(
            "the agent authenticates with {}; keys are for private_key_jwt agents",
            agent.token_endpoint_auth_method.as_str()
        )));
    }
    Ok(())
}

/// Lists an agent's keys, revoked ones included.
#[utoipa::path(
    get, path = "/api/v1/agents/{agent_id}/keys", tag = "keys",
    params(("agent_id" = String, Path)),
    responses((status = 200, body = Vec<KeyView>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn list_keys(
    _admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Vec<KeyView>>, Problem> {
    state
        .store
        .find_agent(&agent_id)
        .await?
        .ok_or_else(|| Problem::not_found("agent"))?;
    let keys = state.store.agent_keys(&agent_id).await?;
    Ok(Json(keys.iter().map(KeyView::new).collect()))
}

/// Registers public keys for a `private_key_jwt` agent.
#[utoipa::path(
    post, path = "/api/v1/agents/{agent_id}/keys", tag = "keys",
    params(("agent_id" = String, Path)), request_body = KeyRegistration,
    responses(
        (status = 201, description = "Registered", body = Vec<KeyView>),
        (status = 400, description = "Not a usable public key (the detail says why)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Duplicate kid, too many keys, or not a private_key_jwt agent", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn add_keys(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Vec<KeyView>>), Problem> {
    let request = KeyRegistration::from_body(body)?;
    let keys = register_keys(&admin, &state, &agent_id, &request).await?;
    Ok((
        StatusCode::CREATED,
        Json(keys.iter().map(KeyView::new).collect()),
    ))
}

/// Registers keys for `admin` (the admin API, or the console as its signed-in user) and audits
/// it.
pub(crate) async fn register_keys(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    request: &KeyRegistration,
) -> Result<Vec<AgentKey>, Problem> {
    require_key_agent(state, agent_id).await?;
    let keys = request.parse()?;
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    let audit = admin
        .event(event::AGENT_KEY_ADDED, agent_id)
        .with_detail(json!({ "kids": kids }));
    state.store.add_agent_keys(agent_id, &keys, audit).await?;
    Ok(keys)
}

/// Revokes a key at once: assertions signed with it are refused from the next request on.
#[utoipa::path(
    delete, path = "/api/v1/agents/{agent_id}/keys/{kid}", tag = "keys",
    params(("agent_id" = String, Path), ("kid" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn revoke_key(
    admin: Admin,
    State(state): State<AppState>,
    Path((agent_id, kid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    revoke(&admin, &state, &agent_id, &kid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes one of the agent's keys for `admin` and audits it.
pub(crate) async fn revoke(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    kid: &str,
) -> Result<(), Problem> {
    let audit = admin
        .event(event::AGENT_KEY_REVOKED, agent_id)
        .with_detail(json!({ "kid": kid }));
    if !state
        .store
        .revoke_agent_key(agent_id, kid, signet_core::now(), audit)
        .await?
    {
        return Err(Problem::not_found("active key"));
    }
    Ok(())
}
