//! X.509 for mutual TLS (RFC 8705): parsed certificates, distinguished names, the trusted CAs
//! and their CRLs, the certificate bindings of `tls_client_auth` agents, operator revocations,
//! and Signet's own agent CA.

pub mod agent_ca;
pub mod binding;
pub mod certificate;
pub mod csr;
pub mod development;
pub mod dn;
pub mod revoked;
pub mod trust;

pub use agent_ca::{AgentCa, IssuedCertificate};
pub use binding::{BindingKind, CertificateBinding};
pub use certificate::Certificate;
pub use revoked::{Revocation, RevokedCertificates};
pub use trust::TrustStore;

/// Why a certificate, chain or CSR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error("no client certificate")]
    NoCertificate,
    #[error("{0}")]
    Malformed(String),
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate is not yet valid")]
    NotYetValid,
    #[error("the certificate does not chain to a trusted CA")]
    UntrustedIssuer,
    #[error("the certificate's extended key usage does not allow client authentication")]
    WrongKeyUsage,
    #[error("the certificate was revoked")]
    Revoked,
    #[error("the certificate chain is invalid: {0}")]
    InvalidChain(String),
    #[error("certificate signing request: {0}")]
    Csr(String),
    #[error("the agent CA could not sign: {0}")]
    Signing(String),
}
