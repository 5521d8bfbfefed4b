//! Client authentication at the token, introspection and revocation endpoints: what an agent
//! presented, how it is checked, and the precise reasons it can fail.
//!
//! One file per method: [`client_secret`], [`private_key_jwt`], [`tls_client_auth`] and
//! [`self_signed_tls_client_auth`].
//! The HTTP layer extracts [`PresentedCredentials`] from the request, looks up the agent's
//! [`AgentCredentials`], and calls [`authenticate`].

pub mod client_secret;
pub mod private_key_jwt;
pub mod self_signed_tls_client_auth;
pub mod tls_client_auth;

use std::net::IpAddr;

use crate::UnixTime;
use crate::agent::{Agent, AgentStatus, AuthMethod};
use crate::crypto::MasterKey;

pub use client_secret::{AgentSecret, StoredSecret};
pub use private_key_jwt::{Assertion, AssertionPolicy, VerifiedAssertion};
pub use self_signed_tls_client_auth::RegisteredCertificate;

use crate::pki::certificate::CertificateChain;
use crate::pki::{RevokedCertificates, TrustStore};

use crate::jwk::VerifyingKey;
use std::sync::Arc;

/// How the secret reached the server (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretForm {
    /// `Authorization: Basic`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

impl SecretForm {
    pub fn method(self) -> AuthMethod {
        match self {
            Self::Basic => AuthMethod::ClientSecretBasic,
            Self::Post => AuthMethod::ClientSecretPost,
        }
    }
}

/// What a request presented to prove the agent's identity.
#[derive(Debug)]
pub enum PresentedCredentials {
    /// Agent ID and secret; the secret's format is already checked.
    Secret {
        agent_id: String,
        secret: AgentSecret,
        form: SecretForm,
    },
    /// A JWT client assertion (RFC 7523); `agent_id` is the optional `client_id` parameter.
    Assertion {
        agent_id: Option<String>,
        assertion: Assertion,
    },
    /// A client certificate from the TLS handshake and the `client_id` parameter (RFC 8705 §2).
    Certificate {
        agent_id: String,
        chain: Arc<CertificateChain>,
    },
}

impl PresentedCredentials {
    /// The agent ID the caller claims, for the audit record of a failure.
    pub fn claimed_agent_id(&self) -> Option<&str> {
        match self {
            Self::Secret { agent_id, .. } => Some(agent_id),
            Self::Assertion {
                agent_id,
                assertion,
            } => agent_id.as_deref().or(assertion.subject()),
            Self::Certificate { agent_id, .. } => Some(agent_id),
        }
    }

    pub fn method(&self) -> AuthMethod {
        match self {
            Self::Secret { form, .. } => form.method(),
            Self::Assertion { .. } => AuthMethod::PrivateKeyJwt,
            Self::Certificate { .. } => AuthMethod::TlsClientAuth,
        }
    }
}

/// An agent with everything needed to authenticate it: the record the hot path keeps cached.
#[derive(Debug, Clone)]
pub struct AgentCredentials {
    pub agent: Agent,
    pub secrets: Vec<StoredSecret>,
    /// Registered public keys, parsed once when the agent was loaded.
    pub keys: Vec<Arc<VerifyingKey>>,
    /// Registered certificates of a `self_signed_tls_client_auth` agent.
    pub certificates: Vec<RegisteredCertificate>,
    /// Thumbprints of certificates removed from the agent (recent ones), to recognise stale use.
    pub removed_certificates: Vec<String>,
}

/// What authentication checks against besides the agent's own credentials.
#[derive(Debug, Clone, Copy)]
pub struct AuthContext<'a> {
    pub master_key: &'a MasterKey,
    pub assertion_policy: &'a AssertionPolicy,
    /// CAs trusted for `tls_client_auth`, with their CRLs.
    pub trust: &'a TrustStore,
    /// Certificates revoked by an operator.
    pub revoked_certificates: &'a RevokedCertificates,
    pub source: IpAddr,
    pub now: UnixTime,
}

/// A successful authentication: the agent, and for an assertion the `jti` the caller must
/// record (last, after all its other checks) to refuse a replay.
#[derive(Debug)]
pub struct Authenticated<'a> {
    pub agent: &'a Agent,
    pub assertion: Option<VerifiedAssertion>,
}

