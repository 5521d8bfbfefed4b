//! Named admin API tokens, and the retirement of the bootstrap token.

use signet_core::UnixTime;
use signet_core::admin_token::{AdminToken, Role};
use signet_core::audit::AuditEvent;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use crate::StoreError;

macro_rules! columns {
    () => {
        "name, role, token_sha256, created_at, created_by, expires_at, last_used_at, revoked_at"
    };
}

/// The setting that records when the bootstrap admin token was retired.
const BOOTSTRAP_RETIRED: &str = "bootstrap_admin_token_retired_at";

impl Store {
    /// Stores a new token, with its audit record; a taken name is a conflict.
    pub async fn insert_admin_token(
        &self,
        token: &AdminToken,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "INSERT INTO admin_tokens (name, role, token_sha256, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(&token.token_sha256[..])
        .bind(token.created_at)
        .bind(&token.created_by)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "an admin token named `{}` exists (revoked tokens keep their names)",
                token.name
            )));
        }
        self.commit_audited(tx, audit).await
    }

    /// The token whose SHA-256 is `digest`, revoked or not.
    pub async fn admin_token_by_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<AdminToken>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM admin_tokens WHERE token_sha256 = $1"
        ))
        .bind(&digest[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// Every token, newest first.
    pub async fn admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM admin_tokens ORDER BY created_at DESC, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes the token named `name`; `false` if there is none or it was already revoked.
    pub async fn revoke_admin_token(
        &self,
        name: &str,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name);
        self.execute_audited(change, audit).await
    }

    /// Records a use, at most once a minute per token (a listing shows it to the minute).
    pub async fn touch_admin_token(&self, name: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE admin_tokens SET last_used_at = $1 WHERE name = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(name)
        .bind(now - 60)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Retires the bootstrap token, if a named admin-role token that works at `now` exists
    /// (else nobody could manage Signet any more). `false` if none does.
    pub async fn retire_bootstrap_token(
        &self,
        now: UnixTime,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let usable: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM admin_tokens WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if usable == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(BOOTSTRAP_RETIRED)
        .bind(now.to_string())
        .execute(&mut *tx)
        .await?;
        self.commit_audited(tx, audit).await?;
        Ok(true)
    }

    /// When the bootstrap token was retired, if it was.
    pub async fn bootstrap_token_retired_at(&self) -> Result<Option<UnixTime>, StoreError> {
        Ok(self
            .setting(BOOTSTRAP_RETIRED)
            .await?
            .and_then(|v| v.parse().ok()))
    }
}

fn from_row(row: &AnyRow) -> Result<AdminToken, StoreError> {
    let role: String = row.try_get("role")?;
    let digest: Vec<u8> = row.try_get("token_sha256")?;
    Ok(AdminToken {
        name: row.try_get("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("admin_tokens.role `{role}`")))?,
        token_sha256: digest
            .try_into()
            .map_err(|_| StoreError::Corrupt("admin_tokens.token_sha256 length".into()))?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}
