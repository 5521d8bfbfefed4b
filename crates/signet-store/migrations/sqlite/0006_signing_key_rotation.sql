-- Scheduled signing-key rotation: a `next` key is published before it signs (`activates_at`).
-- SQLite cannot change a CHECK constraint, so the table is rebuilt.
CREATE TABLE signing_keys_new (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('next', 'active', 'retired')),
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER,
    activates_at       INTEGER
);
INSERT INTO signing_keys_new (kid, alg, private_key_sealed, status, created_at, retired_at)
    SELECT kid, alg, private_key_sealed, status, created_at, retired_at FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
-- At most one key signs, and at most one waits to sign: two nodes cannot create competing keys.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (status) WHERE status = 'next';
