//! `PUT /api/v1/testing/clock`: moves the server's clock, for tests of grace periods and
//! expiries. It exists only on a server started with `SIGNET_TESTING_CLOCK=1` (404 otherwise),
//! needs the admin token, is audited, and is left out of the OpenAPI document.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use signet_core::audit::event;

use super::Admin;
use super::json::ApiJson;
use super::problem::Problem;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    /// Seconds to add to the system time (replaces the previous offset).
    offset_seconds: i64,
}

pub async fn set_clock(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(change): ApiJson<ClockChange>,
) -> Result<Json<Value>, Problem> {
    if !state.clock.is_adjustable() {
        return Err(Problem::not_found("endpoint"));
    }
    if change.offset_seconds.abs() > 10 * 365 * 86_400 {
        return Err(Problem::invalid_field(
            "offset_seconds",
            "offset_seconds: at most ten years either way",
        ));
    }
    state.clock.set_offset(change.offset_seconds);
    let audit = admin
        .event(event::TESTING_CLOCK_SET, "")
        .with_agent(None)
        .with_detail(json!({ "offset_seconds": change.offset_seconds }));
    state.store.audit().record(audit).await?;
    Ok(Json(
        json!({ "offset_seconds": state.clock.offset(), "now": state.now() }),
    ))
}