/// Why client authentication failed. Every variant is a distinct audit reason; on the wire all
/// of them are the same `invalid_client`, so a caller learns nothing about which agents exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    #[error("no client credentials in the request")]
    NoCredentials,
    #[error("more than one client authentication method in the request")]
    MultipleMethods,
    #[error("more than one Authorization header")]
    DuplicateAuthorization,
    #[error("client_id in the body differs from the one in the Authorization header")]
    ClientIdMismatch,
    #[error("malformed Authorization: Basic header")]
    MalformedBasicHeader,
    #[error("the secret does not have Signet's format or its checksum is wrong")]
    MalformedSecret,
    #[error("no agent with this ID")]
    UnknownAgent,
    #[error("the agent is registered for another authentication method")]
    MethodMismatch,
    #[error("the secret does not match")]
    WrongSecret,
    #[error("the secret was replaced by a newer one")]
    StaleSecret,
    #[error("the secret has expired")]
    ExpiredSecret,
    #[error("the agent is disabled")]
    AgentDisabled,
    #[error("the request comes from a network outside the agent's allowed_cidrs")]
    SourceNotAllowed,
    #[error("client_assertion_type is not urn:ietf:params:oauth:client-assertion-type:jwt-bearer")]
    BadAssertionType,
    #[error("the client assertion is not a well-formed JWS")]
    MalformedAssertion,
    #[error("the client assertion is too large")]
    AssertionTooLarge,
    #[error("the assertion's algorithm is not allowed (none, HMAC or unknown)")]
    AlgorithmNotAllowed,
    #[error("the assertion header carries or points to a key (jwk, jku, x5u, x5c)")]
    EmbeddedKeyHeader,
    #[error("the assertion header has critical extensions")]
    UnsupportedCritical,
    #[error("no registered key has the assertion's kid")]
    UnknownKid,
    #[error("the key was revoked")]
    KeyRevoked,
    #[error("the key has expired")]
    KeyExpired,
    #[error("the assertion's alg is not the key's pinned algorithm")]
    AlgorithmMismatch,
    #[error("the assertion's signature does not verify")]
    BadSignature,
    #[error("iss is missing or differs from sub")]
    BadIssuer,
    #[error("sub is not the agent's ID")]
    SubjectMismatch,
    #[error("aud is not the token endpoint or the issuer")]
    BadAudience,
    #[error("the assertion has no exp")]
    MissingExpiry,
    #[error("the assertion has expired")]
    AssertionExpired,
    #[error("exp - iat exceeds the maximum assertion lifetime")]
    LifetimeTooLong,
    #[error("iat is in the future")]
    IssuedInFuture,
    #[error("nbf is in the future")]
    NotYetValid,
    #[error("the assertion has no jti")]
    MissingJti,
    /// Too long, or with control characters: a `jti` is stored and shown as text, and one NUL
    /// byte would fail the whole batch of records it was committed with on PostgreSQL.
    #[error("the assertion's jti is too long or contains control characters")]
    InvalidJti,
    #[error("the assertion's jti was already used")]
    JtiReplayed,
    #[error("no client certificate was presented")]
    NoClientCertificate,
    #[error("a client certificate was presented without client_id")]
    MissingClientId,
    #[error("the client certificate could not be parsed")]
    MalformedCertificate,
    #[error("the client certificate does not chain to a trusted CA")]
    UntrustedCertificate,
    #[error("the certificate chain is invalid")]
    InvalidCertificateChain,
    #[error("the client certificate has expired")]
    CertificateExpired,
    #[error("the client certificate is not yet valid")]
    CertificateNotYetValid,
    #[error("the client certificate's extended key usage excludes client authentication")]
    CertificateKeyUsage,
    #[error("the client certificate was revoked by an operator")]
    CertificateRevoked,
    #[error("the client certificate is listed in a CRL")]
    CertificateRevokedByCrl,
    #[error("the client certificate does not carry the agent's bound name")]
    CertificateBindingMismatch,
    #[error("the client certificate is not registered with the agent")]
    CertificateNotRegistered,
    #[error("the client certificate was removed from the agent")]
    StaleCertificate,
}

