//! Private Key JWT helpers: agent key pairs (rcgen), assertions signed with jsonwebtoken (a
//! library independent of the server), and agents registered with them.

use super::TestApp;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
    RsaKeySize,
};
use serde_json::{Value, json};

pub const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// An agent's key pair, as the agent holds it.
pub struct AgentKey {
    pub pair: KeyPair,
    pub alg: Algorithm,
}

impl AgentKey {
    pub fn new(alg: Algorithm) -> Self {
        let pair = match alg {
            Algorithm::ES256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
            Algorithm::ES384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
            Algorithm::EdDSA => KeyPair::generate_for(&PKCS_ED25519),
            _ => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        }
        .expect("key generation");
        Self { pair, alg }
    }

    pub fn encoding_key(&self) -> EncodingKey {
        let pem = self.pair.serialize_pem();
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("encoding key")
    }

    pub fn alg_name(&self) -> String {
        serde_json::to_value(self.alg)
            .expect("alg")
            .as_str()
            .expect("name")
            .to_string()
    }
}

pub struct Fixture {
    pub app: TestApp,
    pub agent_id: String,
    pub key: AgentKey,
    pub kid: String,
}

impl Fixture {
    pub async fn new(alg: Algorithm) -> Self {
        // A fixed issuer, so that assertions stay valid across a restart on another port.
        let app = TestApp::spawn_with(&[("SIGNET_ISSUER", "http://signet.test")]).await;
        let (agent_id, key, kid) = jwt_agent(&app, alg).await;
        Self {
            app,
            agent_id,
            key,
            kid,
        }
    }

    pub fn claims(&self) -> Value {
        claims_for(&self.app, &self.agent_id)
    }

    /// Claims for the agent's own key management (`aud` = that endpoint).
    pub fn key_claims(&self) -> Value {
        key_claims_for(&self.app, &self.agent_id)
    }

    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.key, &self.kid, claims)
    }

    pub async fn token(&self, assertion: &str) -> reqwest::Response {
        token_request(&self.app, Some(&self.agent_id), assertion).await
    }

    pub async fn refused_with(&self, assertion: &str, reason: &str) {
        let response = self.token(assertion).await;
        assert_eq!(response.status(), 401, "{reason}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client", "{reason}");
        assert_eq!(
            body["error_description"], "client authentication failed",
            "{reason}: the wire error stays vague"
        );
        assert_eq!(
            self.app.last_token_reason(&self.agent_id).await.as_deref(),
            Some(reason)
        );
    }
}

/// Registers a private_key_jwt agent with a new key (as PEM) and returns its ID, key and kid.
pub async fn jwt_agent(app: &TestApp, alg: Algorithm) -> (String, AgentKey, String) {
    let key = AgentKey::new(alg);
    let agent = app
        .create_agent(json!({ "name": "jwt-agent", "token_endpoint_auth_method": "private_key_jwt", "scopes": ["read"] }))
        .await;
    let agent_id = agent["agent_id"].as_str().expect("id").to_string();
    let kid = add_key(app, &agent_id, &key).await;
    (agent_id, key, kid)
}

pub async fn add_key(app: &TestApp, agent_id: &str, key: &AgentKey) -> String {
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{agent_id}/keys"),
        )
        .json(&json!({ "pem": key.pair.public_key_pem(), "alg": key.alg_name() }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let keys: Value = response.json().await.expect("json");
    keys[0]["kid"].as_str().expect("kid").to_string()
}

pub fn claims_for(app: &TestApp, agent_id: &str) -> Value {
    let now = signet_core::now();
    let jti: [u8; 12] = signet_core::crypto::random_bytes();
    json!({
        "iss": agent_id,
        "sub": agent_id,
        "aud": format!("{}/oauth2/token", app.issuer),
        "iat": now,
        "exp": now + 60,
        "jti": signet_core::encoding::b64url(jti),
    })
}

/// As [`claims_for`], for `/api/v1/self/keys`.
pub fn key_claims_for(app: &TestApp, agent_id: &str) -> Value {
    let mut claims = claims_for(app, agent_id);
    claims["aud"] = json!(format!("{}/api/v1/self/keys", app.issuer));
    claims
}

pub fn sign(key: &AgentKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(kid.to_string());
    encode(&header, claims, &key.encoding_key()).expect("sign")
}

pub async fn token_request(
    app: &TestApp,
    client_id: Option<&str>,
    assertion: &str,
) -> reqwest::Response {
    let mut form = format!(
        "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
    );
    if let Some(id) = client_id {
        form.push_str(&format!("&client_id={id}"));
    }
    app.post_form("/oauth2/token", None, &form).await
}

pub fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().expect("object").remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    signet_core::encoding::b64url(bytes)
}

/// Signs a hand-made signing input (ES256 keys only): jsonwebtoken always writes its own header.
pub fn encode_raw(key: &AgentKey, signing_input: &str) -> String {
    let der = key.pair.serialize_der();
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    )
    .expect("pkcs8");
    let signature = pair
        .sign(
            &aws_lc_rs::rand::SystemRandom::new(),
            signing_input.as_bytes(),
        )
        .expect("sign");
    b64(signature.as_ref())
}
