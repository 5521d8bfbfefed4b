//! Alerts from the live event stream: every audited authentication failure goes through the
//! anomaly detector (`signet_core::anomaly`); its signals become stored, deduplicated alerts,
//! and a new alert is POSTed to the configured webhook, signed, retried with back-off, each
//! attempt logged. All of it runs beside the request, never in its way.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use signet_core::anomaly::{Detector, Rule, Signal};
use signet_core::audit::{AuditEvent, Outcome};
use signet_core::config::Config;
use signet_core::crypto::hmac_sha256;
use signet_store::{AlertRecord, Store};

use crate::admin::rfc3339;

/// Five attempts in all: the first, then retries after 1, 2, 4 and 8 times the base delay.
const ATTEMPTS: u32 = 5;
/// Networks waiting to be noted in agents' histories; past this, a note is dropped and taken
/// again at the agent's next authentication.
const NOTES_QUEUE: usize = 8192;
/// Most network notes in one transaction.
const NOTES_BATCH: usize = 512;

/// A network an agent authenticated from, to be noted in its history.
#[derive(Debug)]
struct NetworkNote {
    agent_id: String,
    network: String,
    source: IpAddr,
    now: i64,
}

/// The detector and where alerts go.
#[derive(Debug)]
pub struct Alerts {
    detector: Detector,
    webhook: Option<Webhook>,
    /// New alerts opened by this node, by rule (for metrics; the rules are a fixed few).
    raised: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Where network notes go, once the task that writes them in batches has started.
    notes: std::sync::OnceLock<tokio::sync::mpsc::Sender<NetworkNote>>,
}

#[derive(Debug)]
struct Webhook {
    url: String,
    secret: Vec<u8>,
    retry_base: Duration,
    client: reqwest::Client,
}

impl Alerts {
    pub fn new(config: &Config) -> Self {
        let webhook = match (&config.alert_webhook_url, &config.alert_webhook_secret) {
            (Some(url), Some(secret)) => Some(Webhook {
                url: url.clone(),
                secret: secret.expose().as_bytes().to_vec(),
                retry_base: Duration::from_secs(config.alert_webhook_retry_seconds),
                // A redirect is a failed delivery, retried like any other: following it would
                // send the signed alert to wherever the receiver points.
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default(),
            }),
            _ => None,
        };
        Self {
            detector: Detector::new(config.anomaly),
            webhook,
            raised: Default::default(),
            notes: Default::default(),
        }
    }

    /// New alerts this node opened since it started, by rule.
    pub fn raised(&self) -> Vec<(String, u64)> {
        let raised = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        raised.iter().map(|(rule, n)| (rule.clone(), *n)).collect()
    }

