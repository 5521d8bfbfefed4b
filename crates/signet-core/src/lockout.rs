//! Brute-force protection: failed client authentications are counted per agent and per source
//! address; past a threshold within a window the agent (or address) is locked for a back-off
//! period that doubles with each lock, up to a maximum. While locked, requests are refused
//! without a database read or write; a lock's start and end are reported once, with how many
//! requests it refused. State is in memory, per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::UnixTime;

/// The limits, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window` that lock; 0 disables locking.
    pub threshold: u32,
    pub window: i64,
    /// The first lock's length; each further lock within `max` doubles it.
    pub base: i64,
    pub max: i64,
}

/// What is locked: an agent ID, a source address or a console username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    Agent,
    Source,
    /// A console username (failed sign-ins from many addresses).
    ConsoleUser,
    /// A source address refused at the operators' surfaces (bad admin tokens, console forms
    /// from another site): kept apart from `Source`, so that a misconfigured script does not
    /// lock the agents behind the same address out of the token endpoint.
    OperatorSource,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Source => "source",
            Self::ConsoleUser => "console_user",
            Self::OperatorSource => "operator_source",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agent" => Some(Self::Agent),
            "source" => Some(Self::Source),
            "console_user" => Some(Self::ConsoleUser),
            "operator_source" => Some(Self::OperatorSource),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Failures in the current window, and when it began; failures in the window before it.
    failures: u32,
    window_start: UnixTime,
    previous: u32,
    locked_until: Option<UnixTime>,
    locked_at: UnixTime,
    /// When the last lock ended (or ends): kept after the lock is over, so that the back-off
    /// forgives only a quiet period longer than the maximum lock.
    last_lock_end: Option<UnixTime>,
    /// How many locks in a row (for the back-off), and requests refused by the current one.
    strikes: u32,
    refused: u64,
}

/// The key a source address is counted under: an IPv4 address as itself, an IPv6 address by
/// its /64 (one subscriber's or host's allocation: a fresh address from it each attempt would
/// otherwise never lock).
pub fn source_key(address: std::net::IpAddr) -> String {
    match address.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        // Inside a site (unique local, link-local, loopback) a /64 is a shared network, e.g. a
        // Kubernetes node's pods: each address counts as itself there.
        std::net::IpAddr::V6(v6) if !is_global_unicast(v6) => v6.to_string(),
        std::net::IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

/// Global unicast (2000::/3), where a /64 is one subscriber's or host's allocation.
fn is_global_unicast(address: std::net::Ipv6Addr) -> bool {
    address.segments()[0] & 0xe000 == 0x2000
}

/// A lock as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub kind: LockKind,
    pub key: String,
    pub locked_at: UnixTime,
    pub until: UnixTime,
    pub refused: u64,
}

/// A change worth an audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockEvent {
    Started { lock: Lock, failures: u32 },
    Ended { lock: Lock },
}

/// Per-node lock state.
#[derive(Debug)]
pub struct Lockouts {
    policy: LockoutPolicy,
    entries: Mutex<Table>,
    /// How many entries exist, so that the usual case (no failures anywhere) takes no lock.
    tracked: AtomicUsize,
}

/// Entries kept at most (an attacker rotating agent IDs or addresses cannot grow memory without
/// bound); see [`Table::make_room`].
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
struct Table {
    map: HashMap<(LockKind, String), Entry>,
    /// When room was last made (at most once a second, however many failures arrive).
    swept_at: UnixTime,
}

impl Table {
    /// Frees room in a full table: entries with nothing to remember first, then those with a
    /// single recent failure (the bulk of a flood of fresh agent IDs or addresses), then those
    /// below half the threshold. Locks, back-off histories and keys under sustained guessing are
    /// kept; while the table is still full, new keys are not counted (the ones in it are).
    fn make_room(&mut self, now: UnixTime, policy: &LockoutPolicy) {
        if self.map.len() < MAX_ENTRIES || self.swept_at == now {
            return;
        }
        self.swept_at = now;
        self.map.retain(|_, e| !e.idle(now, policy));
        for floor in [2.0, f64::from(policy.threshold) / 2.0] {
            if self.map.len() < MAX_ENTRIES * 9 / 10 {
                return;
            }
            self.map.retain(|_, e| {
                e.locked_until.is_some() || e.strikes > 0 || e.recent_failures(now, policy) >= floor
            });
        }
    }
}

