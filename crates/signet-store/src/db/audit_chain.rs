//! The audit chain: verifying it, up to its head or against an anchor noted elsewhere, and
//! retention, which deletes old records and keeps the rest verifiable from a checkpoint.

use signet_core::audit::{CHAIN_GENESIS, ChainAnchor, ChainFields, chain_hash, unkeyed_chain_hash};
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
        let head: i64 = sqlx::query_scalar("SELECT last_id FROM audit_chain_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let checkpoint: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT last_id, hash FROM audit_checkpoints ORDER BY last_id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let mut report = ChainReport {
            checked: 0,
            unchained: 0,
            unkeyed: 0,
            first_broken: None,
            checkpoint: checkpoint.as_ref().map(|(id, _)| *id),
            head: None,
            anchor_checked: false,
        };
        let mut previous = checkpoint
            .as_ref()
            .and_then(|(_, h)| <[u8; 32]>::try_from(h.as_slice()).ok())
            .unwrap_or(CHAIN_GENESIS);
        let mut after = checkpoint.map(|(id, _)| id).unwrap_or(0);
        // An anchor at the checkpoint is the deleted record the checkpoint kept.
        if let Some(anchor) = anchor.filter(|a| a.id == after && after > 0) {
            if anchor.hash != previous {
                report.first_broken = Some(anchor.id);
                return Ok(report);
            }
            report.anchor_checked = true;
        }
        let mut chained = false;
        // Unkeyed hashes are accepted only before the first keyed one: records written since
        // cannot be passed off as older ones whose hash anybody can compute.
        let mut keyed = false;
        loop {
            let rows = sqlx::query(
                "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id, hash FROM audit_events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT 5000",
            )
            .bind(after)
            .bind(head)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let record = Stored::read(row)?;
                after = record.id;
                let Some(stored) = &record.hash else {
                    if chained {
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
                    if keyed || stored.as_slice() != unkeyed.as_slice() {
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
        // Records removed from the end leave the chain head ahead of the last record.
        if head > after {
            report.first_broken = Some(after + 1);
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

    /// Retention: deletes records older than `before_ms` and records a checkpoint (the last
    /// deleted record's id and hash) so the rest of the chain still verifies. Returns how many
    /// records were deleted.
    pub async fn prune_audit(&self, before_ms: i64, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let last: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT id, hash FROM audit_events WHERE ts_ms < $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(before_ms)
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
        sqlx::query(
            "INSERT INTO audit_checkpoints (last_id, hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (last_id) DO NOTHING",
        )
        .bind(last_id)
        .bind(hash.unwrap_or_else(|| CHAIN_GENESIS.to_vec()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
