//! The group-commit writer on SQLite: its own rusqlite connection, prepared statements, and the
//! chain head read at the start of each batch's transaction. A second thread checkpoints the WAL,
//! so batches seldom wait while pages are copied back into the database file.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};
use signet_core::audit::CHAIN_GENESIS;
use signet_core::crypto::AuditKey;

use super::{ChainHead, Sink, Write, chain_next};
use crate::db::Durability;

/// How often the checkpointer copies committed WAL pages back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL pages (4 KiB each) past which the writer finishes the checkpoint itself after a commit,
/// so that its next transaction starts the WAL over (SQLite's default size).
const WAL_RESTART_PAGES: i64 = 1000;
/// A WAL that grew larger anyway (a long reader held back the checkpoints) is cut back to this
/// when it starts over.
const WAL_SIZE_LIMIT: i64 = 16 << 20;

pub(super) struct SqliteSink {
    connection: Connection,
    /// Dropped with the sink, which stops the checkpointer.
    _checkpointer: mpsc::Sender<()>,
}

impl SqliteSink {
    pub(super) fn open(path: &std::path::Path, durability: Durability) -> Result<Self, String> {
        let connections = || -> rusqlite::Result<(Connection, Connection)> {
            let writer = open(path, durability)?;
            // The checkpointer copies the WAL back without holding up the writer, but under
            // continuous load it never finishes: the writer commits during each pass, and SQLite
            // starts the WAL over only at a write that finds it all copied. The WAL grew by
            // 50 MB a second at full load, and every flush had new file blocks to allocate. So
            // past `WAL_RESTART_PAGES` the writer checkpoints after its commit: it copies only
            // what came since the checkpointer's last pass (never the thousands of pages a
            // whole checkpoint would; a batch waits for that only every few hundred commits),
            // and its next transaction starts the WAL over.
            writer.pragma_update(None, "wal_autocheckpoint", WAL_RESTART_PAGES)?;
            writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
            Ok((writer, open(path, durability)?))
        };
        let (connection, checkpoints) = connections().map_err(|e| e.to_string())?;
        let (stop, stopped) = mpsc::channel();
        std::thread::Builder::new()
            .name("signet-checkpoint".into())
            .spawn(move || checkpoint(&checkpoints, &stopped))
            .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
        Ok(Self {
            connection,
            _checkpointer: stop,
        })
    }
}

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] until the sink is dropped. Passive: it copies
/// what no reader still needs and never blocks the writer. Under continuous load it leaves a
/// short tail, which the writer copies itself past [`WAL_RESTART_PAGES`] (see `open`), so the
/// WAL starts over and stays a few megabytes.
fn checkpoint(connection: &Connection, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // Said once, not twenty times a second.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying every 50 ms");
                failing = true;
            }
            Err(_) => {}
            Ok(()) if failing => {
                tracing::info!("WAL checkpoints work again");
                failing = false;
            }
            Ok(()) => {}
        }
    }
}

impl Sink for SqliteSink {
    fn write(&mut self, key: &AuditKey, batch: &[Write]) -> Result<Vec<bool>, String> {
        write_batch(&mut self.connection, key, batch).map_err(|e| e.to_string())
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

/// Reads the chain head inside the batch's transaction (admin changes append their own records
/// in theirs, so a head kept from the last batch could be stale).
fn chain_head(connection: &Connection) -> rusqlite::Result<ChainHead> {
    connection
        .prepare_cached("SELECT last_id, hash FROM audit_chain_head WHERE id = 1")?
        .query_row([], |r| {
            let hash: Vec<u8> = r.get(1)?;
            Ok(ChainHead {
                id: r.get(0)?,
                hash: <[u8; 32]>::try_from(hash).unwrap_or(CHAIN_GENESIS),
            })
        })
}

/// Writes the batch in one transaction; for each write, whether it inserted a row (for a `jti`:
/// whether it was new; a `jti` repeated within the batch is new only the first time). Audit
/// records continue the chain from its head as of this transaction.
fn write_batch(
    connection: &mut Connection,
    key: &AuditKey,
    batch: &[Write],
) -> rusqlite::Result<Vec<bool>> {
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut head = chain_head(&tx)?;
    let start = head.id;
    let mut inserted = Vec::with_capacity(batch.len());
    {
        let mut insert_jti = tx.prepare_cached(
            "INSERT INTO used_jtis (agent_id, jti, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (agent_id, jti) DO NOTHING",
        )?;
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO audit_events (id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, hash, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for write in batch {
            let fresh = match write {
                Write::Jti(used, _) => {
                    insert_jti.execute(params![used.agent_id, used.jti, used.expires_at])? == 1
                }
                Write::Audit(..) => true,
            };
            if let Some(e) = write.record(fresh) {
                let (id, detail, hash) = chain_next(key, &head, e);
                insert_event.execute(params![
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
            }
            inserted.push(fresh);
        }
    }
    if head.id != start {
        tx.prepare_cached("UPDATE audit_chain_head SET last_id = ?1, hash = ?2 WHERE id = 1")?
            .execute(params![head.id, &head.hash[..]])?;
    }
    tx.commit()?;
    Ok(inserted)
}
