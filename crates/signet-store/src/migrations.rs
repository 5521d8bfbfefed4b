//! Schema migrations, embedded in the binary and applied in order at start. Each has a name that
//! is the same for every database and a script for each; the applied names are recorded in
//! `signet_migrations`.

use sqlx::AnyPool;
use sqlx::{Acquire, AnyConnection};

use signet_core::audit::{checkpoint_mac, legacy_before_mac};
use signet_core::crypto::AuditKey;

use crate::StoreError;
use crate::db::Backend;

/// Includes a migration's two scripts by name.
macro_rules! migration {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        )
    };
}

/// The migrations, in order: (name, SQLite script, PostgreSQL script).
pub const MIGRATIONS: &[(&str, &str, &str)] = &[
    migration!("0001_init"),
    migration!("0002_agent_keys"),
    migration!("0003_jwks_uri"),
    migration!("0004_tokens_revoked_before"),
    migration!("0005_mtls"),
    migration!("0006_signing_key_rotation"),
    migration!("0007_stale_credentials"),
    migration!("0008_expiry_warnings"),
    migration!("0009_audit_chain"),
    migration!("0010_alerts"),
    migration!("0011_agent_networks"),
    migration!("0012_audit_request_id"),
    migration!("0013_job_leases"),
    migration!("0014_admin_tokens"),
    migration!("0015_console"),
    migration!("0016_audit_chain_head"),
    migration!("0017_audit_seals"),
];

/// PostgreSQL: the advisory lock held while one node migrates (others wait, then find nothing
/// left to do).
const MIGRATION_LOCK: i64 = 0x5349_474e_4554_0002;

/// Checks, changing nothing, that the database's schema is exactly this binary's: for a command
/// that only reads a database (`signet audit verify`), which must neither migrate a schema
/// under a running server of another version nor create one in an empty database.
pub async fn check_current(pool: &AnyPool) -> Result<(), StoreError> {
    let applied: Vec<String> = sqlx::query_scalar("SELECT name FROM signet_migrations")
        .fetch_all(pool)
        .await
        .map_err(|_| {
            StoreError::Corrupt(
                "not a Signet database (it has no migrations table): check SIGNET_DATA_DIR or SIGNET_DATABASE_URL".into(),
            )
        })?;
    if let Some(unknown) = applied
        .iter()
        .find(|name| !MIGRATIONS.iter().any(|(m, _, _)| m == name))
    {
        return Err(StoreError::Corrupt(format!(
            "the database has migration `{unknown}`, which this binary does not know: use the Signet version that wrote it"
        )));
    }
    if applied.len() < MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is older than this binary's ({} of {} migrations): use the Signet version that wrote it, or run `signet migrate` first",
            applied.len(),
            MIGRATIONS.len()
        )));
    }
    Ok(())
}

/// Applies every migration not yet recorded, each in its own transaction.
pub async fn migrate(
    pool: &AnyPool,
    backend: Backend,
    audit_key: &AuditKey,
) -> Result<Vec<&'static str>, StoreError> {
    let mut connection = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 FROM pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    let result = migrate_on(&mut connection, backend, audit_key).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 FROM pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    result
}

async fn migrate_on(
    connection: &mut AnyConnection,
    backend: Backend,
    audit_key: &AuditKey,
) -> Result<Vec<&'static str>, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS signet_migrations (name TEXT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *connection)
    .await?;
    let applied: Vec<String> = sqlx::query_scalar("SELECT name FROM signet_migrations")
        .fetch_all(&mut *connection)
        .await?;
    if let Some(unknown) = applied
        .iter()
        .find(|name| !MIGRATIONS.iter().any(|(m, _, _)| m == name))
    {
        return Err(StoreError::Corrupt(format!(
            "the database has migration `{unknown}`, which this binary does not know: it was written by a newer Signet"
        )));
    }
    let mut newly_applied = Vec::new();
    for (name, sqlite, postgres) in MIGRATIONS {
        if applied.iter().any(|a| a == name) {
            continue;
        }
        let script = match backend {
            Backend::Sqlite => *sqlite,
            Backend::Postgres => *postgres,
        };
        let mut tx = connection.begin().await?;
        sqlx::raw_sql(script).execute(&mut *tx).await?;
        if *name == "0017_audit_seals" {
            seal_audit_log(&mut tx, audit_key).await?;
        }
        sqlx::query("INSERT INTO signet_migrations (name, applied_at) VALUES ($1, $2)")
            .bind(*name)
            .bind(signet_core::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        newly_applied.push(*name);
    }
    Ok(newly_applied)
}

/// `0017_audit_seals`: seals the checkpoints retention wrote before, and where records from
/// before keying may end (the next id at upgrade), in the migration's own transaction: trust
/// placed once, at the upgrade, never again by a later start.
async fn seal_audit_log(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    audit_key: &AuditKey,
) -> Result<(), StoreError> {
    let checkpoints: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT last_id, hash FROM audit_checkpoints")
            .fetch_all(&mut **tx)
            .await?;
    for (last_id, hash) in checkpoints {
        sqlx::query("UPDATE audit_checkpoints SET mac = $1 WHERE last_id = $2")
            .bind(checkpoint_mac(audit_key, last_id, &hash).to_vec())
            .bind(last_id)
            .execute(&mut **tx)
            .await?;
    }
    let legacy_before: i64 =
        sqlx::query_scalar("SELECT legacy_before FROM audit_chain_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query("UPDATE audit_chain_head SET legacy_mac = $1 WHERE id = 1")
        .bind(legacy_before_mac(audit_key, legacy_before).to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