impl ClientAuthError {
    /// The audit reason code.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoCredentials => "no_credentials",
            Self::MultipleMethods => "multiple_auth_methods",
            Self::DuplicateAuthorization => "duplicate_authorization_header",
            Self::ClientIdMismatch => "client_id_mismatch",
            Self::MalformedBasicHeader => "malformed_basic_header",
            Self::MalformedSecret => "malformed_secret",
            Self::UnknownAgent => "unknown_agent",
            Self::MethodMismatch => "method_mismatch",
            Self::WrongSecret => "wrong_secret",
            Self::StaleSecret => "stale_secret",
            Self::ExpiredSecret => "expired_secret",
            Self::AgentDisabled => "agent_disabled",
            Self::SourceNotAllowed => "source_not_allowed",
            Self::BadAssertionType => "bad_assertion_type",
            Self::MalformedAssertion => "malformed_assertion",
            Self::AssertionTooLarge => "assertion_too_large",
            Self::AlgorithmNotAllowed => "alg_not_allowed",
            Self::EmbeddedKeyHeader => "embedded_key_header",
            Self::UnsupportedCritical => "crit_not_supported",
            Self::UnknownKid => "unknown_kid",
            Self::KeyRevoked => "key_revoked",
            Self::KeyExpired => "key_expired",
            Self::AlgorithmMismatch => "alg_mismatch",
            Self::BadSignature => "bad_signature",
            Self::BadIssuer => "bad_issuer",
            Self::SubjectMismatch => "subject_mismatch",
            Self::BadAudience => "bad_audience",
            Self::MissingExpiry => "missing_exp",
            Self::AssertionExpired => "assertion_expired",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::IssuedInFuture => "issued_in_future",
            Self::NotYetValid => "not_yet_valid",
            Self::MissingJti => "missing_jti",
            Self::InvalidJti => "invalid_jti",
            Self::JtiReplayed => "jti_replayed",
            Self::NoClientCertificate => "no_client_certificate",
            Self::MissingClientId => "missing_client_id",
            Self::MalformedCertificate => "malformed_certificate",
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::InvalidCertificateChain => "invalid_certificate_chain",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateNotYetValid => "certificate_not_yet_valid",
            Self::CertificateKeyUsage => "certificate_key_usage",
            Self::CertificateRevoked => "certificate_revoked",
            Self::CertificateRevokedByCrl => "certificate_revoked_crl",
            Self::CertificateBindingMismatch => "certificate_binding_mismatch",
            Self::CertificateNotRegistered => "certificate_not_registered",
            Self::StaleCertificate => "stale_certificate",
        }
    }
}

