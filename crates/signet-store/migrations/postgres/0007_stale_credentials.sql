-- Use of replaced credentials, counted per agent, so an operator sees which service still uses
-- an old secret, key or certificate, from where, and since when.
CREATE TABLE stale_credential_use (
    agent_id        TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,  -- secret, key, certificate
    count           BIGINT NOT NULL,
    first_at        BIGINT NOT NULL,
    last_at         BIGINT NOT NULL,
    last_source     TEXT,
    last_user_agent TEXT,
    PRIMARY KEY (agent_id, kind)
);

-- Certificates removed from self_signed_tls_client_auth agents, by thumbprint only, kept for a
-- bounded time so that their use is recognised as stale.
CREATE TABLE removed_certificates (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    thumbprint TEXT NOT NULL,
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, thumbprint)
);
