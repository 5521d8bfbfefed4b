//! The load generator itself: it counts exactly, stops at its bounds, and reports errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use signet_bench::load::{Mode, RunArgs, drive};
use signet_bench::setup::BenchAgent;

async fn ceiling() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, signet_bench::ceiling::app()).await });
    addr
}

fn args(mode: Mode, duration: f64, requests: Option<u64>) -> RunArgs {
    RunArgs {
        url: String::new(),
        mode,
        connections: 4,
        duration,
        requests,
        warmup: 0.2,
        admin_token: None,
        agents_file: None,
        agents: 1,
        server_pid: Some(std::process::id()),
        json: false,
        allow_remote: false,
        tls_url: String::new(),
        ca_file: None,
        ignore_retry_after: false,
    }
}

fn agents() -> Arc<Vec<BenchAgent>> {
    Arc::new(vec![BenchAgent {
        agent_id: "agt_x".into(),
        secret: Some("s".into()),
        key_pkcs8: None,
        certificate: None,
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_stops_after_exactly_the_requested_count() {
    let addr = ceiling().await;
    let report = drive(
        &args(Mode::SecretBasic, 30.0, Some(300)),
        addr,
        agents(),
        None,
        None,
    )
    .await;
    assert_eq!(report.requests, 300);
    assert_eq!(report.successes, 300);
    assert!(report.per_second > 0.0);
    assert!(
        report.latency.p50_ms <= report.latency.p99_ms
            && report.latency.p99_ms <= report.latency.max_ms
    );
    assert!(
        report.server.cpu_seconds.is_some(),
        "the given PID's CPU time is reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_stops_at_the_end_of_its_duration() {
    let addr = ceiling().await;
    let started = Instant::now();
    let report = drive(
        &args(Mode::SecretBasic, 0.5, None),
        addr,
        agents(),
        None,
        None,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(report.requests > 0);
    assert!(report.seconds <= 2.0, "{}", report.seconds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_reports_errors_by_status_and_code() {
    let addr = ceiling().await;
    // The ceiling server has no introspection endpoint: every request is a 404.
    let report = drive(
        &args(Mode::Introspect, 30.0, Some(50)),
        addr,
        agents(),
        Some("t".into()),
        None,
    )
    .await;
    assert_eq!(report.requests, 50);
    assert_eq!(report.successes, 0);
    assert_eq!(report.statuses.get(&404), Some(&50));
    assert_eq!(report.errors.get("http_404"), Some(&50));
    assert_eq!(report.per_second, 0.0);
}

/// A server that sheds everything: 503, `Retry-After: 1`, an OAuth error body.
async fn shedding() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            r#"{"error":"temporarily_unavailable"}"#,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_waits_as_long_as_retry_after_asks_unless_told_not_to() {
    let addr = shedding().await;
    let mut polite = args(Mode::SecretBasic, 1.5, None);
    polite.warmup = 0.0;
    let report = drive(&polite, addr, agents(), None, None).await;
    // Four connections, each waiting a second after every answer: two requests each at most.
    assert!((4..=8).contains(&report.requests), "{}", report.requests);
    assert_eq!(report.statuses.get(&503), Some(&report.requests));
    assert_eq!(
        report.errors.get("temporarily_unavailable"),
        Some(&report.requests)
    );
    assert_eq!(
        report.latency.max_ms, 0.0,
        "latency is of successful responses"
    );
    polite.ignore_retry_after = true;
    let impatient = drive(&polite, addr, agents(), None, None).await;
    assert!(impatient.requests > 100, "{}", impatient.requests);
}

#[test]
fn only_loopback_targets_unless_allowed() {
    assert!(signet_bench::load::target("http://127.0.0.1:8080", false).is_ok());
    assert!(signet_bench::load::target("http://192.0.2.1:8080", false).is_err());
    assert!(signet_bench::load::target("https://127.0.0.1:8443", false).is_ok());
    assert!(signet_bench::load::target("https://192.0.2.1:8443", false).is_err());
    assert!(signet_bench::load::target("ftp://127.0.0.1:21", false).is_err());
}
