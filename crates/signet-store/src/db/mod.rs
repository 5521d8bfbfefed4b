//! The store over either database, with one set of queries (numbered placeholders, types both
//! understand): SQLite, one file in WAL mode with `synchronous = FULL` so that a commit the server
//! acknowledged survives a crash; or PostgreSQL, shared by many nodes.

mod admin_tokens;
mod agent_keys;
mod agents;
mod alerts;
mod audit;
mod audit_chain;
mod certificates;
mod changes;
mod console;
mod credential_use;
mod keys;
mod probe;
mod statement;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use signet_core::audit::{AuditEvent, CHAIN_GENESIS};
use signet_core::crypto::AuditKey;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{AssertSqlSafe, Executor};

use crate::StoreError;
use crate::cache::AgentCache;
use crate::group_commit::{AuditLog, ChainHead, chain_next};
use crate::migrations::migrate;

pub use agents::Page;
pub use alerts::{AlertRecord, DeliveryRecord};
pub use audit_chain::ChainReport;
pub use certificates::{
    IssuedRecord, MAX_CERTIFICATES_PER_AGENT, RevocationRecord, StoredAgentCa, StoredCertificate,
};
pub use changes::Change;
pub use console::ConsoleSession;
pub use credential_use::{ExpiringCredential, StaleUse};
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

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to reach the database, beyond its URL.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// SQLite only: how hard commits are pushed to disk.
    pub durability: Durability,
    /// Connections in the pool (the audit writer has one more of its own).
    pub max_connections: u32,
    /// PostgreSQL only: statements running longer are cancelled (`statement_timeout`).
    pub statement_timeout: Duration,
    /// PostgreSQL only: how often everything cached is read again, in case an announced change
    /// was missed.
    pub resync: Duration,
    /// Create the database if needed and apply migrations (`serve`, `migrate`); when `false` the
    /// database must exist with exactly this binary's schema, and nothing is changed to open it.
    pub migrate: bool,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            max_connections: 4,
            statement_timeout: Duration::from_secs(5),
            resync: Duration::from_secs(30),
            migrate: true,
        }
    }
}

