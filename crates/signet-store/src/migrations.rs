//! Schema migrations, embedded in the binary and applied in order at start. Each has a name that
//! is the same for every database; the applied names are recorded in `signet_migrations`.

use sqlx::SqlitePool;

use crate::StoreError;

/// The migrations, in order: (name, SQLite SQL).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        "0002_agent_keys",
        include_str!("../migrations/sqlite/0002_agent_keys.sql"),
    ),
    (
        "0003_jwks_uri",
        include_str!("../migrations/sqlite/0003_jwks_uri.sql"),
    ),
    (
        "0004_tokens_revoked_before",
        include_str!("../migrations/sqlite/0004_tokens_revoked_before.sql"),
    ),
    (
        "0005_mtls",
        include_str!("../migrations/sqlite/0005_mtls.sql"),
    ),
    (
        "0006_signing_key_rotation",
        include_str!("../migrations/sqlite/0006_signing_key_rotation.sql"),
    ),
    (
        "0007_stale_credentials",
        include_str!("../migrations/sqlite/0007_stale_credentials.sql"),
    ),
    (
        "0008_expiry_warnings",
        include_str!("../migrations/sqlite/0008_expiry_warnings.sql"),
    ),
    (
        "0009_audit_chain",
        include_str!("../migrations/sqlite/0009_audit_chain.sql"),
    ),
    (
        "0010_alerts",
        include_str!("../migrations/sqlite/0010_alerts.sql"),
    ),
    (
        "0011_agent_networks",
        include_str!("../migrations/sqlite/0011_agent_networks.sql"),
    ),
    (
        "0012_audit_request_id",
        include_str!("../migrations/sqlite/0012_audit_request_id.sql"),
    ),
];

/// Applies every migration not yet recorded, each in its own transaction.
pub async fn migrate(pool: &SqlitePool) -> Result<Vec<&'static str>, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS signet_migrations (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<String> = sqlx::query_scalar("SELECT name FROM signet_migrations")
        .fetch_all(pool)
        .await?;
    if let Some(unknown) = applied
        .iter()
        .find(|name| !MIGRATIONS.iter().any(|(m, _)| m == name))
    {
        return Err(StoreError::Corrupt(format!(
            "the database has migration `{unknown}`, which this binary does not know: it was written by a newer Signet"
        )));
    }
    let mut newly_applied = Vec::new();
    for (name, sql) in MIGRATIONS {
        if applied.iter().any(|a| a == name) {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO signet_migrations (name, applied_at) VALUES (?, ?)")
            .bind(*name)
            .bind(signet_core::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        newly_applied.push(*name);
    }
    Ok(newly_applied)
}
