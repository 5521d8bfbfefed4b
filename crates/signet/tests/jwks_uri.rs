//! `jwks_uri`: keys fetched from a test server on loopback; rotation picked up on an unknown
//! `kid`; hosts outside the allow-list refused; slow and oversized answers bounded; a failed
//! fetch keeps the cached keys and is audited.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};
use signet_core::token::{SigningAlgorithm, SigningKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the key server answers.
#[derive(Clone)]
enum Answer {
    Keys(Value),
    Slow(Duration),
    Huge,
}

struct KeyServer {
    url: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new(answer));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (shared, count) = (answer.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (shared, count) = (shared.clone(), count.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = shared.lock().expect("lock").clone();
                    let body = match answer {
                        Answer::Keys(keys) => keys.to_string(),
                        Answer::Slow(delay) => {
                            tokio::time::sleep(delay).await;
                            json!({ "keys": [] }).to_string()
                        }
                        Answer::Huge => format!(
                            "{{\"keys\": [], \"padding\": \"{}\"}}",
                            "x".repeat(200 * 1024)
                        ),
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        Self {
            url,
            answer,
            fetches,
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn key() -> SigningKey {
    SigningKey::generate(SigningAlgorithm::Es256)
        .expect("key")
        .0
}

fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>() })
}

async fn spawn(min_refetch: &str) -> TestApp {
    TestApp::spawn_with(&[
        ("SIGNET_JWKS_URI_ALLOWED_HOSTS", "127.0.0.1"),
        ("SIGNET_JWKS_URI_ALLOW_HTTP_LOOPBACK", "true"),
        ("SIGNET_JWKS_URI_MIN_REFETCH_SECONDS", min_refetch),
    ])
    .await
}

async fn agent_with_uri(app: &TestApp, uri: &str) -> String {
    let agent = app
        .create_agent(json!({ "name": "published-keys", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri }))
        .await;
    assert_eq!(agent["jwks_uri"], uri);
    agent["agent_id"].as_str().expect("id").to_string()
}

async fn token(app: &TestApp, agent_id: &str, key: &SigningKey) -> u16 {
    let now = signet_core::now();
    let jti: [u8; 12] = signet_core::crypto::random_bytes();
    let claims = json!({
        "iss": agent_id, "sub": agent_id, "aud": format!("{}/oauth2/token", app.url),
        "iat": now, "exp": now + 60, "jti": signet_core::encoding::b64url(jti),
    });
    let assertion = key.sign_assertion(None, claims.to_string().as_bytes());
    let form = format!(
        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    );
    app.post_form("/oauth2/token", None, &form)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn rotation_at_the_jwks_uri_is_picked_up_on_an_unknown_kid() {
    let app = spawn("0").await;
    let (old, new) = (key(), key());
    let server = KeyServer::start(Answer::Keys(jwks(&[&old]))).await;
    let agent_id = agent_with_uri(&app, &server.url).await;

    assert_eq!(token(&app, &agent_id, &old).await, 200);
    assert_eq!(token(&app, &agent_id, &old).await, 200);
    assert_eq!(server.fetches(), 1, "cached after the first fetch");

    server.set(Answer::Keys(jwks(&[&new])));
    assert_eq!(
        token(&app, &agent_id, &new).await,
        200,
        "the unknown kid triggered a refetch"
    );
    assert_eq!(server.fetches(), 2);
    assert_eq!(
        token(&app, &agent_id, &old).await,
        401,
        "the retired key is gone"
    );
    assert_eq!(
        app.last_token_reason(&agent_id).await.as_deref(),
        Some("unknown_kid")
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let app = spawn("3600").await;
    let known = key();
    let server = KeyServer::start(Answer::Keys(jwks(&[&known]))).await;
    let agent_id = agent_with_uri(&app, &server.url).await;
    assert_eq!(token(&app, &agent_id, &known).await, 200);
    for _ in 0..5 {
        assert_eq!(token(&app, &agent_id, &key()).await, 401);
    }
    assert_eq!(
        server.fetches(),
        1,
        "a flood of unknown kids does not hammer the key server"
    );
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused() {
    let app = spawn("0").await;
    for uri in [
        "https://attacker.example/jwks.json",
        "https://169.254.169.254/latest/meta-data",
        "ftp://127.0.0.1/jwks",
    ] {
        let response = app
            .admin(reqwest::Method::POST, "/api/v1/agents")
            .json(&json!({ "name": "x", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400, "{uri}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["field"], "jwks_uri");
    }
    // Without the loopback flag, plain http to loopback is refused too; without an allow-list, everything.
    let strict = TestApp::spawn_with(&[("SIGNET_JWKS_URI_ALLOWED_HOSTS", "127.0.0.1")]).await;
    let closed = TestApp::spawn().await;
    for app in [&strict, &closed] {
        let response = app
            .admin(reqwest::Method::POST, "/api/v1/agents")
            .json(&json!({ "name": "x", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://127.0.0.1:9/jwks" }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400);
    }
    let detail = closed
        .admin(reqwest::Method::POST, "/api/v1/agents")
        .json(&json!({ "name": "x", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://keys.example/jwks" }))
        .send()
        .await
        .expect("send")
        .json::<Value>()
        .await
        .expect("json");
    assert!(
        detail["detail"]
            .as_str()
            .expect("detail")
            .contains("SIGNET_JWKS_URI_ALLOWED_HOSTS")
    );
}

#[tokio::test]
async fn slow_and_oversized_answers_are_bounded_and_cached_keys_keep_working() {
    let app = spawn("0").await;
    let cached = key();
    let server = KeyServer::start(Answer::Keys(jwks(&[&cached]))).await;
    let agent_id = agent_with_uri(&app, &server.url).await;
    assert_eq!(token(&app, &agent_id, &cached).await, 200);

    // Oversized: the fetch for an unknown kid fails, is audited, and the cached key still works.
    server.set(Answer::Huge);
    assert_eq!(token(&app, &agent_id, &key()).await, 401);
    assert_eq!(token(&app, &agent_id, &cached).await, 200);
    let failures = app
        .audit(&format!("event_type=jwks_fetch&agent_id={agent_id}"))
        .await;
    assert_eq!(failures[0]["reason"], "jwks_too_large");

    // Slow: the fetch gives up after its timeout instead of holding the request.
    server.set(Answer::Slow(Duration::from_secs(30)));
    let started = std::time::Instant::now();
    assert_eq!(token(&app, &agent_id, &key()).await, 401);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by the fetch timeout"
    );
    let failures = app
        .audit(&format!("event_type=jwks_fetch&agent_id={agent_id}"))
        .await;
    assert_eq!(failures[0]["reason"], "jwks_fetch_timeout");
    assert_eq!(token(&app, &agent_id, &cached).await, 200);
}

/// DNS steering (rebinding): registration cannot know where a name will resolve when the keys
/// are fetched, so every resolved address is checked as the fetch connects. A name on the
/// allow-list that resolves to loopback is accepted at registration and refused at the fetch:
/// no connection reaches the address, the token request is refused, and the refusal is audited
/// with the name.
#[tokio::test]
async fn a_name_that_resolves_to_a_forbidden_address_is_never_connected_to() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let app = TestApp::spawn_with(&[("SIGNET_JWKS_URI_ALLOWED_HOSTS", "localhost")]).await;
    let agent_id = agent_with_uri(&app, &format!("https://localhost:{port}/jwks.json")).await;
    assert_eq!(token(&app, &agent_id, &key()).await, 401);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing was connected to"
    );
    let fetches = app
        .audit(&format!("agent_id={agent_id}&event_type=jwks_fetch"))
        .await;
    assert_eq!(fetches[0]["reason"], "jwks_uri_not_allowed", "{fetches:?}");
    let error = fetches[0]["detail"]["error"].as_str().expect("error");
    assert!(
        error.contains("localhost resolves only to addresses jwks_uri may not reach"),
        "{error}"
    );
}
