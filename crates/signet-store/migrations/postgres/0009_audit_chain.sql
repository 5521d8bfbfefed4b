-- Tamper evidence: each audit record stores the hash of its fields and of the previous record's
-- hash.
ALTER TABLE audit_events ADD COLUMN hash BYTEA;

-- Retention deletes the oldest records; the last deleted record's id and hash are kept, so the
-- remaining chain still verifies from there.
CREATE TABLE audit_checkpoints (
    last_id    BIGINT PRIMARY KEY NOT NULL,
    hash       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- The chain's head, shared by every node: an audit writer locks this row for its batch, numbers
-- its records after `last_id` and stores the new head in the same transaction.
CREATE TABLE audit_chain_head (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    last_id BIGINT NOT NULL,
    hash    BYTEA NOT NULL
);
INSERT INTO audit_chain_head (id, last_id, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
