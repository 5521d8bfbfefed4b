//! Anomaly alerts on scripted scenarios: a failure burst per agent and per source makes one
//! alert with a count; stale credentials and requests from outside `allowed_cidrs` raise
//! theirs; normal traffic raises nothing. New alerts reach a local webhook receiver with a valid
//! signature, and a failed delivery is retried and logged.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use common::{TestAgent, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "webhook-secret-for-tests-0123456789";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A minimal HTTP receiver: redirects the first request elsewhere (307), answers 500 to the
/// second, 200 afterwards (whichever alerts they deliver).
async fn receiver() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    receiver_failing(true, 1).await
}

/// A receiver that redirects the first request (if `redirect`), then answers 500 to `errors`
/// requests, then 200.
async fn receiver_failing(redirect: bool, errors: usize) -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let elsewhere = format!("http://{}/elsewhere", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break (String::new(), String::new());
                };
                if n == 0 {
                    break (String::new(), String::new());
                }
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        break (head.to_string(), rest[..length].to_string());
                    }
                }
            };
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let delivery = Delivery {
                path: head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string(),
                timestamp: header("x-signet-timestamp"),
                signature: header("x-signet-signature"),
                body,
            };
            let count = {
                let mut log = log.lock().expect("lock");
                log.push(delivery);
                log.len()
            };
            let failing = count - usize::from(redirect);
            let status = match count {
                1 if redirect => format!("307 Temporary Redirect\r\nlocation: {elsewhere}"),
                _ if failing <= errors => "500 Internal Server Error".to_owned(),
                _ => "200 OK".to_owned(),
            };
            let _ = stream
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    (url, seen)
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/v1/alerts").await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn until<F: Fn(&[Value]) -> bool>(app: &TestApp, what: &str, check: F) -> Vec<Value> {
    for _ in 0..100 {
        let list = alerts(app).await;
        if check(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {:?}", alerts(app).await);
}

/// Regenerates the agent's secret, then asks for a token with the replaced one (refused, and
/// recognised as stale).
async fn use_replaced_secret(app: &TestApp, agent: &TestAgent) {
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/secret/regenerate", agent.id),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let stale = app.token(agent, "grant_type=client_credentials").await;
    assert_eq!(stale.status(), 401);
}

fn wrong(agent: &TestAgent) -> TestAgent {
    TestAgent {
        id: agent.id.clone(),
        secret: signet_core::client_auth::AgentSecret::generate()
            .expose()
            .to_string(),
    }
}

#[tokio::test]
async fn scripted_scenarios_raise_deduplicated_alerts_and_reach_the_webhook() {
    let (url, seen) = receiver().await;
    let app = TestApp::spawn_with(&[
        ("SIGNET_ALERT_FAILURE_BURST", "5"),
        ("SIGNET_ALERT_WEBHOOK_URL", &url),
        ("SIGNET_ALERT_WEBHOOK_SECRET", SECRET),
        ("SIGNET_ALERT_WEBHOOK_RETRY_SECONDS", "1"),
    ])
    .await;
    let agent = app.secret_agent().await;
    // Normal traffic: nothing.
    for _ in 0..20 {
        app.access_token(&agent).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alerts(&app).await.is_empty());

    // A storm of wrong secrets: one alert per agent and per source, counting.
    for _ in 0..12 {
        assert_eq!(
            app.token(&wrong(&agent), "grant_type=client_credentials")
                .await
                .status(),
            401
        );
    }
    let list = until(&app, "burst alerts", |l| {
        l.iter()
            .filter(|a| {
                a["rule"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("failure_burst"))
            })
            .count()
            == 2
            && l.iter().all(|a| a["count"] == 2)
    })
    .await;
    let by_agent = list
        .iter()
        .find(|a| a["rule"] == "failure_burst_agent")
        .expect("agent burst");
    assert_eq!(by_agent["subject"], json!(agent.id));
    assert_eq!(list.len(), 2, "a storm makes one alert each, not dozens");

    // A stale secret, and a request from outside allowed_cidrs.
    use_replaced_secret(&app, &agent).await;
    let fenced = app
        .create_agent(json!({ "name": "fenced", "allowed_cidrs": ["10.0.0.0/8"] }))
        .await;
    let fenced = TestAgent {
        id: fenced["agent_id"].as_str().expect("id").into(),
        secret: fenced["agent_secret"].as_str().expect("secret").into(),
    };
    app.token(&fenced, "grant_type=client_credentials").await;
    until(&app, "credential alerts", |l| {
        l.iter()
            .any(|a| a["rule"] == "stale_credential" && a["subject"] == json!(agent.id))
            && l.iter().any(|a| {
                a["rule"] == "outside_allowed_networks" && a["subject"] == json!(fenced.id)
            })
    })
    .await;
    // Counted in /metrics by rule, once per alert opened.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "signet_alerts_raised_total{rule=\"outside_allowed_networks\"} 1"),
        "{metrics}"
    );

    // Every new alert reached the webhook with a valid signature; the first was retried.
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    for _ in 0..100 {
        if seen.lock().expect("lock").len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deliveries = seen.lock().expect("lock").clone();
    assert!(deliveries.len() >= 5, "{deliveries:?}");
    for d in &deliveries {
        assert_eq!(d.path, "/hook", "a redirect was followed");
        let expected = hmac::sign(&key, format!("{}.{}", d.timestamp, d.body).as_bytes());
        let hex: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(d.signature, format!("sha256={hex}"));
        let body: Value = serde_json::from_str(&d.body).expect("json");
        assert!(body["rule"].is_string());
    }
    let first: Value = serde_json::from_str(&deliveries[0].body).expect("json");
    let first_id = first["id"].as_i64().expect("id");
    // The receiver counts a delivery before it answers; the server logs it after: wait.
    let mut attempts = Vec::new();
    for _ in 0..100 {
        let log = app
            .get_json(&format!("/api/v1/alerts/{first_id}/deliveries"))
            .await;
        attempts = log["items"].as_array().cloned().unwrap_or_default();
        if attempts.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The redirect was a failed attempt (not followed: every delivery reached `/hook`), retried.
    // (The receiver's 500 went to whichever alert came second.)
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(attempts[0]["ok"], json!(false));
    assert_eq!(attempts[0]["status_code"], json!(307));
    assert_eq!(attempts.last().map(|a| a["ok"].clone()), Some(json!(true)));

    // Acknowledged: the next burst opens a new alert.
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{}/acknowledge", by_agent["id"]),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let acknowledged: Value = response.json().await.expect("json");
    assert_eq!(acknowledged["status"], "acknowledged");
    assert_eq!(acknowledged["acknowledged_by"], "admin-token");
    let open = app.get_json("/api/v1/alerts?status=open").await;
    assert!(
        !open["items"]
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["id"] == by_agent["id"]))
    );
}

