//! Changes that other nodes must see: each is applied here at once (the agent cache), announced
//! to this node's subscribers, and on PostgreSQL sent to every node with `NOTIFY`. A listener on
//! each node applies what the others announce; after a lost connection, and periodically as a
//! safety net, it resynchronises everything (`Change::Resync`).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};
use tokio::sync::broadcast;

use super::Store;

/// The PostgreSQL channel the nodes announce changes on.
const CHANNEL: &str = "signet_changes";

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An agent, its secrets, keys or certificates.
    Agent(String),
    /// Many agents at once.
    AllAgents,
    /// Certificate revocations (by thumbprint or issuer and serial).
    Revocations,
    /// The signing keys (rotation, activation, emergency replacement).
    SigningKeys,
    /// Anything may have changed (after a lost connection, or periodically): reload everything.
    Resync,
}

impl Change {
    fn encode(&self) -> String {
        match self {
            Self::Agent(id) => format!("agent:{id}"),
            Self::AllAgents => "agents".into(),
            Self::Revocations => "revocations".into(),
            Self::SigningKeys => "signing_keys".into(),
            Self::Resync => "resync".into(),
        }
    }

    fn decode(payload: &str) -> Option<Self> {
        match payload {
            "agents" => Some(Self::AllAgents),
            "revocations" => Some(Self::Revocations),
            "signing_keys" => Some(Self::SigningKeys),
            "resync" => Some(Self::Resync),
            other => other
                .strip_prefix("agent:")
                .map(|id| Self::Agent(id.to_owned())),
        }
    }
}

impl Store {
    /// This node's view of changes, including those other nodes announce.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Applies `change` here and announces it to every node. A failed announcement is logged:
    /// the other nodes' periodic resynchronisation still picks the change up.
    pub(crate) async fn changed(&self, change: Change) {
        self.apply(&change);
        if self.backend == super::Backend::Postgres
            && let Err(e) = sqlx::query("SELECT 1 FROM pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(change.encode())
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %e, ?change, "could not announce a change to the other nodes");
        }
    }

    fn apply(&self, change: &Change) {
        match change {
            Change::Agent(id) => self.cache.invalidate(id),
            Change::AllAgents | Change::Resync => self.cache.clear(),
            Change::Revocations | Change::SigningKeys => {}
        }
        // Nobody listening is fine.
        let _ = self.changes.send(change.clone());
    }

    /// PostgreSQL: follows the other nodes' announcements until the process ends, and
    /// resynchronises every `resync` as a safety net.
    pub(crate) fn spawn_listener(&self, url: String, resync: Duration) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(resync);
            interval.tick().await;
            let mut listener: Option<PgListener> = None;
            loop {
                let Some(active) = listener.as_mut() else {
                    match connect(&url).await {
                        Ok(connected) => {
                            listener = Some(connected);
                            // Announcements sent while not listening are lost: catch up.
                            store.apply(&Change::Resync);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for other nodes' changes; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    continue;
                };
                tokio::select! {
                    received = active.try_recv() => match received {
                        Ok(Some(notification)) => store.received(&notification),
                        // The connection was lost and is re-established on the next call.
                        Ok(None) => store.apply(&Change::Resync),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the change listener; reconnecting");
                            listener = None;
                        }
                    },
                    _ = interval.tick() => store.apply(&Change::Resync),
                }
            }
        });
    }

    fn received(&self, notification: &PgNotification) {
        match Change::decode(notification.payload()) {
            Some(change) => self.apply(&change),
            None => tracing::warn!(
                payload = notification.payload(),
                "unknown change announcement ignored"
            ),
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn changes_survive_the_wire() {
        for change in [
            Change::Agent("agt_x:y".into()),
            Change::AllAgents,
            Change::Revocations,
            Change::SigningKeys,
            Change::Resync,
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("nonsense"), None);
    }
}
