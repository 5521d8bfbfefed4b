//! TLS to PostgreSQL: with `sslmode=verify-full` and the database's CA, Signet connects (pool,
//! audit writer and change listener alike) and serves; with a CA that did not sign the
//! database's certificate it refuses to start, says why, and never shows the password.
//! Needs the test server of `scripts/test` (TLS on, `SIGNET_TEST_POSTGRES_CA`).

mod common;

use common::{TestApp, signet_bin};

#[tokio::test]
async fn signet_talks_to_postgresql_over_verified_tls_only() {
    if common::postgres_database().is_some() {
        eprintln!("SKIPPED: the TLS test already ran in the first pass");
        return;
    }
    let Some(url) = common::new_postgres_database() else {
        return;
    };
    let ca = std::env::var("SIGNET_TEST_POSTGRES_CA")
        .expect("SIGNET_TEST_POSTGRES_CA with the test server (scripts/test)");
    // The test server trusts local connections, so the password is never checked: it is here
    // to show that it stays out of messages.
    let with_password = url.replacen("postgres@", "postgres:hunter2-secret@", 1);

    let verified = format!("{with_password}?sslmode=verify-full&sslrootcert={ca}");
    let app = TestApp::spawn_with(&[("SIGNET_DATABASE_URL", verified.as_str())]).await;
    let agent = app.secret_agent().await;
    app.access_token(&agent).await;
    assert_eq!(app.audit(&format!("agent_id={}", agent.id)).await.len(), 2);

    // Another CA: the database's certificate does not verify, and Signet says so.
    let dir = tempfile::tempdir().expect("tmp");
    let other_ca = dir.path().join("other-ca.pem");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    std::fs::write(&other_ca, params.self_signed(&key).expect("ca").pem()).expect("write");
    let unverified = format!(
        "{with_password}?sslmode=verify-full&sslrootcert={}",
        other_ca.display()
    );
    let output = tokio::process::Command::new(signet_bin())
        .arg("migrate")
        .env_clear()
        .env("SIGNET_DATA_DIR", dir.path().join("data"))
        .env("SIGNET_DATABASE_URL", &unverified)
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(stderr.contains("postgres:***@127.0.0.1"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