#[tokio::test]
async fn an_agent_from_a_network_it_has_not_used_raises_an_alert() {
    let app = TestApp::spawn_with(&[("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let agent = app.secret_agent().await;
    let from = |network: Option<&'static str>| {
        let mut request = app
            .http
            .post(format!("{}/oauth2/token", app.url))
            .basic_auth(&agent.id, Some(&agent.secret))
            .form(&[("grant_type", "client_credentials")]);
        if let Some(address) = network {
            request = request.header("x-forwarded-for", address);
        }
        request.send()
    };
    // The first network an agent uses is its baseline, not an anomaly.
    for _ in 0..3 {
        assert_eq!(from(None).await.expect("send").status(), 200);
    }
    // Recorded in the background; the agent shows where it authenticates from.
    let mut recorded = false;
    for _ in 0..100 {
        let shown = app.get_json(&format!("/api/v1/agents/{}", agent.id)).await;
        if shown["networks"][0]["network"] == "127.0.0.0/24" {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recorded, "the baseline network is recorded");
    assert!(alerts(&app).await.is_empty());
    // Then a network it never used.
    assert_eq!(from(Some("203.0.113.9")).await.expect("send").status(), 200);
    let list = until(&app, "new network alert", |l| {
        l.iter().any(|a| a["rule"] == "new_network")
    })
    .await;
    let alert = list
        .iter()
        .find(|a| a["rule"] == "new_network")
        .expect("alert");
    assert_eq!(alert["subject"], json!(agent.id));
    assert_eq!(alert["detail"]["network"], "203.0.113.0/24");
    // The same network again is no news; another new one counts on the open alert.
    from(Some("203.0.113.77")).await.expect("send");
    from(Some("198.51.100.1")).await.expect("send");
    until(&app, "counted", |l| {
        l.iter()
            .any(|a| a["rule"] == "new_network" && a["count"] == 2)
    })
    .await;
}

#[tokio::test]
async fn a_token_rate_far_above_the_agents_baseline_raises_an_alert() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_ALERT_TOKEN_RATE_FACTOR", "5"),
        ("SIGNET_ALERT_TOKEN_RATE_MIN_PER_MINUTE", "20"),
        ("SIGNET_ALERT_TOKEN_RATE_LEARNING_MINUTES", "3"),
    ])
    .await;
    let steady = app.secret_agent().await;
    let spiky = app.secret_agent().await;
    let newcomer = app.secret_agent().await;
    let tokens = |agent: &TestAgent, n: usize| {
        let agent = agent.clone();
        let app = &app;
        async move {
            for _ in 0..n {
                let response = app.token(&agent, "grant_type=client_credentials").await;
                assert_eq!(response.status(), 200);
            }
        }
    };
    // Each scripted minute starts one second into a minute of the server's clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let align = 61 - now.rem_euclid(60);
    // Five minutes of normal traffic: two tokens a minute each.
    for minute in 0..5 {
        app.set_clock_offset(align + minute * 60).await;
        tokens(&steady, 2).await;
        tokens(&spiky, 2).await;
    }
    // Then a minute in which one agent takes thirty, the steady one three, and an agent with
    // no history thirty: only the first is an anomaly.
    app.set_clock_offset(align + 5 * 60).await;
    tokens(&newcomer, 30).await;
    tokens(&steady, 3).await;
    tokens(&spiky, 30).await;
    let list = until(&app, "token rate alert", |l| {
        l.iter().any(|a| a["rule"] == "token_rate_spike")
    })
    .await;
    let spikes: Vec<&Value> = list
        .iter()
        .filter(|a| a["rule"] == "token_rate_spike")
        .collect();
    assert_eq!(spikes.len(), 1, "{list:?}");
    assert_eq!(spikes[0]["subject"], json!(spiky.id));
    assert_eq!(
        spikes[0]["count"], 1,
        "one alert for the minute, not one per token"
    );
    assert_eq!(spikes[0]["detail"]["tokens_this_minute"], 20);
    assert_eq!(spikes[0]["detail"]["baseline_per_minute"], 2.0);
}