impl Lockouts {
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            entries: Mutex::new(Table::default()),
            tracked: AtomicUsize::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.policy.threshold > 0
    }

    /// Seconds until the first of `keys` that is locked opens again, counting the refusal; the
    /// events of locks that have ended in the meantime.
    pub fn check(&self, keys: &[(LockKind, &str)], now: UnixTime) -> (Option<i64>, Vec<LockEvent>) {
        if !self.enabled() || self.tracked.load(Ordering::Relaxed) == 0 {
            return (None, Vec::new());
        }
        let mut table = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut events = Vec::new();
        let mut retry_after = None;
        for (kind, key) in keys {
            let Some(entry) = table.map.get_mut(&(*kind, key.to_string())) else {
                continue;
            };
            match entry.locked_until {
                Some(until) if until > now => {
                    entry.refused += 1;
                    retry_after = Some(retry_after.unwrap_or(0).max(until - now));
                }
                Some(until) => events.push(entry.end(*kind, key, until)),
                None => {}
            }
        }
        (retry_after, events)
    }

    /// The locks that have run out since they were last looked at (each reported once), so
    /// that every lock's end is on record even if its agent or address never comes back. Also
    /// forgets entries with nothing left to remember, so that a quiet server's token requests
    /// take no lock here.
    pub fn ended(&self, now: UnixTime) -> Vec<LockEvent> {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let policy = self.policy;
        let mut table = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut events = Vec::new();
        for ((kind, key), entry) in table.map.iter_mut() {
            if let Some(until) = entry.locked_until.filter(|t| *t <= now) {
                events.push(entry.end(*kind, key, until));
            }
        }
        table.map.retain(|_, e| !e.idle(now, &policy));
        self.tracked.store(table.map.len(), Ordering::Relaxed);
        events
    }

    /// Counts a failed authentication; returns the locks it started.
    pub fn failure(&self, keys: &[(LockKind, &str)], now: UnixTime) -> Vec<LockEvent> {
        if !self.enabled() {
            return Vec::new();
        }
        let policy = self.policy;
        let window = policy.window.max(1);
        let mut table = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        table.make_room(now, &policy);
        let mut events = Vec::new();
        for (kind, key) in keys {
            let id = (*kind, key.to_string());
            if table.map.len() >= MAX_ENTRIES && !table.map.contains_key(&id) {
                continue;
            }
            let entry = table.map.entry(id).or_default();
            if entry.locked_until.is_some_and(|t| t > now) {
                continue;
            }
            // A quiet period longer than the longest lock forgives earlier strikes.
            if entry.last_lock_end.is_some_and(|t| now - t > policy.max) {
                entry.strikes = 0;
                entry.last_lock_end = None;
            }
            let elapsed = now - entry.window_start;
            if elapsed >= window || elapsed < 0 {
                // Consecutive windows of `window` seconds; the one just ended still counts,
                // weighted by how much of it lies within `window` of now.
                let passed = elapsed.div_euclid(window);
                entry.previous = if passed == 1 { entry.failures } else { 0 };
                entry.window_start = if passed >= 1 {
                    entry.window_start + passed * window
                } else {
                    now
                };
                entry.failures = 0;
            }
            entry.failures += 1;
            if entry.recent_failures(now, &policy) >= f64::from(policy.threshold) {
                let length = policy
                    .base
                    .saturating_mul(1_i64 << entry.strikes.min(20))
                    .min(policy.max);
                entry.strikes += 1;
                entry.locked_at = now;
                entry.locked_until = Some(now + length);
                entry.last_lock_end = Some(now + length);
                entry.refused = 0;
                events.push(LockEvent::Started {
                    lock: lock(*kind, key, entry, now + length),
                    failures: entry.recent_failures(now, &policy).round() as u32,
                });
                entry.failures = 0;
                entry.previous = 0;
            }
        }
        self.tracked.store(table.map.len(), Ordering::Relaxed);
        events
    }

    /// A successful authentication clears the agent's and the source's failure counts.
    pub fn success(&self, keys: &[(LockKind, &str)]) {
        if !self.enabled() || self.tracked.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut table = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, key) in keys {
            if let Some(entry) = table.map.get_mut(&(*kind, key.to_string()))
                && entry.locked_until.is_none()
            {
                entry.failures = 0;
                entry.previous = 0;
            }
        }
    }

    /// The locks in force.
    pub fn locks(&self, now: UnixTime) -> Vec<Lock> {
        let table = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut locks: Vec<Lock> = table
            .map
            .iter()
            .filter_map(|((kind, key), e)| {
                e.locked_until
                    .filter(|until| *until > now)
                    .map(|until| lock(*kind, key, e, until))
            })
            .collect();
        locks.sort_by(|a, b| a.locked_at.cmp(&b.locked_at).then(a.key.cmp(&b.key)));
        locks
    }

    /// An operator lifts a lock; returns it if there was one.
    pub fn lift(&self, kind: LockKind, key: &str, now: UnixTime) -> Option<Lock> {
        let mut table = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.map.get_mut(&(kind, key.to_string()))?;
        let until = entry.locked_until.filter(|t| *t > now)?;
        let lifted = lock(kind, key, entry, until);
        entry.locked_until = None;
        entry.last_lock_end = None;
        entry.failures = 0;
        entry.previous = 0;
        entry.strikes = 0;
        entry.refused = 0;
        Some(lifted)
    }
}

