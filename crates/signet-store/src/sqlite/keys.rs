//! Token signing keys, stored with their private part sealed by the master key.

use signet_core::UnixTime;
use sqlx::Row;

use super::Store;
use crate::StoreError;

/// A signing key row. `private_key_sealed` is AES-256-GCM ciphertext; only the caller holding
/// the master key can open it.
#[derive(Debug, Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: String,
    pub private_key_sealed: Vec<u8>,
    pub status: String,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
}

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key_sealed, status, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredSigningKey {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    private_key_sealed: r.try_get("private_key_sealed")?,
                    status: r.try_get("status")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Makes `key` the active signing key and retires the previously active ones, atomically.
    pub async fn activate_signing_key(
        &self,
        key: &StoredSigningKey,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = ? WHERE status = 'active'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_sealed, status, created_at, retired_at) VALUES (?, ?, ?, 'active', ?, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes retired keys retired before `cutoff` (every token they signed has expired).
    pub async fn delete_retired_signing_keys(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        let result =
            sqlx::query("DELETE FROM signing_keys WHERE status = 'retired' AND retired_at < ?")
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected())
    }
}
