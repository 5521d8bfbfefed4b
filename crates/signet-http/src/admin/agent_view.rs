//! The agent as the admin API shows it: its settings, when its credentials were made and
//! expire, where it still uses replaced ones, and the networks it authenticates from. Secrets
//! never appear here.

use axum::Json;
use serde::Serialize;
use signet_core::agent::Agent;
use signet_core::client_auth::AgentCredentials;
use signet_core::pki::BindingKind;
use utoipa::ToSchema;

use super::problem::Problem;
use super::rfc3339;
use crate::state::AppState;

/// An agent as the admin API shows it. Secrets never appear here.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub(crate) agent_id: String,
    name: String,
    description: String,
    /// `active` or `disabled`.
    status: String,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`, `tls_client_auth` or `self_signed_tls_client_auth`.
    token_endpoint_auth_method: String,
    scopes: Vec<String>,
    audiences: Vec<String>,
    /// The agent's own token lifetime in seconds; `null` uses the server default.
    access_token_ttl: Option<u64>,
    allowed_cidrs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jwks_uri: Option<String>,
    /// Tokens issued at or before this time are inactive.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_revoked_before: Option<String>,
    /// The certificate name a `tls_client_auth` agent is bound to: exactly one of these five.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth_subject_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth_san_dns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth_san_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth_san_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth_san_email: Option<String>,
    created_at: String,
    updated_at: String,
    /// Facts about the current secret (never the secret), on single-agent reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<SecretView>,
    /// Use of replaced credentials (old secret, revoked key, removed certificate), by kind, on
    /// single-agent reads: which service still uses old credentials, from where, since when.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stale_credential_use: Vec<StaleUseView>,
    /// Networks (IPv4 /24, IPv6 /64) the agent authenticated from, most recent first, on
    /// single-agent reads (recorded at most hourly per network).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) networks: Vec<NetworkView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkView {
    pub(crate) network: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaleUseView {
    /// `secret`, `key` or `certificate`.
    pub(crate) kind: String,
    pub(crate) count: i64,
    pub(crate) first_at: String,
    pub(crate) last_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_user_agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    pub(crate) created_at: String,
    /// When the secret stops working (the credential age policy, `SIGNET_SECRET_MAX_AGE_DAYS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
    /// While a regenerated secret's predecessor still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_secret_valid_until: Option<String>,
}

impl AgentView {
    pub(super) fn new(agent: &Agent) -> Self {
        let bound = |kind: BindingKind| {
            agent
                .tls_client_auth
                .as_ref()
                .filter(|b| b.kind == kind)
                .map(|b| b.value.clone())
        };
        Self {
            tls_client_auth_subject_dn: bound(BindingKind::SubjectDn),
            tls_client_auth_san_dns: bound(BindingKind::SanDns),
            tls_client_auth_san_uri: bound(BindingKind::SanUri),
            tls_client_auth_san_ip: bound(BindingKind::SanIp),
            tls_client_auth_san_email: bound(BindingKind::SanEmail),
            agent_id: agent.agent_id.to_string(),
            name: agent.name.clone(),
            description: agent.description.clone(),
            status: agent.status.as_str().to_string(),
            token_endpoint_auth_method: agent.token_endpoint_auth_method.as_str().to_string(),
            scopes: agent.scopes.clone(),
            audiences: agent.audiences.clone(),
            access_token_ttl: agent.access_token_ttl,
            allowed_cidrs: agent.allowed_cidrs.iter().map(|c| c.to_string()).collect(),
            jwks_uri: agent.jwks_uri.clone(),
            tokens_revoked_before: agent.tokens_revoked_before.map(rfc3339),
            created_at: rfc3339(agent.created_at),
            updated_at: rfc3339(agent.updated_at),
            secret: None,
            stale_credential_use: Vec::new(),
            networks: Vec::new(),
        }
    }

    fn with_credentials(credentials: &AgentCredentials) -> Self {
        let now = signet_core::now();
        let current = credentials
            .secrets
            .iter()
            .rev()
            .find(|s| s.replaced_at.is_none());
        let previous = credentials
            .secrets
            .iter()
            .filter_map(|s| s.replaced_at)
            .filter(|t| *t > now)
            .max();
        Self {
            secret: current.map(|s| SecretView {
                created_at: rfc3339(s.created_at),
                expires_at: s.expires_at.map(rfc3339),
                previous_secret_valid_until: previous.map(rfc3339),
            }),
            ..Self::new(&credentials.agent)
        }
    }
}

/// The agent as the API shows it, with facts about its credentials; 404 if there is none.
pub(crate) async fn agent_view(
    state: &AppState,
    agent_id: &str,
) -> Result<Json<AgentView>, Problem> {
    let credentials = state
        .store
        .agent_credentials(agent_id)
        .await?
        .ok_or_else(|| Problem::not_found("agent"))?;
    let mut view = AgentView::with_credentials(&credentials);
    view.stale_credential_use = state
        .store
        .stale_credential_use(agent_id)
        .await?
        .into_iter()
        .map(|u| StaleUseView {
            kind: u.kind,
            count: u.count,
            first_at: rfc3339(u.first_at),
            last_at: rfc3339(u.last_at),
            last_source: u.last_source,
            last_user_agent: u.last_user_agent,
        })
        .collect();
    view.networks = state
        .store
        .agent_networks(agent_id)
        .await?
        .into_iter()
        .map(|(network, first, last)| NetworkView {
            network,
            first_seen: rfc3339(first),
            last_seen: rfc3339(last),
        })
        .collect();
    Ok(Json(view))
}
