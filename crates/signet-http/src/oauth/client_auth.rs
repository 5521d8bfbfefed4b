//! Client authentication as the HTTP layer sees it: which credentials a request carries (the
//! `Authorization: Basic` header, form parameters, a client assertion, the TLS client
//! certificate), then the domain check against the agent's cached credentials.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signet_core::agent::AgentId;
use signet_core::agent::AuthMethod;
use signet_core::audit::{AuditEvent, event};
use signet_core::client_auth::{
    AgentCredentials, AgentSecret, Assertion, ClientAuthError, PresentedCredentials, SecretForm,
    VerifiedAssertion,
};
use signet_core::lockout::{LockEvent, LockKind};
use signet_store::StoreError;

use super::error::OAuthError;
use super::form::{Form, decode};
use crate::request::{Caller, PresentedChain};
use crate::state::AppState;

/// What an authentication attempt looked like, for its audit record and wire error.
#[derive(Debug, Default, Clone)]
pub struct Attempt {
    pub claimed_agent_id: Option<String>,
    pub method: Option<&'static str>,
}

impl Attempt {
    /// The wire answer when this attempt failed with `error`: challenged as Bearer when it
    /// presented an admin token, as Basic otherwise.
    pub fn refusal(&self, error: ClientAuthError) -> OAuthError {
        let wire = OAuthError::from_client_auth(error);
        if self.method == Some(ADMIN_TOKEN_METHOD) {
            wire.with_bearer_challenge()
        } else {
            wire
        }
    }
}

/// The `method` of an attempt that presented an admin token (introspection, revocation).
const ADMIN_TOKEN_METHOD: &str = "admin_token";

#[derive(Debug)]
pub enum Failure {
    Client(ClientAuthError),
    Store(StoreError),
    /// The agent or the source is locked for this many seconds (brute-force protection); the
    /// request was not looked at and is not audited.
    Locked(i64),
}

/// `client_assertion_type` for JWT client authentication (RFC 7523 §2.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Finds the credentials in the request. RFC 6749 §2.3: a client must not use more than one
/// authentication method in a request. A client certificate counts as the method only when
/// nothing else is presented (an agent with a secret may still use a TLS connection with a
/// certificate, which then binds its tokens).
pub fn presented(
    headers: &HeaderMap,
    form: &Form,
    certificate: Option<&PresentedChain>,
    attempt: &mut Attempt,
) -> Result<PresentedCredentials, ClientAuthError> {
    if headers.get_all(AUTHORIZATION).iter().nth(1).is_some() {
        return Err(ClientAuthError::DuplicateAuthorization);
    }
    let basic = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            attempt.method = Some("client_secret_basic");
            Some(parse_basic(value.as_bytes())?)
        }
    };
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let methods = usize::from(basic.is_some())
        + usize::from(form_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        attempt.claimed_agent_id = basic
            .as_ref()
            .map(|(id, _)| id.clone())
            .or(form_id.map(str::to_string));
        return Err(ClientAuthError::MultipleMethods);
    }
    if let Some((agent_id, secret)) = basic {
        attempt.claimed_agent_id = Some(agent_id.clone());
        if form_id.is_some_and(|id| id != agent_id) {
            return Err(ClientAuthError::ClientIdMismatch);
        }
        let secret = AgentSecret::parse(&secret)?;
        return Ok(PresentedCredentials::Secret {
            agent_id,
            secret,
            form: SecretForm::Basic,
        });
    }
    attempt.claimed_agent_id = form_id.map(str::to_string);
    if let Some(secret) = form_secret {
        attempt.method = Some("client_secret_post");
        let agent_id = form_id.ok_or(ClientAuthError::NoCredentials)?.to_string();
        let secret = AgentSecret::parse(secret)?;
        return Ok(PresentedCredentials::Secret {
            agent_id,
            secret,
            form: SecretForm::Post,
        });
    }
    if let Some(assertion) = assertion {
        attempt.method = Some("private_key_jwt");
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(ClientAuthError::BadAssertionType);
        }
        let assertion = Assertion::parse(assertion)?;
        if attempt.claimed_agent_id.is_none() {
            attempt.claimed_agent_id = assertion.subject().map(str::to_string);
        }
        return Ok(PresentedCredentials::Assertion {
            agent_id: form_id.map(str::to_string),
            assertion,
        });
    }
    match (certificate, form_id) {
        (Some(chain), Some(agent_id)) => {
            attempt.method = Some(AuthMethod::TlsClientAuth.as_str());
            match chain {
                Ok(chain) => Ok(PresentedCredentials::Certificate {
                    agent_id: agent_id.to_string(),
                    chain: chain.clone(),
                }),
                Err(e) => Err(ClientAuthError::from(e.clone())),
            }
        }
        (Some(_), None) => {
            attempt.method = Some(AuthMethod::TlsClientAuth.as_str());
            Err(ClientAuthError::MissingClientId)
        }
        (None, Some(_)) => Err(ClientAuthError::NoClientCertificate),
        (None, None) => Err(ClientAuthError::NoCredentials),
    }
}

