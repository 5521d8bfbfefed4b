//! Aggregating worker results into throughput, latency percentiles and error counts, shown as a
//! table or JSON.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::load::{Mode, merge_counts};

/// What one worker saw during the measured period.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Latencies of successful (200) responses: what a client that got a token waited.
    pub latencies_us: Vec<u32>,
    pub statuses: HashMap<u16, u64>,
    pub errors: HashMap<String, u64>,
    pub signing: Duration,
    pub last_completion: Option<Instant>,
}

impl WorkerStats {
    pub fn record(&mut self, status: u16, latency: Duration) {
        if status == 200 {
            self.latencies_us
                .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        }
        *self.statuses.entry(status).or_default() += 1;
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct ServerUsage {
    pub cpu_seconds: Option<f64>,
    /// CPU seconds per measured second: 2.0 means both cores were busy.
    pub cpu_cores: Option<f64>,
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub connections: usize,
    pub seconds: f64,
    pub requests: u64,
    pub successes: u64,
    pub per_second: f64,
    pub latency: Latency,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    /// The load generator's own cost of signing each assertion (private-key-jwt), microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_signing_us: Option<f64>,
    pub server: ServerUsage,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

impl Report {
    pub fn new(
        mode: Mode,
        connections: usize,
        elapsed: Duration,
        stats: Vec<WorkerStats>,
        server_cpu: Option<f64>,
        peak_rss: Option<u64>,
    ) -> Self {
        let mut latencies: Vec<u32> = Vec::new();
        let mut statuses: HashMap<u16, u64> = HashMap::new();
        let mut errors: HashMap<String, u64> = HashMap::new();
        let mut signing = Duration::ZERO;
        for s in &stats {
            latencies.extend_from_slice(&s.latencies_us);
            for (k, v) in &s.statuses {
                *statuses.entry(*k).or_default() += v;
            }
            merge_counts(&mut errors, &s.errors);
            signing += s.signing;
        }
        latencies.sort_unstable();
        let requests = statuses.values().sum::<u64>();
        let successes = statuses.get(&200).copied().unwrap_or(0);
        let seconds = elapsed.as_secs_f64();
        Self {
            mode,
            connections,
            seconds,
            requests,
            successes,
            per_second: if seconds > 0.0 {
                successes as f64 / seconds
            } else {
                0.0
            },
            latency: Latency {
                p50_ms: percentile(&latencies, 50.0),
                p90_ms: percentile(&latencies, 90.0),
                p99_ms: percentile(&latencies, 99.0),
                max_ms: latencies
                    .last()
                    .map(|l| f64::from(*l) / 1000.0)
                    .unwrap_or(0.0),
            },
            statuses: statuses.into_iter().collect(),
            errors: errors.into_iter().collect(),
            client_signing_us: (mode == Mode::PrivateKeyJwt && requests > 0)
                .then(|| signing.as_secs_f64() * 1e6 / requests as f64),
            server: ServerUsage {
                cpu_seconds: server_cpu,
                cpu_cores: server_cpu.filter(|_| seconds > 0.0).map(|c| c / seconds),
                peak_rss_mb: peak_rss.map(|b| b as f64 / (1024.0 * 1024.0)),
            },
        }
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mode = serde_json::to_value(self.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "mode            {mode}, {} connections, {:.1} s measured\n",
            self.connections, self.seconds
        ));
        out.push_str(&format!(
            "requests        {} ({} OK)\n",
            self.requests, self.successes
        ));
        out.push_str(&format!("throughput      {:.0} OK/s\n", self.per_second));
        out.push_str(&format!(
            "latency ms (OK) p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n",
            self.latency.p50_ms, self.latency.p90_ms, self.latency.p99_ms, self.latency.max_ms
        ));
        if let Some(us) = self.client_signing_us {
            out.push_str(&format!(
                "client signing  {us:.1} µs per assertion (load generator's own cost)\n"
            ));
        }
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        out.push_str(&format!("statuses        {}\n", statuses.join(", ")));
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(e, n)| format!("{e}: {n}"))
                .collect();
            out.push_str(&format!("errors          {}\n", errors.join(", ")));
        }
        if let Some(cpu) = self.server.cpu_seconds {
            out.push_str(&format!(
                "server CPU      {cpu:.2} s ({:.2} cores)\n",
                self.server.cpu_cores.unwrap_or(0.0)
            ));
        }
        if let Some(rss) = self.server.peak_rss_mb {
            out.push_str(&format!("server peak RSS {rss:.1} MiB\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }

    #[test]
    fn the_report_counts_statuses_and_errors() {
        let mut a = WorkerStats::default();
        a.record(200, Duration::from_millis(1));
        a.record(401, Duration::from_millis(2));
        a.errors.insert("invalid_client".into(), 1);
        let mut b = WorkerStats::default();
        b.record(200, Duration::from_millis(3));
        let report = Report::new(
            Mode::SecretBasic,
            2,
            Duration::from_secs(1),
            vec![a, b],
            None,
            None,
        );
        assert_eq!(report.requests, 3);
        assert_eq!(report.successes, 2);
        assert_eq!(report.per_second, 2.0);
        assert_eq!(report.errors.get("invalid_client"), Some(&1));
        assert_eq!(report.latency.max_ms, 3.0);
    }
}
