//! Signet's storage: the embedded migrations, the SQLite store, the in-memory agent cache that
//! keeps the token endpoint off the database, and the group-commit audit writer.
//!
//! **Only this crate writes SQL.** Callers get domain types from `signet-core` and a
//! [`StoreError`]; `StoreError::Unavailable` means "try again later" (HTTP 503).

mod audit_writer;
mod cache;
mod migrations;
mod sqlite;

pub use audit_writer::AuditLog;
pub use migrations::MIGRATIONS;
pub use sqlite::{Page, Store, StoredSigningKey};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the operation; retrying may help.
    #[error("database unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    /// A stored row could not be turned back into a domain value.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The audit writer has stopped (the server is shutting down).
    #[error("the audit log is closed")]
    AuditClosed,
}
