//! Certificates for mutual TLS in the admin API: the certificates a
//! `self_signed_tls_client_auth` agent registers (PEM, or a JWK with `x5c`), certificates issued
//! by Signet's agent CA from a CSR, operator revocation by thumbprint or issuer and serial, and
//! the list of trusted CAs. Every change is audited with the actor and takes effect at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signet_core::agent::{Agent, AuthMethod};
use signet_core::audit::{AuditEvent, event};
use signet_core::jwk::{KeyInput, parse_keys};
use signet_core::pki::certificate::{pem_blocks, pem_certificates};
use signet_core::pki::{Certificate, PkiError};
use signet_store::{IssuedRecord, StoredCertificate};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

/// A certificate to register: exactly one of `certificate` (PEM) or `jwk` (with `x5c`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRegistration {
    /// PEM (`BEGIN CERTIFICATE`).
    pub(crate) certificate: Option<String>,
    /// A JWK whose `x5c` holds the certificate (RFC 7517 §4.7).
    #[schema(value_type = Option<Object>)]
    pub(crate) jwk: Option<Value>,
}

/// A registered certificate as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    /// `x5t#S256`: base64url SHA-256 of the DER, the value in certificate-bound tokens' `cnf`.
    pub(crate) thumbprint: String,
    pub(crate) subject: String,
    pub(crate) not_before: String,
    pub(crate) not_after: String,
    /// `active`, `expired`, `not_yet_valid` or `revoked`.
    pub(crate) status: &'static str,
    pub(crate) created_at: String,
    pub(crate) certificate: String,
}

/// A certificate issued by the agent CA.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedView {
    pub(crate) serial: String,
    pub(crate) thumbprint: String,
    pub(crate) subject: String,
    pub(crate) not_before: String,
    pub(crate) not_after: String,
    pub(crate) issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_at: Option<String>,
}

impl IssuedView {
    pub(crate) fn new(record: &IssuedRecord) -> Self {
        Self {
            serial: record.serial.clone(),
            thumbprint: record.thumbprint.clone(),
            subject: record.subject.clone(),
            not_before: rfc3339(record.not_before),
            not_after: rfc3339(record.not_after),
            issued_at: rfc3339(record.issued_at),
            revoked_at: record.revoked_at.map(rfc3339),
        }
    }
}

/// An agent's certificates: registered ones and those the agent CA issued to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentCertificates {
    registered: Vec<CertificateView>,
    issued: Vec<IssuedView>,
}

/// A CSR for the agent CA to sign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// PKCS#10 request (PEM, `BEGIN CERTIFICATE REQUEST`). Only its public key is used; the
    /// subject and names come from the agent's identity.
    pub csr: String,
    /// Lifetime in seconds; default `SIGNET_AGENT_CERT_TTL` (one day), at most 90 days.
    pub lifetime_seconds: Option<u64>,
}

/// A certificate the agent CA issued.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCertificateResponse {
    pub(crate) agent_id: String,
    /// The certificate (PEM).
    pub(crate) certificate: String,
    /// The agent CA's certificate (PEM), the issuer to trust.
    pub(crate) ca_certificate: String,
    pub(crate) thumbprint: String,
    pub(crate) serial: String,
    pub(crate) not_before: String,
    pub(crate) not_after: String,
}

/// A certificate as a 400 problem.
fn certificate_problem(error: PkiError) -> Problem {
    Problem::invalid_field("certificate", format!("certificate: {error}"))
}

/// Parses PEM certificates given at agent creation.
pub fn parse_pems(pems: &[String]) -> Result<Vec<Certificate>, Problem> {
    let mut out = Vec::new();
    for pem in pems {
        out.push(parse_one_pem(pem)?);
    }
    Ok(out)
}

