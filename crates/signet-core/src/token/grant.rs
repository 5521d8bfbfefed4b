//! The `client_credentials` grant (RFC 6749 §4.4): which scopes and audiences an authenticated
//! agent gets, and the claims of its access token.

use crate::UnixTime;
use crate::agent::Agent;
use crate::crypto::random_bytes;
use crate::encoding::b64url;

use super::claims::{AccessTokenClaims, Audience};

/// The grant parameters of a token request, after form parsing.
#[derive(Debug, Default)]
pub struct TokenRequest {
    /// Space-delimited `scope` (RFC 6749 §3.3); `None` asks for all of the agent's scopes.
    pub scope: Option<String>,
    /// `resource` indicators (RFC 8707) and the `audience` parameter, together.
    pub audiences: Vec<String>,
}

/// Why a token request was refused after the agent authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("scope `{0}` is not allowed for this agent")]
    ScopeNotAllowed(String),
    #[error("audience `{0}` is not allowed for this agent")]
    AudienceNotAllowed(String),
    #[error("malformed scope parameter")]
    MalformedScope,
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ScopeNotAllowed(_) => "scope_not_allowed",
            Self::AudienceNotAllowed(_) => "audience_not_allowed",
            Self::MalformedScope => "malformed_scope",
        }
    }
}

/// Decides the token's claims. The requested scopes must be a subset of the agent's (RFC 6749
/// §3.3); with no `scope`, the agent gets all of its scopes. Requested audiences must be among
/// the agent's allowed ones (RFC 8707 §2: `invalid_target`); with none requested, the token is
/// for all of them, and an agent without configured audiences gets the issuer as audience.
pub fn grant(
    agent: &Agent,
    request: &TokenRequest,
    issuer: &str,
    ttl: u64,
    now: UnixTime,
) -> Result<AccessTokenClaims, TokenError> {
    let scope = match request.scope.as_deref() {
        None => agent.scopes.join(" "),
        Some(requested) => {
            let mut granted: Vec<&str> = Vec::new();
            for scope in requested.split(' ') {
                if scope.is_empty() {
                    // RFC 6749 §3.3 delimits with single spaces; tolerate none other.
                    if requested.trim().is_empty() {
                        break;
                    }
                    return Err(TokenError::MalformedScope);
                }
                if !agent.scopes.iter().any(|s| s == scope) {
                    return Err(TokenError::ScopeNotAllowed(scope.to_string()));
                }
                if !granted.contains(&scope) {
                    granted.push(scope);
                }
            }
            granted.join(" ")
        }
    };
    let audiences = if request.audiences.is_empty() {
        if agent.audiences.is_empty() {
            vec![issuer.to_string()]
        } else {
            agent.audiences.clone()
        }
    } else {
        let mut chosen: Vec<String> = Vec::new();
        for audience in &request.audiences {
            if !agent.audiences.contains(audience) {
                return Err(TokenError::AudienceNotAllowed(audience.clone()));
            }
            if !chosen.contains(audience) {
                chosen.push(audience.clone());
            }
        }
        chosen
    };
    let jti: [u8; 16] = random_bytes();
    Ok(AccessTokenClaims {
        iss: issuer.to_string(),
        sub: agent.agent_id.to_string(),
        client_id: agent.agent_id.to_string(),
        aud: Audience::from_vec(audiences),
        exp: now + ttl as i64,
        iat: now,
        nbf: now,
        jti: b64url(jti),
        scope,
        cnf: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::NewAgent;

    fn agent() -> Agent {
        NewAgent {
            name: "a".into(),
            scopes: Some(vec!["read".into(), "write".into()]),
            audiences: Some(vec![
                "https://api.example".into(),
                "https://b.example".into(),
            ]),
            ..Default::default()
        }
        .into_agent(0)
        .expect("valid")
    }

    fn check(
        scope: Option<&str>,
        audiences: &[&str],
        expected: Result<(&str, Audience), TokenError>,
    ) {
        let request = TokenRequest {
            scope: scope.map(str::to_string),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
        };
        let result = grant(&agent(), &request, "https://signet", 600, 1000)
            .map(|c| (c.scope.clone(), c.aud.clone()));
        assert_eq!(result, expected.map(|(s, a)| (s.to_string(), a)));
    }

    #[test]
    fn scope_and_audience_selection() {
        let both = Audience::Many(vec![
            "https://api.example".into(),
            "https://b.example".into(),
        ]);
        check(None, &[], Ok(("read write", both.clone())));
        check(Some("read"), &[], Ok(("read", both)));
        check(
            Some("read read"),
            &["https://api.example"],
            Ok(("read", Audience::One("https://api.example".into()))),
        );
        check(
            Some("admin"),
            &[],
            Err(TokenError::ScopeNotAllowed("admin".into())),
        );
        check(Some("read  write"), &[], Err(TokenError::MalformedScope));
        check(
            Some("read"),
            &["https://evil.example"],
            Err(TokenError::AudienceNotAllowed(
                "https://evil.example".into(),
            )),
        );
    }

    #[test]
    fn claims_follow_rfc_9068() {
        let claims = grant(
            &agent(),
            &TokenRequest::default(),
            "https://signet",
            600,
            1000,
        )
        .expect("granted");
        assert_eq!(claims.sub, claims.client_id);
        assert_eq!((claims.iat, claims.exp), (1000, 1600));
        assert_eq!(claims.jti.len(), 22);
        assert_eq!(claims.iss, "https://signet");
    }

    #[test]
    fn agent_without_audiences_gets_the_issuer() {
        let mut agent = agent();
        agent.audiences.clear();
        let claims =
            grant(&agent, &TokenRequest::default(), "https://signet", 600, 0).expect("granted");
        assert_eq!(claims.aud, Audience::One("https://signet".into()));
    }
}