/// The secret of a well-formed `Authorization: Basic` header.
pub fn basic_secret(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?;
    parse_basic(value.as_bytes()).ok().map(|(_, secret)| secret)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
pub(crate) fn parse_basic(value: &[u8]) -> Result<(String, String), ClientAuthError> {
    let malformed = ClientAuthError::MalformedBasicHeader;
    let value = std::str::from_utf8(value).map_err(|_| malformed)?;
    let (scheme, encoded) = value.split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(malformed)?;
    let agent_id = decode(&decoded[..colon]).map_err(|_| malformed)?;
    let secret = decode(&decoded[colon + 1..]).map_err(|_| malformed)?;
    if agent_id.is_empty() {
        return Err(malformed);
    }
    Ok((agent_id, secret))
}

/// An authenticated agent, with the assertion `jti` still to be recorded (see [`consume_jti`];
/// the token endpoint records it with the token's audit record, `super::audited_with_jti`).
#[derive(Debug)]
pub struct AuthenticatedAgent {
    pub credentials: Arc<AgentCredentials>,
    pub assertion: Option<VerifiedAssertion>,
    /// `x5t#S256` of the client certificate of the connection, which binds the agent's tokens
    /// (RFC 8705 §3).
    pub certificate_thumbprint: Option<String>,
}

/// Authenticates the calling agent.
pub async fn authenticate(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    form: &Form,
    attempt: &mut Attempt,
) -> Result<AuthenticatedAgent, Failure> {
    let now = state.now();
    let source = caller.lock_key();
    let presented = match presented(headers, form, caller.certificate.as_ref(), attempt) {
        Ok(presented) => presented,
        Err(e) => {
            let claimed = attempt.claimed_agent_id.clone().unwrap_or_default();
            let keys = lock_keys(&claimed, &source);
            if let (Some(retry), events) = state.lockouts.check(&keys, now) {
                record_lock_events(state, events);
                return Err(Failure::Locked(retry));
            }
            record_lock_events(state, state.lockouts.failure(&keys, now));
            return Err(Failure::Client(e));
        }
    };
    attempt.method = Some(presented.method().as_str());
    let claimed = presented.claimed_agent_id().unwrap_or_default();
    // Brute-force protection comes before any lookup: a locked agent or address costs nothing.
    let keys = lock_keys(claimed, &source);
    let (retry, ended) = state.lockouts.check(&keys, now);
    record_lock_events(state, ended);
    if let Some(retry) = retry {
        return Err(Failure::Locked(retry));
    }
    let credentials = if AgentId::is_well_formed(claimed) {
        state
            .store
            .agent_credentials(claimed)
            .await
            .map_err(Failure::Store)?
    } else {
        None
    };
    let credentials = match (&presented, credentials) {
        (PresentedCredentials::Assertion { assertion, .. }, Some(c))
            if c.agent.jwks_uri.is_some() =>
        {
            Some(with_published_keys(state, c, assertion.kid()).await)
        }
        (_, c) => c,
    };
    if let (PresentedCredentials::Certificate { .. }, Some(c)) = (&presented, &credentials)
        && c.agent.token_endpoint_auth_method.uses_certificate()
    {
        attempt.method = Some(c.agent.token_endpoint_auth_method.as_str());
    }
    let authenticated = match state.check_credentials(&presented, credentials.as_deref(), caller.ip)
    {
        Ok(authenticated) => authenticated,
        Err(e) => {
            record_lock_events(state, state.lockouts.failure(&keys, now));
            return Err(Failure::Client(e));
        }
    };
    state.lockouts.success(&keys);
    let assertion = authenticated.assertion;
    let credentials = credentials.ok_or(Failure::Client(ClientAuthError::UnknownAgent))?;
    let certificate_thumbprint = match &caller.certificate {
        Some(Ok(chain)) => Some(chain.leaf.thumbprint.clone()),
        _ => None,
    };
    Ok(AuthenticatedAgent {
        credentials,
        assertion,
        certificate_thumbprint,
    })
}

/// What a request is counted against: the claimed agent (only a well-formed ID, so junk cannot
/// fill the table) and the source address.
pub(crate) fn lock_keys<'a>(claimed: &'a str, source: &'a str) -> Vec<(LockKind, &'a str)> {
    let mut keys = vec![(LockKind::Source, source)];
    if AgentId::is_well_formed(claimed) {
        keys.push((LockKind::Agent, claimed));
    }
    keys
}

