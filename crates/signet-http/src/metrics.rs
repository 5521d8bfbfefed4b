//! `GET /metrics`: Prometheus text format (version 0.0.4). Token requests by method and
//! outcome, failures by reason, token endpoint latency, audit writer batches and queue, the
//! database pool, locks in force. Labels are bounded: methods and reasons come from fixed sets
//! (an unknown reason is counted as `other`), and there are no per-agent labels.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use signet_store::BATCH_SIZE_BOUNDS;

use crate::state::AppState;

/// Latency bucket bounds in seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Most distinct reasons kept; more are counted as `other`.
const MAX_REASONS: usize = 128;

/// The counters, updated on the hot path with relaxed atomics (a short lock for reasons).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per method (in [`METHODS`] order), successes and failures.
    requests: [[AtomicU64; 2]; METHODS.len()],
    failures: Mutex<HashMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// The method labels: the registered names, and `none` before one was recognised.
const METHODS: [&str; 6] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
    "none",
];

fn method_index(method: Option<&str>) -> usize {
    method
        .and_then(|m| METHODS.iter().position(|known| *known == m))
        .unwrap_or(METHODS.len() - 1)
}

impl Metrics {
    /// Counts one token request and its latency.
    pub fn token_request(&self, method: Option<&str>, failure: Option<&str>, elapsed: Duration) {
        self.requests[method_index(method)][usize::from(failure.is_some())].fetch_add(1, Relaxed);
        if let Some(reason) = failure
            && let Ok(mut failures) = self.failures.lock()
        {
            let known = failures.contains_key(reason) || failures.len() < MAX_REASONS;
            let valid = reason.len() <= 64
                && reason
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
            let label = if known && valid { reason } else { "other" };
            *failures.entry(label.to_string()).or_default() += 1;
        }
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The metrics in Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "signet_token_requests_total",
        "counter",
        "Token requests by client authentication method and outcome.",
    );
    for (method, counts) in METHODS.iter().zip(&m.requests) {
        for (outcome, count) in ["success", "failure"].iter().zip(counts) {
            let count = count.load(Relaxed);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "signet_token_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}} {count}"
                );
            }
        }
    }
    family(
        &mut out,
        "signet_token_failures_total",
        "counter",
        "Refused token requests by audit reason.",
    );
    if let Ok(failures) = m.failures.lock() {
        let mut rows: Vec<_> = failures.iter().collect();
        rows.sort();
        for (reason, count) in rows {
            let _ = writeln!(
                out,
                "signet_token_failures_total{{reason=\"{reason}\"}} {count}"
            );
        }
    }
    family(
        &mut out,
        "signet_token_request_duration_seconds",
        "histogram",
        "Time to answer a token request, audit commit included.",
    );
    for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
        let _ = writeln!(
            out,
            "signet_token_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
            m.latency_buckets[i].load(Relaxed)
        );
    }
    let count = m.latency_count.load(Relaxed);
    let _ = writeln!(
        out,
        "signet_token_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nsignet_token_request_duration_seconds_sum {}\nsignet_token_request_duration_seconds_count {count}",
        m.latency_sum_micros.load(Relaxed) as f64 / 1e6
    );
    let writer = state.store.audit().stats();
    family(
        &mut out,
        "signet_audit_batch_size",
        "histogram",
        "Writes per group commit of the audit writer.",
    );
    let mut cumulative = 0;
    for (i, bound) in BATCH_SIZE_BOUNDS.iter().enumerate() {
        cumulative += writer.batch_size_buckets[i].load(Relaxed);
        let _ = writeln!(
            out,
            "signet_audit_batch_size_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    let batches = writer.batches.load(Relaxed);
    let _ = writeln!(
        out,
        "signet_audit_batch_size_bucket{{le=\"+Inf\"}} {batches}\nsignet_audit_batch_size_sum {}\nsignet_audit_batch_size_count {batches}",
        writer.writes.load(Relaxed)
    );
    family(
        &mut out,
        "signet_audit_failed_batches_total",
        "counter",
        "Group commits that failed (their callers got 503).",
    );
    let _ = writeln!(
        out,
        "signet_audit_failed_batches_total {}",
        writer.failed_batches.load(Relaxed)
    );
    family(
        &mut out,
        "signet_audit_queue_depth",
        "gauge",
        "Writes waiting for the audit writer.",
    );
    let _ = writeln!(
        out,
        "signet_audit_queue_depth {}",
        state.store.audit().queue_depth()
    );
    family(
        &mut out,
        "signet_requests_in_flight",
        "gauge",
        "HTTP requests being served (SIGNET_MAX_CONCURRENT_REQUESTS is the limit).",
    );
    let _ = writeln!(
        out,
        "signet_requests_in_flight {}",
        state.admission.in_flight()
    );
    family(
        &mut out,
        "signet_requests_shed_total",
        "counter",
        "Requests answered 503 because too many were in flight.",
    );
    let _ = writeln!(out, "signet_requests_shed_total {}", state.admission.shed());
    let (size, idle) = state.store.pool_stats();
    family(
        &mut out,
        "signet_db_pool_connections",
        "gauge",
        "Database pool connections by state.",
    );
    let _ = writeln!(
        out,
        "signet_db_pool_connections{{state=\"idle\"}} {idle}\nsignet_db_pool_connections{{state=\"busy\"}} {}",
        (size as usize).saturating_sub(idle)
    );
    family(
        &mut out,
        "signet_agent_cache_misses_total",
        "counter",
        "Agent lookups that read the database (known agents and unknown IDs are both cached).",
    );
    let _ = writeln!(
        out,
        "signet_agent_cache_misses_total {}",
        state.store.agent_cache_misses()
    );
    family(
        &mut out,
        "signet_connections_open",
        "gauge",
        "Open client connections, both listeners (at SIGNET_MAX_CONNECTIONS new ones wait).",
    );
    let _ = writeln!(
        out,
        "signet_connections_open {}",
        state
            .config
            .max_connections
            .saturating_sub(state.connections.available_permits())
    );
    family(
        &mut out,
        "signet_lockouts_active",
        "gauge",
        "Agents, source addresses (at the token endpoint or the operators' surfaces) and console usernames locked by brute-force protection (this node).",
    );
    let locks = state.lockouts.locks(state.now());
    for kind in ["agent", "source", "console_user", "operator_source"] {
        let n = locks.iter().filter(|l| l.kind.as_str() == kind).count();
        let _ = writeln!(out, "signet_lockouts_active{{kind=\"{kind}\"}} {n}");
    }
    family(
        &mut out,
        "signet_alerts_raised_total",
        "counter",
        "Alerts opened by anomaly detection on this node, by rule (repeats of an open alert count on it instead).",
    );
    for (rule, n) in state.alerts.raised() {
        let _ = writeln!(out, "signet_alerts_raised_total{{rule=\"{rule}\"}} {n}");
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
