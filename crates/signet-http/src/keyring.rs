//! The token signing keys in memory: the active key that signs, the next key (published before
//! it signs), and retired keys still published until their tokens expire. Loaded at start and
//! after each rotation (decrypted with the master key and parsed once); the hot path takes an
//! `Arc` to the parsed keys. Rotation: on a schedule, by an operator, or in an emergency.

use std::sync::Arc;

use signet_core::UnixTime;
use signet_core::agent::MAX_TOKEN_TTL;
use signet_core::audit::{AuditEvent, event};
use signet_core::crypto::MasterKey;
use signet_core::token::{SigningAlgorithm, SigningKey};
use signet_store::{Store, StoredSigningKey};

/// Why the key ring could not be loaded or rotated.
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

/// When signing keys rotate by themselves.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    /// A key signs for this long; `None`: no scheduled rotation.
    pub period: Option<u64>,
    /// The next key is published this long before it starts signing.
    pub prepublish: u64,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// A next key was published; it signs from `activates_at`.
    Published { kid: String, activates_at: UnixTime },
    /// The next key now signs; the previous one is retired (still published).
    Activated { kid: String, retired: String },
}

/// The parsed keys at one moment.
#[derive(Debug)]
struct KeySet {
    active: Arc<SigningKey>,
    /// Active first, then the next key, then retired keys whose tokens may still be live.
    published: Vec<Arc<SigningKey>>,
    rows: Vec<StoredSigningKey>,
}

