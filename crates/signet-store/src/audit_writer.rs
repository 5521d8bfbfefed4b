//! The audit writer: callers hand it an event and wait until it is committed; a single task
//! gathers whatever events are waiting and writes them with one multi-row INSERT in one
//! transaction (group commit). Durability then costs one commit per batch, not per event, and
//! a bounded queue pushes back on callers when the database is slow.

use signet_core::audit::AuditEvent;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Largest batch written in one transaction (12 columns × 256 rows stays under SQLite's limit
/// of bound parameters).
const MAX_BATCH: usize = 256;
/// Events waiting beyond this make `record` wait for room (back-pressure).
const QUEUE: usize = 8192;

type Ack = oneshot::Sender<Result<(), String>>;

/// A handle to the audit writer. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<(AuditEvent, Ack)>,
}

impl AuditLog {
    /// Starts the writer task on `pool`.
    pub fn start(pool: SqlitePool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, receiver));
        Self { sender }
    }

    /// Records `event` and returns once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.sender
            .send((event, ack))
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Unavailable(sqlx::Error::Protocol(message))),
            Err(_) => Err(StoreError::AuditClosed),
        }
    }
}

async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<(AuditEvent, Ack)>) {
    let mut batch: Vec<(AuditEvent, Ack)> = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = write_batch(&pool, &batch).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, events = batch.len(), "audit batch could not be written");
        }
        for (_, ack) in batch.drain(..) {
            // A caller that gave up waiting has nothing to be told.
            let _ = ack.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
    }
}

async fn write_batch(pool: &SqlitePool, batch: &[(AuditEvent, Ack)]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO audit_events (ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail) ",
    );
    insert.push_values(batch.iter().map(|(e, _)| e), |mut row, e| {
        row.push_bind(e.ts_ms)
            .push_bind(e.event_type.clone())
            .push_bind(e.outcome.as_str())
            .push_bind(e.reason.clone())
            .push_bind(e.agent_id.clone())
            .push_bind(e.method.clone())
            .push_bind(e.source.clone())
            .push_bind(e.user_agent.clone())
            .push_bind(e.actor.clone())
            .push_bind(e.jti.clone())
            .push_bind(e.detail.as_ref().map(|d| d.to_string()));
    });
    insert.build().execute(&mut *tx).await?;
    tx.commit().await
}
