//! Certificates an operator revoked, by SHA-256 thumbprint or by issuer and serial number,
//! held in memory so that the token endpoint checks them without a query.

use std::collections::{HashMap, HashSet};

use super::certificate::Certificate;

/// A revocation as an operator entered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// `x5t#S256` of the certificate.
    Thumbprint(String),
    /// Canonical issuer DN and normalised serial.
    IssuerSerial { issuer: String, serial: String },
}

/// Every operator revocation, for lookups on the hot path.
#[derive(Debug, Default, Clone)]
pub struct RevokedCertificates {
    thumbprints: HashSet<String>,
    /// Serials by issuer: looked up by reference, without building a key per request.
    issuer_serials: HashMap<String, HashSet<String>>,
}

impl RevokedCertificates {
    pub fn new(revocations: impl IntoIterator<Item = Revocation>) -> Self {
        let mut set = Self::default();
        for revocation in revocations {
            match revocation {
                Revocation::Thumbprint(t) => {
                    set.thumbprints.insert(t);
                }
                Revocation::IssuerSerial { issuer, serial } => {
                    set.issuer_serials.entry(issuer).or_default().insert(serial);
                }
            }
        }
        set
    }

    /// Whether `certificate` was revoked by either of its names.
    pub fn contains(&self, certificate: &Certificate) -> bool {
        self.thumbprints.contains(&certificate.thumbprint)
            || self
                .issuer_serials
                .get(&certificate.issuer)
                .is_some_and(|serials| serials.contains(&certificate.serial))
    }

    pub fn len(&self) -> usize {
        self.thumbprints.len()
            + self
                .issuer_serials
                .values()
                .map(HashSet::len)
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
