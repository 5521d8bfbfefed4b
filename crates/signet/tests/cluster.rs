//! Three Signet nodes on one PostgreSQL database, as behind a load balancer: a change made on
//! one node takes effect on the others within a second; an assertion's `jti` is accepted once
//! across the cluster; a revocation, a signing-key rotation and a lost node are seen everywhere.
//! Needs `SIGNET_TEST_POSTGRES_URL` (started by `scripts/test`).

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::jwt::{AgentKey, add_key, claims_for, sign, token_request};
use common::{TestAgent, TestApp};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

/// The same master key on every node (in production: from a secrets manager).
const MASTER_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

/// `n` nodes on one fresh database, sharing the master key, the admin token and the issuer (the
/// load balancer's URL). `None` without a PostgreSQL server (the test then says it skipped).
async fn cluster(n: usize) -> Option<Vec<TestApp>> {
    cluster_with(n, &[]).await
}

async fn cluster_with(n: usize, extra: &[(&str, &str)]) -> Option<Vec<TestApp>> {
    // The PostgreSQL pass of `scripts/test` runs every test again; this one needs no second run.
    if common::postgres_database().is_some() {
        eprintln!("SKIPPED: the cluster tests already ran in the first pass");
        return None;
    }
    let url = common::new_postgres_database()?;
    let mut env = vec![
        ("SIGNET_DATABASE_URL", url.as_str()),
        ("SIGNET_MASTER_KEY", MASTER_KEY),
        ("SIGNET_ISSUER", "http://signet.test"),
    ];
    env.extend_from_slice(extra);
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(TestApp::spawn_with(&env).await);
    }
    Some(nodes)
}

