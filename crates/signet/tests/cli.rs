//! The CLI against a spawned server: agent management and `signet token`, with exit codes.

mod common;

use common::{ADMIN_TOKEN, TestApp, signet_bin};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn signet(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(signet_bin())
        .args(args)
        .env_clear()
        .env("SIGNET_URL", &app.url)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run signet");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn cli_round_trip() {
    let app = TestApp::spawn().await;
    let admin = [("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)];

    let created = signet(
        &app,
        &[
            "agent", "create", "--name", "cli-bot", "--scope", "read", "--json",
        ],
        &admin,
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let agent: Value = serde_json::from_str(&created.stdout).expect("json");
    let id = agent["agent_id"].as_str().expect("id").to_string();
    let secret = agent["agent_secret"].as_str().expect("secret").to_string();

    let human = signet(&app, &["agent", "create", "--name", "second"], &admin).await;
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("SIGNET_AGENT_ID=agt_"));
    assert!(human.stdout.contains("shown only this once"));
    let printed = human
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("SIGNET_AGENT_SECRET="))
        .expect("the secret");
    assert_eq!(
        human.stdout.matches(printed).count(),
        1,
        "printed once: {}",
        human.stdout
    );

    let list = signet(&app, &["agent", "list"], &admin).await;
    assert_eq!(list.code, 0);
    assert!(list.stdout.contains(&id) && list.stdout.contains("cli-bot"));
    let show = signet(&app, &["agent", "show", &id], &admin).await;
    assert_eq!(show.code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&show.stdout).expect("json")["name"],
        "cli-bot"
    );

    let agent_env = [
        ("SIGNET_AGENT_ID", id.as_str()),
        ("SIGNET_AGENT_SECRET", secret.as_str()),
    ];
    let token = signet(&app, &["token"], &agent_env).await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    assert_eq!(token.stdout.trim().split('.').count(), 3);
    let claims = signet(&app, &["token", "--claims"], &agent_env).await;
    let claims: Value = serde_json::from_str(&claims.stdout).expect("claims json");
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["scope"], "read");
    let refused = signet(&app, &["token", "--scope", "admin"], &agent_env).await;
    assert_eq!(
        refused.code, 6,
        "invalid_scope is a refusal: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("invalid_scope"));

    // The secret can also come from a file.
    let secret_file = app.data_dir.join("agent-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("write");
    let from_file = signet(
        &app,
        &["token"],
        &[
            ("SIGNET_AGENT_ID", &id),
            (
                "SIGNET_AGENT_SECRET_FILE",
                secret_file.to_str().expect("utf8"),
            ),
        ],
    )
    .await;
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);

    let regenerated = signet(&app, &["agent", "regenerate-secret", &id, "--json"], &admin).await;
    assert_eq!(regenerated.code, 0);
    let new_secret =
        serde_json::from_str::<Value>(&regenerated.stdout).expect("json")["agent_secret"]
            .as_str()
            .expect("s")
            .to_string();
    let old = signet(&app, &["token"], &agent_env).await;
    assert_eq!(old.code, 3, "the old secret is refused: {}", old.stderr);
    let new_env = [
        ("SIGNET_AGENT_ID", id.as_str()),
        ("SIGNET_AGENT_SECRET", new_secret.as_str()),
    ];
    assert_eq!(signet(&app, &["token"], &new_env).await.code, 0);

    assert_eq!(
        signet(&app, &["agent", "disable", &id], &admin).await.code,
        0
    );
    assert_eq!(signet(&app, &["token"], &new_env).await.code, 3);
    assert_eq!(
        signet(&app, &["agent", "enable", &id], &admin).await.code,
        0
    );
    assert_eq!(signet(&app, &["token"], &new_env).await.code, 0);

    assert_eq!(
        signet(&app, &["agent", "delete", &id, "--yes"], &admin)
            .await
            .code,
        0
    );
    let gone = signet(&app, &["agent", "show", &id], &admin).await;
    assert_eq!(gone.code, 4);
}

#[tokio::test]
async fn cli_errors_are_actionable() {
    let app = TestApp::spawn().await;
    let no_token = signet(&app, &["agent", "list"], &[]).await;
    assert_eq!(no_token.code, 1);
    assert!(no_token.stderr.contains("SIGNET_ADMIN_TOKEN"));
    let wrong_token = signet(&app, &["agent", "list"], &[("SIGNET_ADMIN_TOKEN", "nope")]).await;
    assert_eq!(wrong_token.code, 3);
    let no_agent = signet(&app, &["token"], &[]).await;
    assert_eq!(no_agent.code, 1);
    assert!(no_agent.stderr.contains("SIGNET_AGENT_ID"));
    let unreachable = tokio::process::Command::new(signet_bin())
        .args([
            "agent",
            "list",
            "--url",
            "http://127.0.0.1:9",
            "--admin-token",
            "x",
        ])
        .env_clear()
        .output()
        .await
        .expect("run");
    assert_eq!(unreachable.status.code(), Some(5));
    // The flag works, with a warning that the process list shows it.
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("warning: --admin-token is visible"),
        "{}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
    let usage = signet(&app, &["agent", "frobnicate"], &[]).await;
    assert_eq!(usage.code, 2);
}
