//! Agent ID and secret (`client_secret_basic`, `client_secret_post`; RFC 6749 §2.3.1).
//!
//! A secret is `signet_` + 43 base62 characters (256 random bits) + a 6-character base62
//! CRC-32 checksum, in the style of modern API tokens: secret scanners recognise the prefix,
//! and the server refuses a mistyped or truncated secret without touching the database. It is
//! stored only as HMAC-SHA-256 under a pepper derived from the master key: the secret is
//! high-entropy, so a slow password hash would only slow the hot path down.

use crate::UnixTime;
use crate::crypto::{MasterKey, constant_time_eq, random_bytes};
use crate::encoding::{base62, crc32, is_base62};
use crate::sensitive::Sensitive;

use super::ClientAuthError;

const PREFIX: &str = "signet_";
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const SECRET_LEN: usize = PREFIX.len() + BODY_LEN + CHECKSUM_LEN;

/// A well-formed agent secret. Its `Debug` is redacted.
#[derive(Debug, Clone)]
pub struct AgentSecret(Sensitive);

impl AgentSecret {
    /// Generates a new secret with 256 bits of randomness.
    pub fn generate() -> Self {
        let random: [u8; 32] = random_bytes();
        let body = base62(&random, BODY_LEN);
        let checksum = checksum(&body);
        Self(Sensitive::new(format!("{PREFIX}{body}{checksum}")))
    }

    /// Checks the format and checksum; `MalformedSecret` otherwise.
    pub fn parse(text: &str) -> Result<Self, ClientAuthError> {
        let well_formed = text.len() == SECRET_LEN
            && text.starts_with(PREFIX)
            && is_base62(&text[PREFIX.len()..])
            && {
                let (body, sum) = text[PREFIX.len()..].split_at(BODY_LEN);
                constant_time_eq(checksum(body).as_bytes(), sum.as_bytes())
            };
        if well_formed {
            Ok(Self(Sensitive::new(text)))
        } else {
            Err(ClientAuthError::MalformedSecret)
        }
    }

    /// The secret itself, to show once to the operator or send to the server.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

fn checksum(body: &str) -> String {
    base62(&crc32(body.as_bytes()).to_be_bytes(), CHECKSUM_LEN)
}

/// A secret as stored: its keyed hash and lifecycle timestamps, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub hash: [u8; 32],
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    /// When a newer secret replaced this one; a replaced secret no longer authenticates but
    /// its use is recognised as stale.
    pub replaced_at: Option<UnixTime>,
}

impl StoredSecret {
    pub fn new(master_key: &MasterKey, secret: &AgentSecret, now: UnixTime) -> Self {
        Self {
            hash: master_key.secret_hash(secret.expose().as_bytes()),
            created_at: now,
            expires_at: None,
            replaced_at: None,
        }
    }

    /// With an expiry `max_age` seconds after `now` (the credential age policy), if set.
    pub fn with_max_age(mut self, max_age: Option<u64>, now: UnixTime) -> Self {
        self.expires_at = max_age.map(|age| now + age as i64);
        self
    }
}

/// Whether `secret` is the agent's current secret (not a predecessor in its grace period).
pub fn is_current(secret: &AgentSecret, stored: &[StoredSecret], master_key: &MasterKey) -> bool {
    let hash = master_key.secret_hash(secret.expose().as_bytes());
    stored
        .iter()
        .any(|s| s.replaced_at.is_none() && constant_time_eq(&s.hash, &hash))
}

/// Checks `secret` against the agent's stored secrets in constant time per comparison.
pub fn verify(
    secret: &AgentSecret,
    stored: &[StoredSecret],
    master_key: &MasterKey,
    now: UnixTime,
) -> Result<(), ClientAuthError> {
    let hash = master_key.secret_hash(secret.expose().as_bytes());
    let matched = stored.iter().find(|s| constant_time_eq(&s.hash, &hash));
    match matched {
        None => Err(ClientAuthError::WrongSecret),
        Some(s) if s.replaced_at.is_some_and(|t| t <= now) => Err(ClientAuthError::StaleSecret),
        Some(s) if s.expires_at.is_some_and(|t| t <= now) => Err(ClientAuthError::ExpiredSecret),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = AgentSecret::generate();
        let b = AgentSecret::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), SECRET_LEN);
        assert!(AgentSecret::parse(a.expose()).is_ok());
        assert_eq!(format!("{a:?}"), "AgentSecret([redacted])");
    }

    #[test]
    fn malformed_secrets_are_refused() {
        let good = AgentSecret::generate().expose().to_string();
        let mut flipped = good.clone().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        let cases = [
            String::new(),
            "signet_".into(),
            good[..good.len() - 1].to_string(),
            format!("{good}x"),
            good.replacen("signet_", "signex_", 1),
            String::from_utf8(flipped).expect("ascii"),
            good.replacen(&good[20..21], "-", 1),
        ];
        for case in cases {
            assert_eq!(
                AgentSecret::parse(&case).err(),
                Some(ClientAuthError::MalformedSecret),
                "{case}"
            );
        }
    }

    #[test]
    fn verify_distinguishes_wrong_stale_and_expired() {
        let (key, _) = MasterKey::generate();
        let old = AgentSecret::generate();
        let current = AgentSecret::generate();
        let mut old_stored = StoredSecret::new(&key, &old, 0);
        old_stored.replaced_at = Some(5);
        let mut current_stored = StoredSecret::new(&key, &current, 5);
        let stored = vec![old_stored.clone(), current_stored.clone()];
        assert_eq!(verify(&current, &stored, &key, 10), Ok(()));
        assert_eq!(
            verify(&old, &stored, &key, 10),
            Err(ClientAuthError::StaleSecret)
        );
        assert_eq!(
            verify(&AgentSecret::generate(), &stored, &key, 10),
            Err(ClientAuthError::WrongSecret)
        );
        current_stored.expires_at = Some(8);
        assert_eq!(
            verify(&current, &[old_stored, current_stored], &key, 10),
            Err(ClientAuthError::ExpiredSecret)
        );
    }
}
