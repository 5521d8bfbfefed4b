//! What agents' credentials are doing over time: stale use of replaced credentials, expiry
//! warnings, credentials about to expire, and revoking every token an agent was issued.

use signet_core::UnixTime;
use signet_core::audit::AuditEvent;
use sqlx::Row;

use super::Store;
use crate::StoreError;

impl Store {
    /// Forgets secrets replaced and certificates removed before `cutoff`: their use is no
    /// longer recognised as stale (it becomes a wrong credential).
    pub async fn purge_replaced_credentials(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        let secrets = sqlx::query("DELETE FROM agent_secrets WHERE replaced_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        let certificates = sqlx::query("DELETE FROM removed_certificates WHERE removed_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        let purged = secrets.rows_affected() + certificates.rows_affected();
        if purged > 0 {
            self.changed(super::Change::AllAgents).await;
        }
        Ok(purged)
    }

    /// Marks a credential as reported expiring; `false` if it already was (by this node or
    /// another), so each is reported once.
    pub async fn mark_expiry_warned(
        &self,
        credential: &ExpiringCredential,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO expiry_warnings (agent_id, kind, id, expires_at, warned_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&credential.agent_id)
        .bind(&credential.kind)
        .bind(credential.id.as_deref().unwrap_or_default())
        .bind(credential.expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Counts one use of a replaced credential (`kind`: secret, key or certificate).
    pub async fn record_stale_use(
        &self,
        agent_id: &str,
        kind: &str,
        now: UnixTime,
        source: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stale_credential_use (agent_id, kind, count, first_at, last_at, last_source, last_user_agent)
             SELECT $1, $2, 1, $3, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM agents WHERE agent_id = $1)
             ON CONFLICT (agent_id, kind) DO UPDATE SET count = stale_credential_use.count + 1, last_at = excluded.last_at,
                 last_source = excluded.last_source, last_user_agent = excluded.last_user_agent",
        )
        .bind(agent_id)
        .bind(kind)
        .bind(now)
        .bind(source)
        .bind(user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counted uses of the agent's replaced credentials, by kind.
    pub async fn stale_credential_use(&self, agent_id: &str) -> Result<Vec<StaleUse>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, count, first_at, last_at, last_source, last_user_agent FROM stale_credential_use WHERE agent_id = $1 ORDER BY kind",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StaleUse {
                    kind: r.try_get("kind")?,
                    count: r.try_get("count")?,
                    first_at: r.try_get("first_at")?,
                    last_at: r.try_get("last_at")?,
                    last_source: r.try_get("last_source")?,
                    last_user_agent: r.try_get("last_user_agent")?,
                })
            })
            .collect()
    }

    /// Makes every token the agent was issued up to `now` inactive at introspection.
    pub async fn revoke_agent_tokens(
        &self,
        agent_id: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query(
            "UPDATE agents SET tokens_revoked_before = $1, updated_at = $2 WHERE agent_id = $3",
        )
        .bind(now)
        .bind(now)
        .bind(agent_id);
        let revoked = self.execute_audited(change, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(revoked)
    }
}

/// Uses of an agent's replaced credentials of one kind.
#[derive(Debug, Clone)]
pub struct StaleUse {
    pub kind: String,
    pub count: i64,
    pub first_at: UnixTime,
    pub last_at: UnixTime,
    pub last_source: Option<String>,
    pub last_user_agent: Option<String>,
}

/// A credential that expires soon (or has expired), for the expiry listing.
#[derive(Debug, Clone)]
pub struct ExpiringCredential {
    pub agent_id: String,
    /// `secret`, `key`, `certificate` (registered) or `issued_certificate`.
    pub kind: String,
    /// The key's `kid` or the certificate's thumbprint; none for a secret.
    pub id: Option<String>,
    pub expires_at: UnixTime,
}

impl Store {
    /// Live credentials whose expiry is before `until`, soonest first (at most 1,000):
    /// current secrets, unrevoked keys, registered certificates, and the newest unrevoked
    /// certificate the agent CA issued to each agent.
    pub async fn expiring_credentials(
        &self,
        until: UnixTime,
    ) -> Result<Vec<ExpiringCredential>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, 'secret' AS kind, NULL AS id, expires_at FROM agent_secrets WHERE replaced_at IS NULL AND expires_at IS NOT NULL AND expires_at < $1
             UNION ALL SELECT agent_id, 'key', kid, expires_at FROM agent_keys WHERE revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at < $1
             UNION ALL SELECT agent_id, 'certificate', thumbprint, not_after FROM agent_certificates WHERE not_after < $1
             UNION ALL SELECT i.agent_id, 'issued_certificate', i.thumbprint, i.not_after FROM issued_certificates i
                 WHERE i.revoked_at IS NULL AND i.not_after < $1
                   AND i.not_after = (SELECT MAX(not_after) FROM issued_certificates j WHERE j.agent_id = i.agent_id AND j.revoked_at IS NULL)
             ORDER BY expires_at LIMIT 1000",
        )
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExpiringCredential {
                    agent_id: r.try_get("agent_id")?,
                    kind: r.try_get("kind")?,
                    id: r.try_get("id")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}
