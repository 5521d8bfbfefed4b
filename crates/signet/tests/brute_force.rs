//! Brute-force protection: failures per agent and per source lock with back-off; while locked,
//! requests get 429 with `Retry-After` and nothing is read or written; locks are listed,
//! audited once, lifted by an operator, and end by themselves (clock moved, not slept). Console
//! sign-ins are limited per address and per username.

mod common;

use common::{TestAgent, TestApp};
use serde_json::{Value, json};

async fn status_and_retry(app: &TestApp, agent: &TestAgent) -> (u16, Option<String>) {
    let response = app.token(agent, "grant_type=client_credentials").await;
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (response.status().as_u16(), retry)
}

/// The `Retry-After` of a request that must be refused as locked.
async fn retry_after(app: &TestApp, agent: &TestAgent) -> i64 {
    let (status, retry) = status_and_retry(app, agent).await;
    assert_eq!(status, 429);
    retry.expect("Retry-After").parse().expect("seconds")
}

fn wrong(agent: &TestAgent) -> TestAgent {
    // A well-formed secret that is not the agent's.
    let other = signet_core::client_auth::AgentSecret::generate();
    TestAgent {
        id: agent.id.clone(),
        secret: other.expose().to_string(),
    }
}

#[tokio::test]
async fn failures_lock_the_agent_and_the_source_until_lifted_or_expired() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_LOCKOUT_THRESHOLD", "5"),
        ("SIGNET_LOCKOUT_WINDOW_SECONDS", "60"),
        ("SIGNET_LOCKOUT_SECONDS", "30"),
        ("SIGNET_LOCKOUT_MAX_SECONDS", "120"),
    ])
    .await;
    let agent = app.secret_agent().await;
    let bystander = app.secret_agent().await;
    for _ in 0..5 {
        assert_eq!(status_and_retry(&app, &wrong(&agent)).await.0, 401);
    }
    // Locked: even the right secret is refused, with when to come back.
    let (status, retry) = status_and_retry(&app, &agent).await;
    assert_eq!(status, 429);
    let retry: i64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    let response = app.token(&agent, "grant_type=client_credentials").await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
    // The address is locked too: another agent from it waits as well.
    assert_eq!(status_and_retry(&app, &bystander).await.0, 429);

    // Locked requests are not audited one by one; the lock is, once per key.
    let before = app.audit("event_type=token_request&limit=1000").await.len();
    for _ in 0..10 {
        status_and_retry(&app, &agent).await;
    }
    assert_eq!(
        app.audit("event_type=token_request&limit=1000").await.len(),
        before
    );
    // Lock records are written off the request path: wait for them.
    let started = app.audit_eventually("event_type=lockout_started", 2).await;
    assert_eq!(started.len(), 2, "{started:?}");
    // With the id of the request that started them.
    assert!(
        started.iter().all(|r| r["request_id"].is_string()),
        "{started:?}"
    );

    // Visible to operators, with what each lock refused; an operator lifts them.
    let locks = app.get_json("/api/v1/lockouts").await;
    let locks = locks.as_array().cloned().unwrap_or_default();
    assert_eq!(locks.len(), 2);
    let agent_lock = locks
        .iter()
        .find(|l| l["kind"] == "agent")
        .expect("agent lock");
    assert_eq!(agent_lock["key"], json!(agent.id));
    assert!(agent_lock["refused"].as_u64().unwrap_or_default() >= 12);
    for (kind, key) in [("agent", agent.id.as_str()), ("source", "127.0.0.1")] {
        assert_eq!(app.lift_lock(kind, key).await, 204);
    }
    assert_eq!(status_and_retry(&app, &agent).await.0, 200);
    assert_eq!(app.audit("event_type=lockout_lifted").await.len(), 2);

    // Locked again, twice as long after a second strike? The first lock was lifted (strikes
    // reset); this one lasts 30 s and ends by itself.
    for _ in 0..5 {
        status_and_retry(&app, &wrong(&agent)).await;
    }
    assert_eq!(status_and_retry(&app, &agent).await.0, 429);
    app.set_clock_offset(31).await;
    assert_eq!(status_and_retry(&app, &agent).await.0, 200);
    let ended = app.audit_eventually("event_type=lockout_ended", 1).await;
    assert!(!ended.is_empty());
    assert!(ended[0]["detail"]["refused"].as_u64().is_some());

    // A lock whose agent and address never come back still has its end on record.
    let ended = app
        .audit_eventually("event_type=lockout_ended", 2)
        .await
        .len();
    for _ in 0..5 {
        status_and_retry(&app, &wrong(&agent)).await;
    }
    assert_eq!(status_and_retry(&app, &agent).await.0, 429);
    app.set_clock_offset(31 + 121).await;
    let now_ended = app
        .audit_eventually("event_type=lockout_ended", ended + 2)
        .await;
    assert_eq!(now_ended.len(), ended + 2, "{now_ended:?}");
}

