//! The storage suite's concurrency half, on both databases: the group-commit writer and admin
//! changes racing into one audit chain, `jti`s recorded once, network notes in batches, and
//! concurrent cache misses sharing one read.

mod test_db;

use signet_core::audit::{AuditEvent, AuditQuery, Outcome, event};
use signet_core::client_auth::{AgentSecret, StoredSecret};
use signet_core::crypto::MasterKey;
use test_db::{TestDb, change, open, stored_agent};

async fn concurrent_audit_records_are_all_committed(db: TestDb) {
    let store = open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..500 {
        let audit = store.audit().clone();
        tasks.push(tokio::spawn(async move {
            let e = AuditEvent::failure(event::TOKEN_REQUEST, "wrong_secret")
                .with_agent(Some(&format!("agt_{i}")));
            audit.record(e).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("recorded");
    }
    let all = store
        .query_audit(&AuditQuery {
            event_type: Some("token_request".into()),
            outcome: Some(Outcome::Failure),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(all.len(), 500);
    let one = store
        .query_audit(&AuditQuery {
            agent_id: Some("agt_7".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].reason.as_deref(), Some("wrong_secret"));
    let page = store
        .query_audit(&AuditQuery {
            before_id: Some(all[9].id),
            limit: 5,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page.first().map(|e| e.id), Some(all[10].id));
}

async fn concurrent_uses_of_one_jti_have_exactly_one_winner(db: TestDb) {
    let store = open(&db).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record_jti("agt_a", "same-jti", 100).await
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        if task.await.expect("join").expect("recorded") {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

/// A `jti` recorded with the request's audit record in one commit: of 40 concurrent uses (most
/// in one batch) one is new and gets the success record, every other gets the replay record,
/// and the chain holds.
async fn a_jti_and_its_audit_record_commit_together(db: TestDb) {
    let store = open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let audit = store.audit().clone();
        tasks.push(tokio::spawn(async move {
            let request = |e: AuditEvent| e.with_agent(Some("agt_a")).with_actor(&format!("r{i}"));
            audit
                .record_with_jti(
                    "agt_a",
                    "shared-jti",
                    100,
                    request(AuditEvent::success(event::TOKEN_REQUEST)),
                    request(AuditEvent::failure(event::TOKEN_REQUEST, "jti_replayed")),
                )
                .await
        }));
    }
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.expect("join").expect("recorded") {
            winners.push(format!("r{i}"));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one use is new");
    let records = store
        .query_audit(&AuditQuery {
            agent_id: Some("agt_a".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(records.len(), 40, "one record per use");
    let successes: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Success)
        .collect();
    assert_eq!(successes.len(), 1);
    assert_eq!(successes[0].actor.as_deref(), Some(winners[0].as_str()));
    assert!(
        records
            .iter()
            .filter(|r| r.outcome == Outcome::Failure)
            .all(|r| r.reason.as_deref() == Some("jti_replayed"))
    );
    assert!(
        !store
            .record_jti("agt_a", "shared-jti", 100)
            .await
            .expect("record"),
        "the jti was committed"
    );
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, None, "{report:?}");
}

/// Network notes are written many to a transaction; within one, notes of an agent are taken
/// in order (a network noted earlier in the batch is no longer new), and a note for an agent
/// that does not exist writes nothing.
async fn agent_networks_are_noted_in_batches(db: TestDb) {
    let store = open(&db).await;
    let a = stored_agent(&store, "travelling").await;
    let id = a.agent_id.as_str();
    let first = store
        .note_agent_networks(&[(id, "192.0.2.0/24", 100, 0)])
        .await
        .expect("note");
    assert_eq!(
        first,
        vec![false],
        "an agent's first network is not an anomaly"
    );
    let batch = store
        .note_agent_networks(&[
            (id, "198.51.100.0/24", 200, 0),
            (id, "198.51.100.0/24", 201, 0),
            (id, "192.0.2.0/24", 202, 150),
            ("agt_0000000000000000000000", "203.0.113.0/24", 203, 0),
        ])
        .await
        .expect("note");
    assert_eq!(batch, vec![true, false, true, false]);
    let networks = store.agent_networks(id).await.expect("networks");
    assert_eq!(networks.len(), 2, "{networks:?}");
    assert!(
        store
            .agent_networks("agt_0000000000000000000000")
            .await
            .expect("networks")
            .is_empty()
    );
}

/// Concurrent lookups of an agent that is not cached (a cold start, or just after a change)
/// read the database once: the others wait for that read and find the agent cached.
async fn concurrent_misses_for_one_agent_read_the_database_once(db: TestDb) {
    let store = open(&db).await;
    let a = stored_agent(&store, "popular").await;
    let before = store.agent_cache_misses();
    let lookups: Vec<_> = (0..32)
        .map(|_| {
            let (store, id) = (store.clone(), a.agent_id.to_string());
            tokio::spawn(async move { store.agent_credentials(&id).await })
        })
        .collect();
    for lookup in lookups {
        let found = lookup.await.expect("join").expect("lookup");
        assert_eq!(found.expect("known").agent.agent_id, a.agent_id);
    }
    assert_eq!(
        store.agent_cache_misses() - before,
        1,
        "one read for 32 lookups"
    );
}

/// Admin changes write their audit record in their own transaction while the group-commit writer
/// appends token records: the chain stays one unbroken sequence, every change has its record,
/// and a change that did nothing wrote none.
async fn changes_commit_with_their_records_into_one_chain(db: TestDb) {
    let store = open(&db).await;
    let a = stored_agent(&store, "rotating").await;
    // For the secrets that replace the first (any master key will do for the store).
    let (key, _) = MasterKey::generate();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let audit = store.audit().clone();
        tasks.push(tokio::spawn(async move {
            let e = AuditEvent::success(event::TOKEN_REQUEST).with_agent(Some(&format!("agt_{i}")));
            audit.record(e).await
        }));
    }
    for i in 0..20 {
        let (store, id) = (store.clone(), a.agent_id.to_string());
        let secret = StoredSecret::new(&key, &AgentSecret::generate(), 2 + i);
        tasks.push(tokio::spawn(async move {
            store.replace_secret(&id, &secret, 2 + i, 0, change()).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("written");
    }
    assert!(
        !store
            .delete_agent("agt_0000000000000000000000", change())
            .await
            .expect("delete"),
        "nothing to delete"
    );
    let report = store.verify_audit_chain().await.expect("verify");
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(report.checked, 1 + 300 + 20);
    let changes = store
        .query_audit(&AuditQuery {
            event_type: Some("test_change".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(
        changes.len(),
        21,
        "the creation and each replacement, nothing for the no-op"
    );
}

test_db::both_databases! {
    concurrent_audit_records_are_all_committed,
    concurrent_uses_of_one_jti_have_exactly_one_winner,
    a_jti_and_its_audit_record_commit_together,
    agent_networks_are_noted_in_batches,
    concurrent_misses_for_one_agent_read_the_database_once,
    changes_commit_with_their_records_into_one_chain,
}

/// On PostgreSQL a node hears its own change announcements too: it applies each change once, when
/// it makes it (not again when the echo arrives: a second cache miss, a second reload), and every
/// other node applies it once.
#[tokio::test]
async fn a_change_is_applied_once_on_its_node_and_once_on_each_other_node() {
    use signet_store::Change;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (here, there) = (open(&db).await, open(&db).await);
    let (mut heard_here, mut heard_there) = (here.subscribe(), there.subscribe());
    // Both listeners are connected once each node has heard a change of the other. A change
    // announced before a listener connected is never heard (the node catches up by resyncing
    // instead), so the warm-up changes until one is heard.
    for (from, to, heard, name) in [
        (&here, "the other node", &mut heard_there, "warm-up-1"),
        (&there, "this node", &mut heard_here, "warm-up-2"),
    ] {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        'heard: for attempt in 0.. {
            let agent = stored_agent(from, &format!("{name}-{attempt}")).await;
            let warm_up = Change::Agent(agent.agent_id.to_string());
            for _ in 0..25 {
                if std::iter::from_fn(|| heard.try_recv().ok()).any(|c| c == warm_up) {
                    break 'heard;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{to} never heard a change"
            );
        }
    }
    let a = stored_agent(&here, "changed").await;
    // Cached here after the change, as a request would have it.
    here.agent_credentials(a.agent_id.as_str())
        .await
        .expect("lookup");
    let misses = here.agent_cache_misses();
    // Long enough for the announcement to reach both nodes (the promise is one second).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let count = |heard: &mut tokio::sync::broadcast::Receiver<Change>| {
        std::iter::from_fn(|| heard.try_recv().ok())
            .filter(|c| *c == Change::Agent(a.agent_id.to_string()))
            .count()
    };
    assert_eq!(count(&mut heard_here), 1, "applied here once");
    assert_eq!(count(&mut heard_there), 1, "applied over there once");
    here.agent_credentials(a.agent_id.as_str())
        .await
        .expect("lookup");
    assert_eq!(here.agent_cache_misses(), misses, "still cached here");
}

/// The writer never checkpoints inside a commit; a thread beside it keeps the WAL short: twenty
/// rounds of 200 records (a few megabytes of WAL frames in all) leave a WAL file of one round's
/// size, because each round starts after a checkpoint and SQLite then reuses the file.
#[tokio::test]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let db = TestDb::sqlite();
    let store = open(&db).await;
    let wal = format!("{}-wal", db.url().trim_start_matches("sqlite://"));
    for _ in 0..20 {
        let writes: Vec<_> = (0..200)
            .map(|i| {
                let audit = store.audit().clone();
                tokio::spawn(async move {
                    let e = AuditEvent::failure(event::TOKEN_REQUEST, "wrong_secret")
                        .with_agent(Some(&format!("agt_{i}")));
                    audit.record(e).await
                })
            })
            .collect();
        for write in writes {
            write.await.expect("join").expect("recorded");
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let size = std::fs::metadata(&wal).expect("the WAL file").len();
    assert!(size < 1_000_000, "the WAL grew to {size} bytes");
}

/// Under load without a pause the checkpointer never copies the whole WAL (the writer commits
/// during each pass), so the WAL must still start over: it used to grow by ~2 KB a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_starts_over_under_continuous_load() {
    const WRITERS: usize = 32;
    const RECORDS: usize = 1_000;
    let db = TestDb::sqlite();
    let store = open(&db).await;
    let wal = format!("{}-wal", db.url().trim_start_matches("sqlite://"));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (done, wal) = (done.clone(), wal.clone());
        tokio::spawn(async move {
            let mut largest = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            largest
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let audit = store.audit().clone();
            tokio::spawn(async move {
                for i in 0..RECORDS {
                    let e = AuditEvent::failure(event::TOKEN_REQUEST, "wrong_secret")
                        .with_agent(Some(&format!("agt_{w}_{i}")));
                    audit.record(e).await.expect("recorded");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("join");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let largest = sampler.await.expect("join");
    let chain = store.verify_audit_chain().await.expect("verify");
    assert_eq!(chain.checked, (WRITERS * RECORDS) as u64);
    assert_eq!(chain.first_broken, None);
    assert!(
        largest < 12 << 20,
        "the WAL reached {largest} bytes for {} records",
        WRITERS * RECORDS
    );
}