/// Counts a refusal at the operators' surfaces (a bad admin token, a console form from another
/// site) towards the address's own lock, apart from the agents' (a script with a stale token
/// must not lock the agents behind its address out of the token endpoint). `Some(retry)` while
/// the address is locked: the refusal is then not to be recorded (a flood cannot fill the
/// audit log).
pub fn operator_refusal(state: &AppState, caller: &Caller) -> Option<i64> {
    let source = caller.lock_key();
    let keys = [(LockKind::OperatorSource, source.as_str())];
    let now = state.now();
    let (locked, ended) = state.lockouts.check(&keys, now);
    record_lock_events(state, ended);
    if locked.is_none() {
        record_lock_events(state, state.lockouts.failure(&keys, now));
    }
    locked
}

/// Audits the start and end of locks, off the request path (one record per lock, however many
/// requests it refuses).
pub fn record_lock_events(state: &AppState, events: Vec<LockEvent>) {
    for event in events {
        let (record, lock) = match &event {
            LockEvent::Started { lock, failures } => (
                AuditEvent::failure(event::LOCKOUT_STARTED, "too_many_failures").with_detail(
                    serde_json::json!({
                        "kind": lock.kind.as_str(),
                        "key": lock.key,
                        "failures": failures,
                        "seconds": lock.until - lock.locked_at,
                    }),
                ),
                lock,
            ),
            LockEvent::Ended { lock } => (
                AuditEvent::success(event::LOCKOUT_ENDED).with_detail(serde_json::json!({
                    "kind": lock.kind.as_str(),
                    "key": lock.key,
                    "refused": lock.refused,
                })),
                lock,
            ),
        };
        let record = match lock.kind {
            LockKind::Agent => record.with_agent(Some(&lock.key)),
            LockKind::Source | LockKind::OperatorSource => {
                record.with_source(Some(lock.key.clone()), None)
            }
            LockKind::ConsoleUser => record.with_agent(None),
        }
        .with_actor("signet");
        let store = state.store.clone();
        // The record carries the id of the request that started (or noticed the end of) the
        // lock: the task-local does not follow into the spawned task by itself.
        let request_id = signet_store::REQUEST_ID.try_with(Arc::clone).ok();
        tokio::spawn(async move {
            let written = async move { store.audit().record(record).await };
            let written = match request_id {
                Some(id) => signet_store::REQUEST_ID.scope(id, written).await,
                None => written.await,
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, "lockout could not be audited");
            }
        });
    }
}

/// Records the end of every lock when it runs out, once a second, whether or not its agent
/// or address comes back.
pub fn spawn_lock_sweeper(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            record_lock_events(&state, state.lockouts.ended(state.now()));
        }
    });
}