fn parse_one_pem(pem: &str) -> Result<Certificate, Problem> {
    if pem.contains("PRIVATE KEY") {
        return Err(Problem::invalid_field(
            "certificate",
            "certificate: that is a private key; submit only the certificate",
        ));
    }
    let der = pem_certificates(pem).map_err(certificate_problem)?;
    match der.as_slice() {
        [one] => Certificate::parse(one).map_err(certificate_problem),
        [] => Err(Problem::invalid_field(
            "certificate",
            "certificate: no `BEGIN CERTIFICATE` block",
        )),
        _ => Err(Problem::invalid_field(
            "certificate",
            "certificate: submit one certificate, not a chain",
        )),
    }
}

/// The certificate a JWK carries in `x5c` (RFC 7517 §4.7); the certificate is what is
/// registered. The JWK's key members (`kty`, `crv`, `x`, `y`, `n`, `e`), those it has, must be
/// the certificate's key's: a JWK that says one key and carries another is refused.
fn parse_jwk(jwk: &Value, field: &'static str) -> Result<Certificate, Problem> {
    let bad = |why: &str| Problem::invalid_field(field, format!("{field}: {why}"));
    let first = jwk
        .get("x5c")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `x5c` certificate"))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(first)
        .map_err(|_| bad("`x5c` is not base64 (RFC 7517 §4.7: standard base64, not base64url)"))?;
    let certificate = Certificate::parse(&der).map_err(certificate_problem)?;
    // The certificate's key as a JWK; a key type Signet does not read is left to the certificate.
    if let Ok(carried) = parse_keys(KeyInput::Pem(&certificate.to_pem()), None, None, 0) {
        let carried = &carried[0].jwk;
        let differs = ["kty", "crv", "x", "y", "n", "e"]
            .into_iter()
            .any(|member| {
                jwk.get(member)
                    .is_some_and(|v| carried.get(member) != Some(v))
            });
        if differs {
            return Err(bad(
                "its key members are not the key of its `x5c` certificate (RFC 7517 §4.7)",
            ));
        }
    }
    Ok(certificate)
}

/// Adds the certificates of a JWK Set whose keys carry them in `x5c` (how RFC 8705 §2.2 clients
/// register), given at agent creation as `jwks`.
pub fn add_from_jwk_set(certificates: &mut Vec<Certificate>, jwks: &Value) -> Result<(), Problem> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| {
            Problem::invalid_field("jwks", "jwks: a JWK Set is {\"keys\": [...]}, not empty")
        })?;
    for key in keys {
        let certificate = parse_jwk(key, "jwks")?;
        if certificates
            .iter()
            .any(|c| c.thumbprint == certificate.thumbprint)
        {
            return Err(Problem::invalid_field(
                "jwks",
                "jwks: the same certificate twice",
            ));
        }
        certificates.push(certificate);
    }
    Ok(())
}

fn certificate_view(stored: &StoredCertificate, revoked: bool) -> CertificateView {
    let now = signet_core::now();
    let r = &stored.registered;
    let status = if revoked {
        "revoked"
    } else if now > r.not_after {
        "expired"
    } else if now < r.not_before {
        "not_yet_valid"
    } else {
        "active"
    };
    CertificateView {
        thumbprint: r.thumbprint.clone(),
        subject: r.subject.clone(),
        not_before: rfc3339(r.not_before),
        not_after: rfc3339(r.not_after),
        status,
        created_at: rfc3339(r.created_at),
        certificate: signet_core::pki::certificate::to_pem("CERTIFICATE", &stored.der),
    }
}

async fn find_agent(state: &AppState, agent_id: &str) -> Result<Agent, Problem> {
    state
        .store
        .find_agent(agent_id)
        .await?
        .ok_or_else(|| Problem::not_found("agent"))
}

pub(crate) async fn views(
    state: &AppState,
    agent_id: &str,
) -> Result<Vec<CertificateView>, Problem> {
    let revoked = state.pki.revoked();
    let stored = state.store.agent_certificates(agent_id).await?;
    Ok(stored
        .iter()
        .map(|s| {
            let revoked = Certificate::parse(&s.der).is_ok_and(|c| revoked.contains(&c));
            certificate_view(s, revoked)
        })
        .collect())
}

