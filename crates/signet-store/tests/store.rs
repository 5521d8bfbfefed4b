//! The storage suite, run against both databases: a real SQLite file in a fresh directory, and a
//! fresh database on a real PostgreSQL server (`SIGNET_TEST_POSTGRES_URL`, which `scripts/test`
//! starts; without it the PostgreSQL half says so and skips, unless `SIGNET_REQUIRE_POSTGRES=1`).

mod test_db;

use signet_core::client_auth::{AgentSecret, StoredSecret};
use signet_core::crypto::MasterKey;
use test_db::{TestDb, agent, change, open, stored_agent};

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
    let a = stored_agent(&store, "alpha").await;
    // For the secrets that replace the first (any master key will do for the store).
    let (key, _) = MasterKey::generate();
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

/// An agent revoking its own keys keeps one: two revocations at once of its last two active
/// keys cannot both pass (checked as the key is revoked, not before).
async fn an_agent_revoking_its_own_keys_at_once_keeps_one(db: TestDb) {
    use signet_core::jwk::{KeyInput, parse_keys};
    use signet_core::token::{SigningAlgorithm, SigningKey};
    let store = open(&db).await;
    let (first, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
    let (second, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
    let mut keys = parse_keys(KeyInput::Jwk(first.public_jwk()), None, None, 1).expect("valid");
    keys.extend(parse_keys(KeyInput::Jwk(second.public_jwk()), None, None, 1).expect("valid"));
    let a = agent("two-keys");
    store
        .create_agent(&a, None, &keys, &[], change())
        .await
        .expect("create");
    let id = a.agent_id.as_str();
    let (one, two) = tokio::join!(
        store.revoke_agent_key_keeping_one(id, first.kid(), 10, change()),
        store.revoke_agent_key_keeping_one(id, second.kid(), 10, change()),
    );
    let revoked = [one.expect("revoke"), two.expect("revoke")];
    assert_eq!(revoked.iter().filter(|r| **r).count(), 1, "{revoked:?}");
    let active: Vec<_> = store
        .agent_keys(id)
        .await
        .expect("read")
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .collect();
    assert_eq!(active.len(), 1);
    // The last one stays, asked alone too.
    assert!(
        !store
            .revoke_agent_key_keeping_one(id, &active[0].kid, 20, change())
            .await
            .expect("revoke")
    );
}

/// Two changes of one agent at the same moment (an operator disables it while another renames
/// it): each reads the agent inside its own write transaction, so both are kept.
async fn concurrent_changes_to_one_agent_are_both_kept(db: TestDb) {
    use signet_core::agent::{Agent, AgentStatus};
    use signet_store::StoreError;
    let store = open(&db).await;
    let a = stored_agent(&store, "racy").await;
    let id = a.agent_id.as_str();
    let disable = store.modify_agent(id, |agent: &Agent| {
        let disabled = Agent {
            status: AgentStatus::Disabled,
            ..agent.clone()
        };
        Ok::<_, StoreError>(Some((disabled, change())))
    });
    let rename = store.modify_agent(id, |agent: &Agent| {
        let renamed = Agent {
            name: "renamed".into(),
            ..agent.clone()
        };
        Ok::<_, StoreError>(Some((renamed, change())))
    });
    let (disabled, renamed) = tokio::join!(disable, rename);
    assert!(disabled.expect("disable") && renamed.expect("rename"));
    let after = store.find_agent(id).await.expect("read").expect("exists");
    assert_eq!(
        (after.status, after.name.as_str()),
        (AgentStatus::Disabled, "renamed")
    );
    let cached = store
        .agent_credentials(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        cached.agent.status,
        AgentStatus::Disabled,
        "the cache follows"
    );
    let missing = store
        .modify_agent("agt_0000000000000000000000", |_: &Agent| {
            Ok::<_, StoreError>(None)
        })
        .await
        .expect("read");
    assert!(!missing, "no such agent");
}

test_db::both_databases! {
    concurrent_changes_to_one_agent_are_both_kept,
    an_agent_revoking_its_own_keys_at_once_keeps_one,
    a_password_change_ends_the_users_other_sessions,
    scheduled_jobs_run_on_one_holder_at_a_time,
    keys_are_stored_revoked_and_cached_and_jtis_are_recorded_once,
    agents_round_trip_and_survive_reopening,
    replacing_a_secret_invalidates_the_cache,
    listing_pages_and_searches,
}
