//! Verifying the audit chain. It is keyed: someone who can write to the database but does not
//! hold the master key cannot change a record and recompute the hashes after it. Logs begun
//! before the chain was keyed still verify, and say how many of their records are not keyed. A
//! check made while records are being written reports no break. An anchor (a head an earlier
//! check reported) shows a log cut short with its head moved back.

mod test_db;

use signet_core::audit::{AuditEvent, ChainAnchor, ChainFields, chain_hash, unkeyed_chain_hash};
use signet_core::crypto::{AuditKey, MasterKey};
use signet_store::Store;
use sqlx::Row;
use test_db::{TestDb, audit_key, open};

/// How an intruder rehashes the records they rewrote.
#[derive(Clone, Copy)]
enum Rehash<'a> {
    With(&'a AuditKey),
    Unkeyed,
}

async fn record_some(store: &Store, count: usize) {
    for i in 0..count {
        let event = AuditEvent::success("token_request")
            .with_agent(Some("agt_chain"))
            .with_source(Some(format!("10.0.0.{i}")), Some("test"));
        store.audit().record(event).await.expect("committed");
    }
}

/// As an intruder with the database in hand: sets record `changed`'s source (if any) and
/// recomputes the hash of every record from `from` on, then the chain head, the way the
/// server computes them but with `rehash`.
async fn rewrite(db: &TestDb, from: i64, changed: Option<i64>, rehash: Rehash<'_>) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db.url()).await.expect("connect");
    if let Some(id) = changed {
        sqlx::query("UPDATE audit_events SET source = '192.0.2.66' WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .expect("change a record");
    }
    let rows = sqlx::query(
        "SELECT id, ts_ms, event_type, outcome, reason, agent_id, method, source, user_agent, actor, jti, detail, request_id, hash FROM audit_events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("read the log");
    let mut previous = [0u8; 32];
    let mut last = 0i64;
    for row in &rows {
        let id: i64 = row.get("id");
        if id < from {
            let stored: Vec<u8> = row.get("hash");
            previous = stored.try_into().expect("32 bytes");
            continue;
        }
        let text = |c: &str| row.get::<Option<String>, _>(c);
        let (event_type, outcome): (String, String) = (row.get("event_type"), row.get("outcome"));
        let (reason, agent_id, method, source) = (
            text("reason"),
            text("agent_id"),
            text("method"),
            text("source"),
        );
        let (user_agent, actor, jti, detail, request_id) = (
            text("user_agent"),
            text("actor"),
            text("jti"),
            text("detail"),
            text("request_id"),
        );
        let fields = ChainFields {
            id,
            ts_ms: row.get("ts_ms"),
            event_type: &event_type,
            outcome: &outcome,
            reason: reason.as_deref(),
            agent_id: agent_id.as_deref(),
            method: method.as_deref(),
            source: source.as_deref(),
            user_agent: user_agent.as_deref(),
            actor: actor.as_deref(),
            jti: jti.as_deref(),
            detail: detail.as_deref(),
            request_id: request_id.as_deref(),
        };
        previous = match rehash {
            Rehash::With(key) => chain_hash(key, &previous, &fields),
            Rehash::Unkeyed => unkeyed_chain_hash(&previous, &fields),
        };
        sqlx::query("UPDATE audit_events SET hash = $1 WHERE id = $2")
            .bind(previous.to_vec())
            .bind(id)
            .execute(&pool)
            .await
            .expect("rehash");
        last = id;
    }
    sqlx::query("UPDATE audit_chain_head SET last_id = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(previous.to_vec())
        .execute(&pool)
        .await
        .expect("move the chain head");
    pool.close().await;
}

async fn a_changed_record_rehashed_without_the_key_is_named(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 6).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.checked),
        (None, 6),
        "{report:?}"
    );

    // The public algorithm (the unkeyed hash) and a guessed key both leave a break at the
    // changed record, however consistently the rest of the chain is recomputed.
    let guessed = MasterKey::generate().0.audit_key();
    for rehash in [Rehash::Unkeyed, Rehash::With(&guessed)] {
        rewrite(&db, 3, Some(3), rehash).await;
        let report = store.verify_audit_chain().await.expect("verify");
        assert_eq!(report.first_broken, Some(3), "{report:?}");
    }
    // The same rewrite with the master key's audit key verifies: the key is all that stops it.
    rewrite(&db, 3, None, Rehash::With(&audit_key())).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.unkeyed),
        (None, 0),
        "{report:?}"
    );
    // The whole log rewritten from its first record as a log from before keying (unkeyed
    // hashes), or with no hashes at all (as before tamper evidence): this log began keyed,
    // so neither passes.
    rewrite(&db, 1, Some(2), Rehash::Unkeyed).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, Some(1), "{report:?}");
    execute(&db, &["UPDATE audit_events SET hash = NULL"]).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, Some(1), "{report:?}");
    // The chain head holds the last record's hash.
    rewrite(&db, 1, None, Rehash::With(&audit_key())).await;
    assert_eq!(
        store
            .verify_audit_chain()
            .await
            .expect("verify")
            .first_broken,
        None
    );
    execute(&db, &["UPDATE audit_chain_head SET hash = $1 WHERE id = 1"]).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, Some(6), "{report:?}");
    store.close().await;
}

