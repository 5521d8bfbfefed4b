//! `signet cert …`: client certificates for mutual TLS. Operators issue certificates from the
//! agent CA, register self-signed ones, list and revoke them (admin API); an agent renews its
//! own certificate over mutual TLS (`renew`), writing the new files atomically with mode 0600.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::admin_api::{AdminConnection, Api, print_json, segment};
use super::client::{json as read_json, mtls_client, unreachable};
use super::{CliError, EXIT_FAILURE, write_private};

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a client certificate from Signet's agent CA for a tls_client_auth agent.
    Issue {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// The agent's CSR (PEM). Without it, a new P-256 key is generated into --key-out.
        #[arg(long, conflicts_with = "key_out")]
        csr: Option<PathBuf>,
        /// Where to write a newly generated private key (mode 0600).
        #[arg(long)]
        key_out: Option<PathBuf>,
        /// Where to write the certificate (PEM); default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Lifetime in seconds (default: the server's SIGNET_AGENT_CERT_TTL).
        #[arg(long)]
        lifetime: Option<u64>,
    },
    /// Register a certificate (PEM) with a self_signed_tls_client_auth agent.
    Add {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// The certificate file.
        #[arg(long)]
        file: PathBuf,
    },
    /// List an agent's registered and issued certificates.
    List {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
    },
    /// Remove a registered certificate from an agent.
    Remove {
        #[command(flatten)]
        connection: AdminConnection,
        agent_id: String,
        /// x5t#S256 thumbprint (base64url: it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        thumbprint: String,
    },
    /// Revoke a certificate at once, by thumbprint or by issuer and serial.
    Revoke {
        #[command(flatten)]
        connection: AdminConnection,
        /// x5t#S256 thumbprint (base64url: it may begin with `-`).
        #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["issuer", "serial"], required_unless_present = "serial")]
        thumbprint: Option<String>,
        /// Issuer DN (RFC 4514), with --serial.
        #[arg(long, requires = "serial")]
        issuer: Option<String>,
        /// Serial number in hex, with --issuer.
        #[arg(long, requires = "issuer")]
        serial: Option<String>,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// As the agent: renew its certificate over mutual TLS with the current one.
    Renew {
        /// Base URL of the Signet server's TLS listener (or its issuer URL; the mTLS address is
        /// then read from the metadata).
        #[arg(long, env = "SIGNET_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The current certificate (PEM); replaced by the new one.
        #[arg(long, env = "SIGNET_AGENT_CERT_FILE")]
        cert: PathBuf,
        /// The current private key (PEM); replaced by a new one unless --keep-key.
        #[arg(long, env = "SIGNET_AGENT_CERT_KEY_FILE")]
        key: PathBuf,
        /// CA certificate(s) to trust for the server's TLS certificate (e.g. dev-ca.pem).
        #[arg(long, env = "SIGNET_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// Renew for the same key instead of generating a new one.
        #[arg(long)]
        keep_key: bool,
    },
}

fn read(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::failure(format!("{what}: cannot read {}: {e}", path.display())))
}

