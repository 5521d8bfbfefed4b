//! Scheduled work: signing-key rotation, expiry warnings, resuming alert deliveries a stopped
//! node left unfinished, audit retention and the purge of expired `jti`s, revocations,
//! replaced credentials and console sessions. On a cluster one node
//! at a time runs it (a lease in the database, renewed at each run, taken over when its holder
//! stops); every node reloads its signing keys.

use signet_http::AppState;
use signet_http::keyring::RotationPolicy;

/// How long the hash of a replaced secret (and the thumbprint of a removed certificate) is kept,
/// so that its use is recognised as stale rather than wrong: 90 days.
const STALE_SECRET_RETENTION_SECONDS: i64 = 90 * 86_400;

/// This process, as a lease holder: host, process id and start time.
fn node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{host}:{}:{started:x}", std::process::id())
}

/// Periodic clean-up: forget used assertion `jti`s and revocations of tokens that have expired.
pub fn spawn(state: AppState) {
    let period = std::time::Duration::from_secs(state.config.housekeeping_seconds);
    let policy = RotationPolicy {
        period: state.config.signing_key_rotation_seconds,
        prepublish: state.config.signing_key_prepublish_seconds,
    };
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        let store = state.store.clone();
        let node = node_id();
        loop {
            interval.tick().await;
            let now = state.now();
            // Keys rotated on another node (or by an operator there) are picked up here too,
            // not only when announced.
            if let Err(e) = state.keys.reload(&store, &state.master_key).await {
                tracing::warn!(error = %e, "could not reload the signing keys");
            }
            // The rest runs on one node of a cluster at a time.
            // Two periods, and a second more: times are whole seconds, and a renewal that
            // lands just past a second's boundary must not let the other node in.
            let lease_until = now + 2 * period.as_secs().max(1) as i64 + 1;
            match store
                .claim_job("housekeeping", &node, now, lease_until)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim the housekeeping lease");
                    continue;
                }
            }
            match state
                .keys
                .rotate_on_schedule(&store, &state.master_key, policy, now)
                .await
            {
                Ok(Some(rotation)) => tracing::info!(?rotation, "scheduled signing key rotation"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled signing key rotation failed"),
            }
            warn_expiring(&state, now).await;
            state.alerts.resume_deliveries(&store, now).await;
            if let Some(retention) = state.config.audit_retention_seconds {
                let cutoff_ms = (now - retention as i64) * 1000;
                match store.prune_audit(cutoff_ms, now).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "audit records past retention deleted"),
                    Err(e) => tracing::warn!(error = %e, "audit retention failed"),
                }
            }
            if let Err(e) = store
                .purge_replaced_credentials(now - STALE_SECRET_RETENTION_SECONDS)
                .await
            {
                tracing::warn!(error = %e, "could not purge replaced secrets");
            }
            if let Err(e) = store.purge_used_jtis(now).await {
                tracing::warn!(error = %e, "could not purge used assertion jtis");
            }
            if let Err(e) = store.purge_expired_revocations(now).await {
                tracing::warn!(error = %e, "could not purge expired revocations");
            }
            if let Err(e) = store.purge_console_sessions(now).await {
                tracing::warn!(error = %e, "could not purge expired console sessions");
            }
        }
    });
}

/// Reports each credential that enters the expiry warning window once, as a
/// `credential_expiring` audit event (the alert an operator or SIEM acts on).
async fn warn_expiring(state: &AppState, now: signet_core::UnixTime) {
    let until = now + state.config.expiry_warning_seconds as i64;
    let expiring = match state.store.expiring_credentials(until).await {
        Ok(expiring) => expiring,
        Err(e) => {
            tracing::warn!(error = %e, "could not check for expiring credentials");
            return;
        }
    };
    for credential in expiring.iter().filter(|c| c.expires_at > now) {
        match state.store.mark_expiry_warned(credential, now).await {
            Ok(true) => {
                let event = signet_core::audit::AuditEvent::failure(
                    signet_core::audit::event::CREDENTIAL_EXPIRING,
                    "expires_soon",
                )
                .with_actor("signet")
                .with_agent(Some(&credential.agent_id))
                .with_detail(serde_json::json!({
                    "kind": credential.kind,
                    "id": credential.id,
                    "expires_at": credential.expires_at,
                    "expires_in_seconds": credential.expires_at - now,
                }));
                if let Err(e) = state.store.audit().record(event).await {
                    tracing::warn!(error = %e, "expiry warning could not be audited");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not record an expiry warning"),
        }
    }
}
