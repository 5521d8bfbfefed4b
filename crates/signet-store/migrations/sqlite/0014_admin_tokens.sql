-- Named admin API tokens: the name is the actor in audit records; only the token's SHA-256 is
-- kept. Revoked tokens stay listed (who had access, until when).
CREATE TABLE admin_tokens (
    name         TEXT PRIMARY KEY NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'auditor')),
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