/// Lists an agent's registered certificates and those the agent CA issued to it.
#[utoipa::path(
    get, path = "/api/v1/agents/{agent_id}/certificates", tag = "certificates",
    params(("agent_id" = String, Path)),
    responses((status = 200, body = AgentCertificates), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn list_certificates(
    _admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentCertificates>, Problem> {
    find_agent(&state, &agent_id).await?;
    let issued = state.store.issued_certificates(Some(&agent_id)).await?;
    Ok(Json(AgentCertificates {
        registered: views(&state, &agent_id).await?,
        issued: issued.iter().map(IssuedView::new).collect(),
    }))
}

/// Registers a certificate with a `self_signed_tls_client_auth` agent. Several may be
/// registered, so that the agent can move to a new certificate without downtime.
#[utoipa::path(
    post, path = "/api/v1/agents/{agent_id}/certificates", tag = "certificates",
    params(("agent_id" = String, Path)), request_body = CertificateRegistration,
    responses(
        (status = 201, body = Vec<CertificateView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn add_certificate(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<CertificateRegistration>,
) -> Result<(StatusCode, Json<Vec<CertificateView>>), Problem> {
    register_certificate(&admin, &state, &agent_id, &request).await?;
    Ok((StatusCode::CREATED, Json(views(&state, &agent_id).await?)))
}

/// Registers a certificate for `admin` (the admin API, or the console as its signed-in user)
/// and audits it.
pub(crate) async fn register_certificate(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    request: &CertificateRegistration,
) -> Result<(), Problem> {
    let agent = find_agent(state, agent_id).await?;
    if agent.token_endpoint_auth_method != AuthMethod::SelfSignedTlsClientAuth {
        return Err(Problem::conflict(format!(
            "the agent authenticates with {}; registered certificates are for self_signed_tls_client_auth agents",
            agent.token_endpoint_auth_method.as_str()
        )));
    }
    let certificate = match (&request.certificate, &request.jwk) {
        (Some(pem), None) => parse_one_pem(pem)?,
        (None, Some(jwk)) => parse_jwk(jwk, "jwk")?,
        _ => {
            return Err(Problem::bad_request(
                "give exactly one of certificate or jwk",
            ));
        }
    };
    let now = state.now();
    let audit = admin
        .event(event::AGENT_CERTIFICATE_ADDED, agent_id)
        .with_detail(json!({
            "thumbprint": certificate.thumbprint,
            "subject": certificate.subject_display,
            "not_after": rfc3339(certificate.not_after),
        }));
    state
        .store
        .add_agent_certificates(agent_id, std::slice::from_ref(&certificate), now, audit)
        .await?;
    Ok(())
}

/// Removes a registered certificate; the agent can no longer authenticate with it.
#[utoipa::path(
    delete, path = "/api/v1/agents/{agent_id}/certificates/{thumbprint}", tag = "certificates",
    params(("agent_id" = String, Path), ("thumbprint" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("admin_token" = []))
)]
pub async fn remove_certificate(
    admin: Admin,
    State(state): State<AppState>,
    Path((agent_id, thumbprint)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    remove(&admin, &state, &agent_id, &thumbprint).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a registered certificate for `admin` and audits it.
pub(crate) async fn remove(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    thumbprint: &str,
) -> Result<(), Problem> {
    let audit = admin
        .event(event::AGENT_CERTIFICATE_REMOVED, agent_id)
        .with_detail(json!({ "thumbprint": thumbprint }));
    if !state
        .store
        .remove_agent_certificate(agent_id, thumbprint, state.now(), audit)
        .await?
    {
        return Err(Problem::not_found("certificate"));
    }
    Ok(())
}

/// Issues a client certificate for a `tls_client_auth` agent from a CSR, signed by Signet's
/// agent CA. The subject and names are Signet's choice (the agent's binding and the URI SAN
/// `urn:signet:agent:<agent_id>`), never the CSR's.
#[utoipa::path(
    post, path = "/api/v1/agents/{agent_id}/certificates/issue", tag = "certificates",
    params(("agent_id" = String, Path)), request_body = IssueRequest,
    responses(
        (status = 201, body = IssuedCertificateResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn issue_certificate(
    admin: Admin,
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<IssueRequest>,
) -> Result<(StatusCode, Json<IssuedCertificateResponse>), Problem> {
    let issued = issue_for(&admin, &state, &agent_id, &request).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Issues a certificate from a CSR for `admin` and audits it.
pub(crate) async fn issue_for(
    admin: &Admin,
    state: &AppState,
    agent_id: &str,
    request: &IssueRequest,
) -> Result<IssuedCertificateResponse, Problem> {
    let agent = find_agent(state, agent_id).await?;
    let audit = admin.event(event::CERTIFICATE_ISSUED, agent_id);
    issue(state, &agent, request, audit).await
}

/// The audit detail of an issued certificate.
pub fn issued_detail(issued: &IssuedCertificateResponse) -> Value {
    json!({
        "serial": issued.serial,
        "thumbprint": issued.thumbprint,
        "not_after": issued.not_after,
    })
}

/// Signs `request` for `agent` with the agent CA and records the certificate together with
/// `audit` (given its detail here).
pub async fn issue(
    state: &AppState,
    agent: &Agent,
    request: &IssueRequest,
    audit: AuditEvent,
) -> Result<IssuedCertificateResponse, Problem> {
    if agent.token_endpoint_auth_method != AuthMethod::TlsClientAuth {
        return Err(Problem::conflict(format!(
            "the agent authenticates with {}; the agent CA issues certificates to tls_client_auth agents",
            agent.token_endpoint_auth_method.as_str()
        )));
    }
    let ca = state
        .pki
        .agent_ca()
        .ok_or_else(|| Problem::conflict("the agent CA is not available on this server"))?;
    let lifetime = request
        .lifetime_seconds
        .unwrap_or(state.config.mtls.agent_cert_ttl);
    if !(300..=90 * 86_400).contains(&lifetime) {
        return Err(Problem::invalid_field(
            "lifetime_seconds",
            "lifetime_seconds: between 300 seconds and 90 days",
        ));
    }
    let csr = pem_blocks(&request.csr, "CERTIFICATE REQUEST")
        .map_err(|e| Problem::invalid_field("csr", format!("csr: {e}")))?;
    let [csr] = csr.as_slice() else {
        return Err(Problem::invalid_field(
            "csr",
            "csr: give one `BEGIN CERTIFICATE REQUEST` block",
        ));
    };
    let now = state.now();
    let issued = ca
        .issue(
            csr,
            &agent.agent_id,
            agent.tls_client_auth.as_ref(),
            lifetime as i64,
            now,
        )
        .map_err(|e| Problem::invalid_field("csr", format!("csr: {e}")))?;
    let certificate = &issued.certificate;
    let response = IssuedCertificateResponse {
        agent_id: agent.agent_id.to_string(),
        certificate: certificate.to_pem(),
        ca_certificate: ca.certificate().to_pem(),
        thumbprint: certificate.thumbprint.clone(),
        serial: certificate.serial.clone(),
        not_before: rfc3339(certificate.not_before),
        not_after: rfc3339(certificate.not_after),
    };
    let record = IssuedRecord {
        serial: certificate.serial.clone(),
        agent_id: agent.agent_id.to_string(),
        thumbprint: certificate.thumbprint.clone(),
        subject: certificate.subject_display.clone(),
        not_before: certificate.not_before,
        not_after: certificate.not_after,
        issued_at: now,
        revoked_at: None,
    };
    let audit = audit.with_detail(issued_detail(&response));
    state
        .store
        .record_issued_certificate(&record, audit)
        .await?;
    Ok(response)
}
