//! One agent, in tabs: Overview, Credentials (Regenerate under Agent Secret, behind a
//! confirmation that carries the documented warning) and Activity (its audit records).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::agent::Agent;
use signet_core::audit::AuditQuery;

use super::render;
use super::session::{CsrfOnly, Signed};
use crate::admin::agents::{
    PatchAgentRequest, delete as delete_agent, regenerate as regenerate_secret, update,
};
use crate::admin::rfc3339;
use crate::state::AppState;

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

pub(super) struct EventRow {
    time: String,
    event_type: String,
    outcome: &'static str,
    reason: String,
    source: String,
    actor: String,
}

#[derive(askama::Template)]
#[template(path = "console/agent.html")]
struct AgentPage {
    user: Option<Signed>,
    agent: Facts,
    tab: &'static str,
    can_write: bool,
    csrf_token: String,
    events: Vec<EventRow>,
    error: Option<String>,
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
    let tab = match query.tab.as_deref() {
        Some("credentials") => "credentials",
        Some("activity") => "activity",
        _ => "overview",
    };
    agent_page(&state, signed, &agent_id, tab, None).await
}

async fn agent_page(
    state: &AppState,
    signed: Signed,
    agent_id: &str,
    tab: &'static str,
    error: Option<String>,
) -> Response {
    let unavailable = || super::unavailable();
    let agent = match state.store.find_agent(agent_id).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                super::message_page("No agent with this ID."),
            )
                .into_response();
        }
        Err(_) => return unavailable(),
    };
    let events = if tab == "activity" {
        let query = AuditQuery {
            agent_id: Some(agent_id.to_owned()),
            limit: 100,
            ..Default::default()
        };
        match state.store.query_audit(&query).await {
            Ok(events) => events
                .into_iter()
                .map(|e| EventRow {
                    time: rfc3339(e.ts_ms / 1000),
                    event_type: e.event_type,
                    outcome: e.outcome.as_str(),
                    reason: e.reason.unwrap_or_default(),
                    source: e.source.unwrap_or_default(),
                    actor: e.actor.unwrap_or_default(),
                })
                .collect(),
            Err(_) => return unavailable(),
        }
    } else {
        Vec::new()
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = AgentPage {
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        agent: Facts::new(&agent),
        tab,
        events,
        error,
    };
    (status, render(&page)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct RegenerateForm {
    /// Missing counts as wrong: refused (403) and audited, not a form error.
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    grace_period_seconds: u64,
}

pub async fn regenerate(
    State(state): State<AppState>,
    signed: Signed,
    Path(agent_id): Path<String>,
    axum::Form(form): axum::Form<RegenerateForm>,
) -> Response {
    if let Err(refused) = signed.check_change(&state, &form.csrf_token).await {
        return refused;
    }
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
            agent_page(&state, signed, &agent_id, "credentials", error).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/secret.html")]
struct SecretPage {
    user: Option<Signed>,
    heading: &'static str,
    agent_id: String,
    secret: String,
    previous_valid_until: Option<String>,
}

/// The one page that shows a secret: never cached (see `render`).
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
        agent_id,
        secret,
        previous_valid_until,
    })
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf_token: String,
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
    signed: Signed,
    Path(agent_id): Path<String>,
    axum::Form(form): axum::Form<EditForm>,
) -> Response {
    if let Err(refused) = signed.check_change(&state, &form.csrf_token).await {
        return refused;
    }
    let ttl = match form.access_token_ttl.trim() {
        "" => None,
        text => match text.parse() {
            Ok(ttl) => Some(ttl),
            Err(_) => {
                let error = Some("the token lifetime is a number of seconds".to_owned());
                return agent_page(&state, signed, &agent_id, "overview", error).await;
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
    after_change(&state, signed, &agent_id, result).await
}

/// The Overview again after a change, with the reason if it was refused.
async fn after_change(
    state: &AppState,
    signed: Signed,
    agent_id: &str,
    result: Result<(), crate::admin::problem::Problem>,
) -> Response {
    let error = result.err().map(|problem| problem.detail().to_owned());
    agent_page(state, signed, agent_id, "overview", error).await
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf_token: String,
    status: String,
}

/// Enables or disables the agent.
pub async fn status(
    State(state): State<AppState>,
    signed: Signed,
    Path(agent_id): Path<String>,
    axum::Form(form): axum::Form<StatusForm>,
) -> Response {
    if let Err(refused) = signed.check_change(&state, &form.csrf_token).await {
        return refused;
    }
    let request = PatchAgentRequest {
        status: Some(form.status),
        ..Default::default()
    };
    let result = update(&signed.admin(), &state, &agent_id, request).await;
    after_change(&state, signed, &agent_id, result).await
}

/// Deletes the agent (after the confirmation dialog) and goes back to the list.
pub async fn delete(
    State(state): State<AppState>,
    signed: Signed,
    Path(agent_id): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = signed.check_change(&state, &form.csrf_token).await {
        return refused;
    }
    match delete_agent(&signed.admin(), &state, &agent_id).await {
        Ok(()) => axum::response::Redirect::to("/console/agents").into_response(),
        Err(problem) => {
            let error = Some(problem.detail().to_owned());
            agent_page(&state, signed, &agent_id, "overview", error).await
        }
    }
}
