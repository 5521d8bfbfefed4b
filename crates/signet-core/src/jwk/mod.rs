//! Agents' public keys for Private Key JWT: registration from a JWK, a JWK Set, a PEM public key
//! (SPKI) or a PEM certificate, each pinned to one algorithm and given a `kid`; and the parsed
//! verification key the token endpoint uses (parsed once, when the agent is cached).
//!
//! Refused with a reason an operator can act on: private keys submitted by mistake, symmetric
//! keys, RSA under 2048 bits, curves other than P-256, P-384 and Ed25519, `none` and HMAC.

use aws_lc_rs::signature::ParsedPublicKey;
use serde_json::{Map, Value, json};

use crate::UnixTime;
use crate::encoding::{b64url, b64url_decode};
use crate::token::SigningAlgorithm;
use crate::token::signer::thumbprint;

mod pem;

use pem::{PublicComponents, from_pem};
pub use pem::{pem_block, pem_decode};

/// Most keys one registration may carry.
pub const MAX_KEYS_PER_AGENT: usize = 20;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// Why a key could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this is a private key: register only the public key (the private key must never leave the agent)"
    )]
    PrivateKey,
    #[error(
        "symmetric (`oct`) keys cannot be used: private_key_jwt needs an RSA, EC or Ed25519 public key"
    )]
    SymmetricKey,
    #[error("RSA keys must have at least 2048 bits; this one has {0}")]
    RsaTooSmall(usize),
    #[error("RSA keys over 8192 bits are not supported")]
    RsaTooLarge,
    #[error("unsupported curve `{0}`: use P-256, P-384 or Ed25519")]
    UnsupportedCurve(String),
    #[error("unsupported key type `{0}`: use RSA, EC (P-256, P-384) or OKP (Ed25519)")]
    UnsupportedKeyType(String),
    #[error(
        "algorithm `{0}` is not allowed for private_key_jwt: use RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA"
    )]
    AlgorithmNotAllowed(String),
    #[error("algorithm {alg} does not fit a {key} key")]
    AlgorithmMismatch { alg: String, key: String },
    #[error("the key is not for signatures (`use` or `key_ops` says otherwise)")]
    NotForSignatures,
    #[error("malformed key: {0}")]
    Malformed(String),
    #[error("the key set has no keys")]
    Empty,
    #[error("at most {MAX_KEYS_PER_AGENT} keys per agent")]
    TooMany,
    #[error("key id `{0}` is used twice")]
    DuplicateKid(String),
    #[error("key id must be 1 to 128 printable characters")]
    BadKid,
}

fn malformed(what: impl Into<String>) -> KeyError {
    KeyError::Malformed(what.into())
}

/// A registered public key: the stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    /// The public JWK with only the public members, plus `kid`, `alg` and `use`.
    pub jwk: Value,
    /// RFC 7638 thumbprint of the key.
    pub thumbprint: String,
    pub created_at: UnixTime,
    /// From a certificate's notAfter, or given at registration.
    pub expires_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
}

/// What an operator or agent submitted.
#[derive(Debug, Clone, Copy)]
pub enum KeyInput<'a> {
    Jwk(&'a Value),
    Jwks(&'a Value),
    Pem(&'a str),
}

/// Parses submitted keys. `kid` and `alg` apply to a single key (JWK or PEM); for a JWK Set each
/// key's own members decide.
pub fn parse_keys(
    input: KeyInput<'_>,
    kid: Option<&str>,
    alg: Option<&str>,
    now: UnixTime,
) -> Result<Vec<AgentKey>, KeyError> {
    let keys = match input {
        KeyInput::Jwk(jwk) => vec![from_jwk(jwk, kid, alg, now)?],
        KeyInput::Jwks(set) => {
            let keys = set
                .get("keys")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("a JWK Set is {\"keys\": [...]}"))?;
            if keys.is_empty() {
                return Err(KeyError::Empty);
            }
            if keys.len() > MAX_KEYS_PER_AGENT {
                return Err(KeyError::TooMany);
            }
            keys.iter()
                .map(|k| from_jwk(k, None, None, now))
                .collect::<Result<Vec<_>, _>>()?
        }
        KeyInput::Pem(text) => vec![from_pem(text, kid, alg, now)?],
    };
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].iter().any(|k| k.kid == key.kid) {
            return Err(KeyError::DuplicateKid(key.kid.clone()));
        }
    }
    Ok(keys)
}

