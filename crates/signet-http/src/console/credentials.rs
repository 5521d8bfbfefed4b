//! The agent's Credentials tab beyond its secret: public keys of a `private_key_jwt` agent
//! (add a JWK, JWK Set or PEM; revoke; its `jwks_uri`), the certificate binding of a
//! `tls_client_auth` agent and certificates issued to it from a CSR, the registered
//! certificates of a `self_signed_tls_client_auth` agent, and revoking certificates. Every
//! action is the admin API's own function, run as the signed-in user.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use signet_core::agent::{Agent, AuthMethod};
use signet_core::pki::BindingKind;

use super::agent::{Tab, agent_page};
use super::render;
use super::session::{Change, NoFields, Signed};
use super::settings::outcome;
use crate::admin::agent_view::{SecretView, StaleUseView, agent_view};
use crate::admin::agents::{PatchAgentRequest, update};
use crate::admin::certificates::{
    self, CertificateRegistration, CertificateView, IssueRequest, IssuedView,
};
use crate::admin::keys::{self, KeyRegistration, KeyView};
use crate::admin::problem::Problem;
use crate::admin::revocations::{self, RevokeCertificateRequest};
use crate::state::AppState;

/// What the Credentials tab shows, by the agent's method.
pub(super) struct Credentials {
    pub secret: Option<SecretView>,
    /// Use of replaced credentials: which service still uses an old secret, key or certificate.
    pub stale: Vec<StaleUseView>,
    pub keys: Vec<KeyView>,
    pub jwks_uri: String,
    /// What the certificate must name: the field's label and value.
    pub binding: Option<(&'static str, String)>,
    /// The choices of the binding form: field, label, whether it is the current one.
    pub binding_options: Vec<(&'static str, &'static str, bool)>,
    pub issued: Vec<IssuedView>,
    pub registered: Vec<CertificateView>,
    pub agent_ca: bool,
}

impl Credentials {
    pub(super) async fn load(state: &AppState, agent: &Agent) -> Result<Self, Problem> {
        let agent_id = agent.agent_id.as_str();
        let view = agent_view(state, agent_id).await?.0;
        let method = agent.token_endpoint_auth_method;
        let keys = if method == AuthMethod::PrivateKeyJwt {
            state.store.agent_keys(agent_id).await?
        } else {
            Vec::new()
        };
        let (registered, issued) = match method {
            AuthMethod::SelfSignedTlsClientAuth => {
                (certificates::views(state, agent_id).await?, Vec::new())
            }
            AuthMethod::TlsClientAuth => (
                Vec::new(),
                state.store.issued_certificates(Some(agent_id)).await?,
            ),
            _ => (Vec::new(), Vec::new()),
        };
        Ok(Self {
            secret: view.secret,
            stale: view.stale_credential_use,
            keys: keys.iter().map(KeyView::new).collect(),
            jwks_uri: view.jwks_uri.unwrap_or_default(),
            binding: agent
                .tls_client_auth
                .as_ref()
                .map(|b| (binding_label(b.kind), b.value.clone())),
            binding_options: BindingKind::ALL
                .into_iter()
                .map(|kind| {
                    let current = agent.tls_client_auth.as_ref().map(|b| b.kind);
                    (kind.field(), binding_label(kind), current == Some(kind))
                })
                .collect(),
            issued: issued.iter().map(IssuedView::new).collect(),
            registered,
            agent_ca: state.pki.agent_ca().is_some(),
        })
    }
}

/// How the console names a certificate field an agent can be bound to.
pub(super) fn binding_label(kind: BindingKind) -> &'static str {
    match kind {
        BindingKind::SubjectDn => "Subject DN",
        BindingKind::SanDns => "DNS name (SAN)",
        BindingKind::SanUri => "URI (SAN)",
        BindingKind::SanIp => "IP address (SAN)",
        BindingKind::SanEmail => "Email address (SAN)",
    }
}

