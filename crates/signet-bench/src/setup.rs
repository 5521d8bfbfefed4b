//! Preparing a run: a one-shot HTTP client, and the agents and credentials each mode needs,
//! created through the admin API (or read from a `seed` file).

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use signet_core::token::{SigningAlgorithm, SigningKey};

/// One request on a fresh connection; returns status and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

/// An agent the load uses.
#[derive(Debug, Clone)]
pub struct BenchAgent {
    pub agent_id: String,
    pub secret: Option<String>,
    /// PKCS#8 of the agent's ES256 key, for private_key_jwt.
    pub key_pkcs8: Option<Vec<u8>>,
    /// A self-signed client certificate (DER) and its PKCS#8 key, for the mtls modes.
    pub certificate: Option<(Vec<u8>, Vec<u8>)>,
}

/// Which credentials the bench agents get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    Secret,
    PrivateKeyJwt,
    SelfSignedCertificate,
    /// tls_client_auth with a certificate Signet's agent CA issues from a CSR.
    IssuedCertificate,
}

/// The CA certificates in a PEM file, as rustls roots.
pub fn root_store(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// A TLS client presenting `agent`'s certificate. With `resume`, TLS session resumption is
/// allowed (rustls' default); without, every connection does a full handshake.
pub fn tls_connector(
    roots: std::sync::Arc<rustls::RootCertStore>,
    agent: &BenchAgent,
    resume: bool,
) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let (cert, key) = agent
        .certificate
        .clone()
        .ok_or("the agent has no certificate")?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(|e| e.to_string())?;
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

/// A new key and a certificate for it issued by the agent CA: (DER, PKCS#8 key).
async fn issued_certificate(
    addr: SocketAddr,
    headers: &[(&str, String)],
    agent_id: &str,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| e.to_string())?;
    let (status, response) = request(
        addr,
        "POST",
        &format!("/api/v1/agents/{agent_id}/certificates/issue"),
        headers,
        json!({ "csr": csr }).to_string().into_bytes(),
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "issuing a bench certificate failed with HTTP {status}: {}",
            String::from_utf8_lossy(&response)
        ));
    }
    let issued: Value = serde_json::from_slice(&response).map_err(|e| e.to_string())?;
    let der = signet_core::pki::certificate::pem_certificates(
        issued["certificate"].as_str().unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?
    .into_iter()
    .next()
    .ok_or("the issued certificate is missing")?;
    Ok((der, key.serialize_der()))
}

/// A self-signed ECDSA P-256 client certificate: (DER, PKCS#8 key, PEM).
fn self_signed_certificate(name: &str) -> Result<(Vec<u8>, Vec<u8>, String), String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.der().to_vec(), key.serialize_der(), cert.pem()))
}

impl BenchAgent {
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                self.agent_id,
                self.secret.as_deref().unwrap_or_default()
            ))
        )
    }

    pub fn signing_key(&self) -> Option<SigningKey> {
        self.key_pkcs8
            .as_ref()
            .and_then(|der| SigningKey::from_pkcs8(SigningAlgorithm::Es256, der).ok())
    }
}

/// Registers `count` agents through the admin API: secret agents, ES256 private_key_jwt ones, or
/// self_signed_tls_client_auth ones with a generated certificate.
pub async fn create_agents(
    addr: SocketAddr,
    admin_token: &str,
    count: usize,
    kind: AgentKind,
) -> Result<Vec<BenchAgent>, String> {
    let mut agents = Vec::with_capacity(count);
    for i in 0..count {
        let mut certificate = None;
        let (body, pkcs8) = if kind == AgentKind::SelfSignedCertificate {
            let (der, key, pem) = self_signed_certificate(&format!("bench-{i}"))?;
            certificate = Some((der, key));
            let body = json!({
                "name": format!("bench-{i}"),
                "token_endpoint_auth_method": "self_signed_tls_client_auth",
                "scopes": ["bench"],
                "certificates": [pem],
            });
            (body, None)
        } else if kind == AgentKind::IssuedCertificate {
            let body = json!({
                "name": format!("bench-{i}"),
                "token_endpoint_auth_method": "tls_client_auth",
                "scopes": ["bench"],
            });
            (body, None)
        } else if kind == AgentKind::PrivateKeyJwt {
            let (key, pkcs8) =
                SigningKey::generate(SigningAlgorithm::Es256).map_err(|e| e.to_string())?;
            let body = json!({
                "name": format!("bench-{i}"),
                "token_endpoint_auth_method": "private_key_jwt",
                "scopes": ["bench"],
                "jwks": { "keys": [key.public_jwk()] },
            });
            (body, Some(pkcs8))
        } else {
            (
                json!({ "name": format!("bench-{i}"), "scopes": ["bench"] }),
                None,
            )
        };
        let headers = [
            ("authorization", format!("Bearer {admin_token}")),
            ("content-type", "application/json".to_string()),
        ];
        let (status, response) = request(
            addr,
            "POST",
            "/api/v1/agents",
            &headers,
            body.to_string().into_bytes(),
        )
        .await?;
        if status != 201 {
            return Err(format!(
                "creating a bench agent failed with HTTP {status}: {}",
                String::from_utf8_lossy(&response)
            ));
        }
        let created: Value = serde_json::from_slice(&response).map_err(|e| e.to_string())?;
        if kind == AgentKind::IssuedCertificate {
            let agent_id = created["agent_id"].as_str().unwrap_or_default();
            certificate = Some(issued_certificate(addr, &headers, agent_id).await?);
        }
        agents.push(BenchAgent {
            agent_id: created["agent_id"].as_str().unwrap_or_default().to_string(),
            secret: created["agent_secret"].as_str().map(str::to_string),
            key_pkcs8: pkcs8,
            certificate,
        });
    }
    Ok(agents)
}

/// Reads agents written by `signet-bench seed` (JSON lines with `agent_id` and `agent_secret`).
pub fn read_agents_file(path: &std::path::Path, limit: usize) -> Result<Vec<BenchAgent>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .take(limit)
        .map(|line| {
            let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            Ok(BenchAgent {
                agent_id: value["agent_id"].as_str().unwrap_or_default().to_string(),
                secret: value["agent_secret"].as_str().map(str::to_string),
                key_pkcs8: None,
                certificate: None,
            })
        })
        .collect()
}

/// Gets one access token for `agent`, for the introspection mode.
pub async fn access_token(addr: SocketAddr, agent: &BenchAgent) -> Result<String, String> {
    let headers = [
        ("authorization", agent.basic_header()),
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let (status, body) = request(
        addr,
        "POST",
        "/oauth2/token",
        &headers,
        b"grant_type=client_credentials".to_vec(),
    )
    .await?;
    if status != 200 {
        return Err(format!(
            "getting a token for the introspection run failed with HTTP {status}"
        ));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    value["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "no access_token".to_string())
}
