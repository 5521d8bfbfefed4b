//! Named admin API tokens: who may manage credentials beyond the bootstrap token. Each has a
//! name (the actor in audit records), a role, an optional expiry; only its SHA-256 is stored,
//! and the token itself is shown once, when it is created.

use crate::UnixTime;
use crate::crypto::{random_bytes, sha256};
use crate::encoding::base62;

/// Prefix of a named admin token (the bootstrap token's is `signet_admin_`).
pub const PREFIX: &str = "signet_at_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything the admin API offers.
    Admin,
    /// Read-only: listings, audit, alerts, verification; no change.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }
}

/// A token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub name: String,
    pub role: Role,
    pub token_sha256: [u8; 32],
    pub created_at: UnixTime,
    pub created_by: String,
    pub expires_at: Option<UnixTime>,
    pub last_used_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
}

/// Why a stored token does not authenticate a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the admin token was revoked")]
    Revoked,
    #[error("the admin token has expired")]
    Expired,
}

impl Refusal {
    /// The audit reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Revoked => "revoked_admin_token",
            Self::Expired => "expired_admin_token",
        }
    }
}

impl AdminToken {
    /// Whether the token authenticates a request at `now`.
    pub fn check(&self, now: UnixTime) -> Result<(), Refusal> {
        if self.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        if self.expires_at.is_some_and(|e| e <= now) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

/// Actors of audit records that are not named tokens: the bootstrap token, Signet itself. A
/// token of one of these names could pass its changes off as theirs.
const RESERVED_NAMES: [&str; 3] = ["admin-token", "signet", "system"];

/// A name for a token: 1 to 64 characters from `a-z 0-9 . _ -`, starting with a letter or digit
/// (it appears in audit records and URLs as it is), and not an actor of something else: not
/// reserved, not like an agent ID (`agt_…`, the actor of an agent's own changes).
pub fn validate_name(name: &str) -> Result<(), String> {
    if RESERVED_NAMES.contains(&name) || name.starts_with(crate::agent::AgentId::PREFIX) {
        return Err(format!(
            "`{name}` names another actor in audit records (the bootstrap token, Signet itself or an agent): choose another name"
        ));
    }
    if is_plain_name(name) {
        Ok(())
    } else {
        Err("a token name is 1 to 64 characters: a-z, 0-9, '.', '_' and '-', starting with a letter or digit".into())
    }
}

/// 1 to 64 characters from `a-z 0-9 . _ -`, starting with a letter or digit: token names and
/// console usernames.
pub fn is_plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A new token (256 random bits) and the SHA-256 to store.
pub fn generate() -> (crate::sensitive::Sensitive, [u8; 32]) {
    let random: [u8; 32] = random_bytes();
    let token = format!("{PREFIX}{}", base62(&random, 43));
    let digest = sha256(token.as_bytes());
    (crate::sensitive::Sensitive::new(token), digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: Option<UnixTime>, revoked_at: Option<UnixTime>) -> AdminToken {
        AdminToken {
            name: "ci".into(),
            role: Role::Auditor,
            token_sha256: [0; 32],
            created_at: 0,
            created_by: "admin-token".into(),
            expires_at,
            last_used_at: None,
            revoked_at,
        }
    }

    #[test]
    fn expiry_and_revocation_refuse() {
        assert_eq!(token(None, None).check(100), Ok(()));
        assert_eq!(token(Some(101), None).check(100), Ok(()));
        assert_eq!(token(Some(100), None).check(100), Err(Refusal::Expired));
        assert_eq!(token(None, Some(5)).check(100), Err(Refusal::Revoked));
    }

    #[test]
    fn names_are_plain() {
        for good in ["ci", "deploy-bot", "team.audit_2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "Admin",
            "a b",
            "é",
            "x/y",
            &"a".repeat(65),
            "admin-token",
            "signet",
            "system",
            "agt_0123456789abcdefghijkl",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, hash_a) = generate();
        let (b, _) = generate();
        assert!(a.expose().starts_with(PREFIX));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(hash_a, sha256(a.expose().as_bytes()));
    }
}
