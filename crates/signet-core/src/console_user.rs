//! People who sign in to the web console: a username, a role (the admin API's roles: `admin`
//! for everything, `auditor` for read-only) and a password kept only as an Argon2id hash.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::UnixTime;
use crate::admin_token::Role;
use crate::crypto::random_bytes;
use crate::encoding::base62;
use crate::sensitive::Sensitive;

/// The first user, created at the first start.
pub const FIRST_ADMIN: &str = "admin";

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longest accepted password (Argon2 takes any length; this bounds the work an attacker can ask
/// for with one request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub username: String,
    pub role: Role,
    /// PHC string (`$argon2id$v=19$m=…`).
    pub password_hash: String,
    pub created_at: UnixTime,
    pub created_by: String,
}

/// A username: 1 to 64 characters `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), String> {
    if crate::admin_token::is_plain_name(name) {
        Ok(())
    } else {
        Err("a username is 1 to 64 characters: a-z, 0-9, '.', '_' and '-', starting with a letter or digit".into())
    }
}

/// A password long enough to resist guessing, and short enough to hash cheaply.
pub fn validate_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("a password has at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// The Argon2id hash of `password` with a fresh salt (OWASP's parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt: [u8; 16] = random_bytes();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Whether `password` matches `phc` (constant time in the comparison of the hashes). A damaged
/// hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A generated password for the first admin (printed once): 144 random bits, 25 base62
/// characters.
pub fn generate_password() -> Sensitive {
    let random: [u8; 18] = random_bytes();
    Sensitive::new(base62(&random, 25))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterx", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // The same password twice: two salts, two hashes.
        assert_ne!(hash, hash_password("correct horse battery").expect("hash"));
    }

    #[test]
    fn password_rules() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("twelve chars").is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(!verify_password(
            &"x".repeat(MAX_PASSWORD_BYTES + 1),
            "$argon2id$"
        ));
        assert_eq!(generate_password().expose().len(), 25);
    }
}
