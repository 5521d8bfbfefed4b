//! Token signing keys, stored with their private part sealed by the master key.

use signet_core::UnixTime;
use signet_core::audit::AuditEvent;
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
    /// `next` (published, signs from `activates_at`), `active` or `retired`.
    pub status: String,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    pub activates_at: Option<UnixTime>,
}

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key_sealed, status, created_at, retired_at, activates_at FROM signing_keys ORDER BY created_at, kid",
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
                    activates_at: r.try_get("activates_at")?,
                })
            })
            .collect()
    }

    /// Makes `key` the active signing key and retires the previously active ones, atomically.
    pub async fn activate_signing_key(
        &self,
        key: &StoredSigningKey,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        // A next key made for the previous algorithm must not take over later.
        sqlx::query("DELETE FROM signing_keys WHERE status = 'next'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'active'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_sealed, status, created_at, retired_at) VALUES ($1, $2, $3, 'active', $4, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::SigningKeys).await;
        Ok(())
    }

    /// Publishes `key` as the next signing key, to sign from `activates_at`. `false` if a next
    /// key already exists (another node made one first).
    pub async fn insert_next_signing_key(
        &self,
        key: &StoredSigningKey,
        activates_at: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_sealed, status, created_at, retired_at, activates_at) VALUES ($1, $2, $3, 'next', $4, NULL, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .bind(activates_at)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::SigningKeys).await;
        Ok(true)
    }

    /// Makes the next key the active one and retires the active key; `false` if there was no
    /// next key.
    pub async fn promote_next_signing_key(&self, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let next: Option<String> =
            sqlx::query_scalar("SELECT kid FROM signing_keys WHERE status = 'next'")
                .fetch_optional(&mut *tx)
                .await?;
        let Some(next) = next else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'active'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE signing_keys SET status = 'active', activates_at = $1 WHERE kid = $2")
            .bind(now)
            .bind(&next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changed(super::Change::SigningKeys).await;
        Ok(true)
    }

    /// Emergency rotation: `key` becomes the only key, active at once; every other key is
    /// deleted (and leaves the JWKS). Returns the removed keys' IDs.
    pub async fn replace_all_signing_keys(
        &self,
        key: &StoredSigningKey,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write_tx().await?;
        let removed: Vec<String> = sqlx::query_scalar("SELECT kid FROM signing_keys")
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM signing_keys")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_sealed, status, created_at, retired_at, activates_at) VALUES ($1, $2, $3, 'active', $4, NULL, $5)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.commit_audited(tx, audit).await?;
        self.changed(super::Change::SigningKeys).await;
        Ok(removed)
    }

    /// Deletes retired keys retired before `cutoff` (every token they signed has expired).
    pub async fn delete_retired_signing_keys(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        let result =
            sqlx::query("DELETE FROM signing_keys WHERE status = 'retired' AND retired_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        if result.rows_affected() > 0 {
            self.changed(super::Change::SigningKeys).await;
        }
        Ok(result.rows_affected())
    }
}
