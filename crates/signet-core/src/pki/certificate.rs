//! One X.509 certificate, parsed once: what client authentication compares (thumbprint, subject,
//! subject alternative names, issuer and serial, validity, extended key usage).

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{PkiError, dn};
use crate::UnixTime;
use crate::crypto::sha256;
use crate::encoding::b64url;

/// The facts of a certificate that Signet decides on. Built from DER by [`Certificate::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    /// `x5t#S256`: base64url SHA-256 of the DER (RFC 8705 §3.1).
    pub thumbprint: String,
    /// Canonical subject DN (see [`dn`]).
    pub subject: String,
    /// Canonical issuer DN.
    pub issuer: String,
    /// The subject as the certificate spells it, for people (RFC 4514 order).
    pub subject_display: String,
    /// Serial number, lower-case hex without leading zeros.
    pub serial: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    pub san_ip: Vec<IpAddr>,
    pub san_email: Vec<String>,
    /// `None` when the certificate has no extended key usage extension.
    pub client_auth_eku: Option<bool>,
    pub is_ca: bool,
    /// Issuer and subject are the same name.
    pub self_issued: bool,
}

impl Certificate {
    /// Parses one DER certificate. Trailing bytes are refused.
    pub fn parse(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > 64 * 1024 {
            return Err(PkiError::Malformed("certificate larger than 64 KiB".into()));
        }
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| PkiError::Malformed(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(PkiError::Malformed(
                "trailing bytes after the certificate".into(),
            ));
        }
        let mut parsed = Self {
            der: der.to_vec(),
            thumbprint: thumbprint(der),
            subject: dn::canonical_from_name(cert.subject()),
            issuer: dn::canonical_from_name(cert.issuer()),
            subject_display: dn::display(cert.subject()),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            san_dns: Vec::new(),
            san_uri: Vec::new(),
            san_ip: Vec::new(),
            san_email: Vec::new(),
            client_auth_eku: None,
            is_ca: false,
            self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| PkiError::Malformed(format!("subjectAltName: {e}")))?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => parsed.san_dns.push(d.to_string()),
                    GeneralName::URI(u) => parsed.san_uri.push(u.to_string()),
                    GeneralName::RFC822Name(e) => parsed.san_email.push(e.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            parsed.san_ip.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let eku = cert
            .extended_key_usage()
            .map_err(|e| PkiError::Malformed(format!("extendedKeyUsage: {e}")))?;
        parsed.client_auth_eku = eku.map(|e| e.value.client_auth || e.value.any);
        let constraints = cert
            .basic_constraints()
            .map_err(|e| PkiError::Malformed(format!("basicConstraints: {e}")))?;
        parsed.is_ca = constraints.is_some_and(|c| c.value.ca);
        Ok(parsed)
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        to_pem("CERTIFICATE", &self.der)
    }

    /// Whether `now` lies within the validity period.
    pub fn validity_at(&self, now: UnixTime) -> Result<(), PkiError> {
        if now < self.not_before {
            return Err(PkiError::NotYetValid);
        }
        if now > self.not_after {
            return Err(PkiError::Expired);
        }
        Ok(())
    }
}

/// The chain a client presented in the TLS handshake (or a trusted proxy forwarded): the leaf
/// parsed once per connection, and every certificate's DER for path building. It remembers
/// the trust store it last verified under (see `TrustStore::verify_presented_chain`).
#[derive(Debug)]
pub struct CertificateChain {
    pub leaf: Certificate,
    /// The intermediates as presented that could be read.
    pub intermediates: Vec<Certificate>,
    /// Leaf first, then the intermediates as presented.
    pub der: Vec<Vec<u8>>,
    /// When every presented certificate is valid (latest `notBefore`, earliest `notAfter`);
    /// `None` when an intermediate could not be read (then nothing is remembered).
    validity: Option<(UnixTime, UnixTime)>,
    /// The generation of the trust store this chain verified under; 0 for none.
    verified_under: std::sync::atomic::AtomicU64,
}

impl Clone for CertificateChain {
    fn clone(&self) -> Self {
        Self {
            leaf: self.leaf.clone(),
            intermediates: self.intermediates.clone(),
            der: self.der.clone(),
            validity: self.validity,
            verified_under: std::sync::atomic::AtomicU64::new(
                self.verified_under
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl CertificateChain {
    /// Parses the leaf of a presented chain; at most 10 certificates are considered.
    pub fn parse(der: Vec<Vec<u8>>) -> Result<Self, PkiError> {
        let first = der.first().ok_or(PkiError::NoCertificate)?;
        if der.len() > 10 {
            return Err(PkiError::Malformed(
                "more than 10 certificates in the chain".into(),
            ));
        }
        let leaf = Certificate::parse(first)?;
        let mut validity = Some((leaf.not_before, leaf.not_after));
        let mut intermediates = Vec::with_capacity(der.len() - 1);
        for intermediate in &der[1..] {
            let parsed = Certificate::parse(intermediate).ok();
            validity = match (validity, &parsed) {
                (Some((from, until)), Some(c)) => {
                    Some((from.max(c.not_before), until.min(c.not_after)))
                }
                _ => None,
            };
            intermediates.extend(parsed);
        }
        Ok(Self {
            leaf,
            intermediates,
            der,
            validity,
            verified_under: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Whether the chain verified under trust store `generation` and every certificate in it
    /// is still within its validity period at `now`.
    pub(crate) fn verified_under(&self, generation: u64, now: UnixTime) -> bool {
        generation != 0
            && self
                .verified_under
                .load(std::sync::atomic::Ordering::Relaxed)
                == generation
            && self
                .validity
                .is_some_and(|(from, until)| from <= now && now <= until)
    }

    pub(crate) fn mark_verified(&self, generation: u64) {
        self.verified_under
            .store(generation, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `x5t#S256` of DER bytes.
pub fn thumbprint(der: &[u8]) -> String {
    b64url(sha256(der))
}

/// A serial number as lower-case hex, leading zero bytes removed, so that `00:AB` and `ab`
/// name the same certificate.
pub fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let hex: String = bytes[start..].iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.to_string()
    }
}

/// Normalises a serial number an operator typed (`0A:1B`, `0x0a1b`, `a1b`) to [`serial_hex`]'s
/// form.
pub fn normalize_serial(text: &str) -> Result<String, PkiError> {
    let cleaned: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if cleaned.is_empty() || cleaned.len() > 64 || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PkiError::Malformed(
            "serial must be hex digits (colons allowed)".into(),
        ));
    }
    let trimmed = cleaned.to_ascii_lowercase();
    let trimmed = trimmed.trim_start_matches('0');
    Ok(if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.to_string()
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Every `CERTIFICATE` block of a PEM bundle, as DER; other blocks are skipped.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    pem_blocks(text, "CERTIFICATE")
}

/// Every block with `label` in a PEM text, as DER.
pub fn pem_blocks(text: &str, label: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let stop = body
            .find(&end)
            .ok_or_else(|| PkiError::Malformed(format!("no `{end}` line")))?;
        let b64: String = body[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| PkiError::Malformed(format!("bad base64 in a {label} block")))?;
        out.push(der);
        rest = &body[stop + end.len()..];
    }
    Ok(out)
}

/// DER bytes as a PEM block.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalised() {
        assert_eq!(serial_hex(&[0, 0xab, 0x01]), "ab01");
        assert_eq!(serial_hex(&[0]), "0");
        assert_eq!(normalize_serial("00:AB:01").expect("hex"), "ab01");
        assert_eq!(normalize_serial("0xab01").expect("hex"), "ab01");
        assert!(normalize_serial("xyz").is_err());
        assert!(normalize_serial("").is_err());
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            Certificate::parse(b"\x30\x03\x02\x01\x01"),
            Err(PkiError::Malformed(_))
        ));
        assert!(Certificate::parse(&[]).is_err());
        assert!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(pem_certificates("no pem here").expect("empty").is_empty());
    }
}
