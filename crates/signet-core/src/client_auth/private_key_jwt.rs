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
use crate::UnixTime;
use crate::encoding::b64url_decode;
use crate::jwk::{VerifyingKey, allowed_algorithm};

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
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ClientAuthError::MalformedAssertion);
        };
        let decode_json = |part: &str| -> Option<Value> {
            let value: Value = serde_json::from_slice(&b64url_decode(part)?).ok()?;
            value.is_object().then_some(value)
        };
        let header_json = decode_json(header).ok_or(ClientAuthError::MalformedAssertion)?;
        let claims = decode_json(payload).ok_or(ClientAuthError::MalformedAssertion)?;
        let signature = b64url_decode(signature).ok_or(ClientAuthError::MalformedAssertion)?;
        Ok(Self {
            header: header_json,
            claims,
            signing_input: format!("{header}.{payload}"),
            signature,
        })
    }

    /// The unverified `sub`, used only to find which agent's keys to try.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The unverified header `kid`, used only to decide whether to refetch a `jwks_uri`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Verifies the assertion for `agent_id` against the agent's registered keys.
    pub fn verify(
        &self,
        agent_id: &str,
        keys: &[std::sync::Arc<VerifyingKey>],
        policy: &AssertionPolicy,
        now: UnixTime,
    ) -> Result<VerifiedAssertion, ClientAuthError> {
        let alg = self
            .header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(ClientAuthError::MalformedAssertion)?;
        let alg = allowed_algorithm(alg).map_err(|_| ClientAuthError::AlgorithmNotAllowed)?;
        if ["jwk", "jku", "x5u", "x5c"]
            .iter()
            .any(|h| self.header.get(*h).is_some())
        {
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
        if key.alg != alg {
            return Err(ClientAuthError::AlgorithmMismatch);
        }
        if !key.verify(self.signing_input.as_bytes(), &self.signature) {
            return Err(ClientAuthError::BadSignature);
        }
        // Only after the signature: "a revoked (or expired) key is in use" is an alert, and a
        // stale-use record with the caller's address; naming a revoked `kid` with no signature
        // must not raise it.
        if key.revoked_at.is_some_and(|t| t <= now) {
            return Err(ClientAuthError::KeyRevoked);
        }
        if key.expires_at.is_some_and(|t| t <= now) {
            return Err(ClientAuthError::KeyExpired);
        }

        let claim = |name: &str| self.claims.get(name);
        let iss = claim("iss")
            .and_then(Value::as_str)
            .ok_or(ClientAuthError::BadIssuer)?;
        let sub = claim("sub")
            .and_then(Value::as_str)
            .ok_or(ClientAuthError::SubjectMismatch)?;
        if iss != sub {
            return Err(ClientAuthError::BadIssuer);
        }
        if sub != agent_id {
            return Err(ClientAuthError::SubjectMismatch);
        }
        let audience_ok = match claim("aud") {
            Some(Value::String(aud)) => policy.audiences.iter().any(|a| a == aud),
            Some(Value::Array(values)) => {
                values.len() == 1
                    && values[0]
                        .as_str()
                        .is_some_and(|aud| policy.audiences.iter().any(|a| a == aud))
            }
            _ => false,
        };
        if !audience_ok {
            return Err(ClientAuthError::BadAudience);
        }
        let number = |name: &str| -> Result<Option<i64>, ClientAuthError> {
            match claim(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().map(|f| f as i64))
                    .map(Some)
                    .ok_or(ClientAuthError::MalformedAssertion),
            }
        };
        // Times are whatever the signer chose, extremes included: saturating arithmetic, so
        // that `iat` near i64::MIN cannot wrap `exp - iat` into a short lifetime.
        let exp = number("exp")?.ok_or(ClientAuthError::MissingExpiry)?;
        let latest = now.saturating_add(policy.clock_skew);
        if exp.saturating_add(policy.clock_skew) <= now {
            return Err(ClientAuthError::AssertionExpired);
        }
        let iat = number("iat")?;
        let lifetime = exp.saturating_sub(iat.unwrap_or(now));
        if lifetime > policy.max_lifetime {
            return Err(ClientAuthError::LifetimeTooLong);
        }
        if iat.is_some_and(|iat| iat > latest) {
            return Err(ClientAuthError::IssuedInFuture);
        }
        if number("nbf")?.is_some_and(|nbf| nbf > latest) {
            return Err(ClientAuthError::NotYetValid);
        }
        let jti = match claim("jti") {
            Some(Value::String(jti)) if jti.is_empty() => return Err(ClientAuthError::MissingJti),
            Some(Value::String(jti))
                if jti.len() > MAX_JTI_LEN || jti.chars().any(char::is_control) =>
            {
                return Err(ClientAuthError::InvalidJti);
            }
            Some(Value::String(jti)) => jti.clone(),
            _ => return Err(ClientAuthError::MissingJti),
        };
        Ok(VerifiedAssertion {
            kid: key.kid.clone(),
            jti,
            jti_expires_at: exp.saturating_add(policy.clock_skew),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::encoding::b64url;
    use crate::jwk::{KeyInput, parse_keys};
    use crate::token::{SigningAlgorithm, SigningKey};

    const AGENT: &str = "agt_0123456789abcdefghijkl";
    const NOW: i64 = 1_000_000;

    fn policy() -> AssertionPolicy {
        AssertionPolicy {
            audiences: vec![
                "https://signet/oauth2/token".into(),
                "https://signet".into(),
            ],
            max_lifetime: 300,
            clock_skew: 30,
        }
    }

    fn setup(alg: SigningAlgorithm) -> (SigningKey, Vec<Arc<VerifyingKey>>) {
        let (key, _) = SigningKey::generate(alg).expect("key");
        let keys = parse_keys(KeyInput::Jwk(key.public_jwk()), None, None, 0).expect("valid");
        let verifying = keys
            .iter()
            .map(|k| Arc::new(VerifyingKey::new(k).expect("parse")))
            .collect();
        (key, verifying)
    }

    fn claims() -> Value {
        json!({ "iss": AGENT, "sub": AGENT, "aud": "https://signet/oauth2/token", "iat": NOW, "exp": NOW + 60, "jti": "j-1" })
    }

    fn check(token: &str, keys: &[Arc<VerifyingKey>], expected: Result<&str, ClientAuthError>) {
        let result = Assertion::parse(token)
            .and_then(|a| a.verify(AGENT, keys, &policy(), NOW))
            .map(|v| v.jti);
        assert_eq!(result, expected.map(str::to_string), "{token}");
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        if value.is_null() {
            claims.as_object_mut().expect("object").remove(name);
        } else {
            claims[name] = value;
        }
        claims
    }

    #[test]
    fn a_valid_assertion_verifies() {
        for alg in SigningAlgorithm::ALL {
            let (key, keys) = setup(alg);
            let token = key.sign_assertion(None, claims().to_string().as_bytes());
            check(&token, &keys, Ok("j-1"));
        }
    }

    #[test]
    fn claim_failures_have_precise_reasons() {
        let (key, keys) = setup(SigningAlgorithm::Es256);
        let sign = |c: Value| key.sign_assertion(None, c.to_string().as_bytes());
        let cases = [
            (
                with(
                    claims(),
                    "aud",
                    json!(["https://signet/oauth2/token", "https://evil"]),
                ),
                ClientAuthError::BadAudience,
            ),
            (
                with(claims(), "aud", json!("https://evil")),
                ClientAuthError::BadAudience,
            ),
            (
                with(claims(), "aud", Value::Null),
                ClientAuthError::BadAudience,
            ),
            (
                with(claims(), "iss", json!("agt_someone_else")),
                ClientAuthError::BadIssuer,
            ),
            (
                with(with(claims(), "iss", json!("agt_x")), "sub", json!("agt_x")),
                ClientAuthError::SubjectMismatch,
            ),
            (
                with(
                    with(claims(), "exp", json!(NOW - 31)),
                    "iat",
                    json!(NOW - 90),
                ),
                ClientAuthError::AssertionExpired,
            ),
            (
                with(claims(), "exp", json!(NOW + 301)),
                ClientAuthError::LifetimeTooLong,
            ),
            (
                with(claims(), "exp", Value::Null),
                ClientAuthError::MissingExpiry,
            ),
            (
                with(claims(), "iat", json!(NOW + 120)),
                ClientAuthError::IssuedInFuture,
            ),
            (
                with(claims(), "nbf", json!(NOW + 120)),
                ClientAuthError::NotYetValid,
            ),
            (
                with(claims(), "jti", Value::Null),
                ClientAuthError::MissingJti,
            ),
            (
                with(claims(), "jti", json!("")),
                ClientAuthError::MissingJti,
            ),
            (
                with(claims(), "jti", json!("a\u{0}b")),
                ClientAuthError::InvalidJti,
            ),
            (
                with(claims(), "jti", json!("line\nbreak")),
                ClientAuthError::InvalidJti,
            ),
            (
                with(claims(), "jti", json!("j".repeat(MAX_JTI_LEN + 1))),
                ClientAuthError::InvalidJti,
            ),
            // Extremes cannot wrap the lifetime into a short one, nor panic.
            (
                with(
                    with(claims(), "iat", json!(i64::MIN)),
                    "exp",
                    json!(NOW + 10 * 365 * 86_400),
                ),
                ClientAuthError::LifetimeTooLong,
            ),
            (
                with(with(claims(), "iat", json!(-1e19)), "exp", json!(NOW + 60)),
                ClientAuthError::LifetimeTooLong,
            ),
            (
                with(claims(), "exp", json!(i64::MAX)),
                ClientAuthError::LifetimeTooLong,
            ),
            (
                with(with(claims(), "exp", json!(i64::MAX)), "iat", Value::Null),
                ClientAuthError::LifetimeTooLong,
            ),
            (
                with(claims(), "exp", json!(i64::MIN)),
                ClientAuthError::AssertionExpired,
            ),
            (
                with(claims(), "nbf", json!(i64::MAX)),
                ClientAuthError::NotYetValid,
            ),
        ];
        for (c, error) in cases {
            check(&sign(c), &keys, Err(error));
        }
        check(
            &sign(with(claims(), "aud", json!(["https://signet"]))),
            &keys,
            Ok("j-1"),
        );
    }

    #[test]
    fn header_attacks_are_refused() {
        let (key, keys) = setup(SigningAlgorithm::Es256);
        let payload = b64url(claims().to_string());
        let forge = |header: Value| {
            format!(
                "{}.{payload}.{}",
                b64url(header.to_string()),
                b64url(b"sig")
            )
        };
        check(
            &forge(json!({"alg": "none"})),
            &keys,
            Err(ClientAuthError::AlgorithmNotAllowed),
        );
        check(
            &forge(json!({"alg": "HS256", "kid": key.kid()})),
            &keys,
            Err(ClientAuthError::AlgorithmNotAllowed),
        );
        check(
            &forge(json!({"alg": "ES256", "kid": key.kid(), "jku": "https://evil/jwks"})),
            &keys,
            Err(ClientAuthError::EmbeddedKeyHeader),
        );
        check(
            &forge(json!({"alg": "ES256", "jwk": key.public_jwk()})),
            &keys,
            Err(ClientAuthError::EmbeddedKeyHeader),
        );
        check(
            &forge(json!({"alg": "ES256", "kid": key.kid(), "crit": ["exp"]})),
            &keys,
            Err(ClientAuthError::UnsupportedCritical),
        );
        check(
            &forge(json!({"alg": "ES256", "kid": "other"})),
            &keys,
            Err(ClientAuthError::UnknownKid),
        );
        check(
            &forge(json!({"alg": "ES384", "kid": key.kid()})),
            &keys,
            Err(ClientAuthError::AlgorithmMismatch),
        );
        check(
            &forge(json!({"alg": "ES256", "kid": key.kid()})),
            &keys,
            Err(ClientAuthError::BadSignature),
        );
        check(
            &forge(json!({"alg": "ES256"})),
            &keys,
            Err(ClientAuthError::BadSignature),
        );
        check("a.b", &keys, Err(ClientAuthError::MalformedAssertion));
        // A revoked or expired key's `kid` with no valid signature is a bad signature, not
        // "a revoked key in use" (which raises an alert).
        for (revoked_at, expires_at, reason) in [
            (Some(NOW - 1), None, ClientAuthError::KeyRevoked),
            (None, Some(NOW - 1), ClientAuthError::KeyExpired),
        ] {
            let mut registered =
                parse_keys(KeyInput::Jwk(key.public_jwk()), None, None, 0).expect("valid");
            registered[0].revoked_at = revoked_at;
            registered[0].expires_at = expires_at;
            let stale = [Arc::new(VerifyingKey::new(&registered[0]).expect("parse"))];
            check(
                &forge(json!({"alg": "ES256", "kid": key.kid()})),
                &stale,
                Err(ClientAuthError::BadSignature),
            );
            let signed = key.sign_assertion(None, claims().to_string().as_bytes());
            check(&signed, &stale, Err(reason));
        }
        check("a.b.c.d", &keys, Err(ClientAuthError::MalformedAssertion));
        check("!!.??.**", &keys, Err(ClientAuthError::MalformedAssertion));
        check(
            &"a".repeat(MAX_ASSERTION_BYTES + 1),
            &keys,
            Err(ClientAuthError::AssertionTooLarge),
        );
    }
}
