//! The agent CA's public face: its certificate and CRL for anyone to fetch, and renewal, where
//! an agent presents its current certificate from the agent CA over mutual TLS and gets a new
//! one for the key in its CSR.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signet_core::audit::{AuditEvent, event};
use signet_core::client_auth::{ClientAuthError, PresentedCredentials};

use crate::admin::certificates::{IssueRequest, IssuedCertificateResponse, issue};
use crate::admin::json::ApiJson;
use crate::admin::problem::Problem;
use crate::request::Caller;
use crate::state::AppState;

/// The agent CA certificate (PEM): what resource servers and agents trust for certificates
/// Signet issued.
#[utoipa::path(
    get, path = "/pki/agent-ca.pem", tag = "pki",
    responses((status = 200, description = "The agent CA certificate", content_type = "application/x-pem-file", body = String),
              (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn ca_certificate(State(state): State<AppState>) -> Result<Response, Problem> {
    let ca = state
        .pki
        .agent_ca()
        .ok_or_else(|| Problem::not_found("agent CA"))?;
    let mut response = ca.certificate().to_pem().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    Ok(response)
}

/// The agent CA's CRL (DER, RFC 5280), listing the certificates it issued that were revoked
/// and have not expired. Signed afresh on each request, valid for a day.
#[utoipa::path(
    get, path = "/pki/agent-ca.crl", tag = "pki",
    responses((status = 200, description = "The CRL", content_type = "application/pkix-crl", body = Vec<u8>),
              (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn crl(State(state): State<AppState>) -> Result<Response, Problem> {
    let ca = state
        .pki
        .agent_ca()
        .ok_or_else(|| Problem::not_found("agent CA"))?;
    let now = state.now();
    let revoked = state.store.revoked_issued_certificates(now).await?;
    let der = ca
        .crl(&revoked, now as u64, now)
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut response = der.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    Ok(response)
}

/// Renews an agent's certificate: the request comes over mutual TLS with a current certificate
/// the agent CA issued to a `tls_client_auth` agent; the answer is a new certificate for the
/// CSR's key. The old certificate keeps working until it expires or is revoked.
#[utoipa::path(
    post, path = "/api/v1/self/certificate", tag = "self-service",
    request_body = IssueRequest,
    responses(
        (status = 201, body = IssuedCertificateResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid certificate from the agent CA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn renew(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<IssueRequest>,
) -> Result<(StatusCode, Json<IssuedCertificateResponse>), Problem> {
    let agent = match authenticate(&state, &caller).await {
        Ok(agent) => agent,
        Err((reason, agent_id)) => {
            let audit = AuditEvent::failure(event::CERTIFICATE_ISSUED, reason.reason())
                .with_agent(agent_id.as_deref())
                .with_method("tls_client_auth")
                .with_source(caller.source(), caller.user_agent.as_deref());
            state.store.audit().record(audit).await?;
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "present a current certificate from the agent CA over mutual TLS",
            ));
        }
    };
    let audit = AuditEvent::success(event::CERTIFICATE_ISSUED)
        .with_actor(agent.agent_id.as_str())
        .with_agent(Some(agent.agent_id.as_str()))
        .with_method("tls_client_auth")
        .with_source(caller.source(), caller.user_agent.as_deref());
    let issued = issue(&state, &agent, &request, audit).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// The agent whose current agent-CA certificate the connection presented.
async fn authenticate(
    state: &AppState,
    caller: &Caller,
) -> Result<signet_core::agent::Agent, (ClientAuthError, Option<String>)> {
    let chain = match &caller.certificate {
        None => return Err((ClientAuthError::NoClientCertificate, None)),
        Some(Err(e)) => return Err((ClientAuthError::from(e.clone()), None)),
        Some(Ok(chain)) => chain.clone(),
    };
    let store_error = |_| (ClientAuthError::UnknownAgent, None);
    let issued = state
        .store
        .issued_certificate(&chain.leaf.thumbprint)
        .await
        .map_err(store_error)?
        .ok_or((ClientAuthError::UntrustedCertificate, None))?;
    let credentials = state
        .store
        .agent_credentials(&issued.agent_id)
        .await
        .map_err(store_error)?;
    let presented = PresentedCredentials::Certificate {
        agent_id: issued.agent_id.clone(),
        chain,
    };
    state
        .check_credentials(&presented, credentials.as_deref(), caller.ip)
        .map(|a| a.agent.clone())
        .map_err(|e| (e, Some(issued.agent_id.clone())))
}
