//! Agents: the identities Signet issues tokens to, their settings and the rules for valid values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnixTime;
use crate::cidr::Cidr;
use crate::crypto::random_bytes;
use crate::encoding::base62;
use crate::pki::agent_ca::agent_uri;
use crate::pki::{BindingKind, CertificateBinding};

mod fields;
use fields::{
    validate_audiences, validate_cidrs, validate_description, validate_jwks_uri, validate_name,
    validate_scopes, validate_ttl,
};

/// Shortest and longest access-token lifetime an agent may be given, in seconds.
pub const MIN_TOKEN_TTL: u64 = 30;
pub const MAX_TOKEN_TTL: u64 = 86_400;

/// An agent's unique, URL-safe identifier: `agt_` followed by 22 base62 characters (128 bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(String);

impl AgentId {
    pub const PREFIX: &'static str = "agt_";

    pub fn generate() -> Self {
        let bytes: [u8; 16] = random_bytes();
        Self(format!("{}{}", Self::PREFIX, base62(&bytes, 22)))
    }

    /// Wraps an identifier read from storage or a request without checking its shape; lookups
    /// of a malformed one simply find nothing.
    pub fn from_string(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` has the shape of a generated agent ID; anything else cannot exist, so a
    /// lookup is not needed to refuse it.
    pub fn is_well_formed(text: &str) -> bool {
        text.len() == Self::PREFIX.len() + 22
            && text.starts_with(Self::PREFIX)
            && text[Self::PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an agent may authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Disabled,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

impl FromStr for AgentStatus {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            other => Err(AgentError::Invalid(
                "status",
                format!("`{other}` is not active or disabled"),
            )),
        }
    }
}

/// How an agent proves its identity at the token endpoint, with the registered OAuth names
/// (RFC 7591 §2, RFC 8705 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    TlsClientAuth,
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the agent authenticates with a Signet-generated secret. Both secret forms are
    /// accepted for such an agent, whichever of the two it was registered with.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    /// Whether the agent authenticates with a client certificate (RFC 8705).
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

impl FromStr for AuthMethod {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            AgentError::Invalid(
                "token_endpoint_auth_method",
                format!(
                    "`{s}` is not one of client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth, self_signed_tls_client_auth"
                ),
            )
        })
    }
}

/// An agent as stored and shown to operators. Credentials live beside it, never inside it, so
/// an `Agent` can be serialised into any admin response without leaking a secret hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub agent_id: AgentId,
    pub name: String,
    pub description: String,
    pub status: AgentStatus,
    pub token_endpoint_auth_method: AuthMethod,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    /// Lifetime of this agent's access tokens; `None` uses the server default.
    pub access_token_ttl: Option<u64>,
    pub allowed_cidrs: Vec<Cidr>,
    /// Where a `private_key_jwt` agent publishes its public keys (RFC 7591 `jwks_uri`).
    pub jwks_uri: Option<String>,
    /// Every token issued at or before this time is inactive (revoke all of an agent's tokens).
    pub tokens_revoked_before: Option<UnixTime>,
    /// The certificate name a `tls_client_auth` agent is bound to (RFC 8705 §2.1.2).
    pub tls_client_auth: Option<CertificateBinding>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl Agent {
    /// Whether a request from `source` is allowed by `allowed_cidrs` (an empty list allows all).
    pub fn allows_source(&self, source: std::net::IpAddr) -> bool {
        self.allowed_cidrs.is_empty() || self.allowed_cidrs.iter().any(|c| c.contains(source))
    }
}

/// Why agent data was refused. The field name is what the operator must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
}

/// Settings an operator supplies when creating an agent (already parsed from JSON).
#[derive(Debug, Clone, Default)]
pub struct NewAgent {
    pub name: String,
    pub description: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub access_token_ttl: Option<u64>,
    pub allowed_cidrs: Option<Vec<String>>,
    pub jwks_uri: Option<String>,
    /// The one `tls_client_auth_*` field given, if any.
    pub tls_client_auth: Option<(BindingKind, String)>,
}

/// A partial update of an agent: each `Some` replaces the field.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// `Some(None)` resets to the server default.
    pub access_token_ttl: Option<Option<u64>>,
    pub allowed_cidrs: Option<Vec<String>>,
    /// `Some(None)` removes the `jwks_uri`.
    pub jwks_uri: Option<Option<String>>,
    /// A new certificate binding (`tls_client_auth_*`).
    pub tls_client_auth: Option<(BindingKind, String)>,
}

impl NewAgent {
    /// Validates the settings and builds the agent with a fresh ID.
    pub fn into_agent(self, now: UnixTime) -> Result<Agent, AgentError> {
        let method = match self.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(m) => m.parse()?,
        };
        if self.jwks_uri.is_some() && method != AuthMethod::PrivateKeyJwt {
            return Err(AgentError::Invalid(
                "jwks_uri",
                "only private_key_jwt agents have a jwks_uri".into(),
            ));
        }
        let agent_id = AgentId::generate();
        let tls_client_auth = binding_for(method, &agent_id, self.tls_client_auth, None)?;
        Ok(Agent {
            agent_id,
            name: validate_name(self.name)?,
            description: validate_description(self.description.unwrap_or_default())?,
            status: AgentStatus::Active,
            token_endpoint_auth_method: method,
            scopes: validate_scopes(self.scopes.unwrap_or_default())?,
            audiences: validate_audiences(self.audiences.unwrap_or_default())?,
            access_token_ttl: self.access_token_ttl.map(validate_ttl).transpose()?,
            allowed_cidrs: validate_cidrs(self.allowed_cidrs.unwrap_or_default())?,
            jwks_uri: self.jwks_uri.map(validate_jwks_uri).transpose()?,
            tokens_revoked_before: None,
            tls_client_auth,
            created_at: now,
            updated_at: now,
        })
    }
}

impl AgentPatch {
    /// Applies the patch to a copy of `agent`, validating every changed field.
    pub fn apply(self, agent: &Agent, now: UnixTime) -> Result<Agent, AgentError> {
        let mut updated = agent.clone();
        if let Some(name) = self.name {
            updated.name = validate_name(name)?;
        }
        if let Some(description) = self.description {
            updated.description = validate_description(description)?;
        }
        if let Some(status) = self.status {
            updated.status = status.parse()?;
        }
        if let Some(method) = self.token_endpoint_auth_method {
            updated.token_endpoint_auth_method = method.parse()?;
        }
        if let Some(scopes) = self.scopes {
            updated.scopes = validate_scopes(scopes)?;
        }
        if let Some(audiences) = self.audiences {
            updated.audiences = validate_audiences(audiences)?;
        }
        if let Some(ttl) = self.access_token_ttl {
            updated.access_token_ttl = ttl.map(validate_ttl).transpose()?;
        }
        if let Some(cidrs) = self.allowed_cidrs {
            updated.allowed_cidrs = validate_cidrs(cidrs)?;
        }
        if let Some(uri) = self.jwks_uri {
            updated.jwks_uri = uri.map(validate_jwks_uri).transpose()?;
        }
        if updated.jwks_uri.is_some()
            && updated.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt
        {
            return Err(AgentError::Invalid(
                "jwks_uri",
                "only private_key_jwt agents have a jwks_uri".into(),
            ));
        }
        updated.tls_client_auth = binding_for(
            updated.token_endpoint_auth_method,
            &updated.agent_id,
            self.tls_client_auth,
            agent.tls_client_auth.clone(),
        )?;
        if updated != *agent {
            updated.updated_at = now;
        }
        Ok(updated)
    }
}

/// The binding of an agent with `method`: the one requested, else the current one, else for a
/// `tls_client_auth` agent Signet's agent URI (what certificates from the agent CA carry).
/// Other methods have no binding.
fn binding_for(
    method: AuthMethod,
    agent_id: &AgentId,
    requested: Option<(BindingKind, String)>,
    current: Option<CertificateBinding>,
) -> Result<Option<CertificateBinding>, AgentError> {
    if method != AuthMethod::TlsClientAuth {
        return match requested {
            Some((kind, _)) => Err(AgentError::Invalid(
                kind.field(),
                "only tls_client_auth agents have a certificate binding".into(),
            )),
            None => Ok(None),
        };
    }
    let binding = match (requested, current) {
        (Some((kind, value)), _) => CertificateBinding::new(kind, &value)
            .map_err(|e| AgentError::Invalid(kind.field(), e))?,
        (None, Some(current)) => current,
        (None, None) => CertificateBinding::new(BindingKind::SanUri, &agent_uri(agent_id))
            .map_err(|e| AgentError::Invalid("tls_client_auth_san_uri", e))?,
    };
    Ok(Some(binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_agent() -> NewAgent {
        NewAgent {
            name: "billing-bot".into(),
            ..Default::default()
        }
    }

    #[test]
    fn agent_ids_are_url_safe_and_unique() {
        let a = AgentId::generate();
        let b = AgentId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 26);
        assert!(AgentId::is_well_formed(a.as_str()));
        assert!(!AgentId::is_well_formed("agt_short"));
        assert!(!AgentId::is_well_formed("../../etc/passwd"));
    }

    #[test]
    fn descriptions_keep_line_breaks_but_no_other_control_characters() {
        let with = |description: &str| NewAgent {
            description: Some(description.into()),
            ..new_agent()
        };
        assert!(with("runs nightly\r\n\tbilling").into_agent(10).is_ok());
        for bad in ["nul \u{0} byte", "bell \u{7}", "escape \u{1b}[31m"] {
            assert!(
                matches!(
                    with(bad).into_agent(10),
                    Err(AgentError::Invalid("description", _))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn defaults_to_client_secret_basic_and_active() {
        let agent = new_agent().into_agent(10).expect("valid");
        assert_eq!(
            agent.token_endpoint_auth_method,
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(agent.status, AgentStatus::Active);
        assert!(agent.allows_source("192.0.2.1".parse().expect("ip")));
    }

    #[test]
    fn tls_client_auth_agents_always_have_one_binding() {
        let agent = NewAgent {
            token_endpoint_auth_method: Some("tls_client_auth".into()),
            ..new_agent()
        }
        .into_agent(10)
        .expect("valid");
        let binding = agent.tls_client_auth.clone().expect("default binding");
        assert_eq!(binding.kind, BindingKind::SanUri);
        assert_eq!(binding.value, agent_uri(&agent.agent_id));

        let patched = AgentPatch {
            tls_client_auth: Some((BindingKind::SubjectDn, "CN=billing,O=Acme".into())),
            ..Default::default()
        }
        .apply(&agent, 20)
        .expect("valid");
        assert_eq!(
            patched.tls_client_auth.as_ref().map(|b| b.kind),
            Some(BindingKind::SubjectDn)
        );
        let secret_again = AgentPatch {
            token_endpoint_auth_method: Some("client_secret_basic".into()),
            ..Default::default()
        }
        .apply(&patched, 30)
        .expect("valid");
        assert_eq!(secret_again.tls_client_auth, None);

        let refused = NewAgent {
            tls_client_auth: Some((BindingKind::SanDns, "a.example".into())),
            ..new_agent()
        }
        .into_agent(10);
        assert!(matches!(
            refused,
            Err(AgentError::Invalid("tls_client_auth_san_dns", _))
        ));
        let bad_dn = NewAgent {
            token_endpoint_auth_method: Some("tls_client_auth".into()),
            tls_client_auth: Some((BindingKind::SubjectDn, "nonsense".into())),
            ..new_agent()
        }
        .into_agent(10);
        assert!(matches!(
            bad_dn,
            Err(AgentError::Invalid("tls_client_auth_subject_dn", _))
        ));
    }

    #[test]
    fn invalid_fields_name_the_field() {
        let cases: Vec<(NewAgent, &str)> = vec![
            (
                NewAgent {
                    name: " ".into(),
                    ..Default::default()
                },
                "name",
            ),
            (
                NewAgent {
                    scopes: Some(vec!["a b".into()]),
                    ..new_agent()
                },
                "scopes",
            ),
            (
                NewAgent {
                    audiences: Some(vec!["".into()]),
                    ..new_agent()
                },
                "audiences",
            ),
            (
                NewAgent {
                    access_token_ttl: Some(5),
                    ..new_agent()
                },
                "access_token_ttl",
            ),
            (
                NewAgent {
                    allowed_cidrs: Some(vec!["nope".into()]),
                    ..new_agent()
                },
                "allowed_cidrs",
            ),
            (
                NewAgent {
                    token_endpoint_auth_method: Some("magic".into()),
                    ..new_agent()
                },
                "token_endpoint_auth_method",
            ),
        ];
        for (input, field) in cases {
            match input.into_agent(0) {
                Err(AgentError::Invalid(f, _)) => assert_eq!(f, field),
                other => panic!("expected an error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn patch_changes_only_given_fields() {
        let agent = new_agent().into_agent(10).expect("valid");
        let patch = AgentPatch {
            status: Some("disabled".into()),
            ..Default::default()
        };
        let updated = patch.apply(&agent, 20).expect("valid");
        assert_eq!(updated.status, AgentStatus::Disabled);
        assert_eq!(updated.name, agent.name);
        assert_eq!(updated.updated_at, 20);
        let unchanged = AgentPatch::default().apply(&agent, 30).expect("valid");
        assert_eq!(unchanged.updated_at, 10);
    }
}
