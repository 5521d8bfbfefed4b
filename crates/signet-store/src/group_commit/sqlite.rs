//! The group-commit writer on SQLite: its own rusqlite connection, prepared statements, the
//! chain head kept in memory and advanced only after a commit.

use std::time::Duration;

use rusqlite::{Connection, params};
use signet_core::audit::CHAIN_GENESIS;

use super::{ChainHead, Sink, Write, chain_next};
use crate::db::Durability;

pub(super) struct SqliteSink {
    connection: Connection,
    /// Unknown after a failed batch: read again before the next.
    head: Option<ChainHead>,
}

impl SqliteSink {
    pub(super) fn open(path: &std::path::Path, durability: Durability) -> rusqlite::Result<Self> {
        let connection = open(path, durability)?;
        let head = chain_head(&connection).ok();
        Ok(Self { connection, head })
    }
}

impl Sink for SqliteSink {
    fn write(&mut self, batch: &[Write]) -> Result<Vec<bool>, String> {
        let start = match self.head {
            Some(head) => head,
            None => chain_head(&self.connection)
                .map_err(|e| format!("the audit chain head cannot be read: {e}"))?,
        };
        match write_batch(&mut self.connection, batch, start) {
            Ok((inserted, head)) => {
                self.head = Some(head);
                Ok(inserted)
            }
            Err(e) => {
                self.head = None;
                Err(e.to_string())
            }
        }
    }
}

fn open(path: &std::path::Path, durability: Durability) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

/// Reads the chain head: the newest record, else the retention checkpoint, else the start.
/// Ids never repeat, also after retention deleted the newest records' predecessors.
fn chain_head(connection: &Connection) -> rusqlite::Result<ChainHead> {
    use rusqlite::OptionalExtension;
    let last: Option<(i64, Option<Vec<u8>>)> = connection
        .query_row(
            "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let sequence: i64 = connection
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'), 0)",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let as_hash = |bytes: Option<Vec<u8>>| {
        bytes
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .unwrap_or(CHAIN_GENESIS)
    };
    let head = match last {
        Some((id, hash)) => ChainHead {
            id,
            hash: as_hash(hash),
        },
        None => {
            let checkpoint: Option<(i64, Vec<u8>)> = connection
                .query_row(
                    "SELECT last_id, hash FROM audit_checkpoints ORDER BY last_id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match checkpoint {
                Some((id, hash)) => ChainHead {
                    id,
                    hash: as_hash(Some(hash)),
                },
                None => ChainHead {
                    id: 0,
                    hash: CHAIN_GENESIS,
                },
            }
        }
    };
    Ok(ChainHead {
        id: head.id.max(sequence),
        hash: head.hash,
    })
}

/// Writes the batch in one transaction; for each write, whether it inserted a row (for a `jti`:
/// whether it was new; a `jti` repeated within the batch is new only the first time). Audit
/// records continue the chain from `head`; the new head is returned with the result.
fn write_batch(
    connection: &mut Connection,
    batch: &[Write],
    head: ChainHead,
) -> rusqlite::Result<(Vec<bool>, ChainHead)> {
    let mut head = head;
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = Vec::with_capacity(batch.len());
    {
        let mut insert_jti = tx.prepare_cached(
            "INSERT INTO used_jtis (agent_id, jti, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (agent_id, jti) DO NOTHING",
        )?;
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO audit_events (id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, hash, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for write in batch {
            let rows = match write {
                Write::Jti {
                    agent_id,
                    jti,
                    expires_at,
                    ..
                } => insert_jti.execute(params![agent_id, jti, expires_at])?,
                Write::Audit(e, _) => {
                    let (id, detail, hash) = chain_next(&head, e);
                    let rows = insert_event.execute(params![
                        id,
                        e.ts_ms,
                        e.event_type,
                        e.outcome.as_str(),
                        e.reason,
                        e.agent_id,
                        e.method,
                        e.source,
                        e.user_agent,
                        e.actor,
                        e.jti,
                        detail,
                        &hash[..],
                        e.request_id,
                    ])?;
                    head = ChainHead { id, hash };
                    rows
                }
            };
            inserted.push(rows == 1);
        }
    }
    tx.commit()?;
    Ok((inserted, head))
}
