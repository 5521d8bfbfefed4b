//! Audit events: what happened, to which agent, by whom, from where, and the precise reason of a
//! failure. Secrets never appear in an event: there is no field that could hold one.

use serde::{Deserialize, Serialize};

use crate::UnixTime;
use crate::crypto::AuditKey;

/// Event types. Token endpoint traffic, introspection and revocation, and every admin change.
pub mod event {
    pub const TOKEN_REQUEST: &str = "token_request";
    pub const INTROSPECTION: &str = "introspection";
    pub const REVOCATION: &str = "revocation";
    pub const AGENT_CREATED: &str = "agent_created";
    pub const AGENT_UPDATED: &str = "agent_updated";
    pub const AGENT_DELETED: &str = "agent_deleted";
    pub const AGENT_SECRET_REGENERATED: &str = "agent_secret_regenerated";
    pub const ADMIN_AUTH: &str = "admin_auth";
    /// A request to the admin API, with the actor (the token's name), method and path.
    pub const ADMIN_REQUEST: &str = "admin_request";
    pub const ADMIN_TOKEN_CREATED: &str = "admin_token_created";
    pub const ADMIN_TOKEN_REVOKED: &str = "admin_token_revoked";
    pub const BOOTSTRAP_TOKEN_RETIRED: &str = "bootstrap_token_retired";
    /// Signing in to the console (failures: `wrong_credentials`, `locked`).
    pub const CONSOLE_SIGN_IN: &str = "console_sign_in";
    pub const CONSOLE_SIGN_OUT: &str = "console_sign_out";
    pub const CONSOLE_USER_CREATED: &str = "console_user_created";
    pub const CONSOLE_USER_DELETED: &str = "console_user_deleted";
    pub const CONSOLE_PASSWORD_CHANGED: &str = "console_password_changed";
    /// A console request refused (`csrf_token_mismatch`, `auditor_read_only`).
    pub const CONSOLE: &str = "console";
    pub const SIGNING_KEY_CREATED: &str = "signing_key_created";
    pub const AGENT_KEY_ADDED: &str = "agent_key_added";
    pub const AGENT_KEY_REVOKED: &str = "agent_key_revoked";
    pub const JWKS_FETCH: &str = "jwks_fetch";
    pub const AGENT_TOKENS_REVOKED: &str = "agent_tokens_revoked";
    pub const CLIENT_CERT_HEADER_IGNORED: &str = "client_cert_header_ignored";
    pub const AGENT_CERTIFICATE_ADDED: &str = "agent_certificate_added";
    pub const AGENT_CERTIFICATE_REMOVED: &str = "agent_certificate_removed";
    pub const CERTIFICATE_REVOKED: &str = "certificate_revoked";
    pub const CERTIFICATE_ISSUED: &str = "certificate_issued";
    pub const TLS_RELOADED: &str = "tls_reloaded";
    pub const TESTING_CLOCK_SET: &str = "testing_clock_set";
    pub const SIGNING_KEY_ROTATED: &str = "signing_key_rotated";
    pub const CREDENTIAL_EXPIRING: &str = "credential_expiring";
    pub const LOCKOUT_STARTED: &str = "lockout_started";
    pub const LOCKOUT_ENDED: &str = "lockout_ended";
    pub const LOCKOUT_LIFTED: &str = "lockout_lifted";
    pub const ALERT_ACKNOWLEDGED: &str = "alert_acknowledged";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One audit record. Built with [`AuditEvent::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number assigned by the store (0 until written).
    #[serde(default)]
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub event_type: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Client authentication method used (token endpoint) or attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Who made an admin change (`admin-token`, a console user, an agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// `jti` of the issued, introspected or revoked token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Event-specific facts (changed fields, granted scope), never secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// The HTTP request that caused the event (also in the server's log lines and the
    /// `X-Request-Id` response header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The record's chain hash as stored (base64url), on records read back from the log: a
    /// copy kept elsewhere (an export, the sink file, a SIEM) makes any record an anchor,
    /// `ID:HASH`, for a later verification ([`ChainAnchor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl AuditEvent {
    pub fn new(event_type: &str, outcome: Outcome) -> Self {
        let ts_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self {
            id: 0,
            ts_ms,
            event_type: event_type.to_string(),
            outcome,
            reason: None,
            agent_id: None,
            method: None,
            source: None,
            user_agent: None,
            actor: None,
            jti: None,
            detail: None,
            request_id: None,
            hash: None,
        }
    }

    pub fn success(event_type: &str) -> Self {
        Self::new(event_type, Outcome::Success)
    }

    pub fn failure(event_type: &str, reason: &str) -> Self {
        Self::new(event_type, Outcome::Failure).with_reason(reason)
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }

    pub fn with_agent(mut self, agent_id: Option<&str>) -> Self {
        // A claimed ID from a failed request is attacker-controlled: keep it bounded.
        self.agent_id = agent_id.map(|a| truncate(a, 128));
        self
    }

    pub fn with_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }

    pub fn with_source(mut self, source: Option<String>, user_agent: Option<&str>) -> Self {
        self.source = source;
        self.user_agent = user_agent.map(|u| truncate(u, 256));
        self
    }

    pub fn with_actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_string());
        self
    }

    pub fn with_jti(mut self, jti: &str) -> Self {
        self.jti = Some(truncate(jti, 128));
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end]
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One audit record as stored, the input of its chain hash. Tamper evidence: every record's
/// hash covers its own fields (as stored, `detail` as its JSON text) and the previous record's
/// hash, so changing, removing or reordering a record breaks the chain from there on; and it is
/// keyed ([`AuditKey`]), so whoever changes a record cannot recompute the hashes after it
/// without the master key.
#[derive(Debug, Clone, Copy)]
pub struct ChainFields<'a> {
    pub id: i64,
    pub ts_ms: i64,
    pub event_type: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub method: Option<&'a str>,
    pub source: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub jti: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// Hashed only when present, so records from before request ids still verify.
    pub request_id: Option<&'a str>,
}

