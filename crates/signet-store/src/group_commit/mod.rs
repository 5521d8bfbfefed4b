//! Group commit: the writes the token endpoint waits for (audit records, and the `jti` of each
//! client assertion) go to one writer thread that owns its own SQLite connection. It gathers
//! whatever is waiting and writes it in one transaction with prepared statements, so durability
//! costs one commit per batch, not per request; no statement crosses an async hand-off; and no
//! two writers of the hot path fight over SQLite's write lock. A bounded queue pushes back on
//! callers when the disk is slow.
//!
//! The writer is also where the audit chain grows: it numbers each record and stores
//! `chain_hash(audit key, previous hash, record)` with it (see `signet_core::audit::chain_hash`),
//! starting from the chain head (`audit_chain_head`) read inside each batch's transaction and
//! stored back in it, so admin records written between batches, and other nodes' writers, are
//! followed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod postgres;
mod sqlite;

use signet_core::UnixTime;
use signet_core::audit::{AuditEvent, ChainFields, chain_hash};
use signet_core::crypto::AuditKey;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::db::{DatabaseOptions, Durability};

tokio::task_local! {
    /// The id of the HTTP request being served: records written while serving it carry it.
    pub static REQUEST_ID: std::sync::Arc<str>;
}

/// Most writes in one transaction.
const MAX_BATCH: usize = 512;
/// How long a batch waits for more writes when the previous one had at least `LINGER_AFTER`
/// writes, unless `LINGER_UNTIL` are already waiting.
const LINGER: Duration = Duration::from_micros(200);
const LINGER_AFTER: usize = 4;
const LINGER_UNTIL: usize = 64;
/// Writes waiting beyond this make callers wait for room (back-pressure).
const QUEUE: usize = 8192;

// What a write carries is shared with the caller (`Arc`), and the writer lets go of its share
// before it answers: the caller's thread, which allocated the record's strings, frees them. A
// batch freed on the writer's thread made glibc's allocator take each request thread's arena
// lock, and the writer waited on those locks (seen as futex waits between commits).
enum Write {
    Audit(Arc<AuditEvent>, oneshot::Sender<Result<(), String>>),
    /// Record a used `jti`; answers whether it was new.
    Jti(Arc<UsedJti>, oneshot::Sender<Result<bool, String>>),
}

/// A client assertion's `jti`, kept for its agent until `expires_at`.
struct UsedJti {
    agent_id: String,
    jti: String,
    expires_at: UnixTime,
    /// The request's audit record, appended in the same transaction: the first if the `jti` is
    /// new, the second if it is a replay. One commit for the request, not two.
    records: Option<(AuditEvent, AuditEvent)>,
}

impl Write {
    /// The audit record this write appends, given whether its `jti` (if any) was new.
    fn record(&self, fresh: bool) -> Option<&AuditEvent> {
        match self {
            Write::Audit(e, _) => Some(e),
            Write::Jti(used, _) => used
                .records
                .as_ref()
                .map(|(new, replayed)| if fresh { new } else { replayed }),
        }
    }
}

/// What the writer has done, for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
    pub failed_batches: std::sync::atomic::AtomicU64,
    /// Batch sizes: counts of batches with at most 1, 4, 16, 64, 256, 512 writes.
    pub batch_size_buckets: [std::sync::atomic::AtomicU64; 6],
}

/// Upper bounds of [`WriterStats::batch_size_buckets`].
pub const BATCH_SIZE_BOUNDS: [usize; 6] = [1, 4, 16, 64, 256, 512];

/// A handle to the writer. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Write>,
    stats: std::sync::Arc<WriterStats>,
    /// The server's clock, once set: records are stamped with its time.
    clock: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<signet_core::clock::Clock>>>,
    /// Set only to measure what audit costs: records are dropped, not written.
    off: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The key of the chain's hashes (admin changes and verification use it too).
    key: AuditKey,
}

fn failed(message: String) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(message))
}

