//! The development server certificate for the TLS listener, generated on first start when no
//! `SIGNET_TLS_CERT_FILE` is configured: a local CA (so clients can trust one file) and a
//! server certificate for `localhost`, `127.0.0.1` and `::1` signed by it.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::PkiError;

/// PEM files of a development TLS setup.
#[derive(Debug, Clone)]
pub struct DevelopmentTls {
    /// The CA certificate clients should trust (`curl --cacert`).
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate.
    pub chain_pem: String,
    /// The server's PKCS#8 private key.
    pub key_pem: String,
}

/// Generates a development CA and server certificate valid for one year, naming the loopback
/// addresses and `extra_names` (DNS names or IP addresses).
pub fn generate(extra_names: &[String]) -> Result<DevelopmentTls, PkiError> {
    let sign = |e: rcgen::Error| PkiError::Signing(e.to_string());
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(sign)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "Signet development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::minutes(5);
    ca.not_after = now + Duration::days(365);
    let ca_cert = ca.self_signed(&ca_key).map_err(sign)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(sign)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_names.iter().cloned());
    let mut server = CertificateParams::default();
    server
        .distinguished_name
        .push(DnType::CommonName, "Signet development server");
    for name in names {
        let san = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|_| PkiError::Signing(format!("`{name}` is not a DNS name")))?,
            ),
        };
        if !server.subject_alt_names.contains(&san) {
            server.subject_alt_names.push(san);
        }
    }
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = now - Duration::minutes(5);
    server.not_after = now + Duration::days(365);
    let server_cert = server.signed_by(&key, &issuer).map_err(sign)?;
    Ok(DevelopmentTls {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", server_cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
    })
}
