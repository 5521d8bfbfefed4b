//! Alerts and their webhook deliveries.

use std::collections::HashMap;

use signet_core::UnixTime;
use signet_core::anomaly::Signal;
use signet_core::audit::AuditEvent;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::statement::Statement;
use crate::StoreError;

/// An alert as stored.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub id: i64,
    pub rule: String,
    pub subject: String,
    pub agent_id: Option<String>,
    pub source: Option<String>,
    pub detail: Option<serde_json::Value>,
    pub count: i64,
    pub first_at: UnixTime,
    pub last_at: UnixTime,
    pub status: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<UnixTime>,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub attempt: i64,
    pub at: UnixTime,
    pub ok: bool,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

macro_rules! alert_columns {
    () => {
        "id, rule, subject, agent_id, source, detail, count, first_at, last_at, status, acknowledged_by, acknowledged_at"
    };
}

fn alert_from_row(r: &AnyRow) -> Result<AlertRecord, StoreError> {
    let detail: Option<String> = r.try_get("detail")?;
    Ok(AlertRecord {
        id: r.try_get("id")?,
        rule: r.try_get("rule")?,
        subject: r.try_get("subject")?,
        agent_id: r.try_get("agent_id")?,
        source: r.try_get("source")?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        count: r.try_get("count")?,
        first_at: r.try_get("first_at")?,
        last_at: r.try_get("last_at")?,
        status: r.try_get("status")?,
        acknowledged_by: r.try_get("acknowledged_by")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
    })
}