/// The store: a connection pool, the agent cache and the audit writer. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    cache: Arc<AgentCache>,
    audit: AuditLog,
    changes: tokio::sync::broadcast::Sender<Change>,
    /// This store's id in change announcements.
    node: changes::NodeId,
    /// Readiness asks on a connection of its own, not the pool's.
    probe: Arc<probe::Probe>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `postgres://…`) and
    /// applies migrations (unless [`DatabaseOptions::migrate`] says not to).
    ///
    /// Audit records are chained under `audit_key` (the master key's, [`MasterKey::audit_key`]):
    /// every process that writes to one database must use the same.
    ///
    /// [`MasterKey::audit_key`]: signet_core::crypto::MasterKey::audit_key
    pub async fn open(url: &str, audit_key: AuditKey) -> Result<Self, StoreError> {
        Self::open_with(url, audit_key, &DatabaseOptions::default()).await
    }

    /// Opens with chosen options (see [`DatabaseOptions`]).
    pub async fn open_with(
        url: &str,
        audit_key: AuditKey,
        options: &DatabaseOptions,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend(url)?;
        let (pool_url, session) = match backend {
            Backend::Sqlite => {
                let synchronous = match options.durability {
                    Durability::Full => "FULL",
                    Durability::Normal => "NORMAL",
                };
                // Without migrating, nothing is created or changed (the journal mode is kept in
                // the file: a database Signet made is in WAL mode already).
                let (mode, journal) = if options.migrate {
                    ("rwc", "PRAGMA journal_mode = WAL; ")
                } else {
                    ("rw", "")
                };
                (
                    format!("sqlite://{}?mode={mode}", sqlite_path(url)?.display()),
                    format!(
                        "{journal}PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
                    ),
                )
            }
            Backend::Postgres => (
                url.to_owned(),
                format!(
                    "SET statement_timeout = {}; SET lock_timeout = {};",
                    options.statement_timeout.as_millis(),
                    options.statement_timeout.as_millis()
                ),
            ),
        };
        let session: Arc<str> = session.into();
        let probe = Arc::new(probe::Probe::new(pool_url.clone(), session.clone()));
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |connection, _| {
                let session = session.clone();
                Box::pin(async move {
                    connection
                        .execute(AssertSqlSafe(session.to_string()))
                        .await?;
                    Ok(())
                })
            })
            .connect(&pool_url)
            .await?;
        if options.migrate {
            let applied = migrate(&pool, backend, &audit_key).await?;
            for name in applied {
                tracing::info!(migration = name, "applied database migration");
            }
        } else {
            crate::migrations::check_current(&pool).await?;
        }
        let audit = match backend {
            Backend::Sqlite => AuditLog::start(sqlite_path(url)?, options.durability, audit_key)?,
            Backend::Postgres => AuditLog::start_postgres(url, options, audit_key)?,
        };
        let store = Self {
            pool,
            backend,
            cache: Arc::new(AgentCache::default()),
            audit,
            changes: tokio::sync::broadcast::channel(1024).0,
            node: changes::NodeId::random(),
            probe,
        };
        if backend == Backend::Postgres {
            store.spawn_listener(url.to_owned(), options.resync);
        }
        Ok(store)
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
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
    ///
    /// On PostgreSQL the same: every write transaction takes one cluster-wide advisory lock, so
    /// read-then-write checks (e.g. how many keys an agent has) hold across nodes.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Runs one changing statement in a write transaction and commits it with `audit`; `false`,
    /// with nothing written, when it touched no row.
    pub(crate) async fn execute_audited(
        &self,
        change: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        if change.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        self.commit_audited(tx, audit).await?;
        Ok(true)
    }

    /// Appends `event` to the audit chain inside `tx` and commits both: a change and its audit
    /// record are written together or not at all (never a regenerated secret without its
    /// record). The chain head is taken inside the transaction, as the writer takes it.
    pub(crate) async fn commit_audited(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        mut event: AuditEvent,
    ) -> Result<(), StoreError> {
        self.audit.stamp(&mut event);
        let head_sql = match self.backend {
            Backend::Sqlite => "SELECT last_id, hash FROM audit_chain_head WHERE id = 1",
            Backend::Postgres => {
                "SELECT last_id, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE"
            }
        };
        let (id, hash): (i64, Option<Vec<u8>>) =
            sqlx::query_as(head_sql).fetch_one(&mut *tx).await?;
        let head = ChainHead {
            id,
            hash: hash
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .unwrap_or(CHAIN_GENESIS),
        };
        let (id, detail, hash) = chain_next(self.audit.key(), &head, &event);
        sqlx::query("INSERT INTO audit_events (id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, hash, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
            .bind(id)
            .bind(event.ts_ms)
            .bind(&event.event_type)
            .bind(event.outcome.as_str())
            .bind(event.reason.as_deref())
            .bind(event.agent_id.as_deref())
            .bind(event.method.as_deref())
            .bind(event.source.as_deref())
            .bind(event.user_agent.as_deref())
            .bind(event.actor.as_deref())
            .bind(event.jti.as_deref())
            .bind(detail)
            .bind(&hash[..])
            .bind(event.request_id.as_deref())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE audit_chain_head SET last_id = $1, hash = $2 WHERE id = 1")
            .bind(id)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers (readiness), asked on a connection of its own: a pool
    /// whose connections are all busy is not a database that does not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.probe.ping().await
    }

    /// A setting stored in the database, e.g. the admin token's hash.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a setting, replacing any previous value.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes or renews the lease on a scheduled `job` for `holder` until `until`: `true` if this
    /// holder may run the job now (nobody held it, its lease expired, or it was already ours).
    pub async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: signet_core::UnixTime,
        until: signet_core::UnixTime,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO job_leases (job, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4",
        )
        .bind(job)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Closes the pool after pending work; used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The PostgreSQL advisory lock that serialises write transactions across nodes.
const WRITE_LOCK: i64 = 0x5349_474e_4554_0001;

/// Which database `url` names.
fn backend(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        Err(StoreError::Corrupt(format!(
            "`{}` is neither a sqlite:// nor a postgres:// URL",
            url.split('@').next_back().unwrap_or_default()
        )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_answers_while_every_pooled_connection_is_busy() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let options = DatabaseOptions {
            max_connections: 2,
            ..DatabaseOptions::default()
        };
        let (master, _) = signet_core::crypto::MasterKey::generate();
        let store = Store::open_with(&url, master.audit_key(), &options)
            .await
            .expect("the store opens");
        let _busy = [
            store.pool.acquire().await.expect("a pooled connection"),
            store.pool.acquire().await.expect("a pooled connection"),
        ];
        // The pool would make a caller wait five seconds for a connection, then fail.
        tokio::time::timeout(Duration::from_secs(1), store.ping())
            .await
            .expect("an answer within a second")
            .expect("the database answers");
        // Asked again on the same connection.
        store.ping().await.expect("the database answers again");
    }
}
