//! `signet token`: the agent side. Reads the agent's credentials from the environment and asks
//! the token endpoint for an access token, printing it (or its claims):
//!
//! - with `SIGNET_AGENT_KEY_FILE` (a PEM private key): `private_key_jwt`, with a fresh client
//!   assertion per request (`SIGNET_AGENT_KEY_ID` names the key if it was registered under
//!   another `kid` than its thumbprint; `SIGNET_AGENT_KEY_ALG` picks an RSA algorithm);
//! - with `SIGNET_AGENT_CERT_FILE` and `SIGNET_AGENT_CERT_KEY_FILE`: mutual TLS
//!   (`tls_client_auth` or `self_signed_tls_client_auth`) at the server's TLS listener, whose
//!   certificate is trusted by the system roots plus `SIGNET_CA_FILE`; the token is bound to
//!   the certificate;
//! - otherwise `SIGNET_AGENT_SECRET` (or `SIGNET_AGENT_SECRET_FILE`): `client_secret_basic`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{basic_authorization, form_encode, http, json, mtls_client, unreachable};
use super::{CliError, EXIT_REFUSED, env_secret};
use signet_core::token::{SigningAlgorithm, SigningKey};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TokenArgs {
    #[command(subcommand)]
    action: Option<TokenAction>,
    /// Base URL of the Signet server (the issuer).
    #[arg(
        long,
        env = "SIGNET_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// Scopes to request, space-separated (default: all of the agent's scopes).
    #[arg(long)]
    scope: Option<String>,
    /// Resource (audience) to request; repeat for several.
    #[arg(long)]
    resource: Vec<String>,
    /// Print the token's decoded claims instead of the token.
    #[arg(long)]
    claims: bool,
    /// Print the whole token response as JSON.
    #[arg(long, conflicts_with = "claims")]
    json: bool,
    /// CA certificate(s) to trust for the server's TLS certificate (mutual TLS).
    #[arg(long, env = "SIGNET_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Rotate the agent's own secret (authenticated with the current one) and write the new
    /// secret to a file atomically with mode 0600. The secret is never printed.
    Rotate {
        /// Where to write the new secret (default: SIGNET_AGENT_SECRET_FILE).
        #[arg(long)]
        secret_file: Option<std::path::PathBuf>,
        /// Seconds the old secret keeps working (default and maximum: the server's
        /// SIGNET_SELF_ROTATION_GRACE_SECONDS).
        #[arg(long)]
        grace_period: Option<u64>,
    },
    /// Rotate the agent's own key pair (private_key_jwt): make a new key of the same algorithm,
    /// register its public key (signed with the current key), write the new private key over
    /// SIGNET_AGENT_KEY_FILE atomically with mode 0600, then revoke the old key with an
    /// assertion signed by the new one. The private key never leaves the machine.
    RotateKey {
        /// Keep the old key registered (revoke it later, e.g. once every copy of the key file
        /// is replaced).
        #[arg(long)]
        keep_old: bool,
    },
}

pub async fn run(args: TokenArgs) -> Result<(), CliError> {
    match &args.action {
        Some(TokenAction::Rotate {
            secret_file,
            grace_period,
        }) => {
            return super::token_rotation::rotate_secret(
                &args.url,
                secret_file.clone(),
                *grace_period,
            )
            .await;
        }
        Some(TokenAction::RotateKey { keep_old }) => {
            return super::token_rotation::rotate_key(&args.url, *keep_old).await;
        }
        None => {}
    }
    let agent_id = std::env::var("SIGNET_AGENT_ID")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| CliError::failure("SIGNET_AGENT_ID is not set: export the agent's ID"))?;
    let url = args.url.trim_end_matches('/');
    let key_file = std::env::var("SIGNET_AGENT_KEY_FILE")
        .ok()
        .filter(|v| !v.is_empty());
    let cert_file = env_path("AGENT_CERT_FILE");
    let cert_key_file = env_path("AGENT_CERT_KEY_FILE");
    let mut body = String::from("grant_type=client_credentials");
    let mut request = http().post(format!("{url}/oauth2/token"));
    match (cert_file, cert_key_file, key_file) {
        (Some(cert), Some(key), _) => {
            let read = |path: &str, setting: &str| {
                std::fs::read_to_string(path)
                    .map_err(|e| CliError::failure(format!("{setting}: cannot read `{path}`: {e}")))
            };
            let (cert, key) = (
                read(&cert, "SIGNET_AGENT_CERT_FILE")?,
                read(&key, "SIGNET_AGENT_CERT_KEY_FILE")?,
            );
            let (client, base) = mtls_client(url, &cert, &key, args.ca_file.as_deref()).await?;
            request = client.post(format!("{base}/oauth2/token"));
            body.push_str(&format!("&client_id={}", form_encode(&agent_id)));
        }
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(CliError::failure(
                "mutual TLS needs both SIGNET_AGENT_CERT_FILE and SIGNET_AGENT_CERT_KEY_FILE",
            ));
        }
        (None, None, Some(path)) => {
            let assertion = assertion(url, &agent_id, &path).await?;
            body.push_str(&format!(
                "&client_id={}&client_assertion_type={}&client_assertion={}",
                form_encode(&agent_id),
                form_encode(JWT_BEARER),
                assertion
            ));
        }
        (None, None, None) => {
            let secret = env_secret("AGENT_SECRET")?.ok_or_else(|| {
                CliError::failure(
                    "no agent credentials: set SIGNET_AGENT_SECRET (or SIGNET_AGENT_SECRET_FILE), or SIGNET_AGENT_KEY_FILE for private_key_jwt",
                )
            })?;
            request = request.header("authorization", basic_authorization(&agent_id, &secret));
        }
    }
    if let Some(scope) = &args.scope {
        body.push_str(&format!("&scope={}", form_encode(scope)));
    }
    for resource in &args.resource {
        body.push_str(&format!("&resource={}", form_encode(resource)));
    }
    let response = request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    let answer = json(response, "getting a token").await?;
    let token = answer["access_token"]
        .as_str()
        .ok_or_else(|| CliError::new(EXIT_REFUSED, "the server's answer has no access_token"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    } else if args.claims {
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .ok_or_else(|| CliError::failure("the access token is not a JWT"))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&claims).unwrap_or_default()
        );
    } else {
        println!("{token}");
    }
    Ok(())
}

