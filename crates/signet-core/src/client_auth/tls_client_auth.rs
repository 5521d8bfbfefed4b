//! `tls_client_auth` (RFC 8705 §2.1): the client certificate chains to a trusted CA and carries
//! the name the agent is bound to. The TLS layer has already checked that the client holds the
//! certificate's private key; everything else is decided here, with a precise reason.

use super::ClientAuthError;
use crate::UnixTime;
use crate::pki::certificate::CertificateChain;
use crate::pki::{CertificateBinding, PkiError, RevokedCertificates, TrustStore};

/// Checks `chain` for an agent bound by `binding`. An operator's revocation counts for every
/// certificate the client presented: revoking an issuing CA refuses what it issued.
pub fn verify(
    chain: &CertificateChain,
    binding: Option<&CertificateBinding>,
    trust: &TrustStore,
    revoked: &RevokedCertificates,
    now: UnixTime,
) -> Result<(), ClientAuthError> {
    if std::iter::once(&chain.leaf)
        .chain(&chain.intermediates)
        .any(|c| revoked.contains(c))
    {
        return Err(ClientAuthError::CertificateRevoked);
    }
    trust
        .verify_presented_chain(chain, now)
        .map_err(ClientAuthError::from)?;
    match binding {
        Some(binding) if binding.matches(&chain.leaf) => Ok(()),
        _ => Err(ClientAuthError::CertificateBindingMismatch),
    }
}

impl From<PkiError> for ClientAuthError {
    fn from(error: PkiError) -> Self {
        match error {
            PkiError::NoCertificate => Self::NoClientCertificate,
            PkiError::Expired => Self::CertificateExpired,
            PkiError::NotYetValid => Self::CertificateNotYetValid,
            PkiError::UntrustedIssuer => Self::UntrustedCertificate,
            PkiError::WrongKeyUsage => Self::CertificateKeyUsage,
            PkiError::Revoked => Self::CertificateRevokedByCrl,
            PkiError::InvalidChain(_) => Self::InvalidCertificateChain,
            PkiError::Malformed(_) | PkiError::Csr(_) | PkiError::Signing(_) => {
                Self::MalformedCertificate
            }
        }
    }
}
