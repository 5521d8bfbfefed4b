-- Use of replaced credentials, counted per agent, so an operator sees which service still uses
-- an old secret, key or certificate, from where, and since when.
CREATE TABLE stale_credential_use (
    agent_id        TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,  -- secret, key, certificate
    count           INTEGER NOT NULL,
    first_at        INTEGER NOT NULL,
    last_at         INTEGER NOT NULL,
    last_source     TEXT,
    last_user_agent TEXT,
    PRIMARY KEY (agent_id, kind)
);

-- Certificates removed from self_signed_tls_client_auth agents, by thumbprint only, kept for a
-- bounded time so that their use is recognised as stale.
CREATE TABLE removed_certificates (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    thumbprint TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, thumbprint)
);