pub async fn run(command: CertCommand) -> Result<(), CliError> {
    use reqwest::Method;
    match command {
        CertCommand::Issue {
            connection,
            agent_id,
            csr,
            key_out,
            out,
            lifetime,
        } => {
            let api = Api::new(&connection)?;
            let (csr, new_key) = match (csr, &key_out) {
                (Some(path), _) => (read(&path, "--csr")?, None),
                (None, Some(_)) => {
                    let (key, csr) = signet_core::pki::csr::new_key_and_csr(&agent_id)
                        .map_err(|e| CliError::failure(e.to_string()))?;
                    (csr, Some(key))
                }
                (None, None) => {
                    return Err(CliError::new(
                        2,
                        "give --csr FILE (the agent's CSR), or --key-out FILE to generate a key here",
                    ));
                }
            };
            let mut body = json!({ "csr": csr });
            if let Some(lifetime) = lifetime {
                body["lifetime_seconds"] = json!(lifetime);
            }
            let path = format!("/api/v1/agents/{}/certificates/issue", segment(&agent_id));
            let issued = api
                .call(Method::POST, &path, Some(body), "issuing the certificate")
                .await?;
            if let (Some(key), Some(key_out)) = (new_key, &key_out) {
                write_private(key_out, key.as_bytes())?;
            }
            let certificate = issued["certificate"].as_str().unwrap_or_default();
            match &out {
                Some(out) => write_private(out, certificate.as_bytes())?,
                None if !connection.json => print!("{certificate}"),
                None => {}
            }
            if connection.json {
                return print_json(&issued);
            }
            if out.is_some() {
                println!(
                    "Certificate issued for {agent_id}: serial {}, thumbprint {}, valid until {}",
                    issued["serial"].as_str().unwrap_or_default(),
                    issued["thumbprint"].as_str().unwrap_or_default(),
                    issued["not_after"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        CertCommand::Add {
            connection,
            agent_id,
            file,
        } => {
            let api = Api::new(&connection)?;
            let body = json!({ "certificate": read(&file, "--file")? });
            let path = format!("/api/v1/agents/{}/certificates", segment(&agent_id));
            let added = api
                .call(
                    Method::POST,
                    &path,
                    Some(body),
                    "registering the certificate",
                )
                .await?;
            if connection.json {
                return print_json(&added);
            }
            print_certificates(added.as_array().map(Vec::as_slice).unwrap_or_default());
            Ok(())
        }
        CertCommand::List {
            connection,
            agent_id,
        } => {
            let api = Api::new(&connection)?;
            let path = format!("/api/v1/agents/{}/certificates", segment(&agent_id));
            let listed = api
                .call(Method::GET, &path, None, "listing certificates")
                .await?;
            if connection.json {
                return print_json(&listed);
            }
            print_certificates(
                listed["registered"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            );
            for issued in listed["issued"].as_array().into_iter().flatten() {
                println!(
                    "issued      {}  serial {}  until {}{}",
                    issued["thumbprint"].as_str().unwrap_or_default(),
                    issued["serial"].as_str().unwrap_or_default(),
                    issued["not_after"].as_str().unwrap_or_default(),
                    if issued["revoked_at"].is_string() {
                        "  REVOKED"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        CertCommand::Remove {
            connection,
            agent_id,
            thumbprint,
        } => {
            let api = Api::new(&connection)?;
            let path = format!(
                "/api/v1/agents/{}/certificates/{}",
                segment(&agent_id),
                segment(&thumbprint)
            );
            api.call(Method::DELETE, &path, None, "removing the certificate")
                .await?;
            println!("Certificate {thumbprint} removed from {agent_id}");
            Ok(())
        }
        CertCommand::Revoke {
            connection,
            thumbprint,
            issuer,
            serial,
            reason,
        } => {
            let api = Api::new(&connection)?;
            let body = json!({
                "thumbprint": thumbprint,
                "issuer": issuer,
                "serial": serial,
                "reason": reason,
            });
            let body = Value::Object(
                body.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            let revoked = api
                .call(
                    Method::POST,
                    "/api/v1/certificates/revocations",
                    Some(body),
                    "revoking the certificate",
                )
                .await?;
            if connection.json {
                return print_json(&revoked);
            }
            println!("Certificate revoked; it is refused from now on.");
            Ok(())
        }
        CertCommand::Renew {
            url,
            cert,
            key,
            ca_file,
            keep_key,
        } => renew(&url, &cert, &key, ca_file.as_deref(), keep_key).await,
    }
}

fn print_certificates(certificates: &[Value]) {
    for c in certificates {
        println!(
            "registered  {}  {}  until {}  {}",
            c["thumbprint"].as_str().unwrap_or_default(),
            c["status"].as_str().unwrap_or_default(),
            c["not_after"].as_str().unwrap_or_default(),
            c["subject"].as_str().unwrap_or_default()
        );
    }
}

/// The agent side of renewal: a CSR for a new key (or the current one), sent over mutual TLS
/// with the current certificate; the new certificate and key replace the files atomically.
async fn renew(
    url: &str,
    cert_path: &Path,
    key_path: &Path,
    ca_file: Option<&Path>,
    keep_key: bool,
) -> Result<(), CliError> {
    let cert = read(cert_path, "SIGNET_AGENT_CERT_FILE")?;
    let key = read(key_path, "SIGNET_AGENT_CERT_KEY_FILE")?;
    let (new_key, csr) = if keep_key {
        let csr = signet_core::pki::csr::csr_for_key(&key, "signet-agent")
            .map_err(|e| CliError::failure(format!("SIGNET_AGENT_CERT_KEY_FILE: {e}")))?;
        (None, csr)
    } else {
        let (key, csr) = signet_core::pki::csr::new_key_and_csr("signet-agent")
            .map_err(|e| CliError::failure(e.to_string()))?;
        (Some(key), csr)
    };
    let (client, base) = mtls_client(url, &cert, &key, ca_file).await?;
    let response = client
        .post(format!("{base}/api/v1/self/certificate"))
        .json(&json!({ "csr": csr }))
        .send()
        .await
        .map_err(|e| unreachable(&base, e))?;
    let issued = read_json(response, "renewing the certificate").await?;
    let certificate = issued["certificate"]
        .as_str()
        .ok_or_else(|| CliError::new(EXIT_FAILURE, "the server's answer has no certificate"))?;
    // Key first: a certificate next to the wrong key would be unusable.
    if let Some(new_key) = new_key {
        write_private(key_path, new_key.as_bytes())?;
    }
    write_private(cert_path, certificate.as_bytes())?;
    println!(
        "Certificate renewed: thumbprint {}, valid until {}",
        issued["thumbprint"].as_str().unwrap_or_default(),
        issued["not_after"].as_str().unwrap_or_default()
    );
    Ok(())
}