/// Polls `check` until it holds, for at most one second (the cluster's promise).
async fn within_a_second<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "not within a second: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn token_status(node: &TestApp, agent: &TestAgent) -> u16 {
    node.token(agent, "grant_type=client_credentials")
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_change_on_one_node_takes_effect_on_every_node_within_a_second() {
    let Some(nodes) = cluster(3).await else {
        return;
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let old = a.secret_agent().await;
    // Every node knows the agent created on A, and caches it.
    for node in &nodes {
        assert_eq!(token_status(node, &old).await, 200);
    }

    // Regenerated on A: the old secret fails on B and C, the new one works there.
    let response = a
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/secret/regenerate", old.id),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let new = TestAgent {
        id: old.id.clone(),
        secret: body["agent_secret"].as_str().expect("secret").to_string(),
    };
    for node in [b, c] {
        within_a_second("the old secret refused", || async {
            token_status(node, &old).await == 401
        })
        .await;
        assert_eq!(token_status(node, &new).await, 200);
    }

    // Disabled on B: refused on A and C.
    b.set_status(&new.id, "disabled").await;
    for node in [a, c] {
        within_a_second("a disabled agent refused", || async {
            token_status(node, &new).await == 401
        })
        .await;
    }
    c.set_status(&new.id, "active").await;
    within_a_second("an enabled agent served", || async {
        token_status(a, &new).await == 200
    })
    .await;

    // A token revoked on A is inactive at introspection on C (and was active before).
    let token = b.access_token(&new).await;
    assert_eq!(c.introspect(&token).await["active"], true);
    let response = a
        .post_form(
            "/oauth2/revoke",
            Some((&new.id, &new.secret)),
            &format!("token={token}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(c.introspect(&token).await["active"], false);
}

#[tokio::test]
async fn an_assertion_is_accepted_once_across_the_cluster() {
    let Some(nodes) = cluster(3).await else {
        return;
    };
    let key = AgentKey::new(Algorithm::ES256);
    let agent = nodes[0]
        .create_agent(
            json!({ "name": "jwt-agent", "token_endpoint_auth_method": "private_key_jwt" }),
        )
        .await;
    let agent_id = agent["agent_id"].as_str().expect("id").to_string();
    let kid = add_key(&nodes[0], &agent_id, &key).await;

    // One after another: the first node accepts, the others see the replay.
    let assertion = sign(&key, &kid, &claims_for(&nodes[0], &agent_id));
    let mut statuses = Vec::new();
    for node in &nodes {
        statuses.push(
            token_request(node, Some(&agent_id), &assertion)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 401, 401]);
    assert_eq!(
        nodes[2].last_token_reason(&agent_id).await.as_deref(),
        Some("jti_replayed")
    );

    // At the same moment on two nodes, many times over: exactly one wins each race.
    for _ in 0..20 {
        let assertion = sign(&key, &kid, &claims_for(&nodes[0], &agent_id));
        let (first, second) = tokio::join!(
            token_request(&nodes[1], Some(&agent_id), &assertion),
            token_request(&nodes[2], Some(&agent_id), &assertion),
        );
        let mut pair = [first.status().as_u16(), second.status().as_u16()];
        pair.sort_unstable();
        assert_eq!(pair, [200, 401]);
    }
}

#[tokio::test]
async fn a_signing_key_rotated_on_one_node_is_served_by_the_others() {
    let Some(nodes) = cluster(2).await else {
        return;
    };
    let jwks_kids = |node: &TestApp| {
        let request = node.http.get(format!("{}/oauth2/jwks", node.url));
        async move {
            let jwks: Value = request
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k["kid"].as_str().expect("kid").to_string())
                .collect::<Vec<_>>()
        }
    };
    // Both nodes serve the one key the first node created.
    assert_eq!(jwks_kids(&nodes[0]).await, jwks_kids(&nodes[1]).await);
    let response = nodes[0]
        .admin(reqwest::Method::POST, "/api/v1/signing-keys/rotate")
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let rotation: Value = response.json().await.expect("json");
    let next = rotation["kid"].as_str().expect("kid").to_string();
    within_a_second("the next key published by the other node", || async {
        jwks_kids(&nodes[1]).await.contains(&next)
    })
    .await;
    // Activated on the second node: tokens from the first are signed with it.
    let response = nodes[1]
        .admin(reqwest::Method::POST, "/api/v1/signing-keys/rotate")
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let agent = nodes[1].secret_agent().await;
    within_a_second("tokens signed with the activated key", || async {
        let token = nodes[0].access_token(&agent).await;
        let header: Value = serde_json::from_slice(
            &signet_core::encoding::b64url_decode(token.split('.').next().expect("header"))
                .expect("base64"),
        )
        .expect("json");
        header["kid"] == next.as_str()
    })
    .await;
}

#[tokio::test]
async fn the_others_keep_serving_when_a_node_is_killed_under_load() {
    let Some(mut nodes) = cluster(3).await else {
        return;
    };
    let agent = nodes[0].secret_agent().await;
    let survivors = nodes.split_off(1);
    let mut killed = nodes.pop().expect("node A");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, node) in survivors.iter().enumerate() {
        for _ in 0..4 {
            let http = node.http.clone();
            let url = format!("{}/oauth2/token", node.url);
            let agent = agent.clone();
            let stop = stop.clone();
            load.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = http
                        .post(&url)
                        .basic_auth(&agent.id, Some(&agent.secret))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("grant_type=client_credentials")
                        .send()
                        .await;
                    statuses.push(response.map(|r| r.status().as_u16()).unwrap_or(0));
                }
                (i, statuses)
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = killed.pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = 0;
    for task in load {
        let (node, statuses) = task.await.expect("load");
        assert!(
            statuses.iter().all(|s| *s == 200),
            "node {node} answered {statuses:?}"
        );
        served += statuses.len();
    }
    assert!(served > 20, "only {served} requests served");
    let _ = killed.stop().await;
}

#[tokio::test]
async fn scheduled_jobs_run_on_one_node_and_move_when_it_stops() {
    let Some(mut nodes) = cluster_with(2, &[("SIGNET_HOUSEKEEPING_SECONDS", "1")]).await else {
        return;
    };
    let url = nodes[0].database_url();
    // The lease holder is "host:pid:start"; the pid says which node.
    let holder_pid = || {
        let holder = common::psql_query(
            &url,
            "SELECT holder FROM job_leases WHERE job = 'housekeeping'",
        );
        holder.split(':').nth(1).and_then(|p| p.parse::<u32>().ok())
    };
    let start = Instant::now();
    let first = loop {
        if let Some(pid) = holder_pid() {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "nobody took the lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pids: Vec<u32> = nodes.iter().map(TestApp::pid).collect();
    assert!(pids.contains(&first), "{first} is not a node: {pids:?}");
    // Several periods later the same node still runs the jobs: the other never ran them.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(holder_pid(), Some(first));

    // The holder stops: the other node takes over once the lease (two periods and a second)
    // has expired.
    let index = pids.iter().position(|p| *p == first).expect("holder");
    let mut stopped = nodes.remove(index);
    std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .expect("kill");
    let other = nodes[0].pid();
    let start = Instant::now();
    while holder_pid() != Some(other) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lease did not move to {other}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stopped.stop().await;
}

/// Locks are kept per node; an operator's lift on one node lifts the lock on every node, also
/// when the node asked does not hold it.
#[tokio::test]
async fn a_lock_lifted_on_one_node_is_lifted_on_every_node() {
    let Some(nodes) = cluster_with(2, &[("SIGNET_LOCKOUT_THRESHOLD", "3")]).await else {
        return;
    };
    let agent = nodes[0].secret_agent().await;
    let wrong = TestAgent {
        id: agent.id.clone(),
        secret: signet_core::client_auth::AgentSecret::generate()
            .expose()
            .to_string(),
    };
    // Locked on the second node only (the agent and the address).
    for _ in 0..3 {
        assert_eq!(token_status(&nodes[1], &wrong).await, 401);
    }
    assert_eq!(token_status(&nodes[1], &agent).await, 429);
    assert_eq!(token_status(&nodes[0], &agent).await, 200);
    let locks = nodes[1].get_json("/api/v1/lockouts").await;
    assert_eq!(locks.as_array().map(Vec::len), Some(2), "{locks}");
    // Lifted through the first node, which holds neither lock.
    for (kind, key) in [("agent", agent.id.as_str()), ("source", "127.0.0.1")] {
        assert_eq!(nodes[0].lift_lock(kind, key).await, 204);
    }
    within_a_second("the second node lifts its locks", || async {
        token_status(&nodes[1], &agent).await == 200
    })
    .await;
    let locks = nodes[1].get_json("/api/v1/lockouts").await;
    assert_eq!(locks, json!([]));
    let lifted = nodes[0].audit("event_type=lockout_lifted").await;
    assert_eq!(lifted.len(), 2, "{lifted:?}");
}
