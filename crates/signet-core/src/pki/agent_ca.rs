//! Signet's own CA for agents: a P-256 key (stored sealed with the master key, like the token
//! signing keys) and a self-signed CA certificate. It issues short-lived client certificates
//! from CSRs, with subject and subject alternative names chosen by Signet from the agent's
//! identity, never from the CSR, and signs the CRL of the certificates it revoked.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use super::binding::{BindingKind, CertificateBinding};
use super::certificate::Certificate;
use super::{PkiError, dn};
use crate::UnixTime;
use crate::agent::AgentId;
use crate::crypto::random_bytes;

/// How long the agent CA's own certificate is valid: ten years.
const CA_LIFETIME: i64 = 10 * 365 * 86_400;
/// Issued certificates start this far in the past, for clients with a slow clock.
const BACKDATE: i64 = 300;
/// How long a published CRL is valid before clients should fetch a new one.
const CRL_LIFETIME: i64 = 86_400;

/// The URI SAN Signet puts in every certificate it issues to an agent.
pub fn agent_uri(agent_id: &AgentId) -> String {
    format!("urn:signet:agent:{agent_id}")
}

/// The agent CA, with its key parsed once.
pub struct AgentCa {
    certificate: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for AgentCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCa")
            .field("subject", &self.certificate.subject_display)
            .field("thumbprint", &self.certificate.thumbprint)
            .finish_non_exhaustive()
    }
}

/// A certificate the agent CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate: Certificate,
    pub agent_id: AgentId,
}