/// A record's id and hash, noted outside the database (`ID:HASH`, the hash in base64url) as a
/// verification reported it. A later verification given the anchor proves the log still reaches
/// that record unchanged: records removed from the end, with the chain head moved back to hide
/// it, show up as a log that falls short of its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainAnchor {
    pub id: i64,
    pub hash: [u8; 32],
}

impl std::fmt::Display for ChainAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, crate::encoding::b64url(self.hash))
    }
}

impl std::str::FromStr for ChainAnchor {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const FORMAT: &str = "an anchor is ID:HASH, as a verification of the audit log printed it";
        let (id, hash) = text.split_once(':').ok_or(FORMAT)?;
        let id: i64 = id.parse().map_err(|_| FORMAT)?;
        let hash = crate::encoding::b64url_decode(hash)
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .ok_or(FORMAT)?;
        if id < 1 {
            return Err(FORMAT);
        }
        Ok(Self { id, hash })
    }
}

/// The hash before the first record of a chain.
pub const CHAIN_GENESIS: [u8; 32] = [0; 32];

/// HMAC-SHA-256 under the audit key over the previous hash and the record's fields, each
/// length-prefixed (a missing field is distinguishable from an empty one), so no two records
/// hash alike by shifting bytes between fields.
pub fn chain_hash(key: &AuditKey, previous: &[u8; 32], record: &ChainFields<'_>) -> [u8; 32] {
    key.mac(&chain_input(b"signet-audit-v2", previous, record))
}

/// The hash of records written before the chain was keyed (plain SHA-256 over the same
/// input): accepted by verification only at the start of a log, before the first keyed record.
pub fn unkeyed_chain_hash(previous: &[u8; 32], record: &ChainFields<'_>) -> [u8; 32] {
    crate::crypto::sha256(&chain_input(b"signet-audit-v1", previous, record))
}

/// The seal of a retention checkpoint (the last deleted record's id and hash): only a process
/// holding the audit key can write a checkpoint that verification starts from.
pub fn checkpoint_mac(key: &AuditKey, last_id: i64, hash: &[u8]) -> [u8; 32] {
    let mut input = b"signet-audit-checkpoint-v1".to_vec();
    input.extend_from_slice(&last_id.to_be_bytes());
    input.extend_from_slice(hash);
    key.mac(&input)
}

/// The seal of `legacy_before`: records with lower ids may come from before the chain was
/// keyed (unkeyed or unhashed); from it on, every record must carry a keyed hash.
pub fn legacy_before_mac(key: &AuditKey, legacy_before: i64) -> [u8; 32] {
    let mut input = b"signet-audit-legacy-before-v1".to_vec();
    input.extend_from_slice(&legacy_before.to_be_bytes());
    key.mac(&input)
}

