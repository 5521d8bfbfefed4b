//! The SQLite store: one database file in WAL mode, `synchronous = FULL` so that a commit the
//! server acknowledged survives a crash, and foreign keys on.

mod agent_keys;
mod agents;
mod alerts;
mod audit;
mod certificates;
mod keys;
mod tokens;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;
use crate::cache::AgentCache;
use crate::group_commit::AuditLog;
use crate::migrations::migrate;

pub use agents::{ExpiringCredential, Page, StaleUse};
pub use alerts::{AlertRecord, DeliveryRecord};
pub use audit::ChainReport;
pub use certificates::{
    IssuedRecord, MAX_CERTIFICATES_PER_AGENT, RevocationRecord, StoredAgentCa, StoredCertificate,
};
pub use keys::StoredSigningKey;

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is synced to disk before it is acknowledged: nothing acknowledged is lost,
    /// even on power loss (`synchronous = FULL`).
    #[default]
    Full,
    /// Commits reach the OS at once and disk at checkpoints: nothing acknowledged is lost when the
    /// process crashes (kill -9), but the last commits may be lost on power loss or an OS crash
    /// (`synchronous = NORMAL` in WAL mode).
    Normal,
}

/// The store: a connection pool, the agent cache and the audit writer. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    cache: Arc<AgentCache>,
    audit: AuditLog,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`) and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Durability::Full).await
    }

    /// Opens with a chosen durability (see [`Durability`]).
    pub async fn open_with(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let applied = migrate(&pool).await?;
        for name in applied {
            tracing::info!(migration = name, "applied database migration");
        }
        let audit = AuditLog::start(sqlite_path(url)?, durability)?;
        Ok(Self {
            pool,
            cache: Arc::new(AgentCache::default()),
            audit,
        })
    }

    /// The audit log writer.
    /// Connections in the read/admin pool, and how many are idle (for metrics).
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// A write transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`, waiting
    /// up to the busy timeout). A deferred transaction that reads first and writes later fails
    /// with SQLITE_BUSY in WAL mode when another connection (the audit writer) commits between
    /// its read and its write; this one waits its turn instead.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A setting stored in the database, e.g. the admin token's hash.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a setting, replacing any previous value.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool after pending work; used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file path of a `sqlite://PATH` (or `sqlite:PATH`) URL, without query options.
fn sqlite_path(url: &str) -> Result<std::path::PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Corrupt(format!("`{url}` is not a sqlite:// URL")))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Corrupt("the database must be a file".into()));
    }
    Ok(std::path::PathBuf::from(path))
}
