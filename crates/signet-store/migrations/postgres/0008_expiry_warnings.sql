-- Credentials already reported as expiring, so that each is reported once (audit event
-- `credential_expiring`), however often the scheduled check runs and on however many nodes.
CREATE TABLE expiry_warnings (
    agent_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,  -- kid or thumbprint; '' for a secret
    expires_at BIGINT NOT NULL,
    warned_at  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, kind, id, expires_at)
);
