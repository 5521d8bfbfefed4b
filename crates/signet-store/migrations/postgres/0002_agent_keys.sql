-- Public keys for private_key_jwt, and the jti values of used client assertions.

CREATE TABLE agent_keys (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    kid        TEXT NOT NULL,
    alg        TEXT NOT NULL,
    jwk        TEXT NOT NULL,  -- public JWK (JSON) with kid, alg and use
    thumbprint TEXT NOT NULL,  -- RFC 7638
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    PRIMARY KEY (agent_id, kid)
);

-- A jti is kept, scoped to its agent, until the assertion it came from has expired.
CREATE TABLE used_jtis (
    agent_id   TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, jti)
);
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);
