//! One agent, in tabs: Overview (settings, edit, enable/disable, delete, where and when it last
//! authenticated), Credentials (Regenerate under Agent Secret behind a confirmation that carries
//! the documented warning; keys and certificates in [`super::credentials`]), Activity (its
//! audit records) and Alerts.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::agent::Agent;
use signet_core::audit::AuditQuery;

use super::audit::{AlertRow, Row};
use super::credentials::Credentials;
use super::render;
use super::session::{Change, NoFields, Signed};
use super::settings::outcome;
use crate::admin::agent_view::{NetworkView, StaleUseView, agent_view};
use crate::admin::agents::{
    PatchAgentRequest, delete as delete_agent, regenerate as regenerate_secret, revoke_all_tokens,
    update,
};
use crate::admin::rfc3339;
use crate::state::AppState;

/// The agent page's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    Overview,
    Credentials,
    Activity,
    Alerts,
}

impl Tab {
    fn parse(text: Option<&str>) -> Self {
        match text {
            Some("credentials") => Self::Credentials,
            Some("activity") => Self::Activity,
            Some("alerts") => Self::Alerts,
            _ => Self::Overview,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Credentials => "credentials",
            Self::Activity => "activity",
            Self::Alerts => "alerts",
        }
    }
}

pub(super) struct Facts {
    id: String,
    name: String,
    description: String,
    status: &'static str,
    method: &'static str,
    uses_secret: bool,
    scopes: String,
    audiences: String,
    ttl: String,
    networks: String,
    created: String,
    /// The same values as the edit form shows them.
    scopes_input: String,
    audiences_input: String,
    ttl_input: String,
    networks_input: String,
}

impl Facts {
    fn new(agent: &Agent) -> Self {
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(" ")
            }
        };
        Self {
            id: agent.agent_id.to_string(),
            name: agent.name.clone(),
            description: agent.description.clone(),
            status: agent.status.as_str(),
            method: agent.token_endpoint_auth_method.as_str(),
            uses_secret: agent.token_endpoint_auth_method.uses_secret(),
            scopes: list(&agent.scopes),
            audiences: list(&agent.audiences),
            ttl: agent
                .access_token_ttl
                .map_or("server default".to_owned(), |t| format!("{t} seconds")),
            networks: if agent.allowed_cidrs.is_empty() {
                "any".to_owned()
            } else {
                let cidrs: Vec<String> =
                    agent.allowed_cidrs.iter().map(|c| c.to_string()).collect();
                cidrs.join(" ")
            },
            created: rfc3339(agent.created_at),
            scopes_input: agent.scopes.join(" "),
            audiences_input: agent.audiences.join(" "),
            ttl_input: agent
                .access_token_ttl
                .map(|t| t.to_string())
                .unwrap_or_default(),
            networks_input: agent
                .allowed_cidrs
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Where and how the agent authenticates: the Overview's second half.
pub(super) struct Usage {
    last_authenticated: Option<String>,
    networks: Vec<NetworkView>,
    stale: Vec<StaleUseView>,
}

#[derive(askama::Template)]
#[template(path = "console/agent.html")]
struct AgentPage {
    user: Option<Signed>,
    agent: Facts,
    tab: &'static str,
    can_write: bool,
    csrf_token: String,
    usage: Option<Usage>,
    credentials: Option<Credentials>,
    events: Vec<Row>,
    alerts: Vec<AlertRow>,
    error: Option<String>,
    notice: Option<String>,
}

impl AgentPage {
    /// The algorithms a key may be pinned to, every one the API takes.
    fn algorithms(&self) -> impl Iterator<Item = &'static str> {
        signet_core::token::SigningAlgorithm::ALL
            .into_iter()
            .map(|alg| alg.as_str())
    }
}

#[derive(Debug, Deserialize)]
pub struct TabQuery {
    tab: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(agent_id): Path<String>,
    Query(query): Query<TabQuery>,
) -> Response {
    let tab = Tab::parse(query.tab.as_deref());
    agent_page(&state, signed, &agent_id, tab, None, None).await
}

/// The agent page on `tab`, with what a change did (`notice`) or why it was refused (`error`).
pub(super) async fn agent_page(
    state: &AppState,
    signed: Signed,
    agent_id: &str,
    tab: Tab,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let agent = match state.store.find_agent(agent_id).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                super::message_page("No agent with this ID."),
            )
                .into_response();
        }
        Err(_) => return super::unavailable(),
    };
    let mut page = AgentPage {
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        agent: Facts::new(&agent),
        tab: tab.as_str(),
        usage: None,
        credentials: None,
        events: Vec::new(),
        alerts: Vec::new(),
        error,
        notice,
    };
    let loaded = match tab {
        Tab::Overview => usage(state, agent_id).await.map(|u| page.usage = Some(u)),
        Tab::Credentials => Credentials::load(state, &agent)
            .await
            .map(|c| page.credentials = Some(c)),
        Tab::Activity => {
            let query = AuditQuery {
                agent_id: Some(agent_id.to_owned()),
                limit: 100,
                ..Default::default()
            };
            state
                .store
                .query_audit(&query)
                .await
                .map(|events| page.events = events.into_iter().map(Row::new).collect())
                .map_err(Into::into)
        }
        Tab::Alerts => state
            .store
            .list_alerts(None, Some(agent_id), 200)
            .await
            .map(|alerts| page.alerts = alerts.into_iter().map(AlertRow::new).collect())
            .map_err(Into::into),
    };
    if let Err(problem) = loaded {
        tracing::error!(detail = problem.detail(), "console agent page failed");
        return super::unavailable();
    }
    (super::status_for(&page.error), render(&page)).into_response()
}

