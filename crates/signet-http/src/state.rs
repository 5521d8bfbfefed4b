//! The application state every handler receives: configuration, store, keys. Built once at
//! start and passed down; nothing is global.

use std::sync::Arc;

use signet_core::client_auth::{
    self, AgentCredentials, AssertionPolicy, AuthContext, Authenticated, ClientAuthError,
    PresentedCredentials,
};
use signet_core::clock::Clock;
use signet_core::config::Config;
use signet_core::crypto::MasterKey;
use signet_core::lockout::Lockouts;
use signet_store::Store;

use crate::jwks_uri::JwksFetcher;
use crate::keyring::KeyRing;
use crate::pki::PkiState;

/// Where clients reach this server.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    /// The issuer (RFC 8414), also the base of the plain HTTP endpoints.
    pub issuer: String,
    /// The TLS listener's base URL, when it runs.
    pub mtls_base_url: Option<String>,
}

/// Where an agent manages its own keys; also the `aud` its assertions there must carry.
pub const SELF_KEYS_PATH: &str = "/api/v1/self/keys";

/// Shared state, cloned for every request by every extractor and middleware that takes it: one
/// `Arc`, so a clone is one reference count (it was one per field, a few percent of the
/// token endpoint's CPU). Fields are read through `Deref`.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub master_key: Arc<MasterKey>,
    pub keys: Arc<KeyRing>,
    /// SHA-256 of the admin API bearer token.
    pub admin_token_sha256: [u8; 32],
    /// The issuer URL (RFC 8414 §2), without a trailing slash.
    pub issuer: Arc<str>,
    /// The rules for private_key_jwt client assertions, computed once.
    pub assertion_policy: Arc<AssertionPolicy>,
    /// The same rules for assertions at `/api/v1/self/keys`, whose `aud` must name it.
    pub key_management_policy: Arc<AssertionPolicy>,
    /// Fetches and caches keys published at agents' `jwks_uri`.
    pub jwks_fetcher: Arc<JwksFetcher>,
    /// Trusted client CAs, certificate revocations and the agent CA.
    pub pki: Arc<PkiState>,
    /// Base URL of the TLS listener (`mtls_endpoint_aliases`), when it runs.
    pub mtls_base_url: Option<Arc<str>>,
    /// The clock every time-based rule reads (adjustable only with `SIGNET_TESTING_CLOCK=1`).
    pub clock: Arc<Clock>,
    /// Brute-force protection: failed authentications per agent and source (per node).
    pub lockouts: Arc<Lockouts>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Anomaly detection and alert delivery.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Requests in flight, and load shedding past the limit.
    pub admission: Arc<crate::overload::Admission>,
    /// One permit per open client connection (`SIGNET_MAX_CONNECTIONS`, both listeners).
    pub connections: Arc<tokio::sync::Semaphore>,
    /// Turns at the console's password hashing (see `console::passwords`).
    pub password_work: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        master_key: MasterKey,
        keys: KeyRing,
        admin_token_sha256: [u8; 32],
        urls: PublicUrls,
        pki: PkiState,
    ) -> Self {
        let issuer = urls.issuer.trim_end_matches('/').to_string();
        let mtls_base_url = urls
            .mtls_base_url
            .map(|u| u.trim_end_matches('/').to_string());
        // RFC 7523 §3: `aud` names the token endpoint (either alias); the issuer is accepted too.
        let mut audiences = vec![format!("{issuer}/oauth2/token"), issuer.clone()];
        if let Some(base) = &mtls_base_url {
            audiences.push(format!("{base}/oauth2/token"));
        }
        let assertion_policy = AssertionPolicy {
            audiences,
            max_lifetime: config.client_assertion_max_lifetime as i64,
            clock_skew: config.clock_skew_seconds as i64,
        };
        // An agent managing its own keys signs for that endpoint only: an assertion meant for
        // the token endpoint (one token, minutes long) cannot register a key (lasting access),
        // nor the other way round.
        let mut key_audiences = vec![format!("{issuer}{SELF_KEYS_PATH}")];
        if let Some(base) = &mtls_base_url {
            key_audiences.push(format!("{base}{SELF_KEYS_PATH}"));
        }
        let key_management_policy = AssertionPolicy {
            audiences: key_audiences,
            ..assertion_policy.clone()
        };
        let jwks_fetcher = Arc::new(JwksFetcher::new(&config.jwks_uri));
        let clock = Arc::new(if config.testing_clock {
            Clock::adjustable()
        } else {
            Clock::system()
        });
        store.audit().use_clock(clock.clone());
        let lockouts = Arc::new(Lockouts::new(config.lockout));
        let alerts = Arc::new(crate::alerts::Alerts::new(&config));
        let admission = Arc::new(crate::overload::Admission::new(
            config.max_concurrent_requests,
        ));
        let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
        Self(Arc::new(Shared {
            admission,
            connections,
            jwks_fetcher,
            config: Arc::new(config),
            store,
            master_key: Arc::new(master_key),
            keys: Arc::new(keys),
            admin_token_sha256,
            issuer: issuer.into(),
            assertion_policy: Arc::new(assertion_policy),
            key_management_policy: Arc::new(key_management_policy),
            pki: Arc::new(pki),
            clock,
            lockouts,
            metrics: Arc::default(),
            alerts,
            mtls_base_url: mtls_base_url.map(Into::into),
            password_work: crate::console::password_permits(),
        }))
    }

    /// Checks presented credentials against the agent's with everything else authentication
    /// needs from the server: master key, assertion rules, trusted CAs, revocations, clock.
    pub fn check_credentials<'a>(
        &self,
        presented: &PresentedCredentials,
        credentials: Option<&'a AgentCredentials>,
        source: std::net::IpAddr,
    ) -> Result<Authenticated<'a>, ClientAuthError> {
        self.check_credentials_for(presented, credentials, source, &self.assertion_policy)
    }

    /// As [`AppState::check_credentials`], with the assertion rules of another endpoint.
    pub fn check_credentials_for<'a>(
        &self,
        presented: &PresentedCredentials,
        credentials: Option<&'a AgentCredentials>,
        source: std::net::IpAddr,
        assertion_policy: &AssertionPolicy,
    ) -> Result<Authenticated<'a>, ClientAuthError> {
        let (trust, revoked) = (self.pki.trust(), self.pki.revoked());
        let context = AuthContext {
            master_key: &self.master_key,
            assertion_policy,
            trust: &trust,
            revoked_certificates: &revoked,
            source,
            now: self.now(),
        };
        client_auth::authenticate(presented, credentials, &context)
    }

    /// The current time by the server's clock.
    pub fn now(&self) -> signet_core::UnixTime {
        self.clock.now()
    }

    /// The token endpoint's URL, the `aud` a client assertion names (RFC 7523 §3).
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    /// Lifetime of the access tokens of an agent whose own setting is `agent_ttl`.
    pub fn token_ttl(&self, agent_ttl: Option<u64>) -> u64 {
        agent_ttl.unwrap_or(self.config.access_token_ttl)
    }
}
