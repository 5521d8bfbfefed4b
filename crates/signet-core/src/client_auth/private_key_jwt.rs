//! Private Key JWT (`private_key_jwt`; RFC 7523 §2.2 and §3, OpenID Connect Core §9).
//!
//! The agent signs a short-lived JWT with its private key. Checks run in this order, each with
//! its own audit reason: parse; refuse `none`, HMAC, unknown algorithms and headers that carry
//! or point to a key (`jwk`, `jku`, `x5u`, `x5c`) or demand extensions (`crit`); find the key
//! only among the agent's registered keys; the header `alg` must equal the key's pinned
//! algorithm; verify the signature; then `iss` = `sub` = agent ID, `aud`, `exp`, lifetime,
//! `nbf`/`iat`, `jti`. Recording the `jti` (replay protection) is the caller's last step, after
//! every other check of the request has passed, so a refused request never burns a `jti`.

use serde_json::Value;

use super::ClientAuthError;
use crate::encoding::b64url_decode;
use crate::jwk::{VerifyingKey, allowed_algorithm};
use crate::UnixTime;

/// Largest accepted assertion, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
const MAX_JTI_LEN: usize = 256;

/// The assertion rules the server is configured with.
#[derive(Debug, Clone)]
pub struct AssertionPolicy {
    /// Accepted `aud` values: the token endpoint URL and the issuer.
    pub audiences: Vec<String>,
    /// Longest allowed `exp - iat`, in seconds.
    pub max_lifetime: i64,
    /// Tolerated clock difference for `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew: i64,
}

/// A parsed, not yet verified, assertion.
#[derive(Debug)]
pub struct Assertion {
    header: Value,
    claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

/// What a verified assertion proves, and what must be recorded to prevent its replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub kid: String,
    pub jti: String,
    /// Keep the `jti` until then (the assertion's `exp` plus the clock skew).
    pub jti_expires_at: UnixTime,
}

impl Assertion {
    /// Splits and decodes a compact JWS. Nothing is trusted yet.
    pub fn parse(token: &str) -> Result<Self, ClientAuthError> {
        if token.len() > MAX_ASSERTION_BYTES {
            return Err(ClientAuthError::AssertionTooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(ClientAuthError::MalformedAssertion);
        };
        let decode_json = |part: &str| -> Option<Value> {
            let value: Value = serde_json::from_slice(&b64url_decode(part)?).ok()?;
            value.is_object().then_some(value)
        };
        let header_json = decode_json(header).ok_or(ClientAuthError::MalformedAssertion)?;
        let claims = decode_json(payload).ok_or(ClientAuthError::MalformedAssertion)?;
        let signature = b64url_decode(signature).ok_or(ClientAuthError::MalformedAssertion)?;
        Ok(Self { header: header_json, claims, signing_input: format!("{header}.{payload}"), signature })
    }

    /// The unverified `sub`, used only to find which agent's keys to try.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// Verifies the assertion for `agent_id` against the agent's registered keys.
    pub fn verify(
        &self,
        agent_id: &str,
        keys: &[std::sync::Arc<VerifyingKey>],
        policy: &AssertionPolicy,
        now: UnixTime,
    ) -> Result<VerifiedAssertion, ClientAuthError> {
        let alg = self.header.get("alg").and_then(Value::as_str).ok_or(ClientAuthError::MalformedAssertion)?;
        let alg = allowed_algorithm(alg).map_err(|_| ClientAuthError::AlgorithmNotAllowed)?;
        if ["jwk", "jku", "x5u", "x5c"].iter().any(|h| self.header.get(*h).is_some()) {
            return Err(ClientAuthError::EmbeddedKeyHeader);
        }
        if self.header.get("crit").is_some() {
            return Err(ClientAuthError::UnsupportedCritical);
        }
        let key = match self.header.get("kid") {
            Some(Value::String(kid)) => keys.iter().find(|k| &k.kid == kid),
            Some(_) => return Err(ClientAuthError::MalformedAssertion),
            // Without a `kid`, only an agent with exactly one usable key is unambiguous.
            None => {
                let mut usable = keys.iter().filter(|k| k.revoked_at.is_none());
                match (usable.next(), usable.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        };
        let key = key.ok_or(ClientAuthError::UnknownKid)?;
        if key.revoked_at.is_some_and(|t| t <= now) {
            return Err(ClientAuthError::KeyRevoked);
        }
        if key.expires_at.is_some_and(|t| t <= now) {
            return Err(ClientAuthError::KeyExpired);
        }
        if key.alg != alg {
            return Err(ClientAuthError::AlgorithmMismatch);
        }
        if !key.verify(self.signing_input.as_bytes(), &self.signature) {
            return Err(ClientAuthError::BadSignature);
        }

        let claim = |name: &str| self.claims.get(name);
        let iss = claim("iss").and_then(Value::as_str).ok_or(ClientAuthError::BadIssuer)?;
        let sub = claim("sub").and_then(Value::as_str).ok_or(ClientAuthError::SubjectMismatch)?;
        if iss != sub {
            return Err(ClientAuthError::BadIssuer);
        }
        if sub != agent_id {
            return Err(ClientAuthError::SubjectMismatch);
        }
        let audience_ok = match claim("aud") {
            Some(Value::String(aud)) => policy.audiences.iter().any(|a| a == aud),
            Some(Value::Array(values)) => {
                values.len() == 1 && values[0].as_str().is_some_and(|aud| policy.audiences.iter().any(|a| a == aud))
            }
            _ => false,
        };
        if !audience_ok {
            return Err(ClientAuthError::BadAudience);
        }
        let number = |name: &str| -> Result<Option<i64>, ClientAuthError> {
            match claim(name) {
                None => Ok(None),
                Some(v) => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).map(Some).ok_or(ClientAuthError::MalformedAssertion),
            }
        };
        let exp = number("exp")?.ok_or(ClientAuthError::MissingExpiry)?;
        if exp + policy.clock_skew <= now {
            return Err(ClientAuthError::AssertionExpired);
        }
        let iat = number("iat")?;
        let lifetime = exp - iat.unwrap_or(now);
        if lifetime > policy.max_lifetime {
            return Err(ClientAuthError::LifetimeTooLong);
        }
        if iat.is_some_and(|iat| iat > now + policy.clock_skew) {
            return Err(ClientAuthError::IssuedInFuture);
        }
        if number("nbf")?.is_some_and(|nbf| nbf > now + policy.clock_skew) {
            return Err(ClientAuthError::NotYetValid);
        }
        let jti = match claim("jti") {
            Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.clone(),
            _ => return Err(ClientAuthError::MissingJti),
        };
        Ok(VerifiedAssertion { kid: key.kid.clone(), jti, jti_expires_at: exp + policy.clock_skew })
    }
}