async fn usage(state: &AppState, agent_id: &str) -> Result<Usage, crate::admin::problem::Problem> {
    let view = agent_view(state, agent_id).await?.0;
    Ok(Usage {
        last_authenticated: view.networks.first().map(|n| n.last_seen.clone()),
        networks: view.networks,
        stale: view.stale_credential_use,
    })
}

#[derive(Debug, Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    grace_period_seconds: u64,
}

pub async fn regenerate(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<RegenerateForm>,
) -> Response {
    let grace = form.grace_period_seconds;
    match regenerate_secret(&signed.admin(), &state, &agent_id, grace).await {
        Ok((secret, now)) => secret_page(
            signed,
            "Agent secret regenerated",
            agent_id,
            secret.expose().to_owned(),
            (grace > 0).then(|| rfc3339(now + grace as i64)),
        ),
        Err(problem) => {
            let error = Some(problem.detail().to_owned());
            agent_page(&state, signed, &agent_id, Tab::Credentials, error, None).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/secret.html")]
pub(super) struct SecretPage {
    pub(super) user: Option<Signed>,
    pub(super) heading: &'static str,
    /// The agent the secret is for, if it is an agent secret.
    pub(super) agent_id: Option<String>,
    /// What is shown: "Agent Secret", "Admin token".
    pub(super) label: &'static str,
    pub(super) secret: String,
    /// A sentence after the warning (when the previous secret stops working, how to use it).
    pub(super) note: Option<String>,
    pub(super) back: String,
    pub(super) back_text: &'static str,
}

/// The page that shows an agent's new secret, once: never cached (see `render`).
pub(super) fn secret_page(
    signed: Signed,
    heading: &'static str,
    agent_id: String,
    secret: String,
    previous_valid_until: Option<String>,
) -> Response {
    render(&SecretPage {
        user: Some(signed),
        heading,
        back: format!("/console/agents/{agent_id}?tab=credentials"),
        agent_id: Some(agent_id),
        label: "Agent Secret",
        secret,
        note: previous_valid_until
            .map(|until| format!("The previous secret keeps working until {until}.")),
        back_text: "Back to the agent",
    })
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    audiences: String,
    #[serde(default)]
    access_token_ttl: String,
    #[serde(default)]
    allowed_cidrs: String,
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// Saves the Overview's edit form (through the admin API's own update).
pub async fn edit(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<EditForm>,
) -> Response {
    let ttl = match form.access_token_ttl.trim() {
        "" => None,
        text => match text.parse() {
            Ok(ttl) => Some(ttl),
            Err(_) => {
                let error = Some("the token lifetime is a number of seconds".to_owned());
                return agent_page(&state, signed, &agent_id, Tab::Overview, error, None).await;
            }
        },
    };
    let request = PatchAgentRequest {
        name: Some(form.name),
        description: Some(form.description),
        scopes: Some(words(&form.scopes)),
        audiences: Some(words(&form.audiences)),
        access_token_ttl: Some(ttl),
        allowed_cidrs: Some(words(&form.allowed_cidrs)),
        ..Default::default()
    };
    let result = update(&signed.admin(), &state, &agent_id, request).await;
    after_change(&state, signed, &agent_id, result, "Changes saved.").await
}

/// The Overview again after a change: what it did, or why it was refused.
async fn after_change(
    state: &AppState,
    signed: Signed,
    agent_id: &str,
    result: Result<(), crate::admin::problem::Problem>,
    notice: &str,
) -> Response {
    let (error, notice) = outcome(result, notice.to_owned());
    agent_page(state, signed, agent_id, Tab::Overview, error, notice).await
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    status: String,
}

/// Enables or disables the agent.
pub async fn status(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<StatusForm>,
) -> Response {
    let notice = if form.status == "active" {
        "Agent enabled."
    } else {
        "Agent disabled: it gets no tokens, and its live tokens are inactive."
    };
    let request = PatchAgentRequest {
        status: Some(form.status),
        ..Default::default()
    };
    let result = update(&signed.admin(), &state, &agent_id, request).await;
    after_change(&state, signed, &agent_id, result, notice).await
}

/// Revokes every token the agent holds (they turn inactive at introspection at once).
pub async fn revoke_tokens(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    let result = revoke_all_tokens(&signed.admin(), &state, &agent_id).await;
    let notice = "Every token issued to the agent so far is revoked.";
    after_change(&state, signed, &agent_id, result, notice).await
}

/// Deletes the agent (after the confirmation dialog) and goes back to the list.
pub async fn delete(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    match delete_agent(&signed.admin(), &state, &agent_id).await {
        Ok(()) => axum::response::Redirect::to("/console/agents").into_response(),
        Err(problem) => {
            let error = Some(problem.detail().to_owned());
            agent_page(&state, signed, &agent_id, Tab::Overview, error, None).await
        }
    }
}