impl Entry {
    /// A lock that ran out at `until`: its end, reported once, and a fresh count.
    fn end(&mut self, kind: LockKind, key: &str, until: UnixTime) -> LockEvent {
        let ended = LockEvent::Ended {
            lock: lock(kind, key, self, until),
        };
        self.locked_until = None;
        self.failures = 0;
        self.previous = 0;
        self.refused = 0;
        ended
    }

    /// Failures within the last `window` seconds, as a sliding window estimates them: this
    /// window's, and the previous window's share that still overlaps.
    fn recent_failures(&self, now: UnixTime, policy: &LockoutPolicy) -> f64 {
        let window = policy.window.max(1);
        let into = (now - self.window_start).clamp(0, window);
        let overlap = (window - into) as f64 / window as f64;
        f64::from(self.failures) + f64::from(self.previous) * overlap
    }

    /// Nothing worth keeping: not locked, no failure in the last two windows, and the last lock
    /// (if any) long enough ago to be forgiven.
    fn idle(&self, now: UnixTime, policy: &LockoutPolicy) -> bool {
        // Two windows: the one just ended still counts in the sliding window.
        self.locked_until.is_none()
            && now - self.window_start >= 2 * policy.window.max(1)
            && self.last_lock_end.is_none_or(|t| now - t > policy.max)
    }
}

