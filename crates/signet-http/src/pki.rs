//! Mutual TLS state shared by the handlers: the CAs trusted for `tls_client_auth` with their
//! CRLs (reloaded when the files change), the operator revocations (reloaded after every change
//! and periodically), and Signet's agent CA, loaded once with its key unsealed.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use signet_core::config::MtlsConfig;
use signet_core::crypto::{MasterKey, sha256};
use signet_core::pki::certificate::{pem_blocks, pem_certificates};
use signet_core::pki::{AgentCa, RevokedCertificates, TrustStore};
use signet_store::{Store, StoreError, StoredAgentCa};

/// The sealing context (AES-GCM additional data) of the agent CA's private key.
const AGENT_CA_CONTEXT: &[u8] = b"signet-agent-ca";

/// Trust, revocations and the agent CA. Readers take an `Arc` snapshot; reloads swap it.
#[derive(Debug)]
pub struct PkiState {
    trust: RwLock<Arc<TrustStore>>,
    revoked: RwLock<Arc<RevokedCertificates>>,
    agent_ca: Option<Arc<AgentCa>>,
    /// SHA-256 over the CA and CRL files last loaded, to notice changes.
    files_digest: Mutex<Option<[u8; 32]>>,
}

/// Why the agent CA could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AgentCaError {
    #[error(
        "the agent CA key cannot be decrypted: is SIGNET_MASTER_KEY the key this database was created with?"
    )]
    Unseal,
    #[error("agent CA: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PkiState {
    pub fn new(agent_ca: Option<AgentCa>) -> Self {
        Self {
            trust: RwLock::new(Arc::new(TrustStore::default())),
            revoked: RwLock::new(Arc::new(RevokedCertificates::default())),
            agent_ca: agent_ca.map(Arc::new),
            files_digest: Mutex::new(None),
        }
    }

    pub fn trust(&self) -> Arc<TrustStore> {
        self.trust.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn revoked(&self) -> Arc<RevokedCertificates> {
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn agent_ca(&self) -> Option<&Arc<AgentCa>> {
        self.agent_ca.as_ref()
    }

    /// Reads the operator revocations from the database.
    pub async fn reload_revocations(&self, store: &Store) -> Result<(), StoreError> {
        let records = store.certificate_revocations().await?;
        let set = RevokedCertificates::new(records.into_iter().map(|r| r.revocation));
        *self.revoked.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Loads the client CA bundle and CRL files if they changed since the last call. Returns
    /// whether anything was (re)loaded; on an error the previous trust stays in force.
    pub fn reload_trust(&self, config: &MtlsConfig) -> Result<bool, String> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(path) = &config.client_ca_file {
            files.push(read("SIGNET_CLIENT_CA_FILE", path)?);
        }
        for path in &config.client_crl_files {
            files.push(read("SIGNET_CLIENT_CRL_FILES", path)?);
        }
        let mut all = Vec::new();
        for (_, bytes) in &files {
            all.extend_from_slice(&sha256(bytes));
        }
        let digest = sha256(&all);
        let mut last = self.files_digest.lock().unwrap_or_else(|e| e.into_inner());
        if *last == Some(digest) {
            return Ok(false);
        }
        let mut cas = Vec::new();
        let mut crls = Vec::new();
        let mut files = files.into_iter();
        if config.client_ca_file.is_some()
            && let Some((name, bytes)) = files.next()
        {
            let text = String::from_utf8_lossy(&bytes);
            let found = pem_certificates(&text).map_err(|e| format!("{name}: {e}"))?;
            if found.is_empty() {
                return Err(format!("{name}: no CERTIFICATE block"));
            }
            cas.extend(found);
        }
        for (name, bytes) in files {
            if bytes.starts_with(b"-----") || bytes.windows(5).any(|w| w == b"-----") {
                let text = String::from_utf8_lossy(&bytes);
                let found = pem_blocks(&text, "X509 CRL").map_err(|e| format!("{name}: {e}"))?;
                if found.is_empty() {
                    return Err(format!("{name}: no X509 CRL block"));
                }
                crls.extend(found);
            } else {
                crls.push(bytes);
            }
        }
        if let Some(ca) = &self.agent_ca {
            cas.push(ca.certificate().der().to_vec());
        }
        let store = TrustStore::new(&cas, &crls).map_err(|e| e.to_string())?;
        tracing::info!(
            cas = store.authorities().len(),
            crls = store.crl_count(),
            "trusted client CAs loaded"
        );
        *self.trust.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(store);
        *last = Some(digest);
        Ok(true)
    }
}

fn read(setting: &str, path: &Path) -> Result<(String, Vec<u8>), String> {
    let name = format!("{setting} {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() > 16 * 1024 * 1024 {
        return Err(format!("{name}: larger than 16 MiB"));
    }
    Ok((name, bytes))
}

/// Loads the agent CA, creating it on first start. When several nodes start at once, the first
/// stored CA wins and every node uses it.
pub async fn load_agent_ca(
    store: &Store,
    master_key: &MasterKey,
    now: signet_core::UnixTime,
) -> Result<AgentCa, AgentCaError> {
    let stored = match store.agent_ca().await? {
        Some(stored) => stored,
        None => {
            let (ca, pkcs8) = AgentCa::generate("Signet agent CA", now)
                .map_err(|e| AgentCaError::Invalid(e.to_string()))?;
            let row = StoredAgentCa {
                certificate: ca.certificate().der().to_vec(),
                private_key_sealed: master_key.seal(AGENT_CA_CONTEXT, &pkcs8),
                created_at: now,
            };
            store.insert_agent_ca(&row).await?
        }
    };
    let pkcs8 = master_key
        .open(AGENT_CA_CONTEXT, &stored.private_key_sealed)
        .map_err(|_| AgentCaError::Unseal)?;
    AgentCa::from_parts(&stored.certificate, &pkcs8)
        .map_err(|e| AgentCaError::Invalid(e.to_string()))
}
