//! Revoked access tokens (RFC 7009), remembered until they would have expired.

use signet_core::UnixTime;

use super::Store;
use crate::StoreError;

impl Store {
    /// Records the revocation of token `jti`; revoking twice is harmless.
    pub async fn revoke_token(
        &self,
        jti: &str,
        agent_id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO revoked_tokens (jti, agent_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(agent_id)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn purge_expired_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
