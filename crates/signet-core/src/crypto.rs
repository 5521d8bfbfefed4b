//! The master key and the primitives built on it: authenticated encryption of private key
//! material at rest (AES-256-GCM), the pepper for keyed secret hashes (HMAC-SHA-256), the key of
//! the audit chain (HMAC-SHA-256), secure random bytes and SHA-256.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Fills a fresh array with cryptographically secure random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG only fails when the OS cannot provide entropy, where nothing is safe to do.
    rand::fill(&mut bytes).expect("the system random number generator failed");
    bytes
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// HMAC-SHA-256 of `message` under `key` (webhook signatures).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(&key, message).as_ref());
    out
}

/// Constant-time equality of two byte strings of the same length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // `black_box` keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// Why a master key or a sealed value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error(
        "the master key must be 32 bytes encoded in base64 (generate one with `openssl rand -base64 32`)"
    )]
    BadMasterKey,
    #[error("sealed data could not be decrypted: wrong master key or corrupted data")]
    Unseal,
}

/// The 32-byte master key. It encrypts private key material at rest and derives the pepper of
/// the keyed secret hashes and the audit chain's key, so losing it makes every signing key and
/// agent secret unusable and the audit chain unverifiable.
pub struct MasterKey {
    aead: LessSafeKey,
    pepper: hmac::Key,
    audit: AuditKey,
}

/// The key of the audit chain: each record's hash is an HMAC under it, so someone who can write
/// to the database but does not hold the master key cannot recompute the chain after changing a
/// record. Derived from the master key; every node of a cluster has the same.
#[derive(Clone)]
pub struct AuditKey(hmac::Key);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

impl AuditKey {
    /// HMAC-SHA-256 of `message` under this key.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, message).as_ref());
        out
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Generates a new random master key and returns it with its base64 form for storage.
    pub fn generate() -> (Self, String) {
        let bytes: [u8; MASTER_KEY_LEN] = random_bytes();
        let encoded = STANDARD.encode(bytes);
        (Self::from_bytes(&bytes), encoded)
    }

    /// Parses the base64 form (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadMasterKey)?;
        if bytes.len() != MASTER_KEY_LEN {
            return Err(CryptoError::BadMasterKey);
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        // Separate keys for separate purposes, derived with HMAC as a PRF (HKDF-Expand, one block).
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let derive = |label: &[u8]| hmac::sign(&root, label);
        let aead_key = derive(b"signet/v1/aead\x01");
        let pepper_key = derive(b"signet/v1/secret-pepper\x01");
        let audit_key = derive(b"signet/v1/audit-chain\x01");
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, aead_key.as_ref()).expect("32-byte AES-256 key"),
        );
        Self {
            aead,
            pepper: hmac::Key::new(hmac::HMAC_SHA256, pepper_key.as_ref()),
            audit: AuditKey(hmac::Key::new(hmac::HMAC_SHA256, audit_key.as_ref())),
        }
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. the key id) so a sealed value cannot
    /// be moved to another record. Output: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
        let mut buffer = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut buffer,
            )
            .expect("AES-GCM sealing of a small buffer cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        out
    }

    /// Decrypts what [`MasterKey::seal`] produced with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .aead
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .map_err(|_| CryptoError::Unseal)?;
        Ok(plaintext.to_vec())
    }

    /// The key of the audit chain's hashes.
    pub fn audit_key(&self) -> AuditKey {
        self.audit.clone()
    }

    /// The keyed hash under which agent secrets are stored (HMAC-SHA-256 with the pepper).
    pub fn secret_hash(&self, secret: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.pepper, secret).as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_bind_context() {
        let (key, _) = MasterKey::generate();
        let sealed = key.seal(b"kid-1", b"private key");
        assert_eq!(
            key.open(b"kid-1", &sealed).as_deref(),
            Ok(&b"private key"[..])
        );
        assert_eq!(key.open(b"kid-2", &sealed), Err(CryptoError::Unseal));
        let (other, _) = MasterKey::generate();
        assert_eq!(other.open(b"kid-1", &sealed), Err(CryptoError::Unseal));
        assert_eq!(key.open(b"kid-1", &sealed[..5]), Err(CryptoError::Unseal));
    }

    #[test]
    fn master_key_parsing_says_what_is_wrong() {
        assert_eq!(
            MasterKey::from_base64("short").err(),
            Some(CryptoError::BadMasterKey)
        );
        let (_, text) = MasterKey::generate();
        assert!(MasterKey::from_base64(&format!("{text}\n")).is_ok());
    }

    #[test]
    fn secret_hash_is_keyed() {
        let (a, _) = MasterKey::generate();
        let (b, _) = MasterKey::generate();
        assert_eq!(a.secret_hash(b"x"), a.secret_hash(b"x"));
        assert_ne!(a.secret_hash(b"x"), b.secret_hash(b"x"));
    }

    #[test]
    fn the_audit_key_is_derived_apart_from_the_pepper() {
        let (a, text) = MasterKey::generate();
        let again = MasterKey::from_base64(&text).expect("valid");
        let (b, _) = MasterKey::generate();
        assert_eq!(a.audit_key().mac(b"x"), again.audit_key().mac(b"x"));
        assert_ne!(a.audit_key().mac(b"x"), b.audit_key().mac(b"x"));
        assert_ne!(a.audit_key().mac(b"x"), a.secret_hash(b"x"));
        assert_eq!(format!("{:?}", a.audit_key()), "AuditKey([redacted])");
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
