-- Agents, their secrets, token signing keys, revoked tokens, settings and the audit log.

CREATE TABLE agents (
    agent_id                   TEXT PRIMARY KEY NOT NULL,
    name                       TEXT NOT NULL,
    description                TEXT NOT NULL DEFAULT '',
    status                     TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    token_endpoint_auth_method TEXT NOT NULL,
    scopes                     TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    audiences                  TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    access_token_ttl           INTEGER,
    allowed_cidrs              TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);
CREATE INDEX agents_name ON agents (name);

-- Keyed hashes (HMAC-SHA-256) of agent secrets; never the secrets.
CREATE TABLE agent_secrets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id    TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    replaced_at INTEGER
);
CREATE INDEX agent_secrets_agent ON agent_secrets (agent_id);

-- Token signing keys; the private key is sealed with the master key (AES-256-GCM, kid as AAD).
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER
);

-- Revoked access tokens, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    agent_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms      INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    reason     TEXT,
    agent_id   TEXT,
    method     TEXT,
    source     TEXT,
    user_agent TEXT,
    actor      TEXT,
    jti        TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_agent ON audit_events (agent_id, id);
CREATE INDEX audit_events_type ON audit_events (event_type, id);
CREATE INDEX audit_events_ts ON audit_events (ts_ms);
