//! The CAs trusted for `tls_client_auth` and their CRLs: chain building, validity, extended key
//! usage and CRL revocation by rustls-webpki, mapped to Signet's precise reasons.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime as PkiTime};
use webpki::{
    CertRevocationList, EndEntityCert, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use super::PkiError;
use super::certificate::{Certificate, CertificateChain};
use crate::UnixTime;

/// Trust anchors and CRLs, parsed once (and again when their files change).
#[derive(Debug, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    /// The CA certificates, for listing to operators.
    authorities: Vec<Certificate>,
    /// Unique per store built with [`TrustStore::new`] (0 for the empty default): a reload
    /// makes a new store, so chains verified under the old one are verified again.
    generation: u64,
}

impl TrustStore {
    /// A store trusting the CA certificates `cas` (DER), honouring the CRLs `crls` (DER).
    pub fn new(cas: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Self, PkiError> {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut store = Self {
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Self::default()
        };
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

    /// [`Self::verify_client_chain`] for a chain parsed once per connection: a chain that
    /// verified under this store stays verified while every presented certificate is within
    /// its validity period, so a keep-alive connection pays for the signature checks once.
    /// CA or CRL changes build a new store, under which the chain is verified again; operator
    /// revocations and the binding are checked by the caller on every request.
    pub fn verify_presented_chain(
        &self,
        chain: &CertificateChain,
        now: UnixTime,
    ) -> Result<(), PkiError> {
        if chain.verified_under(self.generation, now) {
            return Ok(());
        }
        self.verify_client_chain(&chain.der, now)?;
        chain.mark_verified(self.generation);
        Ok(())
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

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    const T0: i64 = 1_700_000_000;

    fn params(name: &str, ca: bool, from: i64, until: i64) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(until).expect("time");
        params
    }

    fn key() -> KeyPair {
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key")
    }

    #[test]
    fn a_verified_chain_is_remembered_per_store_and_only_while_every_certificate_is_valid() {
        // Root → intermediate (valid for 1000 s) → leaf (valid far longer).
        let root_key = key();
        let root_params = params("root", true, T0 - 10, T0 + 1_000_000);
        let root = root_params.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::new(root_params, root_key);
        let intermediate_key = key();
        let intermediate_params = params("intermediate", true, T0 - 10, T0 + 1000);
        let intermediate = intermediate_params
            .signed_by(&intermediate_key, &root_issuer)
            .expect("intermediate");
        let intermediate_issuer = Issuer::new(intermediate_params, intermediate_key);
        let leaf = params("agent", false, T0 - 10, T0 + 500_000)
            .signed_by(&key(), &intermediate_issuer)
            .expect("leaf");
        let chain = CertificateChain::parse(vec![leaf.der().to_vec(), intermediate.der().to_vec()])
            .expect("chain");

        let store = TrustStore::new(&[root.der().to_vec()], &[]).expect("store");
        store.verify_presented_chain(&chain, T0).expect("verifies");
        assert!(chain.verified_under(store.generation, T0 + 10));
        store
            .verify_presented_chain(&chain, T0 + 10)
            .expect("remembered");
        // The leaf is still valid, the intermediate is not: verified again, and refused.
        assert!(!chain.verified_under(store.generation, T0 + 2000));
        assert_eq!(
            store.verify_presented_chain(&chain, T0 + 2000),
            Err(PkiError::Expired)
        );
        // A reloaded store is a new one: the chain is verified against it, not remembered.
        let without_root = TrustStore::new(&[], &[]).expect("empty");
        assert_eq!(
            without_root.verify_presented_chain(&chain, T0 + 10),
            Err(PkiError::UntrustedIssuer)
        );
        let other_root_key = key();
        let other_root = params("other root", true, T0 - 10, T0 + 1_000_000)
            .self_signed(&other_root_key)
            .expect("other root");
        let other = TrustStore::new(&[other_root.der().to_vec()], &[]).expect("other");
        assert_eq!(
            other.verify_presented_chain(&chain, T0 + 10),
            Err(PkiError::UntrustedIssuer)
        );
        let reloaded = TrustStore::new(&[root.der().to_vec()], &[]).expect("reloaded");
        assert_ne!(reloaded.generation, store.generation);
        assert!(!chain.verified_under(reloaded.generation, T0 + 10));
        reloaded
            .verify_presented_chain(&chain, T0 + 10)
            .expect("verified again");
        // The empty default store never counts as verified.
        assert!(!chain.verified_under(TrustStore::default().generation, T0 + 10));
    }
}
