//! The agent rotating its own credentials: `signet token rotate` (its secret, through
//! `POST /api/v1/self/secret/rotate`) and `signet token rotate-key` (its key pair, through
//! `POST /api/v1/self/keys` and `…/revoke`). Both write the new credential to the agent's file
//! atomically with mode 0600 and never print it, so either can run from cron.

use std::path::Path;

use serde_json::{Value, json};
use signet_core::pki::certificate::to_pem;
use signet_core::token::SigningKey;

use super::client::{basic_authorization, form_encode, http, json, unreachable};
use super::token::{Audience, agent_key, env_path, signed_assertion};
use super::{CliError, EXIT_AUTH, EXIT_REFUSED, env_secret, write_private};

/// `signet token rotate`: the agent replaces its own secret.
pub async fn rotate_secret(
    url: &str,
    secret_file: Option<std::path::PathBuf>,
    grace_period: Option<u64>,
) -> Result<(), CliError> {
    let url = url.trim_end_matches('/');
    let agent_id = env_path("AGENT_ID")
        .ok_or_else(|| CliError::failure("SIGNET_AGENT_ID is not set: export the agent's ID"))?;
    let target = secret_file
        .or_else(|| env_path("AGENT_SECRET_FILE").map(Into::into))
        .ok_or_else(|| {
            CliError::failure(
                "where should the new secret go? pass --secret-file or set SIGNET_AGENT_SECRET_FILE",
            )
        })?;
    let secret = env_secret("AGENT_SECRET")?.ok_or_else(|| {
        CliError::failure(
            "no current secret: set SIGNET_AGENT_SECRET_FILE (or SIGNET_AGENT_SECRET)",
        )
    })?;
    let body = grace_period
        .map(|g| format!("grace_period_seconds={g}"))
        .unwrap_or_default();
    let response = http()
        .post(format!("{url}/api/v1/self/secret/rotate"))
        .header("authorization", basic_authorization(&agent_id, &secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    let answer = json(response, "rotating the secret").await?;
    let new_secret = answer["agent_secret"]
        .as_str()
        .ok_or_else(|| CliError::new(EXIT_REFUSED, "the server's answer has no agent_secret"))?;
    super::write_private(&target, format!("{new_secret}\n").as_bytes())?;
    match answer["previous_secret_valid_until"].as_str() {
        Some(until) => println!(
            "Secret rotated and written to {}; the previous secret works until {until}.",
            target.display()
        ),
        None => println!(
            "Secret rotated and written to {}; the previous secret no longer works.",
            target.display()
        ),
    }
    Ok(())
}

/// `signet token rotate-key`: the agent replaces its own key pair. The new key is registered
/// before the file is replaced, and the old one revoked only with an assertion the new key
/// signed, so a failure at any step leaves a key that works.
pub async fn rotate_key(url: &str, keep_old: bool) -> Result<(), CliError> {
    let url = url.trim_end_matches('/');
    let agent_id = env_path("AGENT_ID")
        .ok_or_else(|| CliError::failure("SIGNET_AGENT_ID is not set: export the agent's ID"))?;
    let key_path = env_path("AGENT_KEY_FILE").ok_or_else(|| {
        CliError::failure(
            "SIGNET_AGENT_KEY_FILE is not set: rotate-key replaces the private key in that file",
        )
    })?;
    // The new key is known by its thumbprint; a key ID set by hand would name the old key
    // after the rotation and every later request would be refused. Refused before any change.
    if env_path("AGENT_KEY_ID").is_some() {
        return Err(CliError::failure(
            "SIGNET_AGENT_KEY_ID is set: after a rotation the key is known by its thumbprint, so `signet token` would name the old key. Rotate with the API (POST /api/v1/self/keys with a kid), or register the current key under its thumbprint and unset SIGNET_AGENT_KEY_ID",
        ));
    }
    let current = agent_key(&key_path)?;
    let current_kid = current.kid().to_owned();
    let (next, pkcs8) = current
        .generate_like()
        .map_err(|e| CliError::failure(format!("cannot make a new key: {e}")))?;
    let registration = json!({
        "client_assertion": signed_assertion(
            url,
            &agent_id,
            &current,
            Some(&current_kid),
            Audience::KeyManagement,
        )
        .await?,
        "jwk": next.public_jwk(),
        "alg": next.alg().as_str(),
    });
    post(
        url,
        "/api/v1/self/keys",
        registration,
        "registering the new key",
    )
    .await?;
    write_private(
        Path::new(&key_path),
        to_pem("PRIVATE KEY", &pkcs8).as_bytes(),
    )?;
    println!(
        "New key {} registered and written to {key_path}.",
        next.kid()
    );
    if keep_old {
        println!(
            "The old key {current_kid} still works; revoke it once every copy of the old key file is replaced."
        );
    } else {
        revoke_old(url, &agent_id, &next, &current_kid).await?;
        println!("The old key {current_kid} is revoked.");
    }
    Ok(())
}

/// Revokes `old` with an assertion signed by `next`. Behind a load balancer the request may
/// reach a node that has not yet heard of the new key (nodes learn of changes within a second):
/// a refusal is retried for a few seconds, each time with a fresh assertion.
async fn revoke_old(
    url: &str,
    agent_id: &str,
    next: &SigningKey,
    old: &str,
) -> Result<(), CliError> {
    let path = format!("/api/v1/self/keys/{}/revoke", form_encode(old));
    let mut attempt = 0;
    loop {
        let proof = json!({
            "client_assertion": signed_assertion(url, agent_id, next, None, Audience::KeyManagement).await?,
        });
        match post(url, &path, proof, "revoking the old key").await {
            Err(e) if e.code == EXIT_AUTH && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250 << attempt.min(3))).await;
            }
            result => return result.map(|_| ()),
        }
    }
}

async fn post(url: &str, path: &str, body: Value, what: &str) -> Result<Value, CliError> {
    let response = http()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    json(response, what).await
}
