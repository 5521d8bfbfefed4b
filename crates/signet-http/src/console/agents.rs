//! The agents list (search, paging, a marker on agents with open alerts) and registering an
//! agent, whose secret is shown once.

use std::collections::HashSet;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::agent::Agent;

use super::render;
use super::session::Signed;
use crate::admin::agents::{CreateAgentRequest, register_agent};
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
    warning: bool,
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
    let alerts = state.store.list_alerts(Some("open"), 1000).await;
    let (listed, alerts) = match (listed, alerts) {
        (Ok(listed), Ok(alerts)) => (listed, alerts),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "console agent list failed");
            return super::unavailable();
        }
    };
    let flagged: HashSet<String> = alerts.into_iter().filter_map(|a| a.agent_id).collect();
    let agents = listed
        .items
        .iter()
        .map(|a: &Agent| Row {
            id: a.agent_id.to_string(),
            name: a.name.clone(),
            status: a.status.as_str(),
            method: a.token_endpoint_auth_method.as_str(),
            created: rfc3339(a.created_at),
            warning: flagged.contains(a.agent_id.as_str()),
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
    /// Missing counts as wrong: refused (403) and audited, not a form error.
    #[serde(default)]
    csrf_token: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scopes: String,
}

pub async fn create(
    State(state): State<AppState>,
    signed: Signed,
    axum::Form(form): axum::Form<NewAgentForm>,
) -> Response {
    if let Err(refused) = signed.check_change(&state, &form.csrf_token).await {
        return refused;
    }
    let scopes: Vec<String> = form.scopes.split_whitespace().map(String::from).collect();
    let request = CreateAgentRequest {
        name: form.name,
        description: Some(form.description).filter(|d| !d.is_empty()),
        scopes: (!scopes.is_empty()).then_some(scopes),
        ..Default::default()
    };
    match register_agent(&signed.admin(), &state, request).await {
        Ok(created) => super::agent::secret_page(
            signed,
            "Agent registered",
            created.agent.agent_id,
            created.agent_secret.unwrap_or_default(),
            None,
        ),
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
