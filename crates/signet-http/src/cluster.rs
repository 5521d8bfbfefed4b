//! Following the other nodes (PostgreSQL): signing keys and certificate revocations are read
//! again when another node announces a change to them, and both after a resynchronisation; a
//! lock an operator lifted on one node is lifted on every node. The agent cache follows inside
//! the store.

use signet_store::Change;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

/// Reloads what `state` holds in memory whenever the store reports a change to it.
pub fn follow_changes(state: AppState) {
    let mut changes = state.store.subscribe();
    tokio::spawn(async move {
        loop {
            let (keys, revocations) = match changes.recv().await {
                Ok(Change::SigningKeys) => (true, false),
                Ok(Change::Revocations) => (false, true),
                // Missed some (too many at once): read everything again.
                Ok(Change::Resync) | Err(RecvError::Lagged(_)) => (true, true),
                Ok(Change::Agent(_) | Change::AllAgents) => (false, false),
                Ok(Change::LockLifted { kind, key }) => {
                    if let Some(kind) = signet_core::lockout::LockKind::parse(&kind) {
                        state.lockouts.lift(kind, &key, state.now());
                    }
                    (false, false)
                }
                Err(RecvError::Closed) => return,
            };
            if keys && let Err(e) = state.keys.reload(&state.store, &state.master_key).await {
                tracing::warn!(error = %e, "could not reload the signing keys");
            }
            if revocations && let Err(e) = state.pki.reload_revocations(&state.store).await {
                tracing::warn!(error = %e, "could not reload certificate revocations");
            }
        }
    });
}