fn lock(kind: LockKind, key: &str, entry: &Entry, until: UnixTime) -> Lock {
    Lock {
        kind,
        key: key.to_string(),
        locked_at: entry.locked_at,
        until,
        refused: entry.refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            threshold: 3,
            window: 60,
            base: 30,
            max: 300,
        }
    }

    #[test]
    fn locks_after_the_threshold_and_backs_off() {
        let l = Lockouts::new(policy());
        let keys = [(LockKind::Agent, "agt_a")];
        assert!(l.failure(&keys, 0).is_empty());
        assert!(l.failure(&keys, 1).is_empty());
        let started = l.failure(&keys, 2);
        assert!(
            matches!(&started[..], [LockEvent::Started { lock, failures: 3 }] if lock.until == 32)
        );
        assert_eq!(l.check(&keys, 10).0, Some(22));
        assert_eq!(l.locks(10)[0].refused, 1);
        // When it ends, the end is reported once with what it refused: by the sweep, or by
        // the next request, whichever looks first.
        assert!(l.ended(31).is_empty());
        let ended = l.ended(40);
        assert!(matches!(&ended[..], [LockEvent::Ended { lock }] if lock.refused == 1));
        let (retry, ended) = l.check(&keys, 40);
        assert_eq!((retry, ended), (None, Vec::new()));
        assert!(l.ended(41).is_empty());
        // A second lock soon after lasts twice as long.
        for t in 41..44 {
            l.failure(&keys, t);
        }
        assert_eq!(l.check(&keys, 43).0, Some(60));
    }

    /// Each lock soon after the last one ends doubles, up to the maximum, however the windows
    /// fall; a quiet period longer than the maximum starts over.
    #[test]
    fn the_back_off_doubles_up_to_the_maximum_across_windows() {
        let l = Lockouts::new(policy());
        let keys = [(LockKind::Agent, "agt_a")];
        let mut now = 1_000;
        let mut lengths = Vec::new();
        for _ in 0..6 {
            // An attacker waits out each lock (ending it) and starts again a minute later, in
            // a new window each time.
            let mut started = Vec::new();
            for _ in 0..3 {
                now += 1;
                started = l.failure(&keys, now);
            }
            let [LockEvent::Started { lock, .. }] = &started[..] else {
                panic!("no lock at {now}: {started:?}");
            };
            lengths.push(lock.until - now);
            now = lock.until;
            assert!(matches!(
                &l.check(&keys, now).1[..],
                [LockEvent::Ended { .. }]
            ));
            now += 61;
        }
        assert_eq!(lengths, [30, 60, 120, 240, 300, 300]);
        // Quiet for longer than the longest lock: the next lock is the first again.
        now += 301;
        for _ in 0..3 {
            now += 1;
            l.failure(&keys, now);
        }
        assert_eq!(l.check(&keys, now).0, Some(30));
    }

    /// Failures on both sides of a window's end add up (fixed windows would let nearly twice
    /// the threshold through across the boundary); older ones fade.
    #[test]
    fn failures_across_a_window_boundary_add_up() {
        let l = Lockouts::new(policy());
        let keys = [(LockKind::Source, "10.0.0.9")];
        l.failure(&keys, 58);
        l.failure(&keys, 59);
        assert!(matches!(
            &l.failure(&keys, 60)[..],
            [LockEvent::Started { .. }]
        ));
        // Two failures a window ago and one now, well into the next window: not three recent.
        let l = Lockouts::new(policy());
        l.failure(&keys, 1);
        l.failure(&keys, 2);
        assert!(l.failure(&keys, 115).is_empty());
        assert!(l.failure(&keys, 116).is_empty());
        assert_eq!(l.check(&keys, 116).0, None);
    }

    /// Fresh agent IDs by the hundred thousand (one failure each) fill the table; the flood is
    /// what makes room, not the agent under sustained guessing, which still locks.
    #[test]
    fn a_flood_of_fresh_keys_does_not_wipe_a_victims_count() {
        let l = Lockouts::new(LockoutPolicy {
            threshold: 20,
            ..policy()
        });
        let victim = [(LockKind::Agent, "agt_victim")];
        for t in 0..10 {
            l.failure(&victim, t);
        }
        for i in 0..MAX_ENTRIES + 5_000 {
            let junk = format!("agt_junk{i}");
            l.failure(
                &[(LockKind::Agent, junk.as_str())],
                10 + (i / 40_000) as i64,
            );
        }
        let size = l.entries.lock().expect("lock").map.len();
        assert!(size <= MAX_ENTRIES, "{size}");
        let started: usize = (0..10).map(|t| l.failure(&victim, 20 + t).len()).sum();
        assert_eq!(started, 1, "the victim's twentieth failure locks it");
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let key = |text: &str| source_key(text.parse().expect("address"));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9"), key("2001:db8:1:2::5"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        // Inside a site each address counts as itself (a node's pods share a /64).
        assert_eq!(key("fd00:10:244:1::7"), "fd00:10:244:1::7");
        assert_eq!(key("fe80::1"), "fe80::1");
        assert_eq!(key("::1"), "::1");
    }

    #[test]
    fn failures_outside_the_window_and_successes_do_not_add_up() {
        let l = Lockouts::new(policy());
        let keys = [(LockKind::Source, "10.0.0.1")];
        l.failure(&keys, 0);
        l.failure(&keys, 1);
        l.failure(&keys, 100);
        assert_eq!(l.check(&keys, 100).0, None);
        l.failure(&keys, 101);
        l.success(&keys);
        l.failure(&keys, 102);
        assert_eq!(l.check(&keys, 102).0, None);
    }

    #[test]
    fn an_operator_lifts_a_lock_and_disabled_means_never() {
        let l = Lockouts::new(policy());
        let keys = [(LockKind::Agent, "agt_a")];
        for t in 0..3 {
            l.failure(&keys, t);
        }
        assert!(l.lift(LockKind::Agent, "agt_a", 5).is_some());
        assert_eq!(l.check(&keys, 5).0, None);
        assert!(l.lift(LockKind::Agent, "agt_a", 5).is_none());
        let off = Lockouts::new(LockoutPolicy {
            threshold: 0,
            ..policy()
        });
        for t in 0..100 {
            off.failure(&keys, t);
        }
        assert_eq!(off.check(&keys, 100).0, None);
    }
}
