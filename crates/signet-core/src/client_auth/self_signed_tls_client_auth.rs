//! `self_signed_tls_client_auth` (RFC 8705 §2.2): the client certificate is one the agent
//! registered, recognised by its SHA-256 thumbprint. No CA is involved; several certificates may
//! be registered at once so that an agent can roll to a new one without downtime.

use super::ClientAuthError;
use crate::UnixTime;
use crate::pki::RevokedCertificates;
use crate::pki::certificate::CertificateChain;

/// A certificate registered with an agent, as the hot path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCertificate {
    /// `x5t#S256`.
    pub thumbprint: String,
    pub subject: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub created_at: UnixTime,
}

/// Checks that `chain`'s leaf is one of `registered`, within its validity period, fit for
/// client authentication and not revoked; one of `removed` is recognised as stale.
pub fn verify(
    chain: &CertificateChain,
    registered: &[RegisteredCertificate],
    removed: &[String],
    revoked: &RevokedCertificates,
    now: UnixTime,
) -> Result<(), ClientAuthError> {
    let leaf = &chain.leaf;
    if revoked.contains(leaf) {
        return Err(ClientAuthError::CertificateRevoked);
    }
    let known = registered.iter().any(|r| {
        crate::crypto::constant_time_eq(r.thumbprint.as_bytes(), leaf.thumbprint.as_bytes())
    });
    if !known {
        // A certificate the agent used to have: a service still runs with the old one.
        if removed.contains(&leaf.thumbprint) {
            return Err(ClientAuthError::StaleCertificate);
        }
        return Err(ClientAuthError::CertificateNotRegistered);
    }
    leaf.validity_at(now).map_err(ClientAuthError::from)?;
    if leaf.client_auth_eku == Some(false) {
        return Err(ClientAuthError::CertificateKeyUsage);
    }
    Ok(())
}
