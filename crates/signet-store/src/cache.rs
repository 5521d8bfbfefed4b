//! The in-memory cache of agents and their credentials, so the token endpoint authenticates a
//! known agent without a database read. This is the only place that knows about staleness:
//! every store method that changes an agent or its credentials invalidates the entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use signet_core::client_auth::AgentCredentials;

/// Entries beyond this are dropped wholesale; a miss costs one indexed read.
const CAPACITY: usize = 200_000;

#[derive(Debug, Default)]
pub struct AgentCache {
    entries: RwLock<HashMap<String, Arc<AgentCredentials>>>,
    /// Counts invalidations, so that a read that started before one does not cache what it read.
    generation: AtomicU64,
}

impl AgentCache {
    pub fn get(&self, agent_id: &str) -> Option<Arc<AgentCredentials>> {
        self.entries.read().ok()?.get(agent_id).cloned()
    }

    /// The generation to pass to [`Self::insert`]: take it before reading the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches what was read, unless something was invalidated since `generation` (the read may
    /// predate that change; the next request reads again).
    pub fn insert(&self, credentials: Arc<AgentCredentials>, generation: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(credentials.agent.agent_id.to_string(), credentials);
        }
    }

    pub fn invalidate(&self, agent_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.remove(agent_id);
        }
    }

    /// Drops every entry (after a change that touched many agents).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }
}
