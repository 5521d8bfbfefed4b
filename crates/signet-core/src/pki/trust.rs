//! The CAs trusted for `tls_client_auth` and their CRLs: chain building, validity, extended key
//! usage and CRL revocation by rustls-webpki, mapped to Signet's precise reasons.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime as PkiTime};
use webpki::{
    CertRevocationList, EndEntityCert, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use super::PkiError;
use super::certificate::Certificate;
use crate::UnixTime;

/// Trust anchors and CRLs, parsed once (and again when their files change).
#[derive(Debug, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    /// The CA certificates, for listing to operators.
    authorities: Vec<Certificate>,
}

impl TrustStore {
    /// A store trusting the CA certificates `cas` (DER), honouring the CRLs `crls` (DER).
    pub fn new(cas: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Self, PkiError> {
        let mut store = Self::default();
        for der in cas {
            let certificate = Certificate::parse(der)?;
            let cert_der = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert_der)
                .map_err(|e| PkiError::Malformed(format!("CA certificate: {e}")))?
                .to_owned();
            store.anchors.push(anchor);
            store.authorities.push(certificate);
        }
        for der in crls {
            let crl = OwnedCertRevocationList::from_der(der)
                .map_err(|e| PkiError::Malformed(format!("CRL: {e}")))?;
            store.crls.push(CertRevocationList::from(crl));
        }
        Ok(store)
    }

    pub fn authorities(&self) -> &[Certificate] {
        &self.authorities
    }

    pub fn crl_count(&self) -> usize {
        self.crls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Verifies that `chain` (leaf first, then intermediates, DER) builds a path to a trust
    /// anchor, every certificate on it valid at `now`, the leaf fit for client authentication
    /// (clientAuth EKU when it has an EKU extension) and not revoked by a configured CRL.
    pub fn verify_client_chain(&self, chain: &[Vec<u8>], now: UnixTime) -> Result<(), PkiError> {
        let (leaf, intermediates) = chain.split_first().ok_or(PkiError::NoCertificate)?;
        if self.anchors.is_empty() {
            return Err(PkiError::UntrustedIssuer);
        }
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let end_entity = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| PkiError::Malformed(format!("client certificate: {e}")))?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        let crls: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crls).ok().map(|builder| {
            builder
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .build()
        });
        let time = PkiTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                time,
                KeyUsage::client_auth(),
                revocation,
                None,
            )
            .map(|_| ())
            .map_err(from_webpki)
    }
}

fn from_webpki(error: webpki::Error) -> PkiError {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => PkiError::Expired,
        E::CertNotValidYet { .. } => PkiError::NotYetValid,
        E::UnknownIssuer => PkiError::UntrustedIssuer,
        E::RequiredEkuNotFoundContext(_) => PkiError::WrongKeyUsage,
        E::CertRevoked => PkiError::Revoked,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => {
            PkiError::Malformed(format!("client certificate chain: {error}"))
        }
        other => PkiError::InvalidChain(format!("{other}")),
    }
}
