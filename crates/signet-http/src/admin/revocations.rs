//! Operator revocation of client certificates (by thumbprint, or issuer and serial) and the CAs
//! trusted for `tls_client_auth`. A revocation takes effect at once on every node and is listed
//! in the agent CA's CRL when that CA issued the certificate.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use signet_core::audit::event;
use signet_core::pki::certificate::normalize_serial;
use signet_core::pki::{Revocation, dn};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::problem::Problem;
use super::{Admin, rfc3339};
use crate::state::AppState;

/// What to revoke: `thumbprint`, or `issuer` and `serial`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificateRequest {
    /// `x5t#S256` of the certificate.
    pub(crate) thumbprint: Option<String>,
    /// Issuer DN (RFC 4514), with `serial`.
    pub(crate) issuer: Option<String>,
    /// Serial number in hex (colons allowed), with `issuer`.
    pub(crate) serial: Option<String>,
    /// Why, for the audit log.
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thumbprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) serial: Option<String>,
    pub(crate) reason: String,
    pub(crate) actor: String,
    pub(crate) revoked_at: String,
}

/// A CA trusted for `tls_client_auth`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedCaView {
    pub(crate) subject: String,
    pub(crate) thumbprint: String,
    pub(crate) not_after: String,
    /// `agent_ca` (Signet's own) or `client_ca_file`.
    pub(crate) source: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedCas {
    pub(crate) authorities: Vec<TrustedCaView>,
    /// CRLs loaded from `SIGNET_CLIENT_CRL_FILES`.
    pub(crate) crls: usize,
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
    let (inserted, view) = revoke(&admin, &state, &request).await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Revokes a certificate for `admin` (the admin API, or the console as its signed-in user) and
/// audits it. `true` when it was not revoked before.
pub(crate) async fn revoke(
    admin: &Admin,
    state: &AppState,
    request: &RevokeCertificateRequest,
) -> Result<(bool, RevocationView), Problem> {
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
    let view = revocation_view(&revocation, reason.clone(), admin.actor_name(), now);
    let audit = admin
        .event(event::CERTIFICATE_REVOKED, "")
        .with_agent(None)
        .with_detail(serde_json::to_value(&view).unwrap_or_default());
    let inserted = state
        .store
        .revoke_certificate(
            &revocation,
            ca_issuer.as_deref(),
            &reason,
            &admin.actor_name(),
            now,
            audit,
        )
        .await?;
    state.pki.reload_revocations(&state.store).await?;
    Ok((inserted, view))
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
    Ok(Json(views(&state).await?))
}

/// Operator revocations, oldest first, as the API and the console show them.
pub(crate) async fn views(state: &AppState) -> Result<Vec<RevocationView>, Problem> {
    let records = state.store.certificate_revocations().await?;
    Ok(records
        .into_iter()
        .map(|r| revocation_view(&r.revocation, r.reason, r.actor, r.revoked_at))
        .collect())
}

/// The CAs trusted for `tls_client_auth`: Signet's agent CA and `SIGNET_CLIENT_CA_FILE`.
#[utoipa::path(
    get, path = "/api/v1/certificates/trusted-cas", tag = "certificates",
    responses((status = 200, body = TrustedCas)),
    security(("admin_token" = []))
)]
pub async fn trusted_cas(_admin: Admin, State(state): State<AppState>) -> Json<TrustedCas> {
    Json(trusted(&state))
}

/// The trusted CAs as the API and the console show them.
pub(crate) fn trusted(state: &AppState) -> TrustedCas {
    let trust = state.pki.trust();
    let agent_ca = state
        .pki
        .agent_ca()
        .map(|ca| ca.certificate().thumbprint.clone());
    TrustedCas {
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
    }
}