#[tokio::test]
async fn repeated_locks_back_off_and_a_quiet_server_never_locks() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
        ("SIGNET_LOCKOUT_SECONDS", "30"),
        ("SIGNET_LOCKOUT_MAX_SECONDS", "120"),
    ])
    .await;
    let agent = app.secret_agent().await;
    for _ in 0..3 {
        status_and_retry(&app, &wrong(&agent)).await;
    }
    // Retry-After counts down from the lock's start: 30, or 29 once a second has begun since.
    assert!((29..=30).contains(&retry_after(&app, &agent).await));
    app.set_clock_offset(31).await;
    for _ in 0..3 {
        status_and_retry(&app, &wrong(&agent)).await;
    }
    // The second lock in a row lasts twice as long.
    assert!((59..=60).contains(&retry_after(&app, &agent).await));

    // Failures below the threshold, spread out, never lock.
    let calm = TestApp::spawn_with(&[
        ("SIGNET_TESTING_CLOCK", "1"),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
    ])
    .await;
    let agent = calm.secret_agent().await;
    for minute in 0..5 {
        calm.set_clock_offset(minute * 61).await;
        for _ in 0..2 {
            assert_eq!(status_and_retry(&calm, &wrong(&agent)).await.0, 401);
        }
    }
    assert_eq!(status_and_retry(&calm, &agent).await.0, 200);
}

/// A console sign-in from `address` (through a trusted proxy); returns the status, the
/// `Retry-After` header and whether a session cookie was set.
async fn console_sign_in(
    app: &TestApp,
    address: &str,
    username: &str,
    password: &str,
) -> (u16, Option<String>, bool) {
    sign_in_at(&app.url, address, username, password).await
}

async fn sign_in_at(
    url: &str,
    address: &str,
    username: &str,
    password: &str,
) -> (u16, Option<String>, bool) {
    let client = common::no_redirects();
    let response = client
        .post(format!("{url}/console/login"))
        .header("x-forwarded-for", address)
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .expect("send");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cookie = header("set-cookie").is_some_and(|c| c.starts_with("signet_session="));
    (response.status().as_u16(), header("retry-after"), cookie)
}

#[tokio::test]
async fn console_sign_ins_are_limited_per_username_across_addresses() {
    let password = "console-lockout-password-1";
    let app = TestApp::spawn_with(&[
        ("SIGNET_ADMIN_PASSWORD", password),
        ("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
        ("SIGNET_LOCKOUT_WINDOW_SECONDS", "60"),
        ("SIGNET_LOCKOUT_SECONDS", "30"),
    ])
    .await;
    // Guesses for `admin` spread over three addresses: no address reaches the threshold…
    for i in 1..=3 {
        let address = format!("203.0.113.{i}");
        let (status, _, cookie) = console_sign_in(&app, &address, "admin", "guess-guess-1").await;
        assert_eq!((status, cookie), (401, false));
    }
    // …but the username does: even the right password from a fresh address waits.
    let (status, retry, cookie) = console_sign_in(&app, "198.51.100.7", "admin", password).await;
    assert_eq!((status, cookie), (429, false));
    let retry: i64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    // Other usernames are not affected (this one does not exist: an ordinary refusal).
    let (status, _, _) = console_sign_in(&app, "198.51.100.7", "someone", "guess-guess-1").await;
    assert_eq!(status, 401);
    let locked = app.audit("event_type=console_sign_in&reason=locked").await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0]["actor"], "console:admin");
    assert_eq!(locked[0]["source"], "198.51.100.7");

    // The lock is listed and an operator lifts it; then the right password signs in.
    let locks = app.get_json("/api/v1/lockouts").await;
    assert!(
        locks
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["kind"] == "console_user" && l["key"] == "admin"),
        "{locks}"
    );
    assert_eq!(app.lift_lock("console_user", "admin").await, 204);
    let (status, _, cookie) = console_sign_in(&app, "198.51.100.7", "admin", password).await;
    assert_eq!((status, cookie), (303, true));
}

