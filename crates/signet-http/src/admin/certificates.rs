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
use signet_core::audit::event;
use signet_core::pki::certificate::{normalize_serial, pem_blocks, pem_certificates};
use signet_core::pki::{Certificate, PkiError, Revocation, dn};
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
    certificate: Option<String>,
    /// A JWK whose `x5c` holds the certificate (RFC 7517 §4.7).
    #[schema(value_type = Option<Object>)]
    jwk: Option<Value>,
}

/// A registered certificate as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    /// `x5t#S256`: base64url SHA-256 of the DER, the value in certificate-bound tokens' `cnf`.
    thumbprint: String,
    subject: String,
    not_before: String,
    not_after: String,
    /// `active`, `expired`, `not_yet_valid` or `revoked`.
    status: &'static str,
    created_at: String,
    certificate: String,
}

/// A certificate issued by the agent CA.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedView {
    serial: String,
    thumbprint: String,
    subject: String,
    not_before: String,
    not_after: String,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

impl IssuedView {
    fn new(record: &IssuedRecord) -> Self {
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
    agent_id: String,
    /// The certificate (PEM).
    certificate: String,
    /// The agent CA's certificate (PEM), the issuer to trust.
    ca_certificate: String,
    thumbprint: String,
    serial: String,
    not_before: String,
    not_after: String,
}

/// What to revoke: `thumbprint`, or `issuer` and `serial`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificateRequest {
    /// `x5t#S256` of the certificate.
    thumbprint: Option<String>,
    /// Issuer DN (RFC 4514), with `serial`.
    issuer: Option<String>,
    /// Serial number in hex (colons allowed), with `issuer`.
    serial: Option<String>,
    /// Why, for the audit log.
    reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationView {
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    reason: String,
    actor: String,
    revoked_at: String,
}

/// A CA trusted for `tls_client_auth`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedCaView {
    subject: String,
    thumbprint: String,
    not_after: String,
    /// `agent_ca` (Signet's own) or `client_ca_file`.
    source: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedCas {
    authorities: Vec<TrustedCaView>,
    /// CRLs loaded from `SIGNET_CLIENT_CRL_FILES`.
    crls: usize,
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

fn parse_jwk(jwk: &Value) -> Result<Certificate, Problem> {
    let bad = |why: &str| Problem::invalid_field("jwk", format!("jwk: {why}"));
    let first = jwk
        .get("x5c")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `x5c` certificate"))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(first)
        .map_err(|_| bad("`x5c` is not base64 (RFC 7517 §4.7: standard base64, not base64url)"))?;
    Certificate::parse(&der).map_err(certificate_problem)
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

async fn views(state: &AppState, agent_id: &str) -> Result<Vec<CertificateView>, Problem> {
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
    let agent = find_agent(&state, &agent_id).await?;
    if agent.token_endpoint_auth_method != AuthMethod::SelfSignedTlsClientAuth {
        return Err(Problem::conflict(format!(
            "the agent authenticates with {}; registered certificates are for self_signed_tls_client_auth agents",
            agent.token_endpoint_auth_method.as_str()
        )));
    }
    let certificate = match (&request.certificate, &request.jwk) {
        (Some(pem), None) => parse_one_pem(pem)?,
        (None, Some(jwk)) => parse_jwk(jwk)?,
        _ => {
            return Err(Problem::bad_request(
                "give exactly one of certificate or jwk",
            ));
        }
    };
    let now = state.now();
    state
        .store
        .add_agent_certificates(&agent_id, std::slice::from_ref(&certificate), now)
        .await?;
    let audit = admin
        .event(event::AGENT_CERTIFICATE_ADDED, &agent_id)
        .with_detail(json!({
            "thumbprint": certificate.thumbprint,
            "subject": certificate.subject_display,
            "not_after": rfc3339(certificate.not_after),
        }));
    state.store.audit().record(audit).await?;
    Ok((StatusCode::CREATED, Json(views(&state, &agent_id).await?)))
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
    if !state
        .store
        .remove_agent_certificate(&agent_id, &thumbprint, state.now())
        .await?
    {
        return Err(Problem::not_found("certificate"));
    }
    let audit = admin
        .event(event::AGENT_CERTIFICATE_REMOVED, &agent_id)
        .with_detail(json!({ "thumbprint": thumbprint }));
    state.store.audit().record(audit).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let agent = find_agent(&state, &agent_id).await?;
    let issued = issue(&state, &agent, &request, &admin.actor_name()).await?;
    let audit = admin
        .event(event::CERTIFICATE_ISSUED, &agent_id)
        .with_detail(issued_detail(&issued));
    state.store.audit().record(audit).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// The audit detail of an issued certificate.
pub fn issued_detail(issued: &IssuedCertificateResponse) -> Value {
    json!({
        "serial": issued.serial,
        "thumbprint": issued.thumbprint,
        "not_after": issued.not_after,
    })
}

/// Signs `request` for `agent` with the agent CA and records the certificate.
pub async fn issue(
    state: &AppState,
    agent: &Agent,
    request: &IssueRequest,
    _actor: &str,
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
    state
        .store
        .record_issued_certificate(&IssuedRecord {
            serial: certificate.serial.clone(),
            agent_id: agent.agent_id.to_string(),
            thumbprint: certificate.thumbprint.clone(),
            subject: certificate.subject_display.clone(),
            not_before: certificate.not_before,
            not_after: certificate.not_after,
            issued_at: now,
            revoked_at: None,
        })
        .await?;
    Ok(IssuedCertificateResponse {
        agent_id: agent.agent_id.to_string(),
        certificate: certificate.to_pem(),
        ca_certificate: ca.certificate().to_pem(),
        thumbprint: certificate.thumbprint.clone(),
        serial: certificate.serial.clone(),
        not_before: rfc3339(certificate.not_before),
        not_after: rfc3339(certificate.not_after),
    })
}

/// Revokes a certificate by thumbprint, or by issuer and serial. It is refused at once at the
/// token endpoint; a certificate of the agent CA is also listed in its CRL.
#[utoipa::path(
    post, path = "/api/v1/certificates/revocations", tag = "certificates",
    request_body = RevokeCertificateRequest,
    responses(
        (status = 201, description = "Revoked", body = RevocationView),
        (status = 200, description = "Already revoked", body = RevocationView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = []))
)]
pub async fn revoke_certificate(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RevokeCertificateRequest>,
) -> Result<(StatusCode, Json<RevocationView>), Problem> {
    let revocation = match (&request.thumbprint, &request.issuer, &request.serial) {
        (Some(thumbprint), None, None) => {
            let valid = thumbprint.len() == 43
                && thumbprint
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(Problem::invalid_field(
                    "thumbprint",
                    "thumbprint: the x5t#S256 value (43 base64url characters)",
                ));
            }
            Revocation::Thumbprint(thumbprint.clone())
        }
        (None, Some(issuer), Some(serial)) => Revocation::IssuerSerial {
            issuer: dn::canonical_from_str(issuer)
                .map_err(|e| Problem::invalid_field("issuer", format!("issuer: {e}")))?,
            serial: normalize_serial(serial)
                .map_err(|e| Problem::invalid_field("serial", format!("serial: {e}")))?,
        },
        _ => {
            return Err(Problem::bad_request(
                "give thumbprint, or issuer and serial",
            ));
        }
    };
    let reason = request.reason.clone().unwrap_or_default();
    if reason.chars().count() > 500 {
        return Err(Problem::invalid_field(
            "reason",
            "reason: at most 500 characters",
        ));
    }
    let now = state.now();
    let ca_issuer = state
        .pki
        .agent_ca()
        .map(|ca| ca.certificate().subject.clone());
    let inserted = state
        .store
        .revoke_certificate(
            &revocation,
            ca_issuer.as_deref(),
            &reason,
            &admin.actor_name(),
            now,
        )
        .await?;
    state.pki.reload_revocations(&state.store).await?;
    let view = revocation_view(&revocation, reason, admin.actor_name(), now);
    let audit = admin
        .event(event::CERTIFICATE_REVOKED, "")
        .with_agent(None)
        .with_detail(serde_json::to_value(&view).unwrap_or_default());
    state.store.audit().record(audit).await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

fn revocation_view(
    revocation: &Revocation,
    reason: String,
    actor: String,
    revoked_at: i64,
) -> RevocationView {
    let (thumbprint, issuer, serial) = match revocation {
        Revocation::Thumbprint(t) => (Some(t.clone()), None, None),
        Revocation::IssuerSerial { issuer, serial } => {
            (None, Some(issuer.clone()), Some(serial.clone()))
        }
    };
    RevocationView {
        thumbprint,
        issuer,
        serial,
        reason,
        actor,
        revoked_at: rfc3339(revoked_at),
    }
}

/// Lists operator revocations, oldest first.
#[utoipa::path(
    get, path = "/api/v1/certificates/revocations", tag = "certificates",
    responses((status = 200, body = Vec<RevocationView>)),
    security(("admin_token" = []))
)]
pub async fn list_revocations(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<RevocationView>>, Problem> {
    let records = state.store.certificate_revocations().await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| revocation_view(&r.revocation, r.reason, r.actor, r.revoked_at))
            .collect(),
    ))
}

/// The CAs trusted for `tls_client_auth`: Signet's agent CA and `SIGNET_CLIENT_CA_FILE`.
#[utoipa::path(
    get, path = "/api/v1/certificates/trusted-cas", tag = "certificates",
    responses((status = 200, body = TrustedCas)),
    security(("admin_token" = []))
)]
pub async fn trusted_cas(_admin: Admin, State(state): State<AppState>) -> Json<TrustedCas> {
    let trust = state.pki.trust();
    let agent_ca = state
        .pki
        .agent_ca()
        .map(|ca| ca.certificate().thumbprint.clone());
    Json(TrustedCas {
        authorities: trust
            .authorities()
            .iter()
            .map(|c| TrustedCaView {
                subject: c.subject_display.clone(),
                thumbprint: c.thumbprint.clone(),
                not_after: rfc3339(c.not_after),
                source: if Some(&c.thumbprint) == agent_ca.as_ref() {
                    "agent_ca"
                } else {
                    "client_ca_file"
                },
            })
            .collect(),
        crls: trust.crl_count(),
    })
}
