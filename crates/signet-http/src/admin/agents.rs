//! `/api/v1/agents`: register agents, list and search them, read, change and delete them, and
//! regenerate their secrets. Every change is audited with the actor.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use signet_core::agent::{Agent, AgentPatch, AuthMethod, NewAgent};
use signet_core::audit::{AuditEvent, event};
use signet_core::client_auth::{AgentSecret, StoredSecret};
use signet_core::jwk::{KeyInput, parse_keys};
use signet_core::pki::BindingKind;
use utoipa::{IntoParams, ToSchema};

pub use super::agent_view::AgentView;
use super::agent_view::agent_view;
use super::json::ApiJson;
use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

/// Longest grace period for a regenerated secret's predecessor: 30 days.
const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

/// A newly registered agent, with its secret: shown here and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAgent {
    #[serde(flatten)]
    pub(crate) agent: AgentView,
    /// The agent secret, for `client_secret_*` agents. Store it now: it cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) agent_secret: Option<String>,
    /// Registered public keys, for `private_key_jwt` agents.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<super::keys::KeyView>,
}

/// Settings of a new agent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// Defaults to `client_secret_basic`.
    pub(crate) token_endpoint_auth_method: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) audiences: Option<Vec<String>>,
    /// Seconds, 30 to 86400.
    pub(crate) access_token_ttl: Option<u64>,
    /// Source networks the agent may authenticate from, e.g. `10.0.0.0/8`; empty allows all.
    pub(crate) allowed_cidrs: Option<Vec<String>>,
    /// Public keys for `private_key_jwt`, as a JWK Set (`{"keys": [...]}`); for
    /// `self_signed_tls_client_auth`, a JWK Set whose keys carry the certificates in `x5c`
    /// (RFC 8705 §2.2).
    #[schema(value_type = Option<Object>)]
    pub(crate) jwks: Option<Value>,
    /// Where a `private_key_jwt` agent publishes its keys; the host must be on the server's
    /// allow-list (`SIGNET_JWKS_URI_ALLOWED_HOSTS`).
    pub(crate) jwks_uri: Option<String>,
    /// For `tls_client_auth`: the certificate's subject DN (RFC 4514), e.g. `CN=billing,O=Acme`.
    /// At most one `tls_client_auth_*` field; with none, the agent is bound to the URI SAN
    /// `urn:signet:agent:<agent_id>` that Signet's agent CA puts in its certificates.
    pub(crate) tls_client_auth_subject_dn: Option<String>,
    /// For `tls_client_auth`: a DNS name SAN.
    pub(crate) tls_client_auth_san_dns: Option<String>,
    /// For `tls_client_auth`: a URI SAN, e.g. a SPIFFE ID.
    pub(crate) tls_client_auth_san_uri: Option<String>,
    /// For `tls_client_auth`: an IP address SAN.
    pub(crate) tls_client_auth_san_ip: Option<String>,
    /// For `tls_client_auth`: an email address SAN.
    pub(crate) tls_client_auth_san_email: Option<String>,
    /// For `self_signed_tls_client_auth`: certificates (PEM) to register.
    pub(crate) certificates: Option<Vec<String>>,
    /// A key as the console submits it (one JWK, a JWK Set or PEM); not part of the API.
    #[serde(skip)]
    #[schema(ignore)]
    pub(crate) key: Option<super::keys::KeyRegistration>,
}

/// The one `tls_client_auth_*` field of a request, if any.
fn requested_binding(
    fields: [(BindingKind, Option<String>); 5],
) -> Result<Option<(BindingKind, String)>, Problem> {
    let mut set = fields
        .into_iter()
        .filter_map(|(kind, value)| value.map(|v| (kind, v)));
    let first = set.next();
    if let Some((kind, _)) = set.next() {
        return Err(Problem::invalid_field(
            kind.field(),
            "give exactly one tls_client_auth_* field (RFC 8705 §2.1.2)",
        ));
    }
    Ok(first)
}

/// A partial update: only the fields present change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAgentRequest {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    /// `active` or `disabled`. A disabled agent gets no tokens and its live tokens turn inactive.
    pub(crate) status: Option<String>,
    pub(crate) token_endpoint_auth_method: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) audiences: Option<Vec<String>>,
    /// Seconds; `null` resets to the server default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub(crate) access_token_ttl: Option<Option<u64>>,
    pub(crate) allowed_cidrs: Option<Vec<String>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(crate) jwks_uri: Option<Option<String>>,
    /// A new certificate binding replaces the current one (at most one of the five fields).
    pub(crate) tls_client_auth_subject_dn: Option<String>,
    pub(crate) tls_client_auth_san_dns: Option<String>,
    pub(crate) tls_client_auth_san_uri: Option<String>,
    pub(crate) tls_client_auth_san_ip: Option<String>,
    pub(crate) tls_client_auth_san_email: Option<String>,
}

