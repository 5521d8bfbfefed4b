//! A short run of each load generator mode against the real server, so that `signet-bench`
//! keeps working (the figures themselves are measured by hand: docs/benchmarks.md).

mod common;

use std::sync::Arc;

use common::{ADMIN_TOKEN, TestApp};
use signet_bench::load::{Mode, RunArgs, drive, target};
use signet_bench::setup;

async fn smoke(mode: Mode) {
    let app = TestApp::spawn().await;
    let addr = target(&app.url, false).expect("loopback");
    let agents = setup::create_agents(addr, ADMIN_TOKEN, 2, mode.agent_kind())
        .await
        .expect("agents");
    let token = match mode {
        Mode::Introspect => Some(setup::access_token(addr, &agents[0]).await.expect("token")),
        _ => None,
    };
    let args = RunArgs {
        url: app.url.clone(),
        mode,
        connections: 4,
        duration: 60.0,
        requests: Some(200),
        warmup: 0.1,
        admin_token: None,
        agents_file: None,
        agents: 2,
        server_pid: Some(app.pid()),
        json: false,
        allow_remote: false,
        tls_url: app.tls_url.clone().expect("tls"),
        ca_file: Some(app.data_dir.join("tls/dev-ca.pem")),
        ignore_retry_after: false,
    };
    let (addr, roots) = if mode.is_mtls() {
        (
            target(&args.tls_url, false).expect("loopback"),
            Some(Arc::new(
                setup::root_store(args.ca_file.as_deref().expect("ca")).expect("roots"),
            )),
        )
    } else {
        (addr, None)
    };
    let report = drive(&args, addr, Arc::new(agents), token, roots).await;
    assert_eq!(report.requests, 200, "{mode:?}");
    assert_eq!(report.successes, 200, "{mode:?}: {:?}", report.errors);
    assert!(report.server.cpu_seconds.is_some());
    assert!(report.server.peak_rss_mb.is_some_and(|mb| mb > 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_basic() {
    smoke(Mode::SecretBasic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_post() {
    smoke(Mode::SecretPost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt() {
    smoke(Mode::PrivateKeyJwt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspect() {
    smoke(Mode::Introspect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls() {
    smoke(Mode::Mtls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_new_connection() {
    smoke(Mode::MtlsNewConnection).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth() {
    smoke(Mode::TlsClientAuth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth_new_connection() {
    smoke(Mode::TlsClientAuthNewConnection).await;
}
