//! The Signet Console in a real browser: `tests/browser/console.mjs` drives Debian's headless
//! Chromium with playwright-core against a real server (sign in, register an agent, read its
//! one-time secret, regenerate it behind the documented warning, find the old secret's failure
//! in the Activity tab, a form without its CSRF token refused, add an auditor who sees no
//! Regenerate button and whose forged POST is refused, sign out). `scripts/test`
//! installs Chromium and the Node package and sets `SIGNET_REQUIRE_BROWSER=1`; without them a
//! plain `cargo test` says it skipped. Screenshots are kept in `target/console-screenshots/`.

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

#[tokio::test]
async fn an_operator_signs_in_registers_an_agent_and_regenerates_its_secret() {
    let Some((chromium, dir)) = browser() else {
        return;
    };
    let app = TestApp::spawn_with(&[("SIGNET_ADMIN_PASSWORD", PASSWORD)]).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join(if common::postgres_database().is_some() {
            "postgres"
        } else {
            "sqlite"
        });
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let output = tokio::process::Command::new("node")
        .arg(dir.join("console.mjs"))
        .current_dir(&dir)
        .env("CONSOLE_URL", &app.url)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("run node");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(shots.join("04-secret-regenerated.png").exists());
}
