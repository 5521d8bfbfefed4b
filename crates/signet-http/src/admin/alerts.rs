//! `/api/v1/alerts`: alerts raised by anomaly detection, newest first; acknowledging one; its
//! webhook delivery log.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use signet_core::audit::event;
use utoipa::IntoParams;

use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::alerts::payload;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// `open` or `acknowledged`.
    status: Option<String>,
    /// Only this agent's alerts.
    agent_id: Option<String>,
    /// 1 to 1000; default 100.
    limit: Option<u32>,
}

/// Lists alerts, newest first.
#[utoipa::path(
    get, path = "/api/v1/alerts", tag = "audit", params(AlertParams),
    responses((status = 200, description = "Alerts", body = Object)),
    security(("admin_token" = []))
)]
pub async fn list_alerts(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<AlertParams>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(params) =
        params.map_err(|e| Problem::bad_request(format!("invalid query: {}", e.body_text())))?;
    if let Some(status) = params.status.as_deref()
        && status != "open"
        && status != "acknowledged"
    {
        return Err(Problem::invalid_field(
            "status",
            "status: open or acknowledged",
        ));
    }
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let alerts = state
        .store
        .list_alerts(params.status.as_deref(), params.agent_id.as_deref(), limit)
        .await?;
    Ok(Json(
        json!({ "items": alerts.iter().map(payload).collect::<Vec<_>>() }),
    ))
}

/// Acknowledges an open alert; the next signal for the same rule and subject opens a new one.
#[utoipa::path(
    post, path = "/api/v1/alerts/{id}/acknowledge", tag = "audit",
    params(("id" = i64, Path)),
    responses((status = 200, description = "Acknowledged", body = Object), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn acknowledge_alert(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, Problem> {
    let alert = acknowledge(&admin, &state, id).await?;
    Ok(Json(payload(&alert)))
}

/// Acknowledges open alert `id` for `admin` (the admin API, or the console as its user) and
/// audits it.
pub(crate) async fn acknowledge(
    admin: &Admin,
    state: &AppState,
    id: i64,
) -> Result<signet_store::AlertRecord, Problem> {
    let audit = |alert: &signet_store::AlertRecord| {
        admin
            .event(
                event::ALERT_ACKNOWLEDGED,
                alert.agent_id.as_deref().unwrap_or_default(),
            )
            .with_agent(alert.agent_id.as_deref())
            .with_detail(json!({ "alert_id": id, "rule": alert.rule, "count": alert.count }))
    };
    state
        .store
        .acknowledge_alert(id, &admin.actor_name(), state.now(), audit)
        .await?
        .ok_or_else(|| Problem::not_found("open alert"))
}

/// The webhook delivery attempts of an alert.
#[utoipa::path(
    get, path = "/api/v1/alerts/{id}/deliveries", tag = "audit",
    params(("id" = i64, Path)),
    responses((status = 200, description = "Delivery attempts", body = Object)),
    security(("admin_token" = []))
)]
pub async fn alert_deliveries(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, Problem> {
    let deliveries = state.store.alert_deliveries(id).await?;
    Ok(Json(json!({
        "items": deliveries.iter().map(|d| json!({
            "attempt": d.attempt,
            "at": rfc3339(d.at),
            "ok": d.ok,
            "status_code": d.status_code,
            "error": d.error,
        })).collect::<Vec<_>>()
    })))
}