/// Checks presented credentials against the agent's stored ones. `credentials` is `None` when
/// no agent has the claimed ID.
pub fn authenticate<'a>(
    presented: &PresentedCredentials,
    credentials: Option<&'a AgentCredentials>,
    context: &AuthContext<'_>,
) -> Result<Authenticated<'a>, ClientAuthError> {
    let now = context.now;
    let credentials = credentials.ok_or(ClientAuthError::UnknownAgent)?;
    let agent = &credentials.agent;
    let assertion = match presented {
        PresentedCredentials::Secret { secret, .. } => {
            if !agent.token_endpoint_auth_method.uses_secret() {
                return Err(ClientAuthError::MethodMismatch);
            }
            client_secret::verify(secret, &credentials.secrets, context.master_key, now)?;
            None
        }
        PresentedCredentials::Assertion { assertion, .. } => {
            if agent.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
                return Err(ClientAuthError::MethodMismatch);
            }
            Some(assertion.verify(
                agent.agent_id.as_str(),
                &credentials.keys,
                context.assertion_policy,
                now,
            )?)
        }
        PresentedCredentials::Certificate { chain, .. } => {
            match agent.token_endpoint_auth_method {
                AuthMethod::TlsClientAuth => tls_client_auth::verify(
                    chain,
                    agent.tls_client_auth.as_ref(),
                    context.trust,
                    context.revoked_certificates,
                    now,
                )?,
                AuthMethod::SelfSignedTlsClientAuth => self_signed_tls_client_auth::verify(
                    chain,
                    &credentials.certificates,
                    &credentials.removed_certificates,
                    context.revoked_certificates,
                    now,
                )?,
                _ => return Err(ClientAuthError::MethodMismatch),
            }
            None
        }
    };
    if agent.status != AgentStatus::Active {
        return Err(ClientAuthError::AgentDisabled);
    }
    if !agent.allows_source(context.source) {
        return Err(ClientAuthError::SourceNotAllowed);
    }
    Ok(Authenticated { agent, assertion })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::NewAgent;

    struct Fixture {
        key: MasterKey,
        credentials: AgentCredentials,
        secret: AgentSecret,
    }

    fn fixture(method: &str, cidrs: &[&str]) -> Fixture {
        let (key, _) = MasterKey::generate();
        let agent = NewAgent {
            name: "a".into(),
            token_endpoint_auth_method: Some(method.into()),
            allowed_cidrs: Some(cidrs.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        }
        .into_agent(0)
        .expect("valid agent");
        let secret = AgentSecret::generate();
        let stored = StoredSecret::new(&key, &secret, 0);
        Fixture {
            key,
            credentials: AgentCredentials {
                agent,
                secrets: vec![stored],
                keys: Vec::new(),
                certificates: Vec::new(),
                removed_certificates: Vec::new(),
            },
            secret,
        }
    }

    fn policy() -> AssertionPolicy {
        AssertionPolicy {
            audiences: vec!["https://signet/oauth2/token".into()],
            max_lifetime: 300,
            clock_skew: 30,
        }
    }

    fn presented(f: &Fixture, secret: &AgentSecret) -> PresentedCredentials {
        PresentedCredentials::Secret {
            agent_id: f.credentials.agent.agent_id.to_string(),
            secret: AgentSecret::parse(secret.expose()).expect("well-formed"),
            form: SecretForm::Basic,
        }
    }

    fn check(
        f: &Fixture,
        creds: &PresentedCredentials,
        source: &str,
        expected: Result<(), ClientAuthError>,
    ) {
        let (policy, trust, revoked) = (policy(), TrustStore::default(), Default::default());
        let context = AuthContext {
            master_key: &f.key,
            assertion_policy: &policy,
            trust: &trust,
            revoked_certificates: &revoked,
            source: source.parse().expect("ip"),
            now: 1,
        };
        let result = authenticate(creds, Some(&f.credentials), &context).map(|_| ());
        assert_eq!(result, expected);
    }

    #[test]
    fn the_right_secret_authenticates() {
        let f = fixture("client_secret_basic", &[]);
        check(&f, &presented(&f, &f.secret), "127.0.0.1", Ok(()));
    }

    #[test]
    fn failures_have_precise_reasons() {
        let f = fixture("client_secret_post", &["10.0.0.0/8"]);
        check(
            &f,
            &presented(&f, &f.secret),
            "127.0.0.1",
            Err(ClientAuthError::SourceNotAllowed),
        );
        check(&f, &presented(&f, &f.secret), "10.1.1.1", Ok(()));
        check(
            &f,
            &presented(&f, &AgentSecret::generate()),
            "10.1.1.1",
            Err(ClientAuthError::WrongSecret),
        );

        let f = fixture("private_key_jwt", &[]);
        check(
            &f,
            &presented(&f, &f.secret),
            "127.0.0.1",
            Err(ClientAuthError::MethodMismatch),
        );

        let mut f = fixture("client_secret_basic", &[]);
        f.credentials.agent.status = AgentStatus::Disabled;
        check(
            &f,
            &presented(&f, &f.secret),
            "127.0.0.1",
            Err(ClientAuthError::AgentDisabled),
        );

        let f = fixture("client_secret_basic", &[]);
        let (policy, trust, revoked) = (policy(), TrustStore::default(), Default::default());
        let context = AuthContext {
            master_key: &f.key,
            assertion_policy: &policy,
            trust: &trust,
            revoked_certificates: &revoked,
            source: "127.0.0.1".parse().expect("ip"),
            now: 1,
        };
        let result = authenticate(&presented(&f, &f.secret), None, &context);
        assert_eq!(result.err(), Some(ClientAuthError::UnknownAgent));
    }
}
