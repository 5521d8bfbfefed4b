//! Reading the audit log (writing goes through the group-commit writer).

use signet_core::audit::{AuditEvent, AuditQuery, Outcome};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::Store;
use crate::StoreError;

impl Store {
    /// Audit events matching `query`, newest first.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail FROM audit_events WHERE 1 = 1",
        );
        let text_filters = [
            ("agent_id", &query.agent_id),
            ("event_type", &query.event_type),
            ("reason", &query.reason),
            ("source", &query.source),
        ];
        for (column, value) in text_filters {
            if let Some(value) = value {
                sql.push(format!(" AND {column} = "))
                    .push_bind(value.clone());
            }
        }
        if let Some(outcome) = query.outcome {
            sql.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(since) = query.since_ms {
            sql.push(" AND ts_ms >= ").push_bind(since);
        }
        if let Some(until) = query.until_ms {
            sql.push(" AND ts_ms < ").push_bind(until);
        }
        if let Some(before) = query.before_id {
            sql.push(" AND id < ").push_bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }
}

fn event_from_row(row: &SqliteRow) -> Result<AuditEvent, StoreError> {
    let outcome: String = row.try_get("outcome")?;
    let detail: Option<String> = row.try_get("detail")?;
    Ok(AuditEvent {
        id: row.try_get("id")?,
        ts_ms: row.try_get("ts_ms")?,
        event_type: row.try_get("event_type")?,
        outcome: if outcome == "success" {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        reason: row.try_get("reason")?,
        agent_id: row.try_get("agent_id")?,
        method: row.try_get("method")?,
        source: row.try_get("source")?,
        user_agent: row.try_get("user_agent")?,
        actor: row.try_get("actor")?,
        jti: row.try_get("jti")?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    })
}
