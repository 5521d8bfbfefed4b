//! Verification of Signet's own access tokens, for introspection (RFC 7662) and revocation
//! (RFC 7009). Resource servers verify offline with the JWKS; this is the server-side twin.

use serde_json::Value;

use crate::UnixTime;
use crate::encoding::b64url_decode;

use super::claims::AccessTokenClaims;
use super::signer::SigningKey;

/// Why a presented token is not an active Signet token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signed by a key Signet does not publish")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("issued by another issuer")]
    WrongIssuer,
}

/// Verifies the JWS signature against the published keys, then the issuer and expiry.
pub fn verify_access_token<'k>(
    token: &str,
    keys: impl IntoIterator<Item = &'k SigningKey>,
    issuer: &str,
    now: UnixTime,
) -> Result<AccessTokenClaims, VerifyError> {
    if token.len() > 16 * 1024 {
        return Err(VerifyError::Malformed);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(VerifyError::Malformed)?;
    let header: Value = b64url_decode(header)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(VerifyError::Malformed)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(VerifyError::UnknownKey)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(VerifyError::Malformed)?;
    let key = keys
        .into_iter()
        .find(|k| k.kid() == kid)
        .ok_or(VerifyError::UnknownKey)?;
    // The key's own algorithm decides; a header naming another one is refused (no alg confusion).
    if key.alg().as_str() != alg {
        return Err(VerifyError::BadSignature);
    }
    let signature = b64url_decode(signature).ok_or(VerifyError::Malformed)?;
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(VerifyError::BadSignature);
    }
    let claims: AccessTokenClaims = b64url_decode(payload)
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(VerifyError::Malformed)?;
    if claims.iss != issuer {
        return Err(VerifyError::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(VerifyError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::NewAgent;
    use crate::token::grant::{TokenRequest, grant};
    use crate::token::signer::SigningAlgorithm;

    #[test]
    fn round_trip_and_refusals() {
        let (key, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
        let (other, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
        let agent = NewAgent {
            name: "a".into(),
            ..Default::default()
        }
        .into_agent(0)
        .expect("agent");
        let claims = grant(&agent, &TokenRequest::default(), "https://i", 60, 100).expect("grant");
        let token = key.sign_jws(&serde_json::to_vec(&claims).expect("json"));

        assert_eq!(
            verify_access_token(&token, [&key], "https://i", 120),
            Ok(claims)
        );
        assert_eq!(
            verify_access_token(&token, [&other], "https://i", 120),
            Err(VerifyError::UnknownKey)
        );
        assert_eq!(
            verify_access_token(&token, [&key], "https://x", 120),
            Err(VerifyError::WrongIssuer)
        );
        assert_eq!(
            verify_access_token(&token, [&key], "https://i", 160),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            verify_access_token("a.b", [&key], "https://i", 120),
            Err(VerifyError::Malformed)
        );
        let mut tampered = token.clone();
        tampered.insert(token.find('.').expect("dot") + 3, 'A');
        assert!(verify_access_token(&tampered, [&key], "https://i", 120).is_err());
    }
}
