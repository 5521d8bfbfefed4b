//! The audit chain: verifying it, up to its head or against an anchor noted elsewhere, and
//! retention, which deletes old records and keeps the rest verifiable from a checkpoint.

use signet_core::audit::{
    CHAIN_GENESIS, ChainAnchor, ChainFields, chain_hash, checkpoint_mac, legacy_before_mac,
    unkeyed_chain_hash,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use crate::StoreError;

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records whose hash was checked.
    pub checked: u64,
    /// Records from before tamper evidence existed (no hash), at the start of the log.
    pub unchained: u64,
    /// Of the records checked, those from before the chain was keyed (a plain SHA-256 chain),
    /// at its start: whoever could write to the database could have recomputed them.
    pub unkeyed: u64,
    /// The first record whose hash does not match (changed, or a record before it was removed
    /// or reordered); for records removed from the end, the first missing id; for a log that
    /// no longer reaches its anchor, the first id it lacks.
    pub first_broken: Option<i64>,
    /// The retention checkpoint the check started from (the last deleted record's id).
    pub checkpoint: Option<i64>,
    /// The end of the chain as checked: to note elsewhere, as the anchor of a later check.
    /// `None` for a log without chained records.
    pub head: Option<ChainAnchor>,
    /// Whether the anchor asked for was found unchanged; `false` when it lies before the
    /// retention checkpoint (deleted records cannot be checked) or the chain broke earlier.
    pub anchor_checked: bool,
}

/// Records deleted by retention in one transaction at most.
const PRUNE_CHUNK: i64 = 10_000;

/// The chain head as read when a check starts.
struct Head {
    id: i64,
    hash: Vec<u8>,
    /// Records below this id may be from before the chain was keyed (sealed at the upgrade).
    legacy_before: i64,
}

/// A record's chained fields as stored.
struct Stored {
    id: i64,
    ts_ms: i64,
    event_type: String,
    outcome: String,
    text: [Option<String>; 9],
    hash: Option<Vec<u8>>,
}

impl Stored {
    const TEXT: [&'static str; 9] = [
        "reason",
        "agent_id",
        "method",
        "source",
        "user_agent",
        "actor",
        "jti",
        "detail",
        "request_id",
    ];

    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let mut text: [Option<String>; 9] = Default::default();
        for (value, column) in text.iter_mut().zip(Self::TEXT) {
            *value = row.try_get(column)?;
        }
        Ok(Self {
            id: row.try_get("id")?,
            ts_ms: row.try_get("ts_ms")?,
            event_type: row.try_get("event_type")?,
            outcome: row.try_get("outcome")?,
            text,
            hash: row.try_get("hash")?,
        })
    }

    fn fields(&self) -> ChainFields<'_> {
        let [
            reason,
            agent_id,
            method,
            source,
            user_agent,
            actor,
            jti,
            detail,
            request_id,
        ] = self.text.each_ref().map(Option::as_deref);
        ChainFields {
            id: self.id,
            ts_ms: self.ts_ms,
            event_type: &self.event_type,
            outcome: &self.outcome,
            reason,
            agent_id,
            method,
            source,
            user_agent,
            actor,
            jti,
            detail,
            request_id,
        }
    }
}