    /// Feeds an audited event to the detector; raising and delivering happen in the background.
    pub fn observe(self: &Arc<Self>, store: &Store, event: &AuditEvent, now: i64) {
        if event.outcome != Outcome::Failure {
            return;
        }
        let signals = self.detector.observe(event, now);
        if signals.is_empty() {
            return;
        }
        let (alerts, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            for signal in signals {
                alerts.raise(&store, &signal, now).await;
            }
        });
    }

    /// For an issued token: counts it towards the agent's rate, raising an alert (in the
    /// background) when the rate is far above the agent's baseline.
    pub fn observe_issued(self: &Arc<Self>, store: &Store, agent_id: &str, now: i64) {
        if let Some(signal) = self.detector.observe_issued(agent_id, now) {
            let (alerts, store) = (self.clone(), store.clone());
            tokio::spawn(async move { alerts.raise(&store, &signal, now).await });
        }
    }

    /// For a successful authentication: notes, now and then, the network the agent comes from
    /// (its history shows when it last authenticated) and, with the new-network rule on,
    /// whether it has not used that network recently (in the background).
    pub fn observe_success(
        self: &Arc<Self>,
        store: &Store,
        agent_id: &str,
        source: IpAddr,
        now: i64,
    ) {
        let Some(network) = self.detector.network_to_check(agent_id, source, now) else {
            return;
        };
        let notes = self.notes.get_or_init(|| self.start_noting(store.clone()));
        let note = NetworkNote {
            agent_id: agent_id.to_string(),
            network,
            source,
            now,
        };
        if notes.try_send(note).is_err() {
            // Too many waiting (the database is slow): noted at the agent's next success.
            self.detector.forget_network(agent_id, source);
        }
    }

    /// Starts the task that writes network notes, many to a transaction: after a restart, or
    /// when many agents start at once, each agent's first authentication brings a note, and a
    /// transaction each would compete with the audit writer for the database.
    fn start_noting(self: &Arc<Self>, store: Store) -> tokio::sync::mpsc::Sender<NetworkNote> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(NOTES_QUEUE);
        let alerts = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(NOTES_BATCH);
            while receiver.recv_many(&mut batch, NOTES_BATCH).await > 0 {
                let Some(alerts) = alerts.upgrade() else {
                    break;
                };
                alerts.note_networks(&store, &batch).await;
                batch.clear();
            }
        });
        sender
    }

    /// Notes the networks; with the new-network rule on, raises an alert for each agent that
    /// has not used its network recently (and has used others).
    async fn note_networks(self: &Arc<Self>, store: &Store, notes: &[NetworkNote]) {
        let days = self.detector.new_network_days();
        let rows: Vec<_> = notes
            .iter()
            .map(|n| {
                let since = n.now - (days * 86_400) as i64;
                (n.agent_id.as_str(), n.network.as_str(), n.now, since)
            })
            .collect();
        let new = match store.note_agent_networks(&rows).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(error = %e, notes = notes.len(), "agent networks could not be recorded");
                for note in notes {
                    self.detector.forget_network(&note.agent_id, note.source);
                }
                return;
            }
        };
        for (note, new) in notes.iter().zip(new) {
            if new && days > 0 {
                let signal = Signal {
                    rule: Rule::NewNetwork,
                    subject: note.agent_id.clone(),
                    agent_id: Some(note.agent_id.clone()),
                    source: Some(note.source.to_string()),
                    detail: serde_json::json!({ "network": note.network, "source": note.source.to_string() }),
                };
                self.raise(store, &signal, note.now).await;
            }
        }
    }

    async fn raise(self: &Arc<Self>, store: &Store, signal: &Signal, now: i64) {
        match store.raise_alert(signal, now).await {
            Ok((alert, true)) => {
                tracing::warn!(rule = %alert.rule, subject = %alert.subject, "alert raised");
                *self
                    .raised
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(alert.rule.clone())
                    .or_default() += 1;
                if self.webhook.is_some() {
                    let (alerts, store) = (self.clone(), store.clone());
                    tokio::spawn(async move { alerts.deliver(&store, &alert, 1).await });
                }
            }
            Ok((_, false)) => {}
            Err(e) => tracing::error!(error = %e, "an alert could not be stored"),
        }
    }

    /// Resumes the deliveries a stopped node left unfinished (alerts of the last day, never
    /// accepted, attempts left, none tried for longer than a delivery in progress waits). Run
    /// by the node holding the housekeeping lease.
    pub async fn resume_deliveries(self: &Arc<Self>, store: &Store, now: i64) {
        let Some(webhook) = &self.webhook else {
            return;
        };
        // A live delivery waits at most 8 × the base between attempts.
        let quiet = i64::try_from(webhook.retry_base.as_secs())
            .unwrap_or(i64::MAX / 32)
            .saturating_mul(16)
            .saturating_add(60);
        let pending = match store
            .abandoned_deliveries(now - 86_400, now.saturating_sub(quiet), ATTEMPTS)
            .await
        {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for unfinished alert deliveries");
                return;
            }
        };
        for (alert, tries) in pending {
            tracing::info!(
                alert = alert.id,
                tries,
                "resuming an unfinished alert delivery"
            );
            let (alerts, store) = (self.clone(), store.clone());
            tokio::spawn(async move { alerts.deliver(&store, &alert, tries + 1).await });
        }
    }

    /// POSTs the alert, from attempt `first` on, until the receiver answers 2xx or the attempts
    /// run out.
    async fn deliver(&self, store: &Store, alert: &AlertRecord, first: u32) {
        let Some(webhook) = &self.webhook else {
            return;
        };
        let body = serde_json::to_string(&payload(alert)).unwrap_or_default();
        for attempt in first..=ATTEMPTS {
            let timestamp = signet_core::now();
            let signature = signature(&webhook.secret, timestamp, &body);
            let outcome = webhook
                .client
                .post(&webhook.url)
                .header("content-type", "application/json")
                .header("x-signet-timestamp", timestamp.to_string())
                .header("x-signet-signature", format!("sha256={signature}"))
                .body(body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16())
                // Without the URL: its path or query may hold the receiver's own secret, and
                // the delivery log is readable by auditors.
                .map_err(|e| e.without_url().to_string());
            let delivered = matches!(outcome, Ok(s) if (200..300).contains(&s));
            if let Err(e) = store
                .record_delivery(alert.id, attempt, timestamp, outcome)
                .await
            {
                tracing::warn!(error = %e, "an alert delivery could not be logged");
            }
            if delivered {
                return;
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(webhook.retry_base * 2u32.pow(attempt - 1)).await;
            }
        }
        tracing::error!(
            alert = alert.id,
            "the alert webhook did not accept the alert"
        );
    }
}

/// `hex(HMAC-SHA-256(secret, "<timestamp>.<body>"))`: receivers recompute it and refuse old
/// timestamps, so a captured delivery cannot be replayed later.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let mac = hmac_sha256(secret, format!("{timestamp}.{body}").as_bytes());
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON an alert is shown and delivered as.
pub fn payload(alert: &AlertRecord) -> serde_json::Value {
    serde_json::json!({
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "agent_id": alert.agent_id,
        "source": alert.source,
        "count": alert.count,
        "first_at": rfc3339(alert.first_at),
        "last_at": rfc3339(alert.last_at),
        "status": alert.status,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at.map(rfc3339),
        "detail": alert.detail,
    })
}
