//! The agents list (search, paging, a marker on agents with open alerts) and registering an
//! agent, whose secret is shown once.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::agent::{Agent, AuthMethod};

use super::agent::{Tab, agent_page};
use super::credentials::{binding_fields, key_registration};
use super::render;
use super::session::{Change, Signed};
use crate::admin::agents::{CreateAgentRequest, register_agent};
use crate::admin::problem::Problem;
use crate::admin::rfc3339;
use crate::state::AppState;

/// Agents on one page.
const PAGE: u32 = 50;

pub(super) struct Row {
    id: String,
    name: String,
    status: &'static str,
    method: &'static str,
    created: String,
    last_authenticated: String,
    /// A marker for agents with open alerts: stale credentials in use, or another alert.
    warning: Option<&'static str>,
}

#[derive(askama::Template)]
#[template(path = "console/agents.html")]
struct Agents {
    user: Option<Signed>,
    agents: Vec<Row>,
    query: String,
    next: Option<String>,
    can_write: bool,
    csrf_token: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Response {
    page(&state, signed, query.q, query.after, None, StatusCode::OK).await
}

async fn page(
    state: &AppState,
    signed: Signed,
    query: String,
    after: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let listed = state
        .store
        .list_agents(Some(query.trim()), after.as_deref(), PAGE)
        .await;
    let alerts = state.store.list_alerts(Some("open"), None, 1000).await;
    let (listed, alerts) = match (listed, alerts) {
        (Ok(listed), Ok(alerts)) => (listed, alerts),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "console agent list failed");
            return super::unavailable();
        }
    };
    let mut flagged: HashMap<String, &'static str> = HashMap::new();
    for alert in alerts {
        if let Some(agent_id) = alert.agent_id {
            let marker = if alert.rule == "stale_credential" {
                "stale credential in use"
            } else {
                "open alert"
            };
            let entry = flagged.entry(agent_id).or_insert(marker);
            if marker == "stale credential in use" {
                *entry = marker;
            }
        }
    }
    let ids: Vec<&str> = listed.items.iter().map(|a| a.agent_id.as_str()).collect();
    let Ok(last) = state.store.last_authentications(&ids).await else {
        return super::unavailable();
    };
    let agents = listed
        .items
        .iter()
        .map(|a: &Agent| Row {
            id: a.agent_id.to_string(),
            name: a.name.clone(),
            status: a.status.as_str(),
            method: a.token_endpoint_auth_method.as_str(),
            created: rfc3339(a.created_at),
            last_authenticated: last
                .get(a.agent_id.as_str())
                .map_or_else(|| "never".to_owned(), |t| rfc3339(*t)),
            warning: flagged.get(a.agent_id.as_str()).copied(),
        })
        .collect();
    let template = Agents {
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        agents,
        query,
        next: listed.next_cursor,
        error,
    };
    (status, render(&template)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct NewAgentForm {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scopes: String,
    /// `client_secret_basic` when absent.
    #[serde(default)]
    token_endpoint_auth_method: String,
    /// For `private_key_jwt`: a JWK, a JWK Set or PEM.
    #[serde(default)]
    key: String,
    #[serde(default)]
    jwks_uri: String,
    /// For `tls_client_auth`: which certificate field, and its value (empty: Signet's agent URI).
    #[serde(default)]
    binding_kind: String,
    #[serde(default)]
    binding_value: String,
    /// For `self_signed_tls_client_auth`: the certificate (PEM).
    #[serde(default)]
    certificate: String,
}

impl NewAgentForm {
    /// The form as the admin API's request; the fields of other methods are ignored.
    fn request(self) -> Result<CreateAgentRequest, Problem> {
        let method = match self.token_endpoint_auth_method.trim() {
            "" => AuthMethod::ClientSecretBasic,
            text => text.parse::<AuthMethod>().map_err(Problem::from)?,
        };
        let scopes: Vec<String> = self.scopes.split_whitespace().map(String::from).collect();
        let mut request = CreateAgentRequest {
            name: self.name,
            description: Some(self.description).filter(|d| !d.is_empty()),
            token_endpoint_auth_method: Some(method.as_str().to_owned()),
            scopes: (!scopes.is_empty()).then_some(scopes),
            ..Default::default()
        };
        match method {
            AuthMethod::PrivateKeyJwt => {
                if !self.key.trim().is_empty() {
                    request.key = Some(key_registration(&self.key, "", "", "")?);
                }
                request.jwks_uri = Some(self.jwks_uri.trim().to_owned()).filter(|u| !u.is_empty());
            }
            AuthMethod::TlsClientAuth => {
                let [dn, dns, uri, ip, email] =
                    binding_fields(&self.binding_kind, &self.binding_value);
                request.tls_client_auth_subject_dn = dn;
                request.tls_client_auth_san_dns = dns;
                request.tls_client_auth_san_uri = uri;
                request.tls_client_auth_san_ip = ip;
                request.tls_client_auth_san_email = email;
            }
            AuthMethod::SelfSignedTlsClientAuth if !self.certificate.trim().is_empty() => {
                request.certificates = Some(vec![self.certificate]);
            }
            _ => {}
        }
        Ok(request)
    }
}

pub async fn create(
    State(state): State<AppState>,
    Change { signed, form }: Change<NewAgentForm>,
) -> Response {
    let created = match form.request() {
        Ok(request) => register_agent(&signed.admin(), &state, request).await,
        Err(problem) => Err(problem),
    };
    match created {
        Ok(created) => match created.agent_secret {
            Some(secret) => super::agent::secret_page(
                signed,
                "Agent registered",
                created.agent.agent_id,
                secret,
                None,
            ),
            None => {
                let notice = Some("Agent registered. Its credentials are on this tab.".to_owned());
                let id = created.agent.agent_id;
                agent_page(&state, signed, &id, Tab::Credentials, None, notice).await
            }
        },
        Err(problem) => {
            let error = Some(problem.detail().to_owned());
            page(
                &state,
                signed,
                String::new(),
                None,
                error,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}