/// The agent's credentials with the keys published at its `jwks_uri` added to its registered
/// ones. A failed fetch keeps the cached keys and is audited.
async fn with_published_keys(
    state: &AppState,
    credentials: Arc<AgentCredentials>,
    kid: Option<&str>,
) -> Arc<AgentCredentials> {
    let Some(uri) = credentials.agent.jwks_uri.as_deref() else {
        return credentials;
    };
    let agent_id = credentials.agent.agent_id.as_str();
    let (published, error) = state.jwks_fetcher.keys(agent_id, uri, kid).await;
    if let Some(error) = error {
        tracing::warn!(agent_id, error = %error, "jwks_uri fetch failed; using cached keys");
        let event = AuditEvent::failure(event::JWKS_FETCH, error.reason())
            .with_agent(Some(agent_id))
            .with_detail(serde_json::json!({ "jwks_uri": uri, "error": error.to_string(), "cached_keys": published.len() }));
        if let Err(e) = state.store.audit().record(event).await {
            tracing::error!(error = %e, "jwks_uri fetch failure could not be audited");
        }
    }
    let mut keys = credentials.keys.clone();
    keys.extend(published);
    Arc::new(AgentCredentials {
        agent: credentials.agent.clone(),
        secrets: Vec::new(),
        keys,
        certificates: Vec::new(),
        removed_certificates: Vec::new(),
    })
}

/// Records the `jti` of the request's client assertion, atomically and scoped to the agent;
/// a `jti` seen before is a replay. Call it after every other check of the request has passed,
/// so that a refused request never burns a `jti`.
pub async fn consume_jti(
    state: &AppState,
    authenticated: &AuthenticatedAgent,
) -> Result<(), Failure> {
    let Some(assertion) = &authenticated.assertion else {
        return Ok(());
    };
    let agent_id = authenticated.credentials.agent.agent_id.as_str();
    match state
        .store
        .record_jti(agent_id, &assertion.jti, assertion.jti_expires_at)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Client(ClientAuthError::JtiReplayed)),
        Err(e) => Err(Failure::Store(e)),
    }
}

/// Who may call introspection and revocation: an agent, or an operator with an admin token
/// (the bootstrap token or a named one: its name and role).
#[derive(Debug)]
pub enum EndpointCaller {
    Admin {
        actor: String,
        role: signet_core::admin_token::Role,
    },
    Agent(Arc<AgentCredentials>),
}

impl EndpointCaller {
    /// Who acted, for audit records.
    pub fn actor(&self) -> String {
        match self {
            Self::Admin { actor, .. } => actor.clone(),
            Self::Agent(c) => c.agent.agent_id.to_string(),
        }
    }
}

/// Authenticates the caller of introspection or revocation: `Authorization: Bearer <admin
/// token>` or any agent client authentication.
pub async fn authenticate_endpoint_caller(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    form: &Form,
    attempt: &mut Attempt,
) -> Result<EndpointCaller, Failure> {
    if let Some(token) = crate::admin::bearer_token(headers) {
        attempt.method = Some(ADMIN_TOKEN_METHOD);
        return match crate::admin::authenticate(state, Some(token)).await {
            Ok(Ok((actor, role))) => Ok(EndpointCaller::Admin { actor, role }),
            Ok(Err(_)) => Err(Failure::Client(ClientAuthError::WrongSecret)),
            Err(e) => Err(Failure::Store(e)),
        };
    }
    let authenticated = authenticate(state, caller, headers, form, attempt).await?;
    consume_jti(state, &authenticated).await?;
    Ok(EndpointCaller::Agent(authenticated.credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> Result<(String, String), ClientAuthError> {
        parse_basic(format!("Basic {}", STANDARD.encode(raw)).as_bytes())
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(basic("agt_x:a%2Bb+c"), Ok(("agt_x".into(), "a+b c".into())));
        assert_eq!(basic("agt_x:p:w"), Ok(("agt_x".into(), "p:w".into())));
        assert_eq!(
            basic("no-colon"),
            Err(ClientAuthError::MalformedBasicHeader)
        );
        assert_eq!(basic(":secret"), Err(ClientAuthError::MalformedBasicHeader));
        assert_eq!(
            parse_basic(b"Basic !!!"),
            Err(ClientAuthError::MalformedBasicHeader)
        );
        assert_eq!(
            parse_basic(b"Bearer abc"),
            Err(ClientAuthError::MalformedBasicHeader)
        );
        assert_eq!(
            parse_basic(b"Basic"),
            Err(ClientAuthError::MalformedBasicHeader)
        );
    }
}
