//! Group commit: the writes the token endpoint waits for (audit records, and the `jti` of each
//! client assertion) go through one writer task. It gathers whatever is waiting and writes it
//! in one transaction (multi-row INSERTs), so durability costs one commit per batch, not per
//! request, and no two writers fight over SQLite's write lock. A bounded queue pushes back on
//! callers when the database is slow.

use std::collections::HashSet;

use signet_core::UnixTime;
use signet_core::audit::AuditEvent;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Largest batch written in one transaction (11 columns × 256 rows stays under SQLite's limit
/// of bound parameters).
const MAX_BATCH: usize = 256;
/// Writes waiting beyond this make callers wait for room (back-pressure).
const QUEUE: usize = 8192;

enum Write {
    Audit(AuditEvent, oneshot::Sender<Result<(), String>>),
    /// Record a used `jti`; answers whether it was new.
    Jti {
        agent_id: String,
        jti: String,
        expires_at: UnixTime,
        ack: oneshot::Sender<Result<bool, String>>,
    },
}

/// A handle to the writer. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Write>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Audit(event, _) => f.debug_tuple("Audit").field(&event.event_type).finish(),
            Self::Jti { agent_id, .. } => f
                .debug_struct("Jti")
                .field("agent_id", agent_id)
                .finish_non_exhaustive(),
        }
    }
}

fn closed_or_failed(message: Result<String, oneshot::error::RecvError>) -> StoreError {
    match message {
        Ok(message) => StoreError::Unavailable(sqlx::Error::Protocol(message)),
        Err(_) => StoreError::AuditClosed,
    }
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
            .send(Write::Audit(event, ack))
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(closed_or_failed(Ok(message))),
            Err(e) => Err(closed_or_failed(Err(e))),
        }
    }

    /// Records a client assertion's `jti` for the agent until `expires_at`, committed before it
    /// returns. `false` means it was recorded before: a replay.
    pub(crate) async fn record_jti(
        &self,
        agent_id: &str,
        jti: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let (ack, done) = oneshot::channel();
        let write = Write::Jti {
            agent_id: agent_id.to_string(),
            jti: jti.to_string(),
            expires_at,
            ack,
        };
        self.sender
            .send(write)
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        match done.await {
            Ok(Ok(fresh)) => Ok(fresh),
            Ok(Err(message)) => Err(closed_or_failed(Ok(message))),
            Err(e) => Err(closed_or_failed(Err(e))),
        }
    }
}

async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<Write>) {
    let mut batch: Vec<Write> = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = write_batch(&pool, &batch).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = batch.len(), "group commit failed");
        }
        // Within a batch, only the first request with a given jti is new.
        let mut claimed: HashSet<(String, String)> = HashSet::new();
        for write in batch.drain(..) {
            // A caller that gave up waiting has nothing to be told.
            match write {
                Write::Audit(_, ack) => {
                    let _ = ack.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                }
                Write::Jti {
                    agent_id, jti, ack, ..
                } => {
                    let answer = match &result {
                        Ok(inserted) => {
                            let key = (agent_id, jti);
                            Ok(inserted.contains(&key) && claimed.insert(key))
                        }
                        Err(e) => Err(e.clone()),
                    };
                    let _ = ack.send(answer);
                }
            }
        }
    }
}

/// Writes the batch in one transaction; returns the `(agent_id, jti)` pairs that were new.
async fn write_batch(
    pool: &SqlitePool,
    batch: &[Write],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut inserted = HashSet::new();
    let jtis: Vec<(&str, &str, UnixTime)> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Jti {
                agent_id,
                jti,
                expires_at,
                ..
            } => Some((agent_id.as_str(), jti.as_str(), *expires_at)),
            Write::Audit(..) => None,
        })
        .collect();
    if !jtis.is_empty() {
        let mut insert: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO used_jtis (agent_id, jti, expires_at) ");
        insert.push_values(&jtis, |mut row, (agent_id, jti, expires_at)| {
            row.push_bind(agent_id.to_string())
                .push_bind(jti.to_string())
                .push_bind(*expires_at);
        });
        insert.push(" ON CONFLICT (agent_id, jti) DO NOTHING RETURNING agent_id, jti");
        for row in insert.build().fetch_all(&mut *tx).await? {
            inserted.insert((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
        }
    }
    let events: Vec<&AuditEvent> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Audit(event, _) => Some(event),
            Write::Jti { .. } => None,
        })
        .collect();
    if !events.is_empty() {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO audit_events (ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail) ",
        );
        insert.push_values(events, |mut row, e| {
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
    }
    tx.commit().await?;
    Ok(inserted)
}
