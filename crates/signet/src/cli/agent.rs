//! `signet agent …`: manage agents through a running server's admin API.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;
use serde_json::{Value, json};

use super::CliError;
use super::admin_api::AdminConnection;
use super::admin_api::{Api, print_json, segment};

// Parsed once per process; the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register an agent and print its Agent ID and secret (shown once).
    Create {
        #[command(flatten)]
        connection: AdminConnection,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// client_secret_basic (default), client_secret_post, private_key_jwt, tls_client_auth, self_signed_tls_client_auth.
        #[arg(long)]
        method: Option<String>,
        /// An allowed scope; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An allowed audience (resource); repeat for several.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Access token lifetime in seconds (default: the server's).
        #[arg(long)]
        ttl: Option<u64>,
        /// A network the agent may authenticate from, e.g. 10.0.0.0/8; repeat for several.
        #[arg(long = "allowed-cidr")]
        allowed_cidrs: Vec<String>,
        /// Public key file (PEM public key or certificate, JWK, or JWK Set): makes a private_key_jwt agent.
        #[arg(long)]
        key_file: Option<std::path::PathBuf>,
        /// URL where a private_key_jwt agent publishes its keys (the host must be allow-listed on the server).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// tls_client_auth: the certificate's subject DN (RFC 4514), e.g. "CN=billing,O=Acme".
        #[arg(long, group = "binding")]
        subject_dn: Option<String>,
        /// tls_client_auth: a DNS name in the certificate's SAN.
        #[arg(long, group = "binding")]
        san_dns: Option<String>,
        /// tls_client_auth: a URI in the certificate's SAN (e.g. a SPIFFE ID).
        #[arg(long, group = "binding")]
        san_uri: Option<String>,
        /// tls_client_auth: an IP address in the certificate's SAN.
        #[arg(long, group = "binding")]
        san_ip: Option<String>,
        /// tls_client_auth: an email address in the certificate's SAN.
        #[arg(long, group = "binding")]
        san_email: Option<String>,
        /// A certificate (PEM) to register: makes a self_signed_tls_client_auth agent.
        #[arg(long)]
        cert_file: Option<std::path::PathBuf>,
    },
    /// Register a public key (PEM public key or certificate, JWK, or JWK Set) for a private_key_jwt agent.
    AddKey {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// The public key file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Key ID (default: the key's RFC 7638 thumbprint, base64url: it may begin with `-`).
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
        /// Pinned algorithm (default: by key type; RS256 for RSA).
        #[arg(long)]
        alg: Option<String>,
        /// When the key stops being accepted (RFC 3339, e.g. 2027-06-30T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List an agent's public keys.
    Keys {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
    },
    /// Revoke one of an agent's public keys at once.
    RevokeKey {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// Key ID (a thumbprint may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// List agents.
    List {
        #[command(flatten)]
        connection: AdminConnection,
        /// Match on ID, name or description.
        #[arg(long)]
        search: Option<String>,
        /// Most agents to list.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one agent.
    Show {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
    },
    /// Generate a new secret; the old one stops working at once unless --grace-period is given.
    RegenerateSecret {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// Seconds during which the old secret keeps working.
        #[arg(long)]
        grace_period: Option<u64>,
    },
    /// Revoke every token the agent has been issued so far (inactive at introspection at once).
    RevokeTokens {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
    },
    /// Disable an agent: no new tokens, and its live tokens turn inactive at introspection.
    Disable {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
    },
    /// Enable a disabled agent.
    Enable {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
    },
    /// Delete an agent and its credentials.
    Delete {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

pub async fn run(command: AgentCommand) -> Result<(), CliError> {
    use reqwest::Method;
    match command {
        AgentCommand::Create {
            connection,
            name,
            description,
            method,
            scopes,
            audiences,
            ttl,
            allowed_cidrs,
            key_file,
            jwks_uri,
            subject_dn,
            san_dns,
            san_uri,
            san_ip,
            san_email,
            cert_file,
        } => {
            let api = Api::new(&connection)?;
            let mut body = json!({ "name": name, "scopes": scopes, "audiences": audiences, "allowed_cidrs": allowed_cidrs });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(m) = method {
                body["token_endpoint_auth_method"] = json!(m);
            }
            if let Some(t) = ttl {
                body["access_token_ttl"] = json!(t);
            }
            // A PEM key is registered right after creation; a JWK (Set) travels with it.
            let mut pem_key = None;
            if let Some(path) = key_file {
                match read_key_file(&path)? {
                    Value::Object(m) if m.contains_key("jwks") => body["jwks"] = m["jwks"].clone(),
                    Value::Object(m) if m.contains_key("jwk") => {
                        body["jwks"] = json!({ "keys": [m["jwk"].clone()] })
                    }
                    pem => pem_key = Some(pem),
                }
            }
            if let Some(uri) = jwks_uri {
                body["jwks_uri"] = json!(uri);
            }
            let bindings = [
                ("tls_client_auth_subject_dn", subject_dn),
                ("tls_client_auth_san_dns", san_dns),
                ("tls_client_auth_san_uri", san_uri),
                ("tls_client_auth_san_ip", san_ip),
                ("tls_client_auth_san_email", san_email),
            ];
            for (field, value) in bindings {
                if let Some(value) = value {
                    body[field] = json!(value);
                    if body.get("token_endpoint_auth_method").is_none() {
                        body["token_endpoint_auth_method"] = json!("tls_client_auth");
                    }
                }
            }
            if let Some(path) = cert_file {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    CliError::failure(format!("--cert-file: cannot read {}: {e}", path.display()))
                })?;
                body["certificates"] = json!([pem]);
                if body.get("token_endpoint_auth_method").is_none() {
                    body["token_endpoint_auth_method"] = json!("self_signed_tls_client_auth");
                }
            }
            if (body.get("jwks").is_some() || pem_key.is_some() || body.get("jwks_uri").is_some())
                && body.get("token_endpoint_auth_method").is_none()
            {
                body["token_endpoint_auth_method"] = json!("private_key_jwt");
            }
            let agent = api
                .call(
                    Method::POST,
                    "/api/v1/agents",
                    Some(body),
                    "creating the agent",
                )
                .await?;
            let mut agent = agent;
            if let Some(pem) = pem_key {
                let id = agent["agent_id"].as_str().unwrap_or_default().to_string();
                let path = format!("/api/v1/agents/{}/keys", segment(&id));
                match api
                    .call(Method::POST, &path, Some(pem), "registering the key")
                    .await
                {
                    Ok(keys) => agent["keys"] = keys,
                    Err(e) => {
                        // Leave nothing half-made: an agent without its key is useless.
                        let _ = api
                            .call(
                                Method::DELETE,
                                &format!("/api/v1/agents/{}", segment(&id)),
                                None,
                                "cleaning up",
                            )
                            .await;
                        return Err(e);
                    }
                }
            }
            if connection.json {
                return print_json(&agent);
            }
            let id = agent["agent_id"].as_str().unwrap_or_default();
            println!(
                "Agent registered: {} ({})",
                agent["name"].as_str().unwrap_or_default(),
                id
            );
            println!(
                "  method  {}",
                agent["token_endpoint_auth_method"]
                    .as_str()
                    .unwrap_or_default()
            );
            for key in agent["keys"].as_array().into_iter().flatten() {
                println!(
                    "  key     {} ({})",
                    key["kid"].as_str().unwrap_or_default(),
                    key["alg"].as_str().unwrap_or_default()
                );
            }
            if let Some(uri) = agent["jwks_uri"].as_str() {
                println!("  jwks_uri {uri}");
            }
            for (field, value) in agent.as_object().into_iter().flatten() {
                if let (Some(name), Some(value)) =
                    (field.strip_prefix("tls_client_auth_"), value.as_str())
                {
                    println!("  bound to {name} = {value}");
                }
            }
            // Printed once (a second copy is one more for terminal scrollback and logs to keep).
            if let Some(secret) = agent["agent_secret"].as_str() {
                println!(
                    "\nThe agent secret is shown only this once: store it in your secrets manager now.\nFor the agent's environment:\n\n  SIGNET_AGENT_ID={id}\n  SIGNET_AGENT_SECRET={secret}\n"
                );
            }
            Ok(())
        }
        AgentCommand::List {
            connection,
            search,
            limit,
        } => {
            let api = Api::new(&connection)?;
            let mut items: Vec<Value> = Vec::new();
            let mut cursor: Option<String> = None;
            while items.len() < limit as usize {
                let page_size = (limit as usize - items.len()).min(500);
                let mut path = format!("/api/v1/agents?limit={page_size}");
                if let Some(s) = &search {
                    path.push_str(&format!("&search={}", segment(s)));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", segment(c)));
                }
                let page = api.call(Method::GET, &path, None, "listing agents").await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                cursor = page["next_cursor"].as_str().map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
            if connection.json {
                return print_json(&Value::Array(items));
            }
            println!("{:<27} {:<9} {:<28} NAME", "AGENT ID", "STATUS", "METHOD");
            for a in &items {
                println!(
                    "{:<27} {:<9} {:<28} {}",
                    a["agent_id"].as_str().unwrap_or_default(),
                    a["status"].as_str().unwrap_or_default(),
                    a["token_endpoint_auth_method"].as_str().unwrap_or_default(),
                    a["name"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        AgentCommand::Show {
            connection,
            agent_id,
        } => {
            let api = Api::new(&connection)?;
            let agent = api
                .call(
                    Method::GET,
                    &format!("/api/v1/agents/{}", segment(&agent_id)),
                    None,
                    "reading the agent",
                )
                .await?;
            print_json(&agent)
        }
        AgentCommand::RegenerateSecret {
            connection,
            agent_id,
            grace_period,
        } => {
            let api = Api::new(&connection)?;
            let body = json!({ "grace_period_seconds": grace_period.unwrap_or(0) });
            let path = format!("/api/v1/agents/{}/secret/regenerate", segment(&agent_id));
            let result = api
                .call(Method::POST, &path, Some(body), "regenerating the secret")
                .await?;
            if connection.json {
                return print_json(&result);
            }
            println!(
                "New agent secret (shown only this once):\n\n    {}\n",
                result["agent_secret"].as_str().unwrap_or_default()
            );
            match result["previous_secret_valid_until"].as_str() {
                Some(until) => println!("The previous secret keeps working until {until}."),
                None => println!(
                    "The previous secret no longer works: update every service that used it."
                ),
            }
            Ok(())
        }
        AgentCommand::AddKey {
            connection,
            agent_id,
            file,
            kid,
            alg,
            expires_at,
        } => {
            let api = Api::new(&connection)?;
            let mut body = read_key_file(&file)?;
            if let Some(expires_at) = expires_at {
                body["expires_at"] = json!(expires_at);
            }
            if let Some(kid) = kid {
                body["kid"] = json!(kid);
            }
            if let Some(alg) = alg {
                body["alg"] = json!(alg);
            }
            let path = format!("/api/v1/agents/{}/keys", segment(&agent_id));
            let keys = api
                .call(Method::POST, &path, Some(body), "registering the key")
                .await?;
            if connection.json {
                return print_json(&keys);
            }
            for key in keys.as_array().into_iter().flatten() {
                println!(
                    "Registered key {} ({})",
                    key["kid"].as_str().unwrap_or_default(),
                    key["alg"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        AgentCommand::Keys {
            connection,
            agent_id,
        } => {
            let api = Api::new(&connection)?;
            let path = format!("/api/v1/agents/{}/keys", segment(&agent_id));
            let keys = api.call(Method::GET, &path, None, "listing keys").await?;
            if connection.json {
                return print_json(&keys);
            }
            println!("{:<45} {:<6} {:<8} CREATED", "KID", "ALG", "STATUS");
            for key in keys.as_array().into_iter().flatten() {
                println!(
                    "{:<45} {:<6} {:<8} {}",
                    key["kid"].as_str().unwrap_or_default(),
                    key["alg"].as_str().unwrap_or_default(),
                    key["status"].as_str().unwrap_or_default(),
                    key["created_at"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        AgentCommand::RevokeKey {
            connection,
            agent_id,
            kid,
        } => {
            let api = Api::new(&connection)?;
            let path = format!(
                "/api/v1/agents/{}/keys/{}",
                segment(&agent_id),
                segment(&kid)
            );
            api.call(Method::DELETE, &path, None, "revoking the key")
                .await?;
            if !connection.json {
                println!(
                    "Revoked key {kid} of agent {agent_id}: assertions signed with it are refused from now on."
                );
            }
            Ok(())
        }
        AgentCommand::RevokeTokens {
            connection,
            agent_id,
        } => {
            let api = Api::new(&connection)?;
            let path = format!("/api/v1/agents/{}/tokens/revoke", segment(&agent_id));
            let agent = api
                .call(Method::POST, &path, None, "revoking the agent's tokens")
                .await?;
            if connection.json {
                return print_json(&agent);
            }
            println!("Every token agent {agent_id} was issued so far is now revoked.");
            Ok(())
        }
        AgentCommand::Disable {
            connection,
            agent_id,
        } => set_status(&connection, &agent_id, "disabled").await,
        AgentCommand::Enable {
            connection,
            agent_id,
        } => set_status(&connection, &agent_id, "active").await,
        AgentCommand::Delete {
            connection,
            agent_id,
            yes,
        } => {
            let api = Api::new(&connection)?;
            if !yes && std::io::stdin().is_terminal() {
                print!(
                    "Delete agent {agent_id} and its credentials? This cannot be undone. [y/N] "
                );
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    return Err(CliError::failure("not deleted"));
                }
            }
            api.call(
                Method::DELETE,
                &format!("/api/v1/agents/{}", segment(&agent_id)),
                None,
                "deleting the agent",
            )
            .await?;
            if !connection.json {
                println!("Deleted agent {agent_id}.");
            }
            Ok(())
        }
    }
}

async fn set_status(
    connection: &AdminConnection,
    agent_id: &str,
    status: &str,
) -> Result<(), CliError> {
    let api = Api::new(connection)?;
    let path = format!("/api/v1/agents/{}", segment(agent_id));
    let agent = api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "status": status })),
            "updating the agent",
        )
        .await?;
    if connection.json {
        return print_json(&agent);
    }
    println!(
        "Agent {agent_id} is now {}.",
        agent["status"].as_str().unwrap_or(status)
    );
    Ok(())
}

/// Reads a public key file as the admin API's key fields: `{"pem": …}`, `{"jwk": …}` or
/// `{"jwks": …}`.
fn read_key_file(path: &std::path::Path) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
    if text.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::failure(format!("{} is not valid JSON: {e}", path.display())))?;
        return Ok(if value.get("keys").is_some() {
            json!({ "jwks": value })
        } else {
            json!({ "jwk": value })
        });
    }
    Ok(json!({ "pem": text }))
}