/// The parsed signing keys, swapped as a whole when they rotate.
#[derive(Debug)]
pub struct KeyRing {
    set: std::sync::RwLock<Arc<KeySet>>,
    alg: SigningAlgorithm,
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
        let stored = store.signing_keys().await?;
        let active_matches = stored
            .iter()
            .any(|k| k.status == "active" && k.alg == alg.as_str());
        if !active_matches {
            let row = new_key(alg, master_key, now)?;
            store
                .activate_signing_key(&row, now, created(&row, "start"))
                .await?;
        }
        let set = load_set(store, master_key).await?;
        Ok(Self {
            set: std::sync::RwLock::new(Arc::new(set)),
            alg,
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the keys from the store again (after a rotation here or on another node).
    pub async fn reload(&self, store: &Store, master_key: &MasterKey) -> Result<(), KeyRingError> {
        let set = load_set(store, master_key).await?;
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Arc<SigningKey> {
        self.current().active.clone()
    }

    /// Every published key, active first.
    pub fn published(&self) -> Vec<Arc<SigningKey>> {
        self.current().published.clone()
    }

    /// When the key `kid` was retired, if it was.
    pub fn retired_at(&self, kid: &str) -> Option<UnixTime> {
        self.current()
            .rows
            .iter()
            .find(|r| r.kid == kid)
            .and_then(|r| r.retired_at)
    }

    /// The scheduled step, if one is due: publish the next key `prepublish` seconds before the
    /// active key's period ends, then activate it when its time comes. Two nodes doing this at
    /// once agree: the store admits one next key.
    pub async fn rotate_on_schedule(
        &self,
        store: &Store,
        master_key: &MasterKey,
        policy: RotationPolicy,
        now: UnixTime,
    ) -> Result<Option<Rotation>, KeyRingError> {
        let Some(period) = policy.period else {
            return Ok(None);
        };
        let set = self.current();
        let next = set.rows.iter().find(|r| r.status == "next");
        let active = set.rows.iter().find(|r| r.status == "active");
        let outcome = match (next, active) {
            (Some(next), _) if next.activates_at.is_some_and(|t| t <= now) => {
                self.activate_next(store, now).await?
            }
            (None, Some(active)) => {
                let since = active.activates_at.unwrap_or(active.created_at);
                let activates_at = since + period as i64;
                if now < activates_at - policy.prepublish as i64 {
                    return Ok(None);
                }
                self.publish_next(store, master_key, activates_at.max(now), now)
                    .await?
            }
            _ => None,
        };
        if outcome.is_some() {
            self.reload(store, master_key).await?;
        }
        Ok(outcome)
    }

    /// Manual rotation: the next key signs from now if one is published; otherwise a next key
    /// is published to sign `prepublish` seconds from now (resource servers see it first).
    pub async fn rotate_now(
        &self,
        store: &Store,
        master_key: &MasterKey,
        prepublish: u64,
        now: UnixTime,
    ) -> Result<Rotation, KeyRingError> {
        let has_next = self.current().rows.iter().any(|r| r.status == "next");
        let outcome = if has_next {
            self.activate_next(store, now).await?
        } else {
            self.publish_next(store, master_key, now + prepublish as i64, now)
                .await?
        };
        self.reload(store, master_key).await?;
        outcome.ok_or(KeyRingError::Generate)
    }

    /// Emergency rotation: a new key signs at once and every other key leaves the JWKS, so
    /// every token signed so far stops verifying. Returns the removed key IDs.
    pub async fn emergency_rotate(
        &self,
        store: &Store,
        master_key: &MasterKey,
        now: UnixTime,
    ) -> Result<(String, Vec<String>), KeyRingError> {
        let row = new_key(self.alg, master_key, now)?;
        let removed = store
            .replace_all_signing_keys(&row, now, created(&row, "emergency"))
            .await?;
        self.reload(store, master_key).await?;
        Ok((row.kid, removed))
    }

    async fn publish_next(
        &self,
        store: &Store,
        master_key: &MasterKey,
        activates_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<Rotation>, KeyRingError> {
        let row = new_key(self.alg, master_key, now)?;
        if !store
            .insert_next_signing_key(&row, activates_at, created(&row, "next"))
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Rotation::Published {
            kid: row.kid,
            activates_at,
        }))
    }

    async fn activate_next(
        &self,
        store: &Store,
        now: UnixTime,
    ) -> Result<Option<Rotation>, KeyRingError> {
        let set = self.current();
        let next = set
            .rows
            .iter()
            .find(|r| r.status == "next")
            .map(|r| r.kid.clone());
        let retired = set.active.kid().to_string();
        if !store.promote_next_signing_key(now).await? {
            return Ok(None);
        }
        Ok(next.map(|kid| Rotation::Activated { kid, retired }))
    }
}

/// A new key for `alg`, sealed with the master key (its `kid` as associated data).
fn new_key(
    alg: SigningAlgorithm,
    master_key: &MasterKey,
    now: UnixTime,
) -> Result<StoredSigningKey, KeyRingError> {
    let (key, pkcs8) = SigningKey::generate(alg).map_err(|_| KeyRingError::Generate)?;
    Ok(StoredSigningKey {
        kid: key.kid().to_string(),
        alg: alg.as_str().to_string(),
        private_key_sealed: master_key.seal(key.kid().as_bytes(), &pkcs8),
        status: "active".into(),
        created_at: now,
        retired_at: None,
        activates_at: Some(now),
    })
}

/// The audit record a new signing key is stored with (in the same transaction).
fn created(row: &StoredSigningKey, why: &str) -> AuditEvent {
    tracing::info!(kid = %row.kid, alg = %row.alg, reason = why, "generated a token signing key");
    AuditEvent::success(event::SIGNING_KEY_CREATED)
        .with_actor("system")
        .with_detail(serde_json::json!({ "kid": row.kid, "alg": row.alg, "reason": why }))
}

async fn load_set(store: &Store, master_key: &MasterKey) -> Result<KeySet, KeyRingError> {
    let rows = store.signing_keys().await?;
    let mut active = None;
    let mut next = Vec::new();
    let mut retired = Vec::new();
    for row in &rows {
        let key = Arc::new(open_key(row, master_key)?);
        match row.status.as_str() {
            "active" => active = Some(key),
            "next" => next.push(key),
            _ => retired.push(key),
        }
    }
    let active = active.ok_or(KeyRingError::Generate)?;
    let mut published = vec![active.clone()];
    published.extend(next);
    published.extend(retired);
    Ok(KeySet {
        active,
        published,
        rows,
    })
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
