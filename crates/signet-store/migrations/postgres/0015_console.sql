-- People who sign in to the web console (passwords as Argon2id PHC strings), and their
-- sessions (only the SHA-256 of a session's cookie is kept; the CSRF token is per session).
CREATE TABLE console_users (
    username      TEXT PRIMARY KEY NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'auditor')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL
);

CREATE TABLE console_sessions (
    id_sha256  BYTEA PRIMARY KEY NOT NULL,
    username   TEXT NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