impl AuditLog {
    /// Opens the writer's connection to the database at `path` and starts its thread.
    pub(crate) fn start(
        path: PathBuf,
        durability: Durability,
        key: AuditKey,
    ) -> Result<Self, StoreError> {
        let sink = sqlite::SqliteSink::open(&path, durability).map_err(|e| {
            failed(format!(
                "the group-commit writer cannot open {}: {e}",
                path.display()
            ))
        })?;
        Self::spawn(Box::new(sink), key)
    }

    /// Starts the writer on PostgreSQL, with a connection of its own.
    pub(crate) fn start_postgres(
        url: &str,
        options: &DatabaseOptions,
        key: AuditKey,
    ) -> Result<Self, StoreError> {
        let sink = postgres::PostgresSink::connect(url, options.statement_timeout)?;
        Self::spawn(Box::new(sink), key)
    }

    fn spawn(mut sink: Box<dyn Sink>, key: AuditKey) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let stats = std::sync::Arc::new(WriterStats::default());
        let writer_stats = stats.clone();
        let writer_key = key.clone();
        std::thread::Builder::new()
            .name("signet-writer".into())
            .spawn(move || run(sink.as_mut(), &writer_key, receiver, &writer_stats))
            .map_err(|e| failed(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            sender,
            stats,
            clock: Default::default(),
            off: Default::default(),
            key,
        })
    }

    /// The key of the chain's hashes.
    pub(crate) fn key(&self) -> &AuditKey {
        &self.key
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Writes waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        QUEUE - self.sender.capacity()
    }

    /// Stamps records with `clock`'s time from now on (the server's clock, which tests move).
    pub fn use_clock(&self, clock: std::sync::Arc<signet_core::clock::Clock>) {
        let _ = self.clock.set(clock);
    }

    /// Drops every record from now on. Only for benchmarks that measure what audit costs.
    pub fn turn_off_for_benchmarks(&self) {
        self.off.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets what the writer sets on every record: the server clock's time and the id of the
    /// request being served.
    pub(crate) fn stamp(&self, event: &mut AuditEvent) {
        if let Some(clock) = self.clock.get() {
            event.ts_ms = clock.now_ms();
        }
        if event.request_id.is_none() {
            event.request_id = REQUEST_ID.try_with(|id| id.to_string()).ok();
        }
    }

    /// Records `event` and returns once it is committed.
    pub async fn record(&self, mut event: AuditEvent) -> Result<(), StoreError> {
        if self.off.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        self.stamp(&mut event);
        let event = Arc::new(event);
        let (ack, done) = oneshot::channel();
        self.sender
            .send(Write::Audit(event.clone(), ack))
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        let answer = done.await;
        drop(event); // the last share: freed here, see `Write`
        match answer {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(StoreError::AuditClosed),
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
        self.send_jti(agent_id, jti, expires_at, None).await
    }

    /// Records a client assertion's `jti` and, in the same commit, the request's audit record:
    /// `fresh` if the `jti` is new, `replayed` if it was recorded before. Returns whether it was
    /// new. The token endpoint's `private_key_jwt` requests pay one commit instead of two.
    pub async fn record_with_jti(
        &self,
        agent_id: &str,
        jti: &str,
        expires_at: UnixTime,
        mut fresh: AuditEvent,
        mut replayed: AuditEvent,
    ) -> Result<bool, StoreError> {
        if self.off.load(std::sync::atomic::Ordering::Relaxed) {
            return self.send_jti(agent_id, jti, expires_at, None).await;
        }
        self.stamp(&mut fresh);
        self.stamp(&mut replayed);
        self.send_jti(agent_id, jti, expires_at, Some((fresh, replayed)))
            .await
    }

    async fn send_jti(
        &self,
        agent_id: &str,
        jti: &str,
        expires_at: UnixTime,
        records: Option<(AuditEvent, AuditEvent)>,
    ) -> Result<bool, StoreError> {
        let used = Arc::new(UsedJti {
            agent_id: agent_id.to_string(),
            jti: jti.to_string(),
            expires_at,
            records,
        });
        let (ack, done) = oneshot::channel();
        self.sender
            .send(Write::Jti(used.clone(), ack))
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        let answer = done.await;
        drop(used); // the last share: freed here, see `Write`
        match answer {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(StoreError::AuditClosed),
        }
    }
}

/// Where batches are committed: SQLite or PostgreSQL.
trait Sink: Send {
    /// Writes the batch in one transaction; for each write, whether it inserted a row (for a
    /// `jti`: whether it was new; a `jti` repeated within the batch is new only the first time).
    /// Audit records ([`Write::record`]) continue the chain in the batch's order. Nothing of a
    /// failed batch is committed.
    fn write(&mut self, key: &AuditKey, batch: &[Write]) -> Result<Vec<bool>, String>;
}

/// The end of the audit chain: the last record's id and hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainHead {
    pub(crate) id: i64,
    pub(crate) hash: [u8; 32],
}