/// The Credentials tab again after a change: what happened, or why it was refused.
async fn after(
    state: &AppState,
    signed: Signed,
    agent_id: &str,
    result: Result<(), Problem>,
    notice: String,
) -> Response {
    let (error, notice) = outcome(result, notice);
    agent_page(state, signed, agent_id, Tab::Credentials, error, notice).await
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    /// One JWK, a JWK Set, or a PEM public key or certificate.
    key: String,
    #[serde(default)]
    kid: String,
    #[serde(default)]
    alg: String,
    /// A date (`YYYY-MM-DD`, midnight UTC) after which the key is refused.
    #[serde(default)]
    expires: String,
}

/// A pasted key as the admin API's registration: JSON (a JWK Set if it has `keys`) or PEM.
pub(super) fn key_registration(
    key: &str,
    kid: &str,
    alg: &str,
    expires: &str,
) -> Result<KeyRegistration, Problem> {
    let key = key.trim();
    let (mut jwk, mut jwks, mut pem) = (None, None, None);
    if key.starts_with('{') {
        let value: Value = serde_json::from_str(key).map_err(|e| {
            Problem::invalid_field("key", format!("key: not a JWK or JWK Set ({e})"))
        })?;
        if value.get("keys").is_some() {
            jwks = Some(value);
        } else {
            jwk = Some(value);
        }
    } else if key.starts_with("-----BEGIN") {
        pem = Some(key.to_owned());
    } else {
        return Err(Problem::invalid_field(
            "key",
            "key: paste a JWK (`{…}`), a JWK Set (`{\"keys\": […]}`) or a PEM public key",
        ));
    }
    Ok(KeyRegistration {
        jwk,
        jwks,
        pem,
        kid: super::filled(kid),
        alg: super::filled(alg),
        expires_at: super::filled(expires).map(|day| format!("{day}T00:00:00Z")),
    })
}

pub async fn add_key(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<KeyForm>,
) -> Response {
    let result = match key_registration(&form.key, &form.kid, &form.alg, &form.expires) {
        Ok(registration) => {
            keys::register_keys(&signed.admin(), &state, &agent_id, &registration).await
        }
        Err(problem) => Err(problem),
    };
    let notice = match &result {
        Ok(added) => {
            let kids: Vec<&str> = added.iter().map(|k| k.kid.as_str()).collect();
            format!("Key added: {}.", kids.join(", "))
        }
        Err(_) => String::new(),
    };
    after(&state, signed, &agent_id, result.map(|_| ()), notice).await
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path((agent_id, kid)): Path<(String, String)>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    let result = keys::revoke(&signed.admin(), &state, &agent_id, &kid).await;
    let notice = format!("Key {kid} revoked: assertions signed with it are refused.");
    after(&state, signed, &agent_id, result, notice).await
}

#[derive(Debug, Deserialize)]
pub struct JwksUriForm {
    #[serde(default)]
    jwks_uri: String,
}

/// Sets (or, when empty, removes) the URL where the agent publishes its keys.
pub async fn jwks_uri(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<JwksUriForm>,
) -> Response {
    let uri = super::filled(&form.jwks_uri);
    let notice = match &uri {
        Some(uri) => format!("Keys are also fetched from {uri}."),
        None => "The jwks_uri is removed.".to_owned(),
    };
    let request = PatchAgentRequest {
        jwks_uri: Some(uri),
        ..Default::default()
    };
    let result = update(&signed.admin(), &state, &agent_id, request).await;
    after(&state, signed, &agent_id, result, notice).await
}

#[derive(Debug, Deserialize)]
pub struct BindingForm {
    /// `tls_client_auth_subject_dn`, `tls_client_auth_san_dns`, …
    kind: String,
    value: String,
}

/// The five `tls_client_auth_*` fields with only `field` set (to `value`, if not empty).
pub(super) fn binding_fields(field: &str, value: &str) -> [Option<String>; 5] {
    BindingKind::ALL.map(|kind| {
        (kind.field() == field)
            .then(|| super::filled(value))
            .flatten()
    })
}