/// A node that stops between attempts leaves its delivery unfinished; the node holding the
/// housekeeping lease resumes it (once the last attempt is older than a live delivery waits),
/// and the delivery log shows every attempt.
#[tokio::test]
async fn an_unfinished_delivery_is_resumed_after_a_restart() {
    let (url, seen) = receiver_failing(false, 1).await;
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_HOUSEKEEPING_SECONDS", "1"),
        ("SIGNET_ALERT_FAILURE_BURST", "0"),
        ("SIGNET_ALERT_WEBHOOK_URL", &url),
        ("SIGNET_ALERT_WEBHOOK_SECRET", SECRET),
        // The second attempt would come a minute later: the node is gone by then.
        ("SIGNET_ALERT_WEBHOOK_RETRY_SECONDS", "60"),
    ])
    .await;
    // One alert: a replaced secret used.
    let agent = app.secret_agent().await;
    use_replaced_secret(&app, &agent).await;
    let list = until(&app, "an alert", |l| !l.is_empty()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_i64().expect("id");
    let deliveries = format!("/api/v1/alerts/{id}/deliveries");
    for _ in 0..100 {
        if !app.get_json(&deliveries).await["items"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let app = app.crash_and_restart().await;
    // Past the wait of a live delivery (16 × 60 s + 60 s).
    app.set_clock_offset(1_100).await;
    let mut log = Value::Null;
    for _ in 0..100 {
        log = app.get_json(&deliveries).await;
        if log["items"]
            .as_array()
            .is_some_and(|items| items.len() >= 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items = log["items"].as_array().expect("items");
    let outcomes: Vec<(i64, bool)> = items
        .iter()
        .map(|d| (d["attempt"].as_i64().unwrap_or(0), d["ok"] == true))
        .collect();
    assert_eq!(outcomes, [(1, false), (2, true)], "{log}");
    let received = seen.lock().expect("lock").clone();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].body, received[1].body, "the same alert");
}
