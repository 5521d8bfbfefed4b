-- Tamper evidence: each audit record stores the hash of its fields and of the previous record's
-- hash. Records written before this migration have no hash; the chain starts after them.
ALTER TABLE audit_events ADD COLUMN hash BLOB;

-- Retention deletes the oldest records; the last deleted record's id and hash are kept, so the
-- remaining chain still verifies from there.
CREATE TABLE audit_checkpoints (
    last_id    INTEGER PRIMARY KEY NOT NULL,
    hash       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
