//! Reading the audit log (writing goes through the group-commit writer).

use signet_core::audit::{AuditEvent, AuditQuery, Outcome};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::statement::Statement;
use crate::StoreError;

impl Store {
    /// Audit events matching `query`, newest first.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = Statement::new(
            "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id, hash FROM audit_events WHERE 1 = 1",
        );
        let text_filters = [
            ("agent_id", &query.agent_id),
            ("event_type", &query.event_type),
            ("reason", &query.reason),
            ("source", &query.source),
            ("request_id", &query.request_id),
        ];
        for (column, value) in text_filters {
            if let Some(value) = value {
                sql.push(" AND ")
                    .push(column)
                    .push(" = ")
                    .bind(value.clone());
            }
        }
        if let Some(outcome) = query.outcome {
            sql.push(" AND outcome = ").bind(outcome.as_str());
        }
        if let Some(since) = query.since_ms {
            sql.push(" AND ts_ms >= ").bind(since);
        }
        if let Some(until) = query.until_ms {
            sql.push(" AND ts_ms < ").bind(until);
        }
        if let Some(before) = query.before_id {
            sql.push(" AND id < ").bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(query.limit));
        let rows = sql.query()?.fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Up to `limit` records after `after_id`, oldest first: for tailing the log.
    pub async fn audit_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id, hash FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The id of the newest audit record (0 for none).
    pub async fn last_audit_id(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM audit_events")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
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
        request_id: row.try_get("request_id")?,
        hash: row
            .try_get::<Option<Vec<u8>>, _>("hash")?
            .map(signet_core::encoding::b64url),
    })
}