/// An audit record numbered and hashed after `head`: its id, its detail as stored, its hash.
pub(crate) fn chain_next(
    key: &AuditKey,
    head: &ChainHead,
    e: &AuditEvent,
) -> (i64, Option<String>, [u8; 32]) {
    let id = head.id + 1;
    let detail = e.detail.as_ref().map(|d| d.to_string());
    let hash = chain_hash(
        key,
        &head.hash,
        &ChainFields {
            id,
            ts_ms: e.ts_ms,
            event_type: &e.event_type,
            outcome: e.outcome.as_str(),
            reason: e.reason.as_deref(),
            agent_id: e.agent_id.as_deref(),
            method: e.method.as_deref(),
            source: e.source.as_deref(),
            user_agent: e.user_agent.as_deref(),
            actor: e.actor.as_deref(),
            jti: e.jti.as_deref(),
            detail: detail.as_deref(),
            request_id: e.request_id.as_deref(),
        },
    );
    (id, detail, hash)
}

/// Moves the writes already waiting into `batch`, up to [`MAX_BATCH`].
fn take_queued(receiver: &mut mpsc::Receiver<Write>, batch: &mut Vec<Write>) {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(write) => batch.push(write),
            Err(_) => break,
        }
    }
}

fn run(
    sink: &mut dyn Sink,
    key: &AuditKey,
    mut receiver: mpsc::Receiver<Write>,
    stats: &WriterStats,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut batch: Vec<Write> = Vec::with_capacity(MAX_BATCH);
    let mut last_batch = 0;
    // Blocks until at least one write waits, then takes whatever else is already queued.
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        take_queued(&mut receiver, &mut batch);
        // Under concurrent load (the last batch was not small), wait a moment for more writes:
        // fewer, larger commits cost far less than many small ones (each is a WAL write and a
        // flush). One sleep, not a polling loop: each wake-up is a context switch, which costs
        // as much as a few records on a virtual machine. A lone writer never waits.
        if last_batch >= LINGER_AFTER && batch.len() < LINGER_UNTIL {
            std::thread::sleep(LINGER);
            take_queued(&mut receiver, &mut batch);
        }
        last_batch = batch.len();
        let result = sink.write(key, &batch);
        stats.batches.fetch_add(1, Relaxed);
        stats.writes.fetch_add(batch.len() as u64, Relaxed);
        if let Some(bucket) = BATCH_SIZE_BOUNDS.iter().position(|b| batch.len() <= *b) {
            stats.batch_size_buckets[bucket].fetch_add(1, Relaxed);
        }
        if let Err(e) = &result {
            stats.failed_batches.fetch_add(1, Relaxed);
            tracing::error!(error = %e, writes = batch.len(), "group commit failed");
        }
        let fresh: Vec<Option<bool>> = match &result {
            Ok(inserted) => inserted.iter().copied().map(Some).collect(),
            Err(_) => vec![None; batch.len()],
        };
        for (write, fresh) in batch.drain(..).zip(fresh) {
            // A caller that gave up waiting has nothing to be told.
            // Each write's share of its record goes before the answer (see `Write`).
            match write {
                Write::Audit(event, ack) => {
                    drop(event);
                    let _ = ack.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                }
                Write::Jti(used, ack) => {
                    drop(used);
                    let answer = match (&result, fresh) {
                        (Ok(_), Some(fresh)) => Ok(fresh),
                        (Err(e), _) => Err(e.clone()),
                        (Ok(_), None) => Err("group commit lost track of a write".to_string()),
                    };
                    let _ = ack.send(answer);
                }
            }
        }
    }
}