pub(super) fn env_path(name: &str) -> Option<String> {
    std::env::var(format!("SIGNET_{name}"))
        .ok()
        .filter(|v| !v.is_empty())
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A fresh client assertion (RFC 7523 §3) signed with the agent's private key in `key_path`.
async fn assertion(url: &str, agent_id: &str, key_path: &str) -> Result<String, CliError> {
    let key = agent_key(key_path)?;
    let kid = env_path("AGENT_KEY_ID");
    signed_assertion(url, agent_id, &key, kid.as_deref(), Audience::TokenEndpoint).await
}

/// The agent's private key from `key_path` (`SIGNET_AGENT_KEY_FILE`), for the algorithm in
/// `SIGNET_AGENT_KEY_ALG` if set.
pub(super) fn agent_key(key_path: &str) -> Result<SigningKey, CliError> {
    let pem = std::fs::read_to_string(key_path).map_err(|e| {
        CliError::failure(format!(
            "SIGNET_AGENT_KEY_FILE: cannot read `{key_path}`: {e}"
        ))
    })?;
    load_private_key(&pem, env_path("AGENT_KEY_ALG").as_deref())
        .map_err(|e| CliError::failure(format!("SIGNET_AGENT_KEY_FILE: {e}")))
}

/// Where a client assertion is to be used: its `aud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    /// The token endpoint, from the server's metadata.
    TokenEndpoint,
    /// The agent's own key management, `<issuer>/api/v1/self/keys`.
    KeyManagement,
}

/// A fresh client assertion signed with `key` (as `kid`, default its thumbprint): `iss` = `sub`
/// = the agent, `aud` as the server's metadata names it, one minute of validity, a random
/// `jti`.
pub(super) async fn signed_assertion(
    url: &str,
    agent_id: &str,
    key: &SigningKey,
    kid: Option<&str>,
    audience: Audience,
) -> Result<String, CliError> {
    let metadata = http()
        .get(format!("{url}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    let metadata = json(metadata, "reading the server's metadata").await?;
    let named = |field: &str, or: String| {
        metadata[field]
            .as_str()
            .map(|v| v.trim_end_matches('/').to_string())
            .unwrap_or(or)
    };
    let audience = match audience {
        Audience::TokenEndpoint => named("token_endpoint", format!("{url}/oauth2/token")),
        Audience::KeyManagement => {
            format!("{}/api/v1/self/keys", named("issuer", url.to_string()))
        }
    };
    let now = signet_core::now();
    let jti: [u8; 16] = signet_core::crypto::random_bytes();
    let claims = serde_json::json!({
        "iss": agent_id,
        "sub": agent_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": signet_core::encoding::b64url(jti),
    });
    Ok(key.sign_assertion(kid, claims.to_string().as_bytes()))
}

/// Loads a PEM private key: PKCS#8 (`PRIVATE KEY`: EC P-256/P-384, Ed25519 or RSA), SEC1
/// (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`). RSA keys sign with RS256 unless `alg` says
/// otherwise.
pub fn load_private_key(pem: &str, alg: Option<&str>) -> Result<SigningKey, String> {
    let (label, der) = signet_core::jwk::pem_block(pem).map_err(|e| e.to_string())?;
    if !label.contains("PRIVATE KEY") || label.contains("ENCRYPTED") {
        return Err(format!(
            "expected an unencrypted PEM private key, found `{label}`"
        ));
    }
    let candidates: Vec<SigningAlgorithm> = match alg {
        Some(alg) => vec![alg.parse()?],
        None => vec![
            SigningAlgorithm::Es256,
            SigningAlgorithm::Es384,
            SigningAlgorithm::EdDsa,
            SigningAlgorithm::Rs256,
        ],
    };
    candidates
        .into_iter()
        .find_map(|alg| SigningKey::from_pkcs8(alg, &der).ok())
        .ok_or_else(|| "not an EC P-256/P-384, Ed25519 or RSA private key (or not one for the algorithm in SIGNET_AGENT_KEY_ALG)".to_string())
}
