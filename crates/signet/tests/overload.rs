//! Load shedding: past `SIGNET_MAX_CONCURRENT_REQUESTS` in flight, requests get 503 with
//! `Retry-After` at once (OAuth error body on the OAuth endpoints, problem details elsewhere),
//! health and metrics still answer, and service resumes as soon as places are free.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// Opens a connection holding a token request in flight: the headers announce a body that
/// never comes (the server waits for it up to its body deadline).
async fn stalled_request(app: &TestApp) -> tokio::net::TcpStream {
    let address = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\n",
        )
        .await
        .expect("write");
    stream
}

async fn metrics(app: &TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text")
}

async fn in_flight(app: &TestApp) -> u64 {
    metrics(app)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("signet_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .expect("in-flight gauge")
}

#[tokio::test]
async fn past_the_limit_requests_are_shed_with_503_and_service_resumes() {
    let app = TestApp::spawn_with(&[("SIGNET_MAX_CONCURRENT_REQUESTS", "2")]).await;
    let agent = app.secret_agent().await;
    let held = vec![stalled_request(&app).await, stalled_request(&app).await];
    for _ in 0..100 {
        if in_flight(&app).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight(&app).await, 2);

    let shed = app.token(&agent, "grant_type=client_credentials").await;
    assert_eq!(shed.status(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = shed.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");

    let admin = app
        .admin(reqwest::Method::GET, "/api/v1/agents")
        .send()
        .await
        .expect("send");
    assert_eq!(admin.status(), 503);
    assert_eq!(
        admin
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    // Monitoring still sees the node.
    let health = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), 200);
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("signet_requests_shed_total 2"),
        "{metrics}"
    );

    // Places free up as soon as the stalled requests go away.
    drop(held);
    let mut served = false;
    for _ in 0..100 {
        if app
            .token(&agent, "grant_type=client_credentials")
            .await
            .status()
            == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "service resumes");
    assert_eq!(
        in_flight(&app).await,
        0,
        "the metrics request itself is not counted"
    );
}
