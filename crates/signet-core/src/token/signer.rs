//! Token signing keys: generation, loading from PKCS#8 (once, at start), JWS signing with the
//! parsed key, and the public JWK published at the JWKS endpoint. Nothing here re-parses key
//! material per token: a [`SigningKey`] holds the parsed key pair and a precomputed JWS header.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
};
use serde_json::{Value, json};

use crate::crypto::sha256;
use crate::encoding::b64url;

/// The asymmetric JWS algorithms Signet signs and verifies with (RFC 7518 §3, RFC 8037).
/// `none` and HMAC are deliberately absent: they cannot be named, so they cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 9] = [
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512
        )
    }

    pub(crate) fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Self::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            Self::EdDsa => &signature::ED25519,
            Self::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
        }
    }

    fn rsa_padding(self) -> &'static dyn signature::RsaEncoding {
        match self {
            Self::Rs384 => &signature::RSA_PKCS1_SHA384,
            Self::Rs512 => &signature::RSA_PKCS1_SHA512,
            Self::Ps256 => &signature::RSA_PSS_SHA256,
            Self::Ps384 => &signature::RSA_PSS_SHA384,
            Self::Ps512 => &signature::RSA_PSS_SHA512,
            _ => &signature::RSA_PKCS1_SHA256,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not one of ES256, ES384, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512"))
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why key material was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("the stored private key is not a valid {0} key")]
    Parse(SigningAlgorithm),
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A parsed signing key: signs tokens and knows its public JWK and key ID.
pub struct SigningKey {
    kid: String,
    alg: SigningAlgorithm,
    pair: Pair,
    /// base64url of `{"alg":…,"typ":"at+jwt","kid":…}`, computed once.
    header: String,
    public_jwk: Value,
    verifier: ParsedPublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 private key for encrypted storage.
    pub fn generate(alg: SigningAlgorithm) -> Result<(Self, Vec<u8>), KeyError> {
        Self::generate_sized(alg, KeySize::Rsa2048)
    }

    /// A new key like this one: the same algorithm and, for RSA, the same modulus size (up to
    /// 8192 bits), so a rotation never weakens the key.
    pub fn generate_like(&self) -> Result<(Self, Vec<u8>), KeyError> {
        let modulus_bits = self
            .public_jwk
            .get("n")
            .and_then(Value::as_str)
            .map_or(0, |n| n.len() * 3 / 4 * 8);
        let size = match modulus_bits {
            0..=2048 => KeySize::Rsa2048,
            2049..=3072 => KeySize::Rsa3072,
            3073..=4096 => KeySize::Rsa4096,
            _ => KeySize::Rsa8192,
        };
        Self::generate_sized(self.alg, size)
    }

