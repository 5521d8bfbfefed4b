//! Changes that other nodes must see: each is applied here at once (the agent cache), announced
//! to this node's subscribers, and on PostgreSQL sent to every node with `NOTIFY`. A listener on
//! each node applies what the others announce; after a lost connection, and periodically as a
//! safety net, it resynchronises everything (`Change::Resync`). An announcement carries the
//! sending node's id, so a node does not apply its own changes a second time when PostgreSQL
//! echoes them back (a second cache miss, a second reload of keys).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};
use tokio::sync::broadcast;

use super::Store;

/// The PostgreSQL channel the nodes announce changes on.
const CHANNEL: &str = "signet_changes";

/// Which node (which [`Store`] opened in a process) sent an announcement: random, so nodes need
/// no configuration to tell theirs from the others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeId(u64);

impl NodeId {
    pub(crate) fn random() -> Self {
        Self(u64::from_be_bytes(signet_core::crypto::random_bytes()))
    }
}

/// An announcement on the wire: `NODE CHANGE`, the node in 16 hex digits.
fn announcement(node: NodeId, change: &Change) -> String {
    format!("{:016x} {}", node.0, change.encode())
}

/// The sender and the change of an announcement. One without a sender (as sent before nodes had
/// ids) is a change from another node.
fn parse_announcement(payload: &str) -> Option<(Option<NodeId>, Change)> {
    match payload.split_once(' ') {
        Some((node, change)) if node.len() == 16 => {
            let node = u64::from_str_radix(node, 16).ok()?;
            Some((Some(NodeId(node)), Change::decode(change)?))
        }
        _ => Some((None, Change::decode(payload)?)),
    }
}

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
    /// An operator lifted a brute-force lock (kind and key, as `signet_core::lockout` names
    /// them): every node lifts its own.
    LockLifted { kind: String, key: String },
}

impl Change {
    fn encode(&self) -> String {
        match self {
            Self::Agent(id) => format!("agent:{id}"),
            Self::AllAgents => "agents".into(),
            Self::Revocations => "revocations".into(),
            Self::SigningKeys => "signing_keys".into(),
            Self::Resync => "resync".into(),
            Self::LockLifted { kind, key } => format!("lock_lifted:{kind}:{key}"),
        }
    }

    fn decode(change: &str) -> Option<Self> {
        match change {
            "agents" => Some(Self::AllAgents),
            "revocations" => Some(Self::Revocations),
            "signing_keys" => Some(Self::SigningKeys),
            "resync" => Some(Self::Resync),
            other => {
                if let Some(lock) = other.strip_prefix("lock_lifted:") {
                    let (kind, key) = lock.split_once(':')?;
                    return Some(Self::LockLifted {
                        kind: kind.to_owned(),
                        key: key.to_owned(),
                    });
                }
                other
                    .strip_prefix("agent:")
                    .map(|id| Self::Agent(id.to_owned()))
            }
        }
    }
}

impl Store {
    /// This node's view of changes, including those other nodes announce.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Announces that an operator lifted a lock, to this node's and every other node's
    /// followers (each lifts its own copy).
    pub async fn announce_lock_lifted(&self, kind: &str, key: &str) {
        self.changed(Change::LockLifted {
            kind: kind.to_owned(),
            key: key.to_owned(),
        })
        .await;
    }

    /// Applies `change` here and announces it to every node. A failed announcement is logged:
    /// the other nodes' periodic resynchronisation still picks the change up, except a lifted
    /// lock (locks live in memory only), which on a node that missed it lasts until it ends.
    pub(crate) async fn changed(&self, change: Change) {
        self.apply(&change);
        if self.backend == super::Backend::Postgres
            && let Err(e) = sqlx::query("SELECT 1 FROM pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(announcement(self.node, &change))
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
            Change::Revocations | Change::SigningKeys | Change::LockLifted { .. } => {}
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
        match parse_announcement(notification.payload()) {
            // Applied when it was made.
            Some((Some(node), _)) if node == self.node => {}
            Some((_, change)) => self.apply(&change),
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
    use super::{Change, NodeId, announcement, parse_announcement};

    #[test]
    fn changes_survive_the_wire() {
        for change in [
            Change::Agent("agt_x:y".into()),
            Change::AllAgents,
            Change::Revocations,
            Change::SigningKeys,
            Change::Resync,
            Change::LockLifted {
                kind: "source".into(),
                key: "2001:db8:1:2::/64".into(),
            },
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("nonsense"), None);
    }

    #[test]
    fn announcements_name_their_node() {
        let (a, b) = (NodeId::random(), NodeId::random());
        assert_ne!(a, b);
        let change = Change::Agent("agt_with space".into());
        assert_eq!(
            parse_announcement(&announcement(a, &change)),
            Some((Some(a), change.clone()))
        );
        // Without a node: from a node that predates node ids.
        assert_eq!(
            parse_announcement("agent:agt_x"),
            Some((None, Change::Agent("agt_x".into())))
        );
        assert_eq!(parse_announcement("0123456789abcdef nonsense"), None);
        assert_eq!(parse_announcement("nonsense"), None);
    }
}