/// Distinguishes a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateSecretRequest {
    /// Keep the previous secret working this many seconds (at most 30 days); 0 or absent ends it at once.
    grace_period_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegeneratedSecret {
    agent_id: String,
    /// The new secret. Store it now: it cannot be shown again.
    agent_secret: String,
    created_at: String,
    /// When the new secret expires (credential age policy), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<String>,
}

impl RegeneratedSecret {
    /// The answer to a regeneration or rotation: the new secret (this once, never cached), when
    /// it expires under the age policy, and until when the previous one still works.
    pub(crate) fn response(
        state: &AppState,
        agent_id: String,
        secret: &AgentSecret,
        now: i64,
        grace: u64,
    ) -> Response {
        let body = Self {
            agent_id,
            agent_secret: secret.expose().to_string(),
            created_at: rfc3339(now),
            expires_at: state
                .config
                .secret_max_age_seconds
                .map(|age| rfc3339(now + age as i64)),
            previous_secret_valid_until: (grace > 0).then(|| rfc3339(now + grace as i64)),
        };
        (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(body),
        )
            .into_response()
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case-insensitive match on agent ID, name or description.
    search: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500; default 50.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    items: Vec<AgentView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Registers an agent. A secret agent's secret is in the response, and only there.
#[utoipa::path(
    post, path = "/api/v1/agents", tag = "agents",
    request_body = CreateAgentRequest,
    responses(
        (status = 201, description = "Registered", body = CreatedAgent),
        (status = 400, description = "Invalid settings", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn create_agent(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateAgentRequest>,
) -> Result<Response, Problem> {
    let body = register_agent(&admin, &state, request).await?;
    let location = format!("/api/v1/agents/{}", body.agent.agent_id);
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Registers an agent for `admin` (the admin API, or the console as its signed-in user) and
/// audits it; a secret agent's secret is in the answer, and only there.
pub(crate) async fn register_agent(
    admin: &Admin,
    state: &AppState,
    request: CreateAgentRequest,
) -> Result<CreatedAgent, Problem> {
    let binding = requested_binding([
        (BindingKind::SubjectDn, request.tls_client_auth_subject_dn),
        (BindingKind::SanDns, request.tls_client_auth_san_dns),
        (BindingKind::SanUri, request.tls_client_auth_san_uri),
        (BindingKind::SanIp, request.tls_client_auth_san_ip),
        (BindingKind::SanEmail, request.tls_client_auth_san_email),
    ])?;
    if let Some(uri) = &request.jwks_uri {
        check_jwks_uri(state, uri)?;
    }
    let now = state.now();
    let agent = NewAgent {
        name: request.name,
        description: request.description,
        token_endpoint_auth_method: request.token_endpoint_auth_method,
        scopes: request.scopes,
        audiences: request.audiences,
        access_token_ttl: request.access_token_ttl,
        allowed_cidrs: request.allowed_cidrs,
        jwks_uri: request.jwks_uri,
        tls_client_auth: binding,
    }
    .into_agent(now)?;
    let self_signed = agent.token_endpoint_auth_method == AuthMethod::SelfSignedTlsClientAuth;
    let mut certificates = match &request.certificates {
        None => Vec::new(),
        Some(_) if !self_signed => {
            return Err(Problem::invalid_field(
                "certificates",
                "certificates: registered certificates are for self_signed_tls_client_auth agents",
            ));
        }
        Some(pems) => super::certificates::parse_pems(pems)?,
    };
    if let (true, Some(jwks)) = (self_signed, &request.jwks) {
        super::certificates::add_from_jwk_set(&mut certificates, jwks)?;
    }
    let keys = match (&request.jwks, &request.key) {
        (None, None) => Vec::new(),
        (Some(_), None) if self_signed => Vec::new(),
        _ if agent.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt => {
            return Err(Problem::invalid_field(
                "jwks",
                "jwks: keys are for private_key_jwt agents (and certificates in x5c for self_signed_tls_client_auth agents)",
            ));
        }
        (Some(jwks), None) => {
            parse_keys(KeyInput::Jwks(jwks), None, None, now).map_err(super::keys::key_problem)?
        }
        (None, Some(key)) => key.parse()?,
        (Some(_), Some(_)) => return Err(Problem::bad_request("give keys once")),
    };
    let secret = agent
        .token_endpoint_auth_method
        .uses_secret()
        .then(AgentSecret::generate);
    let stored = secret.as_ref().map(|s| {
        StoredSecret::new(&state.master_key, s, now)
            .with_max_age(state.config.secret_max_age_seconds, now)
    });
    let audit = admin
        .event(event::AGENT_CREATED, agent.agent_id.as_str())
        .with_detail(json!({
            "name": agent.name,
            "token_endpoint_auth_method": agent.token_endpoint_auth_method.as_str(),
            "scopes": agent.scopes,
            "audiences": agent.audiences,
            "kids": keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            "certificates": certificates.iter().map(|c| c.thumbprint.as_str()).collect::<Vec<_>>(),
            "tls_client_auth": agent.tls_client_auth.as_ref().map(|b| json!({ b.kind.field(): b.value })),
        }));
    // The agent, its credentials and the audit record: all or nothing.
    state
        .store
        .create_agent(&agent, stored.as_ref(), &keys, &certificates, audit)
        .await?;
    Ok(CreatedAgent {
        agent: AgentView::new(&agent),
        agent_secret: secret.map(|s| s.expose().to_string()),
        keys: keys.iter().map(super::keys::KeyView::new).collect(),
    })
}

/// Lists agents by ID, with search and cursor pagination.
#[utoipa::path(
    get, path = "/api/v1/agents", tag = "agents", params(ListParams),
    responses((status = 200, body = AgentList), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn list_agents(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<AgentList>, Problem> {
    let Query(params) =
        params.map_err(|e| Problem::bad_request(format!("invalid query: {}", e.body_text())))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let page = state
        .store
        .list_agents(params.search.as_deref(), params.cursor.as_deref(), limit)
        .await?;
    Ok(Json(AgentList {
        items: page.items.iter().map(AgentView::new).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Reads one agent.
#[utoipa::path(
    get, path = "/api/v1/agents/{agent_id}", tag = "agents",
    params(("agent_id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn get_agent(
    _admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentView>, Problem> {
    agent_view(&state, &agent_id).await
}

/// Changes an agent's settings or status.
#[utoipa::path(
    patch, path = "/api/v1/agents/{agent_id}", tag = "agents",
    params(("agent_id" = String, Path)), request_body = PatchAgentRequest,
    responses(
        (status = 200, body = AgentView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn patch_agent(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<PatchAgentRequest>,
) -> Result<Json<AgentView>, Problem> {
    update(&admin, &state, &agent_id, request).await?;
    agent_view(&state, &agent_id).await
}

/// Applies `request` to the agent for `admin` (the admin API, or the console as its user) and
/// audits what changed, from and to.
pub(crate) async fn update(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    request: PatchAgentRequest,
) -> Result<(), Problem> {
    let patch = AgentPatch {
        name: request.name,
        description: request.description,
        status: request.status,
        token_endpoint_auth_method: request.token_endpoint_auth_method,
        scopes: request.scopes,
        audiences: request.audiences,
        access_token_ttl: request.access_token_ttl,
        allowed_cidrs: request.allowed_cidrs,
        jwks_uri: request.jwks_uri,
        tls_client_auth: requested_binding([
            (BindingKind::SubjectDn, request.tls_client_auth_subject_dn),
            (BindingKind::SanDns, request.tls_client_auth_san_dns),
            (BindingKind::SanUri, request.tls_client_auth_san_uri),
            (BindingKind::SanIp, request.tls_client_auth_san_ip),
            (BindingKind::SanEmail, request.tls_client_auth_san_email),
        ])?,
    };
    if let Some(Some(uri)) = &patch.jwks_uri {
        check_jwks_uri(state, uri)?;
    }
    let now = state.now();
    // Read, changed and written in one transaction: a change made meanwhile (a disable) is
    // neither lost nor overwritten with what was read before it.
    let modify = |agent: &Agent| -> Result<Option<(Agent, AuditEvent)>, Problem> {
        let updated = patch.apply(agent, now)?;
        if updated == *agent {
            return Ok(None);
        }
        let before = serde_json::to_value(AgentView::new(agent)).unwrap_or_default();
        let after = serde_json::to_value(AgentView::new(&updated)).unwrap_or_default();
        let changes: serde_json::Map<String, Value> = after
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| k.as_str() != "updated_at" && before.get(k.as_str()) != Some(*v))
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({ "from": before.get(k.as_str()), "to": v }),
                )
            })
            .collect();
        let audit = admin
            .event(event::AGENT_UPDATED, agent_id)
            .with_detail(json!({ "changes": changes }));
        Ok(Some((updated, audit)))
    };
    if state.store.modify_agent(agent_id, modify).await? {
        Ok(())
    } else {
        Err(Problem::not_found("agent"))
    }
}

/// Deletes an agent and its credentials. Its live tokens turn inactive at introspection.
#[utoipa::path(
    delete, path = "/api/v1/agents/{agent_id}", tag = "agents",
    params(("agent_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn delete_agent(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<StatusCode, Problem> {
    delete(&admin, &state, &agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the agent for `admin` (the admin API, or the console as its user) and audits it.
pub(crate) async fn delete(admin: &Admin, state: &AppState, agent_id: &str) -> Result<(), Problem> {
    let audit = admin.event(event::AGENT_DELETED, agent_id);
    if !state.store.delete_agent(agent_id, audit).await? {
        return Err(Problem::not_found("agent"));
    }
    Ok(())
}

/// Generates a new secret. The old one fails at once, or after `grace_period_seconds`.
#[utoipa::path(
    post, path = "/api/v1/agents/{agent_id}/secret/regenerate", tag = "agents",
    params(("agent_id" = String, Path)), request_body(content = Option<RegenerateSecretRequest>),
    responses(
        (status = 200, body = RegeneratedSecret),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent does not use a secret", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn regenerate_secret(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<RegenerateSecretRequest>,
) -> Result<Response, Problem> {
    let grace = request.grace_period_seconds.unwrap_or(0);
    let (secret, now) = regenerate(&admin, &state, &agent_id, grace).await?;
    Ok(RegeneratedSecret::response(
        &state, agent_id, &secret, now, grace,
    ))
}

/// Replaces a secret agent's secret for `admin` (the admin API, or the console as its signed-in
/// user), the old one working `grace` seconds more, and audits it. Returns the new secret and
/// the time it was made.
pub(crate) async fn regenerate(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    grace: u64,
) -> Result<(AgentSecret, i64), Problem> {
    if grace > MAX_GRACE_SECONDS {
        return Err(Problem::invalid_field(
            "grace_period_seconds",
            "grace_period_seconds must be at most 2592000 (30 days)",
        ));
    }
    let agent = state
        .store
        .find_agent(agent_id)
        .await?
        .ok_or_else(|| Problem::not_found("agent"))?;
    if !agent.token_endpoint_auth_method.uses_secret() {
        return Err(Problem::conflict(format!(
            "the agent authenticates with {}; it has no secret",
            agent.token_endpoint_auth_method.as_str()
        )));
    }
    let now = state.now();
    let secret = AgentSecret::generate();
    let audit = admin
        .event(event::AGENT_SECRET_REGENERATED, agent_id)
        .with_detail(json!({ "grace_period_seconds": grace }));
    state
        .store
        .replace_secret(
            agent_id,
            &StoredSecret::new(&state.master_key, &secret, now)
                .with_max_age(state.config.secret_max_age_seconds, now),
            now,
            grace,
            audit,
        )
        .await?;
    Ok((secret, now))
}

/// A `jwks_uri` must satisfy the server's fetch policy (allow-list, https, addresses).
fn check_jwks_uri(state: &AppState, uri: &str) -> Result<(), Problem> {
    state
        .jwks_fetcher
        .check_uri(uri)
        .map_err(|e| Problem::invalid_field("jwks_uri", format!("jwks_uri: {e}")))
}

/// Revokes every token the agent has been issued so far: they turn inactive at introspection at
/// once (resource servers that verify offline see them until they expire).
#[utoipa::path(
    post, path = "/api/v1/agents/{agent_id}/tokens/revoke", tag = "agents",
    params(("agent_id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn revoke_tokens(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentView>, Problem> {
    revoke_all_tokens(&admin, &state, &agent_id).await?;
    agent_view(&state, &agent_id).await
}

/// Revokes every token issued to the agent so far, for `admin`, and audits it.
pub(crate) async fn revoke_all_tokens(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
) -> Result<(), Problem> {
    let now = state.now();
    let audit = admin.event(event::AGENT_TOKENS_REVOKED, agent_id);
    if !state
        .store
        .revoke_agent_tokens(agent_id, now, audit)
        .await?
    {
        return Err(Problem::not_found("agent"));
    }
    Ok(())
}
