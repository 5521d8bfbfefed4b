//! `GET /api/v1/audit`: the audit log, newest first, with filters and cursor pagination.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use signet_core::audit::{AuditEvent, AuditQuery, Outcome};
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;
use super::{Admin, parse_rfc3339};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    agent_id: Option<String>,
    /// e.g. `token_request`, `agent_created`, `agent_secret_regenerated`.
    event_type: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// Failure reason, e.g. `wrong_secret`, `stale_secret`, `agent_disabled`.
    reason: Option<String>,
    /// Source IP address.
    source: Option<String>,
    /// The `X-Request-Id` of the request that caused the records.
    request_id: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    since: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    until: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 1000; default 100.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Reads the audit log.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn list_audit(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    let Query(params) =
        params.map_err(|e| Problem::bad_request(format!("invalid query: {}", e.body_text())))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    let outcome = match params.outcome.as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some(_) => {
            return Err(Problem::invalid_field(
                "outcome",
                "outcome must be success or failure",
            ));
        }
    };
    let time = |field: &'static str, value: Option<String>| -> Result<Option<i64>, Problem> {
        value
            .map(|v| {
                parse_rfc3339(&v)
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .ok_or_else(|| {
                        Problem::invalid_field(
                            field,
                            format!("{field} must be an RFC 3339 time like 2026-01-31T12:00:00Z"),
                        )
                    })
            })
            .transpose()
    };
    let before_id = params
        .cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                Problem::invalid_field("cursor", "cursor is not one this API returned")
            })
        })
        .transpose()?;
    let query = AuditQuery {
        agent_id: params.agent_id,
        event_type: params.event_type,
        outcome,
        reason: params.reason,
        source: params.source,
        request_id: params.request_id,
        since_ms: time("since", params.since)?,
        until_ms: time("until", params.until)?,
        before_id,
        limit,
    };
    let events = state.store.query_audit(&query).await?;
    let next_cursor = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    let items = events.iter().map(record_json).collect();
    Ok(Json(AuditPage { items, next_cursor }))
}

/// An audit record as the API, `signet audit export` and the JSON-lines sink show it: the
/// stored fields and the time in RFC 3339.
pub fn record_json(event: &AuditEvent) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    value["time"] = Value::String(super::rfc3339(event.ts_ms / 1000));
    value
}
