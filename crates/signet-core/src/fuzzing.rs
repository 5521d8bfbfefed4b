//! Entry points for the fuzz targets in `fuzz/` and the corpus regression test: each takes
//! untrusted bytes, runs one parser and what follows it on the request path, and must not panic
//! whatever the bytes are. Results are ignored; only a panic (or a sanitizer finding) is a bug.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::agent::AgentId;
use crate::client_auth::AgentSecret;
use crate::client_auth::private_key_jwt::{Assertion, AssertionPolicy};
use crate::jwk::{KeyInput, VerifyingKey, parse_keys};
use crate::pki::agent_ca::AgentCa;
use crate::pki::certificate::{CertificateChain, pem_certificates};
use crate::pki::{
    BindingKind, Certificate, CertificateBinding, RevokedCertificates, TrustStore, dn,
};
use crate::token::signer::{SigningAlgorithm, SigningKey};
use crate::token::verify::verify_access_token;
use crate::{UnixTime, client_auth};

/// The time every target runs at: inside the fixtures' validity.
const NOW: UnixTime = 1_800_000_000;
const ISSUER: &str = "https://signet.example";
const AGENT: &str = "agt_0123456789abcdefghijkl";

/// Keys and a CA made once per process, for the targets that verify.
struct Fixture {
    agent_keys: Vec<Arc<VerifyingKey>>,
    policy: AssertionPolicy,
    signing_key: SigningKey,
    agent_ca: AgentCa,
    trust: TrustStore,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (signing_key, _) =
            SigningKey::generate(SigningAlgorithm::Es256).expect("fixture signing key");
        let jwk = signing_key.public_jwk().clone();
        let agent_keys = parse_keys(KeyInput::Jwk(&jwk), None, None, NOW)
            .expect("fixture key")
            .iter()
            .map(|k| Arc::new(VerifyingKey::new(k).expect("fixture verifying key")))
            .collect();
        let (agent_ca, _) = AgentCa::generate("Fuzzing agent CA", NOW - 60).expect("fixture CA");
        let trust = TrustStore::new(&[agent_ca.certificate().der().to_vec()], &[])
            .expect("fixture trust store");
        Fixture {
            agent_keys,
            policy: AssertionPolicy {
                audiences: vec![format!("{ISSUER}/oauth2/token"), ISSUER.into()],
                max_lifetime: 300,
                clock_skew: 30,
            },
            signing_key,
            agent_ca,
            trust,
        }
    })
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A client assertion (RFC 7523): parsed, then verified against a registered key.
pub fn client_assertion(data: &[u8]) {
    let Some(token) = text(data) else { return };
    let Ok(assertion) = Assertion::parse(token) else {
        return;
    };
    let _ = (assertion.subject(), assertion.kid());
    let fixture = fixture();
    let _ = assertion.verify(AGENT, &fixture.agent_keys, &fixture.policy, NOW);
}

/// An access token presented for introspection.
pub fn access_token(data: &[u8]) {
    let Some(token) = text(data) else { return };
    let _ = verify_access_token(token, [&fixture().signing_key], ISSUER, NOW);
}

/// A JWK or a JWK Set submitted for registration, and the verifying keys made from it.
pub fn jwk(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for input in [KeyInput::Jwk(&value), KeyInput::Jwks(&value)] {
        if let Ok(keys) = parse_keys(input, None, None, NOW) {
            for key in &keys {
                if let Ok(verifying) = VerifyingKey::new(key) {
                    let _ = verifying.verify(b"message", b"signature");
                }
            }
        }
    }
}

/// A PEM public key or certificate submitted as an agent's key.
pub fn pem_key(data: &[u8]) {
    let Some(pem) = text(data) else { return };
    if let Ok(keys) = parse_keys(KeyInput::Pem(pem), None, None, NOW) {
        for key in &keys {
            let _ = VerifyingKey::new(key);
        }
    }
}

/// A client certificate (DER) as presented over mutual TLS: parsed, checked against every kind
/// of binding, against registered certificates, and verified as a chain to the agent CA.
pub fn certificate(data: &[u8]) {
    let fixture = fixture();
    if let Ok(certificate) = Certificate::parse(data) {
        let _ = certificate.validity_at(NOW);
        for kind in BindingKind::ALL {
            if let Ok(binding) = CertificateBinding::new(kind, "agent.example") {
                let _ = binding.matches(&certificate);
            }
        }
    }
    if let Ok(chain) = CertificateChain::parse(vec![data.to_vec()]) {
        let revoked = RevokedCertificates::new([]);
        let binding = CertificateBinding::new(BindingKind::SanDns, "agent.example").ok();
        let _ = client_auth::tls_client_auth::verify(
            &chain,
            binding.as_ref(),
            &fixture.trust,
            &revoked,
            NOW,
        );
        let _ = client_auth::self_signed_tls_client_auth::verify(&chain, &[], &[], &revoked, NOW);
    }
}

/// PEM certificates submitted for registration.
pub fn certificate_pem(data: &[u8]) {
    let Some(pem) = text(data) else { return };
    if let Ok(blocks) = pem_certificates(pem) {
        for der in blocks {
            let _ = Certificate::parse(&der);
        }
    }
}

/// A certificate signing request (DER) for the agent CA to sign.
pub fn csr(data: &[u8]) {
    let agent = AgentId::from_string(AGENT.into());
    let _ = fixture().agent_ca.issue(data, &agent, None, 3600, NOW);
}

/// A distinguished name or a SAN value given as an agent's certificate binding.
pub fn binding(data: &[u8]) {
    let Some(name) = text(data) else { return };
    let _ = dn::parse(name);
    let _ = dn::canonical_from_str(name);
    for kind in BindingKind::ALL {
        let _ = CertificateBinding::new(kind, name);
    }
}

/// An agent secret as presented.
pub fn agent_secret(data: &[u8]) {
    if let Some(secret) = text(data) {
        let _ = AgentSecret::parse(secret);
    }
}
