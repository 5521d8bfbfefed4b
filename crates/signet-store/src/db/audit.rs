//! Reading the audit log (writing goes through the group-commit writer).

use signet_core::audit::{
    AuditEvent, AuditQuery, CHAIN_GENESIS, ChainFields, Outcome, chain_hash, unkeyed_chain_hash,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::statement::Statement;
use crate::StoreError;

impl Store {
    /// Audit events matching `query`, newest first.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = Statement::new(
            "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id FROM audit_events WHERE 1 = 1",
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
            "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
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
    })
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records whose hash was checked.
    pub checked: u64,
    /// Records from before tamper evidence existed (no hash), at the start of the log.
    pub unchained: u64,
    /// Of the records checked, those from before the chain was keyed (a plain SHA-256 chain),
    /// at its start: whoever could write to the database could have recomputed them.
    pub unkeyed: u64,
    /// The first record whose hash does not match (changed, or a record before it was removed
    /// or reordered); for records removed from the end, the first missing id.
    pub first_broken: Option<i64>,
    /// The retention checkpoint the check started from (the last deleted record's id).
    pub checkpoint: Option<i64>,
}

impl Store {
    /// Recomputes the audit chain from the latest retention checkpoint (or the first record)
    /// up to the chain head as it stands when the check starts, and names the first record that
    /// breaks it. Records committed while it runs are left for the next check.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        // The head first: every record up to it is committed (a record and the head move in
        // one transaction). Read last, a head moved by a commit made during the check would
        // look like records removed from the end.
        let head: i64 = sqlx::query_scalar("SELECT last_id FROM audit_chain_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let checkpoint: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT last_id, hash FROM audit_checkpoints ORDER BY last_id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let mut report = ChainReport {
            checked: 0,
            unchained: 0,
            unkeyed: 0,
            first_broken: None,
            checkpoint: checkpoint.as_ref().map(|(id, _)| *id),
        };
        let mut previous = checkpoint
            .as_ref()
            .and_then(|(_, h)| <[u8; 32]>::try_from(h.as_slice()).ok())
            .unwrap_or(CHAIN_GENESIS);
        let mut after = checkpoint.map(|(id, _)| id).unwrap_or(0);
        let mut chained = false;
        // Unkeyed hashes are accepted only before the first keyed one: records written since
        // cannot be passed off as older ones whose hash anybody can compute.
        let mut keyed = false;
        loop {
            let rows = sqlx::query(
                "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id, hash FROM audit_events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT 5000",
            )
            .bind(after)
            .bind(head)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get("id")?;
            for row in &rows {
                let id: i64 = row.try_get("id")?;
                let stored: Option<Vec<u8>> = row.try_get("hash")?;
                let Some(stored) = stored else {
                    if chained {
                        report.first_broken = Some(id);
                        return Ok(report);
                    }
                    report.unchained += 1;
                    continue;
                };
                chained = true;
                let text = |c: &str| row.try_get::<Option<String>, _>(c);
                let (event_type, outcome): (String, String) =
                    (row.try_get("event_type")?, row.try_get("outcome")?);
                let (reason, agent_id, method, source) = (
                    text("reason")?,
                    text("agent_id")?,
                    text("method")?,
                    text("source")?,
                );
                let (user_agent, actor, jti, detail, request_id) = (
                    text("user_agent")?,
                    text("actor")?,
                    text("jti")?,
                    text("detail")?,
                    text("request_id")?,
                );
                let fields = ChainFields {
                    id,
                    ts_ms: row.try_get("ts_ms")?,
                    event_type: &event_type,
                    outcome: &outcome,
                    reason: reason.as_deref(),
                    agent_id: agent_id.as_deref(),
                    method: method.as_deref(),
                    source: source.as_deref(),
                    user_agent: user_agent.as_deref(),
                    actor: actor.as_deref(),
                    jti: jti.as_deref(),
                    detail: detail.as_deref(),
                    request_id: request_id.as_deref(),
                };
                let expected = chain_hash(self.audit.key(), &previous, &fields);
                if stored.as_slice() == expected.as_slice() {
                    keyed = true;
                    previous = expected;
                } else {
                    let unkeyed = unkeyed_chain_hash(&previous, &fields);
                    if keyed || stored.as_slice() != unkeyed.as_slice() {
                        report.first_broken = Some(id);
                        return Ok(report);
                    }
                    report.unkeyed += 1;
                    previous = unkeyed;
                }
                report.checked += 1;
            }
        }
        // Records removed from the end leave the chain head ahead of the last record.
        if head > after {
            report.first_broken = Some(after + 1);
        }
        Ok(report)
    }

    /// Retention: deletes records older than `before_ms` and records a checkpoint (the last
    /// deleted record's id and hash) so the rest of the chain still verifies. Returns how many
    /// records were deleted.
    pub async fn prune_audit(&self, before_ms: i64, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let last: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT id, hash FROM audit_events WHERE ts_ms < $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(before_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((last_id, hash)) = last else {
            return Ok(0);
        };
        let deleted = sqlx::query("DELETE FROM audit_events WHERE id <= $1")
            .bind(last_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "INSERT INTO audit_checkpoints (last_id, hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (last_id) DO NOTHING",
        )
        .bind(last_id)
        .bind(hash.unwrap_or_else(|| CHAIN_GENESIS.to_vec()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