/// Changes which certificate name a `tls_client_auth` agent is bound to (RFC 8705 §2.1.2).
pub async fn binding(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<BindingForm>,
) -> Response {
    let [dn, dns, uri, ip, email] = binding_fields(&form.kind, &form.value);
    let result = if [&dn, &dns, &uri, &ip, &email].iter().all(|f| f.is_none()) {
        Err(Problem::invalid_field(
            "value",
            "choose a certificate field and give its value",
        ))
    } else {
        let request = PatchAgentRequest {
            tls_client_auth_subject_dn: dn,
            tls_client_auth_san_dns: dns,
            tls_client_auth_san_uri: uri,
            tls_client_auth_san_ip: ip,
            tls_client_auth_san_email: email,
            ..Default::default()
        };
        update(&signed.admin(), &state, &agent_id, request).await
    };
    let notice = "The certificate binding is changed.".to_owned();
    after(&state, signed, &agent_id, result, notice).await
}

#[derive(Debug, Deserialize)]
pub struct CertificateForm {
    certificate: String,
}

/// Registers a self-signed certificate (PEM).
pub async fn add_certificate(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<CertificateForm>,
) -> Response {
    let request = CertificateRegistration {
        certificate: Some(form.certificate),
        jwk: None,
    };
    let result =
        certificates::register_certificate(&signed.admin(), &state, &agent_id, &request).await;
    let notice = "Certificate registered.".to_owned();
    after(&state, signed, &agent_id, result, notice).await
}

pub async fn remove_certificate(
    State(state): State<AppState>,
    Path((agent_id, thumbprint)): Path<(String, String)>,
    Change { signed, .. }: Change<NoFields>,
) -> Response {
    let result = certificates::remove(&signed.admin(), &state, &agent_id, &thumbprint).await;
    let notice = "Certificate removed: the agent can no longer authenticate with it.".to_owned();
    after(&state, signed, &agent_id, result, notice).await
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    thumbprint: String,
    #[serde(default)]
    reason: String,
}

/// Revokes a certificate (registered or issued): refused at once on every node, and listed in
/// the agent CA's CRL if that CA issued it.
pub async fn revoke_certificate(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<RevokeForm>,
) -> Response {
    let request = RevokeCertificateRequest {
        thumbprint: Some(form.thumbprint),
        issuer: None,
        serial: None,
        reason: super::filled(&form.reason),
    };
    let result = revocations::revoke(&signed.admin(), &state, &request)
        .await
        .map(|_| ());
    let notice = "Certificate revoked: it is refused from now on.".to_owned();
    after(&state, signed, &agent_id, result, notice).await
}

#[derive(Debug, Deserialize)]
pub struct IssueForm {
    csr: String,
    /// Days; empty: the server's default (`SIGNET_AGENT_CERT_TTL`).
    #[serde(default)]
    lifetime_days: String,
}

#[derive(askama::Template)]
#[template(path = "console/issued.html")]
struct IssuedPage {
    user: Option<Signed>,
    agent_id: String,
    certificate: String,
    ca_certificate: String,
    serial: String,
    not_after: String,
}

/// Issues a certificate from a CSR with Signet's agent CA and shows it with the CA's.
pub async fn issue(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    Change { signed, form }: Change<IssueForm>,
) -> Response {
    let lifetime_seconds = match form.lifetime_days.trim() {
        "" => Ok(None),
        days => days
            .parse::<u64>()
            .map(|d| Some(d.saturating_mul(86_400)))
            .map_err(|_| Problem::invalid_field("lifetime_days", "the lifetime is whole days")),
    };
    let issued = match lifetime_seconds {
        Ok(lifetime_seconds) => {
            let request = IssueRequest {
                csr: form.csr,
                lifetime_seconds,
            };
            certificates::issue_for(&signed.admin(), &state, &agent_id, &request).await
        }
        Err(problem) => Err(problem),
    };
    match issued {
        Ok(issued) => render(&IssuedPage {
            user: Some(signed),
            agent_id,
            certificate: issued.certificate,
            ca_certificate: issued.ca_certificate,
            serial: issued.serial,
            not_after: issued.not_after,
        }),
        Err(problem) => after(&state, signed, &agent_id, Err(problem), String::new()).await,
    }
}
