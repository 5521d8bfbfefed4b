//! Console users and their sessions.

use signet_core::UnixTime;
use signet_core::admin_token::Role;
use signet_core::audit::AuditEvent;
use signet_core::console_user::ConsoleUser;
use sqlx::Row;

use super::Store;
use crate::StoreError;

/// A signed-in session: who, with which role, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: UnixTime,
}

impl Store {
    /// Adds a user, with the audit record; `false` if the username is taken.
    pub async fn insert_console_user(
        &self,
        user: &ConsoleUser,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "INSERT INTO console_users (username, role, password_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING",
        )
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(user.created_at)
        .bind(&user.created_by)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        self.commit_audited(tx, audit).await?;
        Ok(true)
    }

    /// Every user, by name.
    pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT username, role, password_hash, created_at, created_by FROM console_users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Removes a user and ends their sessions; `false` if there was none.
    pub async fn delete_console_user(
        &self,
        username: &str,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("DELETE FROM console_users WHERE username = $1").bind(username);
        self.execute_audited(change, audit).await
    }

    pub async fn console_user(&self, username: &str) -> Result<Option<ConsoleUser>, StoreError> {
        let row = sqlx::query(
            "SELECT username, role, password_hash, created_at, created_by FROM console_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Starts a session: only the SHA-256 of its cookie value is stored.
    pub async fn insert_console_session(
        &self,
        id_sha256: &[u8; 32],
        username: &str,
        csrf_token: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_sha256, username, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id_sha256[..])
        .bind(username)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session whose cookie hashes to `id_sha256`, if it has not expired at `now`.
    pub async fn console_session(
        &self,
        id_sha256: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT s.username, u.role, s.csrf_token, s.expires_at FROM console_sessions s JOIN console_users u ON u.username = s.username WHERE s.id_sha256 = $1 AND s.expires_at > $2",
        )
        .bind(&id_sha256[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        Ok(Some(ConsoleSession {
            username: row.try_get("username")?,
            role: parse_role(&role)?,
            csrf_token: row.try_get("csrf_token")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Ends a session (logout).
    pub async fn delete_console_session(&self, id_sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1")
            .bind(&id_sha256[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces a user's password hash and ends the user's other sessions (all but `keep`), in
    /// one transaction with the audit record; `false` if there is no such user.
    pub async fn change_console_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: &[u8; 32],
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed =
            sqlx::query("UPDATE console_users SET password_hash = $1 WHERE username = $2")
                .bind(password_hash)
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !changed {
            return Ok(false);
        }
        sqlx::query("DELETE FROM console_sessions WHERE username = $1 AND id_sha256 <> $2")
            .bind(username)
            .bind(&keep[..])
            .execute(&mut *tx)
            .await?;
        self.commit_audited(tx, audit).await?;
        Ok(true)
    }

    /// Forgets sessions that expired before `now`.
    pub async fn purge_console_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<ConsoleUser, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ConsoleUser {
        username: row.try_get("username")?,
        role: parse_role(&role)?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

fn parse_role(role: &str) -> Result<Role, StoreError> {
    Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("console role `{role}`")))
}
