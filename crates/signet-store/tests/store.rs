//! The storage suite, run against both databases: a real SQLite file in a fresh directory, and a
//! fresh database on a real PostgreSQL server (`SIGNET_TEST_POSTGRES_URL`, which `scripts/test`
//! starts; without it the PostgreSQL half says so and skips, unless `SIGNET_REQUIRE_POSTGRES=1`).

mod test_db;

use signet_core::agent::NewAgent;
use signet_core::audit::{AuditEvent, AuditQuery, Outcome, event};
use signet_core::client_auth::{AgentSecret, StoredSecret};
use signet_core::crypto::MasterKey;
use signet_store::Store;
use test_db::TestDb;

async fn open(db: &TestDb) -> Store {
    Store::open(db.url()).await.expect("open store")
}

/// The audit record an admin change is stored with.
fn change() -> AuditEvent {
    AuditEvent::success("test_change").with_actor("store-test")
}

fn agent(name: &str) -> signet_core::agent::Agent {
    NewAgent {
        name: name.into(),
        scopes: Some(vec!["read".into()]),
        ..Default::default()
    }
    .into_agent(1)
    .expect("valid")
}

/// An agent with a secret, created in `store`.
async fn stored_agent(store: &Store, name: &str) -> signet_core::agent::Agent {
    let (key, _) = MasterKey::generate();
    let a = agent(name);
    store
        .create_agent(
            &a,
            Some(&StoredSecret::new(&key, &AgentSecret::generate(), 1)),
            &[],
            &[],
            change(),
        )
        .await
        .expect("create");
    a
}

async fn agents_round_trip_and_survive_reopening(db: TestDb) {
    let (key, _) = MasterKey::generate();
    let secret = AgentSecret::generate();
    let a = agent("alpha");
    {
        let store = open(&db).await;
        store
            .create_agent(
                &a,
                Some(&StoredSecret::new(&key, &secret, 1)),
                &[],
                &[],
                change(),
            )
            .await
            .expect("create");
        store.close().await;
    }
    let store = open(&db).await;
    assert_eq!(
        store.find_agent(a.agent_id.as_str()).await.expect("find"),
        Some(a.clone())
    );
    let credentials = store
        .agent_credentials(a.agent_id.as_str())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        credentials.secrets,
        vec![StoredSecret::new(&key, &secret, 1)]
    );
    assert!(
        store
            .find_agent("agt_missing")
            .await
            .expect("find")
            .is_none()
    );
}

async fn replacing_a_secret_invalidates_the_cache(db: TestDb) {
    let store = open(&db).await;
    let (key, _) = MasterKey::generate();
    let a = agent("alpha");
    store
        .create_agent(
            &a,
            Some(&StoredSecret::new(&key, &AgentSecret::generate(), 1)),
            &[],
            &[],
            change(),
        )
        .await
        .expect("create");
    let before = store
        .agent_credentials(a.agent_id.as_str())
        .await
        .expect("read")
        .expect("exists");
    store
        .replace_secret(
            a.agent_id.as_str(),
            &StoredSecret::new(&key, &AgentSecret::generate(), 2),
            2,
            0,
            change(),
        )
        .await
        .expect("replace");
    let after = store
        .agent_credentials(a.agent_id.as_str())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(before.secrets.len(), 1);
    assert_eq!(after.secrets.len(), 2);
    assert_eq!(after.secrets[0].replaced_at, Some(2));
    assert_eq!(after.secrets[1].replaced_at, None);
    assert!(
        store
            .delete_agent(a.agent_id.as_str(), change())
            .await
            .expect("delete")
    );
    assert!(
        store
            .agent_credentials(a.agent_id.as_str())
            .await
            .expect("read")
            .is_none()
    );
}

async fn listing_pages_and_searches(db: TestDb) {
    let store = open(&db).await;
    for i in 0..5 {
        store
            .create_agent(&agent(&format!("worker-{i}")), None, &[], &[], change())
            .await
            .expect("create");
    }
    store
        .create_agent(&agent("billing_100%"), None, &[], &[], change())
        .await
        .expect("create");
    let first = store.list_agents(None, None, 4).await.expect("list");
    assert_eq!(first.items.len(), 4);
    let second = store
        .list_agents(None, first.next_cursor.as_deref(), 4)
        .await
        .expect("list");
    assert_eq!(second.items.len(), 2);
    assert!(second.next_cursor.is_none());
    assert_eq!(
        store
            .list_agents(Some("WORKER"), None, 10)
            .await
            .expect("search")
            .items
            .len(),
        5
    );
    assert_eq!(
        store
            .list_agents(Some("_100%"), None, 10)
            .await
            .expect("search")
            .items
            .len(),
        1
    );
    assert_eq!(
        store
            .list_agents(Some("%"), None, 10)
            .await
            .expect("search")
            .items
            .len(),
        1
    );
}

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