/// Runs statements as someone with the database in hand (`$1`, if any, is 32 bytes of 7s).
async fn execute(db: &TestDb, statements: &[&'static str]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db.url()).await.expect("connect");
    for sql in statements {
        let query = sqlx::query(*sql);
        let query = if sql.contains("$1") {
            query.bind(vec![7u8; 32])
        } else {
            query
        };
        query.execute(&pool).await.expect(sql);
    }
    pool.close().await;
}

/// Undoes migration 0017 (as a database of the version before it), so that the next open
/// upgrades it.
async fn as_before_0017(db: &TestDb) {
    execute(
        db,
        &[
            "ALTER TABLE audit_checkpoints DROP COLUMN mac",
            "ALTER TABLE audit_chain_head DROP COLUMN legacy_before",
            "ALTER TABLE audit_chain_head DROP COLUMN legacy_mac",
            "DELETE FROM signet_migrations WHERE name = '0017_audit_seals'",
        ],
    )
    .await;
}

async fn a_log_begun_before_keying_verifies_and_counts_its_unkeyed_records(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 3).await;
    // As a version before keying wrote them, then upgraded to this one: the upgrade seals
    // where such records end.
    rewrite(&db, 1, None, Rehash::Unkeyed).await;
    store.close().await;
    as_before_0017(&db).await;
    let store = open(&db).await;
    record_some(&store, 2).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.checked, report.unkeyed),
        (None, 5, 3),
        "{report:?}"
    );
    // An unkeyed record after a keyed one is not an old record: it is a forged one.
    rewrite(&db, 5, Some(5), Rehash::Unkeyed).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, Some(5), "{report:?}");
    store.close().await;
}

/// Records committed while the check runs are not mistaken for a chain head left ahead of the
/// last record (records removed from the end).
async fn a_check_during_writes_reports_no_break(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 10).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    record_some(&store, 1).await;
                }
            })
        })
        .collect();
    for _ in 0..50 {
        let report = store.verify_audit_chain().await.expect("verify");
        assert_eq!(report.first_broken, None, "{report:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let report = store.verify_audit_chain().await.expect("verify");
    assert!(report.checked > 10, "{report:?}");
    assert_eq!(report.first_broken, None, "{report:?}");
    store.close().await;
}

async fn verify_to(store: &Store, anchor: &ChainAnchor) -> signet_store::ChainReport {
    store
        .verify_audit_chain_to(Some(anchor))
        .await
        .expect("verify")
}

/// As an intruder: removes every record after `keep` and moves the chain head back to it.
async fn cut_short(db: &TestDb, keep: i64) {
    let pool = sqlx::AnyPool::connect(db.url()).await.expect("connect");
    for sql in [
        "DELETE FROM audit_events WHERE id > $1",
        "UPDATE audit_chain_head SET last_id = $1, hash = (SELECT hash FROM audit_events WHERE id = $1) WHERE id = 1",
    ] {
        sqlx::query(sql).bind(keep).execute(&pool).await.expect(sql);
    }
    pool.close().await;
}

async fn an_anchor_shows_a_log_cut_short_with_its_head_moved_back(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 8).await;
    let report = store.verify_audit_chain().await.expect("verify");
    let anchor = report.head.expect("a head");
    assert_eq!(anchor.id, 8);
    let report = verify_to(&store, &anchor).await;
    assert_eq!(
        (report.first_broken, report.anchor_checked),
        (None, true),
        "{report:?}"
    );
    // A wrong hash for the anchor's record is a changed record.
    let wrong = ChainAnchor {
        hash: [9; 32],
        ..anchor
    };
    let report = verify_to(&store, &wrong).await;
    assert_eq!(report.first_broken, Some(8), "{report:?}");

    cut_short(&db, 4).await;
    record_some(&store, 2).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        report.first_broken, None,
        "the chain alone cannot see it: {report:?}"
    );
    let report = verify_to(&store, &anchor).await;
    assert_eq!(report.first_broken, Some(7), "{report:?}");
    // Once new records pass the anchor's id, its record is another one.
    record_some(&store, 3).await;
    let report = verify_to(&store, &anchor).await;
    assert_eq!(report.first_broken, Some(8), "{report:?}");
    store.close().await;
}

async fn anchors_deleted_by_retention_are_reported_unchecked(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 3).await;
    let early = store
        .verify_audit_chain()
        .await
        .expect("verify")
        .head
        .expect("head");
    record_some(&store, 3).await;
    let last = store
        .verify_audit_chain()
        .await
        .expect("verify")
        .head
        .expect("head");
    assert_eq!(store.prune_audit(i64::MAX, 0).await.expect("prune"), 6);
    record_some(&store, 2).await;
    // The last deleted record is the checkpoint: checked against it.
    let report = verify_to(&store, &last).await;
    assert_eq!(
        (report.first_broken, report.anchor_checked),
        (None, true),
        "{report:?}"
    );
    let report = verify_to(&store, &early).await;
    assert_eq!(
        (report.first_broken, report.anchor_checked),
        (None, false),
        "{report:?}"
    );
    let forged = ChainAnchor {
        hash: [9; 32],
        ..last
    };
    let report = verify_to(&store, &forged).await;
    assert_eq!(report.first_broken, Some(6), "{report:?}");
    store.close().await;
}