/// The algorithms allowed for client assertions; `none` and HMAC never are.
pub fn allowed_algorithm(name: &str) -> Result<SigningAlgorithm, KeyError> {
    name.parse()
        .map_err(|_| KeyError::AlgorithmNotAllowed(name.to_string()))
}

fn from_jwk(
    jwk: &Value,
    kid: Option<&str>,
    alg: Option<&str>,
    now: UnixTime,
) -> Result<AgentKey, KeyError> {
    let object = jwk
        .as_object()
        .ok_or_else(|| malformed("a JWK is a JSON object"))?;
    let member = |name: &str| object.get(name).and_then(Value::as_str);
    let kty = member("kty").ok_or_else(|| malformed("the JWK has no `kty`"))?;
    if kty == "oct" {
        return Err(KeyError::SymmetricKey);
    }
    const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];
    if PRIVATE_MEMBERS.iter().any(|m| object.contains_key(*m)) {
        return Err(KeyError::PrivateKey);
    }
    if member("use").is_some_and(|u| u != "sig") {
        return Err(KeyError::NotForSignatures);
    }
    if let Some(ops) = object.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|o| o == "verify")
    {
        return Err(KeyError::NotForSignatures);
    }
    let field = |name: &str| -> Result<Vec<u8>, KeyError> {
        member(name)
            .and_then(b64url_decode)
            .ok_or_else(|| malformed(format!("`{name}` is missing or not base64url")))
    };
    let public = match kty {
        "RSA" => PublicComponents::Rsa {
            n: field("n")?,
            e: field("e")?,
        },
        "EC" => {
            let crv = member("crv").ok_or_else(|| malformed("the EC JWK has no `crv`"))?;
            PublicComponents::Ec {
                crv: crv.to_string(),
                x: field("x")?,
                y: field("y")?,
            }
        }
        "OKP" => {
            let crv = member("crv").ok_or_else(|| malformed("the OKP JWK has no `crv`"))?;
            PublicComponents::Okp {
                crv: crv.to_string(),
                x: field("x")?,
            }
        }
        other => return Err(KeyError::UnsupportedKeyType(other.to_string())),
    };
    let alg = alg.or(member("alg"));
    let kid = kid.or(member("kid"));
    build(public, kid, alg, None, now)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Validates the components, pins the algorithm, and builds the stored key.
fn build(
    public: PublicComponents,
    kid: Option<&str>,
    alg: Option<&str>,
    expires_at: Option<UnixTime>,
    now: UnixTime,
) -> Result<AgentKey, KeyError> {
    let alg = alg.map(allowed_algorithm).transpose()?;
    let (jwk, alg) = match public {
        PublicComponents::Rsa { n, e } => {
            let n = strip_zeros(&n);
            let e = strip_zeros(&e);
            // An empty modulus (`"n": ""`, or only zero bytes) has no bits, not a negative count.
            let bits =
                (n.len() * 8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
            if bits < MIN_RSA_BITS {
                return Err(KeyError::RsaTooSmall(bits));
            }
            if bits > MAX_RSA_BITS {
                return Err(KeyError::RsaTooLarge);
            }
            if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
                return Err(malformed("unusual RSA public exponent"));
            }
            let alg = alg.unwrap_or(SigningAlgorithm::Rs256);
            if !alg.is_rsa() {
                return Err(KeyError::AlgorithmMismatch {
                    alg: alg.as_str().into(),
                    key: "RSA".into(),
                });
            }
            (json!({ "kty": "RSA", "n": b64url(n), "e": b64url(e) }), alg)
        }
        PublicComponents::Ec { crv, x, y } => {
            let (expected, len) = match crv.as_str() {
                "P-256" => (SigningAlgorithm::Es256, 32),
                "P-384" => (SigningAlgorithm::Es384, 48),
                other => return Err(KeyError::UnsupportedCurve(other.to_string())),
            };
            if x.len() != len || y.len() != len {
                return Err(malformed(format!("{crv} coordinates must be {len} bytes")));
            }
            let alg = alg.unwrap_or(expected);
            if alg != expected {
                return Err(KeyError::AlgorithmMismatch {
                    alg: alg.as_str().into(),
                    key: crv,
                });
            }
            (
                json!({ "kty": "EC", "crv": crv, "x": b64url(&x), "y": b64url(&y) }),
                alg,
            )
        }
        PublicComponents::Okp { crv, x } => {
            if crv != "Ed25519" {
                return Err(KeyError::UnsupportedCurve(crv));
            }
            if x.len() != 32 {
                return Err(malformed("Ed25519 public keys are 32 bytes"));
            }
            let alg = alg.unwrap_or(SigningAlgorithm::EdDsa);
            if alg != SigningAlgorithm::EdDsa {
                return Err(KeyError::AlgorithmMismatch {
                    alg: alg.as_str().into(),
                    key: crv,
                });
            }
            (
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&x) }),
                alg,
            )
        }
    };
    let thumbprint = thumbprint(&jwk);
    let kid = match kid {
        Some(k) if k.is_empty() || k.len() > 128 || k.chars().any(char::is_control) => {
            return Err(KeyError::BadKid);
        }
        Some(k) => k.to_string(),
        None => thumbprint.clone(),
    };
    let mut members: Map<String, Value> = jwk.as_object().cloned().unwrap_or_default();
    members.insert("kid".into(), json!(kid));
    members.insert("alg".into(), json!(alg.as_str()));
    members.insert("use".into(), json!("sig"));
    let key = AgentKey {
        kid,
        alg,
        jwk: Value::Object(members),
        thumbprint,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    // Prove now that the key parses for verification, so a bad point or modulus is a 4xx today
    // rather than a failure at the token endpoint later.
    VerifyingKey::new(&key)?;
    Ok(key)
}