async fn keys_are_stored_revoked_and_cached_and_jtis_are_recorded_once(db: TestDb) {
    use signet_core::jwk::{KeyInput, parse_keys};
    use signet_core::token::{SigningAlgorithm, SigningKey};
    let store = open(&db).await;
    let (signing, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
    let keys = parse_keys(KeyInput::Jwk(signing.public_jwk()), None, None, 1).expect("valid");
    let a = agent("jwt");
    store
        .create_agent(&a, None, &keys, &[], change())
        .await
        .expect("create");
    let id = a.agent_id.as_str();
    let cached = store
        .agent_credentials(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(cached.keys.len(), 1);
    assert_eq!(cached.keys[0].kid, signing.kid());
    let duplicate = store.add_agent_keys(id, &keys, change()).await;
    assert!(matches!(
        duplicate,
        Err(signet_store::StoreError::Conflict(_))
    ));
    assert!(
        store
            .revoke_agent_key(id, signing.kid(), 5, change())
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_agent_key(id, signing.kid(), 6, change())
            .await
            .expect("revoke twice")
    );
    let after = store
        .agent_credentials(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        after.keys[0].revoked_at,
        Some(5),
        "the cache was invalidated"
    );

    assert!(store.record_jti(id, "jti-1", 100).await.expect("record"));
    assert!(!store.record_jti(id, "jti-1", 100).await.expect("replay"));
    assert!(
        store
            .record_jti("agt_other", "jti-1", 100)
            .await
            .expect("scoped to the agent")
    );
    assert_eq!(store.purge_used_jtis(101).await.expect("purge"), 2);
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
    // On PostgreSQL the store also hears its own change announcement, which drops the entry
    // again: let that echo arrive before the lookups.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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

async fn scheduled_jobs_run_on_one_holder_at_a_time(db: TestDb) {
    let store = open(&db).await;
    let claim = |holder: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .claim_job("housekeeping", holder, now, now + 60)
                .await
                .expect("claim")
        }
    };
    assert!(claim("node-a", 100).await, "nobody held it");
    assert!(!claim("node-b", 110).await, "node-a holds it until 160");
    assert!(
        claim("node-a", 150).await,
        "the holder renews it, until 210"
    );
    assert!(!claim("node-b", 200).await);
    assert!(claim("node-b", 210).await, "expired: taken over");
    assert!(!claim("node-a", 220).await);
    assert!(
        store
            .claim_job("retention", "node-a", 220, 280)
            .await
            .expect("claim"),
        "each job has its own lease"
    );
}

async fn a_password_change_ends_the_users_other_sessions(db: TestDb) {
    use signet_core::admin_token::Role;
    use signet_core::console_user::ConsoleUser;
    let store = open(&db).await;
    for username in ["alice", "bob"] {
        let user = ConsoleUser {
            username: username.into(),
            role: Role::Admin,
            password_hash: "old-hash".into(),
            created_at: 1,
            created_by: "test".into(),
        };
        assert!(
            store
                .insert_console_user(&user, change())
                .await
                .expect("insert")
        );
    }
    let session = |n: u8| [n; 32];
    for (n, username) in [(1, "alice"), (2, "alice"), (3, "bob")] {
        store
            .insert_console_session(&session(n), username, "csrf", 10, 1000)
            .await
            .expect("session");
    }
    assert!(
        store
            .change_console_password("alice", "new-hash", &session(1), change())
            .await
            .expect("change")
    );
    let alive = |n: u8| {
        let store = store.clone();
        async move {
            store
                .console_session(&session(n), 20)
                .await
                .expect("read")
                .is_some()
        }
    };
    assert!(
        alive(1).await,
        "the session that changed the password stays"
    );
    assert!(!alive(2).await, "the user's other session ended");
    assert!(alive(3).await, "other users' sessions stay");
    let alice = store
        .console_user("alice")
        .await
        .expect("read")
        .expect("alice");
    assert_eq!(alice.password_hash, "new-hash");
    assert!(
        !store
            .change_console_password("nobody", "hash", &session(9), change())
            .await
            .expect("change"),
        "no such user"
    );
}

/// Admin changes write their audit record in their own transaction while the group-commit writer
/// appends token records: the chain stays one unbroken sequence, every change has its record,
/// and a change that did nothing wrote none.
async fn changes_commit_with_their_records_into_one_chain(db: TestDb) {
    let store = open(&db).await;
    let (key, _) = MasterKey::generate();
    let a = agent("rotating");
    store
        .create_agent(
            &a,
            Some(&StoredSecret::new(&key, &AgentSecret::generate(), 1)),
            &[],
            &[],
            change(),
        )
        .await
        .expect("create");
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
    changes_commit_with_their_records_into_one_chain,
    a_password_change_ends_the_users_other_sessions,
    scheduled_jobs_run_on_one_holder_at_a_time,
    keys_are_stored_revoked_and_cached_and_jtis_are_recorded_once,
    agents_round_trip_and_survive_reopening,
    replacing_a_secret_invalidates_the_cache,
    listing_pages_and_searches,
    concurrent_audit_records_are_all_committed,
    concurrent_uses_of_one_jti_have_exactly_one_winner,
    a_jti_and_its_audit_record_commit_together,
    agent_networks_are_noted_in_batches,
    concurrent_misses_for_one_agent_read_the_database_once,
}
