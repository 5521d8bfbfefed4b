//! The audit log and the alerts: filters and paging over the same records as
//! `GET /api/v1/audit`, the tamper check of `GET /api/v1/audit/verify` (with an anchor), and
//! acknowledging an alert (admins).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use signet_core::audit::{AuditEvent, AuditQuery, Outcome};
use signet_store::{AlertRecord, ChainReport};

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

#[derive(askama::Template)]
#[template(path = "console/audit_verify.html")]
struct VerifyPage {
    user: Option<Signed>,
    /// The anchor as typed.
    anchor: String,
    report: Option<ChainReport>,
    /// Whether an anchor was checked for this report.
    anchored: bool,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    anchor: String,
}

/// "Has the audit log been tampered with?": the chain checked, its head to keep elsewhere, and
/// an anchor kept earlier checked too.
pub async fn verify(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<VerifyQuery>,
) -> Response {
    // A refused anchor is shown with its reason (400); a failed check with its own status.
    let (status, page) = match crate::admin::audit_verify::check(&state, Some(&query.anchor)).await
    {
        Ok((report, anchor)) => (
            StatusCode::OK,
            VerifyPage {
                user: Some(signed),
                anchor: query.anchor,
                anchored: anchor.is_some(),
                report: Some(report),
                error: None,
            },
        ),
        Err(problem) if problem.status() == StatusCode::SERVICE_UNAVAILABLE => {
            return super::unavailable();
        }
        Err(problem) => (
            problem.status(),
            VerifyPage {
                user: Some(signed),
                anchor: query.anchor,
                anchored: false,
                report: None,
                error: Some(problem.detail().to_owned()),
            },
        ),
    };
    (status, render(&page)).into_response()
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

#[cfg(test)]
mod tests {
    use askama::Template;
    use signet_core::audit::ChainAnchor;
    use signet_store::ChainReport;

    use super::VerifyPage;

    fn page(first_broken: Option<i64>) -> String {
        let report = ChainReport {
            checked: 6,
            unchained: 0,
            unkeyed: 2,
            first_broken,
            checkpoint: None,
            head: Some(ChainAnchor {
                id: 9,
                hash: [7; 32],
            }),
            anchor_checked: false,
        };
        VerifyPage {
            user: None,
            anchor: String::new(),
            report: Some(report),
            anchored: false,
            error: None,
        }
        .render()
        .expect("renders")
    }

    #[test]
    fn a_broken_chain_is_said_plainly_and_links_to_its_records() {
        let html = page(Some(7));
        assert!(html.contains("The audit log was tampered with"), "{html}");
        assert!(html.contains("breaks at record 7 (6 records before it verify)"));
        assert!(html.contains(r#"href="/console/audit?before=8""#));
        // No head to keep from a broken log.
        assert!(!html.contains(r#"id="head""#));
        let html = page(None);
        assert!(html.contains("Audit log intact"), "{html}");
        assert!(html.contains("The first 2 records were chained before the chain was keyed"));
        assert!(
            html.contains(
                &ChainAnchor {
                    id: 9,
                    hash: [7; 32]
                }
                .to_string()
            )
        );
    }
}
