//! The agent side of the agent CA: a fresh P-256 key and a PKCS#10 request for it, for
//! `signet cert issue --key-out` and `signet cert renew`. The CA ignores the request's names.

use rcgen::{CertificateParams, DnType, KeyPair};

use super::PkiError;

/// A new private key (PKCS#8 PEM) and a CSR (PEM) signed with it.
pub fn new_key_and_csr(common_name: &str) -> Result<(String, String), PkiError> {
    let sign = |e: rcgen::Error| PkiError::Signing(e.to_string());
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(sign)?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let csr = params.serialize_request(&key).map_err(sign)?;
    Ok((key.serialize_pem(), csr.pem().map_err(sign)?))
}

/// A CSR (PEM) for an existing private key (PKCS#8 PEM), to renew without changing keys.
pub fn csr_for_key(key_pem: &str, common_name: &str) -> Result<String, PkiError> {
    let sign = |e: rcgen::Error| PkiError::Signing(e.to_string());
    let key =
        KeyPair::from_pem(key_pem).map_err(|e| PkiError::Malformed(format!("private key: {e}")))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .serialize_request(&key)
        .map_err(sign)?
        .pem()
        .map_err(sign)
}