    fn generate_sized(alg: SigningAlgorithm, rsa: KeySize) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            SigningAlgorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::Es384 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
            _ => RsaKeyPair::generate(rsa)
                .and_then(|k| k.as_der())
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
        };
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Parses a PKCS#8 private key. Called once per key when keys are loaded.
    pub fn from_pkcs8(alg: SigningAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = |_| KeyError::Parse(alg);
        let (pair, public_jwk, public_bytes) = match alg {
            SigningAlgorithm::Es256 | SigningAlgorithm::Es384 => {
                let (signing, crv, coord_len) = if alg == SigningAlgorithm::Es256 {
                    (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                // PKCS#8, or the SEC1 `EC PRIVATE KEY` form that `openssl ecparam -genkey` writes.
                let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8)
                    .or_else(|_| EcdsaKeyPair::from_private_key_der(signing, pkcs8))
                    .map_err(bad)?;
                // Uncompressed point: 0x04 ‖ X ‖ Y.
                let point = pair.public_key().as_ref().to_vec();
                if point.len() != 1 + 2 * coord_len {
                    return Err(KeyError::Parse(alg));
                }
                let jwk = json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64url(&point[1..1 + coord_len]),
                    "y": b64url(&point[1 + coord_len..]),
                });
                (Pair::Ecdsa(pair), jwk, point)
            }
            SigningAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                let public = pair.public_key().as_ref().to_vec();
                let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&public) });
                (Pair::Ed25519(pair), jwk, public)
            }
            _ => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8)
                    .or_else(|_| RsaKeyPair::from_der(pkcs8))
                    .map_err(bad)?;
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero()),
                });
                let der = public.as_ref().to_vec();
                (Pair::Rsa(pair), jwk, der)
            }
        };
        let kid = thumbprint(&public_jwk);
        let mut public_jwk = public_jwk;
        if let Value::Object(map) = &mut public_jwk {
            map.insert("kid".into(), Value::String(kid.clone()));
            map.insert("alg".into(), Value::String(alg.as_str().into()));
            map.insert("use".into(), Value::String("sig".into()));
        }
        let verifier = ParsedPublicKey::new(alg.verification(), &public_bytes)
            .map_err(|_| KeyError::Parse(alg))?;
        let header =
            b64url(json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": kid }).to_string());
        Ok(Self {
            kid,
            alg,
            pair,
            header,
            public_jwk,
            verifier,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use`, for the JWKS.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Signs `claims` (serialised JSON) into a compact JWS.
    pub fn sign_jws(&self, claims: &[u8]) -> String {
        let mut jws = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 400);
        jws.push_str(&self.header);
        jws.push('.');
        jws.push_str(&b64url(claims));
        let signature = self.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&b64url(signature));
        jws
    }

    /// Signs `claims` as a client assertion (RFC 7523): header `alg` from this key, `typ: JWT`,
    /// and `kid` (the key's thumbprint unless the agent registered it under another ID).
    pub fn sign_assertion(&self, kid: Option<&str>, claims: &[u8]) -> String {
        let kid = kid.unwrap_or(&self.kid);
        let header =
            b64url(json!({ "alg": self.alg.as_str(), "typ": "JWT", "kid": kid }).to_string());
        let mut jws = format!("{header}.{}", b64url(claims));
        let signature = self.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&b64url(signature));
        jws
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        // Signing with a key that parsed and checked at load fails only on allocation failure.
        match &self.pair {
            Pair::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .expect("ECDSA signing with a loaded key")
                .as_ref()
                .to_vec(),
            Pair::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Pair::Rsa(pair) => {
                let padding = self.alg.rsa_padding();
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut out)
                    .expect("RSA signing with a loaded key");
                out
            }
        }
    }

    /// Verifies a signature made by this key (used by introspection).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify_sig(message, signature).is_ok()
    }
}

/// The JWK thumbprint (RFC 7638): SHA-256 over the required members in lexicographic order.
pub fn thumbprint(jwk: &Value) -> String {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // serde_json writes object keys in sorted order (no `preserve_order`), as RFC 7638 needs.
    let canonical = match member("kty").as_str() {
        "EC" => json!({ "crv": member("crv"), "kty": "EC", "x": member("x"), "y": member("y") }),
        "OKP" => json!({ "crv": member("crv"), "kty": "OKP", "x": member("x") }),
        _ => json!({ "e": member("e"), "kty": "RSA", "n": member("n") }),
    };
    b64url(sha256(canonical.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_after_reload() {
        for alg in SigningAlgorithm::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).expect("generate");
            let reloaded = SigningKey::from_pkcs8(alg, &pkcs8).expect("reload");
            assert_eq!(key.kid(), reloaded.kid(), "{alg}");
            let jws = reloaded.sign_jws(br#"{"sub":"x"}"#);
            let (input, sig) = jws.rsplit_once('.').expect("three parts");
            let sig = crate::encoding::b64url_decode(sig).expect("b64");
            assert!(key.verify(input.as_bytes(), &sig), "{alg}");
            assert!(!key.verify(b"other", &sig), "{alg}");
        }
    }

    #[test]
    fn rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_key_like_another_keeps_its_algorithm_and_rsa_size() {
        let bits = |key: &SigningKey| {
            let n = key.public_jwk()["n"].as_str().expect("n");
            crate::encoding::b64url_decode(n).expect("b64").len() * 8
        };
        let (es, _) = SigningKey::generate(SigningAlgorithm::Es384).expect("generate");
        assert_eq!(
            es.generate_like().expect("like").0.alg(),
            SigningAlgorithm::Es384
        );
        let (rsa, _) = SigningKey::generate(SigningAlgorithm::Ps256).expect("generate");
        let (like, _) = rsa.generate_like().expect("like");
        assert_eq!((like.alg(), bits(&like)), (SigningAlgorithm::Ps256, 2048));
        let pkcs8 = RsaKeyPair::generate(KeySize::Rsa3072)
            .and_then(|k| k.as_der())
            .expect("3072-bit key");
        let big = SigningKey::from_pkcs8(SigningAlgorithm::Rs256, pkcs8.as_ref()).expect("load");
        assert_eq!(bits(&big), 3072);
        let (like, _) = big.generate_like().expect("like");
        assert_eq!((like.alg(), bits(&like)), (SigningAlgorithm::Rs256, 3072));
    }

    #[test]
    fn a_key_of_one_algorithm_does_not_load_as_another() {
        let (_, pkcs8) = SigningKey::generate(SigningAlgorithm::Es256).expect("generate");
        assert!(SigningKey::from_pkcs8(SigningAlgorithm::Es384, &pkcs8).is_err());
        assert!(SigningKey::from_pkcs8(SigningAlgorithm::EdDsa, &pkcs8).is_err());
        assert!(SigningKey::from_pkcs8(SigningAlgorithm::Rs256, b"junk").is_err());
    }
}
