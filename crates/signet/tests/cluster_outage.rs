//! PostgreSQL restarted under load: while it is down, token requests get 503 with Retry-After
//! (never a token without its audit record) and `/readyz` says not ready (503, Retry-After), so
//! a load balancer takes the node out; once it is back the nodes recover by themselves, and
//! every token a client received has its audit record. A test binary of its own: it
//! restarts the shared test server (`SIGNET_TEST_POSTGRES_CTL`, set by `scripts/test`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::TestApp;
use serde_json::Value;

#[tokio::test]
async fn nodes_ride_out_a_database_restart_and_lose_nothing() {
    if common::postgres_database().is_some() {
        eprintln!("SKIPPED: the outage test already ran in the first pass");
        return;
    }
    let Some(url) = common::new_postgres_database() else {
        return;
    };
    let ctl = std::env::var("SIGNET_TEST_POSTGRES_CTL")
        .expect("SIGNET_TEST_POSTGRES_CTL (how to restart the test server) with the test server");
    let env = [
        ("SIGNET_DATABASE_URL", url.as_str()),
        (
            "SIGNET_MASTER_KEY",
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
        ),
        ("SIGNET_ISSUER", "http://signet.test"),
    ];
    let nodes = [
        TestApp::spawn_with(&env).await,
        TestApp::spawn_with(&env).await,
    ];
    let agent = nodes[0].secret_agent().await;
    for node in &nodes {
        node.access_token(&agent).await;
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for node in &nodes {
        for _ in 0..3 {
            let (http, url, agent, stop) = (
                node.http.clone(),
                format!("{}/oauth2/token", node.url),
                agent.clone(),
                stop.clone(),
            );
            load.push(tokio::spawn(async move {
                let mut received = Vec::new();
                let mut unavailable = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = http
                        .post(&url)
                        .basic_auth(&agent.id, Some(&agent.secret))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("grant_type=client_credentials")
                        .send()
                        .await
                        .expect("the node answers");
                    match response.status().as_u16() {
                        200 => {
                            let body: Value = response.json().await.expect("json");
                            let token = body["access_token"].as_str().expect("token");
                            received.push(
                                common::claims(token)["jti"]
                                    .as_str()
                                    .expect("jti")
                                    .to_string(),
                            );
                        }
                        503 => {
                            assert!(response.headers().contains_key("retry-after"));
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("unexpected status {other} during the outage"),
                    }
                }
                (received, unavailable)
            }));
        }
    }
    // A load balancer's readiness probe, every 10 ms: what it saw, and whether with Retry-After.
    let readiness = {
        let (http, url, stop) = (
            nodes[0].http.clone(),
            format!("{}/readyz", nodes[0].url),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = http.get(&url).send().await.expect("the node answers");
                seen.push((
                    response.status().as_u16(),
                    response.headers().contains_key("retry-after"),
                ));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Down for a few seconds (`restart` of a stopped server starts it with its old options).
    // Not blocking: the load and the probe run meanwhile.
    for (command, pause) in [("-m fast stop", 2500), ("restart", 0)] {
        let status = tokio::process::Command::new("sh")
            .args(["-c", &format!("{ctl} {command}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .expect("pg_ctl");
        assert!(status.success(), "pg_ctl {command}");
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }

    // Recovered by themselves: both nodes issue tokens again within a few seconds.
    let start = Instant::now();
    for node in &nodes {
        loop {
            let response = node.token(&agent, "grant_type=client_credentials").await;
            if response.status() == 200 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "not recovered: {}",
                response.status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut received = HashSet::new();
    let mut unavailable = 0;
    for task in load {
        let (jtis, refused) = task.await.expect("load");
        received.extend(jtis);
        unavailable += refused;
    }
    assert!(unavailable > 0, "the restart was not noticed");
    let seen = readiness.await.expect("probe");
    assert!(
        seen.iter()
            .all(|(status, _)| *status == 200 || *status == 503),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(503, true)),
        "not ready during the outage, with Retry-After: {seen:?}"
    );
    assert_eq!(seen.last().map(|s| s.0), Some(200), "ready again");
    assert!(received.len() > 50, "only {} tokens", received.len());

    // Nothing a client received is missing from the audit log.
    let audited = nodes[1].issued_jtis().await;
    let missing: Vec<_> = received.difference(&audited).collect();
    assert!(
        missing.is_empty(),
        "{} tokens without a record",
        missing.len()
    );
}
