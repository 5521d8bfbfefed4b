//! The in-memory cache of agents and their credentials, so the token endpoint authenticates a
//! known agent without a database read, and of agent IDs known not to exist, so that an unknown
//! agent costs no read either after the first (and takes as long as a wrong secret). This is the
//! only place that knows about staleness: every store method that changes an agent or its
//! credentials (creation included) invalidates the entry.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use signet_core::client_auth::AgentCredentials;

/// Entries beyond this are dropped wholesale; a miss costs one indexed read.
const CAPACITY: usize = 200_000;
/// Unknown agent IDs remembered; beyond this they are forgotten wholesale.
const ABSENT_CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct AgentCache {
    entries: RwLock<HashMap<String, Arc<AgentCredentials>>>,
    /// Agent IDs the database did not have.
    absent: RwLock<HashSet<String>>,
    /// Counts invalidations, so that a read that started before one does not cache what it read.
    generation: AtomicU64,
    /// Lookups that went to the database.
    misses: AtomicU64,
    /// One lock per agent ID being read from the database: concurrent misses for one agent
    /// (a cold start, or every request of a busy agent just after a change) wait for one read
    /// instead of each reading.
    loading: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl AgentCache {
    pub fn get(&self, agent_id: &str) -> Option<Arc<AgentCredentials>> {
        self.entries.read().ok()?.get(agent_id).cloned()
    }

    /// Whether `agent_id` is known not to exist.
    pub fn is_absent(&self, agent_id: &str) -> bool {
        self.absent
            .read()
            .is_ok_and(|absent| absent.contains(agent_id))
    }

    /// The lock to hold while reading `agent_id` from the database; whoever waited for it
    /// looks in the cache again before reading.
    pub fn loading(&self, agent_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = loading.get(agent_id).and_then(Weak::upgrade) {
            return lock;
        }
        if loading.len() >= ABSENT_CAPACITY {
            loading.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        loading.insert(agent_id.to_owned(), Arc::downgrade(&lock));
        lock
    }

    /// Counts a lookup that goes to the database.
    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Remembers that the database had no `agent_id`, unless something was invalidated since
    /// `generation`.
    pub fn insert_absent(&self, agent_id: &str, generation: u64) {
        if let Ok(mut absent) = self.absent.write() {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            if absent.len() >= ABSENT_CAPACITY {
                absent.clear();
            }
            absent.insert(agent_id.to_owned());
        }
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
        if let Ok(mut absent) = self.absent.write() {
            absent.remove(agent_id);
        }
    }

    /// Drops every entry (after a change that touched many agents).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
        if let Ok(mut absent) = self.absent.write() {
            absent.clear();
        }
    }
}