fn chain_input(version: &[u8], previous: &[u8; 32], record: &ChainFields<'_>) -> Vec<u8> {
    let mut input = Vec::with_capacity(256);
    input.extend_from_slice(version);
    input.extend_from_slice(previous);
    input.extend_from_slice(&record.id.to_be_bytes());
    input.extend_from_slice(&record.ts_ms.to_be_bytes());
    let fields = [
        Some(record.event_type),
        Some(record.outcome),
        record.reason,
        record.agent_id,
        record.method,
        record.source,
        record.user_agent,
        record.actor,
        record.jti,
        record.detail,
    ];
    for field in fields {
        match field {
            None => input.extend_from_slice(&u32::MAX.to_be_bytes()),
            Some(text) => {
                input.extend_from_slice(&(text.len() as u32).to_be_bytes());
                input.extend_from_slice(text.as_bytes());
            }
        }
    }
    if let Some(request_id) = record.request_id {
        input.extend_from_slice(&(request_id.len() as u32).to_be_bytes());
        input.extend_from_slice(request_id.as_bytes());
    }
    input
}

/// Filters for reading the audit log; every `Some` narrows the result.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub agent_id: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
    pub source: Option<String>,
    pub request_id: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Return records with `id` below this (newest first paging).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Used only by store code that needs the current time in seconds.
pub fn seconds(ts_ms: i64) -> UnixTime {
    ts_ms / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_hash_covers_every_field_and_the_previous_hash() {
        let record = ChainFields {
            id: 7,
            ts_ms: 1,
            event_type: "token_request",
            outcome: "success",
            reason: None,
            agent_id: Some("agt_x"),
            method: Some("client_secret_basic"),
            source: Some("127.0.0.1"),
            user_agent: None,
            actor: None,
            jti: Some("j"),
            detail: Some("{}"),
            request_id: None,
        };
        let key = crate::crypto::MasterKey::generate().0.audit_key();
        let base = chain_hash(&key, &CHAIN_GENESIS, &record);
        assert_eq!(base, chain_hash(&key, &CHAIN_GENESIS, &record));
        assert_ne!(base, chain_hash(&key, &[1; 32], &record));
        assert_ne!(
            base,
            chain_hash(&key, &CHAIN_GENESIS, &ChainFields { id: 8, ..record })
        );
        assert_ne!(
            base,
            chain_hash(
                &key,
                &CHAIN_GENESIS,
                &ChainFields {
                    reason: Some(""),
                    ..record
                }
            )
        );
        assert_ne!(
            base,
            chain_hash(
                &key,
                &CHAIN_GENESIS,
                &ChainFields {
                    request_id: Some(""),
                    ..record
                }
            )
        );
        // Bytes moved from one field to the next do not collide.
        let a = ChainFields {
            source: Some("ab"),
            user_agent: Some("c"),
            ..record
        };
        let b = ChainFields {
            source: Some("a"),
            user_agent: Some("bc"),
            ..record
        };
        assert_ne!(
            chain_hash(&key, &CHAIN_GENESIS, &a),
            chain_hash(&key, &CHAIN_GENESIS, &b)
        );
        // Keyed: another master key, or the old unkeyed hash, gives another chain.
        let other = crate::crypto::MasterKey::generate().0.audit_key();
        assert_ne!(base, chain_hash(&other, &CHAIN_GENESIS, &record));
        assert_ne!(base, unkeyed_chain_hash(&CHAIN_GENESIS, &record));
    }

    #[test]
    fn anchors_read_back_what_they_print_and_refuse_anything_else() {
        let anchor = ChainAnchor {
            id: 48213,
            hash: [7; 32],
        };
        let text = anchor.to_string();
        assert_eq!(text.parse::<ChainAnchor>(), Ok(anchor));
        for bad in [
            "",
            "48213",
            "x:BwcH",
            "0:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
            "48213:BwcH",
            "48213:not base64!",
        ] {
            assert!(bad.parse::<ChainAnchor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn untrusted_fields_are_bounded_and_cleaned() {
        let event = AuditEvent::failure(event::TOKEN_REQUEST, "unknown_agent")
            .with_agent(Some(&"x".repeat(1000)))
            .with_source(None, Some("curl\n/8"));
        assert_eq!(event.agent_id.map(|a| a.len()), Some(128));
        assert_eq!(event.user_agent.as_deref(), Some("curl?/8"));
    }
}
