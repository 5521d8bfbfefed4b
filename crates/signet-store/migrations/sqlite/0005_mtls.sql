-- Mutual TLS (RFC 8705): the certificate binding of tls_client_auth agents, certificates
-- registered by self_signed_tls_client_auth agents, operator revocations, and the agent CA with
-- the certificates it issued.

ALTER TABLE agents ADD COLUMN tls_binding_kind TEXT;       -- tls_client_auth_subject_dn, …
ALTER TABLE agents ADD COLUMN tls_binding_value TEXT;      -- as the operator wrote it
ALTER TABLE agents ADD COLUMN tls_binding_canonical TEXT;  -- one spelling per name
-- One certificate name identifies at most one agent.
CREATE UNIQUE INDEX agents_tls_binding ON agents (tls_binding_kind, tls_binding_canonical)
    WHERE tls_binding_kind IS NOT NULL;

CREATE TABLE agent_certificates (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    thumbprint TEXT NOT NULL,  -- x5t#S256
    der        BLOB NOT NULL,
    subject    TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, thumbprint)
);

CREATE TABLE revoked_certificates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    thumbprint TEXT,
    issuer     TEXT,           -- canonical DN
    serial     TEXT,           -- lower-case hex
    reason     TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    CHECK (thumbprint IS NOT NULL OR (issuer IS NOT NULL AND serial IS NOT NULL))
);
CREATE UNIQUE INDEX revoked_certificates_thumbprint ON revoked_certificates (thumbprint)
    WHERE thumbprint IS NOT NULL;
CREATE UNIQUE INDEX revoked_certificates_issuer_serial ON revoked_certificates (issuer, serial)
    WHERE thumbprint IS NULL;

-- The agent CA; the private key is sealed with the master key (AES-256-GCM).
CREATE TABLE agent_ca (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    certificate        BLOB NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at         INTEGER NOT NULL
);

CREATE TABLE issued_certificates (
    serial     TEXT PRIMARY KEY NOT NULL,
    agent_id   TEXT NOT NULL,
    thumbprint TEXT NOT NULL,
    subject    TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX issued_certificates_agent ON issued_certificates (agent_id);
CREATE INDEX issued_certificates_thumbprint ON issued_certificates (thumbprint);