impl AgentCa {
    /// Creates a new CA named `common_name`. Returns the CA and its PKCS#8 private key, which
    /// the caller seals before storing.
    pub fn generate(common_name: &str, now: UnixTime) -> Result<(Self, Vec<u8>), PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        name.push(DnType::OrganizationName, "Signet");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = timestamp(now - BACKDATE)?;
        params.not_after = timestamp(now + CA_LIFETIME)?;
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        let pkcs8 = key.serialize_der();
        let ca = Self::from_parts(cert.der(), &pkcs8)?;
        Ok((ca, pkcs8))
    }

    /// Loads a stored CA: its certificate (DER) and PKCS#8 private key.
    pub fn from_parts(certificate_der: &[u8], pkcs8: &[u8]) -> Result<Self, PkiError> {
        let certificate = Certificate::parse(certificate_der)?;
        let key = KeyPair::try_from(pkcs8)
            .map_err(|e| PkiError::Malformed(format!("agent CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(&certificate_der.to_vec().into(), key)
            .map_err(|e| PkiError::Malformed(format!("agent CA certificate: {e}")))?;
        Ok(Self {
            certificate,
            issuer,
        })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Issues a client certificate for `agent_id` for the public key of `csr_der`, valid for
    /// `lifetime` seconds from `now`. The CSR's signature must verify (the requester holds the
    /// key); everything else in it is ignored. The subject is the agent's `binding` DN when it
    /// has one, else `CN=<agent_id>`; the SANs are Signet's agent URI plus the binding's name.
    pub fn issue(
        &self,
        csr_der: &[u8],
        agent_id: &AgentId,
        binding: Option<&CertificateBinding>,
        lifetime: i64,
        now: UnixTime,
    ) -> Result<IssuedCertificate, PkiError> {
        let public_key = csr_public_key(csr_der)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = match binding {
            Some(b) if b.kind == BindingKind::SubjectDn => distinguished_name(&b.value)?,
            _ => {
                let mut name = DistinguishedName::new();
                name.push(DnType::CommonName, agent_id.as_str());
                name
            }
        };
        let ia5 = |s: &str| {
            rcgen::string::Ia5String::try_from(s.to_string())
                .map_err(|_| PkiError::Signing(format!("`{s}` is not ASCII")))
        };
        let uri = agent_uri(agent_id);
        params.subject_alt_names = vec![SanType::URI(ia5(&uri)?)];
        if let Some(b) = binding {
            let extra = match b.kind {
                BindingKind::SubjectDn => None,
                BindingKind::SanUri if b.value == uri => None,
                BindingKind::SanUri => Some(SanType::URI(ia5(&b.value)?)),
                BindingKind::SanDns => Some(SanType::DnsName(ia5(&b.value)?)),
                BindingKind::SanEmail => Some(SanType::Rfc822Name(ia5(&b.value)?)),
                BindingKind::SanIp => Some(SanType::IpAddress(
                    b.value
                        .parse()
                        .map_err(|_| PkiError::Signing("binding IP".into()))?,
                )),
            };
            params.subject_alt_names.extend(extra);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = timestamp(now - BACKDATE)?;
        params.not_after = timestamp(now + lifetime)?;
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        Ok(IssuedCertificate {
            certificate: Certificate::parse(cert.der())?,
            agent_id: agent_id.clone(),
        })
    }

    /// A CRL listing `revoked` (serial hex, revocation time), numbered `crl_number`.
    pub fn crl(
        &self,
        revoked: &[(String, UnixTime)],
        crl_number: u64,
        now: UnixTime,
    ) -> Result<Vec<u8>, PkiError> {
        let revoked_certs = revoked
            .iter()
            .map(|(serial, at)| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial_bytes(serial)?),
                    revocation_time: timestamp(*at)?,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: timestamp(now)?,
            next_update: timestamp(now + CRL_LIFETIME)?,
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        Ok(crl.der().to_vec())
    }
}

/// The public key of a CSR whose signature verifies (proof that the requester holds the key).
fn csr_public_key(csr_der: &[u8]) -> Result<rcgen::SubjectPublicKeyInfo, PkiError> {
    if csr_der.len() > 16 * 1024 {
        return Err(PkiError::Csr("larger than 16 KiB".into()));
    }
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|e| PkiError::Csr(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::Csr("trailing bytes after the request".into()));
    }
    csr.verify_signature()
        .map_err(|_| PkiError::Csr("the request's signature does not verify".into()))?;
    rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(|e| PkiError::Csr(format!("unsupported public key: {e}")))
}

/// An rcgen name from an RFC 4514 string (one attribute per type).
fn distinguished_name(text: &str) -> Result<DistinguishedName, PkiError> {
    let rdns = dn::parse(text).map_err(|e| PkiError::Signing(e.to_string()))?;
    let mut name = DistinguishedName::new();
    let mut seen = Vec::new();
    // rcgen writes attributes in insertion order, which is ASN.1 order: least specific first.
    for rdn in rdns.iter().rev() {
        for (oid, value) in rdn {
            if seen.contains(oid) {
                return Err(PkiError::Signing(format!(
                    "the agent CA cannot issue a subject with {oid} twice"
                )));
            }
            seen.push(oid.clone());
            let arcs = oid
                .split('.')
                .map(|a| a.parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| PkiError::Signing(format!("bad OID {oid}")))?;
            name.push(DnType::from_oid(&arcs), value.as_str());
        }
    }
    Ok(name)
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = random_bytes();
    // Positive and without a leading zero byte: 127 random bits.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn serial_bytes(hex: &str) -> Result<Vec<u8>, PkiError> {
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PkiError::Malformed(format!("serial `{hex}` is not hex")))
}

fn timestamp(at: UnixTime) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(at).map_err(|e| PkiError::Signing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::trust::TrustStore;

    fn csr() -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::new(vec!["ignored.example".to_string()]).expect("p");
        params.distinguished_name.push(DnType::CommonName, "admin");
        let request = params.serialize_request(&key).expect("csr");
        (request.der().to_vec(), key)
    }

    #[test]
    fn issued_certificates_carry_signets_names_and_chain_to_the_ca() {
        let now = crate::now();
        let (ca, pkcs8) = AgentCa::generate("Signet agent CA", now).expect("ca");
        let ca = AgentCa::from_parts(ca.certificate().der(), &pkcs8).expect("reload");
        let agent = AgentId::generate();
        let (csr, _) = csr();
        let issued = ca.issue(&csr, &agent, None, 3600, now).expect("issued");
        let cert = &issued.certificate;
        assert_eq!(cert.san_uri, vec![agent_uri(&agent)]);
        assert!(cert.san_dns.is_empty(), "the CSR's names are ignored");
        assert_eq!(
            cert.subject,
            format!("2.5.4.3={}", agent.as_str().to_lowercase())
        );
        assert_eq!(cert.client_auth_eku, Some(true));
        assert_eq!(cert.not_after, now + 3600);
        let trust = TrustStore::new(&[ca.certificate().der().to_vec()], &[]).expect("trust");
        trust
            .verify_client_chain(&[cert.der().to_vec()], now)
            .expect("chains to the agent CA");
        assert_eq!(
            trust.verify_client_chain(&[cert.der().to_vec()], now + 7200),
            Err(PkiError::Expired)
        );

        let binding =
            CertificateBinding::new(BindingKind::SubjectDn, "CN=Billing,O=Acme").expect("dn");
        let issued = ca
            .issue(&csr, &agent, Some(&binding), 3600, now)
            .expect("issued");
        assert!(binding.matches(&issued.certificate));
    }

    #[test]
    fn the_crl_revokes_and_a_bad_csr_is_refused() {
        let now = crate::now();
        let (ca, _) = AgentCa::generate("Signet agent CA", now).expect("ca");
        let agent = AgentId::generate();
        let (csr_der, _) = csr();
        let issued = ca.issue(&csr_der, &agent, None, 3600, now).expect("issued");
        let crl = ca
            .crl(&[(issued.certificate.serial.clone(), now)], 1, now)
            .expect("crl");
        let trust = TrustStore::new(&[ca.certificate().der().to_vec()], &[crl]).expect("trust");
        assert_eq!(
            trust.verify_client_chain(&[issued.certificate.der().to_vec()], now),
            Err(PkiError::Revoked)
        );

        let mut tampered = csr_der.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            ca.issue(&tampered, &agent, None, 3600, now),
            Err(PkiError::Csr(_))
        ));
        assert!(matches!(
            ca.issue(b"junk", &agent, None, 3600, now),
            Err(PkiError::Csr(_))
        ));
    }
}
