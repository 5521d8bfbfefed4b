//! The application state every handler receives: configuration, store, keys. Built once at
//! start and passed down; nothing is global.

use std::sync::Arc;

use signet_core::config::Config;
use signet_core::crypto::MasterKey;
use signet_store::Store;

use crate::keyring::KeyRing;

/// Shared state. Cloning is cheap (everything is behind `Arc`).
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub master_key: Arc<MasterKey>,
    pub keys: Arc<KeyRing>,
    /// SHA-256 of the admin API bearer token.
    pub admin_token_sha256: [u8; 32],
    /// The issuer URL (RFC 8414 §2), without a trailing slash.
    pub issuer: Arc<str>,
}

impl AppState {
    /// The token endpoint's URL, the `aud` a client assertion names (RFC 7523 §3).
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    /// Lifetime of the access tokens of an agent whose own setting is `agent_ttl`.
    pub fn token_ttl(&self, agent_ttl: Option<u64>) -> u64 {
        agent_ttl.unwrap_or(self.config.access_token_ttl)
    }
}
