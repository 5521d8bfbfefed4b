//! The audit log and the alerts: filters and paging over the same records as
//! `GET /api/v1/audit`, and acknowledging an alert (admins).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::audit::{AuditEvent, AuditQuery, Outcome};
use signet_store::AlertRecord;

use super::render;
use super::session::{Change, NoFields, Signed};
use crate::admin::rfc3339;
use crate::state::AppState;

/// Records on one page.
const PAGE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    source: String,
    /// `1h`, `24h` or `7d`: only records that recent; anything else: all.
    #[serde(default)]
    within: String,
    before: Option<i64>,
}

impl Filter {
    /// The earliest time (ms) the `within` filter lets through.
    fn since_ms(&self, now: i64) -> Option<i64> {
        let seconds = match self.within.as_str() {
            "1h" => 3600,
            "24h" => 86_400,
            "7d" => 7 * 86_400,
            _ => return None,
        };
        Some((now - seconds) * 1000)
    }
}

pub(super) struct Row {
    pub(super) time: String,
    pub(super) event_type: String,
    pub(super) outcome: &'static str,
    pub(super) reason: String,
    pub(super) agent_id: String,
    pub(super) source: String,
    pub(super) actor: String,
}

impl Row {
    pub(super) fn new(e: AuditEvent) -> Self {
        Self {
            time: rfc3339(e.ts_ms / 1000),
            event_type: e.event_type,
            outcome: e.outcome.as_str(),
            reason: e.reason.unwrap_or_default(),
            agent_id: e.agent_id.unwrap_or_default(),
            source: e.source.unwrap_or_default(),
            actor: e.actor.unwrap_or_default(),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    user: Option<Signed>,
    filter: Filter,
    events: Vec<Row>,
    older: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    signed: Signed,
    Query(filter): Query<Filter>,
) -> Response {
    let query = AuditQuery {
        agent_id: super::filled(&filter.agent_id),
        event_type: super::filled(&filter.event_type),
        outcome: match filter.outcome.as_str() {
            "failure" => Some(Outcome::Failure),
            "success" => Some(Outcome::Success),
            _ => None,
        },
        reason: super::filled(&filter.reason),
        source: super::filled(&filter.source),
        since_ms: filter.since_ms(state.now()),
        before_id: filter.before,
        limit: PAGE,
        ..Default::default()
    };
    let Ok(events) = state.store.query_audit(&query).await else {
        return super::unavailable();
    };
    let older = (events.len() == PAGE as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("agent_id", &filter.agent_id)
                .append_pair("event_type", &filter.event_type)
                .append_pair("outcome", &filter.outcome)
                .append_pair("reason", &filter.reason)
                .append_pair("source", &filter.source)
                .append_pair("within", &filter.within)
                .append_pair("before", &id.to_string())
                .finish();
            format!("/console/audit?{query}")
        });
    let events = events.into_iter().map(Row::new).collect();
    render(&AuditPage {
        user: Some(signed),
        filter,
        events,
        older,
    })
}

pub(super) struct AlertRow {
    pub(super) id: i64,
    pub(super) rule: String,
    pub(super) subject: String,
    pub(super) agent_id: String,
    pub(super) count: i64,
    pub(super) first: String,
    pub(super) last: String,
    pub(super) status: String,
}

impl AlertRow {
    pub(super) fn new(a: AlertRecord) -> Self {
        Self {
            id: a.id,
            rule: a.rule,
            subject: a.subject,
            agent_id: a.agent_id.unwrap_or_default(),
            count: a.count,
            first: rfc3339(a.first_at),
            last: rfc3339(a.last_at),
            status: a.status,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/alerts.html")]
struct AlertsPage {
    user: Option<Signed>,
    alerts: Vec<AlertRow>,
    status: &'static str,
    can_write: bool,
    csrf_token: String,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    status: Option<String>,
}

pub async fn alerts(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<StatusQuery>,
) -> Response {
    let status = match query.status.as_deref() {
        Some("acknowledged") => "acknowledged",
        _ => "open",
    };
    alerts_page(&state, signed, status, None).await
}

async fn alerts_page(
    state: &AppState,
    signed: Signed,
    status: &'static str,
    notice: Option<String>,
) -> Response {
    let Ok(alerts) = state.store.list_alerts(Some(status), None, 500).await else {
        return super::unavailable();
    };
    let alerts = alerts.into_iter().map(AlertRow::new).collect();
    render(&AlertsPage {
        can_write: signed.can_write(),
        csrf_token: signed.csrf_token.clone(),
        user: Some(signed),
        alerts,
        status,
        notice,
    })
}

pub async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    let notice = match crate::admin::alerts::acknowledge(&signed.admin(), &state, id).await {
        Ok(alert) => format!("Alert {} ({}) acknowledged.", alert.id, alert.rule),
        Err(problem) => problem.detail().to_owned(),
    };
    alerts_page(&state, signed, "open", Some(notice))
        .await
        .into_response()
}
