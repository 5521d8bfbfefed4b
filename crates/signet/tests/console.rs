//! The Signet Console in a real browser: scripts in `tests/browser/` drive Debian's headless
//! Chromium with playwright-core against a real server. `console.mjs`: sign in, register an
//! agent, read its one-time secret, regenerate it behind the documented warning (at once, then
//! with a grace period), find the old secret's failure in the Activity tab, the audit log's tamper check with its head as the
//! anchor (a malformed anchor refused), a form without its CSRF token refused, add an auditor
//! who sees no Regenerate button and whose forged POST is refused, sign out.
//! `credentials.mjs`: keys (JWK, PEM, RSA pinned to PS384 with an expiry) of a Private Key JWT
//! agent used and revoked, its jwks_uri refused, saved and removed, a
//! certificate issued from a CSR used over mutual TLS and revoked, a self-signed certificate
//! registered and removed, signing-key rotation, trusted CAs, a named admin token created and
//! revoked, and a password change. `scripts/test` installs Chromium and the Node package and
//! sets `SIGNET_REQUIRE_BROWSER=1`; without them a plain `cargo test` says it skipped.
//! Screenshots are kept in `target/console-screenshots/`.

mod common;

use std::path::{Path, PathBuf};

use common::TestApp;

const PASSWORD: &str = "console-test-password-1";

/// Chromium and the browser script's packages, if installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let installed = dir.join("node_modules/playwright-core").exists();
    match chromium {
        Some(chromium) if installed => Some((chromium, dir)),
        _ => {
            assert!(
                std::env::var("SIGNET_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "SIGNET_REQUIRE_BROWSER=1 but Chromium or playwright-core is missing"
            );
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIPPED: console browser tests need chromium and `npm ci` in crates/signet/tests/browser (scripts/test installs both)\n",
            );
            None
        }
    }
}

/// Runs `script` from `tests/browser/` against `app`, with `env` on top of the usual variables;
/// screenshots go to `target/console-screenshots/<database>/`. Returns that directory.
async fn run_browser(app: &TestApp, script: &str, env: &[(&str, &str)]) -> Option<PathBuf> {
    let (chromium, dir) = browser()?;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join(if common::postgres_database().is_some() {
            "postgres"
        } else {
            "sqlite"
        });
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("CONSOLE_URL", &app.url)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().await.expect("run node");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(shots)
}

#[tokio::test]
async fn an_operator_signs_in_registers_an_agent_and_regenerates_its_secret() {
    let app = TestApp::spawn_with(&[("SIGNET_ADMIN_PASSWORD", PASSWORD)]).await;
    let Some(shots) = run_browser(&app, "console.mjs", &[]).await else {
        return;
    };
    assert!(shots.join("04-secret-regenerated.png").exists());
    // The sign-in posted from another site is on record, with the browser's address.
    let refused = app.audit("event_type=console&outcome=failure").await;
    assert!(
        refused
            .iter()
            .any(|r| r["reason"] == "cross_site_request" && r["source"] == "127.0.0.1"),
        "{refused:?}"
    );
}

/// A new P-256 key and a CSR for it, as `openssl req -new` would make.
fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let params = rcgen::CertificateParams::new(vec!["agent.example".into()]).expect("params");
    let csr = params.serialize_request(&key).expect("csr");
    (key.serialize_pem(), csr.pem().expect("pem"))
}

#[tokio::test]
async fn an_operator_manages_keys_certificates_tokens_and_settings() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_ADMIN_PASSWORD", PASSWORD),
        ("SIGNET_JWKS_URI_ALLOWED_HOSTS", "keys.example.test"),
    ])
    .await;
    let (csr_key, csr) = key_and_csr();
    let self_signed = common::pki::self_signed(&common::pki::Leaf::named("self-signed-agent"));
    let server_ca = app.data_dir.join("tls/dev-ca.pem");
    let tls_url = app.tls_url.clone().expect("TLS listener");
    let env = [
        ("TLS_URL", tls_url.as_str()),
        ("SERVER_CA", server_ca.to_str().expect("path")),
        ("CSR", csr.as_str()),
        ("CSR_KEY", csr_key.as_str()),
        ("SELF_SIGNED_CERT", self_signed.pem.as_str()),
        ("SELF_SIGNED_KEY", self_signed.key_pem.as_str()),
    ];
    let Some(shots) = run_browser(&app, "credentials.mjs", &env).await else {
        return;
    };
    assert!(shots.join("12-certificate-issued.png").exists());
    // What the browser did is in the audit log with the console user as the actor.
    let records = app.audit("limit=1000").await;
    for event_type in [
        "agent_key_added",
        "agent_key_revoked",
        "certificate_issued",
        "certificate_revoked",
        "agent_certificate_removed",
        "signing_key_rotated",
        "admin_token_created",
        "admin_token_revoked",
    ] {
        assert!(
            records
                .iter()
                .any(|r| r["event_type"] == event_type && r["actor"] == "console:admin"),
            "no {event_type} by console:admin"
        );
    }
}