impl Store {
    /// Raises `signal`: counts up the open alert for its rule and subject, or opens one. Returns
    /// the alert and whether it is new (new alerts go to the webhook).
    pub async fn raise_alert(
        &self,
        signal: &Signal,
        now: UnixTime,
    ) -> Result<(AlertRecord, bool), StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE alerts SET count = count + 1, last_at = $1, detail = $2 WHERE rule = $3 AND subject = $4 AND status = 'open'",
        )
        .bind(now)
        .bind(signal.detail.to_string())
        .bind(signal.rule.as_str())
        .bind(&signal.subject)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let created = updated == 0;
        if created {
            sqlx::query(
                "INSERT INTO alerts (rule, subject, agent_id, source, detail, count, first_at, last_at, status) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, 'open')",
            )
            .bind(signal.rule.as_str())
            .bind(&signal.subject)
            .bind(signal.agent_id.as_deref())
            .bind(signal.source.as_deref())
            .bind(signal.detail.to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE rule = $1 AND subject = $2 AND status = 'open'"
        ))
        .bind(signal.rule.as_str())
        .bind(&signal.subject)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((alert_from_row(&row)?, created))
    }

    /// Alerts, newest first; `status` filters by `open` or `acknowledged`, `agent_id` by agent.
    pub async fn list_alerts(
        &self,
        status: Option<&str>,
        agent_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR agent_id = $2) ORDER BY last_at DESC, id DESC LIMIT $3"
        ))
        .bind(status)
        .bind(agent_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// Acknowledges an open alert, with the audit record `audit` makes of it; `None` if there is
    /// no open alert with this id.
    pub async fn acknowledge_alert(
        &self,
        id: i64,
        actor: &str,
        now: UnixTime,
        audit: impl FnOnce(&AlertRecord) -> AuditEvent,
    ) -> Result<Option<AlertRecord>, StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_by = $1, acknowledged_at = $2 WHERE id = $3 AND status = 'open'",
        )
        .bind(actor)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let alert = alert_from_row(&row)?;
        self.commit_audited(tx, audit(&alert)).await?;
        Ok(Some(alert))
    }

    /// Records, in one transaction, that each agent authenticated from its network at its time:
    /// `(agent_id, network, now, recent_since)`. Returns for each whether the agent had used
    /// other networks before and this one not since `recent_since` (a new network for an agent
    /// with a history). Notes of one agent are taken in order.
    pub async fn note_agent_networks(
        &self,
        notes: &[(&str, &str, UnixTime, UnixTime)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut new = Vec::with_capacity(notes.len());
        for &(agent_id, network, now, recent_since) in notes {
            new.push(note_agent_network(&mut tx, agent_id, network, now, recent_since).await?);
        }
        tx.commit().await?;
        Ok(new)
    }

    /// The networks the agent authenticated from, most recent first (at most 50).
    pub async fn agent_networks(
        &self,
        agent_id: &str,
    ) -> Result<Vec<(String, UnixTime, UnixTime)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT network, first_seen, last_seen FROM agent_networks WHERE agent_id = $1 ORDER BY last_seen DESC LIMIT 50",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// When each of `agent_ids` last authenticated, to the hour (from its network history);
    /// agents that never did are absent.
    pub async fn last_authentications(
        &self,
        agent_ids: &[&str],
    ) -> Result<HashMap<String, UnixTime>, StoreError> {
        if agent_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut sql = Statement::new(
            "SELECT agent_id, MAX(last_seen) FROM agent_networks WHERE agent_id IN (",
        );
        for (i, id) in agent_ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(id.to_string());
        }
        sql.push(") GROUP BY agent_id");
        let rows = sql.query()?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Alerts whose webhook delivery was abandoned (its node stopped between attempts): tried
    /// at least once and never accepted, fewer than `attempts` times, the last try before
    /// `quiet_since`, first raised at or after `since`; with how many tries each had.
    pub async fn abandoned_deliveries(
        &self,
        since: UnixTime,
        quiet_since: UnixTime,
        attempts: u32,
    ) -> Result<Vec<(AlertRecord, u32)>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            ", d.tries FROM alerts JOIN (SELECT alert_id, COUNT(*) AS tries, MAX(at) AS last_try, MAX(ok) AS delivered FROM alert_deliveries GROUP BY alert_id) d ON d.alert_id = alerts.id",
            " WHERE d.delivered = 0 AND d.tries < $1 AND d.last_try < $2 AND alerts.first_at >= $3 ORDER BY alerts.id LIMIT 100"
        ))
        .bind(i64::from(attempts))
        .bind(quiet_since)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let tries: i64 = r.try_get("tries")?;
                Ok((alert_from_row(r)?, u32::try_from(tries).unwrap_or(u32::MAX)))
            })
            .collect()
    }

    pub async fn record_delivery(
        &self,
        alert_id: i64,
        attempt: u32,
        at: UnixTime,
        outcome: Result<u16, String>,
    ) -> Result<(), StoreError> {
        let (ok, status, error) = match &outcome {
            Ok(status) => ((200..300).contains(status), Some(i64::from(*status)), None),
            Err(e) => (false, None, Some(e.clone())),
        };
        sqlx::query(
            "INSERT INTO alert_deliveries (alert_id, attempt, at, ok, status_code, error) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(alert_id)
        .bind(i64::from(attempt))
        .bind(at)
        .bind(i64::from(ok))
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT attempt, at, ok, status_code, error FROM alert_deliveries WHERE alert_id = $1 ORDER BY id",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRecord {
                    attempt: r.try_get("attempt")?,
                    at: r.try_get("at")?,
                    ok: r.try_get::<i64, _>("ok")? != 0,
                    status_code: r.try_get("status_code")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }
}

/// One note of [`Store::note_agent_networks`], in its transaction.
async fn note_agent_network(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    agent_id: &str,
    network: &str,
    now: UnixTime,
    recent_since: UnixTime,
) -> Result<bool, StoreError> {
    let last_seen: Option<i64> = sqlx::query_scalar(
        "SELECT last_seen FROM agent_networks WHERE agent_id = $1 AND network = $2",
    )
    .bind(agent_id)
    .bind(network)
    .fetch_optional(&mut **tx)
    .await?;
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM agent_networks WHERE agent_id = $1 AND network <> $2",
    )
    .bind(agent_id)
    .bind(network)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO agent_networks (agent_id, network, first_seen, last_seen) SELECT $1, $2, $3, $3 WHERE EXISTS (SELECT 1 FROM agents WHERE agent_id = $1) ON CONFLICT (agent_id, network) DO UPDATE SET last_seen = excluded.last_seen",
    )
    .bind(agent_id)
    .bind(network)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let recent = last_seen.is_some_and(|t| t >= recent_since);
    Ok(others > 0 && !recent)
}