/// A registered key parsed for signature verification, kept in the agent cache.
#[derive(Debug)]
pub struct VerifyingKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub thumbprint: String,
    pub expires_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    key: ParsedPublicKey,
}

impl VerifyingKey {
    pub fn new(key: &AgentKey) -> Result<Self, KeyError> {
        let member = |name: &str| {
            key.jwk
                .get(name)
                .and_then(Value::as_str)
                .and_then(b64url_decode)
                .unwrap_or_default()
        };
        let bytes = match key.jwk.get("kty").and_then(Value::as_str) {
            Some("RSA") => rsa_public_key_der(&member("n"), &member("e")),
            Some("EC") => [&[4u8][..], &member("x"), &member("y")].concat(),
            _ => member("x"),
        };
        let parsed = ParsedPublicKey::new(key.alg.verification(), &bytes)
            .map_err(|_| malformed("the public key is not valid"))?;
        Ok(Self {
            kid: key.kid.clone(),
            alg: key.alg,
            thumbprint: key.thumbprint.clone(),
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            key: parsed,
        })
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// DER of PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let bytes = strip_zeros(bytes);
        let mut content = Vec::with_capacity(bytes.len() + 1);
        if bytes.first().is_none_or(|b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(bytes);
        tlv(0x02, &content)
    }
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let len_bytes: Vec<u8> = len
                .to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | len_bytes.len() as u8);
            out.extend_from_slice(&len_bytes);
        }
        out.extend_from_slice(content);
        out
    }
    tlv(0x30, &[integer(n), integer(e)].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SigningKey;

    fn jwk_of(alg: SigningAlgorithm) -> Value {
        SigningKey::generate(alg)
            .expect("key")
            .0
            .public_jwk()
            .clone()
    }

    fn check(input: KeyInput<'_>, alg: Option<&str>, expected: Result<SigningAlgorithm, KeyError>) {
        let result = parse_keys(input, None, alg, 0).map(|keys| keys[0].alg);
        assert_eq!(result, expected);
    }

    #[test]
    fn public_jwks_are_accepted_with_pinned_algorithms() {
        check(
            KeyInput::Jwk(&jwk_of(SigningAlgorithm::Es256)),
            None,
            Ok(SigningAlgorithm::Es256),
        );
        check(
            KeyInput::Jwk(&jwk_of(SigningAlgorithm::Es384)),
            None,
            Ok(SigningAlgorithm::Es384),
        );
        check(
            KeyInput::Jwk(&jwk_of(SigningAlgorithm::EdDsa)),
            None,
            Ok(SigningAlgorithm::EdDsa),
        );
        let mut rsa = jwk_of(SigningAlgorithm::Rs256);
        rsa.as_object_mut().expect("object").remove("alg");
        check(KeyInput::Jwk(&rsa), None, Ok(SigningAlgorithm::Rs256));
        check(
            KeyInput::Jwk(&rsa),
            Some("PS512"),
            Ok(SigningAlgorithm::Ps512),
        );
        check(
            KeyInput::Jwk(&rsa),
            Some("ES256"),
            Err(KeyError::AlgorithmMismatch {
                alg: "ES256".into(),
                key: "RSA".into(),
            }),
        );
    }

    #[test]
    fn the_kid_defaults_to_the_thumbprint() {
        let (key, _) = SigningKey::generate(SigningAlgorithm::Es256).expect("key");
        let mut jwk = key.public_jwk().clone();
        jwk.as_object_mut().expect("object").remove("kid");
        let parsed = parse_keys(KeyInput::Jwk(&jwk), None, None, 0).expect("valid");
        assert_eq!(parsed[0].kid, key.kid());
        let named = parse_keys(KeyInput::Jwk(&jwk), Some("2026-12"), None, 0).expect("valid");
        assert_eq!(named[0].kid, "2026-12");
        assert_eq!(named[0].thumbprint, key.kid());
    }

    #[test]
    fn unusable_keys_are_refused_with_a_reason() {
        let mut private = jwk_of(SigningAlgorithm::Es256);
        private["d"] = json!("AAAA");
        check(KeyInput::Jwk(&private), None, Err(KeyError::PrivateKey));
        check(
            KeyInput::Jwk(&json!({"kty": "oct", "k": "c2VjcmV0"})),
            None,
            Err(KeyError::SymmetricKey),
        );
        let small = json!({"kty": "RSA", "n": b64url([0xC5u8; 128]), "e": "AQAB"});
        check(
            KeyInput::Jwk(&small),
            None,
            Err(KeyError::RsaTooSmall(1024)),
        );
        for empty in ["", "AA", "AAAA"] {
            check(
                KeyInput::Jwk(&json!({"kty": "RSA", "n": empty, "e": "AQAB"})),
                None,
                Err(KeyError::RsaTooSmall(0)),
            );
        }
        let p521 =
            json!({"kty": "EC", "crv": "P-521", "x": b64url([1u8; 66]), "y": b64url([1u8; 66])});
        check(
            KeyInput::Jwk(&p521),
            None,
            Err(KeyError::UnsupportedCurve("P-521".into())),
        );
        let k1 = json!({"kty": "EC", "crv": "secp256k1", "x": b64url([1u8; 32]), "y": b64url([1u8; 32])});
        check(
            KeyInput::Jwk(&k1),
            None,
            Err(KeyError::UnsupportedCurve("secp256k1".into())),
        );
        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": b64url([1u8; 32])});
        check(
            KeyInput::Jwk(&x25519),
            None,
            Err(KeyError::UnsupportedCurve("X25519".into())),
        );
        check(
            KeyInput::Jwk(&jwk_of(SigningAlgorithm::Es256)),
            Some("none"),
            Err(KeyError::AlgorithmNotAllowed("none".into())),
        );
        check(
            KeyInput::Jwk(&jwk_of(SigningAlgorithm::Es256)),
            Some("HS256"),
            Err(KeyError::AlgorithmNotAllowed("HS256".into())),
        );
        let mut encryption = jwk_of(SigningAlgorithm::Es256);
        encryption["use"] = json!("enc");
        check(
            KeyInput::Jwk(&encryption),
            None,
            Err(KeyError::NotForSignatures),
        );
        // A point that is not on the curve.
        let off_curve =
            json!({"kty": "EC", "crv": "P-256", "x": b64url([1u8; 32]), "y": b64url([2u8; 32])});
        assert!(matches!(
            parse_keys(KeyInput::Jwk(&off_curve), None, None, 0),
            Err(KeyError::Malformed(_))
        ));
        check(
            KeyInput::Jwks(&json!({"keys": []})),
            None,
            Err(KeyError::Empty),
        );
        assert!(matches!(
            parse_keys(KeyInput::Jwk(&json!("text")), None, None, 0),
            Err(KeyError::Malformed(_))
        ));
        let pem =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        check(KeyInput::Pem(pem), None, Err(KeyError::PrivateKey));
        assert!(matches!(
            parse_keys(KeyInput::Pem("not pem"), None, None, 0),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn a_jwk_set_with_duplicate_kids_is_refused() {
        let jwk = jwk_of(SigningAlgorithm::EdDsa);
        let set = json!({"keys": [jwk.clone(), jwk]});
        assert!(matches!(
            parse_keys(KeyInput::Jwks(&set), None, None, 0),
            Err(KeyError::DuplicateKid(_))
        ));
    }

    #[test]
    fn rsa_public_key_der_encodes_integers() {
        // n = 0x80 (needs a leading zero), e = 3.
        assert_eq!(
            rsa_public_key_der(&[0x80], &[3]),
            vec![0x30, 7, 2, 2, 0, 0x80, 2, 1, 3]
        );
    }
}