/// A burst of concurrent guesses gets no more than the lockout allows: each password check
/// takes its turn and looks at the lock again, so the burst cannot all pass the lock before any
/// failure is counted. Only the threshold's worth are checked; the rest are refused as locked.
#[tokio::test]
async fn a_burst_of_concurrent_sign_ins_gets_no_more_guesses_than_the_lockout_allows() {
    let password = "console-burst-password-1";
    let app = TestApp::spawn_with(&[
        ("SIGNET_ADMIN_PASSWORD", password),
        ("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
        ("SIGNET_LOCKOUT_WINDOW_SECONDS", "60"),
        ("SIGNET_LOCKOUT_SECONDS", "30"),
    ])
    .await;
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..24 {
        let url = app.url.clone();
        guesses.spawn(async move {
            let address = format!("203.0.113.{}", 10 + i);
            sign_in_at(&url, &address, "admin", &format!("guess-number-{i}")).await
        });
    }
    let answers = guesses.join_all().await;
    let wrong = answers
        .iter()
        .filter(|(status, _, _)| *status == 401)
        .count();
    let locked = answers
        .iter()
        .filter(|(status, _, _)| *status == 429)
        .count();
    assert_eq!((wrong, locked), (3, 21), "{answers:?}");
    let checked = app
        .audit("event_type=console_sign_in&reason=wrong_credentials")
        .await;
    assert_eq!(checked.len(), 3);
    // The lock holds for the right password too.
    let (status, _, cookie) = console_sign_in(&app, "198.51.100.7", "admin", password).await;
    assert_eq!((status, cookie), (429, false));
}

/// What is typed as an unknown username may be a password in the wrong field: it appears in no
/// audit record and no lock; a digest stands for it, so guesses at it are still limited.
#[tokio::test]
async fn an_unknown_username_is_never_recorded_as_typed() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_ADMIN_PASSWORD", "console-typed-password-1"),
        ("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
    ])
    .await;
    let typed = "correct-horse-battery-9";
    for i in 1..=4 {
        let address = format!("203.0.113.{i}");
        let (status, _, _) = console_sign_in(&app, &address, typed, "guess-guess-1").await;
        assert_eq!(status, if i <= 3 { 401 } else { 429 });
    }
    let records = app.audit("event_type=console_sign_in").await;
    assert_eq!(records.len(), 4);
    let actor = records[0]["actor"].as_str().expect("actor").to_owned();
    assert!(actor.starts_with("console:unknown-"), "{actor}");
    assert!(records.iter().all(|r| r["actor"] == actor.as_str()));
    let everything = serde_json::to_string(&app.audit("limit=1000").await).expect("json");
    let locks = app.get_json("/api/v1/lockouts").await.to_string();
    for text in [&everything, &locks] {
        assert!(!text.contains(typed), "recorded as typed: {text}");
    }
    assert!(
        locks.contains(actor.trim_start_matches("console:")),
        "{locks}"
    );
}

