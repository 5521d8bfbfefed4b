//! Nothing acknowledged is lost: the server is killed with SIGKILL while clients are getting
//! tokens; after a restart, every token a client received has its audit record.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_received_before_a_kill_is_audited() {
    let app = TestApp::spawn().await;
    let agent = app.secret_agent().await;
    let received: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url, agent, received) = (
            app.http.clone(),
            app.url.clone(),
            agent.clone(),
            received.clone(),
        );
        clients.push(tokio::spawn(async move {
            // Until the server dies under them.
            loop {
                let response = http
                    .post(format!("{url}/oauth2/token"))
                    .basic_auth(&agent.id, Some(&agent.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(response) = response else { break };
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    break;
                };
                if let Some(token) = body["access_token"].as_str() {
                    let jti = common::claims(token)["jti"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    received.lock().expect("lock").insert(jti);
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let app = app.crash_and_restart().await;
    for client in clients {
        let _ = client.await;
    }
    let received = received.lock().expect("lock").clone();
    assert!(
        received.len() > 50,
        "the load ran: {} tokens",
        received.len()
    );
    let audited = app.issued_jtis().await;
    let missing: Vec<&String> = received.difference(&audited).collect();
    assert!(
        missing.is_empty(),
        "{} of {} received tokens have no audit record",
        missing.len(),
        received.len()
    );
    // And the chain survived the crash.
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["valid"], serde_json::json!(true), "{report}");
}
