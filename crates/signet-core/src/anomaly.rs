//! Anomaly detection over the live stream of audit events. Each rule turns events into alert
//! signals; the store deduplicates them (an open alert for the same rule and subject counts up
//! instead of multiplying), so a storm makes one alert with a count.
//!
//! Rules: a burst of failed authentications per agent and per source address; use of a stale,
//! expired or revoked credential; authentication from outside the agent's `allowed_cidrs`; an
//! agent authenticating from a network (IPv4 /24, IPv6 /64) it has not used recently; an agent
//! getting tokens far faster than its own baseline (per-minute counts, exponentially averaged).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::UnixTime;
use crate::audit::{AuditEvent, Outcome, event};

/// Which rules run and their thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyPolicy {
    /// Failures within `burst_window` that make a burst; 0 turns the burst rules off.
    pub burst_failures: u32,
    pub burst_window: i64,
    /// Alert on use of stale, expired or revoked credentials, and on `source_not_allowed`.
    pub credential_rules: bool,
    /// Alert when an agent authenticates from a network it has not used in this many days;
    /// 0 turns the rule off.
    pub new_network_days: u64,
    /// Alert when an agent's tokens in one minute exceed this many times its baseline; 0 turns
    /// the rule off.
    pub rate_factor: u32,
    /// Tokens in one minute below which no rate alert is raised, whatever the baseline.
    pub rate_min_per_minute: u32,
    /// Minutes of an agent's history (on this node) before its baseline counts, and the span
    /// of the moving average.
    pub rate_learning_minutes: u32,
}

/// The kinds of alert, with their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    FailureBurstAgent,
    FailureBurstSource,
    StaleCredential,
    ExpiredCredential,
    RevokedCredential,
    OutsideAllowedNetworks,
    NewNetwork,
    TokenRateSpike,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailureBurstAgent => "failure_burst_agent",
            Self::FailureBurstSource => "failure_burst_source",
            Self::StaleCredential => "stale_credential",
            Self::ExpiredCredential => "expired_credential",
            Self::RevokedCredential => "revoked_credential",
            Self::OutsideAllowedNetworks => "outside_allowed_networks",
            Self::NewNetwork => "new_network",
            Self::TokenRateSpike => "token_rate_spike",
        }
    }
}

/// An alert to raise (or to count on the open one for the same rule and subject).
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub rule: Rule,
    /// What the alert is about: the agent ID, or the source address for source rules.
    pub subject: String,
    pub agent_id: Option<String>,
    pub source: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Default)]
struct Window {
    start: UnixTime,
    count: u32,
}

/// One agent's token rate: the current minute's count and the moving average of past minutes.
#[derive(Debug, Clone, Copy)]
struct Rate {
    minute: i64,
    count: u32,
    baseline: f64,
    minutes_seen: u32,
}

impl Rate {
    /// Folds the finished minute, and the empty minutes since, into the baseline.
    fn advance(&mut self, minute: i64, alpha: f64) {
        if minute <= self.minute {
            return;
        }
        let count = f64::from(self.count);
        self.baseline = if self.minutes_seen == 0 {
            count
        } else {
            self.baseline + alpha * (count - self.baseline)
        };
        let idle = (minute - self.minute - 1).clamp(0, 100_000);
        self.baseline *= (1.0 - alpha).powi(idle as i32);
        self.minutes_seen = self
            .minutes_seen
            .saturating_add(1 + u32::try_from(idle).unwrap_or(u32::MAX));
        self.minute = minute;
        self.count = 0;
    }
}

/// The burst rules' counts, keyed by subjects callers choose (claimed agent IDs, addresses): at
/// most [`MAX_WINDOWS`], swept of ended windows at most once a second when full; while it is
/// still full, new subjects are not counted (existing ones are), so a flood of fresh subjects
/// costs neither memory nor a scan per request.
#[derive(Debug, Default)]
struct Windows {
    map: HashMap<(Rule, String), Window>,
    swept_at: UnixTime,
}

/// Agents' rates, sharded so that concurrent token requests rarely share a lock.
const RATE_SHARDS: usize = 16;

/// Per-node detector state (sliding counts for the burst rules, when each agent's network was
/// last checked against the store, and each agent's token rate).
#[derive(Debug)]
pub struct Detector {
    policy: AnomalyPolicy,
    windows: Mutex<Windows>,
    /// Hash of (agent, network) → when it was last checked.
    networks: Mutex<HashMap<u64, UnixTime>>,
    rates: [Mutex<HashMap<Box<str>, Rate>>; RATE_SHARDS],
}