/// Guessing the current password through the password change (with a stolen session) is
/// limited like sign-ins: past the threshold, 429 with Retry-After, even for the right one.
#[tokio::test]
async fn guesses_at_the_current_password_are_limited() {
    let password = "console-change-password-1";
    let app = TestApp::spawn_with(&[
        ("SIGNET_ADMIN_PASSWORD", password),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
    ])
    .await;
    let client = common::no_redirects();
    let signed_in = client
        .post(format!("{}/console/login", app.url))
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .expect("send");
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let page = client
        .get(format!("{}/console/settings/password", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("page");
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token")
        .to_owned();
    let change = |current: &str| {
        client
            .post(format!("{}/console/settings/password", app.url))
            .header("cookie", &cookie)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("current_password", current),
                ("new_password", "a-brand-new-password-2"),
                ("confirm_password", "a-brand-new-password-2"),
            ])
            .send()
    };
    for i in 0..3 {
        let response = change(&format!("guess-number-{i}")).await.expect("send");
        assert_eq!(response.status(), 400);
    }
    let response = change(password).await.expect("send");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    // Nothing changed.
    let refused = app
        .audit("event_type=console_password_changed&reason=wrong_password")
        .await;
    assert_eq!(refused.len(), 3);
    assert!(
        app.audit("event_type=console_password_changed&outcome=success")
            .await
            .is_empty()
    );
}

/// A sign-in form posted from another site (login CSRF) is refused with 403 and no session,
/// also without a browser (the header is what counts); a flood of such posts is recorded up to
/// the lockout threshold, then only refused, and locks nothing for the agents at that address.
#[tokio::test]
async fn cross_site_console_posts_are_refused_and_a_flood_is_not_recorded() {
    let password = "console-cross-site-password-1";
    let app = TestApp::spawn_with(&[
        ("SIGNET_ADMIN_PASSWORD", password),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
    ])
    .await;
    let client = common::no_redirects();
    let sign_in = |site: &'static str| {
        client
            .post(format!("{}/console/login", app.url))
            .header("sec-fetch-site", site)
            .form(&[("username", "admin"), ("password", password)])
            .send()
    };
    for _ in 0..6 {
        let refused = sign_in("cross-site").await.expect("send");
        assert_eq!(refused.status(), 403);
        assert!(!refused.headers().contains_key("set-cookie"));
    }
    let recorded = app.audit("event_type=console&outcome=failure").await;
    let cross_site = recorded
        .iter()
        .filter(|r| r["reason"] == "cross_site_request")
        .count();
    assert_eq!(cross_site, 3, "{recorded:?}");
    let locks = app.get_json("/api/v1/lockouts").await;
    assert_eq!(locks[0]["kind"], "operator_source", "{locks}");
    let agent = app.secret_agent().await;
    assert_eq!(status_and_retry(&app, &agent).await.0, 200);
    // The console's own form still signs in.
    assert_eq!(sign_in("same-origin").await.expect("send").status(), 303);
}

/// Guesses from fresh addresses of one IPv6 /64 lock the /64; another /64 is not affected; an
/// operator lifts the lock by any address in it (as audit records show them).
#[tokio::test]
async fn ipv6_guesses_lock_their_64() {
    let app = TestApp::spawn_with(&[
        ("SIGNET_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SIGNET_LOCKOUT_THRESHOLD", "3"),
    ])
    .await;
    let from = |agent: &TestAgent, address: &str| {
        app.http
            .post(format!("{}/oauth2/token", app.url))
            .basic_auth(&agent.id, Some(&agent.secret))
            .header("x-forwarded-for", address)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    // Three agents, one wrong guess each, each from a new address of the same /64.
    for i in 1..=3 {
        let agent = app.secret_agent().await;
        let address = format!("2001:db8:1:2::{i}");
        let status = from(&wrong(&agent), &address).await.expect("send").status();
        assert_eq!(status, 401);
    }
    let agent = app.secret_agent().await;
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(from(&agent, "2001:db8:1:2::77").await.expect("send")),
        429
    );
    assert_eq!(
        status(from(&agent, "2001:db8:1:3::1").await.expect("send")),
        200
    );
    // Records keep the address itself; the lock is the /64.
    let failures = app.audit("event_type=token_request&outcome=failure").await;
    assert!(
        failures.iter().any(|r| r["source"] == "2001:db8:1:2::1"),
        "{failures:?}"
    );
    let locks = app.get_json("/api/v1/lockouts").await;
    assert_eq!(locks[0]["key"], "2001:db8:1:2::/64", "{locks}");
    assert_eq!(app.lift_lock("source", "2001:db8:1:2::99").await, 204);
    assert_eq!(
        status(from(&agent, "2001:db8:1:2::77").await.expect("send")),
        200
    );
}