/// A checkpoint written into the database by hand (to skip a changed record, sealed with a
/// guessed MAC or none) does not get past verification.
async fn a_forged_checkpoint_is_passed_over(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 6).await;
    execute(
        &db,
        &[
            "UPDATE audit_events SET source = '192.0.2.66' WHERE id = 2",
            "INSERT INTO audit_checkpoints (last_id, hash, created_at) SELECT id, hash, 0 FROM audit_events WHERE id = 3",
        ],
    )
    .await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.checkpoint),
        (Some(2), None),
        "the forged checkpoint is passed over: {report:?}"
    );
    execute(
        &db,
        &["UPDATE audit_checkpoints SET mac = $1 WHERE last_id = 3"],
    )
    .await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, Some(2), "{report:?}");
    store.close().await;
}

/// A checkpoint row planted where retention will write its own is replaced by retention's
/// sealed one, not kept (which would leave the log unverifiable).
async fn retention_replaces_a_planted_checkpoint(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 4).await;
    execute(
        &db,
        &["INSERT INTO audit_checkpoints (last_id, hash, created_at) VALUES (4, $1, 0)"],
    )
    .await;
    assert_eq!(store.prune_audit(i64::MAX, 0).await.expect("prune"), 4);
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.checkpoint),
        (None, Some(4)),
        "{report:?}"
    );
    store.close().await;
}

/// Retention's own checkpoints, written before and after the upgrade, are followed.
async fn retention_checkpoints_are_followed_across_the_upgrade(db: TestDb) {
    let store = open(&db).await;
    record_some(&store, 4).await;
    assert_eq!(store.prune_audit(i64::MAX, 0).await.expect("prune"), 4);
    record_some(&store, 2).await;
    store.close().await;
    as_before_0017(&db).await;
    let store = open(&db).await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.checkpoint, report.checked),
        (None, Some(4), 2),
        "{report:?}"
    );
    // A record put back before the checkpoint lies outside the chain: named.
    execute(
        &db,
        &["INSERT INTO audit_events (id, ts_ms, event_type, outcome) VALUES (3, 0, 'token_request', 'success')"],
    )
    .await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, Some(3), "{report:?}");
    store.close().await;
}

/// Retention deletes a large backlog a bounded number of records per transaction, each with
/// its checkpoint; checks made while it runs report no break.
async fn retention_in_chunks_during_checks(db: TestDb) {
    let store = open(&db).await;
    let writers: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { record_some(&store, 1_400).await })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    // Retention in many small steps (as housekeeping does, minute by minute) while checks run.
    let pool = sqlx::AnyPool::connect(db.url()).await.expect("connect");
    let times: Vec<i64> = sqlx::query_scalar("SELECT ts_ms FROM audit_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("times");
    let cutoffs: Vec<i64> = times[..11_000].iter().step_by(100).copied().collect();
    let pruner = {
        let store = store.clone();
        tokio::spawn(async move {
            for cutoff in cutoffs {
                store.prune_audit(cutoff, 0).await.expect("prune");
                tokio::task::yield_now().await;
            }
        })
    };
    let mut checks = 0;
    while !pruner.is_finished() {
        let report = store.verify_audit_chain().await.expect("verify");
        assert_eq!(report.first_broken, None, "{report:?}");
        checks += 1;
    }
    pruner.await.expect("pruner");
    assert!(checks > 1, "checks ran while retention did: {checks}");
    // The rest, over 10,000 records, in more than one transaction.
    let count = "SELECT COUNT(*) FROM audit_checkpoints";
    let before: i64 = sqlx::query_scalar(count)
        .fetch_one(&pool)
        .await
        .expect("count");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(left > 10_000, "{left}");
    assert_eq!(
        store.prune_audit(i64::MAX, 0).await.expect("prune"),
        left as u64
    );
    let after: i64 = sqlx::query_scalar(count)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(after - before, 2, "{left} records, 10,000 a transaction");
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(
        (report.first_broken, report.checked),
        (None, 0),
        "{report:?}"
    );
    pool.close().await;
    store.close().await;
}

test_db::both_databases! {
    a_check_during_writes_reports_no_break,
    an_anchor_shows_a_log_cut_short_with_its_head_moved_back,
    anchors_deleted_by_retention_are_reported_unchecked,
    a_changed_record_rehashed_without_the_key_is_named,
    a_log_begun_before_keying_verifies_and_counts_its_unkeyed_records,
    a_forged_checkpoint_is_passed_over,
    retention_checkpoints_are_followed_across_the_upgrade,
    retention_replaces_a_planted_checkpoint,
    retention_in_chunks_during_checks,
}