impl Store {
    /// Recomputes the audit chain from the latest retention checkpoint (or the first record)
    /// up to the chain head as it stands when the check starts, and names the first record that
    /// breaks it. Records committed while it runs are left for the next check.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        self.verify_audit_chain_to(None).await
    }

    /// As [`Store::verify_audit_chain`], and checks that the log still reaches `anchor` (a head
    /// an earlier check reported) unchanged: the one thing the chain alone cannot show is
    /// records removed from its end together with the chain head moved back.
    pub async fn verify_audit_chain_to(
        &self,
        anchor: Option<&ChainAnchor>,
    ) -> Result<ChainReport, StoreError> {
        // The head first: every record up to it is committed (a record and the head move in
        // one transaction). Read last, a head moved by a commit made during the check would
        // look like records removed from the end.
        let (head, head_hash, legacy_before, legacy_mac): (
            i64,
            Vec<u8>,
            Option<i64>,
            Option<Vec<u8>>,
        ) = sqlx::query_as(
            "SELECT last_id, hash, legacy_before, legacy_mac FROM audit_chain_head WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        // Records from before the chain was keyed are allowed only below the bound sealed at
        // the upgrade; a bound whose seal does not hold allows none.
        let legacy_before = match (legacy_before, legacy_mac) {
            (Some(bound), Some(mac))
                if mac.as_slice() == legacy_before_mac(self.audit.key(), bound).as_slice() =>
            {
                bound
            }
            _ => 1,
        };
        let head = Head {
            id: head,
            hash: head_hash,
            legacy_before,
        };
        let mut checkpoint = self.sealed_checkpoint().await?;
        loop {
            let report = self.check_chain(&head, checkpoint, anchor).await?;
            let Some(broken) = report.first_broken else {
                return Ok(report);
            };
            // Retention running meanwhile deletes records the check had not reached yet: the
            // chain then seems to break where they were. A newer checkpoint that covers the
            // break explains it; check again from there.
            match self.sealed_checkpoint().await? {
                Some(newer) if newer.0 >= broken - 1 && Some(newer.0) > checkpoint.map(|c| c.0) => {
                    checkpoint = Some(newer);
                }
                _ => return Ok(report),
            }
        }
    }

    /// The newest retention checkpoint whose seal holds: one written into the database by
    /// anyone without the audit key is passed over (the records it would hide are checked).
    async fn sealed_checkpoint(&self) -> Result<Option<(i64, [u8; 32])>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT last_id, hash, mac FROM audit_checkpoints ORDER BY last_id DESC LIMIT 100",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().find_map(|(id, hash, mac)| {
            let sealed = checkpoint_mac(self.audit.key(), id, &hash);
            let hash = <[u8; 32]>::try_from(hash.as_slice()).ok()?;
            (mac.as_deref() == Some(sealed.as_slice())).then_some((id, hash))
        }))
    }

    /// One pass over the chain from `checkpoint` (or the first record) to the head.
    async fn check_chain(
        &self,
        head: &Head,
        checkpoint: Option<(i64, [u8; 32])>,
        anchor: Option<&ChainAnchor>,
    ) -> Result<ChainReport, StoreError> {
        let mut report = ChainReport {
            checked: 0,
            unchained: 0,
            unkeyed: 0,
            first_broken: None,
            checkpoint: checkpoint.map(|(id, _)| id),
            head: None,
            anchor_checked: false,
        };
        let mut previous = checkpoint.map_or(CHAIN_GENESIS, |(_, hash)| hash);
        let mut after = checkpoint.map_or(0, |(id, _)| id);
        // Retention deletes every record up to its checkpoint: one still there (or put there)
        // lies outside the chain the check follows.
        if after > 0 {
            let hidden: Option<i64> =
                sqlx::query_scalar("SELECT MIN(id) FROM audit_events WHERE id <= $1")
                    .bind(after)
                    .fetch_one(&self.pool)
                    .await?;
            if hidden.is_some() {
                report.first_broken = hidden;
                return Ok(report);
            }
        }
        // An anchor at the checkpoint is the deleted record the checkpoint kept.
        if let Some(anchor) = anchor.filter(|a| a.id == after && after > 0) {
            if anchor.hash != previous {
                report.first_broken = Some(anchor.id);
                return Ok(report);
            }
            report.anchor_checked = true;
        }
        let mut chained = false;
        // Unkeyed hashes are accepted only before the first keyed one, and only below the
        // sealed bound: records written since cannot be passed off as older ones whose hash
        // anybody can compute.
        let mut keyed = false;
        loop {
            let rows = sqlx::query(
                "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id, hash FROM audit_events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT 5000",
            )
            .bind(after)
            .bind(head.id)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let record = Stored::read(row)?;
                after = record.id;
                let legacy = record.id < head.legacy_before;
                let Some(stored) = &record.hash else {
                    if chained || !legacy {
                        report.first_broken = Some(record.id);
                        return Ok(report);
                    }
                    report.unchained += 1;
                    continue;
                };
                chained = true;
                let expected = chain_hash(self.audit.key(), &previous, &record.fields());
                if stored.as_slice() == expected.as_slice() {
                    keyed = true;
                    previous = expected;
                } else {
                    let unkeyed = unkeyed_chain_hash(&previous, &record.fields());
                    if keyed || !legacy || stored.as_slice() != unkeyed.as_slice() {
                        report.first_broken = Some(record.id);
                        return Ok(report);
                    }
                    report.unkeyed += 1;
                    previous = unkeyed;
                }
                report.checked += 1;
                if let Some(anchor) = anchor.filter(|a| a.id == record.id) {
                    if anchor.hash != previous {
                        report.first_broken = Some(record.id);
                        return Ok(report);
                    }
                    report.anchor_checked = true;
                }
            }
        }
        // Records removed from the end leave the chain head ahead of the last record; the head
        // holds the last record's hash, so a last record changed together with its hash (by
        // someone who cannot compute the key's) shows too.
        if head.id > after {
            report.first_broken = Some(after + 1);
            return Ok(report);
        }
        if (chained || checkpoint.is_some()) && head.hash.as_slice() != previous.as_slice() {
            report.first_broken = Some(head.id);
            return Ok(report);
        }
        // A log that falls short of its anchor lost its end, whatever its head says (and an
        // anchor record without its hash was changed). One before the checkpoint was deleted
        // by retention and cannot be checked.
        if let Some(anchor) = anchor.filter(|a| a.id > report.checkpoint.unwrap_or(0))
            && !report.anchor_checked
        {
            report.first_broken = Some(anchor.id.min(after + 1));
            return Ok(report);
        }
        if chained || report.checkpoint.is_some() {
            report.head = Some(ChainAnchor {
                id: after,
                hash: previous,
            });
        }
        Ok(report)
    }

    /// Retention: deletes records older than `before_ms`, a bounded number per transaction,
    /// each transaction recording a sealed checkpoint (the last deleted record's id and hash)
    /// so the rest of the chain still verifies. Returns how many records were deleted.
    pub async fn prune_audit(&self, before_ms: i64, now: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            match self.prune_audit_chunk(before_ms, now).await? {
                0 => return Ok(deleted),
                n => deleted += n,
            }
        }
    }

    /// One transaction of retention: up to [`PRUNE_CHUNK`] of the oldest records, so that
    /// neither PostgreSQL's statement timeout nor SQLite's write lock (which the audit writer
    /// waits for) is held long.
    async fn prune_audit_chunk(&self, before_ms: i64, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let first: Option<i64> = sqlx::query_scalar("SELECT MIN(id) FROM audit_events")
            .fetch_one(&mut *tx)
            .await?;
        let Some(first) = first else {
            return Ok(0);
        };
        let last: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT id, hash FROM audit_events WHERE ts_ms < $1 AND id < $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(before_ms)
        .bind(first.saturating_add(PRUNE_CHUNK))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((last_id, hash)) = last else {
            return Ok(0);
        };
        let deleted = sqlx::query("DELETE FROM audit_events WHERE id <= $1")
            .bind(last_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let hash = hash.unwrap_or_else(|| CHAIN_GENESIS.to_vec());
        sqlx::query(
            "INSERT INTO audit_checkpoints (last_id, hash, created_at, mac) VALUES ($1, $2, $3, $4) ON CONFLICT (last_id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, mac = excluded.mac",
        )
        .bind(last_id)
        .bind(hash.clone())
        .bind(now)
        .bind(checkpoint_mac(self.audit.key(), last_id, &hash).to_vec())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
