//! The token signing keys in memory: the active key that signs, and every key still published
//! in the JWKS. Loaded once at start (decrypted with the master key and parsed once); the hot
//! path only borrows the parsed keys.

use std::sync::Arc;

use signet_core::UnixTime;
use signet_core::agent::MAX_TOKEN_TTL;
use signet_core::audit::{AuditEvent, event};
use signet_core::crypto::MasterKey;
use signet_core::token::{SigningAlgorithm, SigningKey};
use signet_store::{Store, StoredSigningKey};

/// The parsed signing keys.
#[derive(Debug)]
pub struct KeyRing {
    active: Arc<SigningKey>,
    /// Active first, then retired keys whose tokens may still be live.
    published: Vec<Arc<SigningKey>>,
    retired_at: Vec<(String, Option<UnixTime>)>,
}

/// Why the key ring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(
        "signing key {kid} cannot be decrypted: is SIGNET_MASTER_KEY the key this database was created with?"
    )]
    Unseal { kid: String },
    #[error("signing key {kid}: {problem}")]
    Invalid { kid: String, problem: String },
    #[error(transparent)]
    Store(#[from] signet_store::StoreError),
    #[error("could not generate a signing key")]
    Generate,
}

impl KeyRing {
    /// Loads the keys from the store. If there is no active key, or the active key's algorithm
    /// is not `alg`, a new key is generated, sealed and stored; the previous key is retired and
    /// stays published until every token it signed has expired.
    pub async fn load(
        store: &Store,
        master_key: &MasterKey,
        alg: SigningAlgorithm,
        now: UnixTime,
    ) -> Result<Self, KeyRingError> {
        store
            .delete_retired_signing_keys(now - MAX_TOKEN_TTL as i64)
            .await?;
        let mut stored = store.signing_keys().await?;
        let active_matches = stored
            .iter()
            .any(|k| k.status == "active" && k.alg == alg.as_str());
        if !active_matches {
            let (key, pkcs8) = SigningKey::generate(alg).map_err(|_| KeyRingError::Generate)?;
            let row = StoredSigningKey {
                kid: key.kid().to_string(),
                alg: alg.as_str().to_string(),
                private_key_sealed: master_key.seal(key.kid().as_bytes(), &pkcs8),
                status: "active".into(),
                created_at: now,
                retired_at: None,
            };
            store.activate_signing_key(&row, now).await?;
            store
                .audit()
                .record(
                    AuditEvent::success(event::SIGNING_KEY_CREATED)
                        .with_actor("system")
                        .with_detail(serde_json::json!({ "kid": key.kid(), "alg": alg.as_str() })),
                )
                .await?;
            tracing::info!(
                kid = key.kid(),
                alg = alg.as_str(),
                "generated a new token signing key"
            );
            stored = store.signing_keys().await?;
        }
        let mut active = None;
        let mut published = Vec::new();
        let mut retired_at = Vec::new();
        for row in &stored {
            let key = Arc::new(open_key(row, master_key)?);
            retired_at.push((row.kid.clone(), row.retired_at));
            if row.status == "active" {
                active = Some(key.clone());
                published.insert(0, key);
            } else {
                published.push(key);
            }
        }
        let active = active.ok_or(KeyRingError::Generate)?;
        Ok(Self {
            active,
            published,
            retired_at,
        })
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every published key, active first.
    pub fn published(&self) -> impl Iterator<Item = &SigningKey> {
        self.published.iter().map(|k| k.as_ref())
    }

    /// When the key `kid` was retired, if it was.
    pub fn retired_at(&self, kid: &str) -> Option<UnixTime> {
        self.retired_at
            .iter()
            .find(|(k, _)| k == kid)
            .and_then(|(_, t)| *t)
    }
}

fn open_key(row: &StoredSigningKey, master_key: &MasterKey) -> Result<SigningKey, KeyRingError> {
    let alg: SigningAlgorithm = row.alg.parse().map_err(|problem| KeyRingError::Invalid {
        kid: row.kid.clone(),
        problem,
    })?;
    let pkcs8 = master_key
        .open(row.kid.as_bytes(), &row.private_key_sealed)
        .map_err(|_| KeyRingError::Unseal {
            kid: row.kid.clone(),
        })?;
    let key = SigningKey::from_pkcs8(alg, &pkcs8).map_err(|e| KeyRingError::Invalid {
        kid: row.kid.clone(),
        problem: e.to_string(),
    })?;
    if key.kid() != row.kid {
        return Err(KeyRingError::Invalid {
            kid: row.kid.clone(),
            problem: "key id does not match the key".into(),
        });
    }
    Ok(key)
}
