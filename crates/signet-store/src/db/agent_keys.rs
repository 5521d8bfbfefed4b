//! Agents' public keys (private_key_jwt) and the used `jti` values of client assertions.

use signet_core::UnixTime;
use signet_core::audit::AuditEvent;
use signet_core::jwk::{AgentKey, MAX_KEYS_PER_AGENT};
use sqlx::Row;

use super::Store;
use crate::StoreError;

pub(super) async fn insert_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    agent_id: &str,
    keys: &[AgentKey],
) -> Result<(), StoreError> {
    let existing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM agent_keys WHERE agent_id = $1 AND revoked_at IS NULL",
    )
    .bind(agent_id)
    .fetch_one(&mut **tx)
    .await?;
    if existing as usize + keys.len() > MAX_KEYS_PER_AGENT {
        return Err(StoreError::Conflict(format!(
            "an agent may have at most {MAX_KEYS_PER_AGENT} keys; remove one first"
        )));
    }
    for key in keys {
        let result = sqlx::query(
            "INSERT INTO agent_keys (agent_id, kid, alg, jwk, thumbprint, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT (agent_id, kid) DO NOTHING",
        )
        .bind(agent_id)
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(key.jwk.to_string())
        .bind(&key.thumbprint)
        .bind(key.created_at)
        .bind(key.expires_at)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the agent already has a key with kid `{}`",
                key.kid
            )));
        }
    }
    Ok(())
}

impl Store {
    /// The agent's keys, revoked ones included (so their use is recognised), oldest first.
    pub async fn agent_keys(&self, agent_id: &str) -> Result<Vec<AgentKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, jwk, thumbprint, created_at, expires_at, revoked_at FROM agent_keys WHERE agent_id = $1 ORDER BY created_at, kid",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let alg: String = r.try_get("alg")?;
                let jwk: String = r.try_get("jwk")?;
                Ok(AgentKey {
                    kid: r.try_get("kid")?,
                    alg: alg.parse().map_err(StoreError::Corrupt)?,
                    jwk: serde_json::from_str(&jwk)
                        .map_err(|e| StoreError::Corrupt(format!("agent_keys.jwk: {e}")))?,
                    thumbprint: r.try_get("thumbprint")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Registers more keys for an agent, all or none.
    pub async fn add_agent_keys(
        &self,
        agent_id: &str,
        keys: &[AgentKey],
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_keys(&mut tx, agent_id, keys).await?;
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::Agent(agent_id.to_string()))
            .await;
        Ok(())
    }

    /// Revokes a key at once; `false` if the agent has no such unrevoked key.
    pub async fn revoke_agent_key(
        &self,
        agent_id: &str,
        kid: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        self.revoke_key_where("", agent_id, kid, now, audit).await
    }

    /// Revokes the key `kid` only if the agent keeps another active key (an agent revoking its
    /// own keys must not lock itself out). One conditional statement in a write transaction:
    /// two revocations at once of an agent's last two keys cannot both pass. `false` when
    /// nothing was revoked (no such active key, or it is the last).
    pub async fn revoke_agent_key_keeping_one(
        &self,
        agent_id: &str,
        kid: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        const ANOTHER_ACTIVE: &str = " AND EXISTS (SELECT 1 FROM agent_keys other WHERE other.agent_id = $2 AND other.kid <> $3 AND other.revoked_at IS NULL AND (other.expires_at IS NULL OR other.expires_at > $1))";
        self.revoke_key_where(ANOTHER_ACTIVE, agent_id, kid, now, audit)
            .await
    }

    /// Revokes the agent's unrevoked key `kid` if `condition` (more SQL, on `$1` now, `$2` the
    /// agent, `$3` the kid) holds, with its audit record.
    async fn revoke_key_where(
        &self,
        condition: &'static str,
        agent_id: &str,
        kid: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE agent_keys SET revoked_at = $1 WHERE agent_id = $2 AND kid = $3 AND revoked_at IS NULL{condition}"
        );
        let change = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(agent_id)
            .bind(kid);
        let revoked = self.execute_audited(change, audit).await?;
        if revoked {
            self.changed(super::Change::Agent(agent_id.to_string()))
                .await;
        }
        Ok(revoked)
    }

    /// Records a client assertion's `jti` for the agent until `expires_at`. Returns `false` if it
    /// was already recorded: a replay. The primary key makes this atomic.
    pub async fn record_jti(
        &self,
        agent_id: &str,
        jti: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        // Through the group-commit writer: one commit per batch, and no contention with the
        // audit records for SQLite's write lock.
        self.audit.record_jti(agent_id, jti, expires_at).await
    }

    /// Forgets `jti` values whose assertions have expired.
    pub async fn purge_used_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM used_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
