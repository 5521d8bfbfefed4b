//! PEM input: public keys (SPKI) and certificates, their components, and private keys refused.

use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::{AgentKey, KeyError, build, malformed};
use crate::UnixTime;

pub(super) fn from_pem(
    text: &str,
    kid: Option<&str>,
    alg: Option<&str>,
    now: UnixTime,
) -> Result<AgentKey, KeyError> {
    let (label, der) = pem_decode(text)?;
    match label.as_str() {
        "PUBLIC KEY" => build(spki_components(&der)?, kid, alg, None, now),
        "CERTIFICATE" => {
            let (_, certificate) = x509_parser::certificate::X509Certificate::from_der(&der)
                .map_err(|e| malformed(format!("not an X.509 certificate: {e}")))?;
            let spki = certificate.public_key().raw;
            let not_after = certificate.validity().not_after.timestamp();
            build(spki_components(spki)?, kid, alg, Some(not_after), now)
        }
        l if l.contains("PRIVATE KEY") => Err(KeyError::PrivateKey),
        "RSA PUBLIC KEY" => Err(malformed(
            "PKCS#1 `RSA PUBLIC KEY` is not supported: submit the SPKI form (`BEGIN PUBLIC KEY`, e.g. `openssl rsa -pubout`)",
        )),
        other => Err(malformed(format!(
            "unexpected PEM block `{other}`: submit `PUBLIC KEY` or `CERTIFICATE`"
        ))),
    }
}

/// Decodes the first PEM block of `text`, refusing private keys.
pub fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let (label, der) = pem_block(text)?;
    if label.contains("PRIVATE KEY") {
        return Err(KeyError::PrivateKey);
    }
    Ok((label, der))
}

/// Decodes the first PEM block of `text`, whatever it holds (the agent-side CLI reads private
/// keys with it).
pub fn pem_block(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    use base64::Engine as _;
    let begin = text
        .find("-----BEGIN ")
        .ok_or_else(|| malformed("no PEM `-----BEGIN …-----` line"))?;
    let rest = &text[begin + 11..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| malformed("broken PEM header"))?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    // The end marker is looked for after the header only: it may not overlap it.
    let body_len = rest[body_start..]
        .find(&end_marker)
        .ok_or_else(|| malformed(format!("no `{end_marker}` line")))?;
    let body: String = rest[body_start..body_start + body_len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| malformed("the PEM body is not base64"))?;
    Ok((label, der))
}

pub(super) enum PublicComponents {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { crv: String, x: Vec<u8>, y: Vec<u8> },
    Okp { crv: String, x: Vec<u8> },
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

fn spki_components(der: &[u8]) -> Result<PublicComponents, KeyError> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| malformed(format!("not a SubjectPublicKeyInfo: {e}")))?;
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => Ok(PublicComponents::Rsa {
                n: rsa.modulus.to_vec(),
                e: rsa.exponent.to_vec(),
            }),
            _ => Err(malformed("broken RSA public key")),
        },
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .ok_or_else(|| malformed("EC key without a named curve"))?;
            let (crv, len) = match curve.as_str() {
                OID_P256 => ("P-256", 32),
                OID_P384 => ("P-384", 48),
                other => return Err(KeyError::UnsupportedCurve(other.to_string())),
            };
            let point = spki.subject_public_key.data.as_ref();
            if point.len() != 1 + 2 * len || point[0] != 4 {
                return Err(malformed("EC public keys must be uncompressed points"));
            }
            Ok(PublicComponents::Ec {
                crv: crv.to_string(),
                x: point[1..1 + len].to_vec(),
                y: point[1 + len..].to_vec(),
            })
        }
        OID_ED25519 => Ok(PublicComponents::Okp {
            crv: "Ed25519".into(),
            x: spki.subject_public_key.data.to_vec(),
        }),
        other => Err(KeyError::UnsupportedKeyType(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pem_framing_is_refused_not_a_panic() {
        for text in [
            // Found by the `pem_key` fuzz target: the END marker overlaps the BEGIN line.
            "-----BEGIN PUBLIC KEY--------END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----",
            "-----BEGIN ",
            "-----BEGIN PUBLIC KEY-----\n@@@\n-----END PUBLIC KEY-----\n",
            "-----END PUBLIC KEY----------BEGIN PUBLIC KEY-----",
        ] {
            assert!(pem_block(text).is_err(), "{text:?}");
        }
        let empty = pem_block("-----BEGIN X-----\n-----END X-----\n").expect("empty body");
        assert_eq!(empty, ("X".to_owned(), Vec::new()));
    }
}
