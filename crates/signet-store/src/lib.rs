//! Signet's storage: the embedded migrations, the SQLite store, the in-memory agent cache that
//! keeps the token endpoint off the database, and the group-commit writer (audit records and
//! assertion `jti`s).
//!
//! **Only this crate writes SQL.** Callers get domain types from `signet-core` and a
//! [`StoreError`]; `StoreError::Unavailable` means "try again later" (HTTP 503).

mod cache;
mod db;
mod group_commit;
mod migrations;

pub use db::{
    AlertRecord, Backend, ChainReport, Change, ConsoleSession, DatabaseOptions, DeliveryRecord,
    Durability, ExpiringCredential, IssuedRecord, MAX_CERTIFICATES_PER_AGENT, Page,
    RevocationRecord, StaleUse, Store, StoredAgentCa, StoredCertificate, StoredSigningKey,
};
pub use group_commit::{AuditLog, BATCH_SIZE_BOUNDS, REQUEST_ID, WriterStats};
pub use migrations::MIGRATIONS;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or is busy; retrying may help (HTTP 503).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The database refused the statement: a bug or a damaged schema (HTTP 500).
    #[error("database error: {0}")]
    Internal(sqlx::Error),
    /// The change conflicts with what is stored (e.g. a key ID already registered).
    #[error("{0}")]
    Conflict(String),
    /// A stored row could not be turned back into a domain value.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The audit writer has stopped (the server is shutting down).
    #[error("the audit log is closed")]
    AuditClosed,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), and their extended codes.
            sqlx::Error::Database(e) => e
                .code()
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
            _ => false,
        };
        if transient {
            Self::Unavailable(error)
        } else {
            Self::Internal(error)
        }
    }
}