/// The network an address belongs to for the new-network rule: IPv4 /24, IPv6 /64.
/// The key of an agent and a source's network in the detector's table of noted pairs.
fn network_key(agent_id: &str, source: std::net::IpAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    agent_id.hash(&mut hasher);
    match source {
        std::net::IpAddr::V4(v4) => v4.octets()[..3].hash(&mut hasher),
        std::net::IpAddr::V6(v6) => v6.segments()[..4].hash(&mut hasher),
    }
    hasher.finish()
}

pub fn network_of(address: std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// How often the store is asked about an (agent, network) pair this node has seen.
const NETWORK_CHECK_INTERVAL: i64 = 3600;

const MAX_WINDOWS: usize = 100_000;

impl Detector {
    pub fn new(policy: AnomalyPolicy) -> Self {
        Self {
            policy,
            windows: Mutex::new(Windows::default()),
            networks: Mutex::new(HashMap::new()),
            rates: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    /// For an issued token: a signal when the agent's tokens this minute reach `factor` times
    /// its baseline (and at least the minimum), once per minute. An agent with less history
    /// than the learning period has no baseline yet and raises nothing.
    pub fn observe_issued(&self, agent_id: &str, now: UnixTime) -> Option<Signal> {
        let policy = &self.policy;
        if policy.rate_factor == 0 {
            return None;
        }
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(agent_id);
        let minute = now.div_euclid(60);
        let learning = policy.rate_learning_minutes.max(1);
        let alpha = 2.0 / (f64::from(learning) + 1.0);
        let mut rates = self.rates[hash as usize % RATE_SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let rate = match rates.get_mut(agent_id) {
            Some(rate) => rate,
            None => {
                if rates.len() >= MAX_WINDOWS / RATE_SHARDS {
                    // Agents idle for a learning period have no baseline worth keeping.
                    rates.retain(|_, r| minute - r.minute < i64::from(learning));
                }
                let fresh = Rate {
                    minute,
                    count: 0,
                    baseline: 0.0,
                    minutes_seen: 0,
                };
                rates.entry(agent_id.into()).or_insert(fresh)
            }
        };
        rate.advance(minute, alpha);
        rate.count = rate.count.saturating_add(1);
        if rate.minutes_seen < learning {
            return None;
        }
        let threshold = (rate.baseline * f64::from(policy.rate_factor))
            .ceil()
            .max(f64::from(policy.rate_min_per_minute).max(1.0));
        (f64::from(rate.count) == threshold.min(f64::from(u32::MAX))).then(|| Signal {
            rule: Rule::TokenRateSpike,
            subject: agent_id.to_string(),
            agent_id: Some(agent_id.to_string()),
            source: None,
            detail: serde_json::json!({
                "tokens_this_minute": rate.count,
                "baseline_per_minute": (rate.baseline * 100.0).round() / 100.0,
                "factor": policy.rate_factor,
            }),
        })
    }

    /// For a successful authentication: the network to note in the agent's history (its last
    /// authentication, and the new-network rule when that is on), or `None` when this node
    /// noted the pair within the last hour (so the store is asked rarely, not per token).
    pub fn network_to_check(
        &self,
        agent_id: &str,
        source: std::net::IpAddr,
        now: UnixTime,
    ) -> Option<String> {
        let key = network_key(agent_id, source);
        let mut networks = self.networks.lock().unwrap_or_else(|e| e.into_inner());
        if networks.len() >= MAX_WINDOWS {
            networks.retain(|_, t| now - *t < NETWORK_CHECK_INTERVAL);
        }
        match networks.get(&key) {
            Some(t) if now - *t < NETWORK_CHECK_INTERVAL => None,
            _ => {
                networks.insert(key, now);
                Some(network_of(source))
            }
        }
    }

    /// Forgets that the pair was noted, so that the next authentication from it is noted again
    /// (when this one could not be).
    pub fn forget_network(&self, agent_id: &str, source: std::net::IpAddr) {
        let mut networks = self.networks.lock().unwrap_or_else(|e| e.into_inner());
        networks.remove(&network_key(agent_id, source));
    }

    /// How far back the new-network rule looks.
    pub fn new_network_days(&self) -> u64 {
        self.policy.new_network_days
    }

    /// The signals `event` raises.
    pub fn observe(&self, audit: &AuditEvent, now: UnixTime) -> Vec<Signal> {
        let mut signals = Vec::new();
        let authentication = matches!(
            audit.event_type.as_str(),
            event::TOKEN_REQUEST | event::INTROSPECTION | event::REVOCATION
        );
        if !authentication || audit.outcome != Outcome::Failure {
            return signals;
        }
        let reason = audit.reason.as_deref().unwrap_or_default();
        let signal = |rule: Rule, subject: &str| Signal {
            rule,
            subject: subject.to_string(),
            agent_id: audit.agent_id.clone(),
            source: audit.source.clone(),
            detail: serde_json::json!({ "reason": reason, "method": audit.method }),
        };
        if self.policy.credential_rules
            && let Some(agent) = audit.agent_id.as_deref()
        {
            let rule = match reason {
                "stale_secret" | "stale_certificate" => Some(Rule::StaleCredential),
                "expired_secret" | "key_expired" | "certificate_expired" => {
                    Some(Rule::ExpiredCredential)
                }
                "key_revoked" | "certificate_revoked" | "certificate_revoked_crl" => {
                    Some(Rule::RevokedCredential)
                }
                "source_not_allowed" => Some(Rule::OutsideAllowedNetworks),
                _ => None,
            };
            if let Some(rule) = rule {
                signals.push(signal(rule, agent));
            }
        }
        // Only failed authentication counts towards a burst, not a refused scope.
        let client_failure = !matches!(
            reason,
            "missing_grant_type"
                | "unsupported_grant_type"
                | "scope_not_allowed"
                | "malformed_scope"
                | "audience_not_allowed"
                | "store_unavailable"
                | "missing_token"
        );
        if self.policy.burst_failures > 0 && client_failure {
            // An address counts as its lock key: an IPv6 address by its /64.
            let source = audit.source.as_deref().map(|s| {
                s.parse()
                    .map_or_else(|_| s.to_string(), crate::lockout::source_key)
            });
            let keys = [
                (Rule::FailureBurstAgent, audit.agent_id.as_deref()),
                (Rule::FailureBurstSource, source.as_deref()),
            ];
            let mut guard = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let windows = &mut *guard;
            if windows.map.len() >= MAX_WINDOWS && windows.swept_at != now {
                let window = self.policy.burst_window;
                windows.map.retain(|_, w| now - w.start < window);
                windows.swept_at = now;
            }
            for (rule, subject) in keys {
                let Some(subject) = subject else { continue };
                let key = (rule, subject.to_string());
                if windows.map.len() >= MAX_WINDOWS && !windows.map.contains_key(&key) {
                    continue;
                }
                let window = windows.map.entry(key).or_default();
                if now - window.start >= self.policy.burst_window {
                    window.start = now;
                    window.count = 0;
                }
                window.count += 1;
                // One signal when the burst is reached, then one per further threshold's worth:
                // the open alert's count grows without a write per failure.
                if window.count.is_multiple_of(self.policy.burst_failures) {
                    let mut s = signal(rule, subject);
                    s.detail = serde_json::json!({
                        "failures": window.count,
                        "window_seconds": self.policy.burst_window,
                        "last_reason": reason,
                    });
                    signals.push(s);
                }
            }
        }
        signals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AnomalyPolicy {
        AnomalyPolicy {
            burst_failures: 3,
            burst_window: 60,
            credential_rules: true,
            new_network_days: 30,
            rate_factor: 5,
            rate_min_per_minute: 20,
            rate_learning_minutes: 3,
        }
    }

    #[test]
    fn a_token_rate_far_above_the_agents_baseline_signals_once_a_minute() {
        let d = Detector::new(policy());
        // Learning: 2 tokens a minute for five minutes, then steady traffic stays quiet.
        for minute in 0..10 {
            for second in [1, 30] {
                assert!(d.observe_issued("agt_a", minute * 60 + second).is_none());
            }
        }
        // 20 is the minimum (5 x 2 = 10 is below it): the 20th token this minute signals.
        let spike: Vec<Signal> = (0..40)
            .filter_map(|i| d.observe_issued("agt_a", 600 + i))
            .collect();
        assert_eq!(spike.len(), 1);
        assert_eq!(spike[0].rule, Rule::TokenRateSpike);
        assert_eq!(spike[0].subject, "agt_a");
        assert_eq!(spike[0].detail["tokens_this_minute"], 20);
        // Another agent without history: no baseline, no alert.
        assert!((0..100).all(|i| d.observe_issued("agt_new", 600 + i % 60).is_none()));
    }

    #[test]
    fn a_busy_agent_needs_factor_times_its_baseline() {
        let d = Detector::new(policy());
        for minute in 0..6 {
            for i in 0..50 {
                assert!(d.observe_issued("agt_busy", minute * 60 + i).is_none());
            }
        }
        // Baseline 50 a minute: 100 tokens is busy, not a spike; 250 is.
        let signals = (0..300)
            .filter_map(|i| d.observe_issued("agt_busy", 360 + i / 6))
            .count();
        assert_eq!(signals, 1);
        // Idle minutes decay the baseline.
        let d = Detector::new(policy());
        for minute in 0..4 {
            for i in 0..30 {
                d.observe_issued("agt_b", minute * 60 + i);
            }
        }
        let late: Vec<_> = (0..20)
            .filter_map(|i| d.observe_issued("agt_b", 100 * 60 + i))
            .collect();
        assert_eq!(
            late.len(),
            1,
            "after a long idle stretch the minimum applies"
        );
    }

    #[test]
    fn networks_are_checked_once_an_hour_per_agent() {
        let d = Detector::new(policy());
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert_eq!(network_of(ip("10.1.2.3")), "10.1.2.0/24");
        assert_eq!(network_of(ip("2001:db8:1:2:3::4")), "2001:db8:1:2::/64");
        assert_eq!(
            d.network_to_check("agt_a", ip("10.1.2.3"), 0).as_deref(),
            Some("10.1.2.0/24")
        );
        assert_eq!(d.network_to_check("agt_a", ip("10.1.2.99"), 10), None);
        assert!(d.network_to_check("agt_a", ip("10.9.9.9"), 10).is_some());
        assert!(d.network_to_check("agt_a", ip("10.1.2.3"), 4000).is_some());
    }

    fn failure(reason: &str, agent: &str, source: &str) -> AuditEvent {
        AuditEvent::failure(event::TOKEN_REQUEST, reason)
            .with_agent(Some(agent))
            .with_source(Some(source.to_string()), None)
    }

    #[test]
    fn bursts_signal_at_the_threshold_per_agent_and_source() {
        let d = Detector::new(policy());
        let e = failure("wrong_secret", "agt_a", "10.0.0.1");
        assert!(d.observe(&e, 0).is_empty());
        assert!(d.observe(&e, 1).is_empty());
        let signals = d.observe(&e, 2);
        let rules: Vec<Rule> = signals.iter().map(|s| s.rule).collect();
        assert_eq!(rules, [Rule::FailureBurstAgent, Rule::FailureBurstSource]);
        assert!(d.observe(&e, 3).is_empty());
        // A new window starts over.
        assert!(d.observe(&e, 100).is_empty());
    }

    #[test]
    fn sources_count_by_network_and_the_table_has_a_ceiling() {
        let d = Detector::new(policy());
        // Three addresses of one /64: one source.
        let mut signals = Vec::new();
        for (t, address) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
            .into_iter()
            .enumerate()
        {
            signals = d.observe(&failure("wrong_secret", "agt_x", address), t as i64);
        }
        let source = signals.iter().find(|s| s.rule == Rule::FailureBurstSource);
        assert_eq!(
            source.map(|s| s.subject.as_str()),
            Some("2001:db8:1:2::/64")
        );

        // A flood of fresh addresses fills the table to its ceiling and no further.
        let d = Detector::new(policy());
        for i in 0..MAX_WINDOWS as u32 + 1_000 {
            let address = std::net::Ipv4Addr::from(i).to_string();
            d.observe(&failure("wrong_secret", "agt_x", &address), 0);
        }
        let size = |d: &Detector| d.windows.lock().expect("lock").map.len();
        assert_eq!(size(&d), MAX_WINDOWS);
        // Counted subjects still count; once their windows end, new ones are counted again.
        let known = failure("wrong_secret", "agt_x", "0.0.0.5");
        let by_source = |signals: Vec<Signal>| {
            signals
                .iter()
                .any(|s| s.rule == Rule::FailureBurstSource && s.subject == "0.0.0.5")
        };
        assert!(!by_source(d.observe(&known, 1)));
        assert!(by_source(d.observe(&known, 2)), "its third failure");
        let later = policy().burst_window + 10;
        d.observe(&failure("wrong_secret", "agt_y", "192.0.2.1"), later);
        assert!(size(&d) < 10, "{}", size(&d));
    }

    #[test]
    fn credential_rules_and_quiet_traffic() {
        let d = Detector::new(policy());
        let stale = d.observe(&failure("stale_secret", "agt_a", "10.0.0.1"), 0);
        assert_eq!(stale[0].rule, Rule::StaleCredential);
        assert_eq!(stale[0].subject, "agt_a");
        let outside = d.observe(&failure("source_not_allowed", "agt_b", "10.0.0.2"), 0);
        assert_eq!(outside[0].rule, Rule::OutsideAllowedNetworks);
        let ok = AuditEvent::success(event::TOKEN_REQUEST).with_agent(Some("agt_a"));
        for t in 0..100 {
            assert!(d.observe(&ok, t).is_empty());
        }
        let scope = failure("scope_not_allowed", "agt_c", "10.0.0.3");
        for t in 0..10 {
            assert!(
                d.observe(&scope, t).is_empty(),
                "a refused scope is not an attack"
            );
        }
    }
}
